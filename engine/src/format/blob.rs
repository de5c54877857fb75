//! Blobs: file chunks (`Data`) and directory trees (`Tree`). A blob's id is the keyed BLAKE3 of its
//! plaintext; it is stored as a codec envelope sealed with associated data
//! `clawback/v1/blob ‖ type ‖ id`, so a stored blob cannot be passed off as another.

use crate::error::{Error, Result};
use crate::format::codec;
use crate::format::crypto::{Keys, AAD_BLOB, NONCE_LEN, OVERHEAD};
use crate::format::id::BlobId;
use serde::{Deserialize, Serialize};

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
    let mut buf = Vec::with_capacity(plain.len() + OVERHEAD + 16);
    buf.resize(NONCE_LEN, 0);
    codec::encode_payload(plain, level, &mut buf);
    keys.seal_in_place(&[AAD_BLOB, &[ty as u8], &id.0], &mut buf);
    buf
}

/// Decrypts one blob and checks that its plaintext hashes to `id`.
pub fn decode(keys: &Keys, ty: BlobType, id: &BlobId, stored: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    let payload = keys
        .open(&[AAD_BLOB, &[ty as u8], &id.0], stored)
        .ok_or_else(|| Error::corrupt("blob", id, "authentication failed"))?;
    let plain =
        codec::decode_payload(&payload, raw_len.min(MAX_BLOB_LEN)).map_err(|e| Error::corrupt("blob", id, e))?;
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
}
