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
}

impl Progress {
    pub fn add_done(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }
}
