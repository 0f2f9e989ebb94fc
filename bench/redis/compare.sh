#!/usr/bin/env bash
# Redis client throughput (issue 19): REDIS_BENCH_CLIENTS (50) clients doing SET and GET round
# trips, REDIS_BENCH_REQUESTS (200,000) of each, against one local redis-server (no persistence),
#   coring            coring_redis_load: the Redis bridge, 50 tasks with a connection each (one
#                     request at a time per connection, as redis-benchmark's clients);
#   redis-benchmark   redis-benchmark -c 50 -t set,get (the C floor: hiredis's reply reader on
#                     redis's own ae event loop, the same keys and 3-byte value);
#   coring shared     for information: the same 50 tasks sharing one connection, their commands
#                     pipelined by the bridge (not comparable: redis-benchmark without -P does not
#                     pipeline);
# taking turns for REDIS_BENCH_RUNS (5) runs. Prints each one's median requests per second for
# SET and GET, client CPU time per request, and coring's ratio to redis-benchmark (target: at
# least 0.9x). redis-server is pinned to core 0 and the clients to core 1 when there are two.
#   bench/redis/compare.sh [build-dir]     (builds coring_redis_load there)
# Exits 77 (skipped) without redis-server or redis-benchmark.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/bench/support/bench_lib.sh"
build=${1:-$root/build/release}
requests=${REDIS_BENCH_REQUESTS:-200000}
clients=${REDIS_BENCH_CLIENTS:-50}
runs=${REDIS_BENCH_RUNS:-5}
bin=${REDIS_BENCH_BIN_DIR:-$build/bench/redis}

for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "compare.sh: no $tool (Debian packages redis-server, redis-tools): skipped" >&2; exit 77; }
done
[[ -n ${REDIS_BENCH_SKIP_BUILD:-} ]] || build_targets "$build" coring_redis_load

pin_server=() pin_client=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then pin_server=(taskset -c 0) pin_client=(taskset -c 1); fi

work=$(mktemp -d)
redis_pid=
cleanup() {
    if [[ -n $redis_pid ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# redis-server cannot listen on port 0: a free port, and another if it was taken meanwhile.
for attempt in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${pin_server[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
        --logfile "$work/redis.log" --daemonize no &
    redis_pid=$!
    for _ in $(seq 200); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.05
    done
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
    [[ $attempt -eq 5 ]] && { echo "compare.sh: redis-server did not start: $(cat "$work/redis.log")" >&2; exit 1; }
done

clients_run=(coring redis-benchmark shared)

# run CLIENT: "set_rps get_rps cpu_us_per_request" of one run (CPU: user + system of the client
# over its 2 x requests).
run() {
    local cmd out cpu set get
    case $1 in
        coring) cmd=("$bin/coring_redis_load" "$port" "$requests" "$clients") ;;
        shared) cmd=("$bin/coring_redis_load" "$port" "$requests" "$clients" shared) ;;
        redis-benchmark) cmd=(redis-benchmark -p "$port" -c "$clients" -n "$requests" -t set,get --csv) ;;
    esac
    local TIMEFORMAT='%U %S'
    { cpu=$({ time "${pin_client[@]}" "${cmd[@]}" >"$work/out" 2>"$work/err"; } 2>&1); } ||
        { echo "compare.sh: $1 failed: $(cat "$work/out" "$work/err")" >&2; exit 1; }
    out=$(cat "$work/out")
    if [[ $1 == redis-benchmark ]]; then
        set=$(sed -n 's/^"SET","\([0-9.]*\)".*/\1/p' <<<"$out")
        get=$(sed -n 's/^"GET","\([0-9.]*\)".*/\1/p' <<<"$out")
    else
        [[ $out =~ set\ rps\ ([0-9]+)\ requests\ [0-9]+\ failures\ 0.*get\ rps\ ([0-9]+)\ requests\ [0-9]+\ failures\ 0 ]] ||
            { echo "compare.sh: $1: unexpected output: $out" >&2; exit 1; }
        set=${BASH_REMATCH[1]} get=${BASH_REMATCH[2]}
    fi
    [[ -n $set && -n $get ]] || { echo "compare.sh: $1: no rates in: $out" >&2; exit 1; }
    echo "${set%.*} ${get%.*} $(awk -v n="$requests" '{ printf "%.2f", ($1 + $2) * 1e6 / (2 * n) }' <<<"$cpu")"
}

declare -A set_rps get_rps cpu
for ((r = 1; r <= runs; ++r)); do
    for c in "${clients_run[@]}"; do
        read -r one_set one_get one_cpu < <(run "$c")
        set_rps[$c]+="$one_set "
        get_rps[$c]+="$one_get "
        cpu[$c]+="$one_cpu "
    done
done

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
echo "$requests SETs then $requests GETs, $clients clients, against redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1; medians of $runs runs"
printf '%-34s %12s %12s %22s\n' client "SET req/s" "GET req/s" "client CPU us/request"
declare -A median_set median_get
for c in "${clients_run[@]}"; do
    median_set[$c]=$(med "${set_rps[$c]}")
    median_get[$c]=$(med "${get_rps[$c]}")
    label=$c
    [[ $c == coring ]] && label="coring ($clients connections)"
    [[ $c == shared ]] && label="coring (1 shared connection)"
    [[ $c == redis-benchmark ]] && label="redis-benchmark ($clients connections)"
    printf '%-34s %12s %12s %22s\n' "$label" "${median_set[$c]}" "${median_get[$c]}" "$(med "${cpu[$c]}")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "coring / redis-benchmark requests/s: SET $(ratio "${median_set[coring]}" "${median_set[redis-benchmark]}"), GET $(ratio "${median_get[coring]}" "${median_get[redis-benchmark]}") (target >= 0.9)"
exit 0
