//! Failure points for crash-consistency tests, and nothing else. Code that writes to a repository
//! marks the moments a crash would matter with `failpoint::hit("backup:after-pack")`; when the
//! environment variable `CLAWBACK_FAILPOINT` names that point, the process kills itself with
//! SIGKILL there, exactly as a power cut or the OOM killer would, so tests can prove that every
//! such moment leaves a repository that `check` accepts and the next run repairs.
//!
//! `CLAWBACK_FAILPOINT=NAME` fires at the first hit of NAME; `NAME@N` at the N-th. Unset (always,
//! outside tests) a hit costs one relaxed load after the first call. The names in use are listed in
//! README.md ("Trust"). This is the one place the engine ends the process, on purpose, and only
//! when asked by that variable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const ENV: &str = "CLAWBACK_FAILPOINT";

struct Armed {
    name: String,
    nth: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static A: OnceLock<Option<Armed>> = OnceLock::new();
    A.get_or_init(|| {
        let v = std::env::var(ENV).ok().filter(|v| !v.trim().is_empty())?;
        let (name, nth) = match v.trim().rsplit_once('@') {
            Some((n, k)) => (n.to_string(), k.parse::<u64>().ok().filter(|&k| k > 0).unwrap_or(1)),
            None => (v.trim().to_string(), 1),
        };
        Some(Armed { name, nth, hits: AtomicU64::new(0) })
    })
    .as_ref()
}

/// Kills the process (SIGKILL) if `CLAWBACK_FAILPOINT` names this point and this is the hit it
/// asks for; otherwise does nothing.
pub fn hit(name: &str) {
    let Some(a) = armed() else { return };
    if a.name != name {
        return;
    }
    if a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.nth {
        // SAFETY: kill and getpid have no preconditions; SIGKILL cannot be caught, so nothing
        // (no destructor, no buffered write, no lock release) runs after this point.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL to self is delivered before kill returns; abort is the fallback.
        std::process::abort();
    }
}
