#!/usr/bin/env bash
# Runs exactly the experiments behind each speed target of the perf issue, REPEAT times each
# (the report takes medians; ratios are taken inside one run, or between the two runs of one
# back-to-back pair), and writes perf/results/targets/ plus perf/results/targets.md.
#
#   a  closed loop, 1 producer, 1 shard, 16 B records, 1 part/commit, 10k uniform paths,
#      --engine all: lockstep vs mutex, channel, raw
#   b  the same with 16 parts per commit
#   c  fixed rate at half of lockstep's peak (the median lockstep commits/s of a), lockstep
#      only: commit-to-visible p99 and p99.9 (the observer's and the library's own), after the
#      jitter probe (the stalls a spinning thread sees on this machine)
#   d  lockstep closed loop, 1M paths (warm-up WARMUP_1M, so every path exists before
#      measuring: most do, not all, see dfull) vs 10k paths, back to back; plus the criterion
#      publish bench (10 paths changed, 10k vs 1M paths in the shard)
#   dfull  one more 1M-path run with a WARMUP_1M_FULL warm-up, long enough for every path to
#      exist before measuring (compared with d's 10k-path median)
#   e  8 producers vs 2 producers, 2 shards, --engine all, back to back
#   f  60 s closed loop (peak) of lockstep, whose sink discards (DiscardSink,
#      Retention::Newest(1)); the process's VmRSS sampled every second from outside
#
# Usage:
#   perf/targets.sh                 # everything, REPEAT=3: about 7 min on 2 cores
#   ONLY="a c" perf/targets.sh      # some experiments (c needs a's results to exist)
#
# Environment (all optional; see also perf/lib.sh):
#   REPEAT=3  DURATION=3s  WARMUP=1s  WARMUP_1M=10s  WARMUP_1M_FULL=45s  LONG=60s (f's duration)
#   BENCH=0   skip the criterion bench of d (cargo bench --features internal-bench --bench snapshot -- snapshot_publish)
#   RESULTS=perf/results   (the targets go to $RESULTS/targets)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEAT=${REPEAT:-3}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
WARMUP_1M=${WARMUP_1M:-10s}
WARMUP_1M_FULL=${WARMUP_1M_FULL:-45s}
LONG=${LONG:-60s}
BENCH=${BENCH:-1}
ONLY=${ONLY:-a b c d dfull e f}
RESULTS=${RESULTS:-$PERF_DIR/results}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
OUT=$RESULTS/targets

mkdir -p "$OUT"
build_loadgen
SESSION="perf/targets.sh ONLY='$ONLY' REPEAT=$REPEAT" describe_machine "$OUT/machine.txt"

wants() { [[ " $ONLY " == *" $1 "* ]]; }
# The workload every target shares; each experiment adds its engine, producers, parts per
# commit, shards, paths and warm-up (the loadgen refuses a flag given twice).
base=(--distribution uniform --record shared --record-bytes 16 --duration "$DURATION")

# Drops earlier results of one experiment, so a median never mixes two sessions.
fresh() { rm -f "$OUT/$1".r*.json "$OUT/$1".r*.txt "$OUT/$1".*.hgrm "$OUT/$1".svg; }

# The extra outputs (percentile files, a latency chart) for the first run of an experiment.
extras() { (( $2 == 1 )) && echo "--hgrm $OUT/$1 --plot $OUT/$1.svg"; return 0; }

if wants a; then
    fresh a
    for ((k = 1; k <= REPEAT; k++)); do
        # shellcheck disable=SC2046
        run_loadgen "$OUT/a.r$k" --engine all --producers 1 --shards 1 --paths 10000 --parts-per-commit 1 \
            "${base[@]}" --warmup "$WARMUP" $(extras a $k)
    done
fi

if wants b; then
    fresh b
    for ((k = 1; k <= REPEAT; k++)); do
        # shellcheck disable=SC2046
        run_loadgen "$OUT/b.r$k" --engine all --producers 1 --shards 1 --paths 10000 --parts-per-commit 16 \
            "${base[@]}" --warmup "$WARMUP" $(extras b $k)
    done
fi

if wants c; then
    # Lockstep's peak: the median of its commits/s over a's runs.
    peak=$(python3 - "$OUT" <<'EOF'
import glob, json, statistics, sys
rates = [run["commits_per_sec"]
         for f in sorted(glob.glob(sys.argv[1] + "/a.r*.json"))
         for run in json.load(open(f))["runs"] if run["engine"] == "lockstep"]
if not rates:
    sys.exit("targets.sh: c needs a's results (run ONLY='a c')")
print(int(statistics.median(rates)))
EOF
)
    rate=$(( peak / 2 ))
    log "c: lockstep's peak (median of a) is $peak commits/s; fixed rate $rate"
    echo "$peak" >"$OUT/c.peak"
    fresh c
    # The machine's own stalls, the floor under any latency measured on it.
    wait_idle
    { echo "\$ cargo run --release -p loadgen --bin jitter -- --duration 3s"; "$JITTER" --duration 3s; } >"$OUT/c.jitter.txt"
    for ((k = 1; k <= REPEAT; k++)); do
        # shellcheck disable=SC2046
        run_loadgen "$OUT/c.r$k" --engine lockstep --producers 1 --shards 1 --paths 10000 --parts-per-commit 1 \
            --rate "$rate" "${base[@]}" --warmup "$WARMUP" $(extras c $k)
    done
