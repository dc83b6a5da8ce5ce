# Shared by perf/run.sh and perf/targets.sh (sourced, not run): building the loadgen once,
# waiting for an idle machine, running one configuration with its command recorded, and
# describing the machine.
#
# Environment (all optional):
#   LOADGEN=path        use this loadgen binary instead of building one (jitter and render are
#                       then taken from beside it, unless JITTER or RENDERER says where)
#   CARGO_TARGET_DIR    where cargo builds (default: the workspace's target/)
#   IDLE_CHECK=0        do not wait for an idle machine before each run (default 1)
#   IDLE_MAX_BUSY=25    a machine is idle when at most this % of all CPUs was busy over 1 s
#   IDLE_WAIT_MAX=300   give up waiting after this many seconds (and run anyway, logged)
#   EXTRA_ARGS="..."    appended to every loadgen command line (e.g. "--pin")

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
IDLE_CHECK=${IDLE_CHECK:-1}
IDLE_MAX_BUSY=${IDLE_MAX_BUSY:-25}
IDLE_WAIT_MAX=${IDLE_WAIT_MAX:-300}
EXTRA_ARGS=${EXTRA_ARGS:-}
FAILED_RUNS=0

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Builds the loadgen once, in release, and copies the binary to a private directory, so that
# someone rebuilding the workspace mid-run cannot swap the binary between two configurations.
# Sets BIN, JITTER and RENDERER (the loadgen's `render` binary, which writes the tables and
# charts).
build_loadgen() {
    if [[ -n "${LOADGEN:-}" ]]; then
        BIN=$LOADGEN
        JITTER=${JITTER:-$(dirname "$LOADGEN")/jitter}
        RENDERER=${RENDERER:-$(dirname "$LOADGEN")/render}
        log "using LOADGEN=$BIN"
        return
    fi
    log "building the loadgen (cargo build --release -p loadgen)"
    (cd "$ROOT" && cargo build --release -p loadgen --quiet)
    local target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    BIN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-perf.XXXXXX")
    trap 'rm -rf "$BIN_DIR"' EXIT
    cp "$target_dir/release/loadgen" "$target_dir/release/jitter" "$target_dir/release/render" "$BIN_DIR/"
    BIN=$BIN_DIR/loadgen
    JITTER=$BIN_DIR/jitter
    RENDERER=$BIN_DIR/render
}

# Percentage of all CPUs busy over the next second, from /proc/stat.
cpu_busy_percent() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -r -a b < <(grep '^cpu ' /proc/stat)
    # user nice system idle iowait irq softirq steal
    local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
    local idle=$(( (b[4]+b[5]) - (a[4]+a[5]) ))
    local total=$(( busy + idle ))
    (( total > 0 )) || { echo 0; return; }
    echo $(( 100 * busy / total ))
}

# Waits (up to IDLE_WAIT_MAX s) until at most IDLE_MAX_BUSY % of the CPUs are busy. Sets
# LAST_BUSY (the last reading) and LAST_WAITED (seconds spent waiting).
wait_idle() {
    LAST_BUSY=-1
    LAST_WAITED=0
    [[ "$IDLE_CHECK" == 1 ]] || return 0
    local started=$SECONDS
    while :; do
        LAST_BUSY=$(cpu_busy_percent)
        LAST_WAITED=$(( SECONDS - started ))
        if (( LAST_BUSY <= IDLE_MAX_BUSY )); then return 0; fi
        if (( LAST_WAITED >= IDLE_WAIT_MAX )); then
            log "machine still ${LAST_BUSY}% busy after ${LAST_WAITED}s of waiting; running anyway"
            return 0
        fi
        log "machine ${LAST_BUSY}% busy (others: $(busiest)); waiting"
        sleep 10
    done
}

# The three busiest processes, for the log.
busiest() {
    ps -eo pcpu=,comm= --sort=-pcpu | head -3 | awk '{printf "%s%s %s%%", (NR>1?", ":""), $2, $1}'
}

# run_loadgen OUT_STEM ARGS...: runs the loadgen with ARGS plus --json OUT_STEM.json, writes
# OUT_STEM.txt (the command, the machine's state, then the human report) and appends a line to
# $RESULTS/runs.log. A failed run (exit status != 0) is logged and counted, not fatal.
run_loadgen() {
    local stem=$1
    shift
    local -a cmd=("$BIN" "$@")
    # On a machine shared with others who measure too, MEASURE_LOCK=FILE holds flock(1) on FILE
    # for the run, so only one measurement runs at a time.
    if [[ -n "${MEASURE_LOCK:-}" ]]; then cmd=(flock "$MEASURE_LOCK" "${cmd[@]}"); fi
    # shellcheck disable=SC2206 # EXTRA_ARGS is a list of words on purpose
    if [[ -n "$EXTRA_ARGS" ]]; then cmd+=($EXTRA_ARGS); fi
    cmd+=(--json "$stem.json")
    wait_idle
    local load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    {
        echo "\$ cargo run --release -p loadgen -- $(rel_all "$*")${EXTRA_ARGS:+ $EXTRA_ARGS} --json $(rel "$stem.json")"
        echo "# $(date -u +%FT%TZ) load average $load, CPU busy ${LAST_BUSY}% over 1 s before the run (waited ${LAST_WAITED}s)"
    } >"$stem.txt"
    log "$(basename "$stem"): $*"
    local rc=0
    "${cmd[@]}" >>"$stem.txt" 2>"$stem.err" || rc=$?
    cat "$stem.err" >>"$stem.txt"
    rm -f "$stem.err"
    printf '%s\t%s\trc=%s\tload=%s\tbusy=%s%%\twaited=%ss\t%s\n' "$(date -u +%FT%TZ)" \
        "$(basename "$stem")" "$rc" "$load" "$LAST_BUSY" "$LAST_WAITED" "$*" >>"$RESULTS/runs.log"
    if (( rc != 0 )); then
        FAILED_RUNS=$(( FAILED_RUNS + 1 ))
        log "$(basename "$stem"): loadgen exited with status $rc (see $stem.txt)"
    fi
    return 0
}

# A path relative to the workspace root when it is inside it (for the recorded commands, which
# run from the root).
rel() { local p=$1; echo "${p#"$ROOT"/}"; }
rel_all() { local s=$1; echo "${s//"$ROOT"\//}"; }

# Paths as a short label: 10000 -> 10k, 1000000 -> 1M.
short_count() {
    local n=$1
    if (( n % 1000000 == 0 )); then echo "$((n / 1000000))M"
    elif (( n % 1000 == 0 )); then echo "$((n / 1000))k"
    else echo "$n"; fi
}

# Appends what the machine and the code were to FILE, under a heading naming this session
# (SESSION, set by the caller).
describe_machine() {
    local file=$1
    {
        echo "== ${SESSION:-$(basename "$0")}"
        echo "date: $(date -u +%FT%TZ)"
        echo "nproc: $(nproc)"
        echo "kernel: $(uname -srm)"
        echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
        echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && [[ -n "$(git status --porcelain -- src loadgen Cargo.toml Cargo.lock 2>/dev/null)" ]] && echo ' (plus uncommitted changes under src/, loadgen/ or Cargo.*)')"
        echo "uptime: $(uptime)"
        echo "lscpu:"
        lscpu | head -20 | grep -v '^Flags' | sed 's/^/  /'
    } >>"$file"
}
