//! Object names as types. A backend addresses an object by an [`ObjectName`], made only from a
//! typed id ([`Stored`]: packs, index files, snapshots, keys, dictionaries, lease and condemned
//! record names), the config, or the backend's own listing: no caller's string reaches storage.

use super::{Backend, Kind};
use crate::format::id::{DictId, IndexId, KeyId, LeaseId, PackId, RecordId, SnapshotId};
use std::fmt;
use std::io;

mod sealed {
    pub trait Sealed {}
}

/// A value that names one stored object of kind `KIND`. Implemented only in this module, for the
/// types whose names are the repository's layout (format-spec §1).
pub trait Stored: sealed::Sealed + Sized {
    const KIND: Kind;
    /// The object's name in its kind's folder.
    fn to_name(&self) -> String;
    /// The value `name` stands for; None for a name objects of this kind never take.
    fn from_name(name: &str) -> Option<Self>;
}

/// One object of the repository: its kind and its name there.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName {
    kind: Kind,
    name: String,
}

impl ObjectName {
    /// The object `id` names.
    pub fn of<T: Stored>(id: &T) -> ObjectName {
        ObjectName { kind: T::KIND, name: id.to_name() }
    }

    /// The repository's config object.
    pub fn config() -> ObjectName {
        ObjectName { kind: Kind::Config, name: "config".into() }
    }

    /// A name a backend listed in `kind`'s folder: the names clawback writes, and foreign ones made
    /// of letters, digits and `-` (which `check` reports and `repair` may remove). Anything else
    /// is left out, so a listed name can never address a path outside the folder.
    pub(crate) fn listed(kind: Kind, name: String) -> Option<ObjectName> {
        let ok = match kind {
            Kind::Config => name == "config",
            _ => !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        };
        ok.then_some(ObjectName { kind, name })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The name in the kind's folder, as stored.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The typed value this object's name stands for; None for another kind or a foreign name.
    pub fn id<T: Stored>(&self) -> Option<T> {
        if self.kind == T::KIND {
            T::from_name(&self.name)
        } else {
            None
        }
    }
}

// Messages name the object as they always did: by its name alone.
impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Config => f.write_str(&self.name),
            k => write!(f, "{}/{}", k.dir(), self.name),
        }
    }
}

/// The objects of one kind, as its typed ids, and the foreign names found beside them.
#[derive(Debug)]
pub struct Listing<T> {
    pub ids: Vec<(T, u64)>,
    /// Objects whose names are not an id of the kind, with their sizes.
    pub unrecognised: Vec<(ObjectName, u64)>,
}

impl dyn Backend + '_ {
    /// Lists the objects of `T`'s kind, parsed into `T`.
    pub fn list_of<T: Stored>(&self) -> io::Result<Listing<T>> {
        let mut out = Listing { ids: Vec::new(), unrecognised: Vec::new() };
        for (name, size) in self.list(T::KIND)? {
            match name.id::<T>() {
                Some(id) => out.ids.push((id, size)),
                None => out.unrecognised.push((name, size)),
            }
        }
        Ok(out)
    }
}

// Content-addressed kinds are named by 64 lowercase hex digits; an upper-case spelling names no
// object clawback writes.
macro_rules! stored_hex {
    ($($ty:ident => $kind:ident),*) => {$(
        impl sealed::Sealed for $ty {}
        impl Stored for $ty {
            const KIND: Kind = Kind::$kind;
            fn to_name(&self) -> String {
                self.to_hex()
            }
            fn from_name(name: &str) -> Option<Self> {
                $ty::from_hex(name).filter(|id| id.to_hex() == name)
            }
        }
    )*};
}
stored_hex!(PackId => Pack, IndexId => Index, SnapshotId => Snapshot, KeyId => Key, DictId => Dict);

/// What a lease is held for: only prunes exclude each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeaseKind {
    Prune,
    Backup,
}

impl LeaseKind {
    pub fn name(self) -> &'static str {
        match self {
            LeaseKind::Prune => "prune",
            LeaseKind::Backup => "backup",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "prune" => Some(LeaseKind::Prune),
            "backup" => Some(LeaseKind::Backup),
            _ => None,
        }
    }
}

/// An object in `locks/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockName {
    /// `<kind>-<id>-<seq>`: generation `seq` of a lease (format-spec, "Prune, leases and
    /// condemned packs").
    Lease { kind: LeaseKind, id: LeaseId, seq: u64 },
    /// `clawback-test-<32 hex>`: the scratch object `clawback test` writes and removes.
    Probe([u8; 16]),
}

const PROBE_PREFIX: &str = "clawback-test-";

