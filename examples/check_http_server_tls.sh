#!/usr/bin/env bash
# Smoke test of examples/http_server --tls with real clients: certificates made by the openssl
# tool (a CA and a server certificate for localhost and 127.0.0.1), curl --cacert (a page, a
# 300 kB file, keep-alive, and a refused connection without the CA), openssl s_client (TLS 1.3
# and the verification result) and a 2-second wrk run over https; stopped by SIGTERM.
#   check_http_server_tls.sh PATH/TO/http_server
set -euo pipefail
program=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
require curl curl
require wrk wrk
require openssl openssl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make_certificates "$work"
mkdir "$work/root"
head -c 300000 /dev/urandom >"$work/root/blob.bin"

start_server "$program" --port 0 --root "$work/root" --tls "$work/server.pem" "$work/server.key"
base="https://localhost:$port"
echo "listening on port $port"

page=$(curl -sf --cacert "$work/ca.pem" "$base/") || fail "GET / over https failed"
[[ $page == *"Hello from coring"* ]] || fail "unexpected hello page: $page"
curl -sf --cacert "$work/ca.pem" -o "$work/blob.copy" "$base/files/blob.bin" || fail "GET /files/blob.bin over https"
cmp -s "$work/root/blob.bin" "$work/blob.copy" || fail "the 300 kB file came back different over https"
connects=$(curl -s --cacert "$work/ca.pem" -o /dev/null -o /dev/null -w '%{num_connects}\n' "$base/" "$base/files/blob.bin" | tr '\n' ' ')
[[ $connects == "1 0 " ]] || fail "the TLS connection was not kept alive: num_connects $connects"
# Without the CA, curl refuses the certificate (exit 60), and the server keeps serving.
status=0
curl -s -o /dev/null "$base/" || status=$?
[[ $status -eq 60 ]] || fail "curl without the CA should fail verification (60), got $status"
session=$(openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/ca.pem" -verify_hostname localhost -brief </dev/null 2>&1) ||
    fail "openssl s_client failed: $session"
grep -q 'Protocol version: TLSv1.3' <<<"$session" || fail "not TLS 1.3: $session"
grep -q 'Verification: OK' <<<"$session" || fail "s_client did not verify the server: $session"

wrk_out=$(wrk -t1 -c20 -d2s "$base/" 2>&1) || fail "wrk over https failed: $wrk_out"
echo "$wrk_out"
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$wrk_out")
[[ -n $requests && $requests -gt 200 ]] || fail "wrk made too few requests over https: $wrk_out"
! grep -q 'Non-2xx' <<<"$wrk_out" || fail "wrk saw errors: $wrk_out"
! grep -q 'Socket errors' <<<"$wrk_out" || fail "wrk saw socket errors: $wrk_out"

stop_server TERM
echo "http_server --tls: all checks passed"
