#!/usr/bin/env bash
# Smoke test of examples/fetch_urls (on the curl bridge) against a running examples/http_server: 40 URLs (pages, a file,
# missing pages, slow pages) with at most 4 fetches at once and a 1-second timeout each; checks
# the progress lines, the summary, that the semaphore held, and that slow fetches timed out. Then
# https against http_server --tls (a private CA: --cafile; without it, the verification error)
# and against openssl s_server -www.
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

# https: the same server over TLS, verified against a private CA (--cafile); without the CA the
# fetch fails with the verification error.
stop_server TERM
require openssl openssl
make_certificates "$root"
start_server "$program" --port 0 --root "$root" --tls "$root/server.pem" "$root/server.key"
secure="https://localhost:$port"
out=$(timeout 30 "$fetch" --cafile "$root/ca.pem" "$secure/" "$secure/files/f.txt" "$secure/missing") || fail "https fetches failed: $out"
echo "$out"
tail -n1 <<<"$out" | grep -q '^3 URLs in .*: 2 ok, 1 HTTP error, 0 failed' || fail "unexpected https summary: $(tail -n1 <<<"$out")"
status=0
out=$(timeout 30 "$fetch" "$secure/") || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "an https fetch without the CA should fail"
grep -q 'SSL certificate problem: unable to get local issuer certificate' <<<"$out" || fail "expected the verification error in: $out"
stop_server TERM

# openssl s_server -www, as another https peer.
s_log=$(mktemp)
openssl s_server -accept 127.0.0.1:0 -cert "$root/server.pem" -key "$root/server.key" -www >"$s_log" 2>&1 &
s_pid=$!
s_port=
for _ in $(seq 200); do
    s_port=$(sed -n 's/^ACCEPT 127.0.0.1:\([0-9][0-9]*\)$/\1/p' "$s_log")
    [[ -n $s_port ]] && break
    sleep 0.05
done
[[ -n $s_port ]] || { kill "$s_pid"; fail "openssl s_server did not start: $(cat "$s_log")"; }
out=$(timeout 30 "$fetch" --cafile "$root/ca.pem" "https://localhost:$s_port/") || { kill "$s_pid"; fail "fetch from s_server failed: $out"; }
kill "$s_pid"
wait "$s_pid" 2>/dev/null || true
rm -f "$s_log"
echo "$out"
tail -n1 <<<"$out" | grep -q '^1 URLs in .*: 1 ok, 0 HTTP errors, 0 failed' || fail "unexpected summary from s_server: $(tail -n1 <<<"$out")"

# A refused connection is a failure with the errno's message.
status=0
out=$(timeout 30 "$fetch" "$base/") || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a refused connection should make fetch_urls exit with 1"
grep -q 'Connection refused' <<<"$out" || fail "expected 'Connection refused' in: $out"
echo "fetch_urls: all checks passed"
