//! How much traffic a repository may take: the number of requests kept in flight
//! (`--connections`) and optional upload and download rates (`--limit-upload`,
//! `--limit-download`, in KiB/s). A decorator over any backend.
//!
//! The rate limit paces transfers on a shared clock: each transfer books the time its bytes take
//! at the limit after the transfers booked before it, and waits until its slot has passed, so any
//! number of threads together stay at the rate.

use super::{Backend, Kind, ObjectName};
use parking_lot::Mutex;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Pacer {
    bytes_per_sec: f64,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(kib_per_sec: u64) -> Self {
        Pacer { bytes_per_sec: (kib_per_sec.max(1) * 1024) as f64, next: Mutex::new(Instant::now()) }
    }

    /// Books `n` bytes and sleeps until they fit under the rate.
    pub fn pace(&self, n: u64) {
        let cost = Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
        let until = {
            let mut next = self.next.lock();
            let now = Instant::now();
            // Idle time is not saved up beyond a short burst.
            let start = (*next).max(now.checked_sub(Duration::from_millis(250)).unwrap_or(now));
            *next = start + cost;
            *next
        };
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
    }
}

pub struct Throttle {
    inner: Arc<dyn Backend>,
    connections: Option<usize>,
    up: Option<Pacer>,
    down: Option<Pacer>,
}

impl Throttle {
    /// `connections`: requests in flight (None: the backend's default); rates in KiB/s.
    pub fn new(
        inner: Arc<dyn Backend>,
        connections: Option<usize>,
        up_kib: Option<u64>,
        down_kib: Option<u64>,
    ) -> Self {
        Throttle {
            inner,
            connections: connections.map(|c| c.clamp(1, 256)),
            up: up_kib.map(Pacer::new),
            down: down_kib.map(Pacer::new),
        }
    }
}

impl Backend for Throttle {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn versioned(&self) -> Option<&dyn super::retention::Versioned> {
        self.inner.versioned()
    }

    fn create(&self) -> io::Result<()> {
        self.inner.create()
    }

    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        let d = self.inner.read(name)?;
        if let Some(p) = &self.down {
            p.pace(d.len() as u64);
        }
        Ok(d)
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_range_into(name, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(&self, name: &ObjectName, offset: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        self.inner.read_range_into(name, offset, len, buf)?;
        if let Some(p) = &self.down {
            p.pace(buf.len() as u64);
        }
        Ok(())
    }

    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        if let Some(p) = &self.up {
            p.pace(data.len() as u64);
        }
        self.inner.write(name, data)
    }

    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        self.inner.list(kind)
    }

    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        self.inner.size(name)
    }

    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        self.inner.delete(name)
    }

    fn connections(&self) -> usize {
        self.connections.unwrap_or_else(|| self.inner.connections())
    }

    fn requests(&self) -> Vec<(&'static str, u64)> {
        self.inner.requests()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_holds_the_rate_across_threads() {
        // 256 KiB/s; four threads move 128 KiB together: about half a second, minus the burst.
        let p = Arc::new(Pacer::new(256));
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = p.clone();
                s.spawn(move || p.pace(32 * 1024));
            }
        });
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(200), "{e:?}");
        assert!(e < Duration::from_secs(3), "{e:?}");
    }
}
