#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfront::fuzz_entry::packet_open(data));
