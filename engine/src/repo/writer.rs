//! The one blob-writing session: a blob's id is claimed once however many workers meet the blob,
//! the blob is encoded (compressed, encrypted) and packed, its packs are indexed
//! ([`crate::repo::packer`]), and trees are stored the same way and kept in the local cache.
//! Backup, import, copy and repair all write through it.
//!
//! The packer is fed either directly, under a lock ([`Writer::new`]: import, copy, repair), or
//! through a bounded channel by a packer thread ([`Writer::spawn`]: backup, whose walk encodes on
//! every core and must not wait on one another's packs).

use crate::error::{Error, Result};
use crate::format::blob::{self, BlobType};
use crate::format::codec::METADATA_LEVEL;
use crate::format::dict::Family;
use crate::format::id::{BlobId, IdSet, TreeId};
use crate::format::tree::Tree;
use crate::progress::Transfer;
use crate::repo::packer::Packer;
use crate::repo::Repository;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

/// Encoded blobs queued for the packer thread at most: memory stays bounded by this many blobs
/// plus the open packs, whatever the amount of data.
const QUEUE: usize = 16;

/// How a session writes.
#[derive(Clone, Debug, Default)]
pub struct WriterOptions {
    /// Count what would be written; write nothing.
    pub dry_run: bool,
    /// Where pack uploads are counted, for a progress display.
    pub upload: Option<Arc<Transfer>>,
}

/// An encoded blob on its way to the packer thread.
struct Blob {
    ty: BlobType,
    id: BlobId,
    stored: Vec<u8>,
    raw_len: usize,
}

// One per session, so the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Sink<'a> {
    Direct(Box<Mutex<Packer<'a>>>),
    Thread { tx: Sender<Blob>, packer: ScopedJoinHandle<'a, Result<u64>>, indexer: ScopedJoinHandle<'a, Result<u64>> },
}

/// Which blobs count as stored already (see [`Writer::holding`]).
type Holds<'a> = Box<dyn Fn(BlobType, &BlobId) -> bool + Send + Sync + 'a>;

/// The blobs a session claimed that are not indexed yet. Once an index file lists them they leave
/// (the packer says so), so the set holds what is in flight, not all the session wrote.
#[derive(Default)]
pub(crate) struct Pending {
    set: Mutex<IdSet<BlobId>>,
    /// Counts removals: a claim that raced one looks in the index again.
    epoch: AtomicU64,
    /// Whether indexed blobs may leave: not when the session decides itself what counts as held
    /// ([`Writer::holding`]), which need not be everything indexed.
    trim: AtomicBool,
}

impl Pending {
    /// These blobs are indexed now (the index file listing them is saved and loaded).
    pub(crate) fn indexed<'b>(&self, ids: impl Iterator<Item = &'b BlobId>) {
        if !self.trim.load(SeqCst) {
            return;
        }
        let mut set = self.set.lock();
        self.epoch.fetch_add(1, SeqCst);
        for id in ids {
            set.remove(id);
        }
        if set.capacity() > 4 * set.len().max(1024) {
            set.shrink_to_fit();
        }
    }
}

/// A blob-writing session on one repository.
pub struct Writer<'a> {
    repo: &'a Repository,
    /// Blobs claimed by this session and not indexed yet: on their way to a pack or an index file.
    pending: Arc<Pending>,
    bytes_added: AtomicU64,
    dry: bool,
    holds: Option<Holds<'a>>,
    sink: Sink<'a>,
    /// The dictionary data blobs are compressed with (format-spec §16).
    dict: crate::repo::dicts::SessionDict,
    /// Bytes of data blobs this session found in neither the index as loaded nor its own: once
    /// they pass [`ABSORB_AFTER`], the index files a lazy load left out are taken in.
    missed: AtomicU64,
}

/// New data a session stores before it takes in the index files a lazy load left out (what other
/// hosts added since this one last did). Below it, what a run stores is almost always its own (a
/// transcript's new lines, its databases' changed pages): a blob another host stored too costs
/// one more copy, not a read of every index file the fleet added. Past it (a new project, a
/// downloaded model), the files are taken in and later blobs are deduplicated across hosts.
pub const ABSORB_AFTER: u64 = 8 << 20;

fn packer<'r>(repo: &'r Repository, opts: &WriterOptions, pending: &Arc<Pending>) -> Packer<'r> {
    let mut p = Packer::new(repo, opts.dry_run);
    p.report_indexed(pending.clone());
    if let Some(t) = &opts.upload {
        p.count_uploads(t.clone());
    }
    p
}

