#!/usr/bin/env bash
# Smoke test of examples/http_server with real clients: curl (pages, files, 404, 405, a header
# over the limit, keep-alive across requests), nc (a malformed request: 400) and a 2-second wrk
# run; stopped by SIGTERM, exit status 0.
#   check_http_server.sh PATH/TO/http_server
set -euo pipefail
program=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
require curl curl
require nc netcat-openbsd
require wrk wrk
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
printf 'the contents of a file\n' >"$root/sample.txt"
mkdir "$root/sub"
head -c 300000 /dev/urandom >"$root/sub/blob.bin"
head -c 20000000 /dev/urandom >"$root/large.bin"

start_server "$program" --port 0 --root "$root" --max-header-bytes 4096
base="http://127.0.0.1:$port"
echo "listening on port $port"

code_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

page=$(curl -sf "$base/") || fail "GET / failed"
[[ $page == *"Hello from coring"* ]] || fail "unexpected hello page: $page"
[[ $(curl -sf "$base/files/sample.txt") == "the contents of a file" ]] || fail "GET /files/sample.txt"
curl -sf -o "$root/blob.copy" "$base/files/sub/blob.bin" || fail "GET /files/sub/blob.bin"
cmp -s "$root/sub/blob.bin" "$root/blob.copy" || fail "the 300 kB file came back different"
# Files go out with sendfile: a 20 MB one, twice on one kept-alive connection, then a page.
connects=$(curl -s -o "$root/large.1" -o "$root/large.2" -o /dev/null -w '%{num_connects}\n' \
    "$base/files/large.bin" "$base/files/large.bin" "$base/" | tr '\n' ' ')
cmp -s "$root/large.bin" "$root/large.1" && cmp -s "$root/large.bin" "$root/large.2" || fail "the 20 MB file came back different"
[[ $connects == "1 0 0 " ]] || fail "the connection was not kept alive after a file: num_connects $connects"
length=$(curl -s -I "$base/files/large.bin" | tr -d '\r' | sed -n 's/^Content-Length: //p')
[[ $length == 20000000 ]] || fail "HEAD of a file should give its length, got '$length'"
[[ $(code_of "$base/files/sub") == 404 ]] || fail "a directory should be 404"
[[ $(code_of "$base/missing") == 404 ]] || fail "a missing page should be 404"
[[ $(code_of "$base/files/nothing.txt") == 404 ]] || fail "a missing file should be 404"
[[ $(code_of --path-as-is "$base/files/../sample.txt") == 404 ]] || fail "a path leaving the root should be 404"
[[ $(code_of -X POST "$base/") == 405 ]] || fail "POST should be 405"
[[ $(code_of -I "$base/") == 200 ]] || fail "HEAD / should be 200"
big=$(head -c 6000 /dev/zero | tr '\0' a)
[[ $(code_of -H "X-Big: $big" "$base/") == 431 ]] || fail "a head over --max-header-bytes should be 431"

# Keep-alive: two requests on one connection (curl reports 1 new connection, then 0).
connects=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$base/" "$base/files/sample.txt" | tr '\n' ' ')
[[ $connects == "1 0 " ]] || fail "the connection was not kept alive: num_connects $connects"
# HTTP/1.0 closes unless asked otherwise.
[[ $(curl -s -0 -D - -o /dev/null "$base/" | tr -d '\r' | grep -i '^connection:') == "Connection: close" ]] || fail "HTTP/1.0 should close"

# A malformed request: 400 and the connection is closed.
reply=$(printf 'THIS IS NOT HTTP\r\n\r\n' | timeout 5 nc -N 127.0.0.1 "$port" | head -n1 | tr -d '\r')
[[ $reply == "HTTP/1.1 400 Bad Request" ]] || fail "a malformed request should get 400, got '$reply'"
reply=$(printf 'GET / HTTP/9.9\r\n\r\n' | timeout 5 nc -N 127.0.0.1 "$port" | head -n1 | tr -d '\r')
[[ $reply == "HTTP/1.1 400 Bad Request" ]] || fail "an unknown version should get 400, got '$reply'"

# Load: 2 seconds of wrk over 20 connections; every response a 200.
wrk_out=$(wrk -t1 -c20 -d2s "$base/" 2>&1) || fail "wrk failed: $wrk_out"
echo "$wrk_out"
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$wrk_out")
[[ -n $requests && $requests -gt 1000 ]] || fail "wrk made too few requests: $wrk_out"
! grep -q 'Non-2xx' <<<"$wrk_out" || fail "wrk saw errors: $wrk_out"
! grep -q 'Socket errors' <<<"$wrk_out" || fail "wrk saw socket errors: $wrk_out"

stop_server TERM
echo "http_server: all checks passed"
