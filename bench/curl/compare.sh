#!/usr/bin/env bash
# HTTP client throughput (issue 19): CURL_BENCH_REQUESTS (2,000) GETs of a small page from a
# local nginx, CURL_BENCH_CONCURRENCY (50) at a time, by
#   coring            coring_fetch: the curl bridge (coring::http::client) on coring's loop;
#   curl_multi        curl_multi_fetch: libcurl's multi interface in its own curl_multi_poll loop
#                     (the C floor);
#   curl_socket       curl_socket_fetch: libcurl's multi-socket interface, the one the bridge
#                     drives, on a level-triggered epoll loop in C (the floor of that interface);
#   curl_same_work    curl_multi_fetch same-work: that loop also collecting each response's headers
#                     and setting the bridge's default options (what the bridge does beyond
#                     the floor for every response);
#   aiohttp           aiohttp_fetch.py: Python's aiohttp on asyncio (Debian's python3-aiohttp);
# taking turns for CURL_BENCH_RUNS (5) runs. Prints each one's median requests per second and
# client CPU time per request, and coring's ratios: targets at least 3x aiohttp's requests per
# second and at least 0.9x curl_multi's. The ratios to curl_socket and curl_same_work are
# information: what the multi-socket interface costs by itself, and what collecting headers
# and the bridge's options do. nginx is pinned to core 0 and the clients to core 1
# when there are two cores.
#   bench/curl/compare.sh [build-dir]     (builds coring_fetch and the C clients there)
# Exits 77 (skipped) without nginx; without aiohttp its column is left out.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/bench/support/bench_lib.sh"
build=${1:-$root/build/release}
requests=${CURL_BENCH_REQUESTS:-2000}
concurrency=${CURL_BENCH_CONCURRENCY:-50}
runs=${CURL_BENCH_RUNS:-5}
bin=${CURL_BENCH_BIN_DIR:-$build/bench/curl}

nginx_bin=$(command -v nginx || true)
[[ -z $nginx_bin && -x /usr/sbin/nginx ]] && nginx_bin=/usr/sbin/nginx
[[ -n $nginx_bin ]] || { echo "compare.sh: no nginx (Debian package nginx; build.sh installs it): skipped" >&2; exit 77; }
[[ -n ${CURL_BENCH_SKIP_BUILD:-} ]] || build_targets "$build" coring_fetch curl_multi_fetch curl_socket_fetch

pin_server=() pin_client=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then pin_server=(taskset -c 0) pin_client=(taskset -c 1); fi

work=$(mktemp -d)
nginx_pid=
cleanup() {
    if [[ -n $nginx_pid ]]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/www"
head -c 612 /dev/zero | tr '\0' 'x' >"$work/www/page.html"  # the size of nginx's welcome page
cat >"$work/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
"${pin_server[@]}" "$nginx_bin" -e "$work/error.log" -p "$work/" -c "$work/nginx.conf" &
nginx_pid=$!
url=http://127.0.0.1:$port/page.html
for _ in $(seq 100); do curl -s -o /dev/null "$url" && break; sleep 0.05; done

clients=(coring curl_multi curl_socket curl_same_work)
python=/usr/bin/python3  # Debian's, where python3-aiohttp is installed
[[ -x $python ]] || python=python3
"$python" -c 'import aiohttp' 2>/dev/null && clients+=(aiohttp) || echo "compare.sh: python3-aiohttp is not installed: its column is left out" >&2

# run CLIENT: "rps cpu_us_per_request" of one run.
run() {
    local cmd out cpu extra=()
    case $1 in
        coring) cmd=("$bin/coring_fetch") ;;
        curl_multi) cmd=("$bin/curl_multi_fetch") ;;
        curl_socket) cmd=("$bin/curl_socket_fetch") ;;
        curl_same_work) cmd=("$bin/curl_multi_fetch") extra=(same-work) ;;
        aiohttp) cmd=("$python" "$root/bench/curl/aiohttp_fetch.py") ;;
    esac
    local TIMEFORMAT='%U %S'
    { cpu=$({ time "${pin_client[@]}" "${cmd[@]}" "$url" "$requests" "$concurrency" "${extra[@]}" >"$work/out" 2>&1; } 2>&1); } ||
        { echo "compare.sh: $1 failed: $(cat "$work/out")" >&2; exit 1; }
    out=$(cat "$work/out")
    [[ $out =~ rps\ ([0-9]+).*failures\ 0 ]] || { echo "compare.sh: $1: unexpected output: $out" >&2; exit 1; }
    echo "${BASH_REMATCH[1]} $(awk -v n="$requests" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' <<<"$cpu")"
}

declare -A rps cpu
for ((r = 1; r <= runs; ++r)); do
    for c in "${clients[@]}"; do
        read -r one_rps one_cpu < <(run "$c")
        rps[$c]+="$one_rps "
        cpu[$c]+="$one_cpu "
    done
done

echo "$requests GETs of a 612-byte page from nginx, $concurrency at a time; medians of $runs runs"
printf '%-15s %12s %22s\n' client "requests/s" "client CPU us/request"
declare -A median_rps
for c in "${clients[@]}"; do
    median_rps[$c]=$(tr ' ' '\n' <<<"${rps[$c]}" | grep . | median)
    printf '%-15s %12s %22s\n' "$c" "${median_rps[$c]}" "$(tr ' ' '\n' <<<"${cpu[$c]}" | grep . | median)"
done
ratio() { awk -v a="${median_rps[$1]}" -v b="${median_rps[$2]}" 'BEGIN { printf "%.2f", a / b }'; }
echo "coring / curl_multi requests/s: $(ratio coring curl_multi) (target >= 0.9)"
echo "coring / curl_socket requests/s: $(ratio coring curl_socket) (information)"
echo "coring / curl_same_work requests/s: $(ratio coring curl_same_work) (information)"
[[ -n ${median_rps[aiohttp]:-} ]] && echo "coring / aiohttp requests/s: $(ratio coring aiohttp) (target >= 3)"
exit 0
