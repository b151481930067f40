//! Shared by the fuzz targets.
#![allow(dead_code)]

pub mod script;

use std::sync::atomic::{AtomicU64, Ordering};

/// Prints how deep inputs got every 2^16 runs (and at the first), into the fuzzer's log; after
/// every run with SSHFRONT_FUZZ_REACH set (replaying a corpus: the last line sums it).
pub fn report_reach() {
    static N: AtomicU64 = AtomicU64::new(0);
    static EVERY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let n = N.fetch_add(1, Ordering::Relaxed);
    if n & 0xffff == 0 || *EVERY.get_or_init(|| std::env::var_os("SSHFRONT_FUZZ_REACH").is_some()) {
        eprintln!("{}", sshfront::fuzz_entry::session::REACH.line());
    }
}