impl sealed::Sealed for LockName {}
impl Stored for LockName {
    const KIND: Kind = Kind::Lock;
    fn to_name(&self) -> String {
        match self {
            LockName::Lease { kind, id, seq } => format!("{}-{id}-{seq}", kind.name()),
            LockName::Probe(r) => format!("{PROBE_PREFIX}{}", hex::encode(r)),
        }
    }
    fn from_name(name: &str) -> Option<Self> {
        let parsed = if let Some(h) = name.strip_prefix(PROBE_PREFIX) {
            let mut r = [0u8; 16];
            hex::decode_to_slice(h, &mut r).ok()?;
            LockName::Probe(r)
        } else {
            let mut it = name.splitn(3, '-');
            let kind = LeaseKind::parse(it.next()?)?;
            let id = LeaseId::from_hex(it.next()?)?;
            let seq = it.next()?.parse().ok()?;
            LockName::Lease { kind, id, seq }
        };
        // One spelling per name (no `+1`, `01` or upper-case hex).
        (parsed.to_name() == name).then_some(parsed)
    }
}

/// A condemned record's object, `condemned/<id>-<stage>`: stage 0 (`final_stage` false) before
/// the live backup leases are listed, stage 1 after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CondemnedName {
    pub id: RecordId,
    pub final_stage: bool,
}

impl sealed::Sealed for CondemnedName {}
impl Stored for CondemnedName {
    const KIND: Kind = Kind::Condemned;
    fn to_name(&self) -> String {
        format!("{}-{}", self.id, u8::from(self.final_stage))
    }
    fn from_name(name: &str) -> Option<Self> {
        let (id, stage) = name.split_once('-')?;
        let final_stage = match stage {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        Some(CondemnedName { id: RecordId::from_hex(id)?, final_stage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_layouts_and_round_trip() {
        let pack = PackId([0xab; 32]);
        let n = ObjectName::of(&pack);
        assert_eq!((n.kind(), n.as_str()), (Kind::Pack, "ab".repeat(32).as_str()));
        assert_eq!(n.id::<PackId>(), Some(pack));
        assert_eq!(n.id::<IndexId>(), None, "another kind's id is not read from a pack's name");
        assert_eq!(ObjectName::config().as_str(), "config");
        let lease = LockName::Lease { kind: LeaseKind::Backup, id: LeaseId([0x01; 8]), seq: 7 };
        assert_eq!(lease.to_name(), "backup-0101010101010101-7");
        assert_eq!(LockName::from_name("backup-0101010101010101-7"), Some(lease));
        let probe = LockName::Probe([0xcd; 16]);
        assert_eq!(LockName::from_name(&probe.to_name()), Some(probe));
        let rec = CondemnedName { id: RecordId([0x02; 8]), final_stage: true };
        assert_eq!(rec.to_name(), "0202020202020202-1");
        assert_eq!(CondemnedName::from_name("0202020202020202-1"), Some(rec));
        assert_eq!(DictId::from_name(&"0f".repeat(32)), Some(DictId([0x0f; 32])));
    }

    /// What `check_name` refused at run time can no longer be written: a name is made only from a
    /// typed id, and no typed id parses from these.
    #[test]
    fn a_name_that_is_not_an_id_never_reaches_a_backend() {
        let bad = ["../../etc/passwd", "", "config", "ab", &"AB".repeat(32), &"ab".repeat(33), "a/b", "x y"];
        for s in bad {
            assert_eq!(PackId::from_name(s), None, "{s:?}");
            assert_eq!(IndexId::from_name(s), None, "{s:?}");
            assert_eq!(SnapshotId::from_name(s), None, "{s:?}");
            assert_eq!(KeyId::from_name(s), None, "{s:?}");
            assert_eq!(DictId::from_name(s), None, "{s:?}");
            assert_eq!(LockName::from_name(s), None, "{s:?}");
            assert_eq!(CondemnedName::from_name(s), None, "{s:?}");
        }
        for s in
            ["prune-0011-1", "backup-0011223344556677-+1", "backup-0011223344556677-01", "other-0011223344556677-1"]
        {
            assert_eq!(LockName::from_name(s), None, "{s:?}");
        }
        assert_eq!(LockName::from_name("backup-00112233445566FF-1"), None, "one spelling per name");
        assert_eq!(CondemnedName::from_name("0011223344556677-2"), None);
        // A backend's listing keeps only names that stay inside the kind's folder.
        assert!(ObjectName::listed(Kind::Index, "../x".into()).is_none());
        assert!(ObjectName::listed(Kind::Index, "a/b".into()).is_none());
        assert!(ObjectName::listed(Kind::Config, "other".into()).is_none());
        let foreign = ObjectName::listed(Kind::Index, "not-an-index".into()).unwrap();
        assert_eq!(foreign.id::<IndexId>(), None);
    }
}
