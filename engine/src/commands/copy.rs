//! `copy`: snapshots from one repository into another that has its own keys. Blob ids are keyed,
//! so every blob is renamed: a chunk's id in the target is the target's keyed hash of its
//! plaintext (chunk boundaries stay those of the source), and trees are rewritten because they
//! hold blob ids. Blobs the target has are not written again, and snapshots already copied (same
//! `original`, or same time, host, paths and tree) are skipped, so running copy again is cheap.
//!
//! To avoid reading data the target already holds, the trees of snapshots copied earlier are
//! walked side by side with their copies: that gives the source-to-target id of every blob they
//! share without decrypting a single chunk.

use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::crypto::OVERHEAD;
use crate::format::id::{BlobId, DataId, IdMap, IdSet, SnapshotId, TreeId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{self, NodeKind, Tree};
use crate::progress::Progress;
use crate::repo::writer::{Writer, WriterOptions};
use crate::repo::Repository;
use parking_lot::Mutex;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// One source snapshot and where it is in the target.
#[derive(Clone, Debug, Serialize)]
pub struct CopiedSnapshot {
    pub source: SnapshotId,
    pub target: SnapshotId,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyResult {
    /// Snapshots written to the target by this run.
    pub copied: Vec<CopiedSnapshot>,
    /// Snapshots the target already had.
    pub skipped: Vec<CopiedSnapshot>,
    /// Distinct blobs (data and tree) written to the target.
    pub blobs_copied: u64,
    /// Distinct blobs the target already had.
    pub blobs_skipped: u64,
    /// Plaintext bytes of the blobs written.
    pub bytes_copied: u64,
    /// Bytes written to the target: packs, indexes and snapshots.
    pub bytes_stored: u64,
    pub duration_s: f64,
}

/// The identity a snapshot keeps across copies: the snapshot it was first copied from, or itself.
fn origin(id: &SnapshotId, s: &Snapshot) -> SnapshotId {
    s.original.unwrap_or(*id)
}

struct Copier<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    /// Source tree id -> target tree id, for trees known to be in the target.
    trees: Mutex<IdMap<TreeId, TreeId>>,
    /// Source data id -> target data id, for data blobs known to be in the target.
    data: Mutex<IdMap<DataId, DataId>>,
    /// Source blobs already counted by this run.
    visited: Mutex<IdSet<BlobId>>,
    level: i32,
    progress: &'a Progress,
    blobs_copied: std::sync::atomic::AtomicU64,
    blobs_skipped: std::sync::atomic::AtomicU64,
    bytes_copied: std::sync::atomic::AtomicU64,
}

use std::sync::atomic::Ordering::Relaxed;

impl Copier<'_> {
    /// The target id of a source tree, when it is known and the target holds it (or `w` is
    /// writing it).
    fn known_tree(&self, sid: &TreeId, w: &Writer) -> Option<TreeId> {
        let t = self.trees.lock().get(sid).copied()?;
        w.known(BlobType::Tree, &t.blob()).then_some(t)
    }

    /// The target id of a source data blob, as [`Copier::known_tree`].
    fn known_data(&self, sid: &DataId, w: &Writer) -> Option<DataId> {
        let t = self.data.lock().get(sid).copied()?;
        w.known(BlobType::Data, &t.blob()).then_some(t)
    }

    /// Counts a source blob once per run.
    fn first_visit(&self, sid: &BlobId) -> bool {
        self.visited.lock().insert(*sid)
    }

    /// Records the mapping of blobs an earlier copy shares with its source, by walking the two
    /// trees side by side. Stops quietly where their shapes differ.
    fn learn(&self, s: TreeId, t: TreeId, depth: usize) -> Result<()> {
        tree::check_depth(depth)?;
        if self.trees.lock().contains_key(&s) {
            return Ok(());
        }
        let (Ok(st), Ok(tt)) = (self.src.load_tree(&s), self.dst.load_tree(&t)) else {
            return Ok(());
        };
        if st.nodes.len() != tt.nodes.len() {
            return Ok(());
        }
        self.trees.lock().insert(s, t);
        for (a, b) in st.nodes.iter().zip(&tt.nodes) {
            if a.name != b.name || a.kind != b.kind {
                continue;
            }
            match (a.subtree, b.subtree) {
                (Some(x), Some(y)) => self.learn(x, y, depth + 1)?,
                _ if a.content.len() == b.content.len() => {
                    let mut m = self.data.lock();
                    for (x, y) in a.content.iter().zip(&b.content) {
                        m.insert(*x, *y);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Re-encrypts one data blob for the target (unless it has it). Returns its target id.
    fn copy_data(&self, sid: &DataId, w: &Writer) -> Result<DataId> {
        let loc = self.src.index().get(&sid.blob()).ok_or_else(|| Error::Missing { what: "blob", id: sid.to_hex() })?;
        if let Some(t) = self.known_data(sid, w) {
            if self.first_visit(&sid.blob()) {
                self.blobs_skipped.fetch_add(1, Relaxed);
            }
            self.progress.add_done(0, loc.raw_length as u64);
            return Ok(t);
        }
        let plain = self.src.read_data(sid)?;
        let tid = self.dst.keys().data_id(&plain);
        // Stored raw in the source: it did not compress, so do not try again.
        let raw = loc.length as usize > loc.raw_length as usize + OVERHEAD;
        let level = if raw { 0 } else { self.level };
        let claimed = w.store(BlobType::Data, tid.blob(), &plain, level)?.is_some();
        self.data.lock().insert(*sid, tid);
        if self.first_visit(&sid.blob()) {
            if claimed {
                self.blobs_copied.fetch_add(1, Relaxed);
                self.bytes_copied.fetch_add(plain.len() as u64, Relaxed);
            } else {
                self.blobs_skipped.fetch_add(1, Relaxed);
            }
        }
        self.progress.add_done(0, plain.len() as u64);
        Ok(tid)
    }

    /// Copies a tree and everything under it; returns the target id of the rewritten tree.
    fn copy_tree(&self, sid: TreeId, w: &Writer, depth: usize) -> Result<TreeId> {
        tree::check_depth(depth)?;
        if let Some(t) = self.known_tree(&sid, w) {
            if self.first_visit(&sid.blob()) {
                self.blobs_skipped.fetch_add(1, Relaxed);
            }
            return Ok(t);
        }
        let mut t: Tree = self.src.load_tree(&sid)?;
        // Data first, in parallel: every chunk of every file in this folder not yet known.
        let mut todo: Vec<DataId> = t.nodes.iter().flat_map(|n| n.content.iter().copied()).collect();
        todo.sort();
        todo.dedup();
        let done: Vec<(DataId, DataId)> =
            todo.par_iter().map(|s| self.copy_data(s, w).map(|t| (*s, t))).collect::<Result<_>>()?;
        let done: IdMap<DataId, DataId> = done.into_iter().collect();
        for n in &mut t.nodes {
            for c in &mut n.content {
                *c = done[&*c];
            }
            if n.kind == NodeKind::File {
                self.progress.add_done(1, 0);
            }
            if let Some(sub) = n.subtree {
                n.subtree = Some(self.copy_tree(sub, w, depth + 1)?);
            }
        }
        let bytes = t.encode();
        let (tid, claimed) = w.store_tree_bytes(&bytes)?;
        self.trees.lock().insert(sid, tid);
        if self.first_visit(&sid.blob()) {
            if claimed {
                self.blobs_copied.fetch_add(1, Relaxed);
                self.bytes_copied.fetch_add(bytes.len() as u64, Relaxed);
            } else {
                self.blobs_skipped.fetch_add(1, Relaxed);
            }
        }
        Ok(tid)
    }
}

/// Copies `snaps` (source ids and snapshots) from `src` into `dst`, oldest first.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    snaps: &[(SnapshotId, Snapshot)],
    progress: &Progress,
) -> Result<CopyResult> {
    let start = Instant::now();
    if src.config().id == dst.config().id {
        return Err(Error::Usage("the source and the target are the same repository".into()));
    }
    let mut snaps: Vec<&(SnapshotId, Snapshot)> = snaps.iter().collect();
    snaps.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
    snaps.dedup_by_key(|s| s.0);

    let target = dst.snapshots()?;
    // Target snapshots by the identity they carry.
    let by_origin: IdMap<SnapshotId, usize> =
        target.iter().enumerate().map(|(i, (id, s))| (origin(id, s), i)).collect();
    let mut res = CopyResult::default();
    // Source id -> target id, for parents.
    let mut placed: IdMap<SnapshotId, SnapshotId> = IdMap::default();
    let mut pending = Vec::new();
    for &(id, s) in &snaps {
        match by_origin.get(&origin(id, s)).or_else(|| by_origin.get(id)) {
            Some(&i) => {
                placed.insert(*id, target[i].0);
                res.skipped.push(CopiedSnapshot { source: *id, target: target[i].0 });
            }
            None => pending.push((id, s)),
        }
    }
    let c = Copier {
        src,
        dst,
        trees: Mutex::new(IdMap::default()),
        data: Mutex::new(IdMap::default()),
        visited: Mutex::new(IdSet::default()),
        level: dst.config().compression,
        progress,
        blobs_copied: Default::default(),
        blobs_skipped: Default::default(),
        bytes_copied: Default::default(),
    };
    // Writing into the target takes a backup lease first, as a backup does: a prune of the target
    // that condemns packs after this keeps them while the copy may reuse their blobs.
    let lease = if pending.is_empty() { None } else { Some(crate::repo::lease::Lease::backup(dst.backend().clone())?) };
    if !pending.is_empty() {
        dst.refresh_index()?;
        // What earlier copies already put in the target.
        for &(id, s) in &snaps {
            if let Some(t) = placed.get(id) {
                if let Some((_, ts)) = target.iter().find(|(tid, _)| tid == t) {
                    c.learn(s.tree, ts.tree, 0)?;
                }
            }
        }
        for (_, s) in &pending {
            progress.add_total(s.summary.total_files, s.summary.total_bytes);
        }
        progress.total_known.store(true, Relaxed);
    }
    for (id, s) in pending {
        // A session per snapshot: its packs and their index go first, so a snapshot never names
        // data the target lacks.
        let w = Writer::new(dst, WriterOptions { dry_run: false, upload: Some(progress.upload.clone()) });
        let root = c.copy_tree(s.tree, &w, 0)?;
        res.bytes_stored += w.finish()?;
        let same = target
            .iter()
            .find(|(_, t)| t.time == s.time && t.hostname == s.hostname && t.paths == s.paths && t.tree == root);
        if let Some((tid, _)) = same {
            placed.insert(*id, *tid);
            res.skipped.push(CopiedSnapshot { source: *id, target: *tid });
            continue;
        }
        let mut snap = s.clone();
        snap.tree = root;
        snap.original = Some(origin(id, s));
        snap.parent = s.parent.and_then(|p| placed.get(&p).copied());
        if let Some(l) = &lease {
            l.ensure_held()?;
        }
        let tid = dst.save_snapshot(&snap)?;
        res.bytes_stored += snap.encode(dst.keys()).len() as u64;
        placed.insert(*id, tid);
        res.copied.push(CopiedSnapshot { source: *id, target: tid });
    }
    if let Some(l) = lease {
        l.release();
    }
    res.blobs_copied = c.blobs_copied.load(Relaxed);
    res.blobs_skipped = c.blobs_skipped.load(Relaxed);
    res.bytes_copied = c.bytes_copied.load(Relaxed);
    res.duration_s = start.elapsed().as_secs_f64();
    Ok(res)
}
