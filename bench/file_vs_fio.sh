#!/usr/bin/env bash
# 4 KiB random reads from a 1 GiB file at queue depth 32: coring (bench/file_bench) beside fio's
# io_uring engine, on the same file, interleaved, and the ratio of their IOPS (target: >= 0.95).
#
#   bench/file_vs_fio.sh [build-dir]      (default: build/release)
#
# Environment: CORING_FILE_BENCH_PATH (default <build>/bench/file_bench.data),
# CORING_FILE_BENCH_BYTES (default 1 GiB), CORING_FIO_RUNTIME seconds per run (default 10),
# CORING_FIO_ROUNDS interleaved rounds (default 3). The data file is written once and reused.
# O_DIRECT is used when the file system supports it (fio --direct=1); otherwise both run buffered
# and the figures measure the page cache, which the report says.
#
# fio submits each I/O the moment it is prepared and polls for completions (one io_uring_enter
# per I/O, min_complete 0: it never sleeps in the kernel); coring's loop submits once per
# iteration and blocks in io_uring_enter when no task is ready. Three policies are measured, for
# coring and for a raw liburing loop: the loop's default, busy polling, and fio's (see
# bench/file_bench.cpp).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${1:-$root/build/release}")
export CORING_FILE_BENCH_PATH=${CORING_FILE_BENCH_PATH:-$build/bench/file_bench.data}
export CORING_FILE_BENCH_BYTES=${CORING_FILE_BENCH_BYTES:-1073741824}
runtime=${CORING_FIO_RUNTIME:-10}
rounds=${CORING_FIO_ROUNDS:-3}
command -v fio > /dev/null || { echo "file_vs_fio.sh: fio is not installed (apt-get install fio)" >&2; exit 1; }

if [[ ! -d $build ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS=-O2 >&2
fi
cmake --build "$build" --target file_bench -j "$(nproc)" >&2
bench="$build/bench/file_bench"
out="$build/bench-results/file_vs_fio"  # not bench-results itself: compare.py reads every *.json there
mkdir -p "$out"

# The first run writes the data file if it is missing (or has another size).
"$bench" --benchmark_filter='randread_4k_qd32:coring' --benchmark_min_time=0.01 > /dev/null 2> "$out/file_bench.log" || { cat "$out/file_bench.log" >&2; exit 1; }
direct=1
python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT))' "$CORING_FILE_BENCH_PATH" 2> /dev/null || direct=0
export CORING_FILE_BENCH_DIRECT=$direct

fio_iops() {
    fio --name=randread --filename="$CORING_FILE_BENCH_PATH" --size="$CORING_FILE_BENCH_BYTES" --rw=randread --bs=4k \
        --iodepth=32 --ioengine=io_uring --direct="$direct" --numjobs=1 --norandommap --randrepeat=0 \
        --time_based --runtime="$runtime" --ramp_time=1 --output-format=json --output="$out/fio.json" > /dev/null
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"])' "$out/fio.json"
}

# IOPS of one benchmark of file_bench, by its full name.
bench_iops() {
    "$bench" --benchmark_filter="^$1/" --benchmark_min_time="$runtime" \
        --benchmark_out="$out/file_bench.json" --benchmark_out_format=json > /dev/null 2> "$out/file_bench.log"
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["benchmarks"][0]["items_per_second"])' "$out/file_bench.json"
}

variants=(randread_4k_qd32:coring randread_4k_qd32:raw_liburing randread_4k_qd32_busy_poll:coring randread_4k_qd32_busy_poll:raw_liburing
    randread_4k_qd32_fio_like:coring randread_4k_qd32_fio_like:raw_liburing)
declare -A runs
runs[fio]=""
for ((i = 1; i <= rounds; i++)); do
    runs[fio]+=" $(fio_iops)"
    line="round $i: fio ${runs[fio]##* }"
    for v in "${variants[@]}"; do
        runs[$v]+=" $(bench_iops "$v")"
        line+="  $v ${runs[$v]##* }"
    done
    echo "$line" >&2
done

args=("$direct" "$CORING_FILE_BENCH_BYTES" "${runs[fio]}")
for v in "${variants[@]}"; do args+=("${runs[$v]}"); done
python3 - "${args[@]}" << 'PYTHON'
import statistics, sys
direct, size = sys.argv[1] == "1", int(sys.argv[2])
fio, coring, raw, coring_poll, raw_poll, coring_fio, raw_fio = (statistics.median(float(x) for x in a.split()) for a in sys.argv[3:10])
mode = "O_DIRECT" if direct else "buffered (no O_DIRECT on this file system: page cache)"
print(f"4 KiB random reads, QD32, {size / 2**30:g} GiB file, {mode}, medians of {len(sys.argv[3].split())} interleaved runs")
print("| reader | submission and waiting | IOPS | / fio |")
print("|---|---|---|---|")
print(f"| fio --ioengine=io_uring | each I/O at once, polls (never sleeps) | {fio:,.0f} | 1.000 |")
print(f"| coring: 32 tasks looping file::read_at | the loop's default: once per iteration, sleeps when idle | {coring:,.0f} | {coring / fio:.3f} |")
print(f"| raw liburing loop | once per iteration, sleeps (io_uring_submit_and_wait) | {raw:,.0f} | {raw / fio:.3f} |")
print(f"| coring, loop_options{{.busy_poll = 200us}} | once per iteration, polls while reads are in flight | {coring_poll:,.0f} | {coring_poll / fio:.3f} |")
print(f"| raw liburing loop | once per iteration, polls | {raw_poll:,.0f} | {raw_poll / fio:.3f} |")
print(f"| coring, loop_options{{.busy_poll = 200us, .eager_submit = true}} | each I/O at once, polls | {coring_fio:,.0f} | {coring_fio / fio:.3f} |")
print(f"| raw liburing loop, fio's policy | each I/O at once, polls | {raw_fio:,.0f} | {raw_fio / fio:.3f} |")
print(f"coring / fio = {coring / fio:.3f} with the loop's default policy, {coring_fio / fio:.3f} with busy_poll + eager_submit, fio's policy (target >= 0.95)")
PYTHON
