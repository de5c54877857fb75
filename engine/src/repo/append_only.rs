//! Append-only repositories: the mode `init --append-only` records in the sealed config, the
//! maintenance key that lifts it for one run, the backend guard that refuses deletions while it
//! holds, and the cheap probe that tells whether this host's credentials can delete at all.

use crate::backend::name::{LeaseKind, LockName};
use crate::backend::{forward_to_inner, Backend, Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::id::LeaseId;
use crate::repo::lease::LeaseInfo;
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The text a maintenance key starts with, so a key pasted into the wrong place is recognised.
const KEY_PREFIX: &str = "clawback-maintenance-";

/// What the config records for an append-only repository: the BLAKE3 hash of the maintenance key.
/// The key is 32 random bytes, so its hash cannot be searched back to it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AppendOnly {
    /// 64 lowercase hex digits: BLAKE3 of the key's text.
    pub maintenance: String,
}

impl AppendOnly {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.maintenance.len() != 64 || !self.maintenance.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("bad append_only.maintenance (not 64 lowercase hex digits)".into());
        }
        Ok(())
    }

    /// Whether `key` (the text of a maintenance key file) is this repository's maintenance key.
    pub fn accepts(&self, key: &[u8]) -> bool {
        let text = String::from_utf8_lossy(key);
        let hash = hex::encode(blake3::hash(text.trim().as_bytes()).as_bytes());
        // Constant time is not needed: the hash is stored in the repository for anyone holding
        // a password, and the key has 256 bits.
        hash == self.maintenance
    }
}

/// A new maintenance key: its text (what the user keeps) and the record the config holds.
pub fn new_maintenance_key() -> (String, AppendOnly) {
    let text = format!("{KEY_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
    let maintenance = hex::encode(blake3::hash(text.as_bytes()).as_bytes());
    (text, AppendOnly { maintenance })
}

/// The message of an operation refused because the repository is append-only.
pub fn refused(what: &str) -> Error {
    Error::AppendOnly(format!(
        "{what} deletes from the repository, which is append-only; run it where the maintenance key is, \
         with --maintenance-key-file (or CLAWBACK_MAINTENANCE_KEY_FILE)"
    ))
}

/// Wraps the backend of an append-only repository: deleting anything but a lease is refused until
/// the maintenance key lifts the mode, and the config is never written. Writes cannot overwrite
/// (every backend refuses an existing name), so nothing already stored can be destroyed.
pub struct Guard {
    inner: Arc<dyn Backend>,
    lifted: Arc<AtomicBool>,
}

impl Guard {
    pub fn new(inner: Arc<dyn Backend>, lifted: Arc<AtomicBool>) -> Guard {
        Guard { inner, lifted }
    }
}

fn denied(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what}: the repository is append-only (lift it with --maintenance-key-file)"),
    )
}

impl Backend for Guard {
    forward_to_inner!();

    fn create(&self) -> io::Result<()> {
        Err(denied("create".into()))
    }
    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        self.inner.read(name)
    }
    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        self.inner.read_range(name, offset, len)
    }
    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        if name.kind() == Kind::Config {
            return Err(denied("write config".into()));
        }
        self.inner.write(name, data)
    }
    fn write_file(&self, name: &ObjectName, path: &std::path::Path) -> io::Result<()> {
        if name.kind() == Kind::Config {
            return Err(denied("write config".into()));
        }
        self.inner.write_file(name, path)
    }
    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        self.inner.list(kind)
    }
    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        self.inner.size(name)
    }
    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        // Leases are coordination, not data: a backup removes its own when it ends.
        if name.kind() == Kind::Lock || self.lifted.load(Ordering::SeqCst) {
            return self.inner.delete(name);
        }
        Err(denied(format!("delete {}/{name}", name.kind().dir())))
    }
}

/// Whether the store lets these credentials delete: writes an already expired lease (which every
/// reader ignores, and which stays harmless if it cannot be removed) and deletes it. `Ok(false)`
/// when the delete is refused for lack of rights; `Err` when the write or the store fails.
pub fn probe_delete(backend: &dyn Backend) -> Result<bool> {
    let id = LeaseId::random();
    let name = ObjectName::of(&LockName::Lease { kind: LeaseKind::Backup, id, seq: 0 });
    let now = chrono::Utc::now().to_rfc3339();
    let info = LeaseInfo {
        version: 1,
        kind: "backup".into(),
        id: id.to_hex(),
        hostname: crate::repo::host::hostname(),
        pid: std::process::id(),
        created: now.clone(),
        expires: now,
    };
    let body = serde_json::to_vec(&info).expect("serialize lease");
    backend.write(&name, &body).map_err(Error::backend_err("write probe lease", &name))?;
    match backend.delete(&name) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied || denied_by_store(&e) => Ok(false),
        Err(e) => Err(Error::Backend { op: "delete probe lease", name: name.to_string(), source: e }),
    }
}

