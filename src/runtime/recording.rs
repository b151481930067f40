//! Session recording IO: one recorder thread for the process writes asciicast v2 files
//! (`proxy::recording` encodes them). Workers only hand it events through a bounded queue and
//! never wait: when the queue is full, or more than [`MAX_QUEUED_BYTES`] of output is waiting,
//! the event is dropped and counted (`sshfront_recording_dropped_total`). Files are created by
//! the thread too (mode 0600, the directory 0700 if missing), so a slow disk never stalls a
//! session.
//!
//! For the bridge and the local PTY sessions alike:
//! ```ignore
//! let mut rec = recording::start(dir, max_bytes, header);   // None if the queue is full
//! rec.output(bytes);  rec.resize(cols, rows);  rec.finish(); // or just drop it
//! ```

use crate::metrics::proxy::recording as stats;
use crate::proxy::recording::{Cast, Header, Step};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Events waiting for the recorder thread.
pub const QUEUE: usize = 4096;
/// Output bytes waiting for the recorder thread, over all sessions.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;
/// Recordings open at once; a session past it is not recorded (and counted as dropped).
pub const MAX_OPEN: usize = 4096;
/// How often the thread looks for handles dropped without their `Finish` getting through.
const SWEEP: Duration = Duration::from_secs(1);

enum Msg {
    Start { id: u64, path_dir: PathBuf, max_bytes: u64, header: Header, closed: Arc<AtomicBool> },
    Output { id: u64, at: Duration, data: Vec<u8>, after_gap: bool },
    Resize { id: u64, at: Duration, cols: u32, rows: u32 },
    Finish { id: u64, at: Duration },
}

struct Service {
    tx: Sender<Msg>,
    queued_bytes: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

fn service() -> Option<&'static Service> {
    static S: OnceLock<Option<Service>> = OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = bounded(QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let q = queued_bytes.clone();
        match std::thread::Builder::new()
            .name("sshfront-recorder".into())
            .spawn(move || Writer::default().run(rx, q))
        {
            Ok(_) => Some(Service { tx, queued_bytes, next_id: AtomicU64::new(1) }),
            Err(e) => {
                log::error!("cannot start the recorder thread: {e}; sessions are not recorded");
                None
            }
        }
    })
    .as_ref()
}

/// A session being recorded. Dropping it ends the recording.
#[derive(Debug)]
pub struct Recording {
    id: u64,
    started: Instant,
    closed: Arc<AtomicBool>,
    /// An event was dropped since the last one that got through.
    gap: bool,
    finished: bool,
}

/// Starts recording into a new file in `dir`, at most `max_bytes` long. None when the
/// recorder cannot take it now (queue full: counted as dropped).
pub fn start(dir: &Path, max_bytes: u64, mut header: Header) -> Option<Recording> {
    let s = service()?;
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    if header.timestamp == 0 {
        header.timestamp =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    }
    let closed = Arc::new(AtomicBool::new(false));
    let msg =
        Msg::Start { id, path_dir: dir.to_path_buf(), max_bytes, header, closed: closed.clone() };
    if s.tx.try_send(msg).is_err() {
        stats::count(&stats::DROPPED);
        return None;
    }
    Some(Recording { id, started: Instant::now(), closed, gap: false, finished: false })
}

impl Recording {
    /// Terminal output (copied into the queue, or dropped if it is full).
    pub fn output(&mut self, data: &[u8]) {
        let Some(s) = service() else { return };
        if data.is_empty() {
            return;
        }
        let n = data.len();
        if s.queued_bytes.fetch_add(n, Ordering::Relaxed) + n > MAX_QUEUED_BYTES {
            s.queued_bytes.fetch_sub(n, Ordering::Relaxed);
            self.dropped();
            return;
        }
        let msg = Msg::Output {
            id: self.id,
            at: self.started.elapsed(),
            data: data.to_vec(),
            after_gap: self.gap,
        };
        if s.tx.try_send(msg).is_err() {
            s.queued_bytes.fetch_sub(n, Ordering::Relaxed);
            self.dropped();
        } else {
            self.gap = false;
        }
    }

    /// window-change.
    pub fn resize(&mut self, cols: u32, rows: u32) {
        let Some(s) = service() else { return };
        let msg = Msg::Resize { id: self.id, at: self.started.elapsed(), cols, rows };
        if s.tx.try_send(msg).is_err() {
            self.dropped();
        }
    }

    /// The session ended (dropping the handle does the same).
    pub fn finish(mut self) {
        self.end();
    }

    fn dropped(&mut self) {
        self.gap = true;
        stats::count(&stats::DROPPED);
    }

