//! Index files list packs and the blobs in them; written after their packs, never changed, only
//! superseded. `Index` finds every blob's location, for dedup and restore, through the blob table
//! of the local cache and what this process added since.

use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::canonical;
use crate::format::codec;
use crate::format::crypto::{Keys, AAD_INDEX};
use crate::format::id::{BlobId, IdMap, IndexId, PackId};
use crate::format::pack::{PackEntry, MAX_PACK_LEN};
use crate::repo::blobtable::{BlobTable, PackList, Record};
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
        Self::seal(keys, &self.plain())
    }

    /// The file's plain encoding (what the local cache keeps).
    pub fn plain(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("serialize index")
    }

    /// The stored object for a plain encoding.
    pub fn seal(keys: &Keys, plain: &[u8]) -> Vec<u8> {
        codec::seal_object(keys, &[AAD_INDEX], plain, codec::METADATA_LEVEL)
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

/// The blob index: every blob's pack and position. The repository's index files are in the blob
/// table ([`crate::repo::blobtable`], on disk, found with a positioned read); what this process
/// added since it was loaded (index files it wrote) is in an overlay in memory, moved to a run of
/// the table of its own when it grows past [`OVERLAY_MAX`] blobs. Packs are held in memory (a few
/// per gigabyte stored).
#[derive(Default)]
pub struct Index {
    packs: PackList,
    table: Option<BlobTable>,
    overlay: IdMap<BlobId, BlobLoc>,
    /// Packs a prune has condemned (by position): still readable, never reused for dedup.
    condemned: Vec<bool>,
    any_condemned: bool,
    /// The index files and condemned records this index was loaded from.
    source: Vec<String>,
}

/// Blobs the overlay holds at most before they move to a run of the table: 7/8 of 32,768, the
/// most a map of 32,768 slots holds before it doubles (1.7 MiB; at 64 Ki blobs it grew to 131,072
/// slots, 10 MiB while it moved).
pub const OVERLAY_MAX: usize = 28 * 1024;

impl Index {
    /// An index over a loaded blob table and the packs its records point into.
    pub fn with_table(table: BlobTable, packs: PackList) -> Index {
        Index { packs, table: Some(table), ..Index::default() }
    }

    /// Takes `table` (the blob table with the index files that were left out of this one's, see
    /// [`BlobTable::open_kept`]) and its packs in place of this index's table, keeping what this
    /// process added: the overlay and its own runs, their pack positions mapped into `packs`.
    /// Condemned marks and the source are reset: the caller sets them for the new table.
    pub fn absorb(&mut self, table: BlobTable, packs: PackList) {
        let old = std::mem::replace(self, Index { packs, table: Some(table), ..Index::default() });
        let moved = |me: &mut Index, id: BlobId, l: BlobLoc| {
            let pack = me.insert_pack(old.packs.id(l.pack), old.packs.size(l.pack));
            me.insert_blob(id, BlobLoc { pack, ..l });
        };
        if let Some(t) = &old.table {
            for r in t.private_records() {
                moved(self, r.id, r.loc());
            }
        }
        for (id, l) in &old.overlay {
            moved(self, *id, *l);
        }
        if self.overlay.len() > OVERLAY_MAX {
            self.spill_overlay();
        }
    }

    pub fn add_pack(&mut self, id: PackId, size: u64, entries: &[PackEntry]) {
        let p = self.insert_pack(id, size);
        for e in entries {
            let loc = BlobLoc { pack: p, ty: e.ty, offset: e.offset, length: e.length, raw_length: e.raw_length };
            self.insert_blob(e.id, loc);
            if self.overlay.len() >= OVERLAY_MAX {
                self.spill_overlay();
            }
        }
    }

    /// Registers a pack (if new) and returns its position.
    pub fn insert_pack(&mut self, id: PackId, size: u64) -> u32 {
        let p = self.packs.insert(id, size);
        if self.condemned.len() < self.packs.len() && !self.condemned.is_empty() {
            self.condemned.resize(self.packs.len(), false);
        }
        p
    }

    /// Records a blob's location unless the blob is already known (in a pack that is not condemned).
    /// (The overlay does not look in the table: a blob in both is found at either place.)
    pub fn insert_blob(&mut self, id: BlobId, loc: BlobLoc) {
        let condemned = |p: u32| self.condemned.get(p as usize) == Some(&true);
        match self.overlay.entry(id) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(loc);
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if condemned(o.get().pack) && !condemned(loc.pack) {
                    o.insert(loc);
                }
            }
        }
    }

    /// Marks these packs condemned (see format-spec, "Prune"): their blobs stay readable but
    /// `contains` no longer offers them for dedup, so writers store such blobs anew.
    pub fn set_condemned(&mut self, packs: &crate::format::id::IdSet<PackId>) {
        self.condemned = self.packs.iter().map(|(_, p, _)| packs.contains(p)).collect();
        self.any_condemned = self.condemned.contains(&true);
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

    /// Whether a backup of the set `key` (host and paths) must look up the blobs it reuses from its
    /// parent snapshot. It need not when no pack is condemned and the index has only grown since a
    /// backup of the set last did (see [`BlobTable::needs_check`]): every blob a snapshot names is
    /// then still indexed (format-spec, "Prune": packs leave the index through condemned records).
    pub fn reuse_needs_check(&self, key: &str) -> bool {
        self.any_condemned || self.table.as_ref().is_none_or(|t| t.needs_check(key))
    }

    /// Notes that a backup of the set `key` looked up the blobs it reused.
    pub fn reuse_checked(&self, key: &str) -> crate::error::Result<()> {
        match &self.table {
            Some(t) if !self.any_condemned => t.reuse_checked(key),
            _ => Ok(()),
        }
    }

    pub fn add_file(&mut self, f: &IndexFile) {
        for p in &f.packs {
            self.add_pack(p.id, p.size, &p.blobs);
        }
        if self.overlay.len() > OVERLAY_MAX {
            self.spill_overlay();
        }
    }

    /// Moves the overlay into a run of the table of this process's own (in a temporary file; a
    /// temporary table when the index has none, as in an empty repository's first backup): memory
    /// stays bounded however much one process writes (115,000 blobs in one overlay took 20 MiB).
    fn spill_overlay(&mut self) {
        let packs = self.packs.len();
        let t = self.table.get_or_insert_with(BlobTable::temporary);
        let records: Vec<Record> = self.overlay.iter().map(|(id, l)| Record::new(*id, *l)).collect();
        // Kept in memory if the temporary file cannot be written: only memory is lost.
        if t.add_private(records, packs).is_ok() {
            self.overlay = IdMap::default();
        }
    }

    /// Where a blob is stored: a location in a pack that is not condemned if there is one.
    pub fn get(&self, id: &BlobId) -> Option<BlobLoc> {
        let mut first = None;
        if let Some(&l) = self.overlay.get(id) {
            if !self.is_condemned(l.pack) {
                return Some(l);
            }
            first = Some(l);
        }
        let mut live = None;
        if let Some(t) = &self.table {
            t.find(id, self.packs.len(), |r| {
                let l = r.loc();
                if live.is_none() && !self.is_condemned(l.pack) {
                    live = Some(l);
                }
                first.get_or_insert(l);
            });
        }
        live.or(first)
    }

    /// Whether a blob may be reused by a writer (dedup): indexed in a pack that is not condemned.
    /// Readers use `get`, which also finds blobs in condemned packs.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.get(id).is_some_and(|l| !self.is_condemned(l.pack))
    }

    pub fn pack_id(&self, p: u32) -> PackId {
        self.packs.id(p)
    }

    pub fn pack_size(&self, p: u32) -> u64 {
        self.packs.size(p)
    }

    /// Distinct blobs indexed (a pass over the whole table).
    pub fn blob_count(&self) -> usize {
        self.blobs().count()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    /// Every blob once, sorted by id, with the location `get` gives it: a pass over the table,
    /// merged with the overlay.
    pub fn blobs(&self) -> impl Iterator<Item = (BlobId, BlobLoc)> + '_ {
        let mut mine: Vec<Record> = self.overlay.iter().map(|(id, l)| Record::new(*id, *l)).collect();
        mine.sort_unstable();
        let table = self.table.iter().flat_map(|t| t.iter());
        // Overlay first among equal ids, as `get` prefers it.
        let mut merged = MergeBy { a: mine.into_iter().peekable(), b: table.peekable() }.peekable();
        std::iter::from_fn(move || {
            let r = merged.next()?;
            let (first, mut live) = (r.loc(), (!self.is_condemned(r.pack)).then(|| r.loc()));
            while let Some(n) = merged.next_if(|n| n.id == r.id) {
                if live.is_none() && !self.is_condemned(n.pack) {
                    live = Some(n.loc());
                }
            }
            Some((r.id, live.unwrap_or(first)))
        })
    }

    pub fn packs(&self) -> impl Iterator<Item = (u32, &PackId, u64)> {
        self.packs.iter()
    }
}

