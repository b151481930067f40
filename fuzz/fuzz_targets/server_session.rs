#![no_main]
//! A whole server session from the bytes a client sends (version line included), driven as the
//! runtime drives it, with the fuzzing stand-ins for KEX, signatures and MAC/cipher.
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sshfront::fuzz_entry::session::server_session(data);
    common::report_reach();
});
