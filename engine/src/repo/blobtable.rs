//! The blob table: every indexed blob's location as fixed 48-byte records sorted by id, in run files
//! of the local cache (temporary files with no cache), found with one positioned read through a
//! small in-memory fan-out. It stands in for a map of every blob in memory, so what a process holds
//! follows its work, not the size of the repository.
//!
//! A manifest names the index files each run was built from. New index files become a new run
//! (sorted in batches spilled to disk, then merged), and runs of like size are merged, so a run
//! that adds a few index files costs what they hold. A table whose index files went away (prune,
//! `repair index`) or that does not check out (length, fan-out, checksums) is rebuilt from the
//! index files: it is only a cache. Updates hold an exclusive lock on the table's folder; run files
//! are never changed, only replaced, so a process keeps reading the runs it opened.

use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, IdMap, PackId};
use crate::format::index::{BlobLoc, IndexFile};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

const MAGIC: &[u8; 8] = b"CBBLOBT1";
/// magic, record count (u64), fan-out bits (u32), packs referenced (u32), checksum (u64).
const HEADER: usize = 32;
/// Bytes per record: id, pack position << 1 | type, offset, length, raw length.
pub const RECORD: usize = 48;
/// Records sorted in memory before they are spilled to a temporary run (6.5 MiB).
const SORT_BATCH: usize = 128 * 1024;
/// At most 2^18 fan-out entries (1 MiB); about 32 records per bucket below that.
const MAX_BITS: u32 = 18;
/// A bucket of more records than this is binary-searched a record per read instead of read whole.
const BUCKET_READ: u64 = 512;
const MANIFEST_VERSION: u32 = 1;
/// Merge the two newest runs when the older holds at most this many times the newer's records.
const MERGE_RATIO: u64 = 4;
/// More runs than this are merged whatever their sizes (each costs a read per lookup).
const MAX_RUNS: usize = 8;

/// One blob's location, as the table stores it. Sorted by id, then pack position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub id: BlobId,
    pub pack: u32,
    pub ty: BlobType,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

impl Record {
    pub fn loc(&self) -> BlobLoc {
        BlobLoc { pack: self.pack, ty: self.ty, offset: self.offset, length: self.length, raw_length: self.raw_length }
    }

