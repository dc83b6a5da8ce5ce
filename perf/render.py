#!/usr/bin/env python3
"""Renders the loadgen results under perf/results (python3 standard library only).

Matrix (perf/run.sh): reads results/*.json, groups the runs of one configuration
(<config-id>.json, or <config-id>.r<k>.json for repeats) and writes
  results/table.md        one row per configuration x engine: medians over the runs
  results/throughput.svg  records/s per configuration and engine
  results/latency.svg     commit-call and commit-to-visible p50 / p99 / p99.9, log scale
Targets (perf/targets.sh): reads results/targets/ and writes
  results/targets.md      one row per target: median, goal, met or missed, per-run values
  results/targets/f.rss.svg   VmRSS over the 60 s run

Every ratio is taken inside one loadgen process (lockstep's figure over another engine's in
the same run), or between the two runs of one back-to-back pair, and then the median of
those ratios is reported, never a ratio of medians from different runs.

Usage: python3 perf/render.py [--results DIR] [--targets-only | --matrix-only]
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

ENGINES = ["lockstep", "mutex", "channel", "raw"]
COLORS = {"lockstep": "#1f77b4", "mutex": "#d62728", "channel": "#ff7f0e", "raw": "#7f7f7f"}


# ---------------------------------------------------------------------------------------------
# Formatting


def si(value):
    """2341458 -> '2.34 M'."""
    if value is None:
        return "-"
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def us(value):
    """Microseconds with about three significant digits."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def mib(value):
    return "-" if value is None else f"{value / 2**20:.1f} MiB"


def ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------------
# Loading


def load(path):
    with open(path) as f:
        return json.load(f)


def stem_of(path):
    """perf/results/x.r2.json -> x (the configuration id)."""
    name = os.path.basename(path)[: -len(".json")]
    return re.sub(r"\.r\d+$", "", name)


def run_of(document, engine):
    return next((r for r in document["runs"] if r["engine"] == engine), None)


def latency(run, kind, key):
    summary = (run or {}).get(f"{kind}_latency_us")
    return summary.get(key) if summary else None


def command_of(json_path):
    """The command line recorded on the first line of the run's .txt."""
    txt = json_path[: -len(".json")] + ".txt"
    try:
        with open(txt) as f:
            first = f.readline().strip()
    except OSError:
        return None
    return first[2:] if first.startswith("$ ") else None


def report_text(json_path):
    try:
        with open(json_path[: -len(".json")] + ".txt") as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# The matrix


class Config:
    """The runs of one configuration."""

    def __init__(self, config_id, documents, files):
        self.id = config_id
        self.documents = documents
        self.files = files
        self.config = documents[0]["config"]

    def sort_key(self):
        c = self.config
        return (c["mode"], c["distribution"], c["paths"], c["parts_per_commit"], c["record_bytes"],
                c["shards"], c["producers"], c.get("rate") or 0)

    def label(self):
        c = self.config
        paths = c["paths"]
        paths = f"{paths // 10**6}M" if paths % 10**6 == 0 else f"{paths // 1000}k" if paths % 1000 == 0 else str(paths)
        text = (f"{c['producers']}p {c['shards']}s {paths} {c['distribution']} "
                f"{c['parts_per_commit']}pt {c['record_bytes']}B")
        if c.get("rate"):
            text += f" @{si(c['rate'])}/s"
        return text

    def engines(self):
        seen = {r["engine"] for d in self.documents for r in d["runs"]}
        return [e for e in ENGINES if e in seen] + sorted(seen - set(ENGINES))

    def runs(self, engine):
        return [r for d in self.documents if (r := run_of(d, engine))]

    def med(self, engine, get):
        return median([get(r) for r in self.runs(engine)])

    def ratio(self, engine):
        """Median over the runs of lockstep's records/s over engine's, both from one process."""
        values = []
        for d in self.documents:
            ours, theirs = run_of(d, "lockstep"), run_of(d, engine)
            if ours and theirs and theirs["records_per_sec"] > 0:
                values.append(ours["records_per_sec"] / theirs["records_per_sec"])
        return median(values)


