//! Filling packs: blobs of each type go into their own open pack; a pack is written when it
//! reaches the target size, and an index file is written after every `PACKS_PER_INDEX` packs and
//! at the end, so the index always follows its packs and an interrupted writer keeps what it
//! finished. The writer session ([`crate::repo::writer`]) feeds it, directly or from a thread.
//!
//! Finished packs are stored by uploader threads (as many as the backend's `connections`, at most
//! `MAX_UPLOADS`, and no more than fit in `UPLOAD_BYTES`), fed through a rendezvous channel, so
//! the packer fills the next pack while the last is written, and memory stays bounded whatever
//! `--connections` says: spooled packs go up from their files (up to `MAX_UPLOADS` at once), packs
//! held in memory one at a time at the default 16 MiB. Before an index
//! file is written every pack it names is waited for, so an index never names a pack that is not
//! stored. A backup's packer hands its index files to a thread of their own ([`run_indexer`]),
//! which waits for their packs and writes them while the packer fills the next packs: written by
//! the packer itself, each index file stopped the whole backup while the packs before it were
//! flushed to disk (a first backup of 3 GB stalled for about 0.5 s at each of a dozen).
//!
//! A pack fills in a spool file (`clawback-pack-*.tmp` in the cache's `tmp` folder, or the system's
//! with no cache), not in memory, and is stored from there ([`Backend::write_file`]: the local
//! backend links it into place). A spool file is locked while its packer lives; one left by a crash
//! is unlocked, and the next packer removes it. Only a dry run packs in memory.

use crate::backend::{Backend, ObjectName};
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::id::BlobId;
use crate::format::id::PackId;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{FinishedPack, PackWriter};
use crate::progress::Transfer;
use crate::repo::Repository;
use crossbeam_channel::{Receiver, Sender};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Pack uploads in flight at most, whatever the backend's `connections`.
const MAX_UPLOADS: usize = 4;

/// Pack bytes in flight at most (at least one pack) when packs are held in memory: each more in
/// flight would add a pack to a backup's peak (the target is 64 MiB in all). Spooled packs go up
/// from their files, so they cost no memory in flight and up to `MAX_UPLOADS` go at once.
const UPLOAD_BYTES: usize = 16 << 20;

/// A spool file's name starts and ends so.
const SPOOL_PREFIX: &str = "clawback-pack-";
const SPOOL_SUFFIX: &str = ".tmp";

/// An index file is written after this many packs, so a long interrupted backup keeps its progress.
pub const PACKS_PER_INDEX: usize = 64;

/// Or after this many blobs (small files: 64 packs can hold a million), so the entries waiting for
/// their index file, and the writer's blobs not yet indexed, stay few.
/// 16 Ki: writing an index file holds a few copies of its entries at once (the file, its encoding,
/// the cache's row, the blob table's run), which at 32 Ki was an 8 MiB rise in a first backup's
/// memory.
pub const BLOBS_PER_INDEX: usize = 16 * 1024;

pub struct Packer<'a> {
    repo: &'a Repository,
    /// Where index files go when a thread writes them ([`Packer::index_in_background`]).
    indexer: Option<Sender<IndexJob>>,
    /// The uploads of the packs in `done` that may not be stored yet.
    done_uploads: Vec<Arc<Upload>>,
    pack_size: usize,
    /// Count what would be written, write nothing.
    dry: bool,
    writers: [PackWriter; 2],
    done: Vec<IndexPack>,
    /// Blobs listed in `done`.
    done_blobs: usize,
    /// Told the blobs of each index file written (they leave the writer's pending set).
    indexed: Option<Arc<crate::repo::writer::Pending>>,
    /// Bytes written (or, dry, that would be): packs and index files.
    pub bytes_stored: u64,
    /// Started on the first pack when the backend takes more than one request at a time.
    uploads: Option<Uploads>,
    /// Pack bytes queued and stored, for a progress display.
    transfer: Arc<Transfer>,
    /// Where spool files go (`None`: a dry run, packing in memory).
    spool_dir: Option<PathBuf>,
    /// The spool file of each open pack.
    spools: [Option<Spool>; 2],
    /// Whether crashes' spool files were looked for (once, before the first spool file).
    swept: bool,
}