    pub fn new(id: BlobId, loc: BlobLoc) -> Record {
        Record { id, pack: loc.pack, ty: loc.ty, offset: loc.offset, length: loc.length, raw_length: loc.raw_length }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.id.0);
        out[32..36].copy_from_slice(&(self.pack << 1 | self.ty as u32).to_le_bytes());
        out[36..40].copy_from_slice(&self.offset.to_le_bytes());
        out[40..44].copy_from_slice(&self.length.to_le_bytes());
        out[44..48].copy_from_slice(&self.raw_length.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Record {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let pt = u(32);
        Record {
            id: BlobId(b[..32].try_into().expect("32 bytes")),
            pack: pt >> 1,
            ty: if pt & 1 == 0 { BlobType::Data } else { BlobType::Tree },
            offset: u(36),
            length: u(40),
            raw_length: u(44),
        }
    }
}

/// The packs the table's records point into, by position.
#[derive(Default)]
pub struct PackList {
    ids: Vec<PackId>,
    sizes: Vec<u64>,
    pos: IdMap<PackId, u32>,
}

impl PackList {
    /// Registers a pack (if new) and returns its position.
    pub fn insert(&mut self, id: PackId, size: u64) -> u32 {
        if let Some(&p) = self.pos.get(&id) {
            return p;
        }
        let p = self.ids.len() as u32;
        self.ids.push(id);
        self.sizes.push(size);
        self.pos.insert(id, p);
        p
    }
    pub fn id(&self, p: u32) -> PackId {
        self.ids[p as usize]
    }
    pub fn size(&self, p: u32) -> u64 {
        self.sizes[p as usize]
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (u32, &PackId, u64)> {
        self.ids.iter().zip(&self.sizes).enumerate().map(|(i, (p, s))| (i as u32, p, *s))
    }
}

fn prefix(id: &BlobId, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (u32::from_be_bytes(id.0[..4].try_into().expect("4 bytes")) >> (32 - bits)) as usize
    }
}

/// Fan-out bits for about `n` records: about 32 records a bucket.
fn bits_for(n: u64) -> u32 {
    let mut bits = 0;
    while bits < MAX_BITS && (n >> bits) > 64 {
        bits += 1;
    }
    bits
}

fn checksum(count: u64, bits: u32, packs: u32, fanout: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(MAGIC);
    h.update(&count.to_le_bytes());
    h.update(&bits.to_le_bytes());
    h.update(&packs.to_le_bytes());
    h.update(fanout);
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Writes a run file: records pushed in order (exact repeats dropped), header and fan-out last.
struct RunWriter {
    w: BufWriter<File>,
    bits: u32,
    fanout: Vec<u32>,
    next: usize,
    count: u64,
    last: Option<Record>,
    packs: u32,
}

impl RunWriter {
    /// `at_most`: an upper bound of the records to come (it sizes the fan-out).
    fn new(mut f: File, at_most: u64) -> std::io::Result<RunWriter> {
        let bits = bits_for(at_most);
        let entries = (1usize << bits) + 1;
        f.seek(SeekFrom::Start((HEADER + 4 * entries) as u64))?;
        Ok(RunWriter {
            w: BufWriter::with_capacity(1 << 16, f),
            bits,
            fanout: vec![0; entries],
            next: 0,
            count: 0,
            last: None,
            packs: 0,
        })
    }

    fn push(&mut self, r: Record) -> std::io::Result<()> {
        if self.last == Some(r) {
            return Ok(());
        }
        debug_assert!(self.last.is_none_or(|l| l < r), "records pushed in order");
        let p = prefix(&r.id, self.bits);
        while self.next <= p {
            self.fanout[self.next] = self.count as u32;
            self.next += 1;
        }
        let mut b = [0u8; RECORD];
        r.encode(&mut b);
        self.w.write_all(&b)?;
        self.count += 1;
        self.packs = self.packs.max(r.pack + 1);
        self.last = Some(r);
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<(File, u64)> {
        if self.count > u32::MAX as u64 {
            return Err(std::io::Error::other("more than 2^32 blobs in one table run"));
        }
        while self.next < self.fanout.len() {
            self.fanout[self.next] = self.count as u32;
            self.next += 1;
        }
        let f = self.w.into_inner().map_err(|e| e.into_error())?;
        let fan: Vec<u8> = self.fanout.iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut head = Vec::with_capacity(HEADER + fan.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&self.count.to_le_bytes());
        head.extend_from_slice(&self.bits.to_le_bytes());
        head.extend_from_slice(&self.packs.to_le_bytes());
        head.extend_from_slice(&checksum(self.count, self.bits, self.packs, &fan).to_le_bytes());
        head.extend_from_slice(&fan);
        f.write_all_at(&head, 0)?;
        Ok((f, self.count))
    }
}

/// One sorted run, open: its fan-out in memory, its records on disk.
pub struct Run {
    file: File,
    count: u64,
    bits: u32,
    fanout: Vec<u32>,
}

impl Run {
    /// Opens a run and checks its shape: the length its header implies, the fan-out's checksum and
    /// order, and that it points into no pack past `packs`. `Err` says what is wrong.
    fn open(file: File, packs: usize) -> std::result::Result<Run, String> {
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut head = [0u8; HEADER];
        file.read_exact_at(&mut head, 0).map_err(|e| format!("header: {e}"))?;
        if &head[..8] != MAGIC {
            return Err("not a blob table run".into());
        }
        let count = u64::from_le_bytes(head[8..16].try_into().expect("8"));
        let bits = u32::from_le_bytes(head[16..20].try_into().expect("4"));
        let npacks = u32::from_le_bytes(head[20..24].try_into().expect("4"));
        let sum = u64::from_le_bytes(head[24..32].try_into().expect("8"));
        if bits > MAX_BITS || npacks as usize > packs {
            return Err("bad header".into());
        }
        let entries = (1usize << bits) + 1;
        // A damaged count could overflow the product: checked, so it reads as damage, not a panic.
        let want = count.checked_mul(RECORD as u64).and_then(|r| r.checked_add((HEADER + 4 * entries) as u64));
        if want != Some(len) {
            return Err(format!("{len} bytes, not what its header says"));
        }
        let mut fan = vec![0u8; 4 * entries];
        file.read_exact_at(&mut fan, HEADER as u64).map_err(|e| format!("fan-out: {e}"))?;
        if checksum(count, bits, npacks, &fan) != sum {
            return Err("checksum mismatch".into());
        }
        let fanout: Vec<u32> = fan.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4"))).collect();
        if fanout[0] != 0 || fanout[entries - 1] as u64 != count || fanout.windows(2).any(|w| w[0] > w[1]) {
            return Err("bad fan-out".into());
        }
        Ok(Run { file, count, bits, fanout })
    }

    fn records_at(&self) -> u64 {
        (HEADER + 4 * self.fanout.len()) as u64
    }

    fn read(&self, from: u64, n: u64, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.resize((n as usize) * RECORD, 0);
        self.file.read_exact_at(buf, self.records_at() + from * RECORD as u64)
    }

    /// Calls `f` with every record for `id`, in order. A bucket that is out of order or points past
    /// `packs` is damage: `Err`.
    fn find(&self, id: &BlobId, packs: usize, mut f: impl FnMut(Record)) -> std::result::Result<(), ()> {
        let p = prefix(id, self.bits);
        let (lo, hi) = (self.fanout[p] as u64, self.fanout[p + 1] as u64);
        if lo == hi {
            return Ok(());
        }
        let mut buf = Vec::new();
        let ok = |r: &Record| prefix(&r.id, self.bits) == p && (r.pack as usize) < packs;
        if hi - lo <= BUCKET_READ {
            self.read(lo, hi - lo, &mut buf).map_err(|_| ())?;
            let mut prev: Option<Record> = None;
            for c in buf.chunks_exact(RECORD) {
                let r = Record::decode(c);
                if !ok(&r) || prev.is_some_and(|q| q >= r) {
                    return Err(());
                }
                prev = Some(r);
                if r.id == *id {
                    f(r);
                } else if r.id > *id {
                    break;
                }
            }
            return Ok(());
        }
        // A large bucket: the first record not below `id`, a read per probe.
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let m = a + (b - a) / 2;
            self.read(m, 1, &mut buf).map_err(|_| ())?;
            if Record::decode(&buf).id < *id {
                a = m + 1;
            } else {
                b = m;
            }
        }
        while a < hi {
            self.read(a, 1, &mut buf).map_err(|_| ())?;
            let r = Record::decode(&buf);
            if !ok(&r) {
                return Err(());
            }
            if r.id != *id {
                break;
            }
            f(r);
            a += 1;
        }
        Ok(())
    }

    /// The records in order, read a block at a time.
    fn iter(&self) -> RunIter<'_> {
        RunIter { run: self, next: 0, buf: Vec::new(), at: 0 }
    }
}

struct RunIter<'a> {
    run: &'a Run,
    next: u64,
    buf: Vec<u8>,
    at: usize,
}