def load_matrix(results):
    groups = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        try:
            document = load(path)
        except (OSError, json.JSONDecodeError) as error:
            print(f"render.py: skipping {path}: {error}", file=sys.stderr)
            continue
        if "config" not in document or "runs" not in document:
            continue
        groups.setdefault(stem_of(path), ([], []))
        groups[stem_of(path)][0].append(document)
        groups[stem_of(path)][1].append(path)
    configs = [Config(k, docs, files) for k, (docs, files) in groups.items()]
    return sorted(configs, key=Config.sort_key)


def matrix_table(configs):
    lines = [
        "| configuration | engine | runs | records/s | commits/s | commit p50 µs | commit p99 µs "
        "| visible p50 µs | visible p99 µs | visible p99.9 µs | peak RSS | aligned | lockstep ÷ engine (records/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for config in configs:
        for engine in config.engines():
            runs = config.runs(engine)
            aligned = {r.get("aligned") for r in runs}
            aligned = ("-" if aligned == {None} else "yes" if aligned == {True}
                       else "no" if aligned == {False} else "mixed")
            lost = any(not r.get("nothing_lost", True) for r in runs)
            lines.append("| " + " | ".join([
                f"`{config.label()}`",
                engine,
                str(len(runs)),
                si(config.med(engine, lambda r: r["records_per_sec"])),
                si(config.med(engine, lambda r: r["commits_per_sec"])),
                us(config.med(engine, lambda r: latency(r, "commit", "p50"))),
                us(config.med(engine, lambda r: latency(r, "commit", "p99"))),
                us(config.med(engine, lambda r: latency(r, "visible", "p50"))),
                us(config.med(engine, lambda r: latency(r, "visible", "p99"))),
                us(config.med(engine, lambda r: latency(r, "visible", "p999"))),
                mib(config.med(engine, lambda r: r.get("peak_rss_bytes"))),
                aligned + (" (LOST DATA)" if lost else ""),
                "1" if engine == "lockstep" else ratio(config.ratio(engine)),
            ]) + " |")
    legend = (
        "Configuration: `<producers>p <shards>s <paths> <distribution> <parts per commit>pt "
        "<record bytes>B`, closed loop unless `@rate`. Figures are medians over the runs "
        "(column `runs`); the ratio is lockstep's records/s over the engine's in the same process, "
        "median over the runs (above 1: lockstep moves more). \"visible\" is commit-to-visible as "
        "the loadgen's observer sees it (it sleeps 50 µs between looks, ~120 µs from look to "
        "look on this VM with the wake-up delay, so small values are late by up to that much). "
        "Peak RSS is the process's VmHWM, reset "
        "before each engine.")
    return "\n".join(lines) + "\n\n" + legend + "\n"


def svg_throughput(configs, path):
    engines = [e for e in ENGINES if any(e in c.engines() for c in configs)]
    bar, gap, label_w, chart_w, top = 9, 10, 260, 560, 50
    rows = []
    for config in configs:
        rows.append((config, [(e, config.med(e, lambda r: r["records_per_sec"])) for e in engines
                              if e in config.engines()]))
    height = top + sum(len(bars) * bar + gap for _, bars in rows) + 40
    peak = max((v or 0) for _, bars in rows for _, v in bars) or 1
    scale = nice_ceiling(peak)
    out = [svg_open(label_w + chart_w + 120, height),
           f'<text x="10" y="22" font-size="15" font-weight="bold">records/s per configuration '
           f'(median of runs; closed loop unless @rate)</text>']
    out += legend(engines, 10, 38)
    x0 = label_w
    for i in range(6):
        value = scale * i / 5
        x = x0 + chart_w * i / 5
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 30}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 14}" font-size="11" text-anchor="middle">{si(value)}</text>')
    y = top
    for config, bars in rows:
        block = len(bars) * bar
        out.append(f'<text x="{x0 - 6}" y="{y + block / 2 + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{esc(config.label())}</text>')
        for engine, value in bars:
            w = chart_w * (value or 0) / scale
            out.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar - 1}" fill="{COLORS.get(engine, "#999")}">'
                       f'<title>{esc(config.label())} {engine}: {si(value)} records/s</title></rect>')
            out.append(f'<text x="{x0 + w + 3:.1f}" y="{y + bar - 1.5}" font-size="8">{si(value)}</text>')
            y += bar
        y += gap
    out.append("</svg>")
    write(path, "\n".join(out))


