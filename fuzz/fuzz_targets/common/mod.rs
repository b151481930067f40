//! Shared by the fuzz targets.
#![allow(dead_code)]

pub mod script;

use std::sync::atomic::{AtomicU64, Ordering};

/// Prints how deep inputs got every 2^16 runs (and at the first), into the fuzzer's log.
pub fn report_reach() {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    if n & 0xffff == 0 {
        eprintln!("{}", sshfront::fuzz_entry::session::REACH.line());
    }
}
