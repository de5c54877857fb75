//! Progress reporting from long operations to whoever displays it (the CLI's progress bars). The
//! engine only counts; it never prints.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared between a running operation and its display.
#[derive(Default, Debug)]
pub struct Progress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    /// Set once the total is known (the walk finished).
    pub total_known: std::sync::atomic::AtomicBool,
    /// Set by the caller to stop the operation early (Ctrl-C): it winds down, keeps what it
    /// finished, and fails with `Error::Interrupted`.
    pub stop: std::sync::atomic::AtomicBool,
    /// Bytes written to the repository, set when the writing ends (also when stopped).
    pub bytes_stored: AtomicU64,
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
}
