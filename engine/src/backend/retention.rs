//! Object lock (write-once retention) and versioned-bucket recovery: the retention a repository
//! records at `init --object-lock-days`, and [`Versioned`], the capability a store that keeps old
//! versions offers (S3 only): set the retention new objects carry, find deleted objects, bring them back.

use super::Kind;
use serde::{Deserialize, Serialize};
use std::io;

/// The retention mode `init --object-lock-days` uses unless told otherwise: COMPLIANCE, because
/// GOVERNANCE retention can be lifted by any credential with `s3:BypassGovernanceRetention`, which
/// the keys an agent can read may well have.
pub const DEFAULT_MODE: &str = "COMPLIANCE";

/// Object-lock retention put on every new object but leases: `mode` for `days` from its upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub days: u32,
}

impl ObjectLock {
    /// A retention from a mode in any case and a number of days (1 to 36500).
    pub fn new(mode: &str, days: u32) -> Result<ObjectLock, String> {
        let l = ObjectLock { mode: mode.trim().to_ascii_uppercase(), days };
        l.validate()?;
        Ok(l)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.mode != "GOVERNANCE" && self.mode != "COMPLIANCE" {
            return Err(format!("object lock mode {:?} is neither GOVERNANCE nor COMPLIANCE", self.mode));
        }
        if !(1..=36_500).contains(&self.days) {
            return Err(format!("object lock of {} days is outside 1 to 36500", self.days));
        }
        Ok(())
    }

    /// Whether objects of `kind` carry the retention. Leases do not: they are coordination that
    /// every run removes again, and a locked lease would be kept (and billed) for the whole term.
    pub fn applies_to(kind: Kind) -> bool {
        kind != Kind::Lock
    }
}

/// An object of the repository whose current version is a delete marker while an older version
/// still holds its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedObject {
    pub kind: Kind,
    pub name: String,
    /// The store's key for it (bucket-relative), for messages.
    pub key: String,
    /// Size of the version that comes back.
    pub size: u64,
    /// Its delete markers (version ids): removing them all makes the newest kept version current.
    pub markers: Vec<String>,
}

/// What a store that keeps object versions (an S3 bucket with versioning, as object lock implies)
/// can do beyond [`super::Backend`]. Decorators forward [`super::Backend::versioned`] to the store.
pub trait Versioned: Send + Sync {
    /// Sets the retention new objects carry from now on (None: none).
    fn set_object_lock(&self, lock: Option<ObjectLock>);
    /// The retention new objects carry.
    fn object_lock(&self) -> Option<ObjectLock>;
    /// Every object of the repository whose current version is a delete marker and that has an
    /// older version to come back, sorted by key. Objects that are not the repository's (other
    /// names under the prefix) are left out.
    fn deleted_objects(&self) -> io::Result<Vec<DeletedObject>>;
    /// Makes the newest kept version of `obj` current again by removing its delete markers.
    fn undelete(&self, obj: &DeletedObject) -> io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_days() {
        assert_eq!(ObjectLock::new(" governance", 7).unwrap(), ObjectLock { mode: "GOVERNANCE".into(), days: 7 });
        assert_eq!(ObjectLock::new("Compliance", 1).unwrap().mode, "COMPLIANCE");
        assert!(ObjectLock::new("legal-hold", 7).unwrap_err().contains("neither GOVERNANCE nor COMPLIANCE"));
        assert!(ObjectLock::new("compliance", 0).unwrap_err().contains("outside 1 to 36500"));
        assert!(ObjectLock::new("compliance", 36_501).is_err());
        assert!(!ObjectLock::applies_to(Kind::Lock));
        for k in [Kind::Config, Kind::Key, Kind::Pack, Kind::Index, Kind::Snapshot, Kind::Condemned, Kind::Dict] {
            assert!(ObjectLock::applies_to(k), "{k:?}");
        }
    }
}
