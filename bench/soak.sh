#!/usr/bin/env bash
# Soak test (not in CI): examples/http_server and examples/echo_server --tls take waves of
# connections opened and closed for a while; their resident memory (VmRSS) and descriptors are
# sampled throughout. Prints a table; exits 1 if either grew from the first minute (warm-up:
# allocator pools, the TLS session cache) to the last.
#
#   bench/soak.sh [MINUTES] [BUILD_DIR]     defaults: 10 minutes, build/release (built if needed)
#
# Each wave opens 2,000 connections at once to each server (Python asyncio clients): an HTTP
# request with Connection: close, or a TLS handshake and one echoed line. Half of each wave's
# HTTP clients leave in the middle of their request instead (a reset), so error paths soak too.
# Growth means: RSS up by more than 10% + 2 MiB, or more than 8 descriptors more.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
minutes=${1:-10}
build=${2:-$root/build/release}
[[ -x $build/examples/http_server && -x $build/examples/echo_server ]] || "$root/build.sh" example release >/dev/null
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536

source "$root/examples/smoke_lib.sh"
make_certificates "$work"

# start NAME COMMAND...: runs a server, waits for "listening on HOST:PORT", sets <NAME>_pid
# and <NAME>_port.
start() {
    local name=$1 port=
    shift
    "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$work/$name.log")
        [[ -n $port ]] && break
        sleep 0.05
    done
    [[ -n $port ]] || { echo "soak: $name did not start:"; cat "$work/$name.log"; exit 1; }
    printf -v "${name}_pid" %s "$pid"
    printf -v "${name}_port" %s "$port"
}
start http "$build/examples/http_server" --port 0 --max-connections 5000
start tls "$build/examples/echo_server" --port 0 --tls "$work/server.pem" "$work/server.key"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

# The load: waves until the time is up; prints the connections made so far after each wave.
python3 - "$http_port" "$tls_port" "$work/ca.pem" "$((minutes * 60))" >"$work/load.log" 2>&1 <<'EOF' &
import asyncio, ssl, sys, time
http_port, tls_port, ca, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
tls = ssl.create_default_context(cafile=ca)
async def http(i):
    r, w = await asyncio.open_connection("127.0.0.1", http_port)
    if i % 2:
        w.write(b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        await r.read()
    else:
        w.write(b"GET / HTTP/1.1\r\nHost: so")  # leaves in the middle of the head
        w.transport.abort()
        return
    w.close()
async def echo(i):
    r, w = await asyncio.open_connection("127.0.0.1", tls_port, ssl=tls, server_hostname="localhost")
    line = b"soak %d\n" % i
    w.write(line)
    assert await r.readline() == line
    w.close()
async def main():
    start, total, failed = time.monotonic(), 0, 0
    while time.monotonic() - start < seconds:
        results = await asyncio.gather(*[http(i) for i in range(2000)], *[echo(i) for i in range(2000)], return_exceptions=True)
        total += len(results)
        failed += sum(isinstance(x, BaseException) for x in results)
        print(total, failed, flush=True)
asyncio.run(main())
EOF
load=$!
pids+=("$load")

printf '%8s %12s %9s %12s %9s %12s %8s\n' seconds http_rss_kib http_fds tls_rss_kib tls_fds connections failed
samples=()
start_time=$SECONDS
while kill -0 "$load" 2>/dev/null; do
    sleep 30
    read -r made failed < <(tail -n1 "$work/load.log" | awk 'NF == 2 {print $1, $2} NF != 2 {print 0, 0}')
    line=$(printf '%8d %12d %9d %12d %9d %12d %8d' $((SECONDS - start_time)) "$(rss_kib "$http_pid")" "$(fds "$http_pid")" \
        "$(rss_kib "$tls_pid")" "$(fds "$tls_pid")" "$made" "$failed")
    echo "$line"
    samples+=("$line")
done
wait "$load" || { echo "soak: the load generator failed:"; tail "$work/load.log"; exit 1; }

# Warm-up: the samples of the first minute are the baseline; the last sample is compared.
((${#samples[@]} >= 3)) || { echo "soak: too short to judge (${#samples[@]} samples)"; exit 1; }
read -r _ http_rss0 http_fd0 tls_rss0 tls_fd0 _ < <(echo "${samples[1]}")
read -r _ http_rss1 http_fd1 tls_rss1 tls_fd1 _ < <(echo "${samples[-1]}")
status=0
grew() {  # NAME BEFORE AFTER KIND
    local limit
    if [[ $4 == rss ]]; then limit=$(($2 + $2 / 10 + 2048)); else limit=$(($2 + 8)); fi
    if (($3 > limit)); then
        echo "soak: $1 grew from $2 to $3"
        status=1
    fi
}
grew "http_server RSS (KiB)" "$http_rss0" "$http_rss1" rss
grew "http_server descriptors" "$http_fd0" "$http_fd1" fd
grew "echo_server --tls RSS (KiB)" "$tls_rss0" "$tls_rss1" rss
grew "echo_server --tls descriptors" "$tls_fd0" "$tls_fd1" fd
kill -0 "$http_pid" && kill -0 "$tls_pid" || { echo "soak: a server died"; status=1; }
((status == 0)) && echo "soak: no growth over $minutes minutes"
exit "$status"
