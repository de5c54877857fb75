//! A decorator that retries transient failures: throttling (429, SlowDown), 5xx, timeouts,
//! dropped connections, cut-off downloads, and reads whose bytes do not match their
//! content-addressed name. Exponential backoff with jitter, bounded in attempts and in time.
//! Never retried: not found, already exists, permission and usage errors.
//!
//! Until the store has answered once, a connection failure (refused, unresolved, timed out) is
//! retried only briefly: a wrong endpoint should fail in seconds, while a server that restarts in
//! the middle of a backup should be ridden through.
//!
//! The time bound is the run's, not each request's: once the store has failed for the whole bound
//! without answering, every later request gets one attempt until one succeeds, so an outage costs a
//! restore of many files one bound, not one per file.

use super::{Backend, Kind, ObjectName};
use crate::format::id::ObjectId;
use parking_lot::Mutex;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Marks an error as worth retrying. Reads as the error it wraps, which stays reachable as its
/// source (so a backend's own error type, e.g. the S3 failure cause, survives the marking).
#[derive(Debug)]
pub struct Transient(pub Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Transient {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// A transient error of `kind` saying `msg`.
pub fn transient(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, Transient(msg.into().into()))
}

/// `e`, marked transient, as an error of `kind`.
pub fn transient_error(kind: io::ErrorKind, e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(kind, Transient(Box::new(e)))
}

/// Whether a retry may succeed where this attempt failed.
pub fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    if e.get_ref().is_some_and(|i| i.is::<Transient>()) {
        return true;
    }
    matches!(
        e.kind(),
        K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::Interrupted
            | K::WouldBlock
            | K::HostUnreachable
            | K::NetworkUnreachable
    )
}

/// Failures that say nothing answered: before first contact they mean a wrong endpoint or a
/// server that is down or hung, not a hiccup.
fn is_connect_failure(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::NotConnected | K::TimedOut
    )
}

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
    /// Attempts for a connection failure before the store has ever answered.
    pub first_contact_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No new attempt starts after this long.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            first_contact_attempts: 2,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The default policy, with `CLAWBACK_RETRY_SECONDS` (a positive whole number) as the time
    /// after which no new attempt starts: with `CLAWBACK_S3_TIMEOUT` per request, it bounds how
    /// long a stalled store can hold one operation.
    pub fn from_env() -> Self {
        Self::with_retry_seconds(std::env::var("CLAWBACK_RETRY_SECONDS").ok().as_deref())
    }

    fn with_retry_seconds(v: Option<&str>) -> Self {
        let mut p = RetryPolicy::default();
        if let Some(secs) = v.and_then(|v| v.trim().parse::<u64>().ok()).filter(|&s| s > 0) {
            p.max_elapsed = Duration::from_secs(secs);
        }
        p
    }

    /// The pause before attempt `n + 1` (n ≥ 1): exponential, capped, with half of it random so
    /// many clients throttled together do not come back together.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << (n - 1).min(16));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

pub struct Retry {
    inner: Arc<dyn Backend>,
    policy: RetryPolicy,
    contacted: AtomicBool,
    /// Since when the store has failed without answering: shared by every request of the run.
    failing_since: Mutex<Option<Instant>>,
}

impl Retry {
    pub fn new(inner: Arc<dyn Backend>, policy: RetryPolicy) -> Self {
        Retry { inner, policy, contacted: AtomicBool::new(false), failing_since: Mutex::new(None) }
    }

    fn run<T>(&self, mut op: impl FnMut(u32) -> io::Result<T>) -> io::Result<T> {
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            match op(attempt) {
                Ok(v) => {
                    self.contacted.store(true, Ordering::Relaxed);
                    *self.failing_since.lock() = None;
                    return Ok(v);
                }
                Err(e) => {
                    if !is_connect_failure(&e) {
                        // Any answer, even an error, shows the store is there.
                        self.contacted.store(true, Ordering::Relaxed);
                    }
                    if !is_transient(&e) {
                        // An answer (not found, denied): the store is up, whatever this request's fate.
                        *self.failing_since.lock() = None;
                        return Err(e);
                    }
                    // The outage's clock, started by the first request it failed.
                    let since = *self.failing_since.lock().get_or_insert(start);
                    let limit = if is_connect_failure(&e) && !self.contacted.load(Ordering::Relaxed) {
                        self.policy.first_contact_attempts
                    } else {
                        self.policy.max_attempts
                    };
                    let left = self.policy.max_elapsed.saturating_sub(since.elapsed());
                    if attempt >= limit || left.is_zero() {
                        return Err(e);
                    }
                    // The last pause ends at the bound, so the last attempt starts within it.
                    std::thread::sleep(self.policy.delay(attempt).min(left));
                    attempt += 1;
                }
            }
        }
    }
}

