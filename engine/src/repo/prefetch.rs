//! Reading ahead of a backup's workers, so the disk works while they chunk, hash, compress and
//! encrypt.
//!
//! Two ways:
//! - [`Prefetcher`]: the regular files of every folder listing are handed to one thread that
//!   opens each, checks it is not excluded, and asks the kernel to start reading it
//!   (`posix_fadvise(WILLNEED)`, which returns at once). It stays
//!   at most [`WINDOW_BYTES`] and [`WINDOW_FILES`] ahead of the workers: each file read ahead
//!   counts until a worker is done with it, and a file a worker is done with before the thread
//!   gets to it is skipped. At most [`QUEUE_FILES`] files wait for the thread; past that a
//!   listing's files are not read ahead.
//! - [`ReadAhead`]: a reader over one large file that asks for the next batches while the
//!   current one is processed.
//!
//! Both only advise the kernel: what a backup reads and stores does not depend on them.

use crossbeam_channel::{Receiver, Sender};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How many bytes, and files, may be read ahead of the workers.
pub const WINDOW_BYTES: u64 = 32 << 20;
pub const WINDOW_FILES: u64 = 1024;

/// How many files may wait for the read-ahead thread. Past it a listing's files are not read
/// ahead (the workers read them all the same): an unbounded queue held 14,000 paths, 2.8 MiB of
/// a first backup's peak, behind a full window.
const QUEUE_FILES: usize = 4096;

/// A slot taken by a worker: done with the entry.
const DONE: u64 = u64::MAX;

/// Where each entry of one folder listing stands: not read ahead (0), read ahead (its bytes + 1),
/// or done with by a worker ([`DONE`]).
pub struct Slots(Box<[AtomicU64]>);

impl Slots {
    pub fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots((0..n).map(|_| AtomicU64::new(0)).collect()))
    }
}

struct Job<T> {
    slots: Arc<Slots>,
    idx: usize,
    path: PathBuf,
    extra: T,
}

#[derive(Default)]
struct Shared {
    issued_bytes: AtomicU64,
    issued_files: AtomicU64,
    consumed_bytes: AtomicU64,
    consumed_files: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn consume(&self, bytes: u64) {
        self.consumed_bytes.fetch_add(bytes, Relaxed);
        self.consumed_files.fetch_add(1, Relaxed);
    }

    fn full(&self) -> bool {
        let b = self.issued_bytes.load(Relaxed).saturating_sub(self.consumed_bytes.load(Relaxed));
        let f = self.issued_files.load(Relaxed).saturating_sub(self.consumed_files.load(Relaxed));
        b >= WINDOW_BYTES || f >= WINDOW_FILES
    }
}

/// The read-ahead thread. `T` travels with each file to the filter (a backup's ignore rules in
/// force for its folder). Dropping it stops the thread.
pub struct Prefetcher<T: Send + 'static> {
    tx: Option<Sender<Job<T>>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetcher<T> {
    /// Starts the thread; `wanted` says whether a file (path, extra) is read at all.
    pub fn start(wanted: impl Fn(&Path, &T) -> bool + Send + 'static) -> Prefetcher<T> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_FILES);
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let thread =
            std::thread::Builder::new().name("clawback-prefetch".into()).spawn(move || run(rx, &sh, wanted)).ok();
        Prefetcher { tx: Some(tx), shared, thread }
    }

    /// Queues entry `idx` of a listing; never waits (a full queue leaves it out).
    pub fn want(&self, slots: &Arc<Slots>, idx: usize, path: PathBuf, extra: T) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Job { slots: slots.clone(), idx, path, extra });
        }
    }

    /// A worker is done with entry `idx` (read, reused, excluded or skipped).
    pub fn done(&self, slots: &Slots, idx: usize) {
        let v = slots.0[idx].swap(DONE, Relaxed);
        if v != 0 && v != DONE {
            self.shared.consume(v - 1);
        }
    }

    /// Files read ahead so far, and how many bytes.
    pub fn issued(&self) -> (u64, u64) {
        (self.shared.issued_files.load(Relaxed), self.shared.issued_bytes.load(Relaxed))
    }
}

impl<T: Send + 'static> Drop for Prefetcher<T> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run<T>(rx: Receiver<Job<T>>, sh: &Shared, wanted: impl Fn(&Path, &T) -> bool) {
    for job in rx {
        let slot = &job.slots.0[job.idx];
        // (A file a worker is done with leaves the queue without waiting for room in the window.)
        if slot.load(Relaxed) == DONE {
            continue;
        }
        while sh.full() {
            if sh.stop.load(Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        if sh.stop.load(Relaxed) {
            return;
        }
        if slot.load(Relaxed) == DONE || !wanted(&job.path, &job.extra) {
            continue;
        }
        let Some(len) = advise_file(&job.path) else { continue };
        sh.issued_bytes.fetch_add(len, Relaxed);
        sh.issued_files.fetch_add(1, Relaxed);
        if slot.compare_exchange(0, len + 1, Relaxed, Relaxed).is_err() {
            // A worker finished with it meanwhile.
            sh.consume(len);
        }
    }
}

/// Opens a regular file and asks for its first `WINDOW_BYTES`; `None` when it is not read (not a
/// regular file, empty or unreadable). Returns the bytes asked for.
fn advise_file(path: &Path) -> Option<u64> {
    // (Non-blocking: a fifo in the listing must not hold the thread.)
    let f = open_to_read(path, libc::O_NONBLOCK).ok()?;
    let md = f.metadata().ok()?;
    if !md.is_file() || md.len() == 0 {
        return None;
    }
    let len = md.len().min(WINDOW_BYTES);
    advise(&f, 0, len);
    Some(len)
}

/// Opens a file to read it for a backup: never through a symlink, and without updating its access
/// time where the file's owner allows that (`O_NOATIME`), with `flags` added.
pub fn open_to_read(path: &Path, flags: i32) -> std::io::Result<File> {
    let open = |f: i32| std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | flags | f).open(path);
    open(libc::O_NOATIME).or_else(|_| open(0))
}

