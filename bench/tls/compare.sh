#!/usr/bin/env bash
# TLS echo and handshakes (issue 15): coring's TLS streams (examples/echo_server --streams --tls)
# beside Boost.Asio's ssl::stream (bench/tls/echo_asio_tls), both on the system's OpenSSL, with
# the plaintext servers of bench/echo (coring streams, Boost.Asio) as reference rows. Each server
# is pinned to one core, the load generator to the other; the figure is the server's CPU time
# (user + system, all threads, /proc/PID/task/*/schedstat) per round trip or per handshake, and
# its ratio to Asio TLS's.
#
#   bench/tls/compare.sh [build-dir]     (default build/release; configured and built if needed)
#
# 1. Echo: TLS_CONNECTIONS connections play ping-pong with messages of each of TLS_SIZES bytes
#    (one TLS record each), driven by bench/tls/tls_load (TLS) or bench/echo/echo_load (plain).
#    Then the TLS overhead: coring's (and Asio's) TLS CPU per round trip minus its plaintext CPU
#    per round trip, per byte moved (the server decrypts size bytes and encrypts size bytes per
#    round trip), beside what `openssl speed -evp CIPHER` (pinned like the servers) takes to
#    encrypt and decrypt those bytes, CIPHER being the suite the connections negotiated.
# 2. Handshakes: TLS_HANDSHAKE_CONNECTIONS connections each loop on connect, full TLS 1.3
#    handshake (X25519, no resumption), one 64-byte echo, close_notify both ways, close.
#
# Environment: TLS_SECONDS (measured seconds per run, 5), TLS_WARMUP (1), TLS_SIZES
# ("1024 16384"), TLS_CONNECTIONS (50), TLS_HANDSHAKE_CONNECTIONS (TLS_CONNECTIONS), TLS_RUNS
# (runs per configuration, the median is kept: 3), TLS_SPEED_SECONDS (per `openssl speed`
# figure, an integer: 1), TLS_SKIP_BUILD=1 (use what is built), TLS_BUILD_JOBS (nproc), and
# TLS_ASIO / TLS_CORING / TLS_ASIO_PLAIN / TLS_LOAD / TLS_ECHO_LOAD to name the binaries. Exits
# 77 (skipped) without the Asio TLS server or the openssl tool: nothing to compare with.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../support/bench_lib.sh
source "$root/bench/support/bench_lib.sh"
build=${1:-$root/build/release}
seconds=${TLS_SECONDS:-5}
warmup=${TLS_WARMUP:-1}
sizes=${TLS_SIZES:-1024 16384}
connections=${TLS_CONNECTIONS:-50}
handshake_connections=${TLS_HANDSHAKE_CONNECTIONS:-$connections}
runs=${TLS_RUNS:-3}
speed_seconds=${TLS_SPEED_SECONDS:-1}
[[ $speed_seconds =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: TLS_SPEED_SECONDS is a whole number of seconds (openssl speed -seconds)" >&2; exit 2; }

if ! command -v openssl >/dev/null; then
    echo "compare.sh: no openssl tool (Debian package openssl) to make certificates: skipped" >&2
    exit 77
fi
if [[ -z ${TLS_SKIP_BUILD:-} ]]; then
    configure_build "$build"
    targets=(echo_server echo_load tls_load)
    grep -q '^CORING_BOOST_ASIO_INCLUDE_DIR:PATH=/' "$build/CMakeCache.txt" && targets+=(echo_asio echo_asio_tls)
    BUILD_JOBS=${TLS_BUILD_JOBS:-$(nproc)} build_targets "$build" "${targets[@]}"
fi
asio=${TLS_ASIO:-$build/bench/tls/echo_asio_tls}
coring=${TLS_CORING:-$build/examples/echo_server}
asio_plain=${TLS_ASIO_PLAIN:-$build/bench/echo/echo_asio}
load=${TLS_LOAD:-$build/bench/tls/tls_load}
echo_load=${TLS_ECHO_LOAD:-$build/bench/echo/echo_load}
[[ -x $load ]] || { echo "compare.sh: no TLS load generator at $load" >&2; exit 1; }
[[ -x $coring ]] || { echo "compare.sh: no echo_server at $coring" >&2; exit 1; }
# Every figure is compared with Asio TLS's (77: ctest's SKIP_RETURN_CODE).
[[ -x $asio ]] || { echo "compare.sh: no Boost.Asio TLS server at $asio (needs the Boost headers, libboost-dev): skipped" >&2; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source-path=SCRIPTDIR source=../../examples/smoke_lib.sh
source "$root/examples/smoke_lib.sh"  # make_certificates: a P-256 CA and a server certificate for localhost and 127.0.0.1
make_certificates "$work"
cert=$work/server.pem
key=$work/server.key
ca=$work/ca.pem

# Server on core 0, load on core 1 (no pinning on a single core).
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    pin_server=(taskset -c 0)
    pin_load=(taskset -c 1)
else
    echo "compare.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    pin_server=()
    pin_load=()
fi

names=(asio-tls coring-tls coring-plain asio-plain)
declare -A command=(
    [asio-tls]="$asio --cert $cert --key $key"
    [coring-tls]="$coring --streams --tls $cert $key"
    [coring-plain]="$coring --streams"
    [asio-plain]="$asio_plain --buffer 16384"
)
declare -A label=(
    [asio-tls]="Boost.Asio ssl::stream"
    [coring-tls]="coring TLS streams"
    [coring-plain]="coring streams (plain)"
    [asio-plain]="Boost.Asio (plain)"
)

# run_one NAME MODE CONNECTIONS SIZE: prints "rate cpu_ns user_ns cipher version group" (MODE echo
# or handshake; the plaintext servers, echo only, print "-" for what they did not negotiate).
run_one() {
    local name=$1 mode=$2 conns=$3 size=$4 log port="" pid result status=0
    log=$(mktemp)
    # shellcheck disable=SC2086
    "${pin_server[@]}" ${command[$name]} --port 0 >"$log" 2>&1 &
    pid=$!
    if ! port=$(listening_port "$log" "$pid"); then
        echo "compare.sh: $name did not start:" >&2
        cat "$log" >&2
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$log"
        return 1
    fi
    if [[ $name == *-tls ]]; then
        result=$("${pin_load[@]}" "$load" --port "$port" --cafile "$ca" --servername localhost --mode "$mode" --connections "$conns" \
            --size "$size" --seconds "$seconds" --warmup "$warmup" --server-pid "$pid") || status=$?
    else
        result=$("${pin_load[@]}" "$echo_load" --port "$port" --connections "$conns" --size "$size" --seconds "$seconds" \
            --warmup "$warmup" --server-pid "$pid") || status=$?
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if ((status != 0)); then
        echo "compare.sh: $name ($mode, $conns connections, $size bytes) failed; server output:" >&2
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    local per=rt
    [[ $mode == handshake ]] && per=handshake
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
    local cipher version group
    cipher=$(field cipher)
    version=$(field version)
    group=$(field group)
    echo "$(field rate) $(field "cpu_per_${per}_ns") $(field "user_per_${per}_ns") ${cipher:--} ${version:--} ${group:--}"
}

us() { awk -v c="$1" 'BEGIN { printf "%.2f", c / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

# openssl_cipher SUITE: the `openssl speed -evp` name of a TLS 1.3 suite's AEAD.
openssl_cipher() {
    case $1 in
        TLS_AES_256_GCM_SHA384) echo aes-256-gcm ;;
        TLS_AES_128_GCM_SHA256) echo aes-128-gcm ;;
        TLS_CHACHA20_POLY1305_SHA256) echo chacha20-poly1305 ;;
        *) echo unknown ;;
    esac
}

