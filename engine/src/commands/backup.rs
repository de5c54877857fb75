//! Backup: walk the given paths, cut changed files into chunks, store the chunks and trees that are
//! new, and write a snapshot last.
//!
//! Parallelism comes from rayon: the entries of each directory are processed in parallel, and the
//! chunks of each read batch of a file are hashed, compressed and encrypted in parallel. Encrypted
//! blobs go through a bounded channel to one packer thread that fills packs and writes them, so
//! memory stays bounded by (threads × batch) + (2 × pack size) whatever the amount of data.
//! A file whose size, mtime, ctime and inode match the parent snapshot is not read again.

use crate::blob::{self, BlobType};
use crate::chunker::Chunker;
use crate::error::{Error, IoContext, Result};
use crate::id::{BlobId, IdSet, SnapshotId};
use crate::index::{IndexFile, IndexPack};
use crate::pack::PackWriter;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{BackupIssue, Snapshot, Summary};
use crate::tree::{Node, NodeKind, Tree};
use crossbeam_channel::{bounded, Receiver, Sender};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use parking_lot::Mutex;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Absolute paths to back up.
    pub paths: Vec<PathBuf>,
    /// gitignore-style patterns, matched against absolute paths.
    pub excludes: Vec<String>,
    /// Paths never backed up (the repository itself, the cache).
    pub skip_paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// Compute everything, store nothing.
    pub dry_run: bool,
    /// Use this parent instead of the latest snapshot of the same host and paths.
    pub parent: Option<SnapshotId>,
    /// Read every file even when its metadata says it is unchanged.
    pub force: bool,
    /// Count the totals first in a second thread (for an ETA).
    pub scan_totals: bool,
    /// OpenClaw's layout, recorded in the snapshot.
    pub openclaw: Option<crate::snapshot::OpenclawMeta>,
    /// Folders (workspaces) under which `.gitignore` files are honoured; empty: none.
    pub gitignore_roots: Vec<PathBuf>,
    /// Why each exclude pattern is there (pattern, reason), for the dry-run report.
    pub exclude_reasons: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct BackupResult {
    pub snapshot_id: Option<SnapshotId>,
    pub parent_id: Option<SnapshotId>,
    pub summary: Summary,
    pub errors: Vec<BackupIssue>,
    pub skipped: Vec<BackupIssue>,
}

/// Bytes of file read per batch; the chunks of a batch are processed in parallel.
const BATCH: usize = 8 << 20;
/// An index file is written after this many packs, so a long interrupted backup keeps its progress.
const PACKS_PER_INDEX: usize = 64;

enum PackerMsg {
    Blob {
        ty: BlobType,
        id: BlobId,
        stored: Vec<u8>,
        raw_len: usize,
    },
}

#[derive(Default)]
struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unmodified: AtomicU64,
    dirs: AtomicU64,
    bytes_read: AtomicU64,
    bytes_added: AtomicU64,
    total_files: AtomicU64,
    total_bytes: AtomicU64,
}

struct Ctx<'a> {
    repo: &'a Repository,
    chunker: Chunker,
    level: i32,
    excludes: Gitignore,
    skip: HashSet<PathBuf>,
    pending: Mutex<IdSet<BlobId>>,
    tx: Sender<PackerMsg>,
    c: Counters,
    errors: Mutex<Vec<BackupIssue>>,
    skipped: Mutex<Vec<BackupIssue>>,
    progress: &'a Progress,
    force: bool,
}

pub fn build_excludes(patterns: &[String]) -> Result<Gitignore> {
    let mut b = GitignoreBuilder::new("/");
    for p in patterns {
        b.add_line(None, p)
            .map_err(|e| Error::Usage(format!("bad exclude pattern {p:?}: {e}")))?;
    }
    b.build()
        .map_err(|e| Error::Usage(format!("bad exclude patterns: {e}")))
}

/// Makes a path absolute and lexically clean (no `.`/`..`), without following symlinks.
pub fn absolute_clean(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .ctx("read current folder", p)?
            .join(p)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

fn mtime_ns(md: &Metadata) -> i64 {
    md.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.mtime_nsec())
}
fn ctime_ns(md: &Metadata) -> i64 {
    md.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.ctime_nsec())
}