/// An S3 store's "access denied".
fn denied_by_store(_e: &io::Error) -> bool {
    #[cfg(feature = "s3")]
    {
        use crate::backend::s3::S3Failure;
        if S3Failure::of(_e) == Some(S3Failure::AccessDenied) {
            return true;
        }
    }
    false
}

/// Refuses an operation that deletes when these credentials cannot delete, before it writes
/// anything: `what` names the operation for the message.
pub fn require_delete_rights(backend: &dyn Backend, what: &str) -> Result<()> {
    if probe_delete(backend)? {
        return Ok(());
    }
    Err(Error::AppendOnly(format!(
        "{what} needs delete rights on the repository ({}), and these credentials cannot delete; \
         run it from a maintenance host whose credentials can",
        backend.location()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    #[test]
    fn only_the_maintenance_key_lifts_the_guard() {
        let (key, rec) = new_maintenance_key();
        rec.validate().unwrap();
        assert!(rec.accepts(key.as_bytes()));
        assert!(rec.accepts(format!("{key}\n").as_bytes()));
        let (other, _) = new_maintenance_key();
        assert!(!rec.accepts(other.as_bytes()));
        assert!(!rec.accepts(b""));

        let d = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalBackend::new(d.path().join("r")));
        local.create().unwrap();
        let lifted = Arc::new(AtomicBool::new(false));
        let g = Guard::new(local.clone(), lifted.clone());
        let name = ObjectName::of(&crate::format::id::SnapshotId([0xab; 32]));
        g.write(&name, b"s").unwrap();
        assert_eq!(g.write(&name, b"t").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(g.delete(&name).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert!(g.write(&ObjectName::config(), b"c").is_err());
        assert_eq!(local.read(&name).unwrap(), b"s");
        let lease = ObjectName::of(&LockName::Lease { kind: LeaseKind::Backup, id: LeaseId([1; 8]), seq: 0 });
        g.write(&lease, b"l").unwrap();
        g.delete(&lease).unwrap();
        lifted.store(true, Ordering::SeqCst);
        g.delete(&name).unwrap();
    }

    #[test]
    fn the_probe_sees_a_backend_that_cannot_delete() {
        struct NoDelete(LocalBackend);
        impl Backend for NoDelete {
            fn location(&self) -> String {
                self.0.location()
            }
            fn create(&self) -> io::Result<()> {
                self.0.create()
            }
            fn read(&self, n: &ObjectName) -> io::Result<Vec<u8>> {
                self.0.read(n)
            }
            fn read_range(&self, n: &ObjectName, o: u64, l: u64) -> io::Result<Vec<u8>> {
                self.0.read_range(n, o, l)
            }
            fn write(&self, n: &ObjectName, d: &[u8]) -> io::Result<()> {
                self.0.write(n, d)
            }
            fn list(&self, k: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
                self.0.list(k)
            }
            fn size(&self, n: &ObjectName) -> io::Result<u64> {
                self.0.size(n)
            }
            fn delete(&self, _: &ObjectName) -> io::Result<()> {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "no"))
            }
        }
        let d = tempfile::tempdir().unwrap();
        let local = LocalBackend::new(d.path().join("r"));
        local.create().unwrap();
        assert!(probe_delete(&local).unwrap());
        assert!(local.list(Kind::Lock).unwrap().is_empty());
        let nd = NoDelete(LocalBackend::new(d.path().join("r")));
        assert!(!probe_delete(&nd).unwrap());
        let e = require_delete_rights(&nd, "prune").unwrap_err();
        assert!(e.to_string().contains("maintenance host"), "{e}");
        // Each of the two probes left an expired lease, which no reader treats as live.
        let left = local.list(Kind::Lock).unwrap();
        assert_eq!(left.len(), 2);
        for (name, _) in &left {
            let info: LeaseInfo = serde_json::from_slice(&local.read(name).unwrap()).unwrap();
            assert!(!info.is_live(chrono::Utc::now()));
        }
    }
}
