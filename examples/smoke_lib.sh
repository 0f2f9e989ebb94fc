# Shared by the smoke tests of the example servers (sourced by check_*.sh): start a server on
# port 0, read its port from the "listening on HOST:PORT" line, stop it with a signal and check
# that it exits with status 0.

# The Debian package that provides a client, or exit 77 (ctest's SKIP) if it is missing.
require() {
    local tool=$1 package=$2
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (Debian package $package; build.sh installs it)"
        exit 77
    fi
}

fail() {
    echo "FAIL: $*" >&2
    [[ -n ${server_log:-} && -f $server_log ]] && { echo "--- server output:" >&2; cat "$server_log" >&2; }
    [[ -n ${server_pid:-} ]] && kill -KILL "$server_pid" 2>/dev/null
    exit 1
}

# start_server PROGRAM ARGS...: sets server_pid, server_log and port.
start_server() {
    server_log=$(mktemp)
    "$@" >"$server_log" 2>&1 &
    server_pid=$!
    port=
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$server_log")
        [[ -n $port ]] && break
        kill -0 "$server_pid" 2>/dev/null || fail "$1 exited before listening"
        sleep 0.05
    done
    [[ -n $port ]] || fail "$1 did not print 'listening on HOST:PORT'"
}

# stop_server SIGNAL: the server must exit by itself, with status 0, within 10 seconds. What it
# printed is left in server_output.
stop_server() {
    local signal=$1 status=0
    kill -"$signal" "$server_pid"
    for _ in $(seq 200); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$server_pid" 2>/dev/null && fail "the server did not stop on SIG$signal"
    wait "$server_pid" || status=$?
    [[ $status -eq 0 ]] || fail "the server exited with status $status after SIG$signal"
    server_pid=
    server_output=$(cat "$server_log")
    rm -f "$server_log"
}

# make_certificates DIR: a CA (DIR/ca.pem) and a server certificate it signed for localhost and
# 127.0.0.1 (DIR/server.pem, DIR/server.key), made by the openssl tool (P-256 keys, 2 days).
make_certificates() {
    local dir=$1 key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    openssl req -x509 $key -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj /CN=coring-example-ca 2>/dev/null
    openssl req $key -keyout "$dir/server.key" -out "$dir/server.csr" -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
        -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
}
