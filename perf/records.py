#!/usr/bin/env python3
"""Renders perf/results/records.md from the runs perf/records.sh wrote (standard library only).

Every ratio is taken inside one run (one process) and the median of the per-run ratios is
reported, never a ratio of medians."""

import glob
import json
import os
import re
import statistics
import sys

ENGINES = ("lockstep", "mutex", "channel", "raw")
TITLES = {
    "i64": "`--record i64`, 1 part per commit (the headline)",
    "shared": "`--record shared --record-bytes 16`, 1 part per commit (continuity with the older figures)",
    "i64-k16": "`--record i64`, 16 parts per commit",
    "i64-rate": "`--record i64`, fixed rate",
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def si(n):
    if n is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f} {prefix}"
    return f"{n:.1f}"


def x(r):
    return "-" if r is None else f"{r:.2f}x"


def us(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def run_of(doc, engine):
    return next((r for r in doc["runs"] if r["engine"] == engine), None)


def lat(run, kind, key):
    s = (run or {}).get(f"{kind}_latency_us")
    return s.get(key) if s else None


def main(results):
    groups = {}
    for path in sorted(glob.glob(os.path.join(results, "*.r*.json"))):
        m = re.match(r"(.+)\.r(\d+)\.json$", os.path.basename(path))
        with open(path) as f:
            groups.setdefault(m.group(1), []).append((path, json.load(f)))
    print("# loadgen figures by record kind")
    print()
    print("Written by `perf/records.py` from `perf/records.sh`'s runs (`results/records/`). Medians of")
    print("the runs; every ratio is taken inside one run, then its median over the runs is shown.")
    for gid in [g for g in TITLES if g in groups] + sorted(set(groups) - set(TITLES)):
        runs = groups[gid]
        docs = [d for _, d in runs]
        commits = sorted({d["config"].get("commit", "?") for d in docs})
        print()
        print(f"## {TITLES.get(gid, gid)}")
        print()
        with open(runs[0][0][:-5] + ".txt") as f:
            command = f.readline().strip().lstrip("$ ")
        print(f"{len(runs)} run(s) at commit {', '.join(commits)}, each: `{command}`")
        print()
        print("| engine | records/s | ÷ limit | lockstep ÷ engine | commit call p99 µs | commit-to-visible p50 µs | p99 µs | per-run records/s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        limits = [(d.get("limit") or {}).get("records_per_sec") for d in docs]
        windows = [(d.get("limit") or {}).get("median_records_per_sec") for d in docs]
        per_run = ", ".join(f"{si(v)} (median window {si(w)})" for v, w in zip(limits, windows))
        print(f"| limit | {si(median(limits))} | 1x | | | | | {per_run} |")
        for engine in ENGINES:
            rs = [run_of(d, engine) for d in docs]
            if not any(rs):
                continue
            rate = [r["records_per_sec"] if r else None for r in rs]
            share = [r.get("records_per_limit") if r else None for r in rs]
            vs = []
            for d in docs:
                ours, theirs = run_of(d, "lockstep"), run_of(d, engine)
                if ours and theirs and theirs["records_per_sec"] > 0 and engine != "lockstep":
                    vs.append(ours["records_per_sec"] / theirs["records_per_sec"])
            print(f"| {engine} | {si(median(rate))} | {x(median(share))} | {x(median(vs)) if vs else ''} | "
                  f"{us(median([lat(r, 'commit', 'p99') for r in rs]))} | "
                  f"{us(median([lat(r, 'visible', 'p50') for r in rs]))} | "
                  f"{us(median([lat(r, 'visible', 'p99') for r in rs]))} | {', '.join(si(v) for v in rate)} |")
        problems = sorted({p for d in docs for r in d["runs"] for p in r.get("problems", [])})
        for p in problems:
            print(f"\n- a run reported: {p}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "records"))