fi

if wants d; then
    fresh d-10k
    fresh d-1M
    for ((k = 1; k <= REPEAT; k++)); do
        run_loadgen "$OUT/d-10k.r$k" --engine lockstep --producers 1 --shards 1 --paths 10000 \
            --parts-per-commit 1 "${base[@]}" --warmup "$WARMUP"
        run_loadgen "$OUT/d-1M.r$k" --engine lockstep --producers 1 --shards 1 --paths 1000000 \
            --parts-per-commit 1 "${base[@]}" --warmup "$WARMUP_1M"
    done
    if [[ "$BENCH" == 1 ]]; then
        log "d: cargo bench --features internal-bench --bench snapshot -- snapshot_publish"
        wait_idle
        (cd "$ROOT" && cargo bench --features internal-bench --bench snapshot -- snapshot_publish) >"$OUT/d-bench.txt" 2>&1
        python3 - "${CARGO_TARGET_DIR:-$ROOT/target}/criterion" "$OUT/d-bench.json" <<'EOF'
import glob, json, os, sys
out = {"command": "cargo bench --features internal-bench --bench snapshot -- snapshot_publish", "median_ns": {}}
for f in glob.glob(sys.argv[1] + "/snapshot_publish_10_changed/*/*/new/estimates.json"):
    paths = f.split(os.sep)[-3]
    out["median_ns"][paths] = json.load(open(f))["median"]["point_estimate"]
json.dump(out, open(sys.argv[2], "w"), indent=2)
print(out)
EOF
    fi
fi

if wants dfull; then
    # One more 1M-path run whose warm-up is long enough for every path to exist before measuring
    # (at ~140k records/s, 45 s writes each of the 1M uniform paths ~6 times: all but ~0.2 %).
    fresh d-1M-full
    run_loadgen "$OUT/d-1M-full.r1" --engine lockstep --producers 1 --shards 1 --paths 1000000 \
        --parts-per-commit 1 "${base[@]}" --warmup "$WARMUP_1M_FULL"
fi

if wants e; then
    fresh e-p2
    fresh e-p8
    for ((k = 1; k <= REPEAT; k++)); do
        for p in 2 8; do
            run_loadgen "$OUT/e-p$p.r$k" --engine all --producers "$p" --shards 2 --paths 10000 \
                --parts-per-commit 1 "${base[@]}" --warmup "$WARMUP"
        done
    done
fi

if wants f; then
    # Not through run_loadgen: the loadgen runs in the background while a sampler reads its
    # VmRSS from /proc every second (the loadgen itself reports only the peak at the end).
    rm -f "$OUT"/f.*
    args=(--engine lockstep --producers 1 --parts-per-commit 1 --shards 1 --paths 10000
          --distribution uniform --record shared --record-bytes 16 --duration "$LONG" --warmup "$WARMUP")
    wait_idle
    {
        echo "\$ cargo run --release -p loadgen -- ${args[*]}${EXTRA_ARGS:+ $EXTRA_ARGS} --json $(rel "$OUT/f.json")"
        echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg), CPU busy ${LAST_BUSY}% over 1 s before the run (waited ${LAST_WAITED}s); VmRSS sampled every 1 s into f.rss.csv"
    } >"$OUT/f.txt"
    log "f: ${args[*]} (sampling VmRSS)"
    # shellcheck disable=SC2086
    "$BIN" "${args[@]}" $EXTRA_ARGS --json "$OUT/f.json" >>"$OUT/f.txt" 2>&1 &
    pid=$!
    python3 - "$pid" "$OUT/f.rss.csv" <<'EOF'
import sys, time
pid, path = sys.argv[1], sys.argv[2]
start = time.monotonic()
with open(path, "w") as out:
    out.write("t_s,rss_kib\n")
    tick = 0
    while True:
        try:
            with open(f"/proc/{pid}/status") as status:
                rss = next((l.split()[1] for l in status if l.startswith("VmRSS:")), None)
        except OSError:
            break
        if rss is None:  # exited, not yet reaped
            break
        out.write(f"{time.monotonic() - start:.3f},{rss}\n")
        out.flush()
        tick += 1
        time.sleep(max(0.0, start + tick - time.monotonic()))
EOF
    rc=0
    wait "$pid" || rc=$?
    printf '%s\t%s\trc=%s\tload=%s\tbusy=%s%%\twaited=%ss\t%s\n' "$(date -u +%FT%TZ)" f "$rc" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$LAST_BUSY" "$LAST_WAITED" "${args[*]}" >>"$RESULTS/runs.log"
    if (( rc != 0 )); then
        FAILED_RUNS=$(( FAILED_RUNS + 1 ))
        log "f: loadgen exited with status $rc"
    fi
fi

echo "uptime after: $(uptime)" >>"$OUT/machine.txt"
"$RENDERER" --results "$RESULTS" --targets-only
if (( FAILED_RUNS > 0 )); then
    log "$FAILED_RUNS run(s) exited with a non-zero status; see $RESULTS/runs.log"
    exit 1
fi