impl Iterator for RunIter<'_> {
    type Item = std::io::Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            if self.next >= self.run.count {
                return None;
            }
            let n = (self.run.count - self.next).min(1024);
            if let Err(e) = self.run.read(self.next, n, &mut self.buf) {
                self.next = self.run.count;
                return Some(Err(e));
            }
            self.next += n;
            self.at = 0;
        }
        let r = Record::decode(&self.buf[self.at..self.at + RECORD]);
        self.at += RECORD;
        Some(Ok(r))
    }
}

/// Merges sorted record streams into one sorted stream (ties: the earlier stream first).
fn merge<I: Iterator<Item = std::io::Result<Record>>>(
    mut inputs: Vec<I>,
    mut out: impl FnMut(Record) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut heap = BinaryHeap::new();
    for (i, it) in inputs.iter_mut().enumerate() {
        if let Some(r) = it.next() {
            heap.push(Reverse((r?, i)));
        }
    }
    while let Some(Reverse((r, i))) = heap.pop() {
        out(r)?;
        if let Some(n) = inputs[i].next() {
            heap.push(Reverse((n?, i)));
        }
    }
    Ok(())
}

/// Sorts records of any number in bounded memory: batches of [`SORT_BATCH`] are sorted and
/// spilled to anonymous temporary files, then merged into a run.
struct Sorter<'a> {
    dir: &'a Path,
    buf: Vec<Record>,
    spills: Vec<(File, u64)>,
}

impl<'a> Sorter<'a> {
    fn new(dir: &'a Path) -> Self {
        Sorter { dir, buf: Vec::new(), spills: Vec::new() }
    }

    fn push(&mut self, r: Record) -> std::io::Result<()> {
        if self.buf.len() >= SORT_BATCH {
            self.spill()?;
        }
        self.buf.push(r);
        Ok(())
    }

    fn spill(&mut self) -> std::io::Result<()> {
        self.buf.sort_unstable();
        let mut w = BufWriter::with_capacity(1 << 16, tempfile::tempfile_in(self.dir)?);
        let mut b = [0u8; RECORD];
        for r in &self.buf {
            r.encode(&mut b);
            w.write_all(&b)?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        self.spills.push((f, self.buf.len() as u64));
        self.buf.clear();
        Ok(())
    }

    fn len(&self) -> u64 {
        self.buf.len() as u64 + self.spills.iter().map(|s| s.1).sum::<u64>()
    }

    /// Writes the sorted records as a run into `out`.
    fn finish(mut self, out: File) -> std::io::Result<(File, u64)> {
        let mut w = RunWriter::new(out, self.len())?;
        if self.spills.is_empty() {
            self.buf.sort_unstable();
            for r in std::mem::take(&mut self.buf) {
                w.push(r)?;
            }
            return w.finish();
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = Vec::new();
        let inputs: Vec<_> = std::mem::take(&mut self.spills)
            .into_iter()
            .map(|(f, n)| {
                let mut r = BufReader::with_capacity(1 << 16, f);
                (0..n).map(move |_| {
                    let mut b = [0u8; RECORD];
                    r.read_exact(&mut b).map(|_| Record::decode(&b))
                })
            })
            .collect();
        merge(inputs, |r| w.push(r))?;
        w.finish()
    }
}

/// What the table keeps on disk beside its runs: which runs, built from which index files, and the
/// packs their records point into. Sealed with a BLAKE3 checksum against torn writes.
#[derive(Serialize, Deserialize, Default)]
struct Manifest {
    version: u32,
    /// Random, new with every table built from nothing.
    generation: u64,
    packs: Vec<(PackId, u64)>,
    runs: Vec<RunMeta>,
    /// The backup sets (see [`BlobTable::needs_check`]) whose backups have looked up every blob
    /// they reused from their parent since the table was last built from nothing.
    checked: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone)]
struct RunMeta {
    file: String,
    count: u64,
    covers: Vec<String>,
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(dir.join("manifest")).ok()?;
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    postcard::from_bytes::<Manifest>(body).ok().filter(|m| m.version == MANIFEST_VERSION)
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let mut bytes = postcard::to_allocvec(m).expect("serialize manifest");
    let sum = *blake3::hash(&bytes).as_bytes();
    bytes.extend_from_slice(&sum);
    let e = |e| Error::io("write blob table", dir, e);
    let mut t = tempfile::Builder::new().prefix("manifest-").tempfile_in(dir).map_err(e)?;
    t.write_all(&bytes).map_err(e)?;
    t.persist(dir.join("manifest")).map_err(|x| e(x.error))?;
    Ok(())
}

/// Where the index files a run is built from come from: `fetch(names, each)` calls `each` with
/// every named file, decoded (from the local cache or the repository).
pub type Fetch<'a> = dyn FnMut(&[&str], &mut dyn FnMut(IndexFile) -> Result<()>) -> Result<()> + 'a;

/// The blob table as a process holds it: the runs it opened, and where new ones go.
pub struct BlobTable {
    runs: Vec<Run>,
    /// Runs kept in the manifest (the first ones of `runs`); later ones are this process's own.
    shared: usize,
    /// Where run files live: the cache's table folder, or the temporary folder with no cache.
    dir: PathBuf,
    persistent: bool,
    generation: u64,
    checked: Vec<String>,
    damaged: AtomicBool,
}

/// The table's folder in a cache folder.
pub fn table_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("blobs")
}

