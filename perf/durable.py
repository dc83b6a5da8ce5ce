#!/usr/bin/env python3
"""Summarises perf/durable.sh: perf/results/durable/{runs.jsonl,recover.txt} -> markdown.

Every throughput ratio is taken between runs of the same repetition (neighbours in time), then
the median and the range over repetitions are shown; absolute figures only beside them."""
import json
import re
import statistics
import sys
from collections import defaultdict

out = sys.argv[1] if len(sys.argv) > 1 else "perf/results/durable"
runs = {}
for line in open(f"{out}/runs.jsonl"):
    if line.strip():
        run = json.loads(line)
        runs[run["name"]] = run
by_rep = defaultdict(dict)
for name, run in runs.items():
    config, rep = name.split(".r")
    by_rep[int(rep)][config] = run


def spread(values, fmt="{:.2f}"):
    if not values:
        return "-"
    values = sorted(values)
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(values[0])}–{fmt.format(values[-1])}, n={len(values)})"


def ratio(a, b):
    return [
        reps[a]["records_per_sec"] / reps[b]["records_per_sec"]
        for reps in by_rep.values()
        if a in reps and b in reps and reps[a]["records_per_sec"] and reps[b]["records_per_sec"]
    ]


def figures(config, key, scale=1.0):
    return [reps[config][key] * scale for reps in by_rep.values() if config in reps and reps[config].get(key) is not None]


commit = next(iter(runs.values()))["commit"] if runs else "?"
print(f"# Durable pipelines (issue 18), perf/durable.sh at {commit}\n")
print("Ratios between neighbouring runs of one repetition: median (min–max, n).\n")
print("| figure | value | target |")
print("|---|---|---|")
print(f"| Written ÷ memory, 1 producer | {spread(ratio('w1', 'm1'))} | >= 0.7 |")
print(f"| Written ÷ memory, 4 producers | {spread(ratio('w4', 'm4'))} | >= 0.7 |")
print(f"| Synced ÷ memory, 1 producer, closed loop | {spread(ratio('s1', 'm1'))} | >= 0.5 |")
print(f"| memory (every segment kept) ÷ memory (sink, Newest(1)), 1 producer | {spread(ratio('m1', 'n1'))} | context |")
print(f"| Written ÷ memory, both with a sink and Newest(1), 1 producer | {spread(ratio('wn1', 'n1'))} | context |")
print(f"| log bytes per record, Written, 1 part/commit | {spread(figures('w1', 'log_bytes_per_record'))} | <= 8 |")
print(f"| log bytes per record, Synced, 1 part/commit | {spread(figures('s1', 'log_bytes_per_record'))} | <= 8 |")
figures_runs = [reps["f"] for reps in by_rep.values() if "f" in reps and reps["f"].get("wait_durable_us")]
p99 = [r["wait_durable_us"]["p99"] / 1000 for r in figures_runs]
p50 = [r["wait_durable_us"]["p50"] / 1000 for r in figures_runs]
print(f"| lockstep Written ÷ fjall Written (PersistMode::Buffer), 1 producer | {spread(ratio('pw1', 'pf1'))} | >= 3 |")
print(f"| lockstep Synced ÷ fjall Synced (PersistMode::SyncData), 1 producer | {spread(ratio('ps1', 'pfs1'))} | context |")
print(f"| fjall log bytes per record (journal + tables) | {spread(figures('pf1', 'log_bytes_per_record'))} | context |")
print(f"| wait_durable p99 at half the Synced rate, ms | {spread(p99)} | <= 3 |")
print(f"| wait_durable p50 at half the Synced rate, ms | {spread(p50)} | context |")
missed = [r.get("missed") or 0 for r in figures_runs]
print(f"| fixed-rate commits missed (per run) | {spread(missed, '{:.0f}')} | 0 |")
quarter = [reps["q"] for reps in by_rep.values() if "q" in reps and reps["q"].get("wait_durable_us")]
print(f"| wait_durable p99 at a quarter of the Synced rate, ms | {spread([r['wait_durable_us']['p99'] / 1000 for r in quarter])} | context |")
print(f"| fixed-rate commits missed at a quarter (per run) | {spread([r.get('missed') or 0 for r in quarter], '{:.0f}')} | context |")
print()
print("Absolute figures (this machine, shared; for scale only): records/s median (min–max)\n")
print("| run | records/s | peak RSS MiB | disk appends MiB/s | fdatasyncs/s | fdatasync p99 µs |")
print("|---|---|---|---|---|---|")
for config in ["n1", "wn1", "m1", "w1", "s1", "m4", "w4", "f", "q", "pw1", "pf1", "ps1", "pfs1"]:
    rate = figures(config, "records_per_sec", 1e-6)
    if not rate:
        continue
    rss = figures(config, "peak_rss_bytes", 1 / 2**20)
    app = figures(config, "disk_append_mib_s")
    syn = figures(config, "disk_fdatasyncs_s")
    sp99 = [reps[config]["disk_fdatasync_us"]["p99"] for reps in by_rep.values()
            if config in reps and reps[config].get("disk_fdatasync_us")]
    print(f"| {config} | {spread(rate, '{:.2f}M')} | {spread(rss, '{:.0f}')} | {spread(app, '{:.0f}')} | "
          f"{spread(syn, '{:.0f}')} | {spread(sp99, '{:.0f}')} |")
problems = {name: r["problems"] for name, r in runs.items() if r.get("problems")}
if problems:
    print(f"\nRuns with problems: {problems}")

try:
    text = open(f"{out}/recover.txt").read()
except FileNotFoundError:
    text = ""
if text:
    print("\n## Recovery (examples/recover)\n")
    print("| levels | records | write records/s | log bytes/record | live peak MiB | reopen s | replayed records/s | reopen peak MiB | peak ÷ live |")
    print("|---|---|---|---|---|---|---|---|---|")
    blocks = re.split(r"^cargo run", text, flags=re.M)[1:]
    for block in blocks:
        levels = "max level 4" if re.search(r" 4;", block.splitlines()[0]) else "library default"
        kv = [dict(re.findall(r"(\w+)=([\d.]+)", line)) for line in block.splitlines()]
        write = next((k for k in kv if "live_peak_kib" in k), None)
        opens = [k for k in kv if "peak_kib" in k and "live_peak_kib" not in k]
        if not write or not opens:
            print(f"| {levels} | (failed: see recover.txt) |||||||")
            continue
        n = int(write["records"])
        live = int(write["live_peak_kib"]) / 1024
        for o in opens:
            peak = int(o["peak_kib"]) / 1024
            print(f"| {levels} | {n:,} | {float(write['records_per_sec'])/1e6:.2f}M | "
                  f"{int(write['log_bytes'])/n:.2f} | {live:.0f} | {float(o['secs']):.2f} | "
                  f"{float(o['records_per_sec'])/1e6:.2f}M | {peak:.0f} | {peak/live:.2f}x |")
