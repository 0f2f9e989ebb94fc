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
# Failed connections are counted, not fatal (a wave this size can meet a full listen backlog).
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
ulimit -n "$(ulimit -Hn)"  # each wave holds 4,000 client and 4,000 server descriptors

source "$root/examples/smoke_lib.sh"
source "$root/bench/support/bench_lib.sh"
make_certificates "$work"

# start NAME COMMAND...: runs a server, waits for "listening on HOST:PORT", sets <NAME>_pid
# and <NAME>_port.
start() {
    local name=$1 port=
    shift
    "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    port=$(listening_port "$work/$name.log" "$pid") || { echo "soak: $name did not start:"; cat "$work/$name.log"; exit 1; }
    printf -v "${name}_pid" %s "$pid"
    printf -v "${name}_port" %s "$port"
}
start http "$build/examples/http_server" --port 0 --max-connections 5000
start tls "$build/examples/echo_server" --port 0 --tls "$work/server.pem" "$work/server.key"

# The load: waves until the time is up. After each wave the servers get a second to close what
# the clients left, then their RSS (KiB) and descriptors are read: between waves, so the samples
# compare like with like. A line every 30 s or so.
python3 - "$http_port" "$tls_port" "$work/ca.pem" "$((minutes * 60))" "$http_pid" "$tls_pid" <<'EOF' | tee "$work/table"
import asyncio, os, ssl, sys, time
http_port, tls_port, ca, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
http_pid, tls_pid = sys.argv[5], sys.argv[6]
tls = ssl.create_default_context(cafile=ca)
def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
async def http(i):
    r, w = await asyncio.open_connection("127.0.0.1", http_port)
    if i % 2:
        w.write(b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        await r.read()
        w.close()
    else:
        w.write(b"GET / HTTP/1.1\r\nHost: so")  # leaves in the middle of the head
        w.transport.abort()
async def echo(i):
    r, w = await asyncio.open_connection("127.0.0.1", tls_port, ssl=tls, server_hostname="localhost")
    line = b"soak %d\n" % i
    w.write(line)
    assert await r.readline() == line
    w.close()
async def main():
    print("%8s %12s %9s %12s %9s %12s %8s" % ("seconds", "http_rss_kib", "http_fds", "tls_rss_kib", "tls_fds", "connections", "failed"), flush=True)
    start, total, failed, last = time.monotonic(), 0, 0, -30.0
    while time.monotonic() - start < seconds:
        results = await asyncio.gather(*[http(i) for i in range(2000)], *[echo(i) for i in range(2000)], return_exceptions=True)
        total += len(results)
        failed += sum(isinstance(x, BaseException) for x in results)
        await asyncio.sleep(1)
        now = time.monotonic() - start
        if now - last >= 30:
            last = now
            print("%8d %12d %9d %12d %9d %12d %8d" % (now, rss(http_pid), fds(http_pid), rss(tls_pid), fds(tls_pid), total, failed), flush=True)
asyncio.run(main())
EOF
mapfile -t samples < <(tail -n +2 "$work/table")

# Warm-up: the samples of the first minute are the baseline; the last sample is compared.
((${#samples[@]} >= 3)) || { echo "soak: too short to judge (${#samples[@]} samples)"; exit 1; }
# Sample 0 is the first wave's; sample 1, about a minute in, is the baseline.
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