impl Retry {
    /// A write of `len` bytes found `name` taken (`e`, AlreadyExists). On a retry, an earlier
    /// attempt may have landed: the object is ours if it holds exactly these bytes (`want`), and
    /// the write succeeds. Otherwise a content-addressed object keeps `e` (the callers take an
    /// object of the same name as the same bytes) only when the store really serves it at this
    /// size: a store that refuses the write yet has nothing there, or something else, must not
    /// pass for one that holds it. Other kinds (config, locks) keep `e`: someone else's object.
    fn taken(
        &self,
        name: &ObjectName,
        attempt: u32,
        e: io::Error,
        len: u64,
        want: impl FnOnce() -> io::Result<Vec<u8>>,
    ) -> io::Result<()> {
        if attempt > 1 {
            let have = self.inner.read(name);
            if let (Ok(have), Ok(want)) = (&have, want()) {
                if *have == want {
                    return Ok(());
                }
            }
            if !content_addressed(name.kind()) {
                return Err(e);
            }
            return match have {
                Err(re) => Err(re),
                Ok(have) => Err(other_bytes(name, have.len() as u64, len)),
            };
        }
        if !content_addressed(name.kind()) {
            return Err(e);
        }
        match self.inner.size(name) {
            Ok(n) if n == len => Err(e),
            Ok(n) => Err(other_bytes(name, n, len)),
            Err(se) if se.kind() == io::ErrorKind::NotFound => Err(io::Error::other(format!(
                "write {name}: the store refused it as already there, yet has no such object; check the store's health"
            ))),
            Err(se) => Err(se),
        }
    }
}

/// The store holds `have` bytes under a content-addressed name this write gives `want` bytes.
fn other_bytes(name: &ObjectName, have: u64, want: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "write {name}: the store already holds other bytes under this content's name ({have} bytes, not \
             {want}); run `clawback check --read-data`"
        ),
    )
}

/// Kinds whose objects are named by the BLAKE3 of their bytes.
fn content_addressed(kind: Kind) -> bool {
    matches!(kind, Kind::Key | Kind::Pack | Kind::Index | Kind::Snapshot | Kind::Dict)
}

impl Backend for Retry {
    super::forward_to_inner!();