fn node_from_meta(name: Vec<u8>, kind: NodeKind, md: &Metadata) -> Node {
    Node {
        name,
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: mtime_ns(md),
        ctime_ns: ctime_ns(md),
        dev: md.dev(),
        ino: md.ino(),
        nlink: md.nlink(),
        size: if kind == NodeKind::File { md.len() } else { 0 },
        content: Vec::new(),
        subtree: None,
        target: Vec::new(),
    }
}

/// The tree of path components leading to the backed-up paths; `None` marks a backed-up path.
#[derive(Default)]
struct Trie(BTreeMap<Vec<u8>, Option<Trie>>);

impl Trie {
    fn insert(&mut self, comps: &[Vec<u8>]) {
        let Some((first, rest)) = comps.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.0.insert(first.clone(), None);
            return;
        }
        match self
            .0
            .entry(first.clone())
            .or_insert_with(|| Some(Trie::default()))
        {
            Some(t) => t.insert(rest),
            None => {} // an ancestor is backed up whole already
        }
    }
}

/// Runs a backup. Returns the snapshot id (none on a dry run) and the counters.
pub fn backup(
    repo: &Repository,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<BackupResult> {
    let start = Instant::now();
    if opts.paths.is_empty() {
        return Err(Error::Usage("nothing to back up: no paths given".into()));
    }
    let mut paths = Vec::new();
    for p in &opts.paths {
        let a = absolute_clean(p)?;
        if let Err(e) = std::fs::symlink_metadata(&a) {
            return Err(Error::io("read", &a, e));
        }
        paths.push(a);
    }
    paths.sort();
    paths.dedup();
    let path_strings: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let host = opts.host.clone().unwrap_or_else(crate::repo::hostname);

    // The parent: given, or the latest snapshot of this host with the same paths.
    let parent = match &opts.parent {
        Some(id) => Some(repo.find_snapshot(&id.to_hex(), |_| true)?),
        None => repo
            .snapshots()?
            .into_iter()
            .rev()
            .find(|(_, s)| s.hostname == host && s.paths == path_strings),
    };
    let parent_tree = match &parent {
        Some((_, s)) => Some(repo.load_tree(&s.tree)?),
        None => None,
    };

    let mut trie = Trie::default();
    for p in &paths {
        let comps: Vec<Vec<u8>> = p
            .components()
            .skip(1)
            .map(|c| c.as_os_str().as_bytes().to_vec())
            .collect();
        if comps.is_empty() {
            trie = Trie::default();
            trie.0.insert(Vec::new(), None); // "/" itself
            break;
        }
        trie.insert(&comps);
    }

    let cfg = repo.config();
    let (tx, rx) = bounded::<PackerMsg>(16);
    let excludes = build_excludes(&opts.excludes)?;
    let pack_size = cfg.pack_size as usize;
    let dry = opts.dry_run;
    let stop_scan = AtomicBool::new(false);

    let (root, counters, mut errors, mut skipped, packed) = std::thread::scope(|s| {
        let packer = s.spawn(move || packer(repo, rx, pack_size, dry));
        if opts.scan_totals {
            let (paths, ex, stop) = (&paths, &excludes, &stop_scan);
            s.spawn(move || scan_totals(paths, ex, progress, stop));
        }
        let ctx = Ctx {
            repo,
            chunker: Chunker::new(cfg.chunker, repo.keys().chunker_seed),
            level: cfg.compression,
            excludes: excludes.clone(),
            skip: opts
                .skip_paths
                .iter()
                .filter_map(|p| absolute_clean(p).ok())
                .collect(),
            pending: Mutex::new(IdSet::default()),
            tx,
            c: Counters::default(),
            errors: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            progress,
            force: opts.force,
        };
        let root = if trie.0.contains_key(&Vec::new()) {
            ctx.process_dir(Path::new("/"), parent_tree.as_ref())
        } else {
            ctx.process_virtual(Path::new("/"), &trie, parent_tree.as_ref())
        };
        let root = root.and_then(|t| ctx.store_tree(&t));
        stop_scan.store(true, Relaxed);
        let Ctx {
            c,
            errors,
            skipped,
            tx,
            ..
        } = ctx;
        drop(tx); // the packer finishes once every sender is gone
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(Error::Other("packer thread panicked".into())));
        (root, c, errors.into_inner(), skipped.into_inner(), packed)
    });
    let packed = packed?;
    let root = root?;

    errors.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let mut summary = Summary {
        files_new: counters.files_new.into_inner(),
        files_changed: counters.files_changed.into_inner(),
        files_unmodified: counters.files_unmodified.into_inner(),
        dirs: counters.dirs.into_inner(),
        bytes_read: counters.bytes_read.into_inner(),
        bytes_added: counters.bytes_added.into_inner(),
        bytes_stored: packed.bytes_stored,
        duration_s: 0.0,
        total_files: counters.total_files.into_inner(),
        total_bytes: counters.total_bytes.into_inner(),
    };
    let time = opts.time.unwrap_or_else(chrono::Utc::now);
    let mut snap = Snapshot {
        version: 1,
        time: time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        hostname: host,
        username: crate::repo::username(),
        paths: path_strings,
        tags: opts.tags.clone(),
        parent: parent.as_ref().map(|(id, _)| *id),
        tree: root,
        summary: summary.clone(),
        program_version: format!("clawback {}", env!("CARGO_PKG_VERSION")),
        errors: errors.clone(),
        skipped: skipped.clone(),
        changed: Vec::new(),
        openclaw: opts.openclaw.clone(),
    };
    let snapshot_id = if dry {
        None
    } else {
        // The snapshot carries its own size in bytes_stored: iterate to the fixed point (the
        // encoded length moves with the digits of the number it holds), then report what was
        // actually written.
        summary.duration_s = start.elapsed().as_secs_f64();
        snap.summary.duration_s = summary.duration_s;
        let base = snap.summary.bytes_stored;
        let mut own = 0u64;
        for _ in 0..8 {
            snap.summary.bytes_stored = base + own;
            let n = snap.encode(repo.keys()).len() as u64;
            if n == own {
                break;
            }
            own = n;
        }
        let id = repo.save_snapshot(&snap)?;
        summary.bytes_stored = base
            + repo
                .backend()
                .size(crate::backend::Kind::Snapshot, &id.to_hex())
                .unwrap_or(own);
        Some(id)
    };
    summary.duration_s = start.elapsed().as_secs_f64();
    Ok(BackupResult {
        snapshot_id,
        parent_id: snap.parent,
        summary,
        errors,
        skipped,
    })
}

