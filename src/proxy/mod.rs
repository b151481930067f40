//! The session proxy's sans-IO parts: routes (which user goes to which upstreams, balanced how),
//! pinned upstream host keys, upstream health, the channel map between the two cores, and the
//! upstream login with the user's forwarded agent. The runtime drives them; nothing here reads a
//! clock, a socket or a file (the routes file is read by `config::routes`).

pub mod agent;
pub mod agent_login;
pub mod bridge;
#[cfg(test)]
mod fake_down;
pub mod health;
pub mod known_hosts;
pub mod recording;
pub mod route;
pub mod upstream_algs;

pub use route::{Balance, Pick, Route, RouteMatch, Routes, Upstream, UpstreamAuth};