/// Two id-sorted record streams as one (on equal ids, `a`'s first).
struct MergeBy<A: Iterator<Item = Record>, B: Iterator<Item = Record>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = Record>, B: Iterator<Item = Record>> Iterator for MergeBy<A, B> {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y.id < x.id => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
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

    fn entry(n: u8, offset: u32) -> PackEntry {
        PackEntry { ty: BlobType::Data, id: BlobId([n; 32]), offset, length: 5, raw_length: 7 }
    }

    fn pack(n: u8, blobs: Vec<PackEntry>) -> IndexPack {
        IndexPack { id: PackId([n; 32]), size: 100, blobs }
    }

    /// An index over a table built from `files` (kept in `dir`), as `Repository` loads it.
    fn loaded(dir: &std::path::Path, files: &[IndexFile]) -> Index {
        let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}")).collect();
        let mut fetch = |want: &[&str], each: &mut dyn FnMut(IndexFile) -> crate::error::Result<()>| {
            for w in want {
                each(files[w[1..].parse::<usize>().unwrap()].clone())?;
            }
            Ok(())
        };
        let (t, p) = BlobTable::load(Some(dir), &names, &mut fetch).unwrap();
        Index::with_table(t, p)
    }

    #[test]
    fn condemned_packs_are_read_but_not_offered_and_live_copies_are_preferred() {
        let d = tempfile::tempdir().unwrap();
        // Blob 1 in pack 10 (to be condemned) and, through a superseding file, pack 11 too; blob 2
        // only in pack 10; blob 3 listed twice in the same pack by two files.
        let a = IndexFile {
            version: 1,
            supersedes: vec![],
            packs: vec![pack(10, vec![entry(1, 0), entry(2, 5), entry(3, 9)])],
        };
        let b = IndexFile {
            version: 1,
            supersedes: vec![],
            packs: vec![pack(11, vec![entry(1, 50)]), pack(10, vec![entry(1, 0), entry(2, 5), entry(3, 9)])],
        };
        let mut idx = loaded(d.path(), &[a, b]);
        assert_eq!(idx.pack_count(), 2);
        idx.set_condemned(&[PackId([10; 32])].into_iter().collect());
        let p = |idx: &Index, l: BlobLoc| idx.pack_id(l.pack);
        assert_eq!(p(&idx, idx.get(&BlobId([1; 32])).unwrap()), PackId([11; 32]), "the live copy");
        assert!(idx.contains(&BlobId([1; 32])));
        assert_eq!(p(&idx, idx.get(&BlobId([2; 32])).unwrap()), PackId([10; 32]), "still readable");
        assert!(!idx.contains(&BlobId([2; 32])), "not offered for reuse");
        assert!(idx.reuse_needs_check("h"), "packs are condemned");
        let all: Vec<(BlobId, PackId)> = idx.blobs().map(|(id, l)| (id, idx.pack_id(l.pack))).collect();
        assert_eq!(
            all,
            vec![
                (BlobId([1; 32]), PackId([11; 32])),
                (BlobId([2; 32]), PackId([10; 32])),
                (BlobId([3; 32]), PackId([10; 32]))
            ]
        );
        assert_eq!(idx.blob_count(), 3);

        // Blob 2 stored anew (as writers do for condemned blobs) is offered from its new pack.
        idx.add_file(&IndexFile {
            version: 1,
            supersedes: vec![],
            packs: vec![pack(12, vec![entry(2, 0), entry(4, 5)])],
        });
        assert!(idx.contains(&BlobId([2; 32])) && idx.contains(&BlobId([4; 32])));
        assert_eq!(p(&idx, idx.get(&BlobId([2; 32])).unwrap()), PackId([12; 32]));
        assert_eq!(idx.blobs().map(|(_, l)| idx.pack_id(l.pack)).collect::<Vec<_>>()[1], PackId([12; 32]));
        assert_eq!(idx.blob_count(), 4);
    }

    #[test]
    fn a_large_overlay_moves_to_the_table_and_stays_found() {
        let d = tempfile::tempdir().unwrap();
        // A loaded index, and one with no table yet (an empty repository's first backup).
        for mut idx in [loaded(d.path(), &[]), Index::default()] {
            let id = |i: u32| BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes());
            let n = OVERLAY_MAX as u32 + 10;
            let blobs = (0..n)
                .map(|i| PackEntry { ty: BlobType::Tree, id: id(i), offset: i, length: 1, raw_length: 1 })
                .collect();
            idx.add_file(&IndexFile { version: 1, supersedes: vec![], packs: vec![pack(1, blobs)] });
            assert_eq!(idx.overlay.len(), 10, "moved to a run at OVERLAY_MAX");
            for i in (0..n).step_by(101) {
                assert_eq!(idx.get(&id(i)).map(|l| (l.offset, l.ty)), Some((i, BlobType::Tree)));
            }
            assert!(!idx.contains(&id(n)));
            assert_eq!(idx.blob_count(), n as usize);
        }
    }
}
