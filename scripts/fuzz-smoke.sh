#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (default 30 s), seeded from fuzz/seeds (and the
# committed corpora in fuzz/corpus). Needs cargo-fuzz; on a stable toolchain the sanitizer flags
# need RUSTC_BOOTSTRAP=1 (set here). See FUZZING.md for the long runs.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in packet_open wire_msgs msg_parsers decompress server_transport server_session \
  client_session server_structured client_structured; do
  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  cargo fuzz run "$t" "${dirs[@]}" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=16384
done
