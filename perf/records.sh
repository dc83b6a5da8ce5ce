#!/usr/bin/env bash
# The loadgen's headline figures by record kind (issue 9): every engine beside the hand-off
# limit measured in the same process, for --record i64 (the headline: counters summed per
# path) and --record shared (today's Arc<[u8]> records, for continuity with the older figures).
# Writes perf/results/records/<id>.r<k>.json and .txt, then perf/results/records.md (medians of
# the per-run figures and ratios).
#
# Usage:
#   perf/records.sh                               # REPEAT=3: ~4 min on 2 cores
#   MEASURE_LOCK=/tmp/lockstep-measure.lock perf/records.sh   # one measurement at a time
#
# Environment: REPEAT (3), DURATION (3s), WARMUP (1s), ONLY="i64 shared i64-k16 i64-rate",
# RATE (200000 commits/s for i64-rate), RESULTS (perf/results/records), EXTRA_ARGS, MEASURE_LOCK.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEAT=${REPEAT:-3}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
ONLY=${ONLY:-i64 shared i64-k16 i64-rate}
RATE=${RATE:-200000}
RESULTS=${RESULTS:-$PERF_DIR/results/records}

mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
build_loadgen
SESSION="perf/records.sh REPEAT=$REPEAT ONLY=\"$ONLY\"" describe_machine "$RESULTS/machine.txt"

base=(--engine all --producers 1 --shards 1 --paths 10000 --distribution uniform --duration "$DURATION" --warmup "$WARMUP")
for id in $ONLY; do
    case "$id" in
        i64) args=(--record i64 --parts-per-commit 1) ;;
        shared) args=(--record shared --record-bytes 16 --parts-per-commit 1) ;;
        i64-k16) args=(--record i64 --parts-per-commit 16) ;;
        i64-rate) args=(--record i64 --parts-per-commit 1 --rate "$RATE") ;;
        *) echo "records.sh: unknown configuration '$id' (i64, shared, i64-k16, i64-rate)" >&2; exit 2 ;;
    esac
    rm -f "$RESULTS/$id".r*.json "$RESULTS/$id".r*.txt
    for ((k = 1; k <= REPEAT; k++)); do
        run_loadgen "$RESULTS/$id.r$k" "${base[@]}" "${args[@]}"
    done
done
echo "uptime after: $(uptime)" >>"$RESULTS/machine.txt"
python3 "$PERF_DIR/records.py" "$RESULTS" >"$RESULTS/../records.md"
log "wrote $(rel "$RESULTS/../records.md"); $FAILED_RUNS run(s) failed"
