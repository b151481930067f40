# Sourced by scripts/compare.sh --attack (uses its WORK, OUT, H, USER_NAME, ports, start_server,
# plot_venv, and wait_port and stop_pid from scripts/lib/sshd.sh): each attack mode against a
# fresh sshfront and a fresh sshd, then 10,000 held pre-auth connections against sshfront (the
# server-memory figure), then the table and the plots.

if [ "$QUICK" = 1 ]; then ATTACK_SECS=5; else ATTACK_SECS=30; fi
log "attack: 4 modes × 2 servers at ${ATTACK_SECS} s, then preauth-10k: expected about $(((8 * (ATTACK_SECS + 4) + (ATTACK_SECS > 15 ? ATTACK_SECS : 15) + 20 + 59) / 60)) min"
ATTACK_RATE=50
# Attacker connections per mode (the issue's targets: 64-concurrent spray, 256-concurrent KEX
# flood; pre-auth connections held by the thousand).
declare -A ATTACK_C=([spray]=64 [kex-flood]=256 [preauth-idle]=2000 [slowloris]=256)

# sshfront: a password file (the spray's target) and per-source penalties where the build has
# them (OpenSSH 9.8's defaults).
echo "$(head -c 24 /dev/urandom | base64)" |
    "$ROOT/target/release/sshfront" passwd --password-file "$WORK/passwords" "$USER_NAME" >&2
SSHFRONT_EXTRA=(--password-file "$WORK/passwords")
if "$ROOT/target/release/sshfront" --help | grep -q -- '--per-source-penalties'; then
    SSHFRONT_EXTRA+=(--per-source-penalties 'authfail:5s noauth:1s grace-exceeded:10s max:10m min:15s')
    PENALTIES=on
else
    PENALTIES="not in this build"
fi
# sshd: password auth on (wrong passwords fail against the system's), MaxStartups back to
# sshd's default 10:30:100 by a config without the comparison's MaxStartups line (an `-o
# MaxStartups=…` loses to the file's line: sshd keeps the last value it reads, and runs up to
# 2026-12-02 had 100000:30:100000 that way); OpenSSH 9.2 has no PerSourcePenalties.
SSHD_EXTRA=(-o PasswordAuthentication=yes)
SSHD_CONFIG="$WORK/sshd_attack_config"
SSHD_MAX_STARTUPS="" sshd_write_config "$SSHD_CONFIG" "$P_SSHD" "$WORK/host_ed25519" \
    "$WORK/sshd.pid" "$WORK/authorized_keys" "MaxAuthTries 6"

{
    echo "nproc: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    echo "kernel: $(uname -r)"
    echo "sshd: $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
    echo "sshfront flags: ${SSHFRONT_EXTRA[*]}"
    echo "sshfront per-source penalties: $PENALTIES"
    echo "sshd extra: ${SSHD_EXTRA[*]}; MaxStartups: $(/usr/sbin/sshd -T -f "$SSHD_CONFIG" -h "$WORK/host_ed25519" 2>/dev/null | awk '$1 == "maxstartups" {print $2}')"
    echo "attack seconds: $ATTACK_SECS, legitimate logins/s: $ATTACK_RATE"
    echo "preauth-10k: 10000 pre-auth connections against sshfront, --max-startups 11000:30:15000, no penalties"
    echo "loadavg at start: $(cat /proc/loadavg)"
} > "$OUT/machine.txt"

for mode in spray kex-flood preauth-idle slowloris; do
    for s in sshfront sshd; do
        start_server "$s" "$P_IDLE" "$OUT/$s-$mode.log"
        if wait_port "$P_IDLE"; then
            log "attack $mode against $s (c=${ATTACK_C[$mode]}, ${ATTACK_SECS}s)"
            "$H" attack --mode "$mode" --addr "127.0.0.1:$P_IDLE" --user "$USER_NAME" \
                --key "$WORK/user_ed25519" --bind 127.0.0.2 -c "${ATTACK_C[$mode]}" \
                --server-pid "$LAST_PID" \
                --duration "$ATTACK_SECS" --rate "$ATTACK_RATE" --label "$s" \
                --out "$OUT/$s-$mode.jsonl" 2>>"$OUT/harness.log" ||
                log "harness failed on $s $mode (see $OUT/harness.log)"
            tail -n 1 "$OUT/$s-$mode.jsonl" >&2 || true
        fi
        stop_pid "$LAST_PID"
    done
done

# preauth-10k: 10,000 connections that send the version line and sit, held for the whole run,
# for the server memory they cost (the issue's ≤ 60 MiB RSS). sshfront's startup limits are
# raised above 10,000 so it holds them all, and no penalties apply; sshd is not run: with
# MaxStartups raised to match it would fork 10,000 processes (~1.4 MB PSS each), and with its
# default it holds 100.
PREAUTH_N=10000
SAVED_EXTRA=("${SSHFRONT_EXTRA[@]}")
SSHFRONT_EXTRA=(--max-startups "$((PREAUTH_N + 1000)):30:$((PREAUTH_N + 5000))")
start_server sshfront "$P_IDLE" "$OUT/sshfront-preauth-10k.log"
if wait_port "$P_IDLE"; then
    log "preauth-10k against sshfront (c=$PREAUTH_N, ${ATTACK_SECS}s)"
    "$H" attack --mode preauth-idle --addr "127.0.0.1:$P_IDLE" --user "$USER_NAME" \
        --key "$WORK/user_ed25519" --bind 127.0.0.2 -c "$PREAUTH_N" \
        --server-pid "$LAST_PID" --duration "$((ATTACK_SECS > 15 ? ATTACK_SECS : 15))" \
        --rate "$ATTACK_RATE" --label sshfront \
        --out "$OUT/sshfront-preauth-10k.jsonl" 2>>"$OUT/harness.log" ||
        log "harness failed on sshfront preauth-10k (see $OUT/harness.log)"
    tail -n 1 "$OUT/sshfront-preauth-10k.jsonl" >&2 || true
fi
stop_pid "$LAST_PID"
SSHFRONT_EXTRA=("${SAVED_EXTRA[@]}")

python3 "$ROOT/scripts/attack-tables.py" "$OUT" --machine "$OUT/machine.txt" > "$OUT/summary.md"
cat "$OUT/summary.md"
if plot_venv; then
    "$PLOT_PY" "$ROOT/scripts/attack-tables.py" "$OUT" --plot "$OUT" || log "plots failed"
fi
log "results in $OUT"
