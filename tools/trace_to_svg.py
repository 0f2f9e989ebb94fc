#!/usr/bin/env python3
"""Draws a coring trace (CORING_TRACE=trace.json) as an SVG timeline. Standard library only.

    tools/trace_to_svg.py trace.json timeline.svg [--from MS] [--to MS] [--width PX] [--no-flows]

One row per loop: its task steps as boxes (a colour per task name, the name written in the
boxes wide enough for it, the duration in each box's tooltip), below them its kernel operations
as thin bars (a lane per operation in flight at once), and create_task and wake-up flows as
arrows from the step that made or woke a task to the task's next step. --from and --to cut a
window out of a long trace (milliseconds since the trace began); --width sets the drawing's
width, --no-flows leaves the arrows out. Steps and operations narrower than a pixel and less
than a pixel apart are drawn as one box (its tooltip counts them), so that a long trace stays a
small picture. Perfetto (ui.perfetto.dev) opens the same file interactively.
"""
import argparse
import colorsys
import hashlib
import html
import json
import math
import sys

LABEL_WIDTH = 110
STEP_HEIGHT = 26
IO_LANE_HEIGHT = 5
IO_LANES = 6
TRACK_GAP = 18
AXIS_HEIGHT = 30
LEGEND_LINE = 16


def colour(name):
    """A stable, readable colour per task name."""
    digest = hashlib.md5(name.encode("utf-8")).digest()
    r, g, b = colorsys.hls_to_rgb(digest[0] / 255.0, 0.55, 0.55)
    return "#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255))


def nice_step(span, ticks=10):
    """A round tick interval (1, 2 or 5 times a power of ten) giving about `ticks` ticks."""
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def load(path):
    with open(path, encoding="utf-8") as f:
        events = json.load(f)
    tracks = {}  # tid -> name
    steps = {}   # tid -> [(start, dur, name)]
    ops = {}     # tid -> [(start, end, name, result)]
    flows = {}   # id -> {"s": (tid, ts), "f": (tid, ts), "name": kind}
    open_ops = {}
    for e in events:
        ph = e.get("ph")
        tid = e.get("tid")
        if ph == "M" and e.get("name") == "thread_name":
            tracks[tid] = e["args"]["name"]
        elif ph == "X":
            steps.setdefault(tid, []).append((e["ts"], e["dur"], e["name"]))
        elif ph == "b":
            open_ops[e["id"]] = (tid, e["ts"], e["name"])
        elif ph == "e" and e["id"] in open_ops:
            tid0, start, name = open_ops.pop(e["id"])
            ops.setdefault(tid0, []).append((start, e["ts"], name, e.get("args", {}).get("result")))
        elif ph in ("s", "f"):
            flows.setdefault(e["id"], {"name": e["name"]})[ph] = (tid, e["ts"])
    for tid in list(steps) + list(ops):
        tracks.setdefault(tid, "loop %s" % tid)
    return tracks, steps, ops, flows


def boxes(track_steps, begin, end, x):
    """The steps of a track inside the window as boxes (x0, x1, name, steps, total duration).
    Steps of one task narrower than a pixel and less than a pixel apart make one box, so that a
    long trace stays a small picture."""
    merged = []
    for start, dur, name in sorted(track_steps):
        if start + dur < begin or start > end:
            continue
        x0, x1 = x(max(start, begin)), x(min(start + dur, end))
        last = merged[-1] if merged else None
        if last and last[2] == name and x1 - x0 < 1.0 and x0 - last[1] < 1.0:
            merged[-1] = (last[0], max(last[1], x1), name, last[3] + 1, last[4] + dur)
        else:
            merged.append((x0, x1, name, 1, dur))
    return merged