/// A pack's spool file, locked while it lives, removed when dropped (after its pack is stored, or
/// when the packer fails).
struct Spool {
    path: PathBuf,
    _lock: File,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where spool files go: the cache's `tmp` folder, else the system's temporary folder.
fn spool_dir(repo: &Repository) -> PathBuf {
    repo.cache().map_or_else(std::env::temp_dir, |c| c.dir().join("tmp"))
}

/// A new spool file in `dir`, locked, and a writer appending to it. It is created under another
/// name and renamed once locked, so a sweep never takes it for a crash's leftover.
fn new_spool(dir: &Path, ty: BlobType) -> std::io::Result<(PackWriter, Spool)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let tmp = dir.join(format!("clawback-new-{:016x}", rand::random::<u64>()));
    // 0600 like every object: the local backend links this very file into the repository.
    let f = File::options().read(true).write(true).create_new(true).mode(0o600).open(&tmp)?;
    let lock = f.try_clone()?;
    let locked = lock.lock();
    let path = dir.join(format!("{SPOOL_PREFIX}{:016x}{SPOOL_SUFFIX}", rand::random::<u64>()));
    let renamed = locked.and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((PackWriter::spooled(ty, f), Spool { path, _lock: lock }))
}

/// Removes the spool files in `dir` no packer holds: what a crashed one left.
fn sweep_spools(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SPOOL_PREFIX) && name.ends_with(SPOOL_SUFFIX) {
            if let Ok(f) = File::options().write(true).open(e.path()) {
                if f.try_lock().is_ok() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// A finished pack on its way to the store: in memory (dry runs, and when no spool file could be
/// made), or in its spool file.
enum Ready {
    Memory(FinishedPack),
    Spooled { id: PackId, len: u64, spool: Spool },
}

impl Ready {
    fn len(&self) -> u64 {
        match self {
            Ready::Memory(p) => p.bytes.len() as u64,
            Ready::Spooled { len, .. } => *len,
        }
    }
}

/// One pack's upload, as the index thread waits for it: `Some(stored)` once it is over.
#[derive(Default)]
pub(crate) struct Upload {
    state: parking_lot::Mutex<Option<bool>>,
    over: parking_lot::Condvar,
}

impl Upload {
    fn end(&self, stored: bool) {
        let mut s = self.state.lock();
        if s.is_none() {
            *s = Some(stored);
            self.over.notify_all();
        }
    }

    /// Waits until the upload is over; whether the pack was stored.
    fn wait(&self) -> bool {
        let mut s = self.state.lock();
        loop {
            if let Some(stored) = *s {
                return stored;
            }
            self.over.wait(&mut s);
        }
    }
}

/// Ends an upload as failed if the uploader never said (it panicked, or stopped first).
struct UploadGuard(Arc<Upload>);

impl Drop for UploadGuard {
    fn drop(&mut self) {
        self.0.end(false);
    }
}

/// An index file for the index thread, and the uploads of the packs it names.
pub(crate) struct IndexJob {
    file: IndexFile,
    uploads: Vec<Arc<Upload>>,
}

/// Stores an index file, then tells `indexed` its blobs are indexed; returns its stored size.
fn save_index_file(
    repo: &Repository,
    f: &IndexFile,
    indexed: Option<&Arc<crate::repo::writer::Pending>>,
) -> Result<u64> {
    let id = repo.save_index(f)?;
    crate::failpoint::hit("packer:after-index");
    if let Some(p) = indexed {
        p.indexed(f.packs.iter().flat_map(|p| p.blobs.iter().map(|b| &b.id)));
    }
    Ok(repo.backend().size(&ObjectName::of(&id)).unwrap_or(0))
}

/// The index thread of a backup: writes each index file it is handed once every pack it names is
/// stored, in order, and says which blobs are indexed. Returns the bytes of the index files
/// written; after a failure it writes no more, but still takes the jobs, so the packer never waits.
pub(crate) fn run_indexer(
    repo: &Repository,
    jobs: Receiver<IndexJob>,
    indexed: Arc<crate::repo::writer::Pending>,
    failed: &std::sync::atomic::AtomicBool,
) -> Result<u64> {
    let mut bytes = 0;
    let mut failure = None;
    // After a pack failed to store, no later index file is written; the packer returns that
    // upload's own error.
    let mut upload_failed = false;
    for job in jobs {
        if failure.is_some() || upload_failed {
            continue;
        }
        if !job.uploads.iter().all(|u| u.wait()) {
            upload_failed = true;
            continue;
        }
        match save_index_file(repo, &job.file, Some(&indexed)) {
            Ok(n) => bytes += n,
            Err(e) => {
                failure = Some(e);
                failed.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    failure.map_or(Ok(bytes), Err)
}

/// The uploader threads and the uploads not yet confirmed.
struct Uploads {
    tx: Option<Sender<(Ready, UploadGuard)>>,
    results: Receiver<Result<()>>,
    threads: Vec<JoinHandle<()>>,
    in_flight: usize,
}

/// Stores one pack; a pack already there (same name, so same bytes) is fine. A spool file goes once
/// its pack is stored.
fn store_pack(be: &dyn Backend, p: Ready) -> Result<()> {
    let (name, r) = match &p {
        Ready::Memory(p) => {
            let name = ObjectName::of(&p.id);
            let r = be.write(&name, &p.bytes);
            (name, r)
        }
        Ready::Spooled { id, spool, .. } => {
            let name = ObjectName::of(id);
            let r = be.write_file(&name, &spool.path);
            (name, r)
        }
    };
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        r => r.map_err(|source| Error::Backend { op: "write pack", name: name.to_string(), source })?,
    }
    crate::failpoint::hit("packer:after-pack");
    Ok(())
}

impl Uploads {
    fn start(be: Arc<dyn Backend>, n: usize, transfer: Arc<Transfer>) -> Uploads {
        let (tx, rx) = crossbeam_channel::bounded::<(Ready, UploadGuard)>(0);
        let (rtx, results) = crossbeam_channel::unbounded();
        let threads = (0..n)
            .map(|_| {
                let (be, rx, rtx, transfer) = (be.clone(), rx.clone(), rtx.clone(), transfer.clone());
                std::thread::spawn(move || {
                    for (p, upload) in rx {
                        let len = p.len();
                        let r = store_pack(be.as_ref(), p);
                        if r.is_ok() {
                            transfer.stored(len);
                        }
                        upload.0.end(r.is_ok());
                        if rtx.send(r).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Uploads { tx: Some(tx), results, threads, in_flight: 0 }
    }

    /// Hands a pack to a free uploader, waiting for one if all are busy; returns its upload.
    fn send(&mut self, p: Ready) -> Result<Arc<Upload>> {
        self.collect(false)?;
        let tx = self.tx.as_ref().expect("uploads open");
        let upload = Arc::new(Upload::default());
        tx.send((p, UploadGuard(upload.clone()))).map_err(|_| Error::Other("the pack uploaders stopped".into()))?;
        self.in_flight += 1;
        Ok(upload)
    }

    /// Takes the finished uploads' results (all of them when `all`); the first failure is returned.
    fn collect(&mut self, all: bool) -> Result<()> {
        let mut first_err = None;
        while self.in_flight > 0 {
            let r = if all { self.results.recv().map_err(|_| ()) } else { self.results.try_recv().map_err(|_| ()) };
            let Ok(r) = r else {
                if all {
                    return Err(Error::Other("a pack uploader stopped".into()));
                }
                break;
            };
            self.in_flight -= 1;
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl<'a> Packer<'a> {
    pub fn new(repo: &'a Repository, dry: bool) -> Self {
        Packer {
            repo,
            indexer: None,
            done_uploads: Vec::new(),
            pack_size: repo.config().pack_size as usize,
            dry,
            writers: [PackWriter::new(BlobType::Data, 0), PackWriter::new(BlobType::Tree, 0)],
            done: Vec::new(),
            done_blobs: 0,
            indexed: None,
            bytes_stored: 0,
            uploads: None,
            transfer: Arc::default(),
            spool_dir: (!dry).then(|| spool_dir(repo)),
            spools: [None, None],
            swept: false,
        }
    }

    /// Tells `p` the blobs of every index file written, once it is loaded.
    pub(crate) fn report_indexed(&mut self, p: Arc<crate::repo::writer::Pending>) {
        self.indexed = Some(p);
    }

    /// Hands index files to the index thread on `jobs` ([`run_indexer`]) instead of writing them
    /// here. Not for a dry run.
    pub(crate) fn index_in_background(&mut self, jobs: Sender<IndexJob>) {
        if !self.dry {
            self.indexer = Some(jobs);
        }
    }

    /// Counts the packs this packer uploads in `t` (queued when handed over, done when stored).
    pub fn count_uploads(&mut self, t: Arc<Transfer>) {
        self.transfer = t;
    }

    /// Adds an encrypted blob; writes its pack (and maybe an index file) when the pack is full.
    pub fn add(&mut self, ty: BlobType, id: BlobId, stored: &[u8], raw_len: usize) -> Result<()> {
        let pack_size = self.pack_size;
        let w = &mut self.writers[ty as usize];
        if w.is_empty() {
            let spooled = match &self.spool_dir {
                Some(dir) => {
                    if !self.swept {
                        sweep_spools(dir);
                        self.swept = true;
                    }
                    let (w, s) = new_spool(dir, ty).map_err(|e| Error::io("write a pack to", dir, e))?;
                    self.spools[ty as usize] = Some(s);
                    w
                }
                None => PackWriter::new(ty, pack_size + pack_size / 8),
            };
            self.writers[ty as usize] = spooled;
        }
        let w = &mut self.writers[ty as usize];
        w.add(id, stored, raw_len);
        if w.len() >= pack_size {
            let full = std::mem::replace(w, PackWriter::new(ty, 0));
            self.flush(full)?;
            if self.done.len() >= PACKS_PER_INDEX || self.done_blobs >= BLOBS_PER_INDEX {
                self.write_index()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, w: PackWriter) -> Result<()> {
        let (p, entry) = match self.spools[w.ty as usize].take() {
            Some(spool) => {
                let (id, len, blobs) =
                    w.finish_spooled(self.repo.keys()).map_err(|e| Error::io("write a pack to", &spool.path, e))?;
                (Ready::Spooled { id, len, spool }, IndexPack { id, size: len, blobs })
            }
            None => {
                let mut p = w.finish(self.repo.keys());
                let entry = IndexPack { id: p.id, size: p.bytes.len() as u64, blobs: std::mem::take(&mut p.entries) };
                (Ready::Memory(p), entry)
            }
        };
        let size = entry.size;
        if !self.dry {
            let conns = self.repo.backend().connections();
            let n = match self.spool_dir {
                Some(_) => conns.min(MAX_UPLOADS),
                None => conns.min(MAX_UPLOADS).min((UPLOAD_BYTES / self.pack_size.max(1)).max(1)),
            };
            self.transfer.queue(size);
            if conns <= 1 {
                store_pack(self.repo.backend().as_ref(), p)?;
                self.transfer.stored(size);
            } else {
                let (be, t) = (self.repo.backend().clone(), self.transfer.clone());
                let upload = self.uploads.get_or_insert_with(|| Uploads::start(be, n, t)).send(p)?;
                self.done_uploads.push(upload);
            }
        }
        self.bytes_stored += size;
        self.done_blobs += entry.blobs.len();
        self.done.push(entry);
        Ok(())
    }

    fn write_index(&mut self) -> Result<()> {
        if self.done.is_empty() {
            return Ok(());
        }
        let f = IndexFile { version: 1, supersedes: vec![], packs: std::mem::take(&mut self.done) };
        self.done_blobs = 0;
        let uploads = std::mem::take(&mut self.done_uploads);
        if let Some(jobs) = &self.indexer {
            // (The index thread waits for the packs; an upload that failed is returned here.)
            if let Some(u) = &mut self.uploads {
                u.collect(false)?;
            }
            return jobs
                .send(IndexJob { file: f, uploads })
                .map_err(|_| Error::Other("the index writer stopped".into()));
        }
        // Every pack the index will name must be stored first.
        if let Some(u) = &mut self.uploads {
            u.collect(true)?;
        }
        if self.dry {
            self.bytes_stored += f.encode(self.repo.keys()).len() as u64;
        } else {
            self.bytes_stored += save_index_file(self.repo, &f, self.indexed.as_ref())?;
        }
        Ok(())
    }

    /// Writes the packs still open and the last index file. Returns the bytes stored in all.
    pub fn finish(mut self) -> Result<u64> {
        for ty in [BlobType::Data, BlobType::Tree] {
            let w = std::mem::replace(&mut self.writers[ty as usize], PackWriter::new(ty, 0));
            if !w.is_empty() {
                self.flush(w)?;
            }
        }
        self.write_index()?;
        // Every upload is over, and its error returned, before the session ends.
        if let Some(u) = &mut self.uploads {
            u.collect(true)?;
        }
        Ok(self.bytes_stored)
    }
}