struct Packed {
    bytes_stored: u64,
}

/// Fills one pack per blob type, writes full packs, and writes index files for them.
fn packer(
    repo: &Repository,
    rx: Receiver<PackerMsg>,
    pack_size: usize,
    dry: bool,
) -> Result<Packed> {
    let keys = repo.keys();
    let mut writers = [
        PackWriter::new(BlobType::Data, 0),
        PackWriter::new(BlobType::Tree, 0),
    ];
    let mut done: Vec<IndexPack> = Vec::new();
    let mut bytes_stored = 0u64;
    let mut failure: Option<Error> = None;

    let flush = |w: PackWriter, done: &mut Vec<IndexPack>, bytes: &mut u64| -> Result<()> {
        let p = w.finish(keys);
        if !dry {
            repo.save_pack(&p)?;
        }
        *bytes += p.bytes.len() as u64;
        done.push(IndexPack {
            id: p.id,
            size: p.bytes.len() as u64,
            blobs: p.entries,
        });
        Ok(())
    };
    let write_index = |done: &mut Vec<IndexPack>, bytes: &mut u64| -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let f = IndexFile {
            version: 1,
            supersedes: vec![],
            packs: std::mem::take(done),
        };
        if dry {
            *bytes += f.encode(keys).len() as u64;
        } else {
            let id = repo.save_index(&f)?;
            *bytes += repo
                .backend()
                .size(crate::backend::Kind::Index, &id.to_hex())
                .unwrap_or(0);
        }
        Ok(())
    };

    for msg in rx.iter() {
        if failure.is_some() {
            continue; // drain so senders never block; the error is reported below
        }
        let PackerMsg::Blob {
            ty,
            id,
            stored,
            raw_len,
        } = msg;
        let w = &mut writers[ty as usize];
        if w.is_empty() {
            *w = PackWriter::new(ty, pack_size + pack_size / 8);
        }
        w.add(id, &stored, raw_len);
        if w.len() >= pack_size {
            let full = std::mem::replace(w, PackWriter::new(ty, 0));
            if let Err(e) = flush(full, &mut done, &mut bytes_stored) {
                failure = Some(e);
                continue;
            }
            if done.len() >= PACKS_PER_INDEX {
                if let Err(e) = write_index(&mut done, &mut bytes_stored) {
                    failure = Some(e);
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    for w in writers {
        if !w.is_empty() {
            flush(w, &mut done, &mut bytes_stored)?;
        }
    }
    write_index(&mut done, &mut bytes_stored)?;
    Ok(Packed { bytes_stored })
}

/// Walks the paths counting files and bytes, for the progress display's totals.
fn scan_totals(paths: &[PathBuf], ex: &Gitignore, progress: &Progress, stop: &AtomicBool) {
    for p in paths {
        let mut stack = vec![p.clone()];
        while let Some(dir) = stack.pop() {
            if stop.load(Relaxed) {
                return;
            }
            let md = match std::fs::symlink_metadata(&dir) {
                Ok(m) => m,
                Err(_) => continue,
            };
            if md.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let path = e.path();
                        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                        if !ex.matched(&path, is_dir).is_ignore() {
                            stack.push(path);
                        }
                    }
                }
            } else if md.is_file() {
                progress.add_total(1, md.len());
            }
        }
    }
    progress.total_known.store(true, Relaxed);
}

