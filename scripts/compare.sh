#!/usr/bin/env bash
# Side-by-side comparison of sshfront, OpenSSH's sshd and a minimal russh server, all on
# 127.0.0.1 high ports, driven by the same bench-harness loads in alternation.
#
#   scripts/compare.sh [--quick] [--rounds N] [--only SECTIONS] [--budget MIN] [--criterion]
#                      [--out DIR]
#   scripts/compare.sh --attack [--quick] [--out DIR]
#
# Installs Debian's openssh-server if /usr/sbin/sshd is missing (never starts, stops or edits the
# system service or /etc/ssh: sshd runs with its own config, host key and authorized_keys from a
# temp dir). Builds release binaries, starts the three servers and runs, against each in turn,
# round after round, the sections named by --only (default: all of them):
#   handshake  C=1,8,64, publickey and KEX-only
#   bulk       one connection, aes128-gcm and chacha20-poly1305, direct-tcpip to the harness's sink
#   multi      8 and 64 concurrent connections, the same bytes in total, both ciphers
#   idle       1000 idle connections, publickey and KEX-only (a fresh server each)
#   idle20k    20,000 idle authenticated connections (a fresh server each; skipped for a server
#              whose memory (PSS) per connection, measured first, would need more than half of
#              MemAvailable: sshd forks a process per connection)
# then prints medians, min–max and the ratios sshfront/sshd and sshfront/russh, and draws PNG
# plots (matplotlib in target/plot-venv, installed on first use). The expected duration and the
# time budget are printed first; a run that would start after --budget minutes (default 35) is
# recorded as skipped, so the whole is bounded. --criterion also runs the criterion benches
# (scripts/criterion.sh) into DIR/criterion. Every process it starts is stopped by PID on exit.
# Raw results (one JSON line per run) go to DIR/results.jsonl, the tables to DIR/summary.md,
# the plots to DIR/*.png (DIR defaults to target/compare-<time>).
# --attack instead runs each `bench-harness attack` mode (spray, kex-flood, preauth-idle,
# slowloris from 127.0.0.2, a publickey login from 127.0.0.1 at a fixed rate) against sshfront
# (with --per-source-penalties where it has them, and a password file) and against sshd (password
# auth on, its default MaxStartups), a fresh server per run, then 10,000 held pre-auth
# connections (preauth-10k) for the server-memory figure; raw per-second JSON lines go to
# DIR/<server>-<mode>.jsonl (DIR defaults to bench-harness/results/attack-<time>), the table to
# DIR/summary.md and a latency-over-time PNG per attack (matplotlib in target/plot-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
ATTACK=0
ROUNDS=""
OUT=""
ONLY="handshake,bulk,multi,idle,idle20k"
BUDGET_MIN=""
CRITERION=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --attack) ATTACK=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        --budget) BUDGET_MIN="$2"; shift ;;
        --criterion) CRITERION=1 ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
for sec in ${ONLY//,/ }; do
    case "$sec" in
        handshake|bulk|multi|idle|idle20k) ;;
        *) echo "--only: unknown section $sec (handshake,bulk,multi,idle,idle20k)" >&2; exit 2 ;;
    esac
done
case "${ROUNDS:-1}${BUDGET_MIN:-1}" in *[!0-9]*) echo "--rounds/--budget: a number" >&2; exit 2 ;; esac
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# Per point: handshake seconds; single-connection bulk bytes; multi-connection bulk bytes in
# total (split over the connections); idle connections and hold; the large idle point.
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}; BUDGET_MIN=${BUDGET_MIN:-8}
    HS_SECS=3; BULK_BYTES=512M; MULTI_MIB=512; IDLE_N=1000; IDLE_HOLD=1; BIG_IDLE_N=4000
else
    ROUNDS=${ROUNDS:-3}; BUDGET_MIN=${BUDGET_MIN:-35}
    HS_SECS=6; BULK_BYTES=1G; MULTI_MIB=2048; IDLE_N=1000; IDLE_HOLD=2; BIG_IDLE_N=20000
fi
MULTI_K="8 64"
CIPHERS="aes128-gcm@openssh.com chacha20-poly1305@openssh.com"
if [ "$ATTACK" = 1 ]; then
    OUT=${OUT:-$ROOT/bench-harness/results/attack-$(date -u +%Y%m%dT%H%M%SZ)}
else
    OUT=${OUT:-$ROOT/target/compare-$(date -u +%Y%m%dT%H%M%SZ)}
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

log() { printf '== %s\n' "$*" >&2; }

