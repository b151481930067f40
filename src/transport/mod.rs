//! The SSH transport layer (RFC 4253) as a sans-IO state machine, both roles. STUB.

pub mod config;
pub mod disconnect;
pub mod job;

pub use config::TransportConfig;
pub use disconnect::DisconnectReason;
pub use job::{CryptoJob, JobDone};
