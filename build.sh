#!/usr/bin/env bash
# coring's entry point on a fresh Debian 12 / Ubuntu machine: installs what is missing (as root;
# otherwise prints the one apt-get line to run), configures, builds and runs.
#
#   ./build.sh example [config]   build and run the flagship example (examples/hello.cpp)
#   ./build.sh test [config]      build everything and run the whole test suite with ctest
#
# config: release (default: g++ -O2 -Werror), debug (g++ -O0 -g),
#         asan (g++ -fsanitize=address,undefined, LeakSanitizer on), clang (clang++ -O2),
#         test only: tsan (g++ -fsanitize=thread, the tests labelled threads: ctest -L threads),
#         fuzz (clang++ libFuzzer harnesses of fuzz/, CORING_FUZZ_SECONDS each, default 20)
# Builds go to build/<config>. CORING_JOBS overrides the parallelism (default: nproc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command=${1:-}
config=${2:-release}
jobs=${CORING_JOBS:-$(nproc)}

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}
[[ $command == example || $command == test ]] || usage
[[ $command == example && ( $config == tsan || $config == fuzz ) ]] && usage

# Debian package names; each is installed only if missing.
# nginx: the sendfile benchmark's baseline and the curl bridge's test server (each starts its own
# instance in a temporary folder). The bridges (issue 19): libcurl, hiredis, libpq and libgumbo
# (examples/scrape's HTML parser), and the servers their tests start: redis-server, postgresql;
# python3-aiohttp is the HTTP benchmark's baseline.
packages=(g++ cmake make pkg-config liburing-dev catch2 libbenchmark-dev python3 netcat-openbsd curl wrk fio libboost1.81-dev libssl-dev openssl
    nginx libcurl4-openssl-dev libhiredis-dev libpq-dev libgumbo-dev redis-server postgresql python3-aiohttp)
[[ $config == clang || $config == fuzz ]] && packages+=(clang)
[[ $config == asan || $config == fuzz ]] && packages+=(libclang-rt-dev)

ensure_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -eq 0 ]]; then
        echo "build.sh: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "build.sh: missing packages. Run:"
        echo "    sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
}

# What does not depend on the flags runs in the release build alone: the header self-containment
# check, the consumer projects (they build with their own flags) and the benchmarks (built where
# they are timed). CI runs six configurations on two cores: what is built once saves minutes.
case $config in
    release) cxx=g++ cxxflags="-O2" extra=(-DCORING_WERROR=ON) ;;
    debug) cxx=g++ cxxflags="-O0 -g" extra=(-DCORING_HEADER_CHECK=OFF -DCORING_BUILD_BENCHMARKS=OFF -DCORING_CONSUMER_TESTS=OFF) ;;
    # -g1 (functions and line tables: what the sanitizers' reports print) compiles in 60% of -g's time.
    asan) cxx=g++ cxxflags="-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
        extra=(-DCORING_HEADER_CHECK=OFF -DCORING_BUILD_BENCHMARKS=OFF -DCORING_CONSUMER_TESTS=OFF) ;;
    clang) cxx=clang++ cxxflags="-O2" extra=(-DCORING_HEADER_CHECK=OFF -DCORING_BUILD_BENCHMARKS=OFF) ;;
    tsan) cxx=g++ cxxflags="-O1 -g -fsanitize=thread" extra=(-DCORING_HEADER_CHECK=OFF -DCORING_BUILD_EXAMPLES=OFF -DCORING_BUILD_BENCHMARKS=OFF) ;;
    # fuzz/CMakeLists.txt adds the sanitizers to the harnesses alone.
    fuzz) cxx=clang++ cxxflags="" extra=(-DCORING_FUZZ=ON -DCORING_BUILD_TESTS=OFF -DCORING_BUILD_EXAMPLES=OFF -DCORING_BUILD_BENCHMARKS=OFF -DCORING_INSTALL=OFF) ;;
    *) echo "build.sh: unknown config '$config'" >&2; usage ;;
esac

ensure_packages
build="$root/build/$config"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$cxxflags" "${extra[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [[ $command == example ]]; then
    cmake --build "$build" --target hello -j "$jobs"
    exec "$build/examples/hello"
fi

if [[ $config == fuzz ]]; then
    # Each harness on a copy of its seed corpus (what it finds stays out of the tree); a crash,
    # a leak or a failed check stops the run, and the input is saved under build/fuzz/artifacts/.
    seconds=${CORING_FUZZ_SECONDS:-20}
    harnesses=()
    for source in "$root"/fuzz/*.cpp; do harnesses+=("$(basename "$source" .cpp)"); done
    targets=()
    for name in "${harnesses[@]}"; do targets+=(--target "fuzz.$name"); done
    cmake --build "$build" -j "$jobs" "${targets[@]}"
    mkdir -p "$build/artifacts"
    for name in "${harnesses[@]}"; do
        corpus=$(mktemp -d)
        cp "$root/fuzz/corpus/$name"/* "$corpus"/
        echo "build.sh: fuzzing $name for $seconds s"
        status=0
        "$build/fuzz/fuzz.$name" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" "$corpus" \
            >"$build/artifacts/$name.log" 2>&1 || status=$?
        rm -rf "$corpus"
        grep -E '^(Done|stat::number_of_executed_units)' "$build/artifacts/$name.log" || true
        if ((status != 0)); then
            tail -n 60 "$build/artifacts/$name.log"
            echo "build.sh: fuzz.$name failed (exit $status); reproduce with: $build/fuzz/fuzz.$name $build/artifacts/$name-<crash file>" >&2
            exit 1
        fi
    done
    exit 0
fi

if [[ $config == tsan ]]; then
    # Only the tests whose code crosses threads (the label threads, tests/CMakeLists.txt).
    cmake --build "$build" -j "$jobs" --target coring_thread_tests
    cd "$build"
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    # ThreadSanitizer maps its shadow memory at fixed addresses; with the kernel's larger ASLR
    # ranges (vm.mmap_rnd_bits above 28) it aborts with "unexpected memory mapping". setarch -R
    # turns address randomisation off for ctest and the tests it starts.
    norandom=()
    setarch "$(uname -m)" -R true 2>/dev/null && norandom=(setarch "$(uname -m)" -R)
    exec "${norandom[@]}" ctest --output-on-failure -j "$jobs" --timeout 600 -L threads
fi

cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 600
