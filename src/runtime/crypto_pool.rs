//! The crypto pool: key-exchange math, host-key signatures, user signatures and password
//! hashing on a rayon pool, off the workers; authorized_keys reads on a reader thread.
//!
//! Isolation: every job has a [`JobClass`] with its own bound and its own queue. Pool threads
//! take the next job from the classes in turn (round robin), so a flood of one kind waits behind
//! itself, not in front of the others, and password hashing runs on at most
//! `--password-concurrency` threads at once, so key exchanges and publickey logins keep moving
//! during a password spray. File reads never run on a pool thread.
//!
//! Bounded: a class's budget counts its jobs submitted and not yet *received back* by their
//! worker (queued, running, or waiting in a result channel). Because a result is only counted
//! free once its worker has taken it out of its channel, a result channel sized to the sum of
//! the bounds can never be full, so a pool thread never blocks on a send.
//!
//! A job that panics (a bug, never peer input: the core validates before emitting jobs) comes
//! back as a result without `done`, and the worker closes that connection; rayon's default
//! would abort the whole process.

use crate::server::{JobClass, ServerJob, ServerJobDone};
use crossbeam_channel::Sender;
use mio::Waker;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who asked: the result goes back to this connection if it still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTicket {
    pub worker: usize,
    pub key: usize,
    pub generation: u32,
    pub submitted: Instant,
    /// What the job holds, charged to the worker's memory budget until its result is back.
    pub bytes: usize,
}

/// A finished job on its way back to the worker.
pub struct Completed<T> {
    pub ticket: JobTicket,
    pub label: &'static str,
    /// Whose budget to give the slot back to.
    pub class: JobClass,
    /// `None` if the job panicked.
    pub done: Option<T>,
    pub queue_wait: Duration,
    pub compute: Duration,
}

/// A finished crypto job.
pub type JobResult = Completed<ServerJobDone>;

/// The counter of queued + running + undelivered jobs of one class, shared by all workers.
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

type Task = Box<dyn FnOnce() + Send>;

/// The pool classes' queues (Read has its own thread) and the password share.
struct Queues {
    queued: [VecDeque<Task>; 3],
    /// The class to look at first next time (round robin).
    next: usize,
    passwords_running: usize,
    password_limit: usize,
}

const POOL_CLASSES: [JobClass; 3] = [JobClass::Kex, JobClass::Verify, JobClass::Password];

impl Queues {
    /// The next job in round-robin order, skipping passwords at their thread share.
    fn pick(&mut self) -> Option<(JobClass, Task)> {
        for i in 0..POOL_CLASSES.len() {
            let c = (self.next + i) % POOL_CLASSES.len();
            let class = POOL_CLASSES[c];
            if class == JobClass::Password && self.passwords_running >= self.password_limit {
                continue;
            }
            if let Some(t) = self.queued[c].pop_front() {
                self.next = (c + 1) % POOL_CLASSES.len();
                if class == JobClass::Password {
                    self.passwords_running += 1;
                }
                return Some((class, t));
            }
        }
        None
    }
}

/// The pool, its per-class queues and bounds, and the reader thread.
pub struct CryptoPool {
    pool: rayon::ThreadPool,
    queues: Arc<Mutex<Queues>>,
    reader: Sender<Task>,
    /// The key-exchange (and host-key signing) class: what `--crypto-queue` bounds, what
    /// `/metrics` shows as the crypto queue and what admission control watches.
    pub budget: JobBudget,
    budgets: [JobBudget; 4],
}

