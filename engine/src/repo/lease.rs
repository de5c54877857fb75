//! Leases: small plain JSON objects in `locks/` that say "an operation of this kind runs on host H,
//! pid P, until T", refreshed while it runs and expiring by themselves. Only prunes exclude each
//! other; a backup takes a non-exclusive lease that prune only reads (with the condemned records,
//! [`crate::repo::condemned`]) to decide when deleting is safe, so a backup is never blocked. The
//! protocol is specified in format-spec/README.md, "Prune, leases and condemned packs".

use crate::backend::name::LockName;
use crate::backend::{Backend, Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::id::LeaseId;
use chrono::{DateTime, Utc};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::backend::name::LeaseKind;

/// How long a prune lease lives without a refresh.
pub const PRUNE_LEASE_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a backup lease lives without a refresh. Longer than a prune's: a backup whose lease
/// lapsed unnoticed could have deduplicated against data a prune then deletes.
pub const BACKUP_LEASE_TTL: Duration = Duration::from_secs(60 * 60);

/// The body of a lease object `locks/<kind>-<id>-<seq>`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LeaseInfo {
    pub version: u32,
    pub kind: String,
    /// 16 hex digits, the same in every refresh of one lease.
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339: after this the lease is dead and anyone may remove it.
    pub expires: String,
}