impl BlobTable {
    /// Brings the table in `dir` (the cache's, kept; `None`: a temporary one) up to date with the
    /// index files `names` (the repository's listing), reading through `fetch` only the files it
    /// lacks; returns it with the packs its records point into.
    pub fn load(dir: Option<&Path>, names: &[String], fetch: &mut Fetch<'_>) -> Result<(BlobTable, PackList)> {
        match dir {
            Some(d) => Self::load_kept(d, names, fetch),
            None => {
                let dir = std::env::temp_dir();
                let mut packs = PackList::default();
                let all: Vec<&str> = names.iter().map(String::as_str).collect();
                let run = build_run(&dir, &all, &mut packs, fetch, None)?;
                let table = BlobTable {
                    runs: run.into_iter().map(|(r, _)| r).collect(),
                    shared: 0,
                    dir,
                    persistent: false,
                    generation: 0,
                    checked: Vec::new(),
                    damaged: AtomicBool::new(false),
                };
                Ok((table, packs))
            }
        }
    }

    /// An empty table kept nowhere: what an index with no table spills its overlay into (runs in
    /// temporary files, gone with the process).
    pub fn temporary() -> BlobTable {
        BlobTable {
            runs: Vec::new(),
            shared: 0,
            dir: std::env::temp_dir(),
            persistent: false,
            generation: 0,
            checked: Vec::new(),
            damaged: AtomicBool::new(false),
        }
    }

    fn load_kept(dir: &Path, names: &[String], fetch: &mut Fetch<'_>) -> Result<(BlobTable, PackList)> {
        use std::os::unix::fs::DirBuilderExt;
        let e = |e| Error::io("open blob table", dir, e);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(e)?;
        let _lock = lock_folder(dir).map_err(e)?;

        let mut m = read_manifest(dir).unwrap_or_default();
        let opened = open_runs(dir, &m, names);
        let fresh = opened.is_none();
        let (mut runs, mut packs) = opened.unwrap_or_default();
        if fresh {
            m = Manifest {
                version: MANIFEST_VERSION,
                generation: rand::random(),
                packs: Vec::new(),
                runs: Vec::new(),
                checked: Vec::new(),
            };
        }
        let covered: HashSet<&str> = m.runs.iter().flat_map(|r| r.covers.iter().map(String::as_str)).collect();
        let new: Vec<&str> = names.iter().map(String::as_str).filter(|n| !covered.contains(n)).collect();
        add_runs(dir, &mut m, &mut runs, &mut packs, &new, fetch, fresh)?;
        let table = BlobTable::kept(dir, runs, m);
        Ok((table, packs))
    }

    /// The table kept in `dir`: `runs`, opened from its manifest `m`, all shared with other processes.
    fn kept(dir: &Path, runs: Vec<Run>, m: Manifest) -> BlobTable {
        BlobTable {
            shared: runs.len(),
            runs,
            dir: dir.to_path_buf(),
            persistent: true,
            generation: m.generation,
            checked: m.checked,
            damaged: AtomicBool::new(false),
        }
    }

    /// The table kept in `dir` as its manifest has it, reading no index file: `None` when a load
    /// would build it anew (missing, damaged, or built from an index file no longer in `names`);
    /// else the table, the packs its records point into, and the files of `names` it does not cover
    /// yet. [`BlobTable::load`] with the same `names` later adds those (a lazy load).
    pub fn open_kept(dir: &Path, names: &[String]) -> Result<Option<(BlobTable, PackList, Vec<String>)>> {
        let e = |e| Error::io("open blob table", dir, e);
        if !dir.join("manifest").exists() {
            return Ok(None);
        }
        let _lock = lock_folder(dir).map_err(e)?;
        let Some(m) = read_manifest(dir) else { return Ok(None) };
        let Some((runs, packs)) = open_runs(dir, &m, names) else { return Ok(None) };
        let covered: HashSet<&str> = m.runs.iter().flat_map(|r| r.covers.iter().map(String::as_str)).collect();
        let new = names.iter().filter(|n| !covered.contains(n.as_str())).cloned().collect();
        let table = BlobTable::kept(dir, runs, m);
        Ok(Some((table, packs, new)))
    }

    /// Adds an index file this process wrote (`name`, decoded `f`) to the table kept in `dir` as a
    /// run of its own, so later processes find its blobs without reading it: a table that covers
    /// what its host wrote leaves a later run only the other hosts' new files to take in (and those
    /// only at a lookup that misses). Nothing when no sound table is kept there: the next load
    /// builds one.
    pub fn add_written(dir: &Path, name: &str, f: &IndexFile) -> Result<()> {
        let e = |e| Error::io("update blob table", dir, e);
        if !dir.join("manifest").exists() {
            return Ok(());
        }
        let _lock = lock_folder(dir).map_err(e)?;
        let Some(mut m) = read_manifest(dir) else { return Ok(()) };
        let covered: Vec<String> = m.runs.iter().flat_map(|r| r.covers.iter().cloned()).collect();
        if covered.iter().any(|c| c == name) {
            return Ok(());
        }
        let Some((mut runs, mut packs)) = open_runs(dir, &m, &covered) else { return Ok(()) };
        let mut fetch = |_: &[&str], each: &mut dyn FnMut(IndexFile) -> Result<()>| each(f.clone());
        add_runs(dir, &mut m, &mut runs, &mut packs, &[name], &mut fetch, false)
    }

