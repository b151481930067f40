#![no_main]
//! The client core fed a server's byte stream.
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sshfront::fuzz_entry::session::client_session(data);
    common::report_reach();
});
