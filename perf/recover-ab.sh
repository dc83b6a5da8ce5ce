#!/usr/bin/env bash
# Log replay, build against build: each run writes N commits of one i64 part with
# examples/recover (`write DIR N`, every record in the log below the first batch file range when
# N is 1 M), then reopens them (`open DIR`), the builds alternating within each of PAIRS rounds so
# that every ratio is taken between neighbours on this shared machine. One line per run: the
# binary, the open line's seconds, records/s and peak KiB, the CPU milliseconds of the whole open
# (with `perf` installed), and the writing pipeline's live peak.
#
#   cargo build --release --example recover && cp target/release/examples/recover /tmp/recover-new
#   perf/recover-ab.sh 1000000 5 /tmp/recover-base /tmp/recover-new
#
# DATA=dir: where the log goes (default /tmp/lockstep-recover-ab, removed after each run).
# MEASURE_LOCK=FILE holds `flock FILE` around each write and open.
set -euo pipefail
n=$1; pairs=$2; shift 2
dir=${DATA:-/tmp/lockstep-recover-ab}
locked() { if [ -n "${MEASURE_LOCK:-}" ]; then flock "$MEASURE_LOCK" "$@"; else "$@"; fi; }
stat=$(mktemp)
trap 'rm -rf "$dir" "$stat"' EXIT
for _ in $(seq "$pairs"); do
    for bin in "$@"; do
        rm -rf "$dir"
        written=$(locked "$bin" write "$dir" "$n")
        if command -v perf >/dev/null; then
            opened=$(locked perf stat -x, -e task-clock -o "$stat" "$bin" open "$dir" 2>&1)
            cpu="cpu_ms=$(grep task-clock "$stat" | cut -d, -f1)"
        else
            opened=$(locked "$bin" open "$dir" 2>&1)
            cpu="cpu_ms=-"
        fi
        live=$(echo "$written" | tr ' ' '\n' | grep live_peak || true)
        echo "$(basename "$bin") $(echo "$opened" | awk '{print $3, $4, $6}') $cpu $live"
    done
done
