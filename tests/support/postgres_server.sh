#!/usr/bin/env bash
# A throw-away PostgreSQL server for the postgres bridge's tests, its example's smoke test and
# its benchmark: initdb into DIR/data (trust authentication, user postgres, UTF8, C locale), then
# postgres on a free port of 127.0.0.1 with its Unix socket in DIR, fsync off and small
# buffers, so that it starts in a second or two. PostgreSQL refuses to run as root: as root the
# server runs as the postgres user (Debian's postgresql package makes it), else as nobody, and
# DIR is given to that user.
#
#   postgres_server.sh start DIR [--ssl]
#                                   starts the server; prints its port; exit 77 (skip) when the
#                                   server's programs are missing, 1 if it fails (with its log).
#                                   --ssl: SSL on too, with a self-signed certificate for
#                                   localhost made by the openssl tool (DIR/server.crt)
#   postgres_server.sh stop DIR     stops it (immediate shutdown) and removes DIR
#   postgres_server.sh bindir       prints the directory of initdb, postgres and pg_ctl
#
# The programs are looked for in $CORING_PG_BINDIR, then /usr/lib/postgresql/<newest>/bin
# (Debian's layout; pg_config --bindir names the client's directory, which may lack the
# server), then beside an initdb on PATH. DIR's parent directories must be searchable by the
# server's user (/tmp is).
set -euo pipefail

pg_bindir() {
    local dir candidates=()
    [[ -n ${CORING_PG_BINDIR:-} ]] && candidates+=("$CORING_PG_BINDIR")
    while IFS= read -r dir; do candidates+=("$dir"); done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r)
    if command -v initdb >/dev/null 2>&1; then candidates+=("$(dirname "$(command -v initdb)")"); fi
    for dir in "${candidates[@]}"; do
        if [[ -x $dir/initdb && -x $dir/postgres && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# as_server_user COMMAND...: runs COMMAND as the server's user (root cannot run PostgreSQL).
server_user=
as_server_user() {
    if [[ -z $server_user ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$server_user" -- "$@"
    else
        setpriv --reuid="$server_user" --regid="$(id -g "$server_user")" --clear-groups -- "$@"
    fi
}
choose_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    if id postgres >/dev/null 2>&1; then server_user=postgres; else server_user=nobody; fi
}

command=${1:-}
case $command in
bindir)
    pg_bindir || { echo "SKIP: the PostgreSQL server is not installed (Debian package postgresql)" >&2; exit 77; }
    ;;
start)
    dir=${2:?usage: postgres_server.sh start DIR}
    bindir=$(pg_bindir) || { echo "SKIP: the PostgreSQL server is not installed (Debian package postgresql)" >&2; exit 77; }
    choose_user
    mkdir -p "$dir"
    [[ -n $server_user ]] && chown -R "$server_user" "$dir"
    chmod 0700 "$dir"
    ssl_options=
    if [[ ${3:-} == --ssl ]]; then
        command -v openssl >/dev/null 2>&1 || { echo "SKIP: --ssl needs the openssl tool" >&2; exit 77; }
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/server.key" -out "$dir/server.crt" \
            -days 2 -subj /CN=localhost >/dev/null 2>&1 || { echo "openssl could not make a certificate" >&2; exit 1; }
        chmod 0600 "$dir/server.key"
        [[ -n $server_user ]] && chown "$server_user" "$dir/server.key" "$dir/server.crt"
        ssl_options="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
    fi
    if ! as_server_user "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
        echo "initdb failed:" >&2
        cat "$dir/initdb.log" >&2
        exit 1
    fi
    # A port chosen at random; another process may hold it: then try another.
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -s \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60 -c autovacuum=off $ssl_options" \
            start >"$dir/pg_ctl.log" 2>&1; then
            echo "$port" >"$dir/port"
            echo "$port"
            exit 0
        fi
        grep -q -i 'could not bind\|address already in use\|could not create' "$dir/server.log" 2>/dev/null || break
    done
    echo "postgres did not start:" >&2
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
    exit 1
    ;;
stop)
    dir=${2:?usage: postgres_server.sh stop DIR}
    if [[ -f $dir/data/postmaster.pid ]]; then
        choose_user
        bindir=$(pg_bindir) || true
        if [[ -z $bindir ]] || ! as_server_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 20 -s stop >/dev/null 2>&1; then
            pid=$(head -n1 "$dir/data/postmaster.pid" 2>/dev/null || true)
            [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: postgres_server.sh start DIR | stop DIR | bindir" >&2
    exit 2
    ;;
esac
