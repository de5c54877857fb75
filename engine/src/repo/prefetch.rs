//! Reading ahead of a backup's workers, so the disk works while they chunk, hash, compress and
//! encrypt.
//!
//! Two ways:
//! - [`Prefetcher`]: the regular files of every folder listing are handed to one thread that
//!   opens each, checks it is not excluded, and asks the kernel to start reading its head
//!   (`posix_fadvise(WILLNEED)`, which returns at once). It stays
//!   at most [`WINDOW_BYTES`] and [`WINDOW_FILES`] ahead of the workers: each file read ahead
//!   counts until a worker is done with it, and a file a worker is done with before the thread
//!   gets to it is skipped. At most [`QUEUE_FILES`] files wait for the thread; past that a
//!   listing's files are not read ahead. And each worker, as it starts a file, has the next
//!   [`AHEAD_FILES`] of its listing read ahead if they are not yet ([`Prefetcher::ahead`]): the
//!   workers take a listing in pieces, and go down into folders in the middle of it, so the
//!   thread's order (listing after listing) is often not theirs.
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

/// How much of one file is read ahead: its head. A worker reading a larger file asks for the rest
/// itself as it goes ([`ReadAhead`]), and a whole large file counted here would fill the window
/// for as long as one worker takes to chunk it.
pub const FILE_HEAD: u64 = 4 << 20;

/// How many files of its listing, and bytes, a worker has read ahead of the one it starts.
pub const AHEAD_FILES: usize = 32;
pub const AHEAD_BYTES: u64 = 8 << 20;

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
    wanted: Wanted<T>,
    thread: Option<JoinHandle<()>>,
}

/// Whether a file (path, extra) is read at all.
type Wanted<T> = Arc<dyn Fn(&Path, &T) -> bool + Send + Sync>;

