//! A fault-injecting decorator, for tests only: it makes any backend behave like a bad network or
//! a bad disk, so tests can prove that transient failures are retried and that damaged reads are
//! never taken for good data. Enabled by the environment variable `CLAWBACK_FAULTS`, e.g.
//! `CLAWBACK_FAULTS=seed=1,transient=0.1,timeout=0.05,short=0.05,flip=0.01` (each rate a
//! probability per call). The faults drawn depend only on the seed and the order of calls.
//!
//! - `transient`: the call fails with a retryable error; for writes and deletes, half of these
//!   happen after the operation took effect (the reply was lost, not the request).
//! - `timeout`: the same, as a timeout.
//! - `short`: a read returns fewer bytes than it should.
//! - `flip`: a read returns its bytes with one bit flipped.

use super::retry::transient;
use super::{Backend, Kind, ObjectName};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const ENV: &str = "CLAWBACK_FAULTS";

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    pub transient: f64,
    pub timeout: f64,
    pub short: f64,
    pub flip: f64,
}

impl FaultConfig {
    /// Parses `seed=N,transient=P,timeout=P,short=P,flip=P` (any subset, any order).
    pub fn parse(s: &str) -> Result<FaultConfig, String> {
        let mut c = FaultConfig::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("{ENV}: `{part}` is not key=value"))?;
            let rate = || -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("{ENV}: {k} must be a probability from 0 to 1, not `{v}`"))
            };
            match k {
                "seed" => c.seed = v.parse().map_err(|_| format!("{ENV}: seed must be a whole number, not `{v}`"))?,
                "transient" => c.transient = rate()?,
                "timeout" => c.timeout = rate()?,
                "short" => c.short = rate()?,
                "flip" => c.flip = rate()?,
                _ => return Err(format!("{ENV}: unknown fault `{k}` (known: seed, transient, timeout, short, flip)")),
            }
        }
        Ok(c)
    }

    /// The configuration in `CLAWBACK_FAULTS`, if set.
    pub fn from_env() -> Option<Result<FaultConfig, String>> {
        std::env::var(ENV).ok().filter(|v| !v.trim().is_empty()).map(|v| FaultConfig::parse(&v))
    }
}

pub struct Fault {
    inner: Arc<dyn Backend>,
    cfg: FaultConfig,
    rng: Mutex<StdRng>,
    /// Faults injected so far, for tests that want to see some happened.
    pub injected: AtomicU64,
}

enum Failure {
    Before(io::Error),
    After(io::Error),
}

impl Fault {
    pub fn new(inner: Arc<dyn Backend>, cfg: FaultConfig) -> Self {
        Fault { inner, cfg, rng: Mutex::new(StdRng::seed_from_u64(cfg.seed)), injected: AtomicU64::new(0) }
    }

    fn draw(&self) -> f64 {
        self.rng.lock().random::<f64>()
    }

    /// Maybe a failure for this call.
    fn failure(&self, op: &str) -> Option<Failure> {
        let r = self.draw();
        let after = self.draw() < 0.5;
        let e = if r < self.cfg.transient {
            transient(io::ErrorKind::Other, format!("injected fault: {op} failed (transient)"))
        } else if r < self.cfg.transient + self.cfg.timeout {
            io::Error::new(io::ErrorKind::TimedOut, format!("injected fault: {op} timed out"))
        } else {
            return None;
        };
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(if after { Failure::After(e) } else { Failure::Before(e) })
    }

    fn fail_before(&self, op: &str) -> io::Result<()> {
        match self.failure(op) {
            Some(Failure::Before(e) | Failure::After(e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Damages what a read returned, maybe.
    fn damage(&self, mut data: Vec<u8>) -> Vec<u8> {
        if data.is_empty() {
            return data;
        }
        if self.draw() < self.cfg.short {
            self.injected.fetch_add(1, Ordering::Relaxed);
            let keep = (self.draw() * data.len() as f64) as usize;
            data.truncate(keep.min(data.len() - 1));
        } else if self.draw() < self.cfg.flip {
            self.injected.fetch_add(1, Ordering::Relaxed);
            let bit = (self.draw() * (data.len() * 8) as f64) as usize % (data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
        }
        data
    }

    /// Runs an operation that changes the store, failing before or after it.
    fn mutate(&self, op: &str, f: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        match self.failure(op) {
            Some(Failure::Before(e)) => Err(e),
            Some(Failure::After(e)) => {
                f()?;
                Err(e)
            }
            None => f(),
        }
    }
}

impl Backend for Fault {
    super::forward_to_inner!();

    fn create(&self) -> io::Result<()> {
        self.inner.create()
    }

    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        self.fail_before("read")?;
        Ok(self.damage(self.inner.read(name)?))
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        self.fail_before("read")?;
        Ok(self.damage(self.inner.read_range(name, offset, len)?))
    }

    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        self.mutate("write", || self.inner.write(name, data))
    }

    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        self.fail_before("list")?;
        self.inner.list(kind)
    }

    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        self.fail_before("size")?;
        self.inner.size(name)
    }

    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        self.mutate("delete", || self.inner.delete(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    #[test]
    fn parses() {
        let c = FaultConfig::parse("seed=7, transient=0.1,flip=0.01").unwrap();
        assert_eq!(c, FaultConfig { seed: 7, transient: 0.1, timeout: 0.0, short: 0.0, flip: 0.01 });
        assert!(FaultConfig::parse("transient=2").is_err());
        assert!(FaultConfig::parse("bogus=0.1").is_err());
        assert!(FaultConfig::parse("seed").is_err());
    }

    #[test]
    fn deterministic_and_damaging() {
        let d = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalBackend::new(d.path().join("r")));
        local.create().unwrap();
        let name = ObjectName::of(&crate::format::id::PackId([0xab; 32]));
        local.write(&name, &[0u8; 1000]).unwrap();
        let run = |cfg: FaultConfig| {
            let f = Fault::new(local.clone(), cfg);
            (0..200).map(|_| f.read(&name).map_err(|e| e.kind())).collect::<Vec<_>>()
        };
        let cfg = FaultConfig { seed: 3, transient: 0.2, timeout: 0.1, short: 0.1, flip: 0.1 };
        let a = run(cfg);
        assert_eq!(a, run(cfg));
        assert!(a.iter().any(|r| r.is_err()));
        assert!(a.iter().any(|r| matches!(r, Ok(v) if v.len() < 1000)));
        assert!(a.iter().any(|r| matches!(r, Ok(v) if v.len() == 1000 && v.iter().any(|&b| b != 0))));
        assert!(a.iter().any(|r| matches!(r, Ok(v) if v == &vec![0u8; 1000])));
        assert!(run(FaultConfig::default()).iter().all(|r| matches!(r, Ok(v) if v == &vec![0u8; 1000])));
    }
}
