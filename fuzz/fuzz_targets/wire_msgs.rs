#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfront::fuzz_entry::wire_msgs(data));
