#![no_main]
//! Every message parser (transport, userauth, connection) and the wire primitives.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfront::fuzz_entry::msg_parsers(data));
