//! Index files list packs and the blobs in them; written after their packs, never changed, only
//! superseded. The in-memory `Index` maps every blob id to its location, for dedup and restore.

use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::canonical;
use crate::format::codec;
use crate::format::crypto::{Keys, AAD_INDEX};
use crate::format::id::{BlobId, IdMap, IndexId, PackId};
use crate::format::pack::{PackEntry, MAX_PACK_LEN};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IndexPack {
    pub id: PackId,
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IndexFile {
    pub version: u8,
    /// Index files whose content this one includes; readers may ignore them once this one is read.
    pub supersedes: Vec<IndexId>,
    pub packs: Vec<IndexPack>,
}

const MAX_INDEX_PLAIN: usize = 1 << 30;

impl IndexFile {
    pub fn encode(&self, keys: &Keys) -> Vec<u8> {
        let plain = postcard::to_allocvec(self).expect("serialize index");
        codec::seal_object(keys, &[AAD_INDEX], &plain, codec::METADATA_LEVEL)
    }

    pub fn decode(keys: &Keys, id: &str, sealed: &[u8]) -> Result<Self> {
        let plain = codec::open_object(keys, &[AAD_INDEX], sealed, "index", id, MAX_INDEX_PLAIN)?;
        // The first byte is `version`: a later version is named as such, not as bad encoding.
        if let Some(&v) = plain.first().filter(|&&v| v != 1) {
            return Err(Error::corrupt("index", id, format!("unsupported version {v}")));
        }
        let f: IndexFile = canonical::postcard(&plain).map_err(|e| Error::corrupt("index", id, e))?;
        if let Some(p) = f.packs.iter().find(|p| p.size > MAX_PACK_LEN) {
            let why = format!("it lists pack {} as {} bytes, larger than the 2 GiB a pack may be", p.id, p.size);
            return Err(Error::corrupt("index", id, why));
        }
        Ok(f)
    }
}

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLoc {
    pub pack: u32,
    pub ty: BlobType,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

/// The in-memory blob index: every blob's pack and position.
#[derive(Default)]
pub struct Index {
    packs: Vec<PackId>,
    pack_sizes: Vec<u64>,
    pack_pos: IdMap<PackId, u32>,
    blobs: IdMap<BlobId, BlobLoc>,
    /// Packs a prune has condemned (by position): still readable, never reused for dedup.
    condemned: Vec<bool>,
    /// The index files and condemned records this index was loaded from.
    source: Vec<String>,
}

impl Index {
    pub fn add_pack(&mut self, id: PackId, size: u64, entries: &[PackEntry]) {
        let p = self.insert_pack(id, size);
        self.blobs.reserve(entries.len());
        for e in entries {
            let loc = BlobLoc { pack: p, ty: e.ty, offset: e.offset, length: e.length, raw_length: e.raw_length };
            self.insert_blob(e.id, loc);
        }
    }

    /// Registers a pack (if new) and returns its position.
    pub fn insert_pack(&mut self, id: PackId, size: u64) -> u32 {
        if let Some(&p) = self.pack_pos.get(&id) {
            return p;
        }
        let p = self.packs.len() as u32;
        if !self.condemned.is_empty() {
            self.condemned.push(false);
        }
        self.packs.push(id);
        self.pack_sizes.push(size);
        self.pack_pos.insert(id, p);
        p
    }

    /// Records a blob's location unless the blob is already known (in a pack that is not condemned).
    pub fn insert_blob(&mut self, id: BlobId, loc: BlobLoc) {
        match self.blobs.entry(id) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(loc);
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let condemned = |p: u32| self.condemned.get(p as usize) == Some(&true);
                if condemned(o.get().pack) && !condemned(loc.pack) {
                    o.insert(loc);
                }
            }
        }
    }

    /// Marks these packs condemned (see format-spec, "Prune"): their blobs stay readable but
    /// `contains` no longer offers them for dedup, so writers store such blobs anew.
    pub fn set_condemned(&mut self, packs: &crate::format::id::IdSet<PackId>) {
        self.condemned = self.packs.iter().map(|p| packs.contains(p)).collect();
    }

    pub fn set_source(&mut self, names: Vec<String>) {
        self.source = names;
    }

    pub fn source(&self) -> &[String] {
        &self.source
    }

    pub fn is_condemned(&self, pack: u32) -> bool {
        self.condemned.get(pack as usize) == Some(&true)
    }

    pub fn reserve(&mut self, n: usize) {
        self.blobs.reserve(n);
    }

    pub fn add_file(&mut self, f: &IndexFile) {
        for p in &f.packs {
            self.add_pack(p.id, p.size, &p.blobs);
        }
    }

    pub fn get(&self, id: &BlobId) -> Option<BlobLoc> {
        self.blobs.get(id).copied()
    }

    /// Whether a blob may be reused by a writer (dedup): indexed in a pack that is not condemned.
    /// Readers use `get`, which also finds blobs in condemned packs.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.blobs.get(id).is_some_and(|l| !self.is_condemned(l.pack))
    }

    pub fn pack_id(&self, p: u32) -> PackId {
        self.packs[p as usize]
    }

    pub fn pack_size(&self, p: u32) -> u64 {
        self.pack_sizes[p as usize]
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    pub fn blobs(&self) -> impl Iterator<Item = (&BlobId, &BlobLoc)> {
        self.blobs.iter()
    }

    pub fn packs(&self) -> impl Iterator<Item = (u32, &PackId, u64)> {
        self.packs.iter().zip(&self.pack_sizes).enumerate().map(|(i, (p, s))| (i as u32, p, *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;

    #[test]
    fn index_file_round_trip_and_lookup() {
        let keys = Keys::derive(&MasterKey([4; 32]));
        let e = PackEntry { ty: BlobType::Tree, id: BlobId([1; 32]), offset: 0, length: 50, raw_length: 80 };
        let f = IndexFile {
            version: 1,
            supersedes: vec![],
            packs: vec![IndexPack { id: crate::format::id::PackId([2; 32]), size: 100, blobs: vec![e] }],
        };
        let sealed = f.encode(&keys);
        let g = IndexFile::decode(&keys, "t", &sealed).unwrap();
        assert_eq!(f, g);
        let mut idx = Index::default();
        idx.add_file(&g);
        let loc = idx.get(&BlobId([1; 32])).unwrap();
        assert_eq!(idx.pack_id(loc.pack), crate::format::id::PackId([2; 32]));
        assert_eq!(loc.raw_length, 80);
        assert!(!idx.contains(&BlobId([3; 32])));
        assert!(IndexFile::decode(&keys, "t", &sealed[1..]).is_err());
    }

    #[test]
    fn non_canonical_or_oversized_index_files_are_refused() {
        let keys = Keys::derive(&MasterKey([4; 32]));
        let pack = |size: u64| IndexPack { id: crate::format::id::PackId([2; 32]), size, blobs: vec![] };
        let f = IndexFile { version: 1, supersedes: vec![], packs: vec![pack(100)] };
        let plain = postcard::to_allocvec(&f).unwrap();
        let seal = |p: &[u8]| codec::seal_object(&keys, &[AAD_INDEX], p, 0);
        assert_eq!(IndexFile::decode(&keys, "t", &seal(&plain)).unwrap(), f);
        let e = IndexFile::decode(&keys, "t", &seal(&[&plain[..], &[0]].concat())).unwrap_err().to_string();
        assert!(e.contains("index t is damaged") && e.contains("bytes after"), "{e}");
        // supersedes: an empty list as 80 00 instead of 00.
        assert_eq!(plain[1], 0);
        let overlong = [&plain[..1], &[0x80, 0x00], &plain[2..]].concat();
        let e = IndexFile::decode(&keys, "t", &seal(&overlong)).unwrap_err().to_string();
        assert!(e.contains("not in canonical form"), "{e}");

        let big = IndexFile { packs: vec![pack(MAX_PACK_LEN + 1)], ..f.clone() };
        let e = IndexFile::decode(&keys, "t", &big.encode(&keys)).unwrap_err().to_string();
        assert!(e.contains("larger than the 2 GiB"), "{e}");
        let max = IndexFile { packs: vec![pack(MAX_PACK_LEN)], ..f };
        assert!(IndexFile::decode(&keys, "t", &max.encode(&keys)).is_ok());
    }
}