impl CryptoPool {
    /// `threads` pool threads; each class may hold `bound` jobs; password hashing runs on at
    /// most `password_threads` threads at once.
    pub fn new(threads: usize, bound: usize, password_threads: usize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("sshfront-crypto-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let (reader, reads) = crossbeam_channel::bounded::<Task>(bound.max(1));
        std::thread::Builder::new().name("sshfront-reader".into()).spawn(move || {
            for task in reads {
                task();
            }
        })?;
        let budgets = JobClass::ALL.map(|_| JobBudget::new(bound));
        let queues = Queues {
            queued: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            next: 0,
            passwords_running: 0,
            password_limit: password_threads.clamp(1, threads.max(1)),
        };
        Ok(CryptoPool {
            pool,
            queues: Arc::new(Mutex::new(queues)),
            reader,
            budget: budgets[JobClass::Kex.index()].clone(),
            budgets,
        })
    }

    /// Capacity a worker's result channel needs: every class's bound.
    pub fn result_capacity(&self) -> usize {
        self.budgets.iter().map(JobBudget::bound).sum()
    }

    /// Gives a slot of `class` back (the worker received the result).
    pub fn release(&self, class: JobClass) {
        self.budgets[class.index()].release();
    }

    /// Each class's budget by name, for the metrics endpoint.
    pub fn class_budgets(&self) -> Vec<(&'static str, JobBudget)> {
        JobClass::ALL.iter().map(|c| (c.name(), self.budgets[c.index()].clone())).collect()
    }

    /// True when no pool job of any class is queued, running or undelivered (across all
    /// workers).
    pub fn is_idle(&self) -> bool {
        POOL_CLASSES.iter().all(|&c| self.budgets[c.index()].in_flight() == 0)
    }

    /// Runs a small job (key exchange, signature check: tens of µs) on the calling worker when
    /// the pool is idle: handing it over would cost a queue hand-off and two wake-ups (a pool
    /// thread, then the worker) and gain nothing, as no other job waits. Gives the job back
    /// when the pool is busy or the job is not small. The result is `None` if the job panicked.
    pub fn try_run_inline(
        &self,
        job: ServerJob,
    ) -> Result<(Option<ServerJobDone>, Duration), ServerJob> {
        // Upstream jobs never come here: the worker keeps them on the pool (their result goes
        // to the upstream core, which is out of its connection while they are submitted).
        if !matches!(job.class(), JobClass::Kex | JobClass::Verify) || !self.is_idle() {
            return Err(job);
        }
        let started = Instant::now();
        let done = catch_unwind(AssertUnwindSafe(|| super::auth_jobs::run(job))).ok();
        Ok((done, started.elapsed()))
    }

    /// Jobs of `class` queued, running or undelivered.
    pub fn in_flight(&self, class: JobClass) -> usize {
        self.budgets[class.index()].in_flight()
    }

    /// Submits `job` if its class has a free slot; gives it back otherwise (the worker queues
    /// or refuses). The result goes to `results` and the worker is woken with `waker`.
    pub fn try_submit(
        &self,
        job: ServerJob,
        label: &'static str,
        ticket: JobTicket,
        results: &Sender<JobResult>,
        waker: &Arc<Waker>,
    ) -> Result<(), ServerJob> {
        let class = job.class();
        if !self.budgets[class.index()].try_acquire() {
            return Err(job);
        }
        self.spawn_acquired(
            move || super::auth_jobs::run(job),
            label,
            class,
            ticket,
            results,
            waker,
        );
        Ok(())
    }

    /// Runs `work` for a slot of `class` already taken from its budget; the slot is given back
    /// by the receiving worker (or here, if the worker is gone).
    fn spawn_acquired<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        label: &'static str,
        class: JobClass,
        ticket: JobTicket,
        results: &Sender<Completed<T>>,
        waker: &Arc<Waker>,
    ) {
        let results = results.clone();
        let waker = waker.clone();
        let budget = self.budgets[class.index()].clone();
        let task: Task = Box::new(move || {
            let started = Instant::now();
            let done = catch_unwind(AssertUnwindSafe(work)).ok();
            let compute = started.elapsed();
            let result = Completed {
                ticket,
                label,
                class,
                done,
                queue_wait: started.saturating_duration_since(ticket.submitted),
                compute,
            };
            // The channel holds every bound's results, so this only fails if the worker is gone.
            if results.try_send(result).is_err() {
                budget.release();
            }
            let _ = waker.wake();
        });
        if class == JobClass::Read {
            // Bounded like the class budget, so this never waits.
            if let Err(e) = self.reader.try_send(task) {
                // The reader thread is gone (or the bound was exceeded): run it here rather than lose it.
                (e.into_inner())();
            }
            return;
        }
        let Some(c) = POOL_CLASSES.iter().position(|&p| p == class) else { return };
        if let Ok(mut q) = self.queues.lock() {
            q.queued[c].push_back(task);
        }
        let queues = self.queues.clone();
        self.pool.spawn(move || run_next(&queues));
    }
}