impl<T: Send + 'static> Prefetcher<T> {
    /// Starts the thread; `wanted` says whether a file (path, extra) is read at all.
    pub fn start(wanted: impl Fn(&Path, &T) -> bool + Send + Sync + 'static) -> Prefetcher<T> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_FILES);
        let shared = Arc::new(Shared::default());
        let wanted: Wanted<T> = Arc::new(wanted);
        let (sh, w) = (shared.clone(), wanted.clone());
        let thread = std::thread::Builder::new().name("clawback-prefetch".into()).spawn(move || run(rx, &sh, &*w)).ok();
        Prefetcher { tx: Some(tx), shared, wanted, thread }
    }

    /// A worker starts entry `idx` of a listing of `len`: of the next [`AHEAD_FILES`] entries,
    /// those that are files to read ahead (`path_of` gives their paths, `None` for the others)
    /// and are not read ahead yet are asked for now, by this worker, whatever the window, until
    /// [`AHEAD_BYTES`] are asked for ahead of it.
    pub fn ahead(&self, slots: &Slots, idx: usize, len: usize, extra: &T, path_of: impl Fn(usize) -> Option<PathBuf>) {
        let mut bytes = 0;
        for j in idx + 1..(idx + 1 + AHEAD_FILES).min(len).min(slots.0.len()) {
            if bytes >= AHEAD_BYTES {
                return;
            }
            match slots.0[j].load(Relaxed) {
                DONE => continue,
                0 => {}
                v => {
                    bytes += v - 1;
                    continue;
                }
            }
            let Some(p) = path_of(j) else { continue };
            if !(self.wanted)(&p, extra) {
                continue;
            }
            // Not a regular file, empty or unreadable: counted as read ahead with no bytes, so it
            // is not tried again.
            let n = advise_file(&p).unwrap_or(0);
            issue(&self.shared, &slots.0[j], n);
            bytes += n;
        }
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

fn run<T>(rx: Receiver<Job<T>>, sh: &Shared, wanted: &(dyn Fn(&Path, &T) -> bool + Send + Sync)) {
    for job in rx {
        let slot = &job.slots.0[job.idx];
        // (A file a worker is done with, or had read ahead, leaves the queue without waiting for
        // room in the window.)
        if slot.load(Relaxed) != 0 {
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
        if slot.load(Relaxed) != 0 || !wanted(&job.path, &job.extra) {
            continue;
        }
        let Some(len) = advise_file(&job.path) else { continue };
        issue(sh, slot, len);
    }
}

/// Counts `len` bytes of one file as read ahead until a worker is done with it, unless a worker
/// is done with it already or had it read ahead meanwhile.
fn issue(sh: &Shared, slot: &AtomicU64, len: u64) {
    sh.issued_bytes.fetch_add(len, Relaxed);
    sh.issued_files.fetch_add(1, Relaxed);
    if slot.compare_exchange(0, len + 1, Relaxed, Relaxed).is_err() {
        sh.consume(len);
    }
}

/// Opens a regular file and asks for its first [`FILE_HEAD`] bytes; `None` when it is not read (not a
/// regular file, empty or unreadable). Returns the bytes asked for.
fn advise_file(path: &Path) -> Option<u64> {
    // (Non-blocking: a fifo in the listing must not hold the thread.)
    let f = open_to_read(path, libc::O_NONBLOCK).ok()?;
    let md = f.metadata().ok()?;
    if !md.is_file() || md.len() == 0 {
        return None;
    }
    let len = md.len().min(FILE_HEAD);
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
    fn a_worker_reads_ahead_the_next_files_of_its_listing_within_its_bounds() {
        let d = tempfile::tempdir().unwrap();
        // 0..40: 100-byte files, but 5 is excluded, 6 is not a file to read ahead (a folder or
        // one the parent has), 7 is empty; 41..: 3 MiB files.
        let n = 50;
        let mut paths = Vec::new();
        for i in 0..n {
            let p = d.path().join(format!("f{i}"));
            let len = match i {
                7 => 0,
                _ if i > 40 => 3 << 20,
                _ => 100,
            };
            std::fs::write(&p, vec![1u8; len]).unwrap();
            paths.push(p);
        }
        // The thread is held by its filter, so only the worker reads ahead here.
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(0);
        let pf = Prefetcher::start(move |p: &Path, _: &()| {
            if !p.ends_with("hold") {
                return !p.ends_with("f5");
            }
            let _ = go_rx.recv();
            false
        });
        pf.want(&Slots::new(1), 0, d.path().join("hold"), ());
        let slots = Slots::new(n);
        let path_of = |j: usize| (j != 6).then(|| paths[j].clone());
        // Entry 1 a worker is done with already.
        pf.done(&slots, 1);
        pf.ahead(&slots, 0, n, &(), path_of);
        let state = |j: usize| slots.0[j].load(Relaxed);
        assert_eq!(state(0), 0, "the entry the worker starts is its own to read");
        assert_eq!(state(1), DONE);
        assert_eq!((state(5), state(6)), (0, 0), "excluded, and not a file to read ahead");
        assert_eq!(state(7), 1, "an empty file counts as read ahead with no bytes");
        for j in (2..=4).chain(8..=AHEAD_FILES) {
            assert_eq!(state(j), 101, "entry {j}");
        }
        assert_eq!(state(AHEAD_FILES + 1), 0, "at most AHEAD_FILES ahead");
        // Further on, the 3 MiB files: asked for until AHEAD_BYTES are ahead (8 MiB: three).
        pf.ahead(&slots, 39, n, &(), path_of);
        let big: Vec<u64> = (41..n).map(state).collect();
        assert_eq!(big.iter().filter(|&&v| v == (3 << 20) + 1).count(), 3, "{big:?}");
        assert!(big[3..].iter().all(|&v| v == 0), "{big:?}");
        // Each file read ahead counts once, and is let go when a worker is done with it.
        let asked = pf.issued();
        pf.ahead(&slots, 0, n, &(), path_of);
        assert_eq!(pf.issued(), asked, "nothing asked twice");
        for j in 0..n {
            pf.done(&slots, j);
        }
        assert!(!pf.shared.full());
        assert_eq!(pf.shared.consumed_bytes.load(Relaxed), asked.1);
        drop(go_tx);
        drop(pf);
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
