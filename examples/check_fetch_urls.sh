#!/usr/bin/env bash
# Smoke test of examples/fetch_urls against a running examples/http_server: 40 URLs (pages, a file,
# missing pages, slow pages) with at most 4 fetches at once and a 1-second timeout each; checks
# the progress lines, the summary, that the semaphore held, and that slow fetches timed out.
#   check_fetch_urls.sh PATH/TO/fetch_urls PATH/TO/http_server
set -euo pipefail
fetch=$1
program=$2
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
printf 'fetched file\n' >"$root/f.txt"

start_server "$program" --port 0 --root "$root"
base="http://127.0.0.1:$port"
urls=()
for i in $(seq 30); do urls+=("$base/"); done
for i in $(seq 5); do urls+=("$base/files/f.txt"); done
urls+=("$base/missing" "$base/also/missing")
urls+=("$base/sleep/100" "$base/sleep/3000" "$base/sleep/3000")

status=0
out=$(timeout 60 "$fetch" --concurrency 4 --timeout 1 "${urls[@]}") || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "fetch_urls should exit with 1 when fetches time out (got $status)"
[[ $(grep -c '^\[' <<<"$out") -eq 40 ]] || fail "expected 40 progress lines"
[[ $(grep -c '^\[ *[0-9]*/40\] 200 ' <<<"$out") -eq 36 ]] || fail "expected 36 fetches with status 200"
[[ $(grep -c '^\[ *[0-9]*/40\] 404 ' <<<"$out") -eq 2 ]] || fail "expected 2 fetches with status 404"
[[ $(grep -c 'timed out after 1.0 s' <<<"$out") -eq 2 ]] || fail "expected 2 timeouts"
summary=$(tail -n1 <<<"$out")
[[ $summary =~ ^40\ URLs\ in\ [0-9.]+\ s:\ 36\ ok,\ 2\ HTTP\ errors,\ 2\ failed\;\ [0-9]+\ bytes\;\ at\ most\ 4\ at\ once$ ]] ||
    fail "unexpected summary: $summary"

# Every fetch succeeds: exit status 0; URLs from standard input.
printf '%s\n' "$base/" "$base/files/f.txt" | timeout 30 "$fetch" --concurrency 2 >"$root/out" || fail "fetch_urls failed: $(cat "$root/out")"
tail -n1 "$root/out" | grep -q '^2 URLs in .*: 2 ok, 0 HTTP errors, 0 failed' || fail "unexpected summary: $(tail -n1 "$root/out")"

# A refused connection is a failure with the errno's message.
stop_server TERM
status=0
out=$(timeout 30 "$fetch" "$base/") || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a refused connection should make fetch_urls exit with 1"
grep -q 'Connection refused' <<<"$out" || fail "expected 'Connection refused' in: $out"
echo "fetch_urls: all checks passed"
