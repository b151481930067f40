#!/usr/bin/env bash
# Runs the criterion benches in benches/ and keeps their raw output, to be committed beside the
# figures they back (BENCHMARKS.md quotes them).
#
#   scripts/criterion.sh [--quick] [--bench NAME]... [--out DIR] [-- CRITERION-ARGS...]
#
# --bench picks benches (default: packet, kex, handshake); --quick passes criterion's --quick
# (a few seconds per benchmark instead of 3 s warm-up + 5 s measurement); anything after --
# goes to criterion (a filter, --measurement-time, ...). Writes, in DIR (default
# bench-harness/results/criterion-<time>):
#   machine.txt              CPU, kernel, rustc, commit, load average, the exact commands
#   <bench>.txt              criterion's console output, as printed
#   raw/<group>/<id>/*.json  criterion's own files for each benchmark run now (estimates.json,
#                            sample.json, benchmark.json: every sample, not only the summary)
# Expected time after the build: about 4 min for the three benches (54 benchmarks), under 2 min
# with --quick (2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
BENCHES=()
OUT=""
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --bench) BENCHES+=("$2"); shift ;;
        --out) OUT="$2"; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(packet kex handshake)
OUT=${OUT:-$ROOT/bench-harness/results/criterion-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/raw"
ARGS=(--noplot)
if [ "$QUICK" = 1 ]; then ARGS+=(--quick); fi
ARGS+=("${EXTRA[@]}")

log() { printf '== %s\n' "$*" >&2; }

log "building the benches (release profile)"
for b in "${BENCHES[@]}"; do cargo bench --no-run --bench "$b" >&2; done

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "nproc: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "loadavg at start: $(cat /proc/loadavg)"
    for b in "${BENCHES[@]}"; do echo "command: cargo bench --bench $b -- ${ARGS[*]}"; done
} > "$OUT/machine.txt"

# Only the files written by this run are copied: target/criterion keeps older runs too.
STAMP="$OUT/.started"
: > "$STAMP"
T0=$(date +%s)
for b in "${BENCHES[@]}"; do
    log "cargo bench --bench $b -- ${ARGS[*]}"
    cargo bench --bench "$b" -- "${ARGS[@]}" 2>&1 | tee "$OUT/$b.txt"
done
echo "loadavg at end: $(cat /proc/loadavg); took $(($(date +%s) - T0)) s" >> "$OUT/machine.txt"

CRIT="$ROOT/target/criterion"
if [ -d "$CRIT" ]; then
    find "$CRIT" -path '*/new/*.json' -newer "$STAMP" -print0 |
        while IFS= read -r -d '' f; do
            rel=${f#"$CRIT"/}
            dest="$OUT/raw/$(dirname "$(dirname "$rel")")"
            mkdir -p "$dest"
            cp "$f" "$dest/"
        done
fi
rm -f "$STAMP"
log "criterion output in $OUT ($(find "$OUT/raw" -name estimates.json | wc -l) benchmarks)"