# The private sshd and the port / PID helpers, shared with compare-proxy.sh.
# shellcheck source=scripts/lib/sshd.sh
. "$ROOT/scripts/lib/sshd.sh"
sshd_ensure_installed

# 20,000 held connections need as many descriptors in the harness and in sshfront / russh
# (the servers inherit this limit); as root the hard limit can be raised too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
# The server holds one descriptor per connection, so the point cannot exceed the limit (less a
# margin for listeners, logs and the sink); the test's name says how many were opened.
if [ "$NOFILE" != unlimited ] && [ "$BIG_IDLE_N" -gt $((NOFILE - 500)) ]; then
    want idle20k && log "WARNING: open-file limit $NOFILE (the hard limit; raising it needs CAP_SYS_RESOURCE): the large idle point opens $((NOFILE - 500)) connections, not $BIG_IDLE_N"
    BIG_IDLE_N=$((NOFILE - 500))
fi
# Source addresses for the large idle point: one source has the ephemeral range's ports to one
# server port (less a margin for TIME_WAIT and the other tools); past that, 127.0.0.2 onwards.
read -r PORT_LO PORT_HI < /proc/sys/net/ipv4/ip_local_port_range
PORTS_PER_SOURCE=$((PORT_HI - PORT_LO + 1 - 4000))
SOURCES=0
if [ "$BIG_IDLE_N" -gt "$PORTS_PER_SOURCE" ]; then
    SOURCES=$(((BIG_IDLE_N + PORTS_PER_SOURCE - 1) / PORTS_PER_SOURCE))
fi
# --quick goes through the same spreading code the full run may need.
if [ "$QUICK" = 1 ] && [ "$SOURCES" -lt 2 ]; then SOURCES=2; fi

# expected_seconds: the run's expected length from the section sizes (about a third of it is
# setup, teardown and settling around the timed parts; measured on the 2-core machine).
expected_seconds() {
    local t=0
    # Handshake points, and a crypto floor (about 1 s) before and after each publickey one.
    if want handshake; then t=$((t + 3 * 6 * (HS_SECS + 1) + 3 * 2 * 2)); fi
    if want bulk; then t=$((t + 2 * 3 * 5)); fi
    if want multi; then t=$((t + 2 * 2 * 3 * (MULTI_MIB / 300 + 4))); fi
    if want idle; then t=$((t + 6 * (IDLE_N / 150 + 4))); fi
    if want idle20k; then t=$((t + 2 * (BIG_IDLE_N / 800 + 10) + 10)); fi
    echo $((t * ROUNDS))
}
if [ "$ATTACK" = 0 ]; then
    EXPECTED=$(expected_seconds)
    log "sections: $ONLY; $ROUNDS round(s); expected about $(((EXPECTED + 59) / 60)) min after the build; budget ${BUDGET_MIN} min (runs that would end later are skipped; one run is bounded by its own limit, at most 5 min)"
fi

