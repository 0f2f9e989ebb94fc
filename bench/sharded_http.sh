#!/usr/bin/env bash
# examples/http_server on several loops (--threads N, one listener per loop on one port) under
# wrk: requests per second and the server's CPU time per request (every thread's, from
# /proc/PID/task/*/schedstat, so io_uring's kernel workers count too), for each combination of
# server loops and load-generator threads: the scaling table.
#
# This 2-core machine cannot show scaling (wrk needs a core too, so 2 loops share the cores
# with it); what it shows is per-core efficiency: CPU per request with 2 loops at most 1.05x
# that with 1. On a larger machine, give each side its own cores:
#   SHARDED_SERVER_THREADS="1 2 4 8" SHARDED_LOAD_THREADS="8" bench/sharded_http.sh
# The server is pinned to cores 0..N-1 and wrk to the next M when the machine has N+M cores;
# otherwise both run unpinned (said on stderr).
#
#   bench/sharded_http.sh [build-dir]          (default build/release; http_server built if needed)
#
# Environment: SHARDED_SERVER_THREADS ("1 2"), SHARDED_LOAD_THREADS ("1"), SHARDED_CONNECTIONS
# (per wrk thread, 50), SHARDED_SECONDS (per run, 5), SHARDED_RUNS (runs per cell, median kept:
# 3), SHARDED_SKIP_BUILD=1, SHARDED_SERVER (the binary). Exits 77 (skipped) without wrk.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/release}
server_threads=${SHARDED_SERVER_THREADS:-1 2}
load_threads=${SHARDED_LOAD_THREADS:-1}
connections=${SHARDED_CONNECTIONS:-50}
seconds=${SHARDED_SECONDS:-5}
runs=${SHARDED_RUNS:-3}

# shellcheck source-path=SCRIPTDIR source=support/bench_lib.sh
source "$root/bench/support/bench_lib.sh"

command -v wrk >/dev/null || { echo "sharded_http.sh: no wrk (Debian package wrk; build.sh installs it): skipped" >&2; exit 77; }
[[ -n ${SHARDED_SKIP_BUILD:-} ]] || build_targets "$build" http_server
server=${SHARDED_SERVER:-$build/examples/http_server}
[[ -x $server ]] || { echo "sharded_http.sh: no http_server at $server" >&2; exit 1; }

pid=
# An if, not &&: under set -e a false test as the trap's last command would be the exit status.
cleanup() {
    if [[ -n $pid ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# run_one LOOPS WRK_THREADS: prints "requests_per_second cpu_ns_per_request"
run_one() {
    local loops=$1 load=$2 log pin_server=() pin_load=() port=
    if (($(nproc) >= loops + load)) && command -v taskset >/dev/null; then
        pin_server=(taskset -c "0-$((loops - 1))")
        pin_load=(taskset -c "$loops-$((loops + load - 1))")
    fi
    log=$(mktemp)
    "${pin_server[@]}" "$server" --port 0 --threads "$loops" --max-connections 100000 >"$log" 2>&1 &
    pid=$!
    port=$(listening_port "$log" "$pid") || { cat "$log" >&2; return 1; }
    # A second of warm-up: connections open, pages faulted in.
    "${pin_load[@]}" wrk -t"$load" -c$((connections * load)) -d1s "http://127.0.0.1:$port/" >/dev/null
    local before out after requests
    before=$(cpu_ns "$pid")
    out=$("${pin_load[@]}" wrk -t"$load" -c$((connections * load)) -d"${seconds}s" "http://127.0.0.1:$port/")
    after=$(cpu_ns "$pid")
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    rm -f "$log"
    requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
    [[ -n $requests && $requests -gt 0 ]] || { echo "$out" >&2; return 1; }
    awk -v r="$requests" -v s="$seconds" -v c=$((after - before)) 'BEGIN { printf "%.0f %.0f\n", r / s, c / r }'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(date -u +%Y-%m-%d)"
(($(nproc) >= 2)) || echo "sharded_http.sh: one core: everything shares it" >&2
printf '%-12s %-12s %14s %18s %10s\n' "server loops" "wrk threads" "requests/s" "server CPU/req (us)" "vs 1 loop"
for load in $load_threads; do
    base_cpu=
    for loops in $server_threads; do
        rates=() cpus=()
        for _ in $(seq "$runs"); do
            read -r rate cpu < <(run_one "$loops" "$load")
            rates+=("$rate")
            cpus+=("$cpu")
        done
        rate=$(printf '%s\n' "${rates[@]}" | median)
        cpu=$(printf '%s\n' "${cpus[@]}" | median)
        [[ -z $base_cpu ]] && base_cpu=$cpu
        printf '%-12s %-12s %14.0f %18.2f %9.2fx\n' "$loops" "$load" "$rate" "$(awk -v c="$cpu" 'BEGIN { print c / 1000 }')" \
            "$(awk -v a="$cpu" -v b="$base_cpu" 'BEGIN { print a / b }')"
    done
done