impl Ctx<'_> {
    fn issue(&self, list: &Mutex<Vec<BackupIssue>>, path: &Path, error: impl ToString) {
        list.lock().push(BackupIssue {
            path: path.to_string_lossy().into_owned(),
            error: error.to_string(),
        });
    }

    /// Claims a blob for storing: true when it is neither in the index nor already on its way.
    fn claim(&self, id: &BlobId) -> bool {
        if self.repo.index().contains(id) {
            return false;
        }
        self.pending.lock().insert(*id)
    }

    fn known(&self, id: &BlobId) -> bool {
        self.repo.index().contains(id) || self.pending.lock().contains(id)
    }

    fn send(&self, ty: BlobType, id: BlobId, stored: Vec<u8>, raw_len: usize) -> Result<()> {
        self.tx
            .send(PackerMsg::Blob {
                ty,
                id,
                stored,
                raw_len,
            })
            .map_err(|_| Error::Other("backup aborted: the pack writer stopped".into()))
    }

    fn store_tree(&self, t: &Tree) -> Result<BlobId> {
        let bytes = t.encode();
        let id = self.repo.keys().blob_id(&bytes);
        if self.claim(&id) {
            let stored = blob::encode(self.repo.keys(), BlobType::Tree, &id, &bytes, 3);
            self.c.bytes_added.fetch_add(bytes.len() as u64, Relaxed);
            self.send(BlobType::Tree, id, stored, bytes.len())?;
        }
        Ok(id)
    }

    /// A folder on the way to a backed-up path: only the children that lead there.
    fn process_virtual(&self, path: &Path, trie: &Trie, parent: Option<&Tree>) -> Result<Tree> {
        let mut nodes = Vec::new();
        for (name, sub) in &trie.0 {
            let child = path.join(std::ffi::OsStr::from_bytes(name));
            let pnode = parent.and_then(|t| t.find(name));
            match sub {
                None => {
                    if let Some(n) = self.process_entry(&child, name.clone(), pnode)? {
                        nodes.push(n);
                    }
                }
                Some(t) => {
                    let md = std::fs::symlink_metadata(&child).ctx("read", &child)?;
                    let ptree = match pnode.and_then(|n| n.subtree) {
                        Some(id) => self.repo.load_tree(&id).ok(),
                        None => None,
                    };
                    let tree = self.process_virtual(&child, t, ptree.as_ref())?;
                    let mut n = node_from_meta(name.clone(), NodeKind::Dir, &md);
                    n.subtree = Some(self.store_tree(&tree)?);
                    nodes.push(n);
                }
            }
        }
        Ok(Tree::new(nodes))
    }

    /// A folder backed up whole: every entry not excluded.
    fn process_dir(&self, path: &Path, parent: Option<&Tree>) -> Result<Tree> {
        self.process_listed_dir(path, std::fs::read_dir(path), parent)
    }

    /// `process_dir` with the folder already opened (so a caller can tell a folder that vanished).
    fn process_listed_dir(
        &self,
        path: &Path,
        listing: std::io::Result<std::fs::ReadDir>,
        parent: Option<&Tree>,
    ) -> Result<Tree> {
        self.c.dirs.fetch_add(1, Relaxed);
        let mut names: Vec<(Vec<u8>, bool)> = Vec::new();
        match listing {
            Ok(rd) => {
                for e in rd {
                    match e {
                        Ok(e) => {
                            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                            names.push((e.file_name().into_vec(), is_dir));
                        }
                        Err(err) => self.issue(&self.errors, path, err),
                    }
                }
            }
            Err(err) => {
                self.issue(&self.errors, path, format!("cannot list folder: {err}"));
            }
        }
        names.sort();
        let nodes: Vec<Result<Option<Node>>> = names
            .into_par_iter()
            .filter_map(|(name, is_dir)| {
                let child = path.join(OsString::from_vec(name.clone()));
                if self.skip.contains(&child) || self.excludes.matched(&child, is_dir).is_ignore() {
                    return None;
                }
                let pnode = parent.and_then(|t| t.find(&name));
                Some(self.process_entry(&child, name, pnode))
            })
            .collect();
        let mut out = Vec::with_capacity(nodes.len());
        for n in nodes {
            if let Some(n) = n? {
                out.push(n);
            }
        }
        Ok(Tree::new(out))
    }

    /// One entry: returns its node, or `None` when it is skipped (vanished, unreadable, special).
    fn process_entry(
        &self,
        path: &Path,
        name: Vec<u8>,
        pnode: Option<&Node>,
    ) -> Result<Option<Node>> {
        let md = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.issue(&self.skipped, path, "vanished during the backup");
                return Ok(None);
            }
            Err(e) => {
                self.issue(&self.errors, path, e);
                return Ok(None);
            }
        };
        let ft = md.file_type();
        if ft.is_dir() {
            let listing = match std::fs::read_dir(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.issue(&self.skipped, path, "vanished during the backup");
                    return Ok(None);
                }
                l => l,
            };
            let ptree = match pnode.and_then(|n| n.subtree) {
                Some(id) => self.repo.load_tree(&id).ok(),
                None => None,
            };
            let tree = self.process_listed_dir(path, listing, ptree.as_ref())?;
            let mut n = node_from_meta(name, NodeKind::Dir, &md);
            n.subtree = Some(self.store_tree(&tree)?);
            Ok(Some(n))
        } else if ft.is_symlink() {
            let target = match std::fs::read_link(path) {
                Ok(t) => t,
                Err(e) => {
                    self.issue(&self.errors, path, e);
                    return Ok(None);
                }
            };
            let mut n = node_from_meta(name, NodeKind::Symlink, &md);
            n.target = target.into_os_string().into_vec();
            Ok(Some(n))
        } else if ft.is_file() {
            self.process_file(path, name, &md, pnode)
        } else {
            let what = if ft.is_socket() {
                "socket"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_block_device() || ft.is_char_device() {
                "device"
            } else {
                "special file"
            };
            self.issue(&self.skipped, path, format!("{what} not backed up"));
            Ok(None)
        }
    }

    fn process_file(
        &self,
        path: &Path,
        name: Vec<u8>,
        md: &Metadata,
        pnode: Option<&Node>,
    ) -> Result<Option<Node>> {
        let mut node = node_from_meta(name, NodeKind::File, md);
        self.c.total_files.fetch_add(1, Relaxed);
        if let Some(p) = pnode {
            if !self.force && p.same_file_meta(&node) && p.content.iter().all(|id| self.known(id)) {
                node.content = p.content.clone();
                self.c.files_unmodified.fetch_add(1, Relaxed);
                self.c.total_bytes.fetch_add(node.size, Relaxed);
                self.progress.add_done(1, node.size);
                return Ok(Some(node));
            }
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME | libc::O_NOFOLLOW)
            .open(path)
            .or_else(|_| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
            });
        let f: File = match f {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.issue(&self.skipped, path, "vanished during the backup");
                return Ok(None);
            }
            Err(e) => {
                self.issue(&self.errors, path, e);
                return Ok(None);
            }
        };
        match self.read_content(f, path) {
            Ok((content, size)) => {
                node.content = content;
                node.size = size;
            }
            Err(ReadErr::Io(e)) => {
                self.issue(&self.errors, path, e);
                return Ok(None);
            }
            Err(ReadErr::Fatal(e)) => return Err(e),
        }
        if pnode.is_some() {
            self.c.files_changed.fetch_add(1, Relaxed);
        } else {
            self.c.files_new.fetch_add(1, Relaxed);
        }
        self.c.total_bytes.fetch_add(node.size, Relaxed);
        self.progress.files_done.fetch_add(1, Relaxed);
        Ok(Some(node))
    }

    /// Reads a file to its end, storing the chunks that are new. Returns the chunk ids and the
    /// number of bytes read.
    fn read_content(&self, f: File, path: &Path) -> Result<(Vec<BlobId>, u64), ReadErr> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let len_hint = f.metadata().map(|m| m.len() as usize).unwrap_or(BATCH);
        let batch = len_hint.clamp(64 << 10, BATCH);
        let mut ids = Vec::new();
        let keys = self.repo.keys();
        // Compression is skipped for formats that are compressed already, and for the rest of a
        // file whose first new chunk did not compress (media, archives, encrypted data).
        let mut level = if incompressible_name(path) { 0 } else { self.level };
        let mut decided = level == 0;
        let read = BUF.with(|b| {
            // Take the buffer out so nested rayon work on this thread gets its own.
            let mut buf = std::mem::take(&mut *b.borrow_mut());
            let r = self.chunker.for_each_batch::<_, ReadErr>(f, &mut buf, batch, |data, cuts| {
                self.c.bytes_read.fetch_add(cuts.last().map(|r| r.end).unwrap_or(0) as u64, Relaxed);
                let work = |r: &std::ops::Range<usize>| -> Result<(BlobId, Option<bool>)> {
                    let chunk = &data[r.clone()];
                    let id = keys.blob_id(chunk);
                    let mut compressed = None;
                    if self.claim(&id) {
                        let stored = blob::encode(keys, BlobType::Data, &id, chunk, level);
                        compressed = Some(stored.len() < chunk.len() + crate::crypto::OVERHEAD + 1);
                        self.c.bytes_added.fetch_add(chunk.len() as u64, Relaxed);
                        self.send(BlobType::Data, id, stored, chunk.len())?;
                    }
                    self.progress.bytes_done.fetch_add(chunk.len() as u64, Relaxed);
                    Ok((id, compressed))
                };
                let got: Vec<Result<(BlobId, Option<bool>)>> =
                    if cuts.len() > 1 { cuts.par_iter().map(work).collect() } else { cuts.iter().map(work).collect() };
                for g in got {
                    let (id, compressed) = g.map_err(ReadErr::Fatal)?;
                    if let (false, Some(c)) = (decided, compressed) {
                        decided = true;
                        if !c {
                            level = 0;
                        }
                    }
                    ids.push(id);
                }
                Ok(())
            });
            if buf.capacity() <= 2 * BATCH + (2 << 20) {
                *b.borrow_mut() = buf;
            }
            r
        })?;
        Ok((ids, read))
    }
}

/// File types that are compressed already; zstd would only burn time on them.
fn incompressible_name(path: &Path) -> bool {
    const EXT: &[&str] = &[
        "jpg", "jpeg", "png", "gif", "webp", "heic", "avif", "mp3", "mp4", "m4a", "m4v", "mov", "mkv", "webm", "ogg",
        "oga", "opus", "flac", "aac", "zip", "gz", "tgz", "zst", "xz", "bz2", "7z", "rar", "jar", "whl", "apk", "woff2",
    ];
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) => EXT.iter().any(|x| e.eq_ignore_ascii_case(x)),
        None => false,
    }
}

enum ReadErr {
    Io(std::io::Error),
    Fatal(Error),
}

impl From<std::io::Error> for ReadErr {
    fn from(e: std::io::Error) -> Self {
        ReadErr::Io(e)
    }
}
