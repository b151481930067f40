//! Gives freed heap memory back to the operating system now and then.
//!
//! Why: glibc's malloc returns memory to the OS only from the top of the main heap. Freed
//! chunks inside it, and in the per-thread arenas that workers and crypto threads allocate in,
//! stay resident. After load peaks (a wave of connections, bulk transfers) RSS therefore climbs
//! in steps and never comes back: a 9-minute soak sat at 141 MiB RSS, of which `malloc_trim`
//! released 95 MiB at once. This thread calls `malloc_trim(0)` at an interval
//! (`--heap-trim-interval`), off the workers, so a front end's RSS follows its load.
//! `malloc_trim` takes each arena's lock briefly; once per interval that is noise.

use crossbeam_channel::{bounded, Sender};
use std::time::Duration;

/// The trimming thread; dropping the handle stops it.
pub struct HeapTrim {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeapTrim {
    /// Starts trimming every `interval`; `None` where the allocator has no trim (not glibc).
    pub fn start(interval: Duration) -> std::io::Result<Option<HeapTrim>> {
        if !supported() {
            return Ok(None);
        }
        let (tx, rx) = bounded::<()>(1);
        let thread =
            std::thread::Builder::new().name("sshfront-heap-trim".into()).spawn(move || {
                // Stop on a message or when the handle (the sender) is dropped.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(interval)
                {
                    trim();
                }
            })?;
        Ok(Some(HeapTrim { stop: Some(tx), thread: Some(thread) }))
    }
}

impl Drop for HeapTrim {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn supported() -> bool {
    cfg!(all(target_os = "linux", target_env = "gnu"))
}

/// One pass over every arena; returns whether memory was released.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions; it locks each arena itself.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only where `malloc_trim` exists (glibc), which is where CI runs.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_memory_leaves_the_process() {
        fn rss_kib() -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        }
        // Many mid-sized blocks (below the mmap threshold, so they live in the heap), touched,
        // then every other one freed and the rest kept: the holes cannot be trimmed from the
        // top, only by malloc_trim.
        let mut blocks: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8; 64 * 1024]).collect();
        let mut kept = Vec::new();
        for (i, b) in blocks.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(b);
            }
        }
        let before = rss_kib();
        trim();
        let after = rss_kib();
        assert!(kept.iter().all(|b| b.len() == 64 * 1024));
        // 1000 freed 64 KiB blocks = 62.5 MiB; at least half of it must be gone.
        assert!(before.saturating_sub(after) > 32 * 1024, "RSS {before} KiB -> {after} KiB");
    }

    #[test]
    fn the_thread_stops_when_the_handle_drops() {
        let t = HeapTrim::start(Duration::from_millis(5)).expect("spawn");
        std::thread::sleep(Duration::from_millis(20));
        drop(t);
    }
}