    /// The records of this process's own runs ([`BlobTable::add_private`]), in no order.
    pub fn private_records(&self) -> impl Iterator<Item = Record> + '_ {
        // An unreadable run ends its records; that is damage, noted like a failed lookup.
        self.runs[self.shared..].iter().flat_map(|r| r.iter().map_while(|x| x.map_err(|_| self.note_damage()).ok()))
    }

    /// Whether a backup of the set `key` (its host and paths) must look up the blobs it reuses from
    /// its parent snapshot: until one has, since the table was built from nothing (new, damaged, or
    /// index files gone: a prune, `repair index`), the parent may name blobs no longer indexed.
    /// While the table is only added to, what a checked backup reused stays indexed.
    pub fn needs_check(&self, key: &str) -> bool {
        !self.persistent || self.damaged.load(Ordering::Relaxed) || !self.checked.iter().any(|k| k == key)
    }

    /// Records that a backup of the set `key` looked up every blob it reused: later ones need not.
    pub fn reuse_checked(&self, key: &str) -> Result<()> {
        if !self.needs_check(key) || !self.persistent || self.damaged.load(Ordering::Relaxed) {
            return Ok(());
        }
        let e = |e| Error::io("update blob table", &self.dir, e);
        let _lock = lock_folder(&self.dir).map_err(e)?;
        if let Some(mut m) = read_manifest(&self.dir).filter(|m| m.generation == self.generation) {
            if !m.checked.iter().any(|k| k == key) {
                m.checked.push(key.to_string());
                write_manifest(&self.dir, &m)?;
            }
        }
        Ok(())
    }

    /// Calls `f` with every record for `id`: older runs first. A damaged run is noted (the table is
    /// rebuilt on the next load) and its records are not offered.
    pub fn find(&self, id: &BlobId, packs: usize, mut f: impl FnMut(Record)) {
        for r in &self.runs {
            if r.find(id, packs, &mut f).is_err() {
                self.note_damage();
            }
        }
    }

    /// A run did not read back as written: the manifest goes, so the next load builds anew.
    fn note_damage(&self) {
        if !self.damaged.swap(true, Ordering::Relaxed) && self.persistent {
            let _ = std::fs::remove_file(self.dir.join("manifest"));
        }
    }

    /// Whether a lookup met damage (the next load rebuilds the table).
    pub fn is_damaged(&self) -> bool {
        self.damaged.load(Ordering::Relaxed)
    }

    /// Adds records (this process's own, sorted or not) as a run of this process, in a temporary
    /// file: they leave memory, and are found like the others.
    pub fn add_private(&mut self, records: Vec<Record>, packs: usize) -> Result<()> {
        let e = |e| Error::io("write blob table", &self.dir, e);
        let mut s = Sorter::new(&self.dir);
        s.buf = records;
        let (f, _) = s.finish(tempfile::tempfile_in(&self.dir).map_err(e)?).map_err(e)?;
        let run = Run::open(f, packs).map_err(|why| Error::Other(format!("blob table: {why}")))?;
        self.runs.push(run);
        Ok(())
    }

    /// Every record, sorted by id (records of one id together, older runs first). An unreadable run
    /// is noted as damage and ends the iteration.
    pub fn iter(&self) -> impl Iterator<Item = Record> + '_ {
        let mut inputs: Vec<_> = self.runs.iter().map(|r| r.iter().peekable()).collect();
        let this = self;
        std::iter::from_fn(move || {
            let mut best: Option<(Record, usize)> = None;
            for (i, it) in inputs.iter_mut().enumerate() {
                match it.peek() {
                    Some(Ok(r)) if best.is_none_or(|(b, _)| (r.id, r.pack) < (b.id, b.pack)) => best = Some((*r, i)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) => {
                        this.note_damage();
                        return None;
                    }
                    None => {}
                }
            }
            let (r, i) = best?;
            inputs[i].next();
            Some(r)
        })
    }

    /// Records in all runs (a blob indexed in several packs or files counts more than once).
    pub fn records(&self) -> u64 {
        self.runs.iter().map(|r| r.count).sum()
    }

    /// Runs kept in the manifest, and in all.
    pub fn run_counts(&self) -> (usize, usize) {
        (self.shared, self.runs.len())
    }
}

/// The runs the manifest `m` names, opened and checked, with the packs they point into: `None` when
/// one is damaged or missing, or was built from an index file not in `names` (gone from the
/// repository): the table is then built anew.
fn open_runs(dir: &Path, m: &Manifest, names: &[String]) -> Option<(Vec<Run>, PackList)> {
    let mut packs = PackList::default();
    for (id, size) in &m.packs {
        packs.insert(*id, *size);
    }
    if m.version != MANIFEST_VERSION || packs.len() != m.packs.len() {
        return None;
    }
    let remote: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut runs = Vec::new();
    for meta in &m.runs {
        let r = File::open(dir.join(&meta.file)).ok().and_then(|f| Run::open(f, packs.len()).ok())?;
        if r.count != meta.count || !meta.covers.iter().all(|n| remote.contains(n.as_str())) {
            return None;
        }
        runs.push(r);
    }
    Some((runs, packs))
}

