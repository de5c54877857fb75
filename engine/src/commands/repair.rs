//! `repair index` and `repair snapshots`: recovery when parts of a repository are lost.
//!
//! `repair index` rebuilds the index from the packs alone: every pack's header lists its blobs, so
//! one consolidated index file is written from the headers and every old index file removed (it
//! holds the prune lease while it does, as it rewrites the index as a prune does).
//!
//! `repair snapshots` rewrites each snapshot that needs a blob the repository no longer has (not
//! indexed, or indexed in a pack missing from `data/`, or a tree that does not decode): files with
//! lost content are dropped, folders whose tree is lost become empty folders, and the new snapshot
//! (same time, host and paths, tag `repaired`, `original` = the damaged snapshot's id, every change
//! listed in its `warnings`) replaces the damaged one. Everything undamaged stays restorable.
//!
//! `repair undelete` brings back what was deleted from a versioned bucket (S3 with versioning, as
//! object lock implies): every repository object whose current version is a delete marker gets its
//! newest kept version back. It needs no password, since the config and key files may be gone too.

use crate::backend::{Backend, Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, IdSet, IndexId, PackId, SnapshotId, TreeId};
use crate::format::index::{IndexFile, IndexPack};
use crate::format::snapshot::BackupIssue;
use crate::format::tree::{NodeKind, Tree};
use crate::repo::lease::Lease;
use crate::repo::writer::{Writer, WriterOptions};
use crate::repo::Repository;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct DamagedObject {
    pub id: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairIndexReport {
    pub dry_run: bool,
    pub index_files_read: u64,
    /// Index files that could not be read (they are replaced like the others).
    pub index_files_damaged: Vec<DamagedObject>,
    pub packs_read: u64,
    /// Packs in `data/` that no index listed.
    pub packs_added: Vec<String>,
    /// Packs an index listed that are missing from `data/` or whose header is unreadable.
    pub packs_removed: Vec<String>,
    /// Packs whose header could not be read (left in place, not indexed).
    pub packs_damaged: Vec<DamagedObject>,
    pub blobs_before: u64,
    pub blobs_after: u64,
    pub index_written: Option<String>,
    pub index_files_deleted: u64,
}

/// Rebuilds the index from the pack headers (see the module docs).
pub fn repair_index(repo: &Repository, dry_run: bool) -> Result<RepairIndexReport> {
    use rayon::prelude::*;
    if !dry_run {
        repo.require_deletes("repair index")?;
    }
    let be = repo.backend().clone();
    let lease = if dry_run { None } else { Some(Lease::prune(be.clone())?) };
    let mut report = RepairIndexReport { dry_run, ..Default::default() };
    // Index files first, then packs: a pack an index lists was stored before that index, so it
    // is in the pack listing too.
    let names = repo.index_names()?;
    let mut old_packs: IdSet<PackId> = IdSet::default();
    let mut old_blobs: IdSet<BlobId> = IdSet::default();
    for n in &names {
        match repo.read_index_file(n) {
            Ok(f) => {
                for p in f.packs {
                    old_packs.insert(p.id);
                    old_blobs.extend(p.blobs.iter().map(|e| e.id));
                }
            }
            Err(e) => report.index_files_damaged.push(DamagedObject { id: n.to_string(), error: e.to_string() }),
        }
    }
    report.index_files_read = names.len() as u64;
    report.blobs_before = old_blobs.len() as u64;
    drop(old_blobs);
    let mut disk = repo.stored_packs()?;
    // An indexed pack the listing leaves out but the store serves stays (see `unlisted_packs`).
    let listed: IdSet<PackId> = disk.iter().map(|(id, _)| *id).collect();
    disk.extend(repo.unlisted_packs(old_packs.iter().filter(|id| !listed.contains(*id)).copied())?);
    let headers: Vec<(PackId, u64, Result<Vec<crate::format::pack::PackEntry>>)> =
        disk.par_iter().map(|(id, size)| (*id, *size, repo.read_pack_header(id, *size))).collect();
    let mut packs = Vec::new();
    let mut new_blobs: IdSet<BlobId> = IdSet::default();
    let mut readable: IdSet<PackId> = IdSet::default();
    for (id, size, h) in headers {
        report.packs_read += 1;
        match h {
            Ok(blobs) => {
                if !old_packs.contains(&id) {
                    report.packs_added.push(id.to_hex());
                }
                new_blobs.extend(blobs.iter().map(|e| e.id));
                readable.insert(id);
                packs.push(IndexPack { id, size, blobs });
            }
            Err(e) => report.packs_damaged.push(DamagedObject { id: id.to_hex(), error: e.to_string() }),
        }
    }
    report.packs_removed = old_packs.iter().filter(|p| !readable.contains(*p)).map(|p| p.to_hex()).collect();
    report.packs_removed.sort();
    report.packs_added.sort();
    report.blobs_after = new_blobs.len() as u64;
    let Some(lease) = lease else { return Ok(report) };

    let mut written = None;
    if !packs.is_empty() {
        let supersedes: Vec<IndexId> = names.iter().filter_map(|n| n.id::<IndexId>()).collect();
        let id = repo.save_index(&IndexFile { version: 1, supersedes, packs })?;
        written = Some(id.to_hex());
    }
    lease.ensure_held()?;
    for n in names.iter().filter(|n| Some(n.as_str()) != written.as_deref()) {
        match be.delete(n) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::backend_err("delete index", n)(e)),
            _ => report.index_files_deleted += 1,
        }
    }
    report.index_written = written;
    repo.reload_index()?;
    lease.release();
    Ok(report)
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotChange {
    pub path: String,
    /// `dropped file` or `emptied folder`.
    pub action: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RepairedSnapshot {
    pub snapshot: String,
    pub time: String,
    /// The replacement (none on a dry run).
    pub new_snapshot: Option<String>,
    pub changes: Vec<SnapshotChange>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairSnapshotsReport {
    pub dry_run: bool,
    pub snapshots_checked: u64,
    pub snapshots_repaired: Vec<RepairedSnapshot>,
    /// Packs the index lists that are not in `data/`: `repair index` removes them from the index.
    pub indexed_packs_missing: u64,
}

struct Fixer<'a> {
    repo: &'a Repository,
    /// Trees found whole, so shared subtrees are checked once.
    intact: IdSet<TreeId>,
    /// Writes the new trees (or, dry, counts them); a blob counts as available only when it is
    /// indexed with its type in a pack that is present.
    writer: Writer<'a>,
}

impl Fixer<'_> {
    fn available(&self, id: &BlobId, ty: BlobType) -> bool {
        self.writer.holds(ty, id)
    }

    fn store(&mut self, t: &Tree) -> Result<TreeId> {
        self.writer.store_tree(t)
    }

    /// The tree `id` with what is lost taken out: `None` when the tree itself cannot be read.
    fn fix(
        &mut self,
        id: TreeId,
        path: &str,
        depth: usize,
        changes: &mut Vec<SnapshotChange>,
    ) -> Result<Option<TreeId>> {
        crate::format::tree::check_depth(depth)?;
        if self.intact.contains(&id) || self.writer.claimed(&id.blob()) {
            return Ok(Some(id));
        }
        if !self.available(&id.blob(), BlobType::Tree) {
            return Ok(None);
        }
        let Ok(tree) = self.repo.load_tree(&id) else { return Ok(None) };
        let mut changed = false;
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut n in tree.nodes {
            let p = format!("{}/{}", path.trim_end_matches('/'), n.name_lossy());
            match n.kind {
                NodeKind::File => {
                    let lost = n.content.iter().filter(|c| !self.available(&c.blob(), BlobType::Data)).count();
                    if lost > 0 {
                        changes.push(SnapshotChange {
                            path: p,
                            action: "dropped file",
                            reason: format!("{lost} of its {} chunks are lost", n.content.len()),
                        });
                        changed = true;
                        continue;
                    }
                }
                NodeKind::Dir => {
                    let sub = n.subtree.expect("decoded dir has a subtree");
                    match self.fix(sub, &p, depth + 1, changes)? {
                        Some(s) => {
                            changed |= s != sub;
                            n.subtree = Some(s);
                        }
                        None => {
                            changes.push(SnapshotChange {
                                path: p,
                                action: "emptied folder",
                                reason: format!("its tree {} is lost", sub.short()),
                            });
                            n.subtree = Some(self.store(&Tree::new(vec![]))?);
                            changed = true;
                        }
                    }
                }
                NodeKind::Symlink => {}
            }
            nodes.push(n);
        }
        if !changed {
            self.intact.insert(id);
            return Ok(Some(id));
        }
        Ok(Some(self.store(&Tree::new(nodes))?))
    }
}

