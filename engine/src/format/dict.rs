//! Compression dictionaries (`dicts/<id>`, format-spec §16): zstd dictionaries trained on a
//! repository's own content, so small blobs compress as if they had the context a large one has.
//! This module owns the object (sealed, named by its hash, checked when read) and the training.

use crate::error::{Error, Result};
use crate::format::codec;
use crate::format::crypto::Keys;
use crate::format::id::{DictId, ObjectId};
use zstd::zstd_safe::{CDict, DDict};

/// Associated data of a dictionary object.
pub const AAD_DICT: &[u8] = b"clawback/v1/dict";
/// Largest dictionary plaintext a reader accepts.
pub const MAX_DICT_LEN: usize = 1 << 20;
/// The first four bytes of every zstd dictionary (its magic number, little-endian 0xEC30A437).
pub const DICT_MAGIC: [u8; 4] = [0x37, 0xa4, 0x30, 0xec];
/// Size of the dictionaries writers train (zstd's own default).
pub const TRAINED_SIZE: usize = 112 << 10;

/// A dictionary read from the repository (or just trained), ready to compress and decompress with.
pub struct Dict {
    /// The object's name (hex of the BLAKE3 of its stored bytes).
    pub name: String,
    /// The dictionary ID zstd writes into the frames it compresses with it.
    pub zstd_id: u32,
    bytes: Vec<u8>,
    ddict: DDict<'static>,
    /// Prepared for compression at the level it was first asked for (a repository has one level).
    cdict: std::sync::OnceLock<(i32, CDict<'static>)>,
}

impl std::fmt::Debug for Dict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dict({}, zstd id {}, {} bytes)",
            &self.name[..12.min(self.name.len())],
            self.zstd_id,
            self.bytes.len()
        )
    }
}

impl Dict {
    /// Checks a dictionary plaintext: a zstd dictionary (magic, a non-zero ID, tables zstd loads)
    /// of at most [`MAX_DICT_LEN`] bytes.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> std::result::Result<Dict, String> {
        if bytes.len() > MAX_DICT_LEN {
            return Err(format!("dictionary of {} bytes, more than {MAX_DICT_LEN}", bytes.len()));
        }
        if bytes.len() < 8 || bytes[..4] != DICT_MAGIC {
            return Err("not a zstd dictionary (bad magic number)".into());
        }
        let zstd_id = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        if zstd_id == 0 {
            return Err("dictionary ID 0 (reserved for no dictionary)".into());
        }
        let ddict = DDict::try_create(&bytes).ok_or("zstd cannot load the dictionary")?;
        if ddict.get_dict_id().map(|i| i.get()) != Some(zstd_id) {
            return Err("zstd cannot load the dictionary's tables".into());
        }
        Ok(Dict { name, zstd_id, bytes, ddict, cdict: std::sync::OnceLock::new() })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn ddict(&self) -> &DDict<'static> {
        &self.ddict
    }

    /// The dictionary prepared for compressing at `level`, or `None` when it was prepared for
    /// another level already (the caller then compresses without it) or zstd refuses it.
    pub fn cdict(&self, level: i32) -> Option<&CDict<'static>> {
        let (l, c) = self.cdict.get_or_init(|| {
            (level, CDict::try_create(&self.bytes, level).unwrap_or_else(|| CDict::create(&[], level)))
        });
        (*l == level && c.get_dict_id().is_some()).then_some(c)
    }

    /// Seals `bytes` (a zstd dictionary) as a dictionary object; returns its id and stored bytes.
    pub fn seal(keys: &Keys, bytes: &[u8]) -> (DictId, Vec<u8>) {
        let sealed = codec::seal_object(keys, &[AAD_DICT], bytes, codec::METADATA_LEVEL);
        (DictId::of_bytes(&sealed), sealed)
    }

    /// Opens a dictionary object stored under `name`, checking its name, seal and content.
    pub fn open(keys: &Keys, name: &str, sealed: &[u8]) -> Result<Dict> {
        if ObjectId::of_bytes(sealed).to_hex() != name {
            return Err(Error::corrupt("dictionary", name, "content does not match its name"));
        }
        let plain = codec::open_object(keys, &[AAD_DICT], sealed, "dictionary", name, MAX_DICT_LEN)?;
        Dict::from_bytes(name.to_string(), plain).map_err(|e| Error::corrupt("dictionary", name, e))
    }
}

/// Trains a dictionary of at most `size` bytes on `samples`; `None` when zstd cannot (too few or
/// too uniform samples).
pub fn train(samples: &[&[u8]], size: usize) -> Option<Vec<u8>> {
    let d = zstd::dict::from_samples(samples, size).ok()?;
    (d.len() >= 8 && d[..4] == DICT_MAGIC && d[4..8] != [0; 4]).then_some(d)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;

    pub(crate) fn samples() -> Vec<Vec<u8>> {
        (0..400u32)
            .map(|i| {
                format!(
                    "{{\"role\":\"assistant\",\"turn\":{i},\"content\":\"note {} about the garden, the {} and the weather\"}}\n",
                    i * 7919 % 1000,
                    ["roses", "tulips", "ferns", "moss"][i as usize % 4]
                )
                .repeat(1 + i as usize % 5)
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn a_trained_dictionary_round_trips_as_an_object_and_is_checked() {
        let keys = Keys::derive(&MasterKey([9; 32]));
        let s = samples();
        let refs: Vec<&[u8]> = s.iter().map(|v| v.as_slice()).collect();
        let bytes = train(&refs, 4096).expect("trains");
        let (id, sealed) = Dict::seal(&keys, &bytes);
        let name = id.to_hex();
        let d = Dict::open(&keys, &name, &sealed).unwrap();
        assert_eq!(d.bytes(), &bytes[..]);
        assert!(d.zstd_id != 0);
        assert!(d.cdict(3).is_some() && d.cdict(5).is_none(), "prepared for one level");
        assert!(Dict::open(&keys, &"0".repeat(64), &sealed).is_err(), "name checked");
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        let (n, s2) = Dict::seal(&keys, &bad);
        assert!(Dict::open(&keys, &n.to_hex(), &s2).unwrap_err().to_string().contains("magic"));
        let mut zero = bytes.clone();
        zero[4..8].copy_from_slice(&[0; 4]);
        assert!(Dict::from_bytes(String::new(), zero).is_err());
    }
}