def svg_latency(configs, path):
    engines = [e for e in ENGINES if any(e in c.engines() for c in configs)]
    row, gap, label_w, panel_w, top = 9, 10, 260, 330, 60
    rows = [(c, [e for e in engines if e in c.engines()]) for c in configs]
    height = top + sum(len(es) * row + gap for _, es in rows) + 40
    width = label_w + 2 * panel_w + 120
    out = [svg_open(width, height),
           '<text x="10" y="22" font-size="15" font-weight="bold">latency, µs (log scale): '
           'p50 ● p99 ◆ p99.9 ■, median of runs</text>']
    out += legend(engines, 10, 38)
    for p, (kind, title) in enumerate((("commit", "commit call"), ("visible", "commit-to-visible"))):
        x0 = label_w + p * (panel_w + 80)
        values = [v for c, es in rows for e in es for key in ("p50", "p99", "p999")
                  if (v := c.med(e, lambda r, q=key: latency(r, kind, q))) and v > 0]
        lo = 10 ** math.floor(math.log10(min(values))) if values else 0.01
        hi = 10 ** math.ceil(math.log10(max(values))) if values else 1e5

        def x_of(v, x0=x0, lo=lo, hi=hi):
            v = min(max(v, lo), hi)
            return x0 + panel_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

        out.append(f'<text x="{x0 + panel_w / 2}" y="{top - 8}" font-size="12" text-anchor="middle" '
                   f'font-weight="bold">{title}</text>')
        decade = lo
        while decade <= hi * 1.0001:
            x = x_of(decade)
            out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 30}" stroke="#ddd"/>')
            tick = us(decade) if decade < 1000 else si(decade).replace(" ", "")
            out.append(f'<text x="{x:.1f}" y="{height - 14}" font-size="10" text-anchor="middle">{tick}</text>')
            decade *= 10
        y = top
        for config, es in rows:
            if p == 0:
                out.append(f'<text x="{label_w - 6}" y="{y + len(es) * row / 2 + 4:.1f}" font-size="11" '
                           f'text-anchor="end">{esc(config.label())}</text>')
            for engine in es:
                color = COLORS.get(engine, "#999")
                p50, p99, p999 = (config.med(engine, lambda r, q=q: latency(r, kind, q)) for q in ("p50", "p99", "p999"))
                cy = y + row / 2
                xs = [x_of(v) for v in (p50, p99, p999) if v]
                if xs:
                    out.append(f'<line x1="{min(xs):.1f}" y1="{cy}" x2="{max(xs):.1f}" y2="{cy}" stroke="{color}"/>')
                tip = f"{esc(config.label())} {engine} {title}: p50 {us(p50)} / p99 {us(p99)} / p99.9 {us(p999)} µs"
                if p50:
                    out.append(f'<circle cx="{x_of(p50):.1f}" cy="{cy}" r="3" fill="{color}"><title>{tip}</title></circle>')
                if p99:
                    x = x_of(p99)
                    out.append(f'<path d="M{x:.1f},{cy - 3.5} l3.5,3.5 l-3.5,3.5 l-3.5,-3.5 z" fill="{color}"><title>{tip}</title></path>')
                if p999:
                    out.append(f'<rect x="{x_of(p999) - 3:.1f}" y="{cy - 3}" width="6" height="6" fill="{color}"><title>{tip}</title></rect>')
                y += row
            y += gap
    out.append("</svg>")
    write(path, "\n".join(out))


def svg_open(width, height):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>')


