#!/usr/bin/env bash
# The session proxy's cost against going straight to sshd: one private OpenSSH sshd on a
# 127.0.0.1 high port, and one sshfront whose --routes file sends the harness user to that sshd
# (auth = key, an identity file of its own, the sshd host key pinned in a known_hosts file).
#
#   scripts/compare-proxy.sh [--quick] [--rounds N] [--out DIR]
#
# Round after round, alternating (a) sshd directly and (b) sshfront → sshd, it runs the same
# bench-harness loads: handshake with one `exec true` waited to its close, at C=1 and C=16
# (the proxy confirms a session channel before its upstream is up, so only a command's end
# times the upstream leg too) (latency; CPU per
# session: for (a) sshd's process tree, for (b) sshfront's tree plus the upstream sshd's tree),
# bulk through direct-tcpip to the harness's sink (MB/s, core-s/GB of the same trees), sftp put
# and get of one file by OpenSSH's sftp client (MB/s, core-s/GB, checked byte for byte), and idle
# (N authenticated sessions held; for (b) sshfront's own RSS/PSS per session, sshd's excluded,
# with a fresh sshfront per run). sshd runs with its own config, host key and authorized_keys
# from a temp dir (never the system service). Every process it starts is stopped by PID on exit.
# Raw results (one JSON line per run) go to DIR/results.jsonl, the machine note to
# DIR/machine.txt and the table (scripts/proxy-tables.py) to DIR/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
ROUNDS=3
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; ROUNDS=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    HS_SECS=3; BULK_BYTES=256M; SFTP_BYTES=64M; IDLE_N=200; IDLE_HOLD=1; IDLE_SETTLE=8
else
    HS_SECS=5; BULK_BYTES=512M; SFTP_BYTES=256M; IDLE_N=200; IDLE_HOLD=2; IDLE_SETTLE=8
fi
OUT=${OUT:-$ROOT/target/compare-proxy-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

log() { printf '== %s\n' "$*" >&2; }

# The private sshd and the port / PID helpers, shared with compare.sh.
# shellcheck source=scripts/lib/sshd.sh
. "$ROOT/scripts/lib/sshd.sh"
sshd_ensure_installed

WORK=$(mktemp -d /tmp/sshfront-proxy.XXXXXX)
PIDS=()
cleanup() {
    stop_all_pids
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building release binaries"
cargo build --release --bins -p sshfront -p bench-harness >&2
H="$ROOT/target/release/bench-harness"
USER_NAME=$(id -un)

# The harness's key (accepted by sshfront, and by sshd for the direct runs) and the gateway's
# upstream identity (accepted by sshd).
ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$WORK/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-up-host -f "$WORK/up_host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$WORK/user_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-gateway -f "$WORK/gw_id"
cp "$WORK/user_ed25519.pub" "$WORK/authorized_keys"
cat "$WORK/user_ed25519.pub" "$WORK/gw_id.pub" > "$WORK/sshd_authorized_keys"
chmod 600 "$WORK"/host_ed25519 "$WORK"/up_host_ed25519 "$WORK"/user_ed25519 "$WORK"/gw_id \
    "$WORK"/authorized_keys "$WORK"/sshd_authorized_keys

# Below the ephemeral range (32768+), where the client ports live.
P_SSHD=$(free_port 22400)
P_FRONT=$(free_port $((P_SSHD + 1)))
P_IDLE=$(free_port $((P_FRONT + 1)))

# sshd: the shared settings (as compare.sh's), plus sessions for the idle load and sftp for
# sftp_run; its own host key (pinned below), the gateway's identity among its authorized keys.
sshd_write_config "$WORK/sshd_config" "$P_SSHD" "$WORK/up_host_ed25519" "$WORK/sshd.pid" \
    "$WORK/sshd_authorized_keys" "MaxSessions 100" "PrintLastLog no" \
    "Subsystem sftp internal-sftp"
printf '[127.0.0.1]:%s %s\n' "$P_SSHD" "$(cut -d' ' -f1-2 "$WORK/up_host_ed25519.pub")" \
    > "$WORK/upstream_known_hosts"
cat > "$WORK/routes.toml" <<EOF
[[route]]
name = "bench"
user = "$USER_NAME"
upstreams = ["127.0.0.1:$P_SSHD"]
upstream_user = "$USER_NAME"
auth = "key"
identity_file = "$WORK/gw_id"
known_hosts = "$WORK/upstream_known_hosts"
connect_timeout = 5
login_timeout = 30
EOF

# start_front PORT LOGFILE: one sshfront with the route; its PID in LAST_PID. No
# --permit-open: a routed user's direct-tcpip goes to the upstream sshd, which decides (its
# default permits any destination).
start_front() {
    "$ROOT/target/release/sshfront" --listen "127.0.0.1:$1" \
        --host-key "$WORK/host_ed25519" --data-dir "$WORK/sshfront-data-$1" \
        --authorized-keys "$WORK/authorized_keys" --routes "$WORK/routes.toml" \
        --kex curve25519-sha256 --host-key-algorithms ssh-ed25519 \
        --max-connections 20000 --log-level warn 2>>"$2" &
    track_pid "$!"
}

sshd_start "$WORK/sshd_config" "$OUT/sshd.log"; PID_SSHD=$LAST_PID
wait_port "$P_SSHD"
start_front "$P_FRONT" "$OUT/sshfront.log"; PID_FRONT=$LAST_PID
wait_port "$P_FRONT"

# tree_stat PID: "CPU-seconds processes" of PID's process tree, counted as procstat.rs does
# (each live process's utime+stime+cutime+cstime, so reaped sshd children are in their
# parent's figure).
tree_stat() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
stats = {}
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        s = open(f"/proc/{d}/stat").read()
    except OSError:
        continue
    f = s[s.rfind(")") + 2:].split()
    stats[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]))