/// Rewrites damaged snapshots (see the module docs).
pub fn repair_snapshots(repo: &Repository, dry_run: bool) -> Result<RepairSnapshotsReport> {
    if !dry_run {
        repo.require_deletes("repair snapshots")?;
    }
    let be = repo.backend().clone();
    // A writer like a backup: a prune keeps what it reuses until it is done.
    let lease = if dry_run { None } else { Some(Lease::backup(be.clone())?) };
    repo.refresh_index()?;
    let mut report = RepairSnapshotsReport { dry_run, ..Default::default() };
    let snaps = repo.snapshots()?;
    let disk: IdSet<PackId> = repo.stored_packs()?.into_iter().map(|(id, _)| id).collect();
    report.indexed_packs_missing = repo.index().packs().filter(|(_, id, _)| !disk.contains(*id)).count() as u64;
    let writer = Writer::new(repo, WriterOptions { dry_run, upload: None }).holding(move |ty, id| {
        let idx = repo.index();
        idx.get(id).is_some_and(|l| l.ty == ty && disk.contains(&idx.pack_id(l.pack)))
    });
    let mut fx = Fixer { repo, intact: IdSet::default(), writer };
    let mut fixed: Vec<(SnapshotId, crate::format::snapshot::Snapshot, Vec<SnapshotChange>)> = Vec::new();
    for (id, s) in snaps {
        report.snapshots_checked += 1;
        let mut changes = Vec::new();
        let root = match fx.fix(s.tree, "/", 0, &mut changes)? {
            Some(r) => r,
            None => {
                changes.push(SnapshotChange {
                    path: "/".into(),
                    action: "emptied folder",
                    reason: format!("the root tree {} is lost", s.tree.short()),
                });
                fx.store(&Tree::new(vec![]))?
            }
        };
        if changes.is_empty() {
            continue;
        }
        let mut n = s.clone();
        n.tree = root;
        if !n.tags.iter().any(|t| t == "repaired") {
            n.tags.push("repaired".into());
        }
        n.original = Some(id);
        n.warnings.extend(changes.iter().map(|c| BackupIssue {
            path: c.path.clone(),
            error: format!("repair snapshots: {} ({})", c.action, c.reason),
        }));
        fixed.push((id, n, changes));
    }
    // The new trees are stored and indexed before any snapshot names them.
    fx.writer.finish()?;
    for (id, n, changes) in fixed {
        let mut new_id = None;
        if let Some(l) = &lease {
            l.ensure_held()?;
            new_id = Some(repo.save_snapshot(&n)?.to_hex());
            let name = ObjectName::of(&id);
            match be.delete(&name) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::backend_err("delete snapshot", &name)(e))
                }
                _ => {}
            }
            if let Some(c) = repo.cache() {
                c.remove_snapshot(name.as_str())?;
            }
        }
        report.snapshots_repaired.push(RepairedSnapshot {
            snapshot: id.to_hex(),
            time: n.time,
            new_snapshot: new_id,
            changes,
        });
    }
    if let Some(l) = lease {
        l.release();
    }
    Ok(report)
}

