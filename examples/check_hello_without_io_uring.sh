#!/usr/bin/env bash
# examples/hello where the loop cannot start: one line on stderr that says why, and exit status
# 1 (not an abort). The ring is made impossible by a locked-memory limit of 4 KiB without
# CAP_IPC_LOCK (root runs it as nobody), which kernels that charge rings to RLIMIT_MEMLOCK refuse
# with ENOMEM; on kernels that do not, hello simply runs, and the test is skipped (77).
#   check_hello_without_io_uring.sh PATH/TO/hello
set -euo pipefail
program=$1
run=(bash -c 'ulimit -l 4 && exec "$0"' "$program")
if [[ $(id -u) -eq 0 ]]; then
    command -v setpriv >/dev/null || { echo "SKIP: setpriv is not installed (Debian package util-linux)"; exit 77; }
    run=(setpriv --reuid=65534 --regid=65534 --clear-groups "${run[@]}")
fi
# LeakSanitizer (the asan build) stops the world with ptrace, which an unprivileged user may be
# refused; leaks are what the other tests check.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
err=$(mktemp)
trap 'rm -f "$err"' EXIT
status=0
"${run[@]}" >/dev/null 2>"$err" || status=$?
if ((status == 0)); then
    echo "SKIP: this kernel does not charge io_uring rings to RLIMIT_MEMLOCK"
    exit 77
fi
cat "$err"
((status == 1)) || { echo "FAIL: expected exit status 1, got $status"; exit 1; }
(($(wc -l <"$err") == 1)) || { echo "FAIL: expected one line on stderr"; exit 1; }
grep -q '^hello: coring: cannot create an io_uring instance (io_uring_setup failed with ENOMEM).*RLIMIT_MEMLOCK' "$err" ||
    { echo "FAIL: the line does not say why"; exit 1; }
echo "hello without io_uring: one line, exit status 1"
