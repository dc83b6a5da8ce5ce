#!/usr/bin/env python3
"""Summarizes perf/epoch.sh's results (issues 10 and 11) as a markdown table: each target, the
median of the per-run ratios (never a ratio of medians), and every run's figure."""

import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "perf/results/epoch"


def runs(prefix):
    """Per repeat, {engine: run} of the loadgen JSON files named prefix.r<k>.json."""
    found = []
    for path in sorted(glob.glob(f"{out}/{prefix}.r*.json")):
        try:
            data = json.load(open(path))
        except (OSError, ValueError):
            continue
        found.append({r["engine"]: r for r in data["runs"]} | {"_limit": data.get("limit", {})})
    return found


def ratio_row(name, goal, prefix, num, den, cmp=">="):
    values = [r[num]["records_per_sec"] / r[den]["records_per_sec"] for r in runs(prefix) if num in r and den in r]
    return row(name, goal, values, cmp)


def pair_row(name, goal, num, den, cmp=">="):
    a, b = runs(num), runs(den)
    values = [x["lockstep"]["records_per_sec"] / y["lockstep"]["records_per_sec"] for x, y in zip(a, b)]
    return row(name, goal, values, cmp)


def row(name, goal, values, cmp, unit="x"):
    if not values:
        return f"| {name} | {cmp} {goal}{unit} | not run | | |"
    median = statistics.median(values)
    each = ", ".join(f"{v:.2f}" for v in values)
    if goal is None:  # a figure reported beside the targets, with no goal of its own
        return f"| {name} | | **{median:.2f}{unit}** | {each} | |"
    met = median >= goal if cmp == ">=" else median <= goal
    return f"| {name} | {cmp} {goal}{unit} | **{median:.2f}{unit}** | {each} | {'met' if met else 'missed'} |"


def criterion(group):
    path = f"target/criterion/{group}/new/estimates.json"
    if not os.path.exists(path):
        return None
    return json.load(open(path))["median"]["point_estimate"]


lines = [
    "| target | goal | median | each run | verdict |",
    "| --- | --- | ---: | --- | --- |",
    ratio_row("a: 1 producer, 1 part: lockstep ÷ mutex (issue 10)", 1.5, "a", "lockstep", "mutex"),
    ratio_row("a: 1 producer, 1 part: lockstep ÷ mutex (issue 11)", 2.0, "a", "lockstep", "mutex"),
    ratio_row("b: 4 producers, 1 part: lockstep ÷ mutex", 3.0, "b", "lockstep", "mutex"),
    ratio_row("c: 1 producer, 16 parts: lockstep ÷ raw (issue 10)", 0.4, "c", "lockstep", "raw"),
    ratio_row("c: 1 producer, 16 parts: lockstep ÷ raw (issue 11)", 0.5, "c", "lockstep", "raw"),
    pair_row("d: 1M paths ÷ 10k paths", 0.5, "d1m", "d10k"),
    row(
        "d: peak RSS at 1M paths",
        300,
        [r["lockstep"]["peak_rss_bytes"] / 2**20 for r in runs("d1m") if "lockstep" in r],
        "<=",
        " MiB",
    ),
    pair_row("e: 128 producers ÷ 8 producers", 0.5, "e128", "e8"),
]
fixed = [r["lockstep"]["visible_latency_us"] for r in runs("f") if "lockstep" in r]
lines.append(row("f: half of peak, library's commit-to-visible p99", 20, [v["p99"] for v in fixed], "<=", " µs"))
lines.append(row("f: half of peak, library's commit-to-visible p99.9", 200, [v["p999"] for v in fixed], "<=", " µs"))

defaults = {"last": [], "window": [], "top4": [], "limit": []}
for path in sorted(glob.glob(f"{out}/g.r*.txt")):
    text = open(path).read()
    for key, label in [("last", "last third / first third"), ("window", "defaults / DiscardSink"),
                       ("top4", "defaults / the same, top level 4"), ("limit", "defaults / bare hand-off")]:
        m = re.search(re.escape(label) + r".*?([0-9.]+)x", text)
        if m:
            defaults[key].append(float(m.group(1)))
lines.append(row("g: defaults ÷ DiscardSink + Newest(1)", 0.8, defaults["window"], ">="))
lines.append(row("g: defaults ÷ DiscardSink + Newest(1) at top level 4 (the loadgen's)", None, defaults["top4"], ">="))
lines.append(row("g: defaults, last third ÷ first third", 0.85, defaults["last"], ">="))
lines.append(row("g: defaults ÷ bare hand-off", 0.2, defaults["limit"], ">="))

for group, goal, per, label in [
    ("shard_turn/paths/10000", 60, 4096, "h: shard stage per record, 10k paths (ns)"),
    ("shard_turn/paths/1000000", None, 4096, "h: shard stage per record, 1M paths (ns)"),
    ("snapshot_long_history/read", 5000, 1, "h: read, 100k top-level blocks (ns)"),
    ("snapshot_long_history/segments", 5000, 1, "h: segments, 100k top-level blocks (ns)"),
    ("commit/burst_sum_key/1", 25, 1, "h: commit of 1 part by key (ns)"),
    ("commit/burst_sum_key/16", 5, 16, "h: commit of 16 parts by key, per part (ns)"),
]:
    value = criterion(group)
    if value is None:
        lines.append(f"| {label} | | not run | | |")
        continue
    value /= per
    verdict = "" if goal is None else ("met" if value <= goal else "missed")
    goal_text = "" if goal is None else f"<= {goal}"
    lines.append(f"| {label} | {goal_text} | **{value:.1f}** | criterion median | {verdict} |")

print("\n".join(lines))
for prefix in ["a", "b", "c"]:
    per = runs(prefix)
    if per:
        engines = [e for e in ["lockstep", "mutex", "channel", "raw"] if e in per[0]]
        figures = "; ".join(
            f"{e} {statistics.median(r[e]['records_per_sec'] for r in per if e in r) / 1e6:.2f} M"
            for e in engines
        )
        limit = statistics.median(r["_limit"].get("records_per_sec", 0) for r in per) / 1e6
        print(f"\n{prefix}: medians, records/s: {figures}; limit {limit:.1f} M")
