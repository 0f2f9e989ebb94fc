#!/usr/bin/env python3
"""Prints coring's results beside every baseline, with ratios, as a Markdown table.

Inputs: Google Benchmark JSON files (cases named "<case>:<implementation>") and the JSON lines of
bench/asyncio_baseline.py (implementation "python_asyncio"). Usage:
  compare.py results/*.json [--python results/asyncio.jsonl]
"""
import argparse
import json
import re
from collections import defaultdict


STANDARD_FIELDS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                   "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
                   "aggregate_name", "aggregate_unit", "items_per_second", "bytes_per_second", "label"}


def load_benchmark(path, table, counters):
    with open(path) as f:
        data = json.load(f)
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        for key, value in b.items():
            if key not in STANDARD_FIELDS and isinstance(value, (int, float)):
                counters[(name, key)] = value
        m = re.match(r"([^:/]+):([^/]+)(/.*)?$", name)
        if not m:
            continue
        case, impl = m.group(1), m.group(2)
        ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
        table[case][impl] = ns


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+")
    ap.add_argument("--python")
    args = ap.parse_args()
    table = defaultdict(dict)
    counters = {}
    for path in args.json:
        load_benchmark(path, table, counters)
    if args.python:
        with open(args.python) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    table[r["case"]]["python_asyncio"] = r["ns_per_op"]
    print("| case | coring | baseline | baseline time | coring / baseline |")
    print("|---|---|---|---|---|")
    for case in sorted(table):
        impls = table[case]
        ours = impls.get("coring")
        if ours is None:
            continue
        others = [(k, v) for k, v in impls.items() if k != "coring"]
        if not others:
            print(f"| {case} | {fmt(ours)} | - | - | - |")
        for impl, t in others:
            print(f"| {case} | {fmt(ours)} | {impl} | {fmt(t)} | {ours / t:.3f} |")
    if counters:
        print()
        print("| measurement | counter | value |")
        print("|---|---|---|")
        for (name, key), value in sorted(counters.items()):
            print(f"| {name} | {key} | {value:.4g} |")


if __name__ == "__main__":
    main()
