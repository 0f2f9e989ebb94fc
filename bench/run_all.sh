#!/usr/bin/env bash
# Runs every benchmark beside its baselines and prints the comparison table for bench/README.md.
#
#   bench/run_all.sh [build-dir]     (default: build/release, built here if needed)
#
# Each Google Benchmark binary runs coring and its in-process baselines (hand-written task, raw
# liburing, ...) with repetitions and random interleaving; bench/asyncio_baseline.py measures
# Python asyncio; bench/compare.py joins them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/release}
out="$build/bench-results"
if [[ ! -d $build ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS=-O2 >&2
fi
cmake --build "$build" -j "$(nproc)" >&2
mkdir -p "$out"
for exe in "$build"/bench/*_bench; do
    name=$(basename "$exe")
    echo "== $name" >&2
    "$exe" --benchmark_repetitions="${CORING_BENCH_REPETITIONS:-7}" --benchmark_enable_random_interleaving=true \
        --benchmark_report_aggregates_only=true --benchmark_out="$out/$name.json" --benchmark_out_format=json >&2
done
python3 "$root/bench/asyncio_baseline.py" > "$out/asyncio.jsonl"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(date -u +%Y-%m-%d)"
python3 "$root/bench/compare.py" "$out"/*.json --python "$out/asyncio.jsonl"
# Files (issue 5): 4 KiB random reads at QD32 beside fio's io_uring engine (fio from Debian).
echo
"$root/bench/file_vs_fio.sh" "$build"
# TCP echo (issue 5): 64-byte ping-pong, server CPU per round trip beside a C liburing server
# and Boost.Asio (pinned with taskset).
echo
"$root/bench/echo/compare.sh" "$build"
# Several cores (issue 18): http_server with 1 and 2 loops under wrk, server CPU per request.
echo
"$root/bench/sharded_http.sh" "$build"
