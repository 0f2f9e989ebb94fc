#!/usr/bin/env bash
# TCP echo (issue 5): coring's echo servers beside a hand-written liburing server in C (the floor)
# and Boost.Asio's coroutine echo server. 64-byte ping-pong over 1 and 50 connections; each
# server pinned to one core, the load generator (echo_load) to the other; the figure is the
# server's CPU time (user + system, all its threads, from /proc/PID/task/*/schedstat) per round
# trip, and its ratio to the floor's. The user-space part is shown on its own (from
# /proc/PID/stat): the kernel's part is most of the total and varies by several percent from
# run to run on a virtual machine, while the user-space part is what a library adds.
#
#   bench/echo/compare.sh [build-dir]     (default build/release; configured and built if needed)
#
# Environment: ECHO_SECONDS (measured seconds per run, 5), ECHO_WARMUP (1), ECHO_CONNECTIONS
# ("1 50"), ECHO_RUNS (runs per configuration, the median is kept: 3), ECHO_SKIP_BUILD=1 (use
# what is built), ECHO_FLOOR / ECHO_ASIO / ECHO_CORING / ECHO_LOAD to name the binaries, and
# ECHO_ASYNCIO=0 to leave out the Python asyncio reference row. Exits 77 (skipped) when there is
# no C floor server to compare with.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build/release}
seconds=${ECHO_SECONDS:-5}
warmup=${ECHO_WARMUP:-1}
connection_counts=${ECHO_CONNECTIONS:-1 50}
runs=${ECHO_RUNS:-3}

# shellcheck source-path=SCRIPTDIR source=../support/bench_lib.sh
source "$root/bench/support/bench_lib.sh"

if [[ -z ${ECHO_SKIP_BUILD:-} ]]; then
    configure_build "$build"
    targets=(echo_server echo_load)
    grep -q '^CMAKE_C_COMPILER:' "$build/CMakeCache.txt" && targets+=(echo_floor)
    grep -q '^CORING_BOOST_ASIO_INCLUDE_DIR:PATH=/' "$build/CMakeCache.txt" && targets+=(echo_asio)
    build_targets "$build" "${targets[@]}"
fi
floor=${ECHO_FLOOR:-$build/bench/echo/echo_floor}
asio=${ECHO_ASIO:-$build/bench/echo/echo_asio}
coring=${ECHO_CORING:-$build/examples/echo_server}
load=${ECHO_LOAD:-$build/bench/echo/echo_load}
[[ -x $load ]] || { echo "compare.sh: no load generator at $load" >&2; exit 1; }
[[ -x $coring ]] || { echo "compare.sh: no echo_server at $coring" >&2; exit 1; }
# Every figure is compared with the floor's: without it there is nothing to compare against
# (77: ctest's SKIP_RETURN_CODE, so the run is reported as skipped rather than passed).
[[ -x $floor ]] || { echo "compare.sh: no C floor server at $floor (echo_floor needs a C compiler): skipped" >&2; exit 77; }

# Server on core 0, load on core 1 (no pinning on a single core).
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    pin_server=(taskset -c 0)
    pin_load=(taskset -c 1)
else
    echo "compare.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    pin_server=()
    pin_load=()
fi

names=(floor asio coring coring-streams)
declare -A command=(
    [floor]="$floor"
    [asio]="$asio"
    [coring]="$coring"
    [coring-streams]="$coring --streams"
)
declare -A label=(
    [floor]="C liburing (floor)"
    [asio]="Boost.Asio coroutines"
    [coring]="coring echo_server"
    [coring-streams]="coring streams"
    [asyncio]="Python asyncio streams"
)
# Python asyncio's streams server, a reference row (ECHO_ASYNCIO=0 leaves it out).
if [[ ${ECHO_ASYNCIO:-1} != 0 ]] && command -v python3 >/dev/null; then
    names+=(asyncio)
    command[asyncio]="python3 $root/bench/echo/echo_asyncio.py"
fi

# run_one NAME CONNECTIONS: prints "rate cpu_per_rt_ns user_per_rt_ns"
run_one() {
    local name=$1 conns=$2 log port= pid result status=0
    log=$(mktemp)
    # shellcheck disable=SC2086
    "${pin_server[@]}" ${command[$name]} --port 0 >"$log" 2>&1 &
    pid=$!
    if ! port=$(listening_port "$log" "$pid"); then
        echo "compare.sh: $name did not start:" >&2
        cat "$log" >&2
        kill -KILL "$pid" 2>/dev/null || true
        return 1
    fi
    result=$("${pin_load[@]}" "$load" --port "$port" --connections "$conns" --seconds "$seconds" --warmup "$warmup" --server-pid "$pid") || status=$?
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$log"
    ((status == 0)) || return 1
    local rate cpu user
    rate=$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$result")
    cpu=$(sed -n 's/.* cpu_per_rt_ns=\([0-9.]*\).*/\1/p' <<<"$result")
    user=$(sed -n 's/.* user_per_rt_ns=\([0-9.]*\).*/\1/p' <<<"$result")
    echo "$rate $cpu $user"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(date -u +%Y-%m-%d)"
echo "64-byte ping-pong; ${seconds} s measured after ${warmup} s of warm-up; median of ${runs} interleaved runs; server CPU per round trip"
printf '%-24s %5s %14s %12s %9s %14s\n' server conns "round trips/s" "CPU/RT (us)" "vs floor" "user/RT (us)"
failed=0
for conns in $connection_counts; do
    # Interleaved: each round runs every server once, so that the machine's drift (a virtual
    # machine's neighbours, frequency changes) spreads over all of them alike.
    declare -A rates=() cpus=() users=()
    for _ in $(seq "$runs"); do
        for name in "${names[@]}"; do
            binary=${command[$name]%% *}
            [[ -x $binary ]] || command -v "$binary" >/dev/null || continue
            if out=$(run_one "$name" "$conns"); then
                read -r r c u <<<"$out"
                rates[$name]+="$r "
                cpus[$name]+="$c "
                users[$name]+="$u "
            else
                failed=1
            fi
        done
    done
    floor_cpu=
    for name in "${names[@]}"; do
        [[ -n ${cpus[$name]:-} ]] || continue
        rate=$(tr ' ' '\n' <<<"${rates[$name]}" | grep . | median)
        cpu=$(tr ' ' '\n' <<<"${cpus[$name]}" | grep . | median)
        user=$(tr ' ' '\n' <<<"${users[$name]}" | grep . | median)
        [[ $name == floor ]] && floor_cpu=$cpu
        ratio=-
        [[ -n $floor_cpu ]] && ratio=$(awk -v a="$cpu" -v b="$floor_cpu" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
        printf '%-24s %5s %14.0f %12.2f %9s %14.2f\n' "${label[$name]}" "$conns" "$rate" "$(awk -v c="$cpu" 'BEGIN { print c / 1000 }')" "$ratio" \
            "$(awk -v c="$user" 'BEGIN { print c / 1000 }')"
    done
    unset rates cpus users
done
exit "$failed"