fn advise(f: &File, off: u64, len: u64) {
    // SAFETY: a plain syscall on an open descriptor; it only advises the kernel.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), off as libc::off_t, len as libc::off_t, libc::POSIX_FADV_WILLNEED);
    }
}

/// Reads a file in order, asking the kernel for the next `ahead` bytes beyond what was read, so
/// the disk fetches the next batch while the current one is processed.
pub struct ReadAhead<'a> {
    f: &'a File,
    pos: u64,
    advised: u64,
    ahead: u64,
}

impl<'a> ReadAhead<'a> {
    /// Reads `f` from its current offset, which must be 0; `ahead` 0 advises nothing.
    pub fn new(f: &'a File, ahead: u64) -> Self {
        ReadAhead { f, pos: 0, advised: 0, ahead }
    }
}

impl Read for ReadAhead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ahead > 0 && self.pos + self.ahead / 2 >= self.advised {
            let from = self.advised.max(self.pos);
            advise(self.f, from, self.pos + self.ahead - from);
            self.advised = self.pos + self.ahead;
        }
        let n = (&mut &*self.f).read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn reads_ahead_what_is_wanted_and_stays_within_the_window() {
        let d = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..(WINDOW_FILES as usize + 50) {
            let p = d.path().join(format!("f{i}"));
            std::fs::write(&p, vec![i as u8; 100]).unwrap();
            paths.push(p);
        }
        std::fs::write(&paths[1], b"").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let pf = Prefetcher::start(move |p: &Path, keep: &bool| {
            s2.lock().unwrap().push(p.to_path_buf());
            *keep
        });
        let slots = Slots::new(paths.len());
        for (i, p) in paths.iter().enumerate() {
            // Entry 0 is excluded, entry 1 empty, entry 2 a worker is done with first.
            if i == 2 {
                pf.done(&slots, 2);
            }
            pf.want(&slots, i, p.clone(), i != 0);
        }
        // The window fills: 1024 files read ahead, then the thread waits for the workers.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while pf.issued().0 < WINDOW_FILES && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(pf.issued(), (WINDOW_FILES, WINDOW_FILES * 100));
        // Entries 0 (excluded), 1 (empty) and 2 (done) were not read ahead.
        for i in 0..3 {
            assert_eq!(slots.0[i].load(Relaxed), if i == 2 { DONE } else { 0 }, "entry {i}");
        }
        assert_eq!(slots.0[3].load(Relaxed), 101);
        // Workers finishing the entries read ahead let it go on to the end.
        for i in 0..WINDOW_FILES as usize + 3 {
            pf.done(&slots, i);
        }
        while pf.issued().0 < paths.len() as u64 - 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pf.issued().0, paths.len() as u64 - 3);
        // Entry 2 was done before the thread got to it: never even offered to the filter.
        assert!(!seen.lock().unwrap().contains(&paths[2]));
        drop(pf);
    }

    #[test]
    fn wanting_more_than_the_queue_holds_never_blocks_a_worker() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        // A filter that holds the thread until released: the queue fills and stays full.
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(0);
        let pf = Prefetcher::start(move |_: &Path, _: &()| {
            let _ = go_rx.recv();
            true
        });
        let n = 3 * QUEUE_FILES;
        let slots = Slots::new(n);
        let started = std::time::Instant::now();
        for i in 0..n {
            pf.want(&slots, i, p.clone(), ());
        }
        assert!(started.elapsed() < Duration::from_secs(5), "want() waited for the read-ahead thread");
        let queued = pf.tx.as_ref().map_or(0, |t| t.len());
        assert!(queued <= QUEUE_FILES, "{queued} files queued: the queue is bounded");
        assert!(queued >= QUEUE_FILES - 1, "{queued} files queued: the queue filled");
        // The files past the queue are simply not read ahead; workers finish them all the same.
        for i in 0..n {
            pf.done(&slots, i);
        }
        drop(go_tx);
        drop(pf);
        assert!(slots.0.iter().all(|s| s.load(Relaxed) == DONE));
    }

    #[test]
    fn read_ahead_reads_the_file_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let mut out = Vec::new();
        ReadAhead::new(&f, 1 << 20).read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }
}
