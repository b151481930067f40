#!/usr/bin/env bash
# A load-balanced sshfront fleet on loopback, to try by hand: HAProxy (Debian's package, TCP
# mode, send-proxy-v2, health checks on /readyz) in front of two sshfront instances that share
# one set of host keys.
#
#   scripts/lb-demo.sh            # builds, starts everything, waits; Ctrl-C (or SIGTERM to
#                                 # the script) stops it all
#
# Everything listens on 127.0.0.1 only and lives in a temp dir. HAProxy runs as our child
# (`haproxy -f CFG -db`), never the system service; on exit every process we started is
# stopped by its PID. Ports can be changed with FRONT_PORT / BASE_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

FRONT_PORT=${FRONT_PORT:-2222}
BASE_PORT=${BASE_PORT:-22201}
A_SSH=$BASE_PORT
B_SSH=$((BASE_PORT + 1))
A_METRICS=$((BASE_PORT + 10))
B_METRICS=$((BASE_PORT + 11))

log() { printf '== %s\n' "$*" >&2; }

HAPROXY=$(command -v haproxy || true)
[ -z "$HAPROXY" ] && [ -x /usr/sbin/haproxy ] && HAPROXY=/usr/sbin/haproxy
if [ -z "$HAPROXY" ]; then
    log "installing haproxy (apt)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy >/dev/null
    HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
fi

log "building sshfront (release)"
cargo build --release --quiet
BIN=$PWD/target/release/sshfront

DIR=$(mktemp -d -t sshfront-lb-demo.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
    log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One set of host keys for both: generated once, then passed to each with --host-key, so a
# client sees the same host key whichever instance serves it.
log "generating shared host keys in $DIR/keys"
"$BIN" --listen 127.0.0.1:0 --data-dir "$DIR/keys" --port-file "$DIR/keygen.port" \
    2>"$DIR/keygen.log" &
keygen=$!
for _ in $(seq 1 600); do [ -s "$DIR/keygen.port" ] && break; sleep 0.1; done
kill "$keygen" 2>/dev/null || true
wait "$keygen" 2>/dev/null || true
KEYS=()
for k in ssh_host_ed25519_key ssh_host_ecdsa_key ssh_host_rsa_key; do
    KEYS+=(--host-key "$DIR/keys/$k")
done

start_instance() { # name ssh_port metrics_port
    "$BIN" --listen "127.0.0.1:$2" --metrics-listen "127.0.0.1:$3" \
        --proxy-protocol --proxy-from 127.0.0.1/32 --drain-delay 2 \
        --data-dir "$DIR/$1" "${KEYS[@]}" 2>"$DIR/$1.log" &
    PIDS+=($!)
    log "sshfront $1: ssh 127.0.0.1:$2, metrics http://127.0.0.1:$3/metrics (pid $!, log $DIR/$1.log)"
}
start_instance a "$A_SSH" "$A_METRICS"
start_instance b "$B_SSH" "$B_METRICS"

cat >"$DIR/haproxy.cfg" <<EOF
global
    # Each connection takes two descriptors; keep within a common 8k-20k open-files limit.
    maxconn 4000

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout check 2s
    # A refused connect (an instance draining) is retried on the other one.
    retries 3
    option redispatch 1

frontend ssh
    bind 127.0.0.1:$FRONT_PORT
    default_backend sshfront

backend sshfront
    balance leastconn
    # Health from sshfront's /readyz: 503 from the moment an instance gets SIGTERM.
    option httpchk GET /readyz
    server a 127.0.0.1:$A_SSH send-proxy-v2 check port $A_METRICS inter 200ms fall 1 rise 1
    server b 127.0.0.1:$B_SSH send-proxy-v2 check port $B_METRICS inter 200ms fall 1 rise 1
EOF
"$HAPROXY" -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
log "haproxy on 127.0.0.1:$FRONT_PORT (pid $HAPROXY_PID, config $DIR/haproxy.cfg)"

# GET /readyz with bash's /dev/tcp (no curl needed); true on 200.
ready() {
    local status
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET /readyz HTTP/1.1\r\nHost: demo\r\n\r\n' >&3
    read -r _ status _ <&3 || true
    exec 3>&-
    [ "$status" = 200 ]
}
for _ in $(seq 1 100); do
    ready "$A_METRICS" 2>/dev/null && ready "$B_METRICS" 2>/dev/null && break
    sleep 0.1
done

cat <<EOF

Ready. Try:
  ssh -p $FRONT_PORT -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no test@127.0.0.1
      (key exchange through HAProxy; the instance's log shows your real address and port)
  ssh-keyscan -p $FRONT_PORT 127.0.0.1     (twice: the same host keys from either instance)
  curl -s http://127.0.0.1:$A_METRICS/metrics | grep -v '^#' | head -30   (if curl is installed)
  curl -si http://127.0.0.1:$A_METRICS/readyz
  kill -TERM ${PIDS[0]}                     (drain instance a: /readyz 503, traffic moves to b)
  tail -f $DIR/a.log $DIR/b.log

Ctrl-C stops everything.
EOF
# Runs until Ctrl-C (an instance may be drained and exit meanwhile; HAProxy keeps going).
wait "$HAPROXY_PID" || true
log "haproxy exited; its log:"
cat "$DIR/haproxy.log" >&2
