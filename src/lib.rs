//! sshfront: a fast, robust SSH front end.
//!
//! ```text
//!  listeners ─▶ acceptor thread (own mio::Poll, signal pipe)
//!                  │ socket + peer address, over crossbeam + Waker, to the least-loaded worker
//!                  ▼
//!  worker 1..N ── one thread each: own mio::Poll, Slab<Conn>, buffer pool, timers
//!       │    ▲
//!       │    └── JobDone + (key, generation), over crossbeam + the worker's Waker
//!       ▼
//!  rayon pool ── DH / ECDH / KEM, host-key signing, password hashing
//! ```
//!
//! Two halves that never mix: the protocol core (`wire`, `packet`, `algo`, `transport`, `auth`,
//! `connection`, `server`, `client`) is sans-IO — bytes, `now` and finished crypto jobs in;
//! sealed bytes, events, jobs and deadlines out. The runtime (`runtime`, `metrics`) is the only
//! place with sockets, threads, clocks and signals.
// The fuzzing stand-ins leave the real crypto unused in that build only.
#![cfg_attr(feature = "fuzzing", allow(dead_code, unused_imports))]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo))]

pub mod algo;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod connection;
pub mod docs;
/// Fuzz targets' entry points: in tests and `--features fuzzing` builds only.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz_entry;
pub mod metrics;
pub mod packet;
pub mod proxy;
pub mod proxy_protocol;
pub mod runtime;
pub mod server;
pub mod service;
pub mod transport;
pub mod wire;
