#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need if missing, runs every test
# in release mode, then the format and lint checks.
#
#   scripts/test.sh
#
# Needs: a Rust toolchain with rustfmt and clippy. Installs, only if absent: the OpenSSH client
# (apt), HAProxy (apt), Dropbear's dbclient and PuTTY's plink (apt), openssh-sftp-server and
# openssh-tests (apt, for sftp-server and sk-dummy.so) and a Python venv at .venv-test with
# paramiko and twisted (pip), used by the real-client and fleet tests.
# Also, only if absent: systemd (apt; systemd-analyze for the unit files), g++ (apt; libFuzzer
# for the fuzz crate's check), ssh-audit and asciinema (pip, into .venv-test).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

# apt_install PKG...: Debian packages a test needs (called only when the tool is missing); the
# package lists are refreshed once per run.
APT_UPDATED=0
apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    if [ "$APT_UPDATED" = 0 ]; then
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v ssh >/dev/null 2>&1; then
    log "installing openssh-client"
    apt_install openssh-client
fi

# The fleet test (tests/fleet.rs) puts HAProxy in front of two instances; it runs its own
# haproxy on loopback, never the system service.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    log "installing haproxy"
    apt_install haproxy
fi

# Dropbear's and PuTTY's clients for tests/dropbear_putty.rs.
for tool_pkg in dbclient:dropbear-bin plink:putty-tools puttygen:putty-tools; do
    if ! command -v "${tool_pkg%%:*}" >/dev/null 2>&1; then
        log "installing ${tool_pkg#*:}"
        apt_install "${tool_pkg#*:}"
    fi
done

# tests/systemd.rs checks the shipped unit files with systemd-analyze verify.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    log "installing systemd (for systemd-analyze)"
    apt_install systemd
fi

# sshd as a real server for the client core (tests/client_sshd.rs).
if [ ! -x /usr/sbin/sshd ]; then
    log "installing openssh-server"
    apt_install openssh-server
fi

# tmux drives `ssh -tt` for the PTY test (tests/pty.rs).
if ! command -v tmux >/dev/null 2>&1; then
    log "installing tmux"
    apt_install tmux
fi

# libfuzzer-sys's build script compiles libFuzzer (C++) for the fuzz crate's check below.
if ! command -v c++ >/dev/null 2>&1; then
    log "installing g++"
    apt_install g++
fi

VENV=.venv-test
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import paramiko' >/dev/null 2>&1; then
    log "creating $VENV with paramiko"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        apt_install python3-venv
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check paramiko
fi
# Twisted Conch's `conch` client signs with SHA-1 ssh-rsa (tests/openssh_parity.rs).
if ! "$VENV/bin/python" -c 'import twisted.conch' >/dev/null 2>&1; then
    log "installing twisted in $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check twisted cryptography
fi

# asciinema replays session recordings (tests/pty.rs).
if [ ! -x "$VENV/bin/asciinema" ]; then
    log "installing asciinema in $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check asciinema
fi

# sftp-server for --subsystem tests; sk-dummy.so (openssh-tests) for security-key tests.
if [ ! -x /usr/lib/openssh/sftp-server ] || ! dpkg -s openssh-tests >/dev/null 2>&1; then
    log "installing openssh-sftp-server openssh-tests"
    apt_install openssh-sftp-server openssh-tests
fi

# tests/ssh_audit.rs rates the crypto policies with ssh-audit (PyPI).
if [ ! -x "$VENV/bin/ssh-audit" ]; then
    log "installing ssh-audit into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check ssh-audit
fi
export SSHFRONT_TEST_SSH_AUDIT="$PWD/$VENV/bin/ssh-audit"
# Tests that drive paramiko find the interpreter here.
export SSHFRONT_TEST_PYTHON="$PWD/$VENV/bin/python"

log "cargo test (release)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
cargo test --workspace --all-targets --release 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# One summary over all test binaries (cargo prints one "test result" line per binary).
awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i
            if ($(i+1) ~ /^failed/) f += $i
            if ($(i+1) ~ /^ignored/) s += $i
        }
     }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$out"
if [ "$status" -ne 0 ]; then
    log "cargo test failed"
    exit "$status"
fi

# The seeded fuzz smoke tests again with the fuzzing stand-ins, so mutated sessions get past key
# exchange into auth, channels, forwarding and rekeys (FUZZING.md).
log "fuzz smoke (--features fuzzing)"
cargo test --release --features fuzzing --lib fuzz_entry

# The fuzz crate is its own workspace, built only by cargo-fuzz (FUZZING.md), so nothing above
# compiles its targets: type-check them here, so a change that breaks one fails this script.
# Stable is enough for a check (the sanitizer flags are cargo-fuzz's); fuzz/target keeps it
# apart from the main build's target directory; --locked: fuzz/Cargo.lock must follow the main
# crate's dependencies.
log "fuzz targets compile (cargo check, fuzz/)"
cargo check --locked --manifest-path fuzz/Cargo.toml --target-dir fuzz/target --bins

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

log "BENCHMARKS.md tables match their raw results"
python3 scripts/bench-tables.py bench-harness/results/2026-12-03-compare/results.jsonl \
    --check BENCHMARKS.md
python3 scripts/soak-report.py bench-harness/results/soak-2026-12-02-heap-trim --check BENCHMARKS.md
python3 scripts/attack-tables.py bench-harness/results/attack-2026-12-03b --check BENCHMARKS.md
python3 scripts/attack-tables.py bench-harness/results/attack-2026-12-02 --check BENCHMARKS.md
python3 scripts/proxy-tables.py bench-harness/results/proxy-2026-12-02-idle/results.jsonl \
    --check BENCHMARKS.md

log "all checks passed"
