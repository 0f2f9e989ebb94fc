#!/usr/bin/env bash
# File serving (issue 16): examples/http_server's /files/, which sends with writer.sendfile
# (splice through a pipe, io/splice_file.hpp), beside nginx with `sendfile on` (Debian's nginx)
# serving the same file. Each server is pinned to one core and curl to the other; curl fetches
# the file into /dev/null SENDFILE_REPS times per run. Figures: curl's download speed (median),
# and the server's CPU time (user + system, every thread: /proc/PID/task/*/schedstat, which
# counts the kernel's io_uring workers of coring) per GiB, each with its ratio to nginx's.
#
#   bench/sendfile/compare.sh [build-dir]      (default build/release; http_server built if needed)
#
# Environment: SENDFILE_MIB (file size, 64), SENDFILE_REPS (downloads per run, 10),
# SENDFILE_RUNS (runs per server, taking turns; the median run is kept: 5), SENDFILE_SKIP_BUILD=1,
# SENDFILE_SERVER (the http_server binary). Exits 77 (skipped) without nginx or curl.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build/release}
mib=${SENDFILE_MIB:-64}
reps=${SENDFILE_REPS:-10}
runs=${SENDFILE_RUNS:-5}

nginx_bin=$(command -v nginx || true)
[[ -z $nginx_bin && -x /usr/sbin/nginx ]] && nginx_bin=/usr/sbin/nginx
[[ -n $nginx_bin ]] || { echo "compare.sh: no nginx (Debian package nginx; build.sh installs it): skipped" >&2; exit 77; }
command -v curl >/dev/null || { echo "compare.sh: no curl: skipped" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=../support/bench_lib.sh
source "$root/bench/support/bench_lib.sh"
[[ -n ${SENDFILE_SKIP_BUILD:-} ]] || build_targets "$build" http_server
coring=${SENDFILE_SERVER:-$build/examples/http_server}
[[ -x $coring ]] || { echo "compare.sh: no http_server at $coring" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www" "$work/nginx"
head -c $((mib << 20)) /dev/urandom >"$work/www/big.bin"
size=$((mib << 20))

if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    pin_server=(taskset -c 0)
    pin_client=(taskset -c 1)
else
    echo "compare.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    pin_server=()
    pin_client=()
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# measure NAME PID URL: one run of `reps` downloads; prints "bytes_per_s cpu_ns_per_gib".
measure() {
    local pid=$2 url=$3 before after speeds speed
    curl -s -o /dev/null "$url"  # warm-up
    before=$(cpu_ns "$pid")
    speeds=$(for _ in $(seq "$reps"); do "${pin_client[@]}" curl -s -o /dev/null -w '%{speed_download}\n' "$url"; done)
    after=$(cpu_ns "$pid")
    speed=$(sort -n <<<"$speeds" | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
    echo "$speed $(((after - before) * 1024 / (reps * mib)))"
}

# The median of a list of "speed cpu" lines, by speed.
median_run() { sort -n | awk '{a[NR]=$0} END {print a[int((NR + 1) / 2)]}'; }

# nginx, one process (no master), sendfile on, as its documentation recommends for static files.
nginx_port=$(free_port)
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location /files/ { alias $work/www/; }
    }
}
CONF
"${pin_server[@]}" "$nginx_bin" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/files/big.bin" -r 0-0 && break; sleep 0.05; done

"${pin_server[@]}" "$coring" --port 0 --root "$work/www" >"$work/coring.log" 2>&1 &
coring_pid=$!
pids+=("$coring_pid")
coring_port=$(listening_port "$work/coring.log" "$coring_pid") || { echo "compare.sh: http_server did not start: $(cat "$work/coring.log")" >&2; exit 1; }

for name in nginx coring; do
    url=http://127.0.0.1:$([[ $name == nginx ]] && echo "$nginx_port" || echo "$coring_port")/files/big.bin
    got=$(curl -s "$url" | cmp -s - "$work/www/big.bin" && echo same || echo different)
    [[ $got == same ]] || { echo "compare.sh: $name served a different file" >&2; exit 1; }
done

# The servers take turns, run by run, so that a drift of the machine touches both alike.
nginx_runs=
coring_runs=
for _ in $(seq "$runs"); do
    nginx_runs+="$(measure nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/files/big.bin")"$'\n'
    coring_runs+="$(measure coring "$coring_pid" "http://127.0.0.1:$coring_port/files/big.bin")"$'\n'
done
read -r nginx_speed nginx_cpu < <(grep . <<<"$nginx_runs" | median_run)
read -r coring_speed coring_cpu < <(grep . <<<"$coring_runs" | median_run)

echo "sendfile: a ${mib} MiB file to curl, ${reps} downloads per run, median of ${runs} runs; server and curl pinned to separate cores"
printf '%-8s %12s %10s %16s %10s\n' server "MiB/s" ratio "server ms/GiB" ratio
awk -v ns="$nginx_speed" -v nc="$nginx_cpu" -v cs="$coring_speed" -v cc="$coring_cpu" 'BEGIN {
    printf "%-8s %12.0f %10s %16.1f %10s\n", "nginx", ns / 1048576, "1.00x", nc / 1e6, "1.00x"
    printf "%-8s %12.0f %9.2fx %16.1f %9.2fx\n", "coring", cs / 1048576, cs / ns, cc / 1e6, (nc > 0 ? cc / nc : 0)
}'
echo "(throughput ratio: coring / nginx, higher is better; CPU ratio: lower is better)"
