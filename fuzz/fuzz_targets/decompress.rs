#![no_main]
//! zlib / zlib@openssh.com inflation of arbitrary streams, and the deflate → inflate round trip.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfront::fuzz_entry::decompress(data));
