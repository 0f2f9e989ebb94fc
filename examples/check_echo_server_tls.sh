#!/usr/bin/env bash
# Smoke test of examples/echo_server --tls with openssl s_client: a CA and a server certificate
# made by the openssl tool; lines, 100 kB of base64 lines and five concurrent clients, each
# verifying the server (-verify_return_error); a client without the CA is refused; stopped by
# SIGTERM, exit status 0.
#   check_echo_server_tls.sh PATH/TO/echo_server
set -euo pipefail
program=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
require openssl openssl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make_certificates "$work"

start_server "$program" --port 0 --tls "$work/server.pem" "$work/server.key"
echo "listening on port $port"

# s_client sends what its stdin gives (-nocommands: a line starting with Q or K is data, not a
# command) and prints what comes back. Its stdin stays open a moment, so that the echoes arrive
# before it closes (-no_ign_eof: it ends the session at stdin's end).
tls_client() {
    local input=$1 linger=$2
    (cat "$input"; sleep "$linger") | timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/ca.pem" \
        -verify_hostname localhost -verify_return_error -quiet -no_ign_eof -nocommands 2>/dev/null
}

printf 'hello\nworld\n' >"$work/lines"
reply=$(tls_client "$work/lines" 1) || fail "s_client failed"
[[ $reply == $'hello\nworld' ]] || fail "expected the two lines back over TLS, got '$reply'"

head -c 75000 /dev/urandom | base64 >"$work/in"
tls_client "$work/in" 2 >"$work/out" || fail "s_client failed on the large payload"
cmp -s "$work/in" "$work/out" || fail "the echo of $(wc -c <"$work/in") bytes differs over TLS ($(wc -c <"$work/out") came back)"

pids=()
for i in $(seq 5); do
    printf 'client %s\n' "$i" >"$work/line$i"
    (tls_client "$work/line$i" 1 >"$work/client$i") &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a concurrent TLS client failed"; done
for i in $(seq 5); do
    [[ $(cat "$work/client$i") == "client $i" ]] || fail "client $i got '$(cat "$work/client$i")'"
done

# Without the CA the client refuses the certificate; the server goes on.
if printf 'x\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" -verify_return_error -quiet >/dev/null 2>&1; then
    fail "s_client without the CA accepted the server"
fi
reply=$(tls_client "$work/lines" 1) || fail "s_client failed after a refused client"
[[ $reply == $'hello\nworld' ]] || fail "the server stopped serving after a refused client: '$reply'"

stop_server TERM
echo "echo_server --tls: all checks passed"