kids = {}
for p, (pp, _) in stats.items():
    kids.setdefault(pp, []).append(p)
seen, stack = [], [root] if root in stats else []
while stack and len(seen) < 100000:
    p = stack.pop()
    seen.append(p)
    stack.extend(kids.get(p, []))
print(sum(stats[p][1] for p in seen) / os.sysconf("SC_CLK_TCK"), len(seen))
PY
}

# run PATH TEST ROUND SUB ARGS...: one harness run against PATH (direct = sshd, proxied =
# sshfront → sshd); the harness samples the entry server's tree (--server-pid), this script the
# upstream sshd's tree around the run (for direct runs both are sshd's). One JSON line.
run() {
    local path=$1 test=$2 round=$3 sub=$4
    shift 4
    local port pid j before after
    if [ "$path" = direct ]; then port=$P_SSHD; pid=$PID_SSHD; else port=$P_FRONT; pid=$PID_FRONT; fi
    port=${RUN_PORT:-$port}
    pid=${RUN_PID:-$pid}
    before=$(tree_stat "$PID_SSHD")
    j=$("$H" "$sub" --addr "127.0.0.1:$port" --user "$USER_NAME" \
        --key "$WORK/user_ed25519" --server-pid "$pid" --json "$@" \
        2>>"$OUT/harness.log") || j='{"error":"harness exited with an error"}'
    sleep 0.5
    after=$(tree_stat "$PID_SSHD")
    printf '{"path":"%s","test":"%s","round":%s,"loadavg":"%s","sshd_cpu_before":%s,"sshd_cpu_after":%s,"sshd_procs_after":%s,"result":%s}\n' \
        "$path" "$test" "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" \
        "${before%% *}" "${after%% *}" "${after##* }" "$j" >> "$RESULTS"
    log "round $round $test $path: $(echo "$j" | head -c 300)"
}

{
    echo "nproc: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    echo "kernel: $(uname -r)"
    echo "sshd: $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
    echo "loadavg at start: $(cat /proc/loadavg)"
    echo "rounds: $ROUNDS, handshake seconds per point: $HS_SECS, bulk bytes: $BULK_BYTES, sftp bytes: $SFTP_BYTES, idle: $IDLE_N"
} > "$OUT/machine.txt"

