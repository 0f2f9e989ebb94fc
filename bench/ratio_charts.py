#!/usr/bin/env python3
"""Draws the main benchmark ratios (bench/ratios.csv: coring beside each baseline) as SVG bar
charts, one per section, for bench/README.md. Standard library only.

    bench/ratio_charts.py [bench/ratios.csv] [bench/charts]

Each bar is coring / baseline on a logarithmic scale around 1 (parity): a "time" ratio is better
below 1, a "rate" ratio above. A target, where the issue set one, is a tick on the bar's row;
the bar is green when the target is met, orange when it is not, grey without a target.
"""
import csv
import html
import math
import os
import sys

ROW = 26
LABEL = 330
PLOT = 420
RIGHT = 210


def met(ratio, target):
    if not target:
        return None
    if target.startswith("<="):
        return ratio <= float(target[2:])
    if target.startswith(">="):
        return ratio >= float(target[2:])
    raise ValueError("a target is <=X or >=X, not %r" % target)


def chart(section, rows):
    values = [float(r["ratio"]) for r in rows] + [float(r["target"][2:]) for r in rows if r["target"]] + [1.0]
    low = min(values) / 1.3
    high = max(values) * 1.3
    lo, hi = math.log10(low), math.log10(high)
    x = lambda v: LABEL + (math.log10(v) - lo) / (hi - lo) * PLOT
    height = 40 + ROW * len(rows) + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">'
           % (LABEL + PLOT + RIGHT, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="8" y="20" font-weight="bold">%s: coring / baseline</text>' % html.escape(section)]
    top = 34
    for tick in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50):
        if low <= tick <= high:
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>'
                       % (x(tick), top, x(tick), top + ROW * len(rows), "#444" if tick == 1 else "#e4e4e4"))
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g</text>' % (x(tick), top + ROW * len(rows) + 14, tick))
    for i, r in enumerate(rows):
        ratio = float(r["ratio"])
        y = top + i * ROW
        ok = met(ratio, r["target"])
        fill = "#9a9a9a" if ok is None else ("#3c9a4b" if ok else "#e08a1e")
        x0, x1 = sorted((x(1.0), x(ratio)))
        label = "%s, beside %s" % (r["case"], r["baseline"])
        out.append('<text x="%d" y="%d" text-anchor="end" fill="#222">%s</text>' % (LABEL - 6, y + 16, html.escape(label)))
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s (%s)</title></rect>'
                   % (x0, y + 5, max(x1 - x0, 1.0), ROW - 10, fill, html.escape(label), r["ratio"], r["kind"]))
        if r["target"]:
            tx = x(float(r["target"][2:]))
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222" stroke-width="2"/>' % (tx, y + 2, tx, y + ROW - 2))
        better = "lower is better" if r["kind"] == "time" else "higher is better"
        target = (", target %s" % r["target"]) if r["target"] else ""
        out.append('<text x="%d" y="%d" fill="#222">%s (%s%s)</text>'
                   % (LABEL + PLOT + 6, y + 16, r["ratio"], "time" if r["kind"] == "time" else "rate", target))
        out[-1] = out[-1].replace("</text>", "<title>%s</title></text>" % better)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "ratios.csv")
    target_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "charts")
    with open(source, encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    sections = {}
    for r in rows:
        if r["kind"] not in ("time", "rate"):
            print("ratio_charts: %s: kind is time or rate, not %r" % (r["case"], r["kind"]), file=sys.stderr)
            return 1
        sections.setdefault(r["section"], []).append(r)
    os.makedirs(target_dir, exist_ok=True)
    for section, section_rows in sections.items():
        path = os.path.join(target_dir, section + ".svg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(chart(section, section_rows))
        missed = sum(1 for r in section_rows if met(float(r["ratio"]), r["target"]) is False)
        print("%s: %d ratio(s), %d target(s) missed" % (path, len(section_rows), missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