def legend(engines, x, y):
    out = []
    for i, engine in enumerate(engines):
        out.append(f'<rect x="{x + i * 90}" y="{y - 9}" width="10" height="10" fill="{COLORS.get(engine, "#999")}"/>')
        out.append(f'<text x="{x + i * 90 + 14}" y="{y}" font-size="12">{engine}</text>')
    return out


def nice_ceiling(value):
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * exponent >= value:
            return step * exponent
    return 10 * exponent


def write(path, text):
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    print(f"render.py: wrote {path}")


# ---------------------------------------------------------------------------------------------
# Targets


def experiment(out, name):
    """[(path, document)] of one experiment's runs, in run order."""
    files = sorted(glob.glob(os.path.join(out, f"{name}.r*.json")),
                   key=lambda f: int(re.search(r"\.r(\d+)\.json$", f).group(1)))
    return [(f, load(f)) for f in files]


def in_run_ratios(runs, engine):
    values = []
    for _, d in runs:
        ours, theirs = run_of(d, "lockstep"), run_of(d, engine)
        if ours and theirs and theirs["records_per_sec"] > 0:
            values.append(ours["records_per_sec"] / theirs["records_per_sec"])
    return values


def pair_ratios(num, den, engine="lockstep"):
    """Ratios of engine's records/s between the k-th runs of two experiments (run back to back)."""
    values = []
    for (_, a), (_, b) in zip(num, den):
        ra, rb = run_of(a, engine), run_of(b, engine)
        if ra and rb and rb["records_per_sec"] > 0:
            values.append(ra["records_per_sec"] / rb["records_per_sec"])
    return values


def fmt_list(values, fmt):
    return ", ".join(fmt(v) for v in values)


def verdict(value, goal, at_least):
    if value is None:
        return "not measured"
    ok = value >= goal if at_least else value <= goal
    return "**met**" if ok else "**missed**"


def first_command(runs):
    return command_of(runs[0][0]) if runs else None


def observer_note(path):
    """'observer looked every 144 µs on average (max 2887 µs)' from the human report."""
    m = re.search(r"(?:observer looked|observer: a look) every (\d+) µs on average \(max (\d+) µs\)",
                  report_text(path))
    return (int(m.group(1)), int(m.group(2))) if m else None


