//! Progress reporting from long operations to whoever displays it (the CLI's progress bars). The
//! engine only counts; it never prints. An operation in steps names each step (`set_phase`), and
//! one that uploads counts the bytes it handed to the backend and the bytes stored so far.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared between a running operation and its display.
#[derive(Default, Debug)]
pub struct Progress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    /// Set once the total is known (the walk finished).
    pub total_known: AtomicBool,
    /// Set by the caller to stop the operation early (Ctrl-C): it winds down, keeps what it
    /// finished, and fails with `Error::Interrupted`.
    pub stop: AtomicBool,
    /// Bytes written to the repository, set when the writing ends (also when stopped).
    pub bytes_stored: AtomicU64,
    /// Uploads of the operation (shared with the uploader threads, hence the `Arc`).
    pub upload: Arc<Transfer>,
    /// The step running now ("index", "trees", "read data"...) and what its items are ("packs");
    /// empty for one-step operations, whose items are files.
    phase: Mutex<(&'static str, &'static str)>,
}

/// Bytes handed to the backend to store, and bytes it has confirmed stored.
#[derive(Default, Debug)]
pub struct Transfer {
    pub queued: AtomicU64,
    pub done: AtomicU64,
}

impl Transfer {
    pub fn queue(&self, bytes: u64) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn stored(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Progress {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    pub fn add_done(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Starts step `name` with its own counters: `files` items (`unit`: "packs", "trees"...) and
    /// `bytes` bytes to go, or, with `None`, a total not known in advance.
    pub fn set_phase(&self, name: &'static str, unit: &'static str, total: Option<(u64, u64)>) {
        *self.phase.lock() = (name, unit);
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        let (files, bytes) = total.unwrap_or((0, 0));
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.total_known.store(total.is_some(), Ordering::Relaxed);
    }

    /// The step running now; empty when the operation has one.
    pub fn phase(&self) -> &'static str {
        self.phase.lock().0
    }

    /// What the current step counts in `files_done`: "files" unless the step says otherwise.
    pub fn unit(&self) -> &'static str {
        match self.phase.lock().1 {
            "" => "files",
            u => u,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_start_from_zero() {
        let p = Progress::default();
        p.add_total(3, 300);
        p.add_done(2, 200);
        p.set_phase("read data", "packs", Some((0, 1000)));
        assert_eq!(p.unit(), "packs");
        assert_eq!(p.phase(), "read data");
        assert_eq!(p.bytes_done.load(Ordering::Relaxed), 0);
        assert_eq!(p.bytes_total.load(Ordering::Relaxed), 1000);
        assert!(p.total_known.load(Ordering::Relaxed));
        p.set_phase("trees", "trees", None);
        assert!(!p.total_known.load(Ordering::Relaxed));
    }
}