    fn create(&self) -> io::Result<()> {
        self.run(|_| self.inner.create())
    }

    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        // A content-addressed object that reads back wrong was damaged on the way (or is damaged
        // in the store): read it again a few times, then hand over what came so the caller
        // reports the damage itself.
        const REREADS: u32 = 3;
        let mut rereads = 0;
        loop {
            let data = self.run(|_| self.inner.read(name))?;
            if !content_addressed(name.kind())
                || name.as_str().len() != 64
                || ObjectId::of_bytes(&data).to_hex() == name.as_str()
                || rereads >= REREADS
            {
                return Ok(data);
            }
            rereads += 1;
            std::thread::sleep(self.policy.delay(rereads));
        }
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_range_into(name, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(&self, name: &ObjectName, offset: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        self.run(|_| {
            self.inner.read_range_into(name, offset, len, buf)?;
            if buf.len() as u64 != len {
                return Err(transient(
                    io::ErrorKind::UnexpectedEof,
                    format!("read {name}: short read, {} of {len} bytes", buf.len()),
                ));
            }
            Ok(())
        })
    }

    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        self.run(|attempt| match self.inner.write(name, data) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.taken(name, attempt, e, data.len() as u64, || Ok(data.to_vec()))
            }
            r => r,
        })
    }

    fn write_file(&self, name: &ObjectName, path: &std::path::Path) -> io::Result<()> {
        self.run(|attempt| match self.inner.write_file(name, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let len = std::fs::metadata(path)?.len();
                self.taken(name, attempt, e, len, || std::fs::read(path))
            }
            r => r,
        })
    }

    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        self.run(|_| self.inner.list(kind))
    }

    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        self.run(|_| self.inner.size(name))
    }

    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        self.run(|attempt| match self.inner.delete(name) {
            // Gone on a retry: the attempt that failed had deleted it.
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt > 1 => Ok(()),
            r => r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::format::id::{IndexId, PackId, SnapshotId};
    use parking_lot::Mutex;

    /// Fails the first `fails` calls of every operation with `err`, then passes through.
    struct Flaky {
        inner: LocalBackend,
        fails: Mutex<u32>,
        err: fn() -> io::Error,
        calls: Mutex<u32>,
    }

    impl Flaky {
        fn gate(&self) -> io::Result<()> {
            *self.calls.lock() += 1;
            let mut f = self.fails.lock();
            if *f > 0 {
                *f -= 1;
                return Err((self.err)());
            }
            Ok(())
        }
    }

    impl Backend for Flaky {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn create(&self) -> io::Result<()> {
            self.inner.create()
        }
        fn read(&self, n: &ObjectName) -> io::Result<Vec<u8>> {
            self.gate()?;
            self.inner.read(n)
        }
        fn read_range(&self, n: &ObjectName, o: u64, l: u64) -> io::Result<Vec<u8>> {
            self.gate()?;
            self.inner.read_range(n, o, l)
        }
        fn write(&self, n: &ObjectName, d: &[u8]) -> io::Result<()> {
            self.gate()?;
            self.inner.write(n, d)
        }
        fn list(&self, k: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
            self.gate()?;
            self.inner.list(k)
        }
        fn size(&self, n: &ObjectName) -> io::Result<u64> {
            self.inner.size(n)
        }
        fn delete(&self, n: &ObjectName) -> io::Result<()> {
            self.gate()?;
            self.inner.delete(n)
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            first_contact_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(10),
        }
    }

    fn setup(fails: u32, err: fn() -> io::Error) -> (tempfile::TempDir, Arc<Flaky>, Retry) {
        let d = tempfile::tempdir().unwrap();
        let inner = LocalBackend::new(d.path().join("r"));
        inner.create().unwrap();
        let f = Arc::new(Flaky { inner, fails: Mutex::new(fails), err, calls: Mutex::new(0) });
        let r = Retry::new(f.clone(), fast());
        (d, f, r)
    }

    #[test]
    fn retry_seconds_bound_the_time_spent_retrying() {
        assert_eq!(RetryPolicy::with_retry_seconds(Some("7")).max_elapsed, Duration::from_secs(7));
        let default = RetryPolicy::default().max_elapsed;
        for bad in [None, Some("0"), Some("soon"), Some("")] {
            assert_eq!(RetryPolicy::with_retry_seconds(bad).max_elapsed, default, "{bad:?}");
        }
        // No attempt starts once the bound has passed, however many attempts are left.
        let (_d, flaky, _) = setup(u32::MAX, || io::Error::from(io::ErrorKind::ConnectionReset));
        let policy = RetryPolicy { max_elapsed: Duration::from_millis(30), ..fast() };
        let r = Retry::new(flaky.clone(), RetryPolicy { max_attempts: 1000, ..policy });
        r.contacted.store(true, Ordering::Relaxed);
        let t = Instant::now();
        assert!(r.read(&ObjectName::of(&SnapshotId([0xab; 32]))).is_err());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn an_outage_costs_one_bound_per_run_not_one_per_request() {
        let (_d, flaky, _) = setup(u32::MAX, || io::Error::from(io::ErrorKind::ConnectionReset));
        let policy = RetryPolicy { max_attempts: 1000, max_elapsed: Duration::from_millis(100), ..fast() };
        let r = Retry::new(flaky.clone(), policy);
        r.contacted.store(true, Ordering::Relaxed);
        let name = ObjectName::of(&SnapshotId([0xab; 32]));
        let t = Instant::now();
        assert!(r.read(&name).is_err());
        assert!(t.elapsed() >= Duration::from_millis(100), "the first request rides out the bound");
        // The bound is spent: each later request makes one attempt and gives up.
        *flaky.calls.lock() = 0;
        let t = Instant::now();
        for _ in 0..20 {
            assert!(r.read(&name).is_err());
        }
        assert_eq!(*flaky.calls.lock(), 20);
        assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
        // Once a request succeeds, the next outage gets a whole bound again.
        *flaky.fails.lock() = 0;
        r.write(&ObjectName::of(&SnapshotId([0xcd; 32])), b"x").unwrap();
        *flaky.fails.lock() = u32::MAX;
        *flaky.calls.lock() = 0;
        let t = Instant::now();
        assert!(r.list(Kind::Pack).is_err());
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(*flaky.calls.lock() > 1);
    }

    #[test]
    fn retries_transient_then_succeeds() {
        let (_d, f, r) = setup(3, || transient(io::ErrorKind::Other, "SlowDown"));
        r.write(&ObjectName::of(&PackId([0xab; 32])), b"x").unwrap();
        assert_eq!(*f.calls.lock(), 4);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let (_d, f, r) = setup(10, || io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        assert!(r.list(Kind::Pack).is_err());
        assert_eq!(*f.calls.lock(), 4);
    }

    #[test]
    fn never_retries_permanent_errors() {
        let (_d, f, r) = setup(5, || io::Error::new(io::ErrorKind::PermissionDenied, "denied"));
        assert_eq!(r.list(Kind::Pack).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(*f.calls.lock(), 1);
        let (_d, f, r) = setup(0, || unreachable!());
        assert_eq!(r.read(&ObjectName::of(&IndexId([0xcd; 32]))).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(*f.calls.lock(), 1);
    }

    /// Refused connections and timeouts are retried once before the store has ever answered (a
    /// wrong endpoint fails in a second), and ridden through afterwards (a restart).
    fn fails_fast_before_first_contact(err: fn() -> io::Error) {
        let kind = err().kind();
        let (_d, f, r) = setup(10, err);
        assert!(r.list(Kind::Pack).is_err());
        assert_eq!(*f.calls.lock(), 2, "{kind:?}");
        *f.fails.lock() = 0;
        r.list(Kind::Pack).unwrap();
        *f.fails.lock() = 3;
        *f.calls.lock() = 0;
        r.list(Kind::Pack).unwrap();
        assert_eq!(*f.calls.lock(), 4, "{kind:?}");
    }

    #[test]
    fn connection_refused_fails_fast_before_first_contact() {
        fails_fast_before_first_contact(|| io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
    }

    #[test]
    fn timeout_fails_fast_before_first_contact() {
        fails_fast_before_first_contact(|| io::Error::new(io::ErrorKind::TimedOut, "timeout"));
    }

    #[test]
    fn marked_errors_keep_their_source() {
        let e = transient_error(io::ErrorKind::Other, io::Error::other("inner words"));
        assert!(is_transient(&e));
        assert_eq!(e.to_string(), "inner words");
        let inner = e.get_ref().and_then(|i| i.source()).expect("source kept");
        assert_eq!(inner.to_string(), "inner words");
    }

    #[test]
    fn retried_write_that_landed_is_success() {
        let (_d, f, _r) = setup(0, || io::Error::new(io::ErrorKind::TimedOut, "timeout"));
        let name = ObjectName::of(&SnapshotId::of_bytes(b"data"));
        // The object is there already (an earlier attempt landed), and this attempt is a retry.
        f.inner.write(&name, b"data").unwrap();
        *f.fails.lock() = 1;
        let r2 = Retry::new(f.clone(), RetryPolicy { max_attempts: 3, ..fast() });
        r2.write(&name, b"data").unwrap();
        // Other bytes under a taken content-addressed name are damage, never "already there".
        *f.fails.lock() = 1;
        assert_eq!(r2.write(&name, b"evil").unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(r2.write(&name, b"longer").unwrap_err().kind(), io::ErrorKind::InvalidData);
        // A first attempt that finds the name taken at the right size says so (callers take it as
        // stored) without reading it back.
        assert_eq!(r2.write(&name, b"data").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }

    /// A store that answers "already exists" for an object it does not hold.
    struct Liar(LocalBackend);

    impl Backend for Liar {
        fn location(&self) -> String {
            self.0.location()
        }
        fn create(&self) -> io::Result<()> {
            self.0.create()
        }
        fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
            self.0.read(name)
        }
        fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
            self.0.read_range(name, offset, len)
        }
        fn write(&self, _: &ObjectName, _: &[u8]) -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, "412"))
        }
        fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
            self.0.list(kind)
        }
        fn size(&self, name: &ObjectName) -> io::Result<u64> {
            self.0.size(name)
        }
        fn delete(&self, name: &ObjectName) -> io::Result<()> {
            self.0.delete(name)
        }
    }

    #[test]
    fn already_exists_for_an_object_the_store_lacks_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let inner = LocalBackend::new(d.path());
        inner.create().unwrap();
        let r = Retry::new(Arc::new(Liar(inner)), fast());
        let name = ObjectName::of(&PackId::of_bytes(b"pack"));
        let e = r.write(&name, b"pack").unwrap_err();
        assert_ne!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert!(e.to_string().contains("no such object"), "{e}");
        let f = d.path().join("spool");
        std::fs::write(&f, b"pack").unwrap();
        assert_ne!(r.write_file(&name, &f).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }
}
