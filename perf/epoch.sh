#!/usr/bin/env bash
# The targets of issues 10 (epoch batches) and 11 (the producer's hot path), REPEAT times each:
# loadgen ratios taken inside one run, the 1M-vs-10k and 128-vs-8 pairs run back to back, the
# fixed-rate latency at half of the measured peak, the defaults example, and the criterion
# benches. Writes perf/results/epoch/*.{txt,json} and perf/results/epoch/summary.md.
#
#   perf/epoch.sh                 # REPEAT=3: about 8 minutes on 2 cores
#   REPEAT=1 ONLY="a f" perf/epoch.sh
#
# MEASURE_LOCK=FILE holds `flock FILE` around each run (several people, one machine).
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
ONLY=${ONLY:-"a b c d e f g h"}
OUT=${OUT:-perf/results/epoch}
mkdir -p "$OUT"

cargo build --release -p loadgen >/dev/null 2>&1
cargo build --release --example defaults >/dev/null 2>&1
bin=$(mktemp -d)/loadgen
cp target/release/loadgen "$bin"
cp target/release/examples/defaults "$(dirname "$bin")/defaults"
run() { # name, args...
    local name=$1; shift
    local cmd=("$bin" --record i64 --duration "${DURATION:-3s}" --warmup "${WARMUP:-1s}" --json "$OUT/$name.json" "$@")
    echo "${cmd[*]#$bin}" | sed "s|^|cargo run --release -p loadgen --|" > "$OUT/$name.txt"
    uptime >> "$OUT/$name.txt"
    if [ -n "${MEASURE_LOCK:-}" ]; then
        flock "$MEASURE_LOCK" "${cmd[@]}" >> "$OUT/$name.txt" 2>&1 || true
    else
        "${cmd[@]}" >> "$OUT/$name.txt" 2>&1 || true
    fi
}
want() { [[ " $ONLY " == *" $1 "* ]]; }

for r in $(seq 1 "$REPEAT"); do
    want a && run "a.r$r" --engine all
    want b && run "b.r$r" --engine all --producers 4
    want c && run "c.r$r" --engine all --parts-per-commit 16
    if want d; then
        run "d10k.r$r" --engine lockstep
        WARMUP=5s run "d1m.r$r" --engine lockstep --paths 1000000
    fi
    if want e; then
        run "e8.r$r" --engine lockstep --producers 8
        run "e128.r$r" --engine lockstep --producers 128
    fi
done
if want f; then
    # Half of the median lockstep peak of a (or of a quick run if a was skipped).
    peak=$(python3 - "$OUT" <<'EOF'
import glob, json, statistics, sys
rates = [r["records_per_sec"] for f in glob.glob(sys.argv[1] + "/a.r*.json")
         for r in json.load(open(f))["runs"] if r["engine"] == "lockstep"]
print(int(statistics.median(rates)) if rates else 10_000_000)
EOF
)
    for r in $(seq 1 "$REPEAT"); do
        run "f.r$r" --engine lockstep --rate $((peak / 2))
    done
fi
if want g; then
    for r in $(seq 1 "$REPEAT"); do
        { echo "cargo run --release --example defaults 4"; uptime; "$(dirname "$bin")/defaults" 4; } > "$OUT/g.r$r.txt" 2>&1 || true
    done
fi
if want h; then
    cargo bench --features internal-bench --bench snapshot -- "shard_turn|long_history" > "$OUT/h.snapshot.txt" 2>&1 || true
    cargo bench --bench commit -- burst > "$OUT/h.commit.txt" 2>&1 || true
    cargo bench --features internal-bench --bench queue > "$OUT/h.queue.txt" 2>&1 || true
fi
python3 perf/epoch.py "$OUT" > "$OUT/summary.md"
cat "$OUT/summary.md"
