#!/usr/bin/env bash
# Smoke test of examples/http_server with real clients: curl (pages, files, 404, 405, a header
# over the limit, keep-alive across requests), nc (a malformed request: 400, a bare-LF request),
# a 2-second wrk run, and Python's socket module as slow and silent clients (a second server with
# short timeouts: a head trickling in, an idle kept-alive connection, the connection cap), and a
# third on two loops (--threads 2: both serve); stopped by SIGTERM, exit status 0.
#   check_http_server.sh PATH/TO/http_server
set -euo pipefail
program=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
require curl curl
require nc netcat-openbsd
require wrk wrk
require python3 python3
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

# Bare-LF line endings are accepted (RFC 9112, 2.2); a bare CR is refused.
reply=$(printf 'GET / HTTP/1.1\nHost: x\nConnection: close\n\n' | timeout 5 nc -N 127.0.0.1 "$port" | head -n1 | tr -d '\r')
[[ $reply == "HTTP/1.1 200 OK" ]] || fail "a bare-LF request should get 200, got '$reply'"
reply=$(printf 'GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n' | timeout 5 nc -N 127.0.0.1 "$port" | head -n1 | tr -d '\r')
[[ $reply == "HTTP/1.1 400 Bad Request" ]] || fail "a bare CR should get 400, got '$reply'"
# Numbers never overflow: 14 digits of milliseconds are refused, not wrapped.
[[ $(code_of "$base/sleep/99999999999999") == 400 ]] || fail "/sleep/99999999999999 should be 400"
[[ $(code_of "$base/sleep/-5") == 400 ]] || fail "/sleep/-5 should be 400"
[[ $(curl -s "$base/sleep/10") == "slept 10 ms" ]] || fail "/sleep/10"
[[ $(code_of -H "Content-Length: 99999999999999999999999" -d x "$base/") == 400 ]] || fail "an overflowing Content-Length should be 400"

# Load: 2 seconds of wrk over 20 connections; every response a 200.
wrk_out=$(wrk -t1 -c20 -d2s "$base/" 2>&1) || fail "wrk failed: $wrk_out"
echo "$wrk_out"
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$wrk_out")
[[ -n $requests && $requests -gt 1000 ]] || fail "wrk made too few requests: $wrk_out"
! grep -q 'Non-2xx' <<<"$wrk_out" || fail "wrk saw errors: $wrk_out"
! grep -q 'Socket errors' <<<"$wrk_out" || fail "wrk saw socket errors: $wrk_out"

stop_server TERM

# Slow and silent clients, against a server with short timeouts. slow_client PORT MODE prints
# "MS FIRST-LINE": how long after its last request byte the server closed, and its answer.
#   trickle: a head that never ends, one byte every 100 ms
#   silent:  connects and sends nothing
#   idle:    one request, then nothing (a kept-alive connection)
slow_client() {
    python3 - "$@" <<'EOF'
import select, socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
if mode == "idle":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
elif mode == "trickle":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
start, data = time.monotonic(), b""
while time.monotonic() - start < 10:
    if select.select([s], [], [], 0.1)[0]:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if mode == "idle":
            start = time.monotonic()  # the keep-alive wait starts at the response
    elif mode == "trickle":
        try:
            s.sendall(b"a")
        except OSError:
            pass  # closed meanwhile: the answer, if any, is read next
print(int((time.monotonic() - start) * 1000), data.split(b"\r\n")[0].decode() or "-")
EOF
}
start_server "$program" --port 0 --head-timeout-ms 600 --keepalive-timeout-ms 800 --idle-timeout-ms 5000 --max-connections 3
base="http://127.0.0.1:$port"
read -r ms line < <(slow_client "$port" trickle)
[[ $line == "HTTP/1.1 408 Request Timeout" ]] || fail "a head trickling in should get 408, got '$line'"
((ms >= 500 && ms < 3000)) || fail "a head trickling in should be cut off at 600 ms, took $ms ms"
read -r ms line < <(slow_client "$port" silent)
[[ $line == "-" ]] || fail "a silent client should get no answer, got '$line'"
((ms >= 700 && ms < 3000)) || fail "a silent client should be closed at 800 ms, took $ms ms"
read -r ms line < <(slow_client "$port" idle)
[[ $line == "HTTP/1.1 200 OK" ]] || fail "the idle client's request should get 200, got '$line'"
((ms >= 700 && ms < 3000)) || fail "an idle kept-alive connection should be closed 800 ms after the response, took $ms ms"
# The cap: three silent clients hold every place; a fourth waits (curl gives up after 300 ms),
# and is served once the silent ones are closed.
python3 - "$port" "$root/ready" <<'EOF' &
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(3)]
open(sys.argv[2], "w").close()
time.sleep(2)
EOF
holder=$!
for _ in $(seq 100); do [[ -e $root/ready ]] && break; sleep 0.05; done
code=$(code_of --max-time 0.3 "$base/" || true)  # curl exits 28 when it gives up
[[ $code == 000 ]] || fail "a fourth connection should wait at --max-connections 3, got $code"
wait "$holder"
[[ $(code_of --max-time 5 "$base/") == 200 ]] || fail "accepting should resume below --max-connections"
stop_server TERM
# Two loops sharing the port: forty requests on fresh connections reach both, and the exit line
# counts each loop's share.
start_server "$program" --port 0 --root "$root" --threads 2
for i in $(seq 40); do
    [[ $(code_of --max-time 5 "http://127.0.0.1:$port/") == 200 ]] || fail "--threads 2: request $i failed"
done
stop_server TERM
read -r total first second < <(sed -n 's/^http_server: served \([0-9]*\) requests (per loop: \([0-9]*\) \([0-9]*\))$/\1 \2 \3/p' <<<"$server_output")
[[ ${total:-} == 40 ]] || fail "--threads 2: expected 'served 40 requests (per loop: A B)', got '$server_output'"
((first > 0 && second > 0)) || fail "--threads 2: one loop served all 40 requests ($first and $second)"
echo "threads: ok ($first + $second requests)"
echo "http_server: all checks passed"