/// The packer thread: feeds every blob it receives into `p`, then finishes it. It stops packing
/// when the index thread fails (`index_failed`).
fn run_packer(mut p: Packer<'_>, rx: Receiver<Blob>, index_failed: &AtomicBool) -> Result<u64> {
    let mut failure: Option<Error> = None;
    for b in rx.iter() {
        if failure.is_some() {
            continue; // drain so senders never block; the error is returned below
        }
        if index_failed.load(SeqCst) {
            failure = Some(Error::Other("the index writer stopped".into()));
            continue;
        }
        if let Err(e) = p.add(b.ty, b.id, &b.stored, b.raw_len) {
            failure = Some(e);
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    p.finish()
}

impl<'a> Writer<'a> {
    /// A session that packs on the threads that add blobs, one at a time.
    pub fn new(repo: &'a Repository, opts: WriterOptions) -> Writer<'a> {
        let pending = Arc::new(Pending { trim: AtomicBool::new(true), ..Pending::default() });
        let sink = Sink::Direct(Box::new(Mutex::new(packer(repo, &opts, &pending))));
        Writer::with_sink(repo, opts.dry_run, sink, pending)
    }

    /// A session whose packing runs in a thread of `scope`, fed through a bounded channel: the
    /// threads that encode blobs never wait for a pack to be written, only for room in the queue.
    /// Its index files are written by another thread of `scope`, so the packer never waits for
    /// the packs an index file names to reach the disk.
    pub fn spawn<'env: 'a>(scope: &'a Scope<'a, 'env>, repo: &'env Repository, opts: WriterOptions) -> Writer<'a> {
        let (tx, rx) = crossbeam_channel::bounded::<Blob>(QUEUE);
        // A rendezvous: one index file being written, one filling; no more held in memory.
        let (jtx, jrx) = crossbeam_channel::bounded(0);
        let pending = Arc::new(Pending { trim: AtomicBool::new(true), ..Pending::default() });
        let failed = Arc::new(AtomicBool::new(false));
        let mut p = packer(repo, &opts, &pending);
        p.index_in_background(jtx);
        let (pd, f2) = (pending.clone(), failed.clone());
        let indexer = scope.spawn(move || crate::repo::packer::run_indexer(repo, jrx, pd, &f2));
        let handle = scope.spawn(move || run_packer(p, rx, &failed));
        Writer::with_sink(repo, opts.dry_run, Sink::Thread { tx, packer: handle, indexer }, pending)
    }

    fn with_sink(repo: &'a Repository, dry: bool, sink: Sink<'a>, pending: Arc<Pending>) -> Writer<'a> {
        Writer {
            repo,
            pending,
            bytes_added: AtomicU64::new(0),
            dry,
            holds: None,
            sink,
            dict: Default::default(),
            missed: AtomicU64::new(0),
        }
    }

    pub fn repo(&self) -> &'a Repository {
        self.repo
    }

    /// Counts as stored already the blobs `holds` accepts, instead of every indexed blob (repair:
    /// only blobs of the right type whose pack is present are).
    pub fn holding(mut self, holds: impl Fn(BlobType, &BlobId) -> bool + Send + Sync + 'a) -> Self {
        self.holds = Some(Box::new(holds));
        // What it claims stays claimed: being indexed need not make a blob held.
        self.pending.trim.store(false, SeqCst);
        self
    }

    /// Whether the repository holds the blob already (by default: whether it is indexed).
    pub fn holds(&self, ty: BlobType, id: &BlobId) -> bool {
        match &self.holds {
            Some(h) => h(ty, id),
            // A tree this host did not write before is almost always new (trees hold paths and
            // times): one is stored again rather than taking in the index files other hosts
            // added. So is a little new data (see `ABSORB_AFTER`).
            None if ty == BlobType::Tree || self.missed.load(Relaxed) < ABSORB_AFTER => self.repo.holds_blob_now(id),
            None => self.repo.holds_blob(id),
        }
    }

    /// Claims a blob for storing: true when the repository does not hold it and no one in this
    /// session claimed it before. Whoever gets true stores it.
    pub fn claim(&self, ty: BlobType, id: &BlobId) -> bool {
        let epoch = self.pending.epoch.load(SeqCst);
        if self.holds(ty, id) {
            return false;
        }
        let mut set = self.pending.set.lock();
        // A blob that left the pending set since `holds` looked is indexed now.
        if set.contains(id) || (self.pending.epoch.load(SeqCst) != epoch && self.holds(ty, id)) {
            return false;
        }
        set.insert(*id)
    }

    /// Whether the blob is in the repository or on its way there.
    pub fn known(&self, ty: BlobType, id: &BlobId) -> bool {
        let epoch = self.pending.epoch.load(SeqCst);
        self.holds(ty, id)
            || self.pending.set.lock().contains(id)
            || (self.pending.epoch.load(SeqCst) != epoch && self.holds(ty, id))
    }

    /// Whether this session claimed the blob (and, unless [`Writer::holding`] was used, has not
    /// indexed it yet).
    pub fn claimed(&self, id: &BlobId) -> bool {
        self.pending.set.lock().contains(id)
    }

    /// Compresses (zstd `level`, 0: none) and encrypts a blob for this repository. Data blobs
    /// are compressed with the session's dictionary for their `family` once there is one; until
    /// then those that compress are offered to train one.
    pub fn encode(&self, ty: BlobType, id: &BlobId, plain: &[u8], level: i32, family: Family) -> Vec<u8> {
        let keys = self.repo.keys();
        if ty != BlobType::Data || level == 0 {
            return blob::encode(keys, ty, id, plain, level);
        }
        if let Some(d) = self.dict.current(self.repo, self.dry, family) {
            return blob::encode_with(keys, ty, id, plain, level, Some(&d));
        }
        let stored = blob::encode(keys, ty, id, plain, level);
        if stored.len() < plain.len() + crate::format::crypto::OVERHEAD + 1 {
            self.dict.offer(self.repo, plain);
        }
        stored
    }

    /// Hands an encoded blob (claimed by the caller) to the packer; `raw_len` plaintext bytes
    /// count as added.
    pub fn add(&self, ty: BlobType, id: BlobId, stored: Vec<u8>, raw_len: usize) -> Result<()> {
        self.bytes_added.fetch_add(raw_len as u64, Relaxed);
        match &self.sink {
            Sink::Direct(p) => p.lock().add(ty, id, &stored, raw_len),
            Sink::Thread { tx, .. } => tx
                .send(Blob { ty, id, stored, raw_len })
                .map_err(|_| Error::Other("backup aborted: the pack writer stopped".into())),
        }
    }

    /// Claims, encodes and adds one blob. Returns its encoded size when this call stored it;
    /// `None` when the repository holds it or it was claimed before.
    pub fn store(&self, ty: BlobType, id: BlobId, plain: &[u8], level: i32) -> Result<Option<usize>> {
        self.store_as(ty, id, plain, level, Family::Other)
    }

    /// [`Writer::store`] for a blob of a file of `family` (which dictionary compresses it).
    pub fn store_as(
        &self,
        ty: BlobType,
        id: BlobId,
        plain: &[u8],
        level: i32,
        family: Family,
    ) -> Result<Option<usize>> {
        // Data missing from a lazily loaded index counts towards taking in what it left out
        // (see `holds`); a failure to shows here.
        if ty == BlobType::Data && self.repo.absorb_is_pending() && !self.repo.holds_blob_now(&id) {
            let n = plain.len() as u64;
            if self.missed.fetch_add(n, Relaxed) + n >= ABSORB_AFTER {
                self.repo.absorb_pending()?;
            }
        }
        if !self.claim(ty, &id) {
            return Ok(None);
        }
        let stored = self.encode(ty, &id, plain, level, family);
        let n = stored.len();
        self.add(ty, id, stored, plain.len())?;
        Ok(Some(n))
    }

    /// Stores a tree; returns its id.
    pub fn store_tree(&self, t: &Tree) -> Result<TreeId> {
        Ok(self.store_tree_bytes(&t.encode())?.0)
    }

    /// Stores an encoded tree; returns its id and whether this call stored it. A tree stored is
    /// also put in the local cache (not on a dry run): the next backup reads it as its parent from
    /// there, not from the repository (on S3 that is a request per folder).
    pub fn store_tree_bytes(&self, bytes: &[u8]) -> Result<(TreeId, bool)> {
        let id = self.repo.keys().tree_id(bytes);
        let new = self.store(BlobType::Tree, id.blob(), bytes, METADATA_LEVEL)?.is_some();
        if new && !self.dry {
            if let Some(c) = self.repo.cache() {
                c.put_tree(&id, bytes)?;
            }
        }
        Ok((id, new))
    }

    /// Whether this session should train its dictionaries before it writes (see
    /// [`SessionDict::wanted`](crate::repo::dicts::SessionDict::wanted)).
    pub fn wants_dictionaries(&self) -> bool {
        self.dict.wanted(self.repo, self.dry)
    }

    /// Stores dictionaries trained for families, and compresses each family's blobs with its own
    /// from now on (see [`SessionDict::adopt`](crate::repo::dicts::SessionDict::adopt)).
    pub fn adopt_dictionaries(&self, trained: Vec<(Family, Vec<u8>)>) {
        self.dict.adopt(self.repo, trained)
    }

    /// Plaintext bytes of the blobs added so far.
    pub fn bytes_added(&self) -> u64 {
        self.bytes_added.load(Relaxed)
    }

    /// Writes the packs still open and the last index file, after every blob added (a packer
    /// thread is joined first). Returns the bytes stored: packs and index files. Call it after a
    /// failure too: what was packed so far is then indexed, for the next run to reuse.
    pub fn finish(self) -> Result<u64> {
        match self.sink {
            Sink::Direct(p) => p.into_inner().finish(),
            Sink::Thread { tx, packer, indexer } => {
                drop(tx); // the packer finishes once every sender is gone, then the index thread
                let packed = packer.join().unwrap_or_else(|_| Err(Error::Other("packer thread panicked".into())));
                let indexed = indexer.join().unwrap_or_else(|_| Err(Error::Other("index thread panicked".into())));
                // The index thread's own failure first: the packer then only says it stopped.
                let indexed = indexed?;
                Ok(packed? + indexed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::backend::{Backend, Kind, ObjectName};
    use crate::format::crypto::KdfParams;
    use crate::format::index::IndexFile;
    use crate::format::tree::{Node, NodeKind};
    use crate::repo::{CacheOptions, InitOptions, Secret};
    use rayon::prelude::*;

    fn repo(dir: &std::path::Path, cache: bool) -> Repository {
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.join("repo")));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(be.clone(), &Secret(b"pw".to_vec()), &opts).unwrap();
        let c = CacheOptions { dir: Some(dir.join("cache")), disabled: !cache };
        Repository::open(be, &Secret(b"pw".to_vec()), &c).unwrap()
    }

    fn chunks() -> Vec<Vec<u8>> {
        (0..64u32).map(|i| format!("chunk {} ", i % 40).repeat(100).into_bytes()).collect()
    }

    fn tree() -> Tree {
        let f = Node {
            name: b"f".to_vec(),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            dev: 0,
            ino: 0,
            nlink: 1,
            size: 0,
            content: vec![],
            subtree: None,
            target: vec![],
        };
        Tree::new(vec![f])
    }

    /// Every worker meets the same blobs; each is stored once, and the index has them after
    /// `finish`.
    fn stores_each_blob_once(w: Writer<'_>, r: &Repository) {
        let data = chunks();
        let stored: Vec<bool> = data
            .par_iter()
            .map(|c| {
                let id = r.keys().blob_id(c);
                w.store(BlobType::Data, id, c, 3).unwrap().is_some()
            })
            .collect();
        assert_eq!(stored.iter().filter(|s| **s).count(), 40, "40 distinct chunks");
        let t = w.store_tree(&tree()).unwrap();
        assert!(w.known(BlobType::Tree, &t.blob()) && w.claimed(&t.blob()));
        assert_eq!(w.store_tree(&tree()).unwrap(), t, "stored once, same id");
        let added = w.bytes_added();
        assert_eq!(added, data[..40].iter().map(|c| c.len() as u64).sum::<u64>() + tree().encode().len() as u64);
        let bytes = w.finish().unwrap();
        assert!(bytes > 0);
        for c in &data {
            assert_eq!(r.read_data(&r.keys().data_id(c)).unwrap(), *c);
        }
        assert_eq!(r.load_tree(&t).unwrap(), tree());
        assert_eq!(r.backend().list(Kind::Index).unwrap().len(), 1);
    }

    #[test]
    fn a_direct_session_stores_each_blob_once() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path(), false);
        stores_each_blob_once(Writer::new(&r, WriterOptions::default()), &r);
    }

    #[test]
    fn a_threaded_session_stores_each_blob_once_and_caches_its_trees() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path(), true);
        let upload = Arc::new(Transfer::default());
        let opts = WriterOptions { dry_run: false, upload: Some(upload.clone()) };
        std::thread::scope(|s| stores_each_blob_once(Writer::spawn(s, &r, opts), &r));
        let id = r.keys().tree_id(&tree().encode());
        assert!(r.cache().unwrap().get_tree(&id).unwrap().is_some(), "the tree is in the cache");
        // A second session finds everything stored.
        let w = Writer::new(&r, WriterOptions::default());
        let c = &chunks()[0];
        assert_eq!(w.store(BlobType::Data, r.keys().blob_id(c), c, 3).unwrap(), None);
        assert_eq!(w.finish().unwrap(), 0);
    }

    /// Packs that take 200 ms each to store, and what each index file named when it was written.
    #[derive(Default)]
    struct SlowPacks {
        stored: parking_lot::Mutex<std::collections::HashSet<String>>,
        /// Per index file written: how many of the packs it names were stored before it.
        indexes: parking_lot::Mutex<Vec<(usize, usize)>>,
        keys: std::sync::OnceLock<crate::format::crypto::Keys>,
    }

    impl crate::backend::watched::Hooks for SlowPacks {
        fn before_write(&self, name: &ObjectName, data: &[u8]) {
            self.record(name, data);
        }
        fn after_write(&self, name: &ObjectName) {
            self.stored.lock().insert(name.to_string());
        }
    }

    impl SlowPacks {
        fn record(&self, name: &ObjectName, data: &[u8]) {
            match name.kind() {
                Kind::Pack => std::thread::sleep(std::time::Duration::from_millis(200)),
                Kind::Index => {
                    let f = IndexFile::decode(self.keys.get().unwrap(), name.as_str(), data).unwrap();
                    let stored = self.stored.lock();
                    let named = f.packs.len();
                    let before = f.packs.iter().filter(|p| stored.contains(&ObjectName::of(&p.id).to_string())).count();
                    self.indexes.lock().push((named, before));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn index_files_are_written_beside_the_packer_and_only_name_stored_packs() {
        let d = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("repo")));
        let slow = Arc::new(crate::backend::watched::Watched { inner: inner.clone(), hooks: SlowPacks::default() });
        let opts = InitOptions {
            kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 },
            pack_size: 1 << 20,
            ..Default::default()
        };
        Repository::init(inner, &Secret(b"pw".to_vec()), &opts).unwrap();
        let be: Arc<dyn Backend> = slow.clone();
        let c = CacheOptions { dir: Some(d.path().join("cache")), disabled: false };
        let r = Repository::open(be, &Secret(b"pw".to_vec()), &c).unwrap();
        let _ = slow.hooks.keys.set(r.keys().clone());
        // 40,000 distinct small blobs: several 1 MiB packs, an index file every 16 Ki blobs.
        let blobs: Vec<Vec<u8>> = (0..40_000u32).map(|i| format!("{i:08} ").repeat(12).into_bytes()).collect();
        std::thread::scope(|s| {
            let w = Writer::spawn(s, &r, WriterOptions::default());
            blobs.par_iter().for_each(|b| {
                w.store(BlobType::Data, r.keys().blob_id(b), b, 3).unwrap();
            });
            w.finish().unwrap();
        });
        let indexes = slow.hooks.indexes.lock().clone();
        assert!(indexes.len() >= 3, "index files while packing, and the last: {indexes:?}");
        for (named, stored_before) in &indexes {
            assert_eq!(named, stored_before, "an index file named a pack not yet stored: {indexes:?}");
        }
        for b in blobs.iter().step_by(997) {
            assert_eq!(r.read_data(&r.keys().data_id(b)).unwrap(), *b);
        }
    }

    #[test]
    fn a_dry_session_counts_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path(), true);
        let w = Writer::new(&r, WriterOptions { dry_run: true, upload: None });
        let c = &chunks()[0];
        assert!(w.store(BlobType::Data, r.keys().blob_id(c), c, 3).unwrap().is_some());
        let t = w.store_tree(&tree()).unwrap();
        assert!(w.finish().unwrap() > 0, "what would be stored is counted");
        assert!(r.backend().list(Kind::Pack).unwrap().is_empty());
        assert!(r.backend().list(Kind::Index).unwrap().is_empty());
        assert!(r.cache().unwrap().get_tree(&t).unwrap().is_none(), "no tree cached on a dry run");
    }

    #[test]
    fn holding_decides_what_counts_as_stored() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path(), false);
        let c = &chunks()[0];
        let id = r.keys().blob_id(c);
        let w = Writer::new(&r, WriterOptions::default());
        w.store(BlobType::Data, id, c, 3).unwrap();
        w.finish().unwrap();
        // Indexed, but this session counts only trees as held: the chunk is stored again.
        let w = Writer::new(&r, WriterOptions::default()).holding(|ty, _| ty == BlobType::Tree);
        assert!(!w.holds(BlobType::Data, &id));
        assert!(w.store(BlobType::Data, id, c, 3).unwrap().is_some());
        assert!(w.store(BlobType::Data, id, c, 3).unwrap().is_none(), "claimed once");
        w.finish().unwrap();
    }
}