/// One pool turn: the next job in round-robin order. A password job that finishes starts a new
/// turn when passwords were left waiting for the share, so none is stranded.
fn run_next(queues: &Arc<Mutex<Queues>>) {
    let picked = queues.lock().ok().and_then(|mut q| q.pick());
    let Some((class, task)) = picked else { return };
    task();
    if class == JobClass::Password {
        let more = queues.lock().is_ok_and(|mut q| {
            q.passwords_running = q.passwords_running.saturating_sub(1);
            !q.queued[JobClass::Password.index()].is_empty()
        });
        if more {
            let queues = queues.clone();
            rayon::spawn(move || run_next(&queues));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};

    #[test]
    fn results_come_back_with_timings_and_wake_the_worker() {
        let pool = CryptoPool::new(1, 2, 1).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (tx, rx) = crossbeam_channel::bounded(pool.budget.bound());
        let ticket =
            |key| JobTicket { worker: 0, key, generation: 9, submitted: Instant::now(), bytes: 0 };
        assert!(pool.budget.try_acquire());
        pool.spawn_acquired(|| 42u32, "ok", JobClass::Kex, ticket(1), &tx, &waker);
        assert!(pool.budget.try_acquire());
        let boom = || -> u32 { panic!("job bug") };
        pool.spawn_acquired(boom, "boom", JobClass::Kex, ticket(2), &tx, &waker);
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
    fn classes_take_turns_and_passwords_keep_to_their_share() {
        let mut q = Queues {
            queued: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            next: 0,
            passwords_running: 0,
            password_limit: 1,
        };
        let noop = || -> Task { Box::new(|| {}) };
        for _ in 0..100 {
            q.queued[2].push_back(noop()); // a password spray
        }
        for _ in 0..3 {
            q.queued[0].push_back(noop()); // key exchanges behind it
        }
        q.queued[1].push_back(noop()); // one publickey signature
        let mut order = Vec::new();
        while let Some((class, _)) = q.pick() {
            order.push(class);
        }
        // One password at a time (none finished here): the rest are key exchanges and the
        // signature, in turn, though 100 passwords were queued first.
        use JobClass::*;
        assert_eq!(order, [Kex, Verify, Password, Kex, Kex]);
        assert_eq!(q.queued[2].len(), 99);
        q.passwords_running -= 1; // one password finished
        assert_eq!(q.pick().map(|p| p.0), Some(Password));
        assert!(q.pick().is_none(), "at the share again");
    }

    #[test]
    fn a_password_spray_does_not_hold_up_key_exchanges_on_the_pool() {
        let pool = CryptoPool::new(2, 64, 1).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (tx, rx) = crossbeam_channel::bounded(pool.result_capacity());
        let ticket =
            |key| JobTicket { worker: 0, key, generation: 1, submitted: Instant::now(), bytes: 0 };
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        // Passwords that block until the test lets them go: they could fill both threads.
        for key in 0..8 {
            assert!(pool.budgets[JobClass::Password.index()].try_acquire());
            let gate = gate_rx.clone();
            let work = move || {
                let _ = gate.recv_timeout(Duration::from_secs(20));
                0u32
            };
            pool.spawn_acquired(work, "pw", JobClass::Password, ticket(key), &tx, &waker);
        }
        assert!(pool.budget.try_acquire());
        pool.spawn_acquired(|| 7u32, "kex", JobClass::Kex, ticket(100), &tx, &waker);
        // The key exchange completes while every password still waits at the gate.
        let mut events = Events::with_capacity(4);
        let deadline = Instant::now() + Duration::from_secs(20);
        let kex = loop {
            if let Ok(r) = rx.try_recv() {
                break r;
            }
            assert!(Instant::now() < deadline, "key exchange starved by passwords");
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
        };
        assert_eq!((kex.class, kex.done), (JobClass::Kex, Some(7)));
        drop(gate_tx); // let the passwords finish: all eight come back
        let mut n = 0;
        while n < 8 && Instant::now() < deadline {
            if rx.try_recv().is_ok() {
                n += 1;
            } else {
                poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            }
        }
        assert_eq!(n, 8);
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
