#![no_main]
//! Sequences of well-formed server messages with mutated fields, sent to our client core (and
//! some client messages, so the connection is in every phase).
mod common;

use arbitrary::Unstructured;
use sshfront::fuzz_entry::session::{pair_script, seed_configs};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let configs = seed_configs();
    let Ok(i) = u.choose_index(configs.len()) else { return };
    let Ok(script) = common::script::script(&mut u, true) else { return };
    let cfg = configs.into_iter().nth(i).map(|(_, c)| c);
    if let Some(cfg) = cfg {
        pair_script(cfg, &script);
    }
    common::report_reach();
});