# speed CIPHER SIZE [-decrypt]: bytes per second of `openssl speed` on SIZE-byte blocks, on the
# servers' core; nothing if it failed.
speed() {
    { "${pin_server[@]}" openssl speed -mr -seconds "$speed_seconds" -evp "$1" -bytes "$2" ${3:+"$3"} 2>/dev/null || true; } |
        awk -F: '/^\+F:/ { print $4 }' | tail -1
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(openssl version | cut -d' ' -f1-2), $(date -u +%Y-%m-%d)"
echo "${seconds} s measured after ${warmup} s of warm-up; median of ${runs} interleaved runs; server CPU per round trip or handshake"
echo
echo "Echo: ${connections} connections, ping-pong of one message (one TLS record) at a time per connection"
printf '%-24s %6s %14s %12s %13s %13s\n' server size "round trips/s" "CPU/RT (us)" "vs Asio TLS" "user/RT (us)"
failed=0
negotiated=
declare -A tls_cpu=() plain_cpu=()
for size in $sizes; do
    # Interleaved: each round runs every server once, so that the machine's drift (a virtual
    # machine's neighbours, another build) spreads over all of them alike.
    declare -A rates=() cpus=() users=()
    for _ in $(seq "$runs"); do
        for name in "${names[@]}"; do
            binary=${command[$name]%% *}
            [[ -x $binary ]] || continue
            if out=$(run_one "$name" echo "$connections" "$size"); then
                read -r r c u suite version group <<<"$out"
                rates[$name]+="$r "
                cpus[$name]+="$c "
                users[$name]+="$u "
                [[ $suite != - ]] && negotiated="$version $suite $group"
            else
                failed=1
            fi
        done
    done
    base=
    for name in "${names[@]}"; do
        [[ -n ${cpus[$name]:-} ]] || continue
        rate=$(tr ' ' '\n' <<<"${rates[$name]}" | grep . | median)
        cpu=$(tr ' ' '\n' <<<"${cpus[$name]}" | grep . | median)
        user=$(tr ' ' '\n' <<<"${users[$name]}" | grep . | median)
        [[ $name == asio-tls ]] && base=$cpu
        case $name in
            coring-tls) tls_cpu[coring,$size]=$cpu ;;
            asio-tls) tls_cpu[asio,$size]=$cpu ;;
            coring-plain) plain_cpu[coring,$size]=$cpu ;;
            asio-plain) plain_cpu[asio,$size]=$cpu ;;
        esac
        printf '%-24s %6s %14.0f %12s %13s %13s\n' "${label[$name]}" "$size" "$rate" "$(us "$cpu")" "$(ratio "$cpu" "${base:-0}")" "$(us "$user")"
    done
    unset rates cpus users
