# shellcheck shell=bash
# Private OpenSSH sshd for the comparison scripts (compare.sh, compare-attack.sh via compare.sh,
# compare-proxy.sh): install if missing, write its config, start it on a 127.0.0.1 port, wait for
# it to listen, stop it by PID. Also the loopback-port and PID helpers the scripts use for their
# other servers. Sourced; defines functions only, so sourcing it under `set -euo pipefail` runs
# nothing.
#
# PID bookkeeping: every process started here (and every one the caller passes to track_pid)
# goes into the caller's PIDS array and LAST_PID; stop_pid and stop_all_pids kill only those
# PIDs, never by name, so the system's sshd and anything else on the machine are left alone.
# The caller sets PIDS=() before starting anything and calls stop_all_pids from its EXIT trap.
#
# Call these as plain commands, not in `if`/`&&`/`||` (except wait_port, which returns 1 on
# purpose): bash ignores `set -e` inside a function called from a condition, and the scripts
# rely on a failing step here stopping them, as the inline code they replace did.

# sshd_ensure_installed: Debian's openssh-server if /usr/sbin/sshd is missing. Only the package
# is installed; the system service and /etc/ssh are never started, stopped or edited.
sshd_ensure_installed() {
    local sudo
    if [ -x /usr/sbin/sshd ]; then return 0; fi
    printf '== %s\n' "installing openssh-server (the system service is not touched)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssh-server >/dev/null
}

# sshd_write_config FILE PORT HOST_KEY PID_FILE AUTHORIZED_KEYS [LINE...]: an sshd_config with
# settings chosen to match sshfront's (no PAM, no DNS, ed25519 host key, curve25519, no
# MaxStartups throttling of concurrent loads, loopback only), then each LINE as given (the
# caller's own settings). The extra lines come last; with no Match block their place only
# matters for a keyword already set above (most keywords keep their first value, MaxStartups its
# last), so pass only keywords not set here. Also creates /run/sshd, sshd's privilege-separation
# directory, which it refuses to start without.
sshd_write_config() {
    local file=$1 port=$2 host_key=$3 pid_file=$4 authorized_keys=$5 max_startups=""
    shift 5
    # SSHD_MAX_STARTUPS: the MaxStartups line's value, default 100000 (no throttling); set it
    # empty to leave the line out and keep sshd's default (10:30:100). It cannot be changed
    # with `-o` on the command line instead: sshd keeps the last MaxStartups it reads, and the
    # config file is read after the command line.
    if [ -n "${SSHD_MAX_STARTUPS-100000}" ]; then
        max_startups="MaxStartups ${SSHD_MAX_STARTUPS-100000}"$'\n'
    fi
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    cat > "$file" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $host_key
PidFile $pid_file
AuthorizedKeysFile $authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
${max_startups}AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
LogLevel ERROR
KexAlgorithms curve25519-sha256
HostKeyAlgorithms ssh-ed25519
Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com
EOF
    # `if`, not `[ ] && printf`: with no extra lines that would be the function's status and
    # stop a `set -e` caller; and printf with no arguments would write an empty line.
    if [ $# -gt 0 ]; then printf '%s\n' "$@" >> "$file"; fi
}

# sshd_start CONFIG LOGFILE [SSHD-ARG...]: sshd as a background job of this script, with the
# given extra arguments after -f CONFIG (-D: no daemonising, so $! is the listening sshd's own
# PID; -e: its log on stderr, appended to LOGFILE); that PID in LAST_PID and PIDS. Does not wait
# for the port: see wait_port.
sshd_start() {
    local config=$1 logfile=$2
    shift 2
    /usr/sbin/sshd -D -e -f "$config" "$@" 2>>"$logfile" &
    track_pid "$!"
}

# track_pid PID: a process this script started, to be stopped by stop_pid / stop_all_pids;
# also sets LAST_PID.
track_pid() {
    LAST_PID=$1
    PIDS+=("$LAST_PID")
}

# free_port START: the first port from START to START+200 with no TCP socket on it (in the
# script's command substitution, so the `exit` fails that assignment and with it the script).
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

# wait_port PORT: until something accepts on 127.0.0.1:PORT, at most 10 s; 1 (and a message)
# if nothing does.
wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on 127.0.0.1:$1" >&2
    return 1
}

# stop_pid PID: kills and reaps one process this script started and drops it from PIDS.
stop_pid() {
    local p keep=()
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# stop_all_pids: for the EXIT trap; every process still in PIDS, all signalled first, then
# reaped, so they stop in parallel.
stop_all_pids() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}