impl LeaseInfo {
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.expires).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    /// Live: not expired, and not left behind by a process of this host that no longer runs.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        if self.expires_at() <= now {
            return false;
        }
        self.hostname != crate::repo::host::hostname() || process_alive(self.pid)
    }

    pub fn describe(&self) -> String {
        format!("{} on host {} (pid {}), lease expires {}", self.kind, self.hostname, self.pid, self.expires)
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// One lease object found in `locks/`.
#[derive(Clone, Debug)]
pub struct LeaseEntry {
    pub name: ObjectName,
    pub kind: LeaseKind,
    pub id: String,
    /// None: unreadable (treated as dead).
    pub info: Option<LeaseInfo>,
}

/// Every lease in `locks/` (other objects there are ignored).
pub fn list_leases(backend: &dyn Backend) -> Result<Vec<LeaseEntry>> {
    let mut out = Vec::new();
    for (name, _) in backend.list(Kind::Lock).map_err(Error::backend_err("list", "locks"))? {
        let Some(LockName::Lease { kind, id, .. }) = name.id::<LockName>() else { continue };
        let info = match backend.read(&name) {
            Ok(b) => serde_json::from_slice::<LeaseInfo>(&b).ok(),
            // Removed between list and read: its holder released it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Backend { op: "read", name: name.to_string(), source: e }),
        };
        out.push(LeaseEntry { name, kind, id: id.to_hex(), info });
    }
    Ok(out)
}

/// The ids of the backup leases live now.
pub fn live_backup_leases(backend: &dyn Backend) -> Result<Vec<String>> {
    let now = Utc::now();
    let mut ids: Vec<String> = list_leases(backend)?
        .into_iter()
        .filter(|l| l.kind == LeaseKind::Backup && l.info.as_ref().is_some_and(|i| i.is_live(now)))
        .map(|l| l.id)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

struct Shared {
    backend: Arc<dyn Backend>,
    kind: LeaseKind,
    id: LeaseId,
    ttl: Duration,
    created: DateTime<Utc>,
    /// The current object name, its generation, and when it was last written successfully.
    state: Mutex<(ObjectName, u64, Instant)>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn info(&self) -> LeaseInfo {
        let exp = Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or_default();
        LeaseInfo {
            version: 1,
            kind: self.kind.name().into(),
            id: self.id.to_hex(),
            hostname: crate::repo::host::hostname(),
            pid: std::process::id(),
            created: self.created.to_rfc3339(),
            expires: exp.to_rfc3339(),
        }
    }

    /// Writes the next generation of the lease, then removes the previous one.
    fn refresh(&self) -> std::io::Result<()> {
        let (old, seq) = {
            let s = self.state.lock();
            (s.0.clone(), s.1)
        };
        let next = ObjectName::of(&LockName::Lease { kind: self.kind, id: self.id, seq: seq + 1 });
        let body = serde_json::to_vec(&self.info()).expect("serialize lease");
        self.backend.write(&next, &body)?;
        *self.state.lock() = (next, seq + 1, Instant::now());
        let _ = self.backend.delete(&old);
        Ok(())
    }
}

/// A lease held by this process: refreshed by a background thread, removed on `release` or drop.
pub struct Lease {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    /// Takes a backup lease. Never waits and never fails because of other leases.
    pub fn backup(backend: Arc<dyn Backend>) -> Result<Lease> {
        Self::write_new(backend, LeaseKind::Backup, BACKUP_LEASE_TTL)
    }

    /// Takes the prune lease: fails with `Error::Locked` while another prune's lease is live;
    /// removes dead leases of any kind on the way.
    pub fn prune(backend: Arc<dyn Backend>) -> Result<Lease> {
        Self::prune_with_ttl(backend, PRUNE_LEASE_TTL)
    }

    pub fn prune_with_ttl(backend: Arc<dyn Backend>, ttl: Duration) -> Result<Lease> {
        let now = Utc::now();
        let others = list_leases(backend.as_ref())?;
        for l in &others {
            match &l.info {
                Some(i) if i.is_live(now) => {
                    if l.kind == LeaseKind::Prune {
                        return Err(locked(i));
                    }
                }
                // Dead (expired, crashed on this host, or unreadable): nobody relies on it.
                _ => {
                    let _ = backend.delete(&l.name);
                }
            }
        }
        let lease = Self::write_new(backend.clone(), LeaseKind::Prune, ttl)?;
        // Two prunes that started together both see each other now; the older lease (then the
        // smaller id) wins, the other steps back.
        let mine = lease.shared.info();
        for l in list_leases(backend.as_ref())? {
            if l.kind != LeaseKind::Prune || l.id == lease.shared.id.to_hex() {
                continue;
            }
            if let Some(i) = l.info.filter(|i| i.is_live(now)) {
                if (i.created.as_str(), i.id.as_str()) < (mine.created.as_str(), mine.id.as_str()) {
                    lease.release();
                    return Err(locked(&i));
                }
            }
        }
        Ok(lease)
    }

    fn write_new(backend: Arc<dyn Backend>, kind: LeaseKind, ttl: Duration) -> Result<Lease> {
        let id = LeaseId::random();
        let name = ObjectName::of(&LockName::Lease { kind, id, seq: 0 });
        let shared = Arc::new(Shared {
            backend,
            kind,
            id,
            ttl,
            created: Utc::now(),
            state: Mutex::new((name.clone(), 0, Instant::now())),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let body = serde_json::to_vec(&shared.info()).expect("serialize lease");
        shared.backend.write(&name, &body).map_err(Error::backend_err("write lease", &name))?;
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-lease", kind.name()))
            .spawn(move || {
                let every = (s.ttl / 6).max(Duration::from_millis(100));
                let mut stop = s.stop.lock();
                while !*stop {
                    if s.wake.wait_for(&mut stop, every).timed_out() && !*stop {
                        drop(stop);
                        // A failed refresh is retried at the next tick; `lapsed` tells the owner
                        // when too many failed.
                        let _ = s.refresh();
                        stop = s.stop.lock();
                    }
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the lease thread: {e}")))?;
        Ok(Lease { shared, thread: Some(thread) })
    }

    /// The lease's id (the part of its name that stays the same across refreshes).
    pub fn id(&self) -> LeaseId {
        self.shared.id
    }

    /// True when the lease has gone unrefreshed for longer than its lifetime: others may have
    /// taken it for dead, so what it protected can no longer be relied on.
    pub fn lapsed(&self) -> bool {
        self.shared.state.lock().2.elapsed() >= self.shared.ttl
    }

    /// Fails when the lease lapsed (see `lapsed`).
    pub fn ensure_held(&self) -> Result<()> {
        if self.lapsed() {
            return Err(Error::Other(format!(
                "the {} lease could not be refreshed for {} s (storage unreachable or the process was suspended); \
                 stopped to stay safe: run the command again",
                self.shared.kind.name(),
                self.shared.ttl.as_secs()
            )));
        }
        Ok(())
    }

    /// Stops refreshing and removes the lease.
    pub fn release(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let name = self.shared.state.lock().0.clone();
        let _ = self.shared.backend.delete(&name);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

fn locked(i: &LeaseInfo) -> Error {
    Error::Locked(format!(
        "another prune is running on host {} (pid {}) until {} unless it refreshes its lease; try again later",
        i.hostname, i.pid, i.expires
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::backend::Stored;

    #[test]
    fn lease_names_refresh_and_release() {
        let d = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("r")));
        b.create().unwrap();
        let l = Lease::backup(b.clone()).unwrap();
        assert_eq!(live_backup_leases(b.as_ref()).unwrap(), vec![l.id().to_string()]);
        l.shared.refresh().unwrap();
        let names: Vec<String> = b.list(Kind::Lock).unwrap().into_iter().map(|x| x.0.to_string()).collect();
        assert_eq!(names, vec![format!("backup-{}-1", l.id())]);
        assert!(!l.lapsed());
        // A prune is not stopped by backups, but a second prune is.
        let p = Lease::prune(b.clone()).unwrap();
        let e = Lease::prune(b.clone()).err().expect("second prune refused");
        assert_eq!(e.exit_code(), 12);
        p.release();
        l.release();
        assert!(b.list(Kind::Lock).unwrap().is_empty());
    }

    #[test]
    fn dead_prune_leases_are_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("r")));
        b.create().unwrap();
        let dead = LeaseInfo {
            version: 1,
            kind: "prune".into(),
            id: "00112233445566ff".into(),
            hostname: "elsewhere".into(),
            pid: 1,
            created: "2020-01-01T00:00:00Z".into(),
            expires: "2020-01-01T00:15:00Z".into(),
        };
        let name = LockName::from_name("prune-00112233445566ff-3").unwrap();
        b.write(&ObjectName::of(&name), &serde_json::to_vec(&dead).unwrap()).unwrap();
        let p = Lease::prune(b.clone()).unwrap();
        assert_eq!(list_leases(b.as_ref()).unwrap().len(), 1, "the expired lease is removed");
        p.release();
    }
}