WORK=$(mktemp -d /tmp/sshfront-compare.XXXXXX)
PIDS=()
cleanup() {
    stop_all_pids
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building release binaries"
cargo build --release --bins -p sshfront -p bench-harness >&2
# The russh server is its own workspace (own lock file), so russh's pins stay out of sshfront's.
if [ "$ATTACK" = 0 ]; then
    cargo build --release --manifest-path bench-harness/russh-server/Cargo.toml \
        --target-dir "$ROOT/target/russh-server" >&2
fi
H="$ROOT/target/release/bench-harness"
USER_NAME=$(id -un)

ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$WORK/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$WORK/user_ed25519"
cp "$WORK/user_ed25519.pub" "$WORK/authorized_keys"
chmod 600 "$WORK/host_ed25519" "$WORK/user_ed25519" "$WORK/authorized_keys"

# Below the ephemeral range (32768+), where the harness's own client ports live.
P_SSHFRONT=$(free_port 22200)
P_SSHD=$(free_port $((P_SSHFRONT + 1)))
P_RUSSH=$(free_port $((P_SSHD + 1)))
P_IDLE=$(free_port $((P_RUSSH + 1)))

# sshd: its own config (the shared settings match sshfront's; no MaxStartups throttling of the
# C=64 load).
sshd_write_config "$WORK/sshd_config" "$P_SSHD" "$WORK/host_ed25519" "$WORK/sshd.pid" \
    "$WORK/authorized_keys" "MaxAuthTries 6"
# Extra flags and another config for the attack runs (empty for the comparison).
SSHD_EXTRA=()
SSHD_CONFIG=""
SSHFRONT_EXTRA=()
# start_server NAME PORT LOGFILE: starts one server in the background; its PID in LAST_PID
# (and PIDS).
start_server() {
    case "$1" in
        sshd)
            # -p: the same config serves the idle and attack runs on their own port (the
            # config's ListenAddress has no port, so it takes this one).
            sshd_start "${SSHD_CONFIG:-$WORK/sshd_config}" "$3" -p "$2" "${SSHD_EXTRA[@]}"
            return
            ;;
        sshfront)
            # Same user key as sshd's AuthorizedKeysFile; direct-tcpip only to the harness's
            # loopback sink (sshd's default permits any destination).
            "$ROOT/target/release/sshfront" --listen "127.0.0.1:$2" \
                --host-key "$WORK/host_ed25519" --data-dir "$WORK/sshfront-data" \
                --authorized-keys "$WORK/authorized_keys" --permit-open '127.0.0.1:*' \
                --kex curve25519-sha256 --host-key-algorithms ssh-ed25519 \
                --max-connections 25000 --log-level warn "${SSHFRONT_EXTRA[@]}" 2>>"$3" &
            ;;
        russh)
            "$ROOT/target/russh-server/release/russh_server" --listen "127.0.0.1:$2" \
                --host-key "$WORK/host_ed25519" --user "$USER_NAME" \
                --authorized-key "$WORK/user_ed25519.pub" 2>>"$3" &
            ;;
    esac
    track_pid "$!"
}
# plot_venv: matplotlib in target/plot-venv (installed on first use); its python in PLOT_PY.
plot_venv() {
    local venv="$ROOT/target/plot-venv"
    PLOT_PY="$venv/bin/python"
    if [ -x "$PLOT_PY" ] && "$PLOT_PY" -c 'import matplotlib' 2>/dev/null; then return 0; fi
    log "installing matplotlib into $venv"
    if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q matplotlib >&2; then return 0; fi
    log "could not install matplotlib: no plots"
    return 1
}
if [ "$ATTACK" = 1 ]; then
    # shellcheck source=scripts/compare-attack.sh
    . "$ROOT/scripts/compare-attack.sh"
    exit 0
fi
start_server sshd "$P_SSHD" "$OUT/sshd.log"; PID_SSHD=$LAST_PID
start_server sshfront "$P_SSHFRONT" "$OUT/sshfront.log"; PID_SSHFRONT=$LAST_PID
start_server russh "$P_RUSSH" "$OUT/russh.log"; PID_RUSSH=$LAST_PID
wait_port "$P_SSHD"; wait_port "$P_SSHFRONT"; wait_port "$P_RUSSH"
SERVERS="sshfront sshd russh"
port_of() { case "$1" in sshfront) echo "$P_SSHFRONT" ;; sshd) echo "$P_SSHD" ;; russh) echo "$P_RUSSH" ;; esac; }
pid_of() { case "$1" in sshfront) echo "$PID_SSHFRONT" ;; sshd) echo "$PID_SSHD" ;; russh) echo "$PID_RUSSH" ;; esac; }

# Which servers accept our ed25519 publickey auth (sshfront's server-side auth may not exist yet).
declare -A AUTH
for s in $SERVERS; do
    j=$("$H" handshake --addr "127.0.0.1:$(port_of "$s")" --user "$USER_NAME" \
        --key "$WORK/user_ed25519" -c 1 --count 1 --duration 5 --json || true)
    if echo "$j" | grep -q '"ok":1'; then AUTH[$s]=publickey; else AUTH[$s]=none; fi
    log "$s: publickey auth probe -> ${AUTH[$s]} ($j)"
done

# skip SERVER TEST AUTH ROUND WHY: a run not made, one JSON line saying why (the tables show it).
skip() {
    printf '{"server":"%s","test":"%s","auth":"%s","round":%s,"loadavg":"%s","result":{"error":"skipped: %s"}}\n' \
        "$1" "$2" "$3" "$4" "$(cut -d' ' -f1-3 /proc/loadavg)" "$5" >> "$RESULTS"
    log "round $4 $2 $1 ($3): skipped: $5"
}

