#!/usr/bin/env python3
"""Checks a coring trace (Chrome trace-event JSON) and prints what it holds, one fact a line.

    trace_summary.py TRACE.json

Exits 1 with a message if the file is not JSON, or if an event breaks the rules coring's traces
keep: every flow start lies inside a step slice of its track and every flow finish at the start
of one; every kernel operation's begin has one end with the same id. Otherwise prints
    events N
    tracks N                      (loops: thread_name metadata events)
    slice NAME COUNT              (task steps, by task name)
    flow KIND STARTS/FINISHES     (create_task, wake)
    io OPCODE BEGINS/ENDS         (kernel operations, by opcode)
"""
import collections
import json
import sys


def fail(message):
    print("trace_summary: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        try:
            events = json.load(f)
        except json.JSONDecodeError as e:
            fail("not JSON: %s" % e)
    if not isinstance(events, list):
        fail("not a JSON array of events")
    steps = collections.defaultdict(list)  # tid -> [(start, end)]
    slices = collections.Counter()
    tracks = 0
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            tracks += 1
        elif e.get("ph") == "X":
            if e.get("cat") != "step" or not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                fail("a malformed step: %r" % e)
            steps[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
            slices[e["name"]] += 1
    flows = collections.defaultdict(lambda: [0, 0])
    io = collections.defaultdict(lambda: [0, 0])
    open_io = {}
    for e in events:
        ph = e.get("ph")
        if ph in ("s", "f"):
            inside = [s for s in steps[e["tid"]] if s[0] <= e["ts"] <= s[1]] if ph == "s" else \
                     [s for s in steps[e["tid"]] if abs(s[0] - e["ts"]) < 0.0015]
            if not inside:
                fail("a flow %s outside the step it belongs to: %r" % ("start" if ph == "s" else "finish", e))
            flows[e["name"]][0 if ph == "s" else 1] += 1
        elif ph == "b":
            if e["id"] in open_io:
                fail("a kernel operation begins twice: %r" % e)
            open_io[e["id"]] = e["name"]
            io[e["name"]][0] += 1
        elif ph == "e":
            if open_io.pop(e["id"], None) != e["name"]:
                fail("a kernel operation ends without its begin: %r" % e)
            if not isinstance(e.get("args", {}).get("result"), int):
                fail("a kernel operation ends without its result: %r" % e)
            io[e["name"]][1] += 1
    print("events %d" % len(events))
    print("tracks %d" % tracks)
    for name, count in sorted(slices.items()):
        print("slice %s %d" % (name, count))
    for kind, (starts, finishes) in sorted(flows.items()):
        print("flow %s %d/%d" % (kind, starts, finishes))
    for opcode, (begins, ends) in sorted(io.items()):
        print("io %s %d/%d" % (opcode, begins, ends))


if __name__ == "__main__":
    main()
