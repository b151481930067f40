#!/usr/bin/env bash
# Side-by-side comparison of sshfront, OpenSSH's sshd and a minimal russh server, all on
# 127.0.0.1 high ports, driven by the same bench-harness loads in alternation.
#
#   scripts/compare.sh [--quick] [--rounds N] [--out DIR]
#   scripts/compare.sh --attack [--quick] [--out DIR]
#
# Installs Debian's openssh-server if /usr/sbin/sshd is missing (never starts, stops or edits the
# system service or /etc/ssh: sshd runs with its own config, host key and authorized_keys from a
# temp dir). Builds release binaries, starts the three servers, runs handshake (C=1,8,64),
# bulk (aes128-gcm, chacha20-poly1305 through direct-tcpip to the harness's sink) and idle
# (1000 connections) against each in turn, round after round, and prints medians, min–max and
# the ratios sshfront/sshd and sshfront/russh. Every process it starts is stopped by PID on exit.
# Raw results (one JSON line per run) go to DIR/results.jsonl, the tables to DIR/summary.md.
# --attack instead runs each `bench-harness attack` mode (spray, kex-flood, preauth-idle,
# slowloris from 127.0.0.2, a publickey login from 127.0.0.1 at a fixed rate) against sshfront
# (with --per-source-penalties where it has them, and a password file) and against sshd (password
# auth on, its default MaxStartups), a fresh server per run; raw per-second JSON lines go to
# DIR/<server>-<mode>.jsonl (DIR defaults to bench-harness/results/attack-<time>), the table to
# DIR/summary.md and a latency-over-time PNG per attack (matplotlib in target/plot-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
ATTACK=0
ROUNDS=3
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; ROUNDS=1 ;;
        --attack) ATTACK=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    HS_SECS=3; BULK_BYTES=512M; IDLE_N=1000; IDLE_HOLD=1
else
    HS_SECS=6; BULK_BYTES=1G; IDLE_N=1000; IDLE_HOLD=2
fi
if [ "$ATTACK" = 1 ]; then
    OUT=${OUT:-$ROOT/bench-harness/results/attack-$(date -u +%Y%m%dT%H%M%SZ)}
else
    OUT=${OUT:-$ROOT/target/compare-$(date -u +%Y%m%dT%H%M%SZ)}
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

log() { printf '== %s\n' "$*" >&2; }

if [ ! -x /usr/sbin/sshd ]; then
    log "installing openssh-server (the system service is not touched)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssh-server >/dev/null
fi

