//! The runtime: the only place with sockets, threads, clocks and signals.
//!
//! `run` binds the listeners (so a bad `--listen` fails before anything starts), writes the
//! port file, starts the crypto pool and `--workers` worker threads, then runs the acceptor on
//! the calling thread until shutdown. See `lib.rs` for the picture.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod acceptor;
pub mod auth_jobs;
pub mod buffers;
pub mod conn;
pub mod core;
pub mod crypto_pool;
pub mod endpoints;
pub mod fleet;
pub mod health_check;
pub mod heap_trim;
pub mod log;
pub mod log_format;
pub mod metrics_http;
pub mod out_queue;
pub mod penalty;
pub mod proxy;
pub mod recording;
pub mod resolve;
pub mod signals;
pub mod source_limit;
pub mod startups;
pub mod systemd;
pub mod timers;
pub mod upstream_link;
pub mod worker;

use crate::cli::Args;
use crate::config::Config;
use crossbeam_channel::bounded;
use mio::{Interest, Poll, Token, Waker};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// Reports queued from workers to the acceptor, per worker.
/// (Statistics, exits and penalty events: a burst of failed logins may close many at once.)
const REPORTS_PER_WORKER: usize = 1024;

/// Runs the server until it has shut down. `args` is kept to rebuild the config on SIGHUP.
pub fn run(args: Args, config: Config) -> io::Result<()> {
    let settings = config.runtime;
    let args_max_per_source = args.max_per_source;
    // Before any thread starts: it edits the environment.
    let systemd_env = systemd::SystemdEnv::take()?;
    let acceptor_poll = Poll::new()?;
    let acceptor_waker = Arc::new(Waker::new(acceptor_poll.registry(), acceptor::WAKER_TOKEN)?);

    let mut listeners = Vec::with_capacity(settings.listen.len());
    let mut bound: Vec<SocketAddr> = Vec::new();
    if systemd_env.listeners.is_empty() {
        for addr in &settings.listen {
            let l = fleet::bind(*addr, settings.fleet.reuse_port)
                .map_err(|e| io::Error::new(e.kind(), format!("--listen {addr}: {e}")))?;
            listeners.push(l);
        }
    } else {
        ::log::info!(
            "socket activation: {} inherited sockets, --listen ignored",
            systemd_env.listeners.len()
        );
        for (l, name) in systemd_env.listeners {
            ::log::info!("inherited socket {name:?}");
            listeners.push(l);
        }
    }
    for (i, l) in listeners.iter_mut().enumerate() {
        acceptor_poll.registry().register(l, Token(i), Interest::READABLE)?;
        let local = l.local_addr()?;
        ::log::info!(event = "listening"; "listening on {local}");
        bound.push(local);
    }
    if let Some(path) = &settings.port_file {
        let text: String = bound.iter().map(|a| format!("{a}\n")).collect();
        crate::config::host_keys::write_atomic(path, text.as_bytes(), 0o644)
            .map_err(|e| io::Error::other(format!("--port-file: {e}")))?;
    }
    let signals =
        signals::Signals::register(acceptor_poll.registry(), acceptor::SIGNAL_TOKEN_BASE)?;

    let crypto = Arc::new(crypto_pool::CryptoPool::new(
        settings.crypto_threads,
        settings.crypto_queue,
        settings.password_concurrency,
    )?);
    let buffer_used = Arc::new(AtomicUsize::new(0));
    let _ = buffers::GLOBAL.set((buffer_used.clone(), settings.max_buffer_memory));
    let (reports_tx, reports_rx) = bounded(settings.workers * REPORTS_PER_WORKER);
    let mut workers = Vec::with_capacity(settings.workers);
    for id in 0..settings.workers {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), conn::WAKER_TOKEN)?);
        let (tx, control) = bounded(worker::CONTROL_QUEUE);
        // Sized to the pool's bounds: results never outnumber jobs in flight (crypto_pool.rs).
        let (results_tx, results) = bounded(crypto.result_capacity());
        let load = Arc::new(AtomicUsize::new(0));
        let parts = worker::WorkerParts {
            id,
            poll,
            waker: waker.clone(),
            control,
            results_tx,
            results,
            reports: reports_tx.clone(),
            acceptor_waker: acceptor_waker.clone(),
            config: config.server.clone(),
            load: load.clone(),
            buffer_used: buffer_used.clone(),
            buffer_budget: settings.max_buffer_memory,
            crypto: crypto.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("sshfront-worker-{id}"))
            .spawn(move || worker::run(parts))?;
        workers.push(acceptor::WorkerHandle { tx, waker, load, thread: Some(thread) });
    }
    let fleet =
        fleet::Fleet::start(&settings.fleet, crypto.budget.clone(), crypto.class_budgets())?;
    let routes = config.server.gateway.routes.clone();
    let health_checks = health_check::HealthChecks::start(routes.clone())?;
    let heap_trim = match settings.heap_trim_interval {
        Some(every) => heap_trim::HeapTrim::start(every)?,
        None => None,
    };
    ::log::info!(
        event = "started";
        "sshfront {} started: {} workers, {} crypto threads",
        env!("CARGO_PKG_VERSION"),
        settings.workers,
        settings.crypto_threads
    );

    acceptor::Acceptor {
        poll: acceptor_poll,
        listeners,
        workers,
        reports: reports_rx,
        signals,
        args,
        max_connections: settings.max_connections,
        stats_interval: settings.stats_interval,
        drain_timeout: settings.drain_timeout,
        fleet,
        source_limits: (args_max_per_source > 0)
            .then(|| source_limit::SourceLimits::new(args_max_per_source)),
        notify: systemd_env.notify,
        penalties: settings.penalties.clone().map(penalty::PenaltyTable::new),
        startups: startups::Startups::new(
            settings.max_startups,
            settings.per_source_max_startups,
            crypto.budget.clone(),
        ),
        drop_rng: startups::DropRng::new(),
        routes,
        health_checks: Some(health_checks),
        heap_trim,
    }
    .run()
}
