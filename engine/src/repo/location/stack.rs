//! The backend factory: a location's storage with its decorators (fault injection when tests ask,
//! the traffic limits, retries of transient failures), and the set of backends one session has
//! opened, so a command that looks at a repository twice reuses one client and its counts.

use std::sync::Arc;

use parking_lot::Mutex;

use super::Location;
use crate::backend::fault::{Fault, FaultConfig};
use crate::backend::retry::{Retry, RetryPolicy};
use crate::backend::throttle::Throttle;
use crate::backend::Backend;
use crate::error::{Error, Result};

/// How much traffic every backend a session opens may take: `--connections`, `--limit-upload`
/// and `--limit-download` (KiB/s). `None` leaves the backend's own default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub connections: Option<usize>,
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
}

impl Traffic {
    fn limits(&self) -> bool {
        self.connections.is_some() || self.limit_upload.is_some() || self.limit_download.is_some()
    }
}

/// Opens the storage at `loc` with its decorators, innermost first: the faults `faults` asks
/// for (tests only), the traffic limits when any is set, and retries of transient failures.
pub fn open(loc: &Location, traffic: &Traffic, faults: Option<&FaultConfig>) -> Result<Arc<dyn Backend>> {
    let base = loc.spec.open()?;
    let base: Arc<dyn Backend> = match faults {
        None => base,
        Some(cfg) => Arc::new(Fault::new(base, *cfg)),
    };
    let base: Arc<dyn Backend> = if traffic.limits() {
        Arc::new(Throttle::new(base, traffic.connections, traffic.limit_upload, traffic.limit_download))
    } else {
        base
    };
    Ok(Arc::new(Retry::new(base, RetryPolicy::from_env())))
}

/// The backends one session (one run of the program) has opened, by location key, all with the
/// same traffic limits and faults.
pub struct Backends {
    traffic: Traffic,
    /// `CLAWBACK_FAULTS` as read at start; a bad value fails every open (a usage error).
    faults: Option<std::result::Result<FaultConfig, String>>,
    opened: Mutex<Vec<(String, Arc<dyn Backend>)>>,
}

impl Backends {
    pub fn new(traffic: Traffic, faults: Option<std::result::Result<FaultConfig, String>>) -> Self {
        Backends { traffic, faults, opened: Mutex::new(Vec::new()) }
    }

    /// The backend for `loc`: the one opened before for the same location, else a new one.
    pub fn open(&self, loc: &Location) -> Result<Arc<dyn Backend>> {
        let key = loc.key();
        let mut opened = self.opened.lock();
        if let Some((_, be)) = opened.iter().find(|(k, _)| *k == key) {
            return Ok(be.clone());
        }
        let faults = match &self.faults {
            None => None,
            Some(Ok(cfg)) => Some(cfg),
            Some(Err(e)) => return Err(Error::Usage(e.clone())),
        };
        let be = open(loc, &self.traffic, faults)?;
        opened.push((key, be.clone()));
        Ok(be)
    }

    /// Every backend opened so far, in the order they were opened.
    pub fn opened(&self) -> Vec<Arc<dyn Backend>> {
        self.opened.lock().iter().map(|(_, be)| be.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::name::{LeaseKind, LockName};
    use crate::backend::ObjectName;
    use crate::format::id::LeaseId;
    use crate::repo::location::parse;

    fn repo() -> (tempfile::TempDir, Location) {
        let d = tempfile::tempdir().unwrap();
        let loc = parse(&d.path().join("r").to_string_lossy()).unwrap();
        (d, loc)
    }

    #[test]
    fn a_folder_opens_with_only_the_decorators_asked_for() {
        let (_d, loc) = repo();
        let plain = open(&loc, &Traffic::default(), None).unwrap();
        plain.create().unwrap();
        plain.write(&ObjectName::config(), b"hello").unwrap();
        assert_eq!(plain.read(&ObjectName::config()).unwrap(), b"hello");
        assert_eq!(plain.location(), loc.name());
        // The folder backend's own default, no throttle in between.
        assert_eq!(plain.connections(), 2);

        let limited = open(&loc, &Traffic { connections: Some(7), ..Traffic::default() }, None).unwrap();
        assert_eq!(limited.connections(), 7);
        assert_eq!(limited.read(&ObjectName::config()).unwrap(), b"hello");
    }

    #[test]
    fn faults_sit_inside_the_retries() {
        let (_d, loc) = repo();
        let flip = FaultConfig { seed: 1, flip: 1.0, ..FaultConfig::default() };
        let be = open(&loc, &Traffic::default(), Some(&flip)).unwrap();
        be.create().unwrap();
        be.write(&ObjectName::config(), b"hello").unwrap();
        // Every read is damaged: the fault decorator is in the stack.
        assert_ne!(be.read(&ObjectName::config()).unwrap(), b"hello");

        // Reads that fail now and then still succeed: the retries are outside the faults.
        let plain = open(&loc, &Traffic::default(), None).unwrap();
        let flaky = FaultConfig { seed: 5, transient: 0.25, ..FaultConfig::default() };
        let be = open(&loc, &Traffic::default(), Some(&flaky)).unwrap();
        for i in 0..8u8 {
            let name = ObjectName::of(&LockName::Lease { kind: LeaseKind::Backup, id: LeaseId([i; 8]), seq: 0 });
            plain.write(&name, &[i; 10]).unwrap();
            assert_eq!(be.read(&name).unwrap(), vec![i; 10]);
        }
    }

    #[test]
    fn a_session_reuses_what_it_opened() {
        let (d, loc) = repo();
        let s = Backends::new(Traffic::default(), None);
        let a = s.open(&loc).unwrap();
        let b = s.open(&parse(&format!("local:{}", d.path().join("r").display())).unwrap()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = s.open(&parse(&d.path().join("other").to_string_lossy()).unwrap()).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(s.opened().len(), 2);
    }

    #[test]
    fn bad_faults_fail_the_open() {
        let (_d, loc) = repo();
        let s = Backends::new(Traffic::default(), Some(FaultConfig::parse("bogus=1")));
        let e = s.open(&loc).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unknown fault `bogus`"), "{e}");
        assert!(s.opened().is_empty());
    }
}