WORK=$(mktemp -d /tmp/sshfront-compare.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
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

free_port() {
    local p
    for p in $(seq "$1" $(($1 + 200))); do
        if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
            echo "$p"
            return
        fi
    done
    echo "no free port near $1" >&2
    exit 1
}
# Below the ephemeral range (32768+), where the harness's own client ports live.
P_SSHFRONT=$(free_port 22200)
P_SSHD=$(free_port $((P_SSHFRONT + 1)))
P_RUSSH=$(free_port $((P_SSHD + 1)))
P_IDLE=$(free_port $((P_RUSSH + 1)))

wait_port() {
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on 127.0.0.1:$1" >&2
    return 1
}

# sshd: its own config; settings chosen to match sshfront's (no PAM, no DNS, ed25519 host key,
# curve25519, no MaxStartups throttling of the C=64 load).
mkdir -p /run/sshd && chmod 0755 /run/sshd
cat > "$WORK/sshd_config" <<EOF
Port $P_SSHD
ListenAddress 127.0.0.1
HostKey $WORK/host_ed25519
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxStartups 100000
MaxAuthTries 6
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
LogLevel ERROR
KexAlgorithms curve25519-sha256
HostKeyAlgorithms ssh-ed25519
Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com
EOF
# Extra flags for the attack runs (empty for the comparison).
SSHD_EXTRA=()
SSHFRONT_EXTRA=()
# start_server NAME PORT LOGFILE: starts one server in the background; its PID in LAST_PID.
start_server() {
    case "$1" in
        sshd)
            /usr/sbin/sshd -D -e -f "$WORK/sshd_config" -h "$WORK/host_ed25519" -p "$2" \
                -o ListenAddress=127.0.0.1 "${SSHD_EXTRA[@]}" 2>>"$3" &
            ;;
        sshfront)
            # Same user key as sshd's AuthorizedKeysFile; direct-tcpip only to the harness's
            # loopback sink (sshd's default permits any destination).
            "$ROOT/target/release/sshfront" --listen "127.0.0.1:$2" \
                --host-key "$WORK/host_ed25519" --data-dir "$WORK/sshfront-data" \
                --authorized-keys "$WORK/authorized_keys" --permit-open '127.0.0.1:*' \
                --kex curve25519-sha256 --host-key-algorithms ssh-ed25519 \
                --max-connections 20000 --log-level warn "${SSHFRONT_EXTRA[@]}" 2>>"$3" &
            ;;
        russh)
            "$ROOT/target/russh-server/release/russh_server" --listen "127.0.0.1:$2" \
                --host-key "$WORK/host_ed25519" --user "$USER_NAME" \
                --authorized-key "$WORK/user_ed25519.pub" 2>>"$3" &
            ;;
    esac
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
stop_server() {
    local p keep=()
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
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

# run SERVER TEST AUTH ROUND EXTRA-ARGS...: one harness run, one JSON line in results.jsonl.
run() {
    local s=$1 test=$2 auth=$3 round=$4 sub=$5
    shift 5
    local j
    j=$("$H" "$sub" --addr "127.0.0.1:${RUN_PORT:-$(port_of "$s")}" --user "$USER_NAME" \
        --key "$WORK/user_ed25519" --auth "$auth" --server-pid "${RUN_PID:-$(pid_of "$s")}" \
        --json "$@" \
        2>>"$OUT/harness.log") || j='{"error":"harness exited with an error"}'
    printf '{"server":"%s","test":"%s","auth":"%s","round":%s,"loadavg":"%s","result":%s}\n' \
        "$s" "$test" "$auth" "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" "$j" >> "$RESULTS"
    log "round $round $test $s ($auth): $(echo "$j" | head -c 300)"
}

# floor ROUND: the crypto floor of one publickey handshake on this machine (bench-harness
# crypto), one JSON line in results.jsonl; the tables divide handshake CPU by it.
floor() {
    local j
    j=$("$H" crypto --json 2>>"$OUT/harness.log") || j='{"error":"harness exited with an error"}'
    printf '{"server":"machine","test":"crypto_floor","auth":"none","round":%s,"loadavg":"%s","result":%s}\n' \
        "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" "$j" >> "$RESULTS"
    log "round $1 crypto floor: $j"
}

{
    echo "nproc: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    echo "kernel: $(uname -r)"
    echo "sshd: $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
    echo "loadavg at start: $(cat /proc/loadavg)"
    echo "rounds: $ROUNDS, handshake seconds per point: $HS_SECS, bulk bytes: $BULK_BYTES, idle: $IDLE_N"
    for s in $SERVERS; do echo "auth against $s: ${AUTH[$s]}"; done
} > "$OUT/machine.txt"

for round in $(seq 1 "$ROUNDS"); do
    floor "$round"
    for c in 1 8 64; do
        # Full handshakes (publickey) where the server supports them...
        for s in $SERVERS; do
            if [ "${AUTH[$s]}" = publickey ]; then
                run "$s" "handshake_c$c" publickey "$round" handshake -c "$c" --duration "$HS_SECS"
            fi
        done
        # ...and KEX-only (KEX + SERVICE_ACCEPT) for all three, the like-for-like figure while
        # sshfront has no user auth.
        for s in $SERVERS; do
            run "$s" "handshake_c$c" none "$round" handshake -c "$c" --duration "$HS_SECS"
        done
    done
    for cipher in aes128-gcm@openssh.com chacha20-poly1305@openssh.com; do
        for s in $SERVERS; do
            if [ "${AUTH[$s]}" = publickey ]; then
                run "$s" "bulk_$cipher" publickey "$round" bulk --ciphers "$cipher" \
                    --bytes "$BULK_BYTES" --max-time 60
            fi
        done
    done
    # Idle: a fresh server process per run, so heap grown by the loads above is not reused
    # (which would hide per-connection memory). Authenticated where the server supports it,
    # and KEX-only (no user auth) for all three as the like-for-like figure.
    for auth in publickey none; do
        for s in $SERVERS; do
            if [ "$auth" = publickey ] && [ "${AUTH[$s]}" != publickey ]; then continue; fi
            start_server "$s" "$P_IDLE" "$OUT/$s-idle.log"
            if wait_port "$P_IDLE"; then
                RUN_PORT=$P_IDLE RUN_PID=$LAST_PID run "$s" idle "$auth" "$round" idle \
                    -n "$IDLE_N" --hold "$IDLE_HOLD" --max-time 90
            fi
            stop_server "$LAST_PID"
        done
    done
done

# The tables come from the raw results only (the same script regenerates BENCHMARKS.md's).
python3 "$ROOT/scripts/bench-tables.py" "$RESULTS" --machine "$OUT/machine.txt" > "$OUT/summary.md"
cat "$OUT/summary.md"
# The handshake-CPU / crypto-floor ratios again, on their own (also in summary.md).
python3 "$ROOT/scripts/bench-tables.py" "$RESULTS" --floor
log "results in $OUT"