def render(tracks, steps, ops, flows, begin, end, width, with_flows=True):
    span = max(end - begin, 1.0)
    plot = width - LABEL_WIDTH - 10
    x = lambda t: LABEL_WIDTH + (t - begin) / span * plot
    order = sorted(tracks)
    track_height = STEP_HEIGHT + IO_LANES * IO_LANE_HEIGHT + TRACK_GAP
    top = AXIS_HEIGHT
    y_of = {tid: top + i * track_height for i, tid in enumerate(order)}

    totals = {}
    for tid in order:
        for start, dur, name in steps.get(tid, []):
            totals[name] = totals.get(name, 0.0) + dur
    legend = sorted(totals, key=lambda n: -totals[n])[:12]
    height = top + len(order) * track_height + 20 + LEGEND_LINE * (len(legend) + 1)

    out = []
    out.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
               % (width, height))
    out.append('<defs><marker id="arrow" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="6" markerHeight="6" '
               'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#555"/></marker></defs>')
    out.append('<rect width="100%" height="100%" fill="white"/>')

    # The time axis, in milliseconds since the trace began.
    tick = nice_step(span / 1000.0) * 1000.0
    t = math.ceil(begin / tick) * tick
    while t <= end:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x(t), AXIS_HEIGHT - 6, x(t), height - LEGEND_LINE * (len(legend) + 1)))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%g ms</text>' % (x(t), AXIS_HEIGHT - 10, round(t / 1000.0, 6)))
        t += tick

    for tid in order:
        y = y_of[tid]
        out.append('<text x="4" y="%d" fill="#222" font-weight="bold">%s</text>' % (y + STEP_HEIGHT // 2 + 4, html.escape(tracks[tid])))
        for x0, x1, name, count, total in boxes(steps.get(tid, []), begin, end, x):
            w = max(x1 - x0, 0.5)
            title = "%s: %.3f ms" % (name, total / 1000.0) if count == 1 else "%s: %d steps, %.3f ms" % (name, count, total / 1000.0)
            out.append('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s"><title>%s</title></rect>'
                       % (x0, y, w, STEP_HEIGHT, colour(name), html.escape(title)))
            if w > 7 * len(name) + 6:
                out.append('<text x="%.2f" y="%d" fill="white">%s</text>' % (x0 + 3, y + STEP_HEIGHT // 2 + 4, html.escape(name)))
        # Kernel operations: a lane each, the first lane free when it starts.
        # (Short operations of one opcode less than a pixel apart in a lane make one bar.)
        lane_free = [begin - 1.0] * IO_LANES
        bars = [[] for _ in range(IO_LANES)]  # per lane: [x0, x1, name, count, total, result]
        for start, stop, name, result in sorted(ops.get(tid, [])):
            if stop < begin or start > end:
                continue
            lane = next((i for i, free in enumerate(lane_free) if free <= start), IO_LANES - 1)
            lane_free[lane] = stop
            x0, x1 = x(max(start, begin)), x(min(stop, end))
            last = bars[lane][-1] if bars[lane] else None
            if last and last[2] == name and x1 - x0 < 1.0 and x0 - last[1] < 1.0:
                last[1], last[3], last[4] = max(last[1], x1), last[3] + 1, last[4] + stop - start
            else:
                bars[lane].append([x0, x1, name, 1, stop - start, result])
        for lane, lane_bars in enumerate(bars):
            yy = y + STEP_HEIGHT + 2 + lane * IO_LANE_HEIGHT
            for x0, x1, name, count, total, result in lane_bars:
                title = ("%s: %.3f ms, result %s" % (name, total / 1000.0, result) if count == 1
                         else "%d x %s: %.3f ms" % (count, name, total / 1000.0))
                out.append('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="#888" opacity="0.7"><title>%s</title></rect>'
                           % (x0, yy, max(x1 - x0, 0.5), IO_LANE_HEIGHT - 1, html.escape(title)))

    for flow in flows.values() if with_flows else []:
        if "s" not in flow or "f" not in flow:
            continue
        (tid0, t0), (tid1, t1) = flow["s"], flow["f"]
        if tid0 not in y_of or tid1 not in y_of or t1 < begin or t0 > end:
            continue
        y0, y1 = y_of[tid0], y_of[tid1]
        x0, x1 = x(max(t0, begin)), x(min(t1, end))
        lift = 8 if tid0 == tid1 else 0
        out.append('<path d="M%.2f,%d C%.2f,%d %.2f,%d %.2f,%d" fill="none" stroke="#555" stroke-width="0.6" '
                   'marker-end="url(#arrow)" opacity="0.6"><title>%s</title></path>'
                   % (x0, y0, x0, y0 - lift, x1, y1 - lift, x1, y1, html.escape(flow["name"])))

    y = top + len(order) * track_height + 10
    out.append('<text x="4" y="%d" fill="#222">task steps (total time), kernel operations in grey%s</text>'
               % (y, ", arrows: create_task and wake-ups" if with_flows else ""))
    for i, name in enumerate(legend):
        yy = y + LEGEND_LINE * (i + 1)
        out.append('<rect x="4" y="%d" width="10" height="10" fill="%s"/>' % (yy - 9, colour(name)))
        out.append('<text x="18" y="%d" fill="#222">%s (%.3f ms)</text>' % (yy, html.escape(name), totals[name] / 1000.0))
    out.append('</svg>')
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description="Draws a coring trace as an SVG timeline.")
    parser.add_argument("trace")
    parser.add_argument("svg")
    parser.add_argument("--from", dest="begin", type=float, help="window start, ms since the trace began")
    parser.add_argument("--to", dest="end", type=float, help="window end, ms since the trace began")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--no-flows", action="store_true", help="leave the create_task and wake-up arrows out")
    args = parser.parse_args()
    try:
        tracks, steps, ops, flows = load(args.trace)
    except (OSError, ValueError, KeyError) as e:
        print("trace_to_svg: cannot read %s: %s" % (args.trace, e), file=sys.stderr)
        return 1
    times = [s for ss in steps.values() for s, d, n in ss] + [s + d for ss in steps.values() for s, d, n in ss]
    times += [t for oo in ops.values() for s, e, n, r in oo for t in (s, e)]
    if not times:
        print("trace_to_svg: %s has no steps or kernel operations" % args.trace, file=sys.stderr)
        return 1
    begin = args.begin * 1000.0 if args.begin is not None else min(times)
    end = args.end * 1000.0 if args.end is not None else max(times)
    if end <= begin:
        print("trace_to_svg: the window is empty (--from %s --to %s)" % (args.begin, args.end), file=sys.stderr)
        return 1
    with open(args.svg, "w", encoding="utf-8") as f:
        f.write(render(tracks, steps, ops, flows, begin, end, args.width, not args.no_flows))
    count = sum(len(v) for v in steps.values())
    print("%s: %d loop(s), %d step(s), %.3f ms drawn" % (args.svg, len(tracks), count, (end - begin) / 1000.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
