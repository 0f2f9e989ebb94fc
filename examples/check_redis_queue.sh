#!/usr/bin/env bash
# Smoke test of examples/redis_queue (on the Redis bridge) against a redis-server started here in
# a temporary folder, on a free port of 127.0.0.1 and a Unix socket: the queue runs with
# XAUTOCLAIM over TCP and with XPENDING + XCLAIM over the Unix socket; each time worker-0 dies
# holding jobs, the janitor claims exactly those, every job is processed once and nothing stays
# pending (checked again with redis-cli). Then a refused connection: exit status 1 and the errno's
# message. Exits 77 (SKIP) without redis-server.
#   check_redis_queue.sh PATH/TO/redis_queue
set -euo pipefail
program=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
require redis-server redis-server
require redis-cli redis-tools

dir=$(mktemp -d)
redis_pid=
cleanup() {
    if [[ -n $redis_pid ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# redis-server cannot listen on port 0: take a free port, and another if it was taken meanwhile.
socket=$dir/redis.sock
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$socket" --unixsocketperm 700 --dir "$dir" \
        --save '' --appendonly no --daemonize no --logfile "$dir/redis.log" &
    redis_pid=$!
    for _ in $(seq 200); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.05
    done
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
    [[ $attempt -eq 5 ]] && fail "redis-server did not start: $(cat "$dir/redis.log")"
done

# check OUTPUT JOBS METHOD STREAM
check() {
    local out=$1 jobs=$2 method=$3 stream=$4 held claimed
    grep -q "^stream $stream, group workers: .* a janitor ($method)\$" <<<"$out" || fail "no start line in: $out"
    held=$(sed -n 's/^worker-0: dies holding \([0-9][0-9]*\) unacknowledged jobs$/\1/p' <<<"$out")
    [[ -n $held && $held -ge 1 ]] || fail "worker-0 should die holding jobs: $out"
    grep -q "^janitor: XPENDING: [0-9]* pending, held by .*worker-0 ($held)" <<<"$out" || fail "XPENDING should show worker-0's $held jobs: $out"
    claimed=$(sed -n "s/^janitor: claimed \([0-9][0-9]*\) jobs idle for [0-9]* ms or more ($method)\$/\1/p" <<<"$out" | paste -sd+ | bc)
    [[ $claimed == "$held" ]] || fail "the janitor should claim the $held jobs worker-0 left (claimed $claimed): $out"
    grep -q "^producers: $jobs jobs added\$" <<<"$out" || fail "expected $jobs jobs added: $out"
    grep -q "^done: $jobs jobs, $jobs processed (janitor $held, worker-0 0, worker-1 [0-9]*, worker-2 [0-9]*), $held reclaimed, 0 pending, 0 duplicates\$" <<<"$out" ||
        fail "unexpected summary: $(tail -n1 <<<"$out")"
    # Redis agrees: every entry is there, acknowledged, with one outcome each.
    [[ $(redis-cli -p "$port" XLEN "$stream") == "$jobs" ]] || fail "XLEN $stream is not $jobs"
    [[ $(redis-cli -p "$port" XPENDING "$stream" workers | head -n1) == 0 ]] || fail "entries left pending in $stream"
    [[ $(redis-cli -p "$port" HLEN "$stream:results") == "$jobs" ]] || fail "HLEN $stream:results is not $jobs"
    [[ $(redis-cli -p "$port" HGET "$stream:results" 100 | cut -d' ' -f2) == 5050 ]] || fail "job 100's result is not 5050"
}

out=$(timeout 60 "$program" --port "$port" --stream smoke:auto --jobs 300) || fail "redis_queue (XAUTOCLAIM) failed: $out"
echo "$out"
check "$out" 300 XAUTOCLAIM smoke:auto

out=$(timeout 60 "$program" --unix "$socket" --stream smoke:xpending --jobs 120 --producers 2 --claim xpending --min-idle 100) ||
    fail "redis_queue (XPENDING + XCLAIM) failed: $out"
echo "$out"
check "$out" 120 "XPENDING + XCLAIM" smoke:xpending

# A refused connection: exit status 1 and the errno's message.
status=0
closed=$(free_port)
out=$(timeout 30 "$program" --port "$closed" 2>&1) || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a refused connection should make redis_queue exit with 1 (got $status)"
grep -q "^redis_queue: coring::redis: connect 127.0.0.1:$closed: Connection refused\$" <<<"$out" || fail "expected the refusal in: $out"
echo "redis_queue: all checks passed"
