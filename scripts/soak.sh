#!/usr/bin/env bash
# Soak: mixed load against one sshfront for MINUTES, sampling its RSS, open fds and CPU.
#
#   scripts/soak.sh MINUTES [--out DIR]
#
# Loads, each a loop of bounded bench-harness runs until the end time: publickey handshakes,
# bulk through direct-tcpip to the harness's sink (bytes checked), idle authenticated
# connections, the four attacks from 127.0.0.2 in turn, and direct-tcpip to backends that
# reset the connection or accept and never read (python3 stdlib, started here). Every 10 s the
# server's RSS, open fds, threads, CPU % and established connections go to DIR/soak.csv; the
# harness results to DIR/loads.jsonl; at the end DIR/soak.png (matplotlib in target/plot-venv)
# and a summary (RSS after warm-up, fd growth, bulk runs with lost bytes). Loopback only; every
# process it starts is ended by PID. DIR defaults to target/soak-<time>.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MINUTES=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) MINUTES="$1" ;;
    esac
    shift
done
if ! [[ "$MINUTES" =~ ^[0-9]+$ ]] || [ "$MINUTES" -lt 1 ] || [ "$MINUTES" -gt 600 ]; then
    echo "usage: scripts/soak.sh MINUTES (1..600) [--out DIR]" >&2
    exit 2
