#!/usr/bin/env bash
# Smoke test of examples/pg_report (on the postgres bridge) against a PostgreSQL server started
# for it (tests/support/postgres_server.sh: initdb into a temporary folder, postgres on a free
# port of 127.0.0.1, as the postgres user when run as root; stopped and removed at the end).
# Checks the progress lines, the four report tables, the totals check, the report's numbers
# against psql's, that the table is dropped without --keep, a run over the Unix socket, and
# that a refused connection exits with 1 and SQLSTATE 08001. Exits 77 (skipped) without the
# PostgreSQL server.
#   check_pg_report.sh PATH/TO/pg_report
set -euo pipefail
program=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/smoke_lib.sh"
pg_server="$here/../tests/support/postgres_server.sh"

bindir=$(bash "$pg_server" bindir) || { echo "SKIP: the PostgreSQL server is not installed (Debian package postgresql)"; exit 77; }
dir=$(mktemp -d /tmp/coring_pg_report_XXXXXX)
trap 'bash "$pg_server" stop "$dir"' EXIT
status=0
port=$(bash "$pg_server" start "$dir") || status=$?
[[ $status -eq 77 ]] && { echo "SKIP: the PostgreSQL server cannot start here"; exit 77; }
[[ $status -eq 0 ]] || fail "the PostgreSQL server did not start"
conninfo="host=127.0.0.1 port=$port user=postgres dbname=postgres"
psql() { "$bindir/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }

out=$(timeout 60 "$program" --connections 4 --orders 5000 --batch 50 --keep "$conninfo") || fail "pg_report failed: $out"
echo "$out"
grep -q '^connected 4 connections in [0-9.]* ms$' <<<"$out" || fail "expected the connection line"
grep -q '^created pg_report_orders and inserted 5000 orders in [0-9.]* ms (4 connections, 50 rows per INSERT)$' <<<"$out" || fail "expected the insert line"
for title in 'Revenue by region' 'Top 5 products' 'Revenue by month, with the running total' 'Best day of each region'; do
    grep -q "^$title ([0-9.]* ms)$" <<<"$out" || fail "expected the report '$title'"
done
grep -q '^region *| orders | units | revenue *| average order$' <<<"$out" || fail "expected the region table's header"
grep -q '^4 reports on 4 connections in [0-9.]* ms' <<<"$out" || fail "expected the summary line"
grep -q '^check: revenue [0-9]*\.[0-9][0-9] and 5000 orders, as generated$' <<<"$out" || fail "expected the totals check"

# The report's numbers are the server's: orders per region, and the months' running total.
while IFS='|' read -r region orders; do
    grep -q "^$region *| *$orders |" <<<"$out" || fail "psql says $region has $orders orders; the report does not"
done < <(psql "SELECT region, count(*) FROM pg_report_orders GROUP BY region")
[[ $(sed -n '/^Revenue by region/,/^$/p' <<<"$out" | grep -c -E '^(north|south|east|west) ') -eq 4 ]] || fail "expected 4 regions"
total=$(psql "SELECT sum(quantity * unit_price) FROM pg_report_orders")
[[ $(sed -n '/^Revenue by month/,/^$/p' <<<"$out" | grep '^2024-06 ' | awk -F'|' '{ gsub(/ /, "", $4); print $4 }') == "$total" ]] ||
    fail "the running total of June should be the whole revenue ($total)"
[[ $(sed -n '/^Top 5 products/,/^$/p' <<<"$out" | grep -c -E '^ *[0-9]+ \| ') -eq 5 ]] || fail "expected 5 products"

# Without --keep the table is dropped; over the Unix socket it works the same.
out=$(timeout 60 "$program" --connections 2 --orders 300 "host=$dir port=$port user=postgres dbname=postgres") || fail "pg_report over the Unix socket failed: $out"
grep -q '^check: revenue [0-9.]* and 300 orders, as generated$' <<<"$out" || fail "expected the totals check over the Unix socket"
grep -q '^4 reports on 2 connections' <<<"$out" || fail "expected 4 reports on 2 connections"
[[ -z $(psql "SELECT to_regclass('pg_report_orders')") ]] || fail "pg_report_orders should have been dropped"

# A refused connection: exit status 1 and libpq's message under SQLSTATE 08001.
status=0
out=$(timeout 30 "$program" "host=127.0.0.1 port=1 user=postgres" 2>&1) || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a refused connection should make pg_report exit with 1 (got $status)"
grep -q 'FATAL 08001: connection to server at "127.0.0.1", port 1 failed: Connection refused' <<<"$out" || fail "expected the refused connection's error"
echo "pg_report: all checks passed"
