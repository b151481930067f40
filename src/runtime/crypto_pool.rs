//! The crypto pool: key-exchange math and host-key signatures on a rayon pool, off the workers.
//!
//! Bounded: `in_flight` counts jobs submitted and not yet *received back* by their worker
//! (queued, running, or waiting in a result channel), against `--crypto-queue`. Because a
//! result is only counted free once its worker has taken it out of its channel, a result channel
//! sized to the bound can never be full, so a pool thread never blocks on a send.
//!
//! A job that panics (a bug, never peer input: the core validates before emitting jobs) comes
//! back as a result without `done`, and the worker closes that connection; rayon's default
//! would abort the whole process.

use crate::transport::{CryptoJob, JobDone};
use crossbeam_channel::Sender;
use mio::Waker;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who asked: the result goes back to this connection if it still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTicket {
    pub worker: usize,
    pub key: usize,
    pub generation: u32,
    pub submitted: Instant,
}

/// A finished job on its way back to the worker.
pub struct Completed<T> {
    pub ticket: JobTicket,
    pub label: &'static str,
    /// `None` if the job panicked.
    pub done: Option<T>,
    pub queue_wait: Duration,
    pub compute: Duration,
}

/// A finished crypto job.
pub type JobResult = Completed<JobDone>;

/// The counter of queued + running + undelivered jobs, shared by all workers.
#[derive(Clone)]
pub struct JobBudget {
    in_flight: Arc<AtomicUsize>,
    bound: usize,
}

impl JobBudget {
    pub fn new(bound: usize) -> Self {
        JobBudget { in_flight: Arc::new(AtomicUsize::new(0)), bound }
    }

    /// Takes one slot if any is free.
    pub fn try_acquire(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.bound).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a slot back (when the worker has received the result).
    pub fn release(&self) {
        let _ =
            self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn bound(&self) -> usize {
        self.bound
    }
}

/// The pool plus the shared bound.
pub struct CryptoPool {
    pool: rayon::ThreadPool,
    pub budget: JobBudget,
}

impl CryptoPool {
    pub fn new(threads: usize, bound: usize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("sshfront-crypto-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(CryptoPool { pool, budget: JobBudget::new(bound) })
    }

    /// Submits `job` if a slot is free; gives it back otherwise (the worker queues or refuses).
    /// The result goes to `results` and the worker is woken with `waker`.
    pub fn try_submit(
        &self,
        job: CryptoJob,
        label: &'static str,
        ticket: JobTicket,
        results: &Sender<JobResult>,
        waker: &Arc<Waker>,
    ) -> Result<(), CryptoJob> {
        if !self.budget.try_acquire() {
            return Err(job);
        }
        self.spawn_acquired(move || job.run(), label, ticket, results, waker);
        Ok(())
    }

    /// Runs `work` on the pool for a slot already taken from the budget; the slot is given back
    /// by the receiving worker (or here, if the worker is gone).
    fn spawn_acquired<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        label: &'static str,
        ticket: JobTicket,
        results: &Sender<Completed<T>>,
        waker: &Arc<Waker>,
    ) {
        let results = results.clone();
        let waker = waker.clone();
        let budget = self.budget.clone();
        self.pool.spawn(move || {
            let started = Instant::now();
            let done = catch_unwind(AssertUnwindSafe(work)).ok();
            let compute = started.elapsed();
            let result = Completed {
                ticket,
                label,
                done,
                queue_wait: started.saturating_duration_since(ticket.submitted),
                compute,
            };
            // The channel holds `bound` results, so this only fails if the worker is gone.
            if results.try_send(result).is_err() {
                budget.release();
            }
            let _ = waker.wake();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};

    #[test]
    fn results_come_back_with_timings_and_wake_the_worker() {
        let pool = CryptoPool::new(1, 2).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (tx, rx) = crossbeam_channel::bounded(pool.budget.bound());
        let ticket = |key| JobTicket { worker: 0, key, generation: 9, submitted: Instant::now() };
        assert!(pool.budget.try_acquire());
        pool.spawn_acquired(|| 42u32, "ok", ticket(1), &tx, &waker);
        assert!(pool.budget.try_acquire());
        pool.spawn_acquired(|| -> u32 { panic!("job bug") }, "boom", ticket(2), &tx, &waker);
        assert!(!pool.budget.try_acquire(), "bound reached: queued + running");

        let mut events = Events::with_capacity(4);
        let mut got = Vec::new();
        while got.len() < 2 {
            poll.poll(&mut events, Some(Duration::from_secs(10))).unwrap();
            while let Ok(r) = rx.try_recv() {
                pool.budget.release();
                got.push(r);
            }
        }
        got.sort_by_key(|r| r.ticket.key);
        assert_eq!((got[0].label, got[0].done), ("ok", Some(42)));
        assert_eq!(got[0].ticket.generation, 9);
        assert_eq!((got[1].label, got[1].done), ("boom", None), "a panicking job comes back empty");
        assert_eq!(pool.budget.in_flight(), 0);
    }

    #[test]
    fn budget_bounds_in_flight_jobs() {
        let b = JobBudget::new(2);
        assert!(b.try_acquire());
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
        b.release();
        assert!(b.try_acquire());
        b.release();
        b.release();
        b.release(); // never below zero
        assert_eq!(b.in_flight(), 0);
    }
}
