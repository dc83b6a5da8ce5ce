#!/usr/bin/env bash
# Runs the loadgen comparison matrix: engines (all four, in one process per configuration, so
# every ratio is taken in one run) x producers x paths x parts per commit x record size.
# Writes perf/results/<config-id>.json (and .txt, the command plus the human report), then
# renders perf/results/table.md, throughput.svg and latency.svg (the loadgen's `render` binary).
#
# Usage:
#   perf/run.sh                      # the full matrix: 32 configurations, ~10 min on 2 cores
#   MATRIX=quick perf/run.sh         # producers 1,2 x 10k paths x parts 1,16 x 16 B: 4 configs
#   REPEAT=3 MATRIX=quick perf/run.sh   # 3 runs per configuration; the table shows medians
#
# Environment (all optional; see also perf/lib.sh):
#   MATRIX=full|quick   which defaults to use for the lists below (default full)
#   PRODUCERS="1 2 4 8" PATHS="10000 1000000" PARTS="1 16" BYTES="16 256"   the axes
#   ENGINE=all          --engine for every run (default all)
#   SHARDS=1            --shards (default 1)
#   DISTRIBUTION=uniform
#   DURATION=3s WARMUP=1s   per engine
#   WARMUP_LARGE=5s     warm-up for configurations with >= 1M paths, so that nearly every path
#                       exists before measuring (at ~2M records/s, 5 s touches each of 1M
#                       uniform paths ~10 times); set it to $WARMUP to skip
#   REPEAT=1            runs per configuration (files <config-id>.r<k>.json when > 1)
#   RESULTS=perf/results    output directory
#   RENDER=0            do not render at the end
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MATRIX=${MATRIX:-full}
case "$MATRIX" in
    full)
        : "${PRODUCERS:=1 2 4 8}" "${PATHS:=10000 1000000}" "${PARTS:=1 16}" "${BYTES:=16 256}"
        ;;
    quick)
        : "${PRODUCERS:=1 2}" "${PATHS:=10000}" "${PARTS:=1 16}" "${BYTES:=16}"
        ;;
    *)
        echo "run.sh: MATRIX must be full or quick, not '$MATRIX'" >&2
        exit 2
        ;;
esac
ENGINE=${ENGINE:-all}
SHARDS=${SHARDS:-1}
DISTRIBUTION=${DISTRIBUTION:-uniform}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
WARMUP_LARGE=${WARMUP_LARGE:-5s}
REPEAT=${REPEAT:-1}
RESULTS=${RESULTS:-$PERF_DIR/results}
RENDER=${RENDER:-1}

mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
build_loadgen
SESSION="perf/run.sh MATRIX=$MATRIX REPEAT=$REPEAT" describe_machine "$RESULTS/machine.txt"
log "matrix $MATRIX: producers [$PRODUCERS] x paths [$PATHS] x parts [$PARTS] x bytes [$BYTES]," \
    "engine $ENGINE, $SHARDS shard(s), $DURATION after $WARMUP warm-up ($WARMUP_LARGE for >= 1M paths), $REPEAT run(s) each"

for paths in $PATHS; do
    warmup=$WARMUP
    (( paths >= 1000000 )) && warmup=$WARMUP_LARGE
    for parts in $PARTS; do
        for bytes in $BYTES; do
            for producers in $PRODUCERS; do
                id="cl-$ENGINE-p$producers-s$SHARDS-n$(short_count "$paths")-${DISTRIBUTION//:/}-k$parts-b$bytes"
                rm -f "$RESULTS/$id".json "$RESULTS/$id".txt "$RESULTS/$id".r*.json "$RESULTS/$id".r*.txt
                for ((k = 1; k <= REPEAT; k++)); do
                    stem=$RESULTS/$id
                    (( REPEAT > 1 )) && stem=$RESULTS/$id.r$k
                    run_loadgen "$stem" --engine "$ENGINE" --producers "$producers" --shards "$SHARDS" \
                        --paths "$paths" --distribution "$DISTRIBUTION" --parts-per-commit "$parts" \
                        --record shared --record-bytes "$bytes" --duration "$DURATION" --warmup "$warmup"
                done
            done
        done
    done
done
echo "uptime after: $(uptime)" >>"$RESULTS/machine.txt"

if [[ "$RENDER" == 1 ]]; then
    "$RENDERER" --results "$RESULTS"
fi
if (( FAILED_RUNS > 0 )); then
    log "$FAILED_RUNS run(s) exited with a non-zero status; see $RESULTS/runs.log"
    exit 1
fi
