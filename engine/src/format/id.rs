//! Typed identifiers. `BlobId` names a blob by the keyed BLAKE3 of its plaintext; `ObjectId` (and
//! per kind `PackId`, `IndexId`, `SnapshotId`, `KeyId`, `DictId`) names a stored object by the
//! unkeyed BLAKE3 of its stored bytes, so damage is detectable without the key; they print as 64
//! lowercase hex digits. Leases and condemned records carry a random 8-byte id (16 hex digits).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex digits, as shown in listings.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        // The bytes are uniformly random: the first eight are hash enough (see `IdHasher`).
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                state.write_u64(u64::from_le_bytes(self.0[..8].try_into().unwrap()));
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        // Human-readable formats (JSON) get hex; binary formats (postcard) get the 32 raw bytes.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
                } else {
                    Ok(Self(<[u8; 32]>::deserialize(d)?))
                }
            }
        }
    };
}

id_type!(BlobId, "A blob of either type (file chunk or tree): keyed BLAKE3 of the plaintext.");
id_type!(TreeId, "A tree blob (one directory's listing): keyed BLAKE3 of the plaintext.");
id_type!(DataId, "A data blob (one chunk of file content): keyed BLAKE3 of the plaintext.");
id_type!(ObjectId, "Any stored object (pack, index, snapshot, key): BLAKE3 of its stored bytes.");
id_type!(PackId, "A pack file: BLAKE3 of its stored bytes.");
id_type!(IndexId, "An index file: BLAKE3 of its stored bytes.");
id_type!(SnapshotId, "A snapshot file: BLAKE3 of its stored bytes.");
id_type!(KeyId, "A key file: BLAKE3 of its stored bytes.");
id_type!(DictId, "A compression dictionary object: BLAKE3 of its stored bytes.");

// Every stored-object kind is named the same way: the unkeyed BLAKE3 of its stored bytes. Each kind
// may be viewed as a plain `ObjectId` where code handles "any stored object" (listings, name checks).
macro_rules! stored_object_id {
    ($($name:ident),*) => {$(
        impl $name {
            /// The id of a stored object of this kind: the unkeyed BLAKE3 of its bytes.
            pub fn of_bytes(bytes: &[u8]) -> Self {
                Self(*blake3::hash(bytes).as_bytes())
            }
        }
        impl From<$name> for ObjectId {
            fn from(id: $name) -> ObjectId {
                ObjectId(id.0)
            }
        }
    )*};
}
stored_object_id!(PackId, IndexId, SnapshotId, KeyId, DictId);

// Trees and data chunks are named alike and share one index, which maps a blob id to its place:
// each typed id is looked up there as its plain `BlobId`.
macro_rules! typed_blob_id {
    ($($name:ident),*) => {$(
        impl $name {
            /// The id under which the index and pack headers list this blob.
            pub fn blob(&self) -> BlobId {
                BlobId(self.0)
            }
        }
        impl From<$name> for BlobId {
            fn from(id: $name) -> BlobId {
                BlobId(id.0)
            }
        }
    )*};
}
typed_blob_id!(TreeId, DataId);

// Objects that are not content-addressed (leases, condemned records) carry a random 8-byte id,
// written as 16 lowercase hex digits.
macro_rules! random_id {
    ($($name:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
        pub struct $name(pub [u8; 8]);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                Self(rand::random())
            }
            /// Parses 16 lowercase hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 8];
                if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    )*};
}
random_id! {
    LeaseId, "A lease: the part of its object name that stays the same across refreshes.";
    RecordId, "A condemned record: shared by both stages of the record.";
}

impl ObjectId {
    /// The id of a stored object: the unkeyed BLAKE3 of its bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_serde_forms() {
        let id = BlobId([7u8; 32]);
        assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.short(), "07070707");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        let bin = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bin, vec![7u8; 32]);
        assert_eq!(postcard::from_bytes::<BlobId>(&bin).unwrap(), id);
        assert!(BlobId::from_hex("zz").is_none());
    }

    #[test]
    fn typed_blob_ids_keep_the_blob_encodings() {
        let tree = TreeId([3u8; 32]);
        let data = DataId([3u8; 32]);
        assert_eq!(tree.blob(), BlobId([3u8; 32]));
        assert_eq!(BlobId::from(data), tree.blob());
        assert_eq!(postcard::to_allocvec(&tree).unwrap(), postcard::to_allocvec(&tree.blob()).unwrap());
        assert_eq!(serde_json::to_string(&data).unwrap(), serde_json::to_string(&data.blob()).unwrap());
        assert_eq!(postcard::from_bytes::<TreeId>(&[3u8; 32]).unwrap(), tree);
    }

    #[test]
    fn stored_kinds_share_the_naming_and_encodings() {
        let bytes = b"stored object";
        let pack = PackId::of_bytes(bytes);
        assert_eq!(pack.0, ObjectId::of_bytes(bytes).0);
        assert_eq!(ObjectId::from(pack), ObjectId::of_bytes(bytes));
        assert_eq!(SnapshotId::of_bytes(bytes).to_hex(), pack.to_hex());
        assert_eq!(serde_json::to_string(&IndexId(pack.0)).unwrap(), serde_json::to_string(&pack).unwrap());
        assert_eq!(postcard::to_allocvec(&KeyId(pack.0)).unwrap(), pack.0.to_vec());
        assert_eq!(PackId::from_hex(&pack.to_hex()), Some(pack));
    }
}

/// Hashing for maps keyed by ids: the ids are already uniformly random (BLAKE3 output), so their
/// first eight bytes are a perfect hash and SipHash would only cost time.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by ids; a simple FNV-1a keeps the hasher correct for anything else.
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100000001b3);
        }
    }
}

pub type BuildIdHasher = std::hash::BuildHasherDefault<IdHasher>;
/// A map keyed by ids.
pub type IdMap<K, V> = std::collections::HashMap<K, V, BuildIdHasher>;
/// A set of ids.
pub type IdSet<K> = std::collections::HashSet<K, BuildIdHasher>;