done

echo
echo "negotiated: ${negotiated:-nothing (no TLS run succeeded)}"
suite=$(awk '{ print $2 }' <<<"$negotiated")
cipher=$(openssl_cipher "${suite:-}")
echo "TLS overhead per round trip (TLS CPU/RT - plaintext CPU/RT of the same library), per byte moved (2 x size: decrypted in, encrypted out),"
echo "beside openssl speed -evp $cipher (${speed_seconds} s per figure, on the servers' core): encrypt size + decrypt size bytes"
printf '%6s %16s %12s %16s %12s %16s %12s\n' size "coring TLS (us)" "ns/byte" "Asio TLS (us)" "ns/byte" "$cipher (us)" "ns/byte"
for size in $sizes; do
    coring_extra=- coring_byte=- asio_extra=- asio_byte=- crypto=- crypto_byte=-
    if [[ -n ${tls_cpu[coring,$size]:-} && -n ${plain_cpu[coring,$size]:-} ]]; then
        coring_extra=$(awk -v t="${tls_cpu[coring,$size]}" -v p="${plain_cpu[coring,$size]}" 'BEGIN { printf "%.2f", (t - p) / 1000 }')
        coring_byte=$(awk -v t="${tls_cpu[coring,$size]}" -v p="${plain_cpu[coring,$size]}" -v s="$size" 'BEGIN { printf "%.3f", (t - p) / (2 * s) }')
    fi
    if [[ -n ${tls_cpu[asio,$size]:-} && -n ${plain_cpu[asio,$size]:-} ]]; then
        asio_extra=$(awk -v t="${tls_cpu[asio,$size]}" -v p="${plain_cpu[asio,$size]}" 'BEGIN { printf "%.2f", (t - p) / 1000 }')
        asio_byte=$(awk -v t="${tls_cpu[asio,$size]}" -v p="${plain_cpu[asio,$size]}" -v s="$size" 'BEGIN { printf "%.3f", (t - p) / (2 * s) }')
    fi
    if [[ $cipher != unknown ]]; then
        encrypt=$(speed "$cipher" "$size")
        decrypt=$(speed "$cipher" "$size" -decrypt)
        if [[ -n $encrypt && -n $decrypt ]]; then
            crypto=$(awk -v e="$encrypt" -v d="$decrypt" -v s="$size" 'BEGIN { printf "%.2f", (s / e + s / d) * 1e6 }')
            crypto_byte=$(awk -v e="$encrypt" -v d="$decrypt" 'BEGIN { printf "%.3f", (1 / e + 1 / d) / 2 * 1e9 }')
        fi
    fi
    printf '%6s %16s %12s %16s %12s %16s %12s\n' "$size" "$coring_extra" "$coring_byte" "$asio_extra" "$asio_byte" "$crypto" "$crypto_byte"
done

echo
echo "Handshakes: ${handshake_connections} connections, each: connect, full TLS 1.3 handshake, one 64-byte echo, close_notify, close"
printf '%-24s %14s %12s %13s %13s %13s\n' server "handshakes/s" "CPU/hs (us)" "vs Asio TLS" "rate vs Asio" "user/hs (us)"
declare -A rates=() cpus=() users=()
for _ in $(seq "$runs"); do
    for name in asio-tls coring-tls; do
        if out=$(run_one "$name" handshake "$handshake_connections" 64); then
            read -r r c u suite version group <<<"$out"
            rates[$name]+="$r "
            cpus[$name]+="$c "
            users[$name]+="$u "
            [[ $suite != - ]] && negotiated="$version $suite $group"
        else
            failed=1
        fi
    done
done
base_cpu=
base_rate=
for name in asio-tls coring-tls; do
    [[ -n ${cpus[$name]:-} ]] || continue
    rate=$(tr ' ' '\n' <<<"${rates[$name]}" | grep . | median)
    cpu=$(tr ' ' '\n' <<<"${cpus[$name]}" | grep . | median)
    user=$(tr ' ' '\n' <<<"${users[$name]}" | grep . | median)
    if [[ $name == asio-tls ]]; then
        base_cpu=$cpu
        base_rate=$rate
    fi
    printf '%-24s %14.0f %12s %13s %13s %13s\n' "${label[$name]}" "$rate" "$(us "$cpu")" "$(ratio "$cpu" "${base_cpu:-0}")" \
        "$(ratio "$rate" "${base_rate:-0}")" "$(us "$user")"
done
echo "negotiated: ${negotiated:-nothing}"
exit "$failed"