    fn end(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        // If Finish cannot be queued, the thread closes the file once it is idle and sees
        // the flag (every earlier event has been written by then).
        self.closed.store(true, Ordering::Release);
        if let Some(s) = service() {
            let _ = s.tx.try_send(Msg::Finish { id: self.id, at: self.started.elapsed() });
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.end();
    }
}

struct Open {
    file: BufWriter<File>,
    path: PathBuf,
    cast: Cast,
    closed: Arc<AtomicBool>,
    last: Duration,
    failed: bool,
}

#[derive(Default)]
struct Writer {
    open: HashMap<u64, Open>,
    buf: Vec<u8>,
    seq: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>, queued: Arc<AtomicUsize>) {
        let mut last_sweep = Instant::now();
        loop {
            match rx.recv_timeout(SWEEP) {
                Ok(m) => {
                    self.handle(m, &queued);
                    // Take what else is queued, then flush once.
                    while let Ok(m) = rx.try_recv() {
                        self.handle(m, &queued);
                    }
                    self.flush_all();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if rx.is_empty() && last_sweep.elapsed() >= SWEEP {
                last_sweep = Instant::now();
                let gone: Vec<u64> = self
                    .open
                    .iter()
                    .filter(|(_, o)| o.closed.load(Ordering::Acquire))
                    .map(|(id, _)| *id)
                    .collect();
                for id in gone {
                    let at = self.open.get(&id).map_or(Duration::ZERO, |o| o.last);
                    self.close(id, at);
                }
            }
        }
    }

    fn handle(&mut self, m: Msg, queued: &AtomicUsize) {
        match m {
            Msg::Start { id, path_dir, max_bytes, header, closed } => {
                if self.open.len() >= MAX_OPEN {
                    stats::count(&stats::DROPPED);
                    return;
                }
                match self.create(&path_dir, &header) {
                    Ok((file, path)) => {
                        let mut o = Open {
                            file: BufWriter::with_capacity(16 * 1024, file),
                            path,
                            cast: Cast::new(max_bytes),
                            closed,
                            last: Duration::ZERO,
                            failed: false,
                        };
                        self.buf.clear();
                        o.cast.header(&header, &mut self.buf);
                        write(&mut o, &self.buf);
                        stats::count(&stats::STARTED);
                        log::info!(event = "recording_started", user = header.user.as_str();
                            "recording session of {} to {}", header.user, o.path.display());
                        self.open.insert(id, o);
                    }
                    Err(e) => {
                        stats::count(&stats::ERRORS);
                        log::warn!(
                            "recording: cannot create a file in {}: {e}",
                            path_dir.display()
                        );
                    }
                }
            }
            Msg::Output { id, at, data, after_gap } => {
                queued.fetch_sub(data.len(), Ordering::Relaxed);
                let Some(o) = self.open.get_mut(&id) else { return };
                if after_gap {
                    o.cast.gap();
                }
                self.buf.clear();
                o.last = at;
                let step = o.cast.output(at, &data, &mut self.buf);
                write(o, &self.buf);
                if step == Step::Truncated {
                    stats::count(&stats::TRUNCATED);
                    log::warn!("recording {} reached its size limit; stopped", o.path.display());
                }
            }
            Msg::Resize { id, at, cols, rows } => {
                let Some(o) = self.open.get_mut(&id) else { return };
                self.buf.clear();
                o.last = at;
                if o.cast.resize(at, cols, rows, &mut self.buf) == Step::Truncated {
                    stats::count(&stats::TRUNCATED);
                }
                write(o, &self.buf);
            }
            Msg::Finish { id, at } => self.close(id, at),
        }
    }

    fn close(&mut self, id: u64, at: Duration) {
        let Some(mut o) = self.open.remove(&id) else { return };
        self.buf.clear();
        o.cast.finish(at, &mut self.buf);
        write(&mut o, &self.buf);
        if o.file.flush().is_err() && !o.failed {
            stats::count(&stats::ERRORS);
        }
    }

    fn flush_all(&mut self) {
        for o in self.open.values_mut() {
            if o.file.flush().is_err() && !o.failed {
                o.failed = true;
                stats::count(&stats::ERRORS);
                log::warn!("recording: cannot write {}", o.path.display());
            }
        }
    }

    /// `DIR/<unix time>-<user>-<pid>-<n>.cast`, new (never overwrites), mode 0600.
    fn create(&mut self, dir: &Path, h: &Header) -> std::io::Result<(File, PathBuf)> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if !dir.is_dir() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let user: String = h
            .user
            .chars()
            .take(32)
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        self.seq += 1;
        let name = format!("{}-{user}-{}-{}.cast", h.timestamp, std::process::id(), self.seq);
        let path = dir.join(name);
        let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        Ok((f, path))
    }
}

fn write(o: &mut Open, bytes: &[u8]) {
    if o.failed || bytes.is_empty() {
        return;
    }
    if let Err(e) = o.file.write_all(bytes) {
        o.failed = true;
        stats::count(&stats::ERRORS);
        log::warn!("recording: cannot write {}: {e}", o.path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_to_a_file_without_blocking() {
        let dir = std::env::temp_dir().join(format!("sshfront-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let h = Header { width: 80, height: 24, user: "bob/../x".into(), ..Default::default() };
        let mut r = start(&dir, 1 << 20, h).unwrap();
        r.output("héllo ".as_bytes());
        r.output(&"wörld".as_bytes()[..2]);
        r.output(&"wörld".as_bytes()[2..]);
        r.resize(100, 40);
        r.finish();
        let mut text = String::new();
        for _ in 0..200 {
            let files: Vec<_> = std::fs::read_dir(&dir)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            if let Some(f) = files.first() {
                assert!(f.file_name().unwrap().to_str().unwrap().contains("-bob_.._x-"));
                text = std::fs::read_to_string(f).unwrap();
                if text.lines().count() == 5 {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("{\"version\":2,\"width\":80,\"height\":24,"), "{text}");
        assert!(lines[1].ends_with(", \"o\", \"héllo \"]"), "{text}");
        assert!(lines[2].ends_with(", \"o\", \"w\"]"), "{text}");
        assert!(lines[3].ends_with(", \"o\", \"örld\"]"), "{text}");
        assert!(lines[4].ends_with(", \"r\", \"100x40\"]"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