def render_targets(results):
    out = os.path.join(results, "targets")
    if not os.path.isdir(out):
        print(f"render.py: no {out}, no targets rendered", file=sys.stderr)
        return
    rows, details, commands = [], [], []

    a, b, c = experiment(out, "a"), experiment(out, "b"), experiment(out, "c")
    d10, d1m = experiment(out, "d-10k"), experiment(out, "d-1M")
    e2, e8 = experiment(out, "e-p2"), experiment(out, "e-p8")

    if a:
        for engine, goal in (("mutex", 5.0), ("channel", 3.0), ("raw", 0.25)):
            values = in_run_ratios(a, engine)
            m = median(values)
            rows.append(("a", f"closed loop 1p/1s/16 B/1 part/10k: lockstep ÷ {engine} records/s",
                         f">= {goal}x", ratio(m), verdict(m, goal, True), fmt_list(values, ratio)))
        lock = [run_of(d, "lockstep") for _, d in a]
        details.append(f"- a: lockstep records/s per run: {fmt_list([r['records_per_sec'] for r in lock], si)}; "
                       + "; ".join(f"{e}: {fmt_list([run_of(d, e)['records_per_sec'] for _, d in a if run_of(d, e)], si)}"
                                   for e in ("mutex", "channel", "raw")))
        commands.append(("a", first_command(a)))
    if b:
        values = in_run_ratios(b, "raw")
        m = median(values)
        rows.append(("b", "the same, 16 parts/commit: lockstep ÷ raw records/s", ">= 0.5x", ratio(m),
                     verdict(m, 0.5, True), fmt_list(values, ratio)))
        details.append(f"- b: lockstep records/s per run: "
                       f"{fmt_list([run_of(d, 'lockstep')['records_per_sec'] for _, d in b], si)}; raw: "
                       f"{fmt_list([run_of(d, 'raw')['records_per_sec'] for _, d in b if run_of(d, 'raw')], si)}; "
                       f"lockstep ÷ mutex {fmt_list(in_run_ratios(b, 'mutex'), ratio)}, "
                       f"÷ channel {fmt_list(in_run_ratios(b, 'channel'), ratio)}")
        commands.append(("b", first_command(b)))
    if c:
        peak = None
        try:
            with open(os.path.join(out, "c.peak")) as f:
                peak = int(f.read().strip())
        except (OSError, ValueError):
            pass
        rate = f"{si(c[0][1]['config']['rate'])} commits/s{'' if peak is None else f' of {si(peak)}'}"
        # The loadgen reports lockstep's commit-to-visible from the library's own histogram
        # (from taking the commit number, 1 commit in 16) as `visible_latency_us`; results from
        # loadgens before issue 9 carry an observer's figure there and the library's as
        # `own_visible_latency_us`.
        measures = (("visible", "library's own"),)
        if any(run_of(d, "lockstep").get("own_visible_latency_us") for _, d in c):
            measures = (("visible", "loadgen observer"), ("own_visible", "library's own"))
        for kind, how in measures:
            for key, name, goal in (("p99", "p99", 20.0), ("p999", "p99.9", 200.0)):
                values = [latency(run_of(d, "lockstep"), kind, key) for _, d in c]
                m = median(values)
                rows.append(("c", f"fixed rate at half of lockstep's peak ({rate}): commit-to-visible {name}, {how}",
                             f"<= {goal:g} µs", f"{us(m)} µs", verdict(m, goal, False), fmt_list(values, us)))
        runs = [run_of(d, "lockstep") for _, d in c]
        notes = [observer_note(f) for f, _ in c]
        details.append(
            f"- c: commit-to-visible p50 per run {fmt_list([latency(r, 'visible', 'p50') for r in runs], us)} µs, "
            f"max {fmt_list([latency(r, 'visible', 'max') for r in runs], us)} µs; commit call p99 "
            f"{fmt_list([latency(r, 'commit', 'p99') for r in runs], us)} µs; commits/s achieved "
            f"{fmt_list([r['commits_per_sec'] for r in runs], si)}, missed starts {fmt_list([r.get('missed', 0) for r in runs], str)}; "
            f"observer look interval mean/max (µs): {fmt_list(notes, lambda n: f'{n[0]}/{n[1]}' if n else '?')}; "
            f"the library's own commit-to-visible p50 per run (µs, 1 commit in 16, measured window): "
            f"{fmt_list([latency(r, measures[-1][0], 'p50') for r in runs], us)}, max "
            f"{fmt_list([latency(r, measures[-1][0], 'max') for r in runs], us)}")
        try:
            with open(os.path.join(out, "c.jitter.txt")) as f:
                jitter = f.read().strip().splitlines()
            details.append("- c: the machine's own stalls just before the runs (the first line is the command):\n\n"
                           + "\n".join("      " + line for line in jitter))
        except OSError:
            pass
        commands.append(("c", first_command(c)))
    if d10 and d1m:
        values = pair_ratios(d1m, d10)
        m = median(values)
        rows.append(("d", "1M paths ÷ 10k paths, lockstep records/s (closed loop, back-to-back pairs)", ">= 0.5x",
                     ratio(m), verdict(m, 0.5, True), fmt_list(values, ratio)))
        details.append(f"- d: lockstep records/s, 10k paths: "
                       f"{fmt_list([run_of(d, 'lockstep')['records_per_sec'] for _, d in d10], si)}; 1M paths: "
                       f"{fmt_list([run_of(d, 'lockstep')['records_per_sec'] for _, d in d1m], si)} "
                       f"(warm-up {d1m[0][1]['config']['warmup_secs']:g} s); peak RSS 10k "
                       f"{fmt_list([run_of(d, 'lockstep').get('peak_rss_bytes') for _, d in d10], mib)}, 1M "
                       f"{fmt_list([run_of(d, 'lockstep').get('peak_rss_bytes') for _, d in d1m], mib)}; "
                       f"segments at the top level at the end (1M): "
                       f"{fmt_list([(run_of(d, 'lockstep').get('segments_per_level') or ['?'])[-1] for _, d in d1m], str)}")
        commands.append(("d", f"{first_command(d10)}  then  {first_command(d1m)}"))
    dfull = experiment(out, "d-1M-full")
    if d10 and dfull:
        full = run_of(dfull[0][1], "lockstep")
        base10 = median([run_of(d, "lockstep")["records_per_sec"] for _, d in d10])
        r = full["records_per_sec"] / base10
        rows.append(("d", f"the same with every path existing first ({dfull[0][1]['config']['warmup_secs']:g} s warm-up, "
                          "one run) ÷ the 10k median of d", ">= 0.5x", ratio(r), verdict(r, 0.5, True),
                     f"{si(full['records_per_sec'])} vs {si(base10)} records/s"))
        details.append(f"- d (every path first): top-level segments at the end "
                       f"{(full.get('segments_per_level') or ['?'])[-1]}, peak RSS {mib(full.get('peak_rss_bytes'))}, "
                       f"commit-to-visible p50/p99 {us(latency(full, 'visible', 'p50'))}/{us(latency(full, 'visible', 'p99'))} µs")
        commands.append(("d (every path first)", first_command(dfull)))
    bench_path = os.path.join(out, "d-bench.json")
    if os.path.exists(bench_path):
        bench = load(bench_path)["median_ns"]
        if "10000" in bench and "1000000" in bench:
            r = bench["1000000"] / bench["10000"]
            rows.append(("d", "snapshot publish, 10 paths changed, shard of 1M ÷ 10k paths (criterion medians)",
                         "independent of path count (read: <= 2x for 100x the paths)", f"{r:.2f}x",
                         verdict(r, 2.0, False), f"{bench['10000'] / 1000:.2f} µs vs {bench['1000000'] / 1000:.2f} µs"))
            commands.append(("d (bench)", load(bench_path)["command"]))
    if e2 and e8:
        values = pair_ratios(e8, e2)
        m = median(values)
        rows.append(("e", "8 producers ÷ 2 producers, 2 shards, lockstep records/s (back-to-back pairs)", ">= 0.7x",
                     ratio(m), verdict(m, 0.7, True), fmt_list(values, ratio)))
        others = "; ".join(f"{e} {fmt_list(pair_ratios(e8, e2, e), ratio)}" for e in ("mutex", "channel", "raw"))
        details.append(f"- e: lockstep records/s, 2 producers: "
                       f"{fmt_list([run_of(d, 'lockstep')['records_per_sec'] for _, d in e2], si)}; 8 producers: "
                       f"{fmt_list([run_of(d, 'lockstep')['records_per_sec'] for _, d in e8], si)}; the same 8p ÷ 2p "
                       f"ratio for the other engines: {others}; lockstep ÷ mutex at 8p "
                       f"{fmt_list(in_run_ratios(e8, 'mutex'), ratio)}, ÷ raw at 8p {fmt_list(in_run_ratios(e8, 'raw'), ratio)}")
        commands.append(("e", f"{first_command(e2)}  then  {first_command(e8)}"))
    f_json, f_csv = os.path.join(out, "f.json"), os.path.join(out, "f.rss.csv")
    if os.path.exists(f_json) and os.path.exists(f_csv):
        doc = load(f_json)
        warmup, duration = doc["config"]["warmup_secs"], doc["config"]["duration_secs"]
        samples = []
        with open(f_csv) as f:
            next(f)
            for line in f:
                t, kib = line.strip().split(",")
                samples.append((float(t), int(kib)))
        at10 = next(((t, k) for t, k in samples if t >= 10.0), None)
        window_end = warmup + duration
        before_end = [(t, k) for t, k in samples if t <= window_end]
        end = before_end[-1] if before_end else None
        if at10 and end:
            r = end[1] / at10[1]
            later = max(k for t, k in samples if at10[0] <= t <= end[0])
            rows.append(("f", f"{duration:g} s closed loop (peak), DiscardSink: VmRSS at the end ÷ at 10 s", "<= 1.2x",
                         f"{r:.2f}x", verdict(r, 1.2, False),
                         f"{at10[1] / 1024:.1f} MiB at {at10[0]:.0f} s, {end[1] / 1024:.1f} MiB at {end[0]:.0f} s"))
            run = run_of(doc, "lockstep")
            details.append(f"- f: VmRSS sampled every 1 s from launch (warm-up {warmup:g} s, then {duration:g} s measured); "
                           f"highest sample between 10 s and the end {later / 1024:.1f} MiB ({later / at10[1]:.2f}x the 10 s value); "
                           f"loadgen's own peak RSS {mib(run.get('peak_rss_bytes'))}; records/s over the run {si(run['records_per_sec'])}; "
                           f"{len(samples)} samples in `targets/f.rss.csv`, chart `targets/f.rss.svg`")
            svg_rss(samples, at10, end, os.path.join(out, "f.rss.svg"))
        commands.append(("f", command_of(f_json)))

    lines = ["| | target | goal | measured (median) | verdict | per run |", "| --- | --- | --- | ---: | --- | --- |"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |" for r in rows]
    lines += ["", "Details:", ""] + details
    lines += ["", "Commands (each run REPEAT times by `perf/targets.sh`):", ""]
    lines += [f"- {name}: `{cmd}`" for name, cmd in commands if cmd]
    machine = os.path.join(out, "machine.txt")
    if os.path.exists(machine):
        with open(machine) as f:
            lines += ["", "Machine (`targets/machine.txt`):", "", "```", f.read().rstrip(), "```"]
    write(os.path.join(results, "targets.md"), "\n".join(lines))


def svg_rss(samples, at10, end, path):
    width, height, left, top, chart_w, chart_h = 640, 300, 70, 40, 540, 210
    t_max = max(t for t, _ in samples) or 1
    k_max = nice_ceiling(max(k for _, k in samples) / 1024)

    def xy(t, kib):
        return left + chart_w * t / t_max, top + chart_h * (1 - kib / 1024 / k_max)

    out = [svg_open(width, height),
           '<text x="10" y="22" font-size="15" font-weight="bold">lockstep VmRSS over the long run (MiB; sampled every 1 s)</text>']
    for i in range(6):
        v = k_max * i / 5
        _, y = xy(0, v * 1024)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + chart_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:g}</text>')
    step = 10 if t_max > 30 else 5
    t = 0
    while t <= t_max:
        x, _ = xy(t, 0)
        out.append(f'<text x="{x:.1f}" y="{top + chart_h + 16}" font-size="11" text-anchor="middle">{t:g} s</text>')
        t += step
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(t, k) for t, k in samples))
    out.append(f'<polyline points="{points}" fill="none" stroke="{COLORS["lockstep"]}" stroke-width="2"/>')
    for (t, k), name, anchor in ((at10, "10 s", "middle"), (end, "end", "end")):
        x, y = xy(t, k)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#d62728"/>')
        out.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" font-size="11" text-anchor="{anchor}">{name}: {k / 1024:.1f} MiB</text>')
    out.append("</svg>")
    write(path, "\n".join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--results", default=os.path.join(here, "results"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--targets-only", action="store_true")
    group.add_argument("--matrix-only", action="store_true")
    args = parser.parse_args()

    if not args.targets_only:
        configs = load_matrix(args.results)
        if configs:
            write(os.path.join(args.results, "table.md"), matrix_table(configs))
            svg_throughput(configs, os.path.join(args.results, "throughput.svg"))
            svg_latency(configs, os.path.join(args.results, "latency.svg"))
        else:
            print(f"render.py: no matrix results in {args.results}", file=sys.stderr)
    if not args.matrix_only:
        render_targets(args.results)


if __name__ == "__main__":
    main()