/// Adds to the kept table (its manifest `m`, opened `runs` and `packs`, under the folder's lock) a
/// run built from the index files `new`, merges runs of like size, and writes the manifest when
/// anything changed (`changed`: it must be written anyway).
fn add_runs(
    dir: &Path,
    m: &mut Manifest,
    runs: &mut Vec<Run>,
    packs: &mut PackList,
    new: &[&str],
    fetch: &mut Fetch<'_>,
    mut changed: bool,
) -> Result<()> {
    let e = |e| Error::io("write blob table", dir, e);
    if !new.is_empty() {
        if let Some((run, file)) = build_run(dir, new, packs, fetch, Some(dir))? {
            let count = run.count;
            runs.push(run);
            m.runs.push(RunMeta { file, count, covers: new.iter().map(|s| s.to_string()).collect() });
        }
        changed = true;
    }
    // Runs of like size are merged, so there are few (a read each per lookup).
    while runs.len() >= 2 {
        let n = runs.len();
        if n <= MAX_RUNS && runs[n - 2].count > MERGE_RATIO * runs[n - 1].count {
            break;
        }
        let (b, a) = (runs.pop().expect("two"), runs.pop().expect("two"));
        let (mb, ma) = (m.runs.pop().expect("two"), m.runs.pop().expect("two"));
        let (t, file) = new_run_file(dir)?;
        let mut w = RunWriter::new(t, a.count + b.count).map_err(e)?;
        merge(vec![a.iter(), b.iter()], |r| w.push(r)).map_err(e)?;
        let (f, count) = w.finish().map_err(e)?;
        let run = Run::open(f, packs.len()).map_err(|why| Error::Other(format!("blob table: {why}")))?;
        runs.push(run);
        let covers = ma.covers.into_iter().chain(mb.covers).collect();
        m.runs.push(RunMeta { file, count, covers });
        changed = true;
    }
    if changed {
        m.packs = packs.iter().map(|(_, id, s)| (*id, s)).collect();
        write_manifest(dir, m)?;
        // Run files the manifest no longer names (merged, or left by a crash) go; a process
        // that has them open keeps reading them.
        let keep: HashSet<&str> = m.runs.iter().map(|r| r.file.as_str()).collect();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for ent in rd.flatten() {
                let name = ent.file_name();
                let name = name.to_string_lossy();
                if (name.starts_with("run-") || name.starts_with("manifest-")) && !keep.contains(name.as_ref()) {
                    let _ = std::fs::remove_file(ent.path());
                }
            }
        }
    }
    Ok(())
}

/// A new run file in `dir`: kept (named `run-…`) when the table is, else anonymous.
fn new_run_file(dir: &Path) -> Result<(File, String)> {
    let e = |e| Error::io("write blob table", dir, e);
    let t = tempfile::Builder::new().prefix("run-").tempfile_in(dir).map_err(e)?;
    let (f, path) = t.keep().map_err(|x| e(x.error))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok((f, name))
}

/// Builds one run from the index files `names`: `None` when they list no blob. `kept`: the table's
/// folder, where the run is named; `None`: an anonymous temporary file.
fn build_run(
    dir: &Path,
    names: &[&str],
    packs: &mut PackList,
    fetch: &mut Fetch<'_>,
    kept: Option<&Path>,
) -> Result<Option<(Run, String)>> {
    let e = |e| Error::io("write blob table", dir, e);
    let mut s = Sorter::new(dir);
    fetch(names, &mut |f: IndexFile| {
        for p in f.packs {
            let pack = packs.insert(p.id, p.size);
            for b in p.blobs {
                let r =
                    Record { id: b.id, pack, ty: b.ty, offset: b.offset, length: b.length, raw_length: b.raw_length };
                s.push(r).map_err(e)?;
            }
        }
        Ok(())
    })?;
    if s.len() == 0 && kept.is_none() {
        return Ok(None);
    }
    let (out, name) = match kept {
        Some(d) => new_run_file(d)?,
        None => (tempfile::tempfile_in(dir).map_err(e)?, String::new()),
    };
    let (f, _) = s.finish(out).map_err(e)?;
    let run = Run::open(f, packs.len()).map_err(|why| Error::Other(format!("blob table: {why}")))?;
    Ok(Some((run, name)))
}