# run SERVER TEST AUTH ROUND SUBCOMMAND EXTRA-ARGS...: one harness run, one JSON line in
# results.jsonl. RUN_GUARD (seconds, default 120) bounds the harness process from outside as
# well; a run that would end after the budget's deadline is skipped.
run() {
    local s=$1 test=$2 auth=$3 round=$4 sub=$5
    shift 5
    local j guard=${RUN_GUARD:-120}
    if [ $(($(date +%s) + ${RUN_EST:-10})) -gt "$DEADLINE" ]; then
        skip "$s" "$test" "$auth" "$round" "over the ${BUDGET_MIN}-minute budget"
        return 0
    fi
    j=$(timeout -k 5 "$guard" "$H" "$sub" --addr "127.0.0.1:${RUN_PORT:-$(port_of "$s")}" \
        --user "$USER_NAME" --key "$WORK/user_ed25519" --auth "$auth" \
        --server-pid "${RUN_PID:-$(pid_of "$s")}" --json "$@" \
        2>>"$OUT/harness.log") || j='{"error":"harness exited with an error"}'
    printf '{"server":"%s","test":"%s","auth":"%s","round":%s,"loadavg":"%s","result":%s}\n' \
        "$s" "$test" "$auth" "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" "$j" >> "$RESULTS"
    log "round $round $test $s ($auth): $(echo "$j" | head -c 300)"
}

# floor ROUND SERVER/TEST: the crypto floor of one publickey handshake on this machine
# (bench-harness crypto), one JSON line in results.jsonl. It is taken just before and just
# after each publickey handshake point and the tables divide the point's CPU by the mean of
# the two: this machine's speed drifts by up to 1.8× within minutes, so one floor per round
# (as before) could be measured on a faster or slower machine than the point it divides.
floor() {
    local j
    j=$("$H" crypto --json 2>>"$OUT/harness.log") || j='{"error":"harness exited with an error"}'
    printf '{"server":"machine","test":"crypto_floor","auth":"none","beside":"%s","round":%s,"loadavg":"%s","result":%s}\n' \
        "$2" "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" "$j" >> "$RESULTS"
    log "round $1 crypto floor beside $2: $j"
}

# The budget counts from here: the builds and server starts above are not in it.
T_START=$(date +%s)
DEADLINE=$((T_START + BUDGET_MIN * 60))

{
    echo "nproc: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    echo "kernel: $(uname -r)"
    echo "sshd: $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
    echo "loadavg at start: $(cat /proc/loadavg)"
    echo "rounds: $ROUNDS, sections: $ONLY, handshake seconds per point: $HS_SECS, bulk bytes: $BULK_BYTES, multi-connection bulk: $MULTI_MIB MiB over $MULTI_K connections, idle: $IDLE_N, large idle: $BIG_IDLE_N from $((SOURCES > 0 ? SOURCES : 1)) source address(es)"
    echo "open-file limit: $NOFILE; MemAvailable: $(awk '/MemAvailable/ {print $2}' /proc/meminfo) kB"
    for s in $SERVERS; do echo "auth against $s: ${AUTH[$s]}"; done
} > "$OUT/machine.txt"

# idle_fresh SERVER TEST AUTH ROUND EXTRA-ARGS...: an idle run against a fresh server process,
# so heap grown by earlier loads is not reused (which would hide per-connection memory).
idle_fresh() {
    local s=$1 test=$2 auth=$3 round=$4
    shift 4
    if [ $(($(date +%s) + ${RUN_EST:-10})) -gt "$DEADLINE" ]; then
        skip "$s" "$test" "$auth" "$round" "over the ${BUDGET_MIN}-minute budget"
        return 0
    fi
    start_server "$s" "$P_IDLE" "$OUT/$s-idle.log"
    if wait_port "$P_IDLE"; then
        RUN_PORT=$P_IDLE RUN_PID=$LAST_PID run "$s" "$test" "$auth" "$round" idle "$@"
    fi
    stop_pid "$LAST_PID"
}

# pss_per_conn SERVER: the latest measured PSS bytes per idle authenticated connection of
# SERVER in this run's results (empty if none). PSS, not RSS: sshd's per-connection processes
# share most of their pages.
pss_per_conn() {
    python3 - "$RESULTS" "$1" <<'PY'
import json, sys
v = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    x = r["result"].get("server_pss_bytes_per_conn")
    if r["server"] == sys.argv[2] and r["auth"] == "publickey" and r["test"] in ("idle", "idle_probe") \
            and r["result"].get("held") and isinstance(x, (int, float)):
        v = x
print("" if v is None else int(max(v, 1000)))
PY
}

