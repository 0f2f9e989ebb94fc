# Shared by the bench scripts (sourced, after they set `root` to the repository): waiting for a
# server that printed where it listens, building what a script runs, CPU time of a process,
# medians.

# listening_port LOG PID: waits up to 10 s for PID to print "listening on HOST:PORT" into LOG
# (every example server and baseline does, started with --port 0); prints the port. Returns 1
# if PID exited first or never printed it.
listening_port() {
    local log=$1 pid=$2 port
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log")
        [[ -n $port ]] && { echo "$port"; return 0; }
        if ! kill -0 "$pid" 2>/dev/null; then
            port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log")  # its last words
            [[ -n $port ]] && { echo "$port"; return 0; }
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# configure_build BUILD: configures BUILD at -O2 unless it has a cache already.
configure_build() {
    [[ -f $1/CMakeCache.txt ]] || cmake -S "$root" -B "$1" -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS=-O2 -DCMAKE_C_FLAGS=-O2 >&2
}

# build_targets BUILD TARGET...: configures BUILD if needed, then builds the targets
# (BUILD_JOBS jobs, default one per core). Output goes to stderr.
build_targets() {
    local build=$1
    shift
    configure_build "$build"
    cmake --build "$build" --target "$@" -j "${BUILD_JOBS:-$(nproc)}" >&2
}

# cpu_ns PID: nanoseconds on a CPU so far, summed over the process's threads (so io_uring's
# kernel workers, which are threads of the process, count too).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ sum += $1 } END { printf "%.0f", sum }'; }

# median: the median of the numbers on stdin, one per line (the lower middle of an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