# sftp_run PATH ROUND: OpenSSH's sftp client puts, then gets, an SFTP_BYTES file through PATH
# (direct = sshd's internal-sftp; proxied = sshfront's bridge to it), aes128-gcm on every leg.
# Wall time from the sftp process; CPU of sshd's tree and, proxied, sshfront's; the copy must
# come back byte for byte. One JSON line per direction, in the harness's bulk shape.
SFTP_SRC="$WORK/sftp-src"
head -c "$SFTP_BYTES" /dev/urandom > "$SFTP_SRC"
sftp_run() {
    local path=$1 round=$2 port dir t0 t1 s0 s1 f0 f1 ok bytes
    if [ "$path" = direct ]; then port=$P_SSHD; else port=$P_FRONT; fi
    bytes=$(stat -c %s "$SFTP_SRC")
    for dir in put get; do
        rm -f "$WORK/sftp-back"
        if [ "$dir" = put ]; then rm -f "$WORK/sftp-dst"; fi
        if [ "$dir" = put ]; then
            printf 'put %s %s\n' "$SFTP_SRC" "$WORK/sftp-dst" > "$WORK/sftp-batch"
        else
            printf 'get %s %s\n' "$WORK/sftp-dst" "$WORK/sftp-back" > "$WORK/sftp-batch"
        fi
        s0=$(tree_stat "$PID_SSHD"); f0=$(tree_stat "$PID_FRONT")
        t0=$(date +%s.%N)
        if sftp -q -b "$WORK/sftp-batch" -P "$port" -i "$WORK/user_ed25519" \
            -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o Ciphers=aes128-gcm@openssh.com "$USER_NAME@127.0.0.1" >>"$OUT/sftp.log" 2>&1; then
            ok=1
        else
            ok=0
        fi
        t1=$(date +%s.%N)
        sleep 0.5
        s1=$(tree_stat "$PID_SSHD"); f1=$(tree_stat "$PID_FRONT")
        if [ "$dir" = put ] && ! cmp -s "$SFTP_SRC" "$WORK/sftp-dst"; then ok=0; fi
        if [ "$dir" = get ] && ! cmp -s "$SFTP_SRC" "$WORK/sftp-back"; then ok=0; fi
        python3 - "$path" "$dir" "$round" "$ok" "$bytes" "$t0" "$t1" "${s0%% *}" "${s1%% *}" \
            "${s1##* }" "${f0%% *}" "${f1%% *}" "$(cut -d' ' -f1-3 /proc/loadavg)" \
            >> "$RESULTS" <<'PY'
import json, sys
path, d, rnd, ok, n, t0, t1, s0, s1, procs, f0, f1, load = sys.argv[1:]
secs = float(t1) - float(t0)
res = {"mode": "sftp", "ok": int(ok), "failed": 1 - int(ok), "connections": 1,
       "bytes_per_connection": int(n), "data_seconds": secs,
       "total_mb_per_s": int(n) / secs / 1e6 if int(ok) else 0,
       "server_cpu_s": float(f1) - float(f0) if path == "proxied" else None}
print(json.dumps({"path": path, "test": f"sftp_{d}", "round": int(rnd), "loadavg": load,
                  "sshd_cpu_before": float(s0), "sshd_cpu_after": float(s1),
                  "sshd_procs_after": int(procs), "result": res}))
PY
        log "round $round sftp $dir $path: ok=$ok $(tail -n 1 "$RESULTS" | head -c 200)"
    done
}

for round in $(seq 1 "$ROUNDS"); do
    for c in 1 16; do
        for path in direct proxied; do
            run "$path" "handshake_c$c" "$round" handshake -c "$c" --exec true --duration "$HS_SECS"
        done
    done
    for path in direct proxied; do
        run "$path" bulk_direct_tcpip "$round" bulk --bytes "$BULK_BYTES" --max-time 60
    done
    for path in direct proxied; do
        sftp_run "$path" "$round"
    done
    # Idle: a fresh sshfront per run, so heap grown by the loads above is not reused; the
    # harness samples only sshfront's tree, the upstream sshd's children are outside it. The
    # sample waits --settle seconds after the last user login, for the upstream logins
    # (sshd takes seconds to start 200 sessions on this machine).
    # sshd's own figure (its whole tree) for reference.
    run direct idle "$round" idle -n "$IDLE_N" --settle "$IDLE_SETTLE" --hold "$IDLE_HOLD" --max-time 90
    start_front "$P_IDLE" "$OUT/sshfront-idle.log"
    if wait_port "$P_IDLE"; then
        RUN_PORT=$P_IDLE RUN_PID=$LAST_PID run proxied idle "$round" idle \
            -n "$IDLE_N" --settle "$IDLE_SETTLE" --hold "$IDLE_HOLD" --max-time 90
    fi
    stop_pid "$LAST_PID"
done

python3 "$ROOT/scripts/proxy-tables.py" "$RESULTS" --machine "$OUT/machine.txt" > "$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
