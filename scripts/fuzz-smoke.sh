#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (default 30 s). Needs cargo-fuzz; on a stable
# toolchain the sanitizer flags need RUSTC_BOOTSTRAP=1 (set here).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in packet_open wire_msgs server_transport; do
  cargo fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048
done
