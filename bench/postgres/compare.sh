#!/usr/bin/env bash
# PostgreSQL round trips (issue 19): `SELECT 1` from PG_BENCH_CLIENTS (10) connections for
# PG_BENCH_SECONDS (5) seconds, by
#   coring    pg_select1: 10 tasks on one coring loop (one thread), each with its connection;
#   pgbench   PostgreSQL's own client, in C on libpq: pgbench -n -f select1.sql -c 10 -j 2,
#             where select1.sql holds exactly `SELECT 1;` (a custom script rather than -S,
#             whose select-only transaction reads pgbench_accounts: this matches the statement
#             the coring side sends, and needs no pgbench -i tables);
# in both protocols: extended (coring's query(): PQsendQueryParams; pgbench -M extended) and
# simple (coring's execute() without parameters: PQsendQuery; pgbench -M simple), taking turns
# for PG_BENCH_RUNS (3) runs. Both talk TCP to 127.0.0.1. Prints each one's median
# transactions per second, its client CPU time per transaction (user + system, from bash's
# time), and the ratio coring / pgbench. The server (postgres_server.sh: fsync off, autovacuum
# off) is pinned to core 0 and the clients to core 1 when there are two cores or more.
#   bench/postgres/compare.sh [build-dir]     (builds pg_select1 there)
# Exits 77 (skipped) without the PostgreSQL server or pgbench.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/bench/support/bench_lib.sh"
build=${1:-$root/build/release}
seconds=${PG_BENCH_SECONDS:-5}
clients=${PG_BENCH_CLIENTS:-10}
threads=${PG_BENCH_THREADS:-2}
runs=${PG_BENCH_RUNS:-3}
bin=${PG_BENCH_BIN_DIR:-$build/bench/postgres}
pg_server=$root/tests/support/postgres_server.sh

bindir=$(bash "$pg_server" bindir 2>/dev/null) || { echo "compare.sh: no PostgreSQL server (Debian package postgresql): skipped" >&2; exit 77; }
pgbench=$bindir/pgbench
[[ -x $pgbench ]] || pgbench=$(command -v pgbench || true)
[[ -n $pgbench ]] || { echo "compare.sh: no pgbench (Debian package postgresql-contrib or postgresql): skipped" >&2; exit 77; }
[[ -n ${PG_BENCH_SKIP_BUILD:-} ]] || build_targets "$build" pg_select1

pin_server=() pin_client=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then pin_server=(taskset -a -p -c 0) pin_client=(taskset -c 1); fi

dir=$(mktemp -d /tmp/coring_pg_bench_XXXXXX)
work=$(mktemp -d)
trap 'bash "$pg_server" stop "$dir"; rm -rf "$work"' EXIT
port=$(bash "$pg_server" start "$dir")
# Backends are forked by the postmaster: they inherit its CPU affinity.
[[ ${#pin_server[@]} -gt 0 ]] && "${pin_server[@]}" "$(head -n1 "$dir/data/postmaster.pid")" >/dev/null
conninfo="host=127.0.0.1 port=$port user=postgres dbname=postgres"
printf 'SELECT 1;\n' >"$work/select1.sql"

# measure NAME COMMAND...: runs COMMAND, appends "tps cpu_us_per_txn" to $work/NAME.
measure() {
    local name=$1 out cpu tps
    shift
    out=$({ TIMEFORMAT='%U %S'; time "$@" 2>&1; } 2>"$work/time") || { echo "$out" >&2; return 1; }
    cpu=$(awk '{ print $1 + $2 }' "$work/time")
    case $name in
    coring_*) tps=$(sed -n 's/.* = \([0-9.]*\) tps$/\1/p' <<<"$out") ;;
    pgbench_*) tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out") ;;
    esac
    [[ -n $tps ]] || { echo "compare.sh: no rate in the output of $name:" >&2; echo "$out" >&2; return 1; }
    awk -v tps="$tps" -v cpu="$cpu" -v s="$seconds" 'BEGIN { printf "%s %.2f\n", tps, cpu * 1e6 / (tps * s) }' >>"$work/$name"
}

for protocol in extended simple; do
    coring_args=(--clients "$clients" --seconds "$seconds")
    [[ $protocol == simple ]] && coring_args+=(--simple)
    for ((run = 1; run <= runs; run++)); do
        measure "coring_$protocol" "${pin_client[@]}" "$bin/pg_select1" "${coring_args[@]}" "$conninfo"
        measure "pgbench_$protocol" "${pin_client[@]}" "$pgbench" -n -M "$protocol" -f "$work/select1.sql" -c "$clients" -j "$threads" -T "$seconds" \
            -h 127.0.0.1 -p "$port" -U postgres postgres
    done
done

printf '\nSELECT 1 from %d clients, %s s per run, median of %d runs (server %s)\n' "$clients" "$seconds" "$runs" \
    "$("$bindir/postgres" --version | awk '{ print $3 }')"
printf '%-9s %-28s %12s %16s\n' protocol client tps 'client CPU/txn'
for protocol in extended simple; do
    c_tps=$(awk '{ print $1 }' "$work/coring_$protocol" | median)
    c_cpu=$(awk '{ print $2 }' "$work/coring_$protocol" | median)
    p_tps=$(awk '{ print $1 }' "$work/pgbench_$protocol" | median)
    p_cpu=$(awk '{ print $2 }' "$work/pgbench_$protocol" | median)
    printf '%-9s %-28s %12.0f %13.2f us\n' "$protocol" "coring (1 thread)" "$c_tps" "$c_cpu"
    printf '%-9s %-28s %12.0f %13.2f us\n' "$protocol" "pgbench -j $threads" "$p_tps" "$p_cpu"
    awk -v c="$c_tps" -v p="$p_tps" -v pr="$protocol" 'BEGIN { printf "%-9s ratio coring / pgbench: %.2f\n", pr, c / p }'
done
