#!/usr/bin/env bash
# Smoke test of examples/chat_server with nc (netcat-openbsd): a listener and a talker; the
# listener sees the talker join, its lines (and not its own), a rename and the departure; the
# talker does not get its own lines back. Then 500 clients join at once (Python's socket module):
# their arrivals reach the first one in a few batched lines, not 500. Stopped by SIGTERM with a
# client still connected.
#   check_chat_server.sh PATH/TO/chat_server
set -euo pipefail
program=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
require nc netcat-openbsd
require python3 python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

start_server "$program" --port 0
echo "listening on port $port"

# The listener sends nothing (-d) and only listens; it joins first (guest1).
timeout 10 nc -d 127.0.0.1 "$port" >"$work/listener" &
listener=$!
for _ in $(seq 100); do
    grep -q '^welcome, guest1' "$work/listener" && break
    sleep 0.05
done
# The talker (guest2) says two lines, renames itself, says one more, lists who is here, leaves.
{
    sleep 0.2
    printf 'hello everyone\nsecond line\n/nick alice\nfrom alice\n/who\n'
    sleep 0.5
} | timeout 10 nc -N 127.0.0.1 "$port" >"$work/talker" || fail "the talker's nc failed"
sleep 0.3

# Waits up to 5 s for the line: under a sanitizer on a busy machine broadcasts take a while.
expect() {
    for _ in $(seq 100); do
        grep -qxF -- "$2" "$work/$1" && return 0
        sleep 0.05
    done
    fail "$1 did not get '$2'; it got:
$(cat "$work/$1")"
}
# Joins are announced in batches: guest2 may share a line with guest1.
for _ in $(seq 100); do
    grep -qxE -- '\* (guest1, )?guest2 joined' "$work/listener" && break
    sleep 0.05
done
grep -qxE -- '\* (guest1, )?guest2 joined' "$work/listener" || fail "the listener did not see guest2 join: $(cat "$work/listener")"
expect listener "guest2: hello everyone"
expect listener "guest2: second line"
expect listener "* guest2 is now alice"
expect listener "alice: from alice"
expect listener "* alice left"
expect talker "* here: guest1, alice"
grep -q '^welcome, guest2! 1 other(s) here' "$work/talker" || fail "the talker was not welcomed: $(cat "$work/talker")"
! grep -q 'hello everyone' "$work/talker" || fail "the talker got its own line back"

# A burst of 500 joins: the first client hears of all of them (names listed, or counted in
# "and N others") in far fewer lines than one per join.
python3 - "$port" <<'EOF' || fail "the burst of joins"
import re, socket, sys, time
port = int(sys.argv[1])
first = socket.create_connection(("127.0.0.1", port))
others = [socket.create_connection(("127.0.0.1", port)) for _ in range(499)]
first.settimeout(0.5)
data, deadline = b"", time.monotonic() + 10
announced = lines = 0
while time.monotonic() < deadline and announced < 500:
    try:
        chunk = first.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        break
    data += chunk
    *complete, data = data.split(b"\n")
    for line in complete:
        m = re.fullmatch(rb"\* (.*?)(?: and (\d+) others)? joined", line)
        if m:
            lines += 1
            announced += len(m.group(1).split(b", ")) + int(m.group(2) or 0)
print(f"500 joins announced to the first client in {lines} lines ({announced} names)")
if announced < 500 or lines > 100:
    sys.exit(f"expected 500 joins in at most 100 lines, got {announced} in {lines}")
EOF

stop_server TERM  # the listener is still connected
wait "$listener" || true
head -n1 "$work/listener" | grep -q '^welcome, guest1! 0 other(s) here' || fail "the listener was not welcomed"
echo "chat_server: all checks passed"