for round in $(seq 1 "$ROUNDS"); do
    if want handshake; then
        RUN_GUARD=$((HS_SECS + 40)) RUN_EST=$((HS_SECS + 2))
        for c in 1 8 64; do
            # Full handshakes (publickey) where the server supports them...
            for s in $SERVERS; do
                if [ "${AUTH[$s]}" = publickey ]; then
                    floor "$round" "$s/handshake_c$c"
                    run "$s" "handshake_c$c" publickey "$round" handshake -c "$c" --duration "$HS_SECS"
                    floor "$round" "$s/handshake_c$c"
                fi
            done
            # ...and KEX-only (KEX + SERVICE_ACCEPT) for all three.
            for s in $SERVERS; do
                run "$s" "handshake_c$c" none "$round" handshake -c "$c" --duration "$HS_SECS"
            done
        done
        unset RUN_GUARD RUN_EST
    fi
    if want bulk; then
        for cipher in $CIPHERS; do
            for s in $SERVERS; do
                if [ "${AUTH[$s]}" = publickey ]; then
                    RUN_GUARD=90 run "$s" "bulk_$cipher" publickey "$round" bulk \
                        --ciphers "$cipher" --bytes "$BULK_BYTES" --max-time 60
                fi
            done
        done
    fi
    if want multi; then
        # K concurrent connections sharing MULTI_MIB in total: aggregate MB/s and core-s/GB.
        for k in $MULTI_K; do
            for cipher in $CIPHERS; do
                for s in $SERVERS; do
                    if [ "${AUTH[$s]}" = publickey ]; then
                        RUN_GUARD=100 run "$s" "bulk${k}_$cipher" publickey "$round" bulk \
                            -k "$k" --ciphers "$cipher" --bytes "$((MULTI_MIB / k))M" --max-time 60
                    fi
                done
            done
        done
    fi
    if want idle; then
        # Authenticated where the server supports it, and KEX-only (no user auth) for all three.
        for auth in publickey none; do
            for s in $SERVERS; do
                if [ "$auth" = publickey ] && [ "${AUTH[$s]}" != publickey ]; then continue; fi
                RUN_GUARD=150 RUN_EST=15 idle_fresh "$s" idle "$auth" "$round" \
                    -n "$IDLE_N" --hold "$IDLE_HOLD" --max-time 90
            done
        done
    fi
    if want idle20k; then
        # BIG_IDLE_N authenticated connections, unless the server's measured memory per
        # connection says they would not fit in half of the available memory.
        for s in $SERVERS; do
            if [ "${AUTH[$s]}" != publickey ]; then continue; fi
            per=$(pss_per_conn "$s")
            if [ -z "$per" ]; then
                RUN_GUARD=150 RUN_EST=15 idle_fresh "$s" idle_probe publickey "$round" \
                    -n 500 --hold 1 --max-time 90
                per=$(pss_per_conn "$s")
            fi
            avail=$(($(awk '/MemAvailable/ {print $2}' /proc/meminfo) * 1024))
            if [ -z "$per" ]; then
                skip "$s" "idle_$BIG_IDLE_N" publickey "$round" "no memory per connection measured first"
            elif [ $((per * BIG_IDLE_N)) -gt $((avail / 2)) ]; then
                skip "$s" "idle_$BIG_IDLE_N" publickey "$round" \
                    "$BIG_IDLE_N × $per B PSS = $((per * BIG_IDLE_N / 1000000)) MB would exceed half of MemAvailable ($((avail / 2000000)) MB)"
            else
                RUN_GUARD=300 RUN_EST=$((BIG_IDLE_N / 500 + 20)) idle_fresh "$s" "idle_$BIG_IDLE_N" \
                    publickey "$round" -n "$BIG_IDLE_N" --ramp 64 --sources "$SOURCES" \
                    --hold "$IDLE_HOLD" --settle 2 --timeout 30 --max-time 240
            fi
        done
    fi
done

# The tables come from the raw results only (the same script regenerates BENCHMARKS.md's).
python3 "$ROOT/scripts/bench-tables.py" "$RESULTS" --machine "$OUT/machine.txt" > "$OUT/summary.md"
cat "$OUT/summary.md"
# The handshake-CPU / crypto-floor ratios again, on their own (also in summary.md).
python3 "$ROOT/scripts/bench-tables.py" "$RESULTS" --floor
if plot_venv; then
    "$PLOT_PY" "$ROOT/scripts/bench-plots.py" "$RESULTS" --out "$OUT" ||
        log "plots failed (the tables above stand)"
fi
log "comparison took $((($(date +%s) - T_START + 59) / 60)) min (expected about $(((EXPECTED + 59) / 60)))"
if [ "$CRITERION" = 1 ]; then
    "$ROOT/scripts/criterion.sh" $([ "$QUICK" = 1 ] && echo --quick) --out "$OUT/criterion"
fi
log "results in $OUT"