fi
OUT=${OUT:-$ROOT/target/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
log() { printf '== %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/sshfront-soak.XXXXXX)
PIDS=()
cleanup() {
    local p
    # The load loops first (and the harness run each may be in), then servers and backends.
    for p in "${PIDS[@]}"; do
        pkill -P "$p" 2>/dev/null || true
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
H="$ROOT/target/release/bench-harness"
S="$ROOT/target/release/sshfront"
USER_NAME=$(id -un)
ssh-keygen -q -t ed25519 -N '' -C soak-user -f "$WORK/user_ed25519"
cp "$WORK/user_ed25519.pub" "$WORK/authorized_keys"
echo "$(head -c 24 /dev/urandom | base64)" | "$S" passwd --password-file "$WORK/passwords" "$USER_NAME" >&2

# Backends that misbehave: one resets every connection after its first read, one accepts and
# never reads. Bounded: they exit with the soak (by PID) and hold at most 1000 sockets.
cat > "$WORK/backends.py" <<'PY'
import socket, struct, sys, threading
def serve(port_file, mode):
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(128)
    open(port_file, "w").write(str(l.getsockname()[1]))
    held = []
    while True:
        c, _ = l.accept()
        if mode == "reset":
            try: c.recv(65536)
            except OSError: pass
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
        else:
            held.append(c)
            if len(held) > 1000: held.pop(0).close()
t = threading.Thread(target=serve, args=(sys.argv[1], "reset"), daemon=True); t.start()
serve(sys.argv[2], "stall")
PY
python3 "$WORK/backends.py" "$WORK/reset.port" "$WORK/stall.port" 2>>"$OUT/backends.log" &
PIDS+=("$!")

FLAGS=(--listen 127.0.0.1:0 --port-file "$WORK/port" --data-dir "$WORK/data"
    --authorized-keys "$WORK/authorized_keys" --password-file "$WORK/passwords"
    --permit-open '127.0.0.1:*' --max-connections 20000 --log-level warn)
if "$S" --help | grep -q -- '--per-source-penalties'; then
    FLAGS+=(--per-source-penalties 'authfail:5s noauth:1s grace-exceeded:10s max:1m min:15s')
fi
"$S" "${FLAGS[@]}" 2>>"$OUT/sshfront.log" &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 1 300); do
    [ -s "$WORK/port" ] && [ -s "$WORK/reset.port" ] && [ -s "$WORK/stall.port" ] && break
    kill -0 "$SPID" 2>/dev/null || { log "sshfront exited; see $OUT/sshfront.log"; exit 1; }
    sleep 0.1
done
ADDR=$(head -1 "$WORK/port")
RESET="127.0.0.1:$(cat "$WORK/reset.port")"
STALL="127.0.0.1:$(cat "$WORK/stall.port")"
log "sshfront $ADDR (pid $SPID), reset backend $RESET, stall backend $STALL, $MINUTES min"
echo "flags: ${FLAGS[*]}" > "$OUT/machine.txt"
{ echo "nproc: $(nproc)"; echo "loadavg at start: $(cat /proc/loadavg)"; } >> "$OUT/machine.txt"

T0=$(date +%s)
END=$((T0 + MINUTES * 60))
remaining() { echo $((END - $(date +%s))); }
# loop NAME ARGS...: runs `bench-harness ARGS --duration/--max-time` back to back until END,
# each run at most 60 s and never past END; one JSON line per run into loads.jsonl.
loop() {
    local name=$1
    shift
    while [ "$(remaining)" -gt 2 ]; do
        local d
        d=$(remaining); [ "$d" -gt 60 ] && d=60
        local j
        j=$("$H" "$@" "${TIME_FLAG[@]}" "$d" 2>>"$OUT/harness.log" | tail -n 1) ||
            j='{"error":"harness exited with an error"}'
        [ -n "$j" ] || j='{"error":"no output"}'
        printf '{"load":"%s","t":%s,"result":%s}\n' "$name" $(($(date +%s) - T0)) "$j" \
            >> "$OUT/loads.jsonl"
        sleep 1
    done
}
COMMON=(--addr "$ADDR" --user "$USER_NAME" --key "$WORK/user_ed25519" --json)
(TIME_FLAG=(--duration); loop handshake handshake "${COMMON[@]}" -c 4) &
PIDS+=("$!")
(TIME_FLAG=(--max-time); loop bulk bulk "${COMMON[@]}" -k 2 --bytes 64M) &
PIDS+=("$!")
(TIME_FLAG=(--hold); loop idle idle "${COMMON[@]}" -n 200 --max-time 30) &
PIDS+=("$!")
(TIME_FLAG=(--max-time); loop backend-reset bulk "${COMMON[@]}" -k 2 --bytes 8M --sink "$RESET") &
PIDS+=("$!")
(TIME_FLAG=(--max-time); loop backend-stall bulk "${COMMON[@]}" -k 2 --bytes 8M --sink "$STALL") &
PIDS+=("$!")
(
    # The attacks in turn, smaller than the benchmark's so the other loads keep moving.
    TIME_FLAG=(--duration)
    while [ "$(remaining)" -gt 2 ]; do
        for m in "spray -c 16" "kex-flood -c 32" "preauth-idle -c 500" "slowloris -c 64"; do
            [ "$(remaining)" -gt 2 ] || break
            d=$(remaining); [ "$d" -gt 60 ] && d=60
            # shellcheck disable=SC2086
            "$H" attack --mode $m --bind 127.0.0.2 --rate 5 --addr "$ADDR" --user "$USER_NAME" \
                --key "$WORK/user_ed25519" --duration "$d" 2>>"$OUT/harness.log" |
                tail -n 1 | sed "s/^/{\"load\":\"attack\",\"result\":/; s/\$/}/" \
                >> "$OUT/loads.jsonl" || true
        done
    done
) &
PIDS+=("$!")

# Sampler: every 10 s until END.
TCK=$(getconf CLK_TCK)
echo "t_s,rss_kb,fds,threads,cpu_pct,established" > "$OUT/soak.csv"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
PREV=$(cpu_ticks)
PREV_T=$(date +%s.%N)
while [ "$(remaining)" -gt 0 ]; do
    sleep 10
    kill -0 "$SPID" 2>/dev/null || { log "sshfront died during the soak"; exit 1; }
    NOW=$(cpu_ticks)
    NOW_T=$(date +%s.%N)
    RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$SPID/status")
    THR=$(awk '/^Threads/ {print $2}' "/proc/$SPID/status")
    FDS=$(find "/proc/$SPID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    EST=$(ss -Htn state established "( sport = :${ADDR##*:} )" 2>/dev/null | wc -l)
    CPU=$(awk -v a="$PREV" -v b="$NOW" -v t0="$PREV_T" -v t1="$NOW_T" -v k="$TCK" \
        'BEGIN { printf "%.1f", (b - a) / k / (t1 - t0) * 100 }')
    echo "$(($(date +%s) - T0)),$RSS,$FDS,$THR,$CPU,$EST" >> "$OUT/soak.csv"
    PREV=$NOW
    PREV_T=$NOW_T
done
log "load over; waiting for the last runs"
for p in "${PIDS[@]:2}"; do wait "$p" 2>/dev/null || true; done
sleep 5
echo "$(($(date +%s) - T0)),$(awk '/^VmRSS/ {print $2}' "/proc/$SPID/status"),$(find "/proc/$SPID/fd" -mindepth 1 -maxdepth 1 | wc -l),$(awk '/^Threads/ {print $2}' "/proc/$SPID/status"),0,0" >> "$OUT/soak.csv"

VENV="$ROOT/target/plot-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "installing matplotlib into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q matplotlib >&2
fi
"$VENV/bin/python" "$ROOT/scripts/soak-report.py" "$OUT" | tee "$OUT/summary.md"
log "results in $OUT"
