//! Blobs: file chunks (`Data`) and directory trees (`Tree`). A blob's id is the keyed BLAKE3 of its
//! plaintext; it is stored as a codec envelope sealed with associated data
//! `clawback/v1/blob ‖ type ‖ id`, so a stored blob cannot be passed off as another. A blob may be
//! compressed with one of the repository's dictionaries (`format::dict`); decoding asks a
//! [`DictSource`] for it.

use crate::error::{Error, Result};
use crate::format::codec;
use crate::format::crypto::{Keys, AAD_BLOB, NONCE_LEN, OVERHEAD};
use crate::format::dict::Dict;
use crate::format::id::BlobId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where decoding finds the dictionaries a blob may name.
pub trait DictSource {
    /// The repository's dictionaries whose zstd dictionary ID is `zstd_id` (normally one; none
    /// when the repository has no such dictionary).
    fn dicts_for(&self, zstd_id: u32) -> Result<Vec<Arc<Dict>>>;
}

/// No dictionaries: a blob that needs one does not decode.
pub struct NoDicts;

impl DictSource for NoDicts {
    fn dicts_for(&self, _: u32) -> Result<Vec<Arc<Dict>>> {
        Ok(Vec::new())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[repr(u8)]
pub enum BlobType {
    Data = 0,
    Tree = 1,
}

impl BlobType {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(BlobType::Data),
            1 => Some(BlobType::Tree),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        }
    }
}

/// Largest plaintext blob accepted when reading (a tree of ~200k entries fits).
pub const MAX_BLOB_LEN: usize = 256 << 20;

/// Encrypts one blob. Returns the stored bytes.
pub fn encode(keys: &Keys, ty: BlobType, id: &BlobId, plain: &[u8], level: i32) -> Vec<u8> {
    encode_with(keys, ty, id, plain, level, None)
}

/// Encrypts one blob, compressed with `dict` when that pays. Returns the stored bytes.
pub fn encode_with(keys: &Keys, ty: BlobType, id: &BlobId, plain: &[u8], level: i32, dict: Option<&Dict>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(plain.len() + OVERHEAD + 16);
    buf.resize(NONCE_LEN, 0);
    codec::encode_payload_with(plain, level, dict, &mut buf);
    keys.seal_in_place(&[AAD_BLOB, &[ty as u8], &id.0], &mut buf);
    buf
}

/// Decrypts one blob and checks that its plaintext hashes to `id`. A blob compressed with a
/// dictionary does not decode here: see [`decode_with`].
pub fn decode(keys: &Keys, ty: BlobType, id: &BlobId, stored: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decode_with(keys, &NoDicts, ty, id, stored, raw_len)
}

/// Decrypts one blob, with the dictionary it names taken from `dicts`, and checks that its
/// plaintext hashes to `id`.
pub fn decode_with(
    keys: &Keys,
    dicts: &dyn DictSource,
    ty: BlobType,
    id: &BlobId,
    stored: &[u8],
    raw_len: usize,
) -> Result<Vec<u8>> {
    let payload = keys
        .open(&[AAD_BLOB, &[ty as u8], &id.0], stored)
        .ok_or_else(|| Error::corrupt("blob", id, "authentication failed"))?;
    let limit = raw_len.min(MAX_BLOB_LEN);
    if payload.first() == Some(&codec::FLAG_DICT) {
        return decode_dict(keys, dicts, id, &payload, raw_len, limit);
    }
    let plain = codec::decode_payload(&payload, limit).map_err(|e| Error::corrupt("blob", id, e))?;
    check_plain(keys, id, plain, raw_len)
}

/// A flag-2 payload: each dictionary with the ID its frame names is tried (writers never store
/// two with one ID; if some did, only the right one yields the blob's id).
fn decode_dict(
    keys: &Keys,
    dicts: &dyn DictSource,
    id: &BlobId,
    payload: &[u8],
    raw_len: usize,
    limit: usize,
) -> Result<Vec<u8>> {
    let (zstd_id, _) = codec::dict_frame(payload, limit).map_err(|e| Error::corrupt("blob", id, e))?;
    let candidates = dicts.dicts_for(zstd_id)?;
    if candidates.is_empty() {
        return Err(Error::corrupt(
            "blob",
            id,
            format!("compressed with dictionary {zstd_id}, which the repository does not hold (dicts/)"),
        ));
    }
    let mut last = None;
    for d in &candidates {
        match codec::decode_dict_payload(payload, limit, d) {
            Ok(plain) => match check_plain(keys, id, plain, raw_len) {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(Error::corrupt("blob", id, e)),
        }
    }
    Err(last.expect("at least one candidate"))
}

fn check_plain(keys: &Keys, id: &BlobId, plain: Vec<u8>, raw_len: usize) -> Result<Vec<u8>> {
    if plain.len() != raw_len {
        return Err(Error::corrupt("blob", id, "length differs from the index"));
    }
    if keys.blob_id(&plain) != *id {
        return Err(Error::corrupt("blob", id, "content does not match its id"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;

    #[test]
    fn blob_round_trip_and_swap_detection() {
        let keys = Keys::derive(&MasterKey([5; 32]));
        let a = b"chunk a".repeat(100);
        let b = b"chunk b".repeat(100);
        let ia = keys.blob_id(&a);
        let ib = keys.blob_id(&b);
        let sa = encode(&keys, BlobType::Data, &ia, &a, 3);
        assert_eq!(decode(&keys, BlobType::Data, &ia, &sa, a.len()).unwrap(), a);
        assert!(decode(&keys, BlobType::Data, &ib, &sa, a.len()).is_err(), "swapped id");
        assert!(decode(&keys, BlobType::Tree, &ia, &sa, a.len()).is_err(), "swapped type");
        assert!(decode(&keys, BlobType::Data, &ia, &sa, a.len() + 1).is_err(), "wrong length");
    }

    struct One(Arc<Dict>);
    impl DictSource for One {
        fn dicts_for(&self, id: u32) -> Result<Vec<Arc<Dict>>> {
            Ok(if id == self.0.zstd_id { vec![self.0.clone()] } else { vec![] })
        }
    }

    #[test]
    fn a_blob_compressed_with_a_dictionary_needs_it() {
        let keys = Keys::derive(&MasterKey([5; 32]));
        let s = crate::format::dict::tests::samples();
        let refs: Vec<&[u8]> = s.iter().map(|v| v.as_slice()).collect();
        let d = Arc::new(Dict::from_bytes("d".into(), crate::format::dict::train(&refs, 4096).unwrap()).unwrap());
        let plain = s[7].clone();
        let id = keys.blob_id(&plain);
        let stored = encode_with(&keys, BlobType::Data, &id, &plain, 3, Some(&d));
        assert_eq!(decode_with(&keys, &One(d.clone()), BlobType::Data, &id, &stored, plain.len()).unwrap(), plain);
        let e = decode(&keys, BlobType::Data, &id, &stored, plain.len()).unwrap_err().to_string();
        assert!(e.contains(&format!("dictionary {}, which the repository does not hold", d.zstd_id)), "{e}");
        let other = keys.blob_id(b"another");
        assert!(decode_with(&keys, &One(d), BlobType::Data, &other, &stored, plain.len()).is_err(), "id checked");
    }
}
