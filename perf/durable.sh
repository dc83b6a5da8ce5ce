#!/usr/bin/env bash
# Issue 18's targets (durable pipelines), REPEAT times, configurations alternating within each
# repetition so that every ratio is taken between neighbouring runs on this shared machine:
#
#   m1/w1/s1  1 producer, 1 part per commit: memory only, Written, Synced (closed loop), all
#             with every segment kept (--retain-all)
#   m4/w4     the same with 4 producers, memory only and Written
#   n1/wn1    memory only and Written with the loadgen's usual sink + Newest(1) retention (a
#             durable window replaces the files it left by a names file; n1 ÷ m1 is what
#             keeping every segment costs by itself)
#   f         Synced at a fixed rate of half the median s1 rate: commit-to-durable (wait_durable)
#   q         the same at a quarter of it (context)
#   p         the fjall peer rows: lockstep Written (pw1) and fjall Written (pf1), then lockstep
#             Synced (ps1) and fjall Synced (pfs1, PersistMode::SyncData), alternating
#   rec       examples/recover: write N commits of one i64 part, reopen twice (separate processes)
#
# All lockstep, i64 records (Sum), 1 shard, 10k paths, loadgen's divisor 4 / max level 4.
# Writes perf/results/durable/{runs.jsonl,recover.txt,summary.md} (perf/durable.py makes the
# summary); each loadgen run's report and JSON stay in $WORK (a temporary directory), removed at
# the end unless KEEP_WORK=1.
#
#   perf/durable.sh                          # REPEAT=5, N=100000000: about 8 minutes, 1.5 GB disk
#   REPEAT=1 N=10000000 ONLY="m f" perf/durable.sh
#
# DATA=dir: where the logs go (default /tmp/lockstep-durable; the loadgen makes a fresh
# subdirectory per run and removes it, the recover example makes DATA/recover-N and this script
# removes it). MEASURE_LOCK=FILE holds `flock FILE` around each run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
N=${N:-100000000}
ONLY=${ONLY:-"m f p rec"}
OUT=${OUT:-perf/results/durable}
DATA=${DATA:-/tmp/lockstep-durable}
mkdir -p "$OUT" "$DATA"
WORK=$(mktemp -d)
[ "${KEEP_WORK:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

cargo build --release -p loadgen >/dev/null 2>&1
cargo build --release --example recover >/dev/null 2>&1
cp target/release/loadgen target/release/examples/recover "$WORK/"
locked() { if [ -n "${MEASURE_LOCK:-}" ]; then flock "$MEASURE_LOCK" "$@"; else "$@"; fi; }
run() { # name, args...
    local name=$1; shift
    local cmd=(--record i64 --paths 10000 --duration "${DURATION:-3s}" --warmup "${WARMUP:-1s}"
        --no-limit --quiet --json "$WORK/$name.json" "$@")
    echo "cargo run --release -p loadgen -- ${cmd[*]}" > "$WORK/$name.txt"
    uptime >> "$WORK/$name.txt"
    locked "$WORK/loadgen" "${cmd[@]}" >> "$WORK/$name.txt" 2>&1 || echo "run $name failed" >&2
}
want() { [[ " $ONLY " == *" $1 "* ]]; }

if want m; then
    for r in $(seq 1 "$REPEAT"); do
        run "m1.r$r" --retain-all
        run "w1.r$r" --retain-all --durable "$DATA" --durability written
        run "s1.r$r" --retain-all --durable "$DATA" --durability synced
        run "n1.r$r"
        run "wn1.r$r" --durable "$DATA" --durability written
        run "m4.r$r" --retain-all --producers 4
        run "w4.r$r" --retain-all --durable "$DATA" --durability written --producers 4
    done
fi
if want f; then
    half=${RATE:-$(python3 - "$WORK" <<'EOF'
import json, glob, statistics, sys
rates = [json.load(open(p))["runs"][0]["commits_per_sec"] for p in glob.glob(sys.argv[1] + "/s1.r*.json")]
print(int(statistics.median(rates) / 2) if rates else 200000)
EOF
)}
    echo "fixed rate: $half commits/s (half the median Synced closed-loop rate)" >&2
    for r in $(seq 1 "$REPEAT"); do
        run "f.r$r" --retain-all --durable "$DATA" --durability synced --rate "$half"
        run "q.r$r" --retain-all --durable "$DATA" --durability synced --rate "$((half / 2))"
    done
fi
if want p; then
    for r in $(seq 1 "$REPEAT"); do
        run "pw1.r$r" --retain-all --durable "$DATA" --durability written
        run "pf1.r$r" --engine fjall --durable "$DATA" --durability written
        run "ps1.r$r" --retain-all --durable "$DATA" --durability synced
        run "pfs1.r$r" --engine fjall --durable "$DATA" --durability synced
    done
fi
# One compact line per run: the figures the summary uses.
python3 - "$WORK" > "$OUT/runs.jsonl" <<'EOF'
import json, glob, os, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.json")):
    d = json.load(open(path)); run = d["runs"][0] if d["runs"] else {}
    c = d["config"]; dur = run.get("durable") or {}
    disk = d.get("disk") or {}
    print(json.dumps({
        "name": os.path.basename(path)[:-5], "commit": c["commit"], "durability": c.get("durability"),
        "retain_all": c.get("retain_all"), "producers": c["producers"], "rate": c["rate"],
        "records_per_sec": run.get("records_per_sec"), "commits_per_sec": run.get("commits_per_sec"),
        "missed": run.get("missed"), "peak_rss_bytes": run.get("peak_rss_bytes"),
        "problems": run.get("problems"), "issued_records": run.get("issued_records"),
        "log_bytes": dur.get("log_bytes"), "log_bytes_per_record": dur.get("log_bytes_per_record"),
        "wait_durable_us": dur.get("wait_durable_latency_us"), "wait_durable_dropped": dur.get("wait_durable_dropped"),
        "visible_us": run.get("visible_latency_us"),
        "disk_append_mib_s": disk.get("append_bytes_per_sec", 0) / 2**20 if disk else None,
        "disk_fdatasyncs_s": disk.get("fdatasyncs_per_sec"),
        "disk_fdatasync_us": disk.get("fdatasync_latency_us"),
    }))
EOF
if want rec; then
    dir="$DATA/recover-$N"
    rm -rf "$dir"
    {
        echo "cargo run --release --example recover -- write $dir $N 4; then open $dir 4, twice (separate processes)"
        uptime
        locked "$WORK/recover" write "$dir" "$N" 4
        locked "$WORK/recover" open "$dir" 4
        locked "$WORK/recover" open "$dir" 4
        rm -rf "$dir"
        echo "cargo run --release --example recover -- write $dir $N; then open $dir, twice (library default levels)"
        locked "$WORK/recover" write "$dir" "$N"
        locked "$WORK/recover" open "$dir"
        locked "$WORK/recover" open "$dir"
        rm -rf "$dir"
    } > "$OUT/recover.txt" 2>&1 || { echo "recover failed: see $OUT/recover.txt" >&2; rm -rf "$dir"; }
fi
python3 perf/durable.py "$OUT" > "$OUT/summary.md"
cat "$OUT/summary.md"