/// One object `repair undelete` brings back (or would).
#[derive(Clone, Debug, Serialize)]
pub struct UndeletedObject {
    /// The object's folder (`data`, `index`, `snapshots`, `keys`, `dicts`) or `config`.
    pub kind: &'static str,
    pub name: String,
    pub size: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct UndeleteReport {
    pub dry_run: bool,
    /// Brought back (or, with `dry_run`, would be), sorted by folder and name.
    pub objects: Vec<UndeletedObject>,
    pub bytes: u64,
    /// Deleted leases and condemned records, left deleted: a lease coming back would look like a
    /// run in progress, and a condemned record would let the next prune delete packs that the
    /// snapshots brought back may need (the packs come back as ordinary packs instead).
    pub skipped: u64,
}

/// Brings back every deleted object of the repository in a versioned bucket (see the module docs);
/// works on the storage alone, as the config and key files may be among the deleted.
pub fn repair_undelete(be: &dyn Backend, dry_run: bool) -> Result<UndeleteReport> {
    let Some(v) = be.versioned() else {
        return Err(Error::Usage(format!(
            "repair undelete needs an S3 repository in a bucket with versioning (or object lock); {} keeps no \
             old versions",
            be.location()
        )));
    };
    let deleted =
        v.deleted_objects().map_err(|e| Error::Backend { op: "list versions", name: be.location(), source: e })?;
    let mut report = UndeleteReport { dry_run, ..Default::default() };
    // Data before what refers to it, the config last: an interrupted run leaves objects that
    // nothing names yet, or a repository that is not there until a second run finishes.
    let rank = |k: Kind| {
        [Kind::Pack, Kind::Dict, Kind::Index, Kind::Snapshot, Kind::Key, Kind::Config].iter().position(|&x| x == k)
    };
    let mut deleted = deleted;
    deleted.sort_by_key(|d| rank(d.kind));
    for d in deleted {
        if matches!(d.kind, Kind::Lock | Kind::Condemned) {
            report.skipped += 1;
            continue;
        }
        if !dry_run {
            v.undelete(&d).map_err(|e| Error::Backend { op: "undelete", name: d.key.clone(), source: e })?;
        }
        report.bytes += d.size;
        let kind = if d.kind == Kind::Config { "config" } else { d.kind.dir() };
        report.objects.push(UndeletedObject { kind, name: d.name, size: d.size });
    }
    report.objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(report)
}