/// Takes the folder's lock (held until the returned file is dropped); the lock file is private to
/// its owner like everything else in the cache.
fn lock_folder(dir: &Path) -> std::io::Result<File> {
    let f = File::options().create(true).truncate(false).write(true).mode(0o600).open(dir.join("lock"))?;
    f.lock()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::IndexPack;
    use crate::format::pack::PackEntry;
    use std::collections::HashMap;

    fn id(n: u32) -> BlobId {
        // Spread over the id space like real (hash) ids.
        let h = blake3::hash(&n.to_le_bytes());
        BlobId(*h.as_bytes())
    }

    fn file(pack: u8, blobs: std::ops::Range<u32>) -> IndexFile {
        let blobs = blobs
            .map(|i| PackEntry { ty: BlobType::Data, id: id(i), offset: i, length: 10 + i, raw_length: 20 + i })
            .collect();
        IndexFile { version: 1, supersedes: vec![], packs: vec![IndexPack { id: PackId([pack; 32]), size: 99, blobs }] }
    }

    /// A repository's index files by name, and how often each was fetched.
    struct Files {
        files: HashMap<String, IndexFile>,
        fetched: HashMap<String, usize>,
    }

    impl Files {
        fn new() -> Files {
            Files { files: HashMap::new(), fetched: HashMap::new() }
        }

        /// The names, as the repository lists them.
        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = self.files.keys().cloned().collect();
            names.sort();
            names
        }

        fn load(&mut self, dir: Option<&Path>) -> (BlobTable, PackList) {
            let names = self.names();
            let (files, fetched) = (&self.files, &mut self.fetched);
            let mut fetch = |want: &[&str], each: &mut dyn FnMut(IndexFile) -> Result<()>| -> Result<()> {
                for n in want {
                    *fetched.entry(n.to_string()).or_default() += 1;
                    each(files[*n].clone())?;
                }
                Ok(())
            };
            BlobTable::load(dir, &names, &mut fetch).unwrap()
        }
    }

    fn lookup(t: &BlobTable, p: &PackList, i: u32) -> Vec<(PackId, u32)> {
        let mut v = Vec::new();
        t.find(&id(i), p.len(), |r| v.push((p.id(r.pack), r.offset)));
        v
    }

    #[test]
    fn records_round_trip_and_sort_by_id_then_pack() {
        let r = Record { id: id(1), pack: (1 << 31) - 1, ty: BlobType::Tree, offset: 1, length: 2, raw_length: 3 };
        let mut b = [0u8; RECORD];
        r.encode(&mut b);
        assert_eq!(Record::decode(&b), r);
        let s = Record { pack: 0, ..r };
        assert!(s < r);
    }

    #[test]
    fn a_table_finds_every_blob_and_no_other_with_and_without_a_cache() {
        let d = tempfile::tempdir().unwrap();
        for kept in [Some(d.path().join("t")), None] {
            // (A temporary table always has reuse checked.)
            let mut fs = Files::new();
            fs.files.insert("a".into(), file(1, 0..3000));
            fs.files.insert("b".into(), file(2, 3000..3500));
            let (t, p) = fs.load(kept.as_deref());
            for i in (0..3500).step_by(7) {
                let want = if i < 3000 { PackId([1; 32]) } else { PackId([2; 32]) };
                assert_eq!(lookup(&t, &p, i), vec![(want, i)], "blob {i}");
            }
            for i in 3500..4000 {
                assert!(lookup(&t, &p, i).is_empty(), "miss {i}");
            }
            assert_eq!(t.iter().count(), 3500);
            assert!(t.iter().map(|r| r.id).collect::<Vec<_>>().windows(2).all(|w| w[0] < w[1]));
            assert!(!t.is_damaged());
        }
    }

    #[test]
    fn new_index_files_are_added_and_gone_ones_rebuild_the_table() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("t");
        let mut fs = Files::new();
        fs.files.insert("a".into(), file(1, 0..1000));
        let (t, _) = fs.load(Some(&dir));
        assert!(t.needs_check("h"), "built from nothing");
        t.reuse_checked("h").unwrap();
        drop(t);
        // Unchanged: nothing is read; set "h" is checked, set "g" not.
        let (t, _) = fs.load(Some(&dir));
        assert_eq!(fs.fetched["a"], 1);
        assert!(!t.needs_check("h") && t.needs_check("g"));
        // One new file: only it is read; lookups find both.
        fs.files.insert("b".into(), file(2, 1000..1100));
        let (t, p) = fs.load(Some(&dir));
        assert_eq!((fs.fetched["a"], fs.fetched["b"]), (1, 1));
        assert_eq!(lookup(&t, &p, 5), vec![(PackId([1; 32]), 5)]);
        assert_eq!(lookup(&t, &p, 1050), vec![(PackId([2; 32]), 1050)]);
        assert!(!t.needs_check("h"), "only added to");
        // Many small additions are merged into few runs.
        for k in 0..20u32 {
            fs.files.insert(format!("c{k:02}"), file(10 + k as u8, 2000 + 10 * k..2010 + 10 * k));
            let (t, _) = fs.load(Some(&dir));
            assert!(t.run_counts().0 <= MAX_RUNS);
        }
        // A superseding file lists a pack again and adds one: duplicates of the same place are
        // dropped, other places kept.
        let mut sup = file(1, 0..1000);
        sup.packs.push(file(3, 0..10).packs.remove(0));
        fs.files.insert("sup".into(), sup);
        let (t, p) = fs.load(Some(&dir));
        assert_eq!(lookup(&t, &p, 3), vec![(PackId([1; 32]), 3), (PackId([3; 32]), 3)]);
        // "a" is gone (superseded): the table is rebuilt from what is left, and reuse is checked.
        fs.files.remove("a");
        let before = fs.fetched["b"];
        let (t, p) = fs.load(Some(&dir));
        assert_eq!(fs.fetched["b"], before + 1, "rebuilt from every file");
        assert!(t.needs_check("h"));
        assert_eq!(lookup(&t, &p, 3).len(), 2);
        assert_eq!(lookup(&t, &p, 1050).len(), 1);
        let runs = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("run-"))
            .count();
        assert_eq!(runs, t.run_counts().0, "no run file is left behind");
    }

    #[test]
    fn files_this_host_wrote_are_covered_without_being_read_again() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("t");
        let mut fs = Files::new();
        fs.files.insert("a".into(), file(1, 0..1000));
        fs.load(Some(&dir));
        // This host writes "w00".."w19" and adds each as it goes; another host adds "other".
        for k in 0..20u32 {
            let f = file(20 + k as u8, 5000 + 10 * k..5010 + 10 * k);
            BlobTable::add_written(&dir, &format!("w{k:02}"), &f).unwrap();
            fs.files.insert(format!("w{k:02}"), f);
        }
        fs.files.insert("other".into(), file(9, 9000..9100));
        let (t, p, new) = BlobTable::open_kept(&dir, &fs.names()).unwrap().expect("sound");
        assert_eq!(new, vec!["other".to_string()], "only the other host's file is left to take in");
        assert!(t.run_counts().0 <= MAX_RUNS, "added runs are merged");
        assert_eq!(lookup(&t, &p, 5105), vec![(PackId([30; 32]), 5105)]);
        assert!(lookup(&t, &p, 9050).is_empty());
        drop(t);
        // Taking it in reads it alone; a file added twice is covered once.
        BlobTable::add_written(&dir, "w03", &fs.files["w03"].clone()).unwrap();
        let (t, p) = fs.load(Some(&dir));
        let read: std::collections::BTreeSet<&str> = fs.fetched.keys().map(String::as_str).collect();
        assert_eq!(read, ["a", "other"].into(), "only the files it did not write were read");
        assert_eq!(lookup(&t, &p, 5035), vec![(PackId([23; 32]), 5035)]);
        assert_eq!(lookup(&t, &p, 9050), vec![(PackId([9; 32]), 9050)]);
        // No table kept: nothing is made.
        let none = d.path().join("none");
        BlobTable::add_written(&none, "x", &file(1, 0..10)).unwrap();
        assert!(!none.exists());
    }

    fn current_run(dir: &Path) -> PathBuf {
        dir.join(&read_manifest(dir).unwrap().runs[0].file)
    }

    #[test]
    fn a_run_whose_count_overflows_its_length_is_damage_not_a_panic() {
        // The fuzzer's first find: a header whose record count times the record size overflows.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("run");
        let mut head = vec![0u8; HEADER];
        head[..8].copy_from_slice(MAGIC);
        head[8..16].copy_from_slice(&(u64::MAX / 3).to_le_bytes());
        std::fs::write(&p, [head, vec![0u8; 8]].concat()).unwrap();
        let e = Run::open(File::open(&p).unwrap(), 0).err().expect("damage");
        assert!(e.contains("not what its header says"), "{e}");
    }

    #[test]
    fn a_damaged_table_is_rebuilt() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("t");
        let mut fs = Files::new();
        fs.files.insert("a".into(), file(1, 0..2000));
        drop(fs.load(Some(&dir)));
        // A flipped byte in the fan-out, a cut-off run, a torn manifest, a missing run.
        let damage: [&dyn Fn(); 4] = [
            &|| {
                File::options()
                    .write(true)
                    .open(current_run(&dir))
                    .unwrap()
                    .write_all_at(&[0xff], HEADER as u64 + 5)
                    .unwrap()
            },
            &|| {
                let f = File::options().write(true).open(current_run(&dir)).unwrap();
                f.set_len(f.metadata().unwrap().len() - 1).unwrap();
            },
            &|| {
                let m = dir.join("manifest");
                let b = std::fs::read(&m).unwrap();
                std::fs::write(&m, &b[..b.len() / 2]).unwrap();
            },
            &|| std::fs::remove_file(current_run(&dir)).unwrap(),
        ];
        for (k, hurt) in damage.iter().enumerate() {
            let n = fs.fetched["a"];
            hurt();
            let (t, p) = fs.load(Some(&dir));
            assert_eq!(fs.fetched["a"], n + 1, "damage {k}: rebuilt");
            assert_eq!(lookup(&t, &p, 1234), vec![(PackId([1; 32]), 1234)]);
            assert!(t.needs_check("h"));
        }
        // Damage inside the records (out of order) is met by a lookup: noted, not trusted.
        let (t, p) = fs.load(Some(&dir));
        let f = File::options().write(true).open(current_run(&dir)).unwrap();
        let last = t.iter().last().unwrap();
        let mut b = [0u8; RECORD];
        last.encode(&mut b);
        for i in 0..t.runs[0].count {
            f.write_all_at(&b, t.runs[0].records_at() + i * RECORD as u64).unwrap();
        }
        assert!(lookup(&t, &p, 1234).is_empty());
        assert!(t.is_damaged() && t.needs_check("h"));
    }

    #[test]
    fn many_records_are_sorted_through_spills_and_large_buckets_are_searched() {
        let d = tempfile::tempdir().unwrap();
        let n = SORT_BATCH as u32 * 2 + 77;
        let mut s = Sorter::new(d.path());
        for i in (0..n).rev() {
            let r = Record { id: id(i), pack: i % 3, ty: BlobType::Data, offset: i, length: 1, raw_length: 1 };
            s.push(r).unwrap();
            if i % 1000 == 0 {
                s.push(r).unwrap(); // an exact repeat, dropped
            }
        }
        assert_eq!(s.spills.len(), 2);
        let (f, count) = s.finish(tempfile::tempfile_in(d.path()).unwrap()).unwrap();
        assert_eq!(count, n as u64);
        let run = Run::open(f, 3).unwrap();
        for i in (0..n).step_by(997) {
            let mut got = Vec::new();
            run.find(&id(i), 3, |r| got.push(r.offset)).unwrap();
            assert_eq!(got, vec![i]);
        }
        // One bucket for everything: found by binary search, a read per probe.
        let mut w = RunWriter::new(tempfile::tempfile_in(d.path()).unwrap(), 0).unwrap();
        let mut all: Vec<Record> = (0..2000)
            .map(|i| Record { id: id(i), pack: 0, ty: BlobType::Tree, offset: i, length: 1, raw_length: 1 })
            .collect();
        all.sort();
        for r in &all {
            w.push(*r).unwrap();
        }
        let (f, _) = w.finish().unwrap();
        let run = Run::open(f, 1).unwrap();
        assert_eq!(run.bits, 0);
        for i in [0, 1, 999, 1999] {
            let mut got = Vec::new();
            run.find(&id(i), 1, |r| got.push((r.offset, r.ty))).unwrap();
            assert_eq!(got, vec![(i, BlobType::Tree)]);
        }
        let mut got = Vec::new();
        run.find(&id(5000), 1, |r| got.push(r)).unwrap();
        assert!(got.is_empty());
    }
}
