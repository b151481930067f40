#![no_main]
use std::sync::{Arc, OnceLock};
use std::time::Instant;

fn config() -> &'static Arc<sshfront::transport::TransportConfig> {
    static C: OnceLock<Arc<sshfront::transport::TransportConfig>> = OnceLock::new();
    C.get_or_init(|| Arc::new(sshfront::fuzz_entry::fuzz_config()))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sshfront::fuzz_entry::server_transport(config(), data, Instant::now())
});
