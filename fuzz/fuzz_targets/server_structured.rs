#![no_main]
//! Sequences of well-formed client messages with mutated fields, sent by our client core to the
//! server (after a real handshake with the stand-ins), through every cipher family.
mod common;

use arbitrary::Unstructured;
use sshfront::fuzz_entry::session::{pair_script, seed_configs};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let configs = seed_configs();
    let Ok(i) = u.choose_index(configs.len()) else { return };
    let Ok(script) = common::script::script(&mut u, false) else { return };
    let cfg = configs.into_iter().nth(i).map(|(_, c)| c);
    if let Some(cfg) = cfg {
        pair_script(cfg, &script);
    }
    common::report_reach();
});
