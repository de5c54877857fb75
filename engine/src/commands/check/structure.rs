//! The structural check (always run): index files (name, decoding, agreement), packs (present,
//! indexed size, unindexed leftovers), snapshots, and every tree reachable from them, each once,
//! with every blob they reference indexed with its type.

use super::{why, Checker, PackInfo, Problem};
use crate::backend::{Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, IdMap, PackId, SnapshotId, TreeId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Tree};
use std::collections::BTreeMap;

impl Checker<'_> {
    pub(super) fn load_indexes(&mut self) -> Result<()> {
        let be = self.repo.backend();
        let list = be.list(Kind::Index).map_err(Error::backend_err("list", "index"))?;
        let bytes_total = list.iter().map(|(_, n)| n).sum();
        self.progress.set_phase("index", "index files", Some((list.len() as u64, bytes_total)));
        for (object, size) in list {
            let name = object.to_string();
            self.progress.add_done(1, size);
            let f = match self.repo.read_index_file(&object) {
                Ok(f) => f,
                Err(e) => {
                    let msg = match e {
                        Error::Backend { source, .. } => format!("index file {name} cannot be read: {source}"),
                        Error::Corrupt { why, .. } if why.starts_with("content does not match") => {
                            format!("index file {name}: content does not match its name")
                        }
                        e => format!("index file {name}: {e}"),
                    };
                    let mut p = Problem::new("index", msg);
                    p.index = Some(name);
                    self.error(p);
                    continue;
                }
            };
            for ip in f.packs {
                for e in &ip.blobs {
                    let copies = self.blobs.entry(e.id).or_default();
                    if !copies.iter().any(|(p, _)| *p == ip.id) {
                        copies.push((ip.id, *e));
                    }
                }
                match self.packs.get_mut(&ip.id) {
                    Some(info) => {
                        if info.size != ip.size {
                            let mut p = Problem::new(
                                "index",
                                format!(
                                    "index files {} and {name} disagree on the size of pack {} ({} and {} bytes)",
                                    info.indexes[0], ip.id, info.size, ip.size
                                ),
                            )
                            .pack(&ip.id);
                            p.index = Some(name.clone());
                            self.report.errors.push(p);
                        }
                        for e in ip.blobs {
                            if !info.entries.iter().any(|x| x.id == e.id) {
                                info.entries.push(e);
                            }
                        }
                        info.indexes.push(name.clone());
                    }
                    None => {
                        self.packs
                            .insert(ip.id, PackInfo { size: ip.size, entries: ip.blobs, indexes: vec![name.clone()] });
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_packs(&mut self) -> Result<()> {
        let be = self.repo.backend().clone();
        let listed = be.list_of::<PackId>().map_err(Error::backend_err("list", "data"))?;
        self.stored.extend(listed.ids);
        for (name, _) in listed.unrecognised {
            self.report.warnings.push(Problem::new("pack_name", format!("data/{name} is not named like a pack")));
        }
        // An indexed pack the listing leaves out is asked for by name before it counts as missing:
        // a store can lose the folder entry above objects it still serves (SeaweedFS, when a folder
        // it thought empty is removed as an object lands in it). Restores read it; tools that list
        // the bucket (a sync, a copy by listing) do not see it, so it is a warning.
        let unlisted: Vec<PackId> = self.packs.keys().filter(|id| !self.stored.contains_key(*id)).copied().collect();
        for (id, size) in self.repo.unlisted_packs(unlisted)? {
            self.stored.insert(id, size);
            self.report.warnings.push(
                Problem::new(
                    "pack_unlisted",
                    format!(
                        "pack {id} is there when asked for by name, but the store's listing of data/ leaves it out; \
                         restores read it, tools that list the bucket miss it"
                    ),
                )
                .pack(&id),
            );
        }
        let mut errors = Vec::new();
        let mut bad = Vec::new();
        for (id, info) in &self.packs {
            self.report.packs_checked += 1;
            let all: Vec<BlobId> = info.entries.iter().map(|e| e.id).collect();
            match self.stored.get(id) {
                None => {
                    bad.extend(all.iter().map(|b| (*b, *id)));
                    let mut p = Problem::new(
                        "pack_missing",
                        format!("pack {id} is missing (listed in index {})", info.indexes.join(", ")),
                    )
                    .pack(id)
                    .blobs(all);
                    p.index = info.indexes.first().cloned();
                    errors.push(p);
                }
                Some(&size) if size != info.size => {
                    // Blobs beyond the end of a truncated pack are gone; the others may be intact
                    // (`--read-data` tells).
                    let lost: Vec<BlobId> = info
                        .entries
                        .iter()
                        .filter(|e| e.offset as u64 + e.length as u64 > size)
                        .map(|e| e.id)
                        .collect();
                    bad.extend(lost.iter().map(|b| (*b, *id)));
                    let mut p = Problem::new(
                        "pack_size",
                        format!("pack {id} has {size} bytes, but index {} says {}", info.indexes.join(", "), info.size),
                    )
                    .pack(id)
                    .blobs(lost);
                    p.index = info.indexes.first().cloned();
                    errors.push(p);
                }
                Some(_) => {}
            }
        }
        self.report.errors.extend(errors);
        self.bad_copies.extend(bad);
        let unindexed: Vec<(PackId, u64)> =
            self.stored.iter().filter(|(id, _)| !self.packs.contains_key(id)).map(|(i, s)| (*i, *s)).collect();
        for (id, size) in unindexed {
            let entries = self.repo.read_pack_header(&id, size);
            let msg = match &entries {
                Ok(e) => format!(
                    "pack {id} ({} blobs) is not in any index (left over from an interrupted backup; prune removes it)",
                    e.len()
                ),
                Err(e) => format!("pack {id} is not in any index and its header cannot be read: {e}"),
            };
            self.report.warnings.push(Problem::new("pack_unindexed", msg).pack(&id));
            self.unindexed.insert(id, entries.unwrap_or_default());
        }
        Ok(())
    }

    /// Reads every compression dictionary (format-spec §16): a damaged one is an error (the blobs
    /// that name it then fail to decode under `--read-data`).
    pub(super) fn check_dictionaries(&mut self) -> Result<()> {
        let be = self.repo.backend().clone();
        for (name, _) in be.list(Kind::Dict).map_err(Error::backend_err("list", "dicts"))? {
            let res = be.read(&name).map_err(|e| format!("cannot be read: {e}")).and_then(|b| {
                crate::format::dict::Dict::open(self.repo.keys(), name.as_str(), &b).map_err(|e| e.to_string())
            });
            if let Err(e) = res {
                self.error(Problem::new("dictionary", format!("dictionary {name}: {e}")));
            }
        }
        Ok(())
    }

    pub(super) fn load_snapshots(&mut self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let be = self.repo.backend().clone();
        let mut out = Vec::new();
        for (name, _) in be.list(Kind::Snapshot).map_err(Error::backend_err("list", "snapshots"))? {
            self.report.snapshots_checked += 1;
            let res = self.repo.read_snapshot(&name).map_err(|e| match e {
                Error::Backend { source, .. } => format!("cannot be read: {source}"),
                Error::Corrupt { why, .. } if why == "content does not match its name" => why,
                e => e.to_string(),
            });
            match (res, name.id::<SnapshotId>()) {
                (Ok(s), Some(id)) => out.push((id, s)),
                (Err(e), _) => {
                    let mut p = Problem::new("snapshot", format!("snapshot {name}: {e}"));
                    p.snapshot = Some(name.to_string());
                    p.snapshots = vec![name.to_string()];
                    self.error(p);
                }
                (Ok(_), None) => {}
            }
        }
        out.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Reads one blob through the index, trying every copy; records bad copies.
    /// Blobs only an unindexed pack holds are read from there, so the walk goes on and finds every
    /// file such a pack affects.
    pub(super) fn read_indexed(&mut self, ty: BlobType, id: &BlobId) -> std::result::Result<Vec<u8>, Box<Problem>> {
        let mut copies = self.blobs.get(id).cloned().unwrap_or_default();
        if copies.is_empty() {
            for (pid, entries) in &self.unindexed {
                copies.extend(entries.iter().filter(|e| e.id == *id).map(|e| (*pid, *e)));
            }
        }
        let mut last: Option<Problem> = None;
        for (pid, e) in copies {
            if self.bad_copies.contains(&(*id, pid)) || !self.stored.contains_key(&pid) {
                continue;
            }
            let r = self
                .repo
                .backend()
                .read_range(&ObjectName::of(&pid), e.offset as u64, e.length as u64)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    if e.ty != ty {
                        return Err(format!("indexed as {}, used as {}", e.ty.name(), ty.name()));
                    }
                    self.repo.decode_blob(ty, id, &b, e.raw_length as usize).map_err(|e| why(&e))
                });
            match r {
                Ok(b) => return Ok(b),
                Err(why) => {
                    self.bad_copies.insert((*id, pid));
                    last = Some(
                        Problem::new("blob", format!("{} blob {id} in pack {pid}: {why}", ty.name()))
                            .pack(&pid)
                            .blob(id)
                            .blobs(vec![*id]),
                    );
                }
            }
        }
        Err(Box::new(last.unwrap_or_else(|| {
            Problem::new("blob_missing", format!("{} blob {id} is not in the index", ty.name()))
                .blob(id)
                .blobs(vec![*id])
        })))
    }

    /// Loads every tree reachable from the snapshots, each once, and returns every blob they
    /// reference (trees included) with its expected type.
    pub(super) fn walk_trees(&mut self, snaps: &[(SnapshotId, Snapshot)]) -> IdMap<BlobId, BlobType> {
        let mut referenced: IdMap<BlobId, BlobType> = IdMap::default();
        // (tree, its depth below the snapshot's root): a chain deeper than restore and ls follow
        // is reported rather than walked further.
        let mut stack: Vec<(TreeId, usize)> = Vec::new();
        self.progress.set_phase("trees", "trees", None);
        for (sid, s) in snaps {
            stack.push((s.tree, 0));
            while let Some((tid, depth)) = stack.pop() {
                if self.trees.contains_key(&tid) {
                    continue;
                }
                if crate::format::tree::check_depth(depth).is_err() {
                    self.error(
                        Problem::new(
                            "tree",
                            format!(
                                "snapshot {}: folders nested deeper than {} levels at tree {tid} (restore and ls refuse them)",
                                sid.short(),
                                crate::format::tree::MAX_DEPTH
                            ),
                        )
                        .blob(&tid.blob()),
                    );
                    continue;
                }
                referenced.insert(tid.blob(), BlobType::Tree);
                self.progress.add_done(1, 0);
                let tree = match self.read_indexed(BlobType::Tree, &tid.blob()) {
                    Ok(bytes) => match Tree::decode(&tid, &bytes) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            self.error(
                                Problem::new("tree", format!("tree {tid}: {e}"))
                                    .blob(&tid.blob())
                                    .blobs(vec![tid.blob()]),
                            );
                            None
                        }
                    },
                    // Missing trees are reported with the other unindexed blobs.
                    Err(p) if p.kind == "blob_missing" => None,
                    Err(p) => {
                        self.error(*p);
                        None
                    }
                };
                self.report.trees_checked += tree.is_some() as u64;
                if let Some(t) = &tree {
                    for n in &t.nodes {
                        match n.kind {
                            NodeKind::File => {
                                for b in &n.content {
                                    referenced.insert(b.blob(), BlobType::Data);
                                }
                            }
                            NodeKind::Dir => stack.extend(n.subtree.map(|t| (t, depth + 1))),
                            NodeKind::Symlink => {}
                        }
                    }
                }
                self.trees.insert(tid, tree);
            }
        }
        referenced
    }

    /// Every referenced blob must be indexed with the right type. Blobs that only an unindexed
    /// pack holds are reported once per such pack.
    pub(super) fn check_referenced(&mut self, referenced: &IdMap<BlobId, BlobType>) {
        self.report.blobs_checked += referenced.len() as u64;
        let mut in_unindexed: BTreeMap<PackId, Vec<BlobId>> = BTreeMap::new();
        let mut where_unindexed: IdMap<BlobId, PackId> = IdMap::default();
        for (pid, entries) in &self.unindexed {
            for e in entries {
                where_unindexed.entry(e.id).or_insert(*pid);
            }
        }
        let mut sorted: Vec<(&BlobId, &BlobType)> = referenced.iter().collect();
        sorted.sort();
        for (id, ty) in sorted {
            match self.blobs.get(id) {
                Some(copies) => {
                    if let Some((pid, e)) = copies.iter().find(|(_, e)| e.ty != *ty) {
                        let p = Problem::new(
                            "blob_type",
                            format!("blob {id} is used as {} but indexed as {} in pack {pid}", ty.name(), e.ty.name()),
                        )
                        .pack(pid)
                        .blob(id)
                        .blobs(vec![*id]);
                        self.bad_copies.insert((*id, *pid));
                        self.error(p);
                    }
                }
                None => match where_unindexed.get(id) {
                    Some(pid) => in_unindexed.entry(*pid).or_default().push(*id),
                    None => self.error(
                        Problem::new("blob_missing", format!("{} blob {id} is in no index and no pack", ty.name()))
                            .blob(id)
                            .blobs(vec![*id]),
                    ),
                },
            }
        }
        // These packs are errors now, not just leftovers.
        self.report.warnings.retain(|w| {
            w.pack.as_ref().is_none_or(|p| PackId::from_hex(p).is_none_or(|id| !in_unindexed.contains_key(&id)))
        });
        for (pid, ids) in in_unindexed {
            let p = Problem::new(
                "pack_unindexed",
                format!(
                    "pack {pid} holds {} blobs that snapshots use, but no index lists it (an index file is missing: \
                     `repair index` rebuilds it)",
                    ids.len()
                ),
            )
            .pack(&pid)
            .blobs(ids);
            self.error(p);
        }
    }
}
