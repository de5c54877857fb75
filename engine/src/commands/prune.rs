//! `prune`: delete what no snapshot references, without ever blocking a backup.
//!
//! Phases (each timed): **load** (snapshots, condemned records, index files, the pack listing, in
//! that order, so everything a listed snapshot needs is listed too); **mark** (walk every
//! snapshot's trees once each, collecting the used blob ids: the only big structure, no tree is
//! kept); **plan** (per pack: used and unused bytes; packs nothing uses; partly used packs to
//! repack while unused space exceeds `max_unused`; packs in `data/` no index lists); **repack**
//! (copy the used blobs of those packs, still encrypted, into new packs); **index** (one
//! consolidated index file for the packs that stay and one for the condemned, then remove the index
//! files they supersede); **condemn** (a condemned record for the packs to remove, with the backup
//! leases live after it was written); **delete** (for every record none of whose leases is live any
//! more: re-read snapshots written since the mark, resurrect packs something has come to need,
//! remove the rest from the index files, delete them, then the record).
//!
//! The protocol and why every crash point is safe: format-spec/README.md, "Prune, leases and
//! condemned packs".

use crate::backend::ObjectName;
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, IdMap, IdSet, IndexId, PackId, SnapshotId, TreeId};
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{self, PackEntry, PackWriter};
use crate::progress::Progress;
use crate::repo::condemned;
use crate::repo::lease::{self, Lease};
use crate::repo::Repository;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Only plan: change nothing.
    pub dry_run: bool,
    /// Repack partly used packs while unused bytes exceed this fraction of the pack bytes kept.
    pub max_unused: f64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions { dry_run: false, max_unused: 0.05 }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseTime {
    pub phase: &'static str,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub snapshots: u64,
    pub index_files: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    pub blobs_used: u64,
    pub used_bytes: u64,
    pub unused_bytes: u64,
    /// Packs no snapshot uses at all.
    pub packs_unused: u64,
    /// Partly used packs whose used blobs were copied into new packs.
    pub packs_repacked: u64,
    /// New packs written by the repack.
    pub packs_written: u64,
    pub bytes_repacked: u64,
    /// Packs in `data/` that no index lists (left by an interrupted backup or prune).
    pub packs_unindexed: u64,
    /// Indexed packs missing from `data/` (damage: see `check`, `repair index`).
    pub packs_missing: u64,
    /// Packs condemned by this run.
    pub packs_condemned: u64,
    pub packs_deleted: u64,
    pub bytes_freed: u64,
    /// Condemned packs that a snapshot has come to need, kept.
    pub packs_resurrected: u64,
    /// Condemned packs kept until a backup that was running when they were condemned ends.
    pub packs_waiting: u64,
    /// The backup leases they wait for.
    pub waiting_on: Vec<String>,
    pub index_files_written: u64,
    pub index_files_deleted: u64,
    /// Unused bytes left in the packs kept (at most `max_unused` of them, unless little is unused).
    pub unused_bytes_after: u64,
    pub phases: Vec<PhaseTime>,
}

/// Called after each step with its name (`load`, `mark`, `plan`, `repack`, `index`,
/// `condemn-pending`, `condemn`, `delete-index`, `delete-packs`, `delete`); an error stops the
/// prune there, as a crash would. Tests use it to interleave backups and to simulate crashes.
pub type Hook<'a> = &'a mut dyn FnMut(&str) -> Result<()>;

struct PackInfo {
    size: u64,
    entries: Vec<PackEntry>,
    /// The used entries counted in this pack (a blob stored twice counts once).
    owned: Vec<PackEntry>,
    used: u64,
    unused: u64,
    condemned: bool,
    on_disk: bool,
}

/// Index file names (sorted), their decoded contents, and the packs on disk with their sizes.
type IndexesAndPacks = (Vec<ObjectName>, Vec<IndexFile>, IdMap<PackId, u64>);

/// The index files (names sorted, contents decoded and checked) and the packs on disk with their
/// sizes, as listed now.
fn list_indexes_and_packs(repo: &Repository) -> Result<IndexesAndPacks> {
    let index_names = repo.index_names()?;
    let files = repo.read_index_files(&index_names)?;
    let disk: IdMap<PackId, u64> = repo.stored_packs()?.into_iter().collect();
    Ok((index_names, files, disk))
}

/// Adds every blob reachable from `root` to `used`, loading each tree once (a tree already in
/// `used` was walked) and holding only ids, never trees, beyond the one being read.
fn mark_tree(repo: &Repository, root: TreeId, used: &mut IdMap<BlobId, bool>) -> Result<()> {
    let mut stack = vec![(root, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        if used.contains_key(&id.blob()) {
            continue;
        }
        used.insert(id.blob(), false);
        crate::format::tree::check_depth(depth)?;
        let t = repo.load_tree(&id)?;
        for n in t.nodes {
            for c in n.content {
                used.entry(c.blob()).or_insert(false);
            }
            if let Some(s) = n.subtree {
                stack.push((s, depth + 1));
            }
        }
    }
    Ok(())
}

fn mark_snapshot(repo: &Repository, id: &SnapshotId, tree: TreeId, used: &mut IdMap<BlobId, bool>) -> Result<()> {
    mark_tree(repo, tree, used).map_err(|e| {
        Error::Other(format!(
            "snapshot {} cannot be read completely ({e}); prune stopped so it deletes nothing: run `clawback check`, \
             then `clawback repair index` or `clawback repair snapshots`",
            id.short()
        ))
    })
}

struct Timer {
    start: Instant,
}

impl Timer {
    fn lap(&mut self, report: &mut PruneReport, phase: &'static str) {
        report.phases.push(PhaseTime { phase, seconds: self.start.elapsed().as_secs_f64() });
        self.start = Instant::now();
    }
}

/// Runs a prune (see the module docs). With `dry_run` it only plans, takes no lease and writes
/// nothing.
pub fn prune(repo: &Repository, opts: &PruneOptions, hook: Hook<'_>) -> Result<PruneReport> {
    prune_with_progress(repo, opts, hook, &Progress::default())
}

/// `prune`, naming its phases in `progress` and counting snapshots marked and packs repacked.
pub fn prune_with_progress(
    repo: &Repository,
    opts: &PruneOptions,
    hook: Hook<'_>,
    progress: &Progress,
) -> Result<PruneReport> {
    if !opts.dry_run {
        // Before the lease and any repack: a prune that cannot delete must write nothing.
        repo.require_deletes("prune")?;
    }
    let be = repo.backend().clone();
    progress.set_phase("load", "", None);
    let mut report = PruneReport { dry_run: opts.dry_run, ..Default::default() };
    let mut timer = Timer { start: Instant::now() };
    let lease = if opts.dry_run { None } else { Some(Lease::prune(be.clone())?) };

    // load
    let snaps = repo.snapshots()?;
    repo.reload_index()?;
    let records = condemned::list_condemned(be.as_ref())?;
    let (index_names, files, disk) = list_indexes_and_packs(repo)?;
    let condemned_before: IdSet<PackId> = records.iter().flat_map(|(r, _)| r.packs.iter().copied()).collect();
    report.snapshots = snaps.len() as u64;
    report.index_files = index_names.len() as u64;
    timer.lap(&mut report, "load");
    hook("load")?;

    // mark
    let mut used: IdMap<BlobId, bool> = IdMap::default();
    let mut marked: HashSet<SnapshotId> = HashSet::new();
    progress.set_phase("mark", "snapshots", Some((snaps.len() as u64, 0)));
    for (id, s) in &snaps {
        mark_snapshot(repo, id, s.tree, &mut used)?;
        marked.insert(*id);
        progress.add_done(1, 0);
    }
    report.blobs_used = used.len() as u64;
    timer.lap(&mut report, "mark");
    hook("mark")?;

    // plan
    let mut order: Vec<PackId> = Vec::new();
    let mut packs: IdMap<PackId, PackInfo> = IdMap::default();
    for f in files {
        for p in f.packs {
            if packs.contains_key(&p.id) {
                continue;
            }
            order.push(p.id);
            packs.insert(
                p.id,
                PackInfo {
                    size: p.size,
                    entries: p.blobs,
                    owned: Vec::new(),
                    used: 0,
                    unused: 0,
                    condemned: condemned_before.contains(&p.id),
                    on_disk: disk.contains_key(&p.id),
                },
            );
        }
    }
    // A blob stored in several packs counts as used in one: a live pack first, then a condemned
    // one, then a missing one.
    let mut by_class = order.clone();
    by_class.sort_by_key(|id| {
        let p = &packs[id];
        (!p.on_disk, p.condemned)
    });
    for id in &by_class {
        let p = packs.get_mut(id).unwrap();
        for e in &p.entries {
            match used.get_mut(&e.id) {
                Some(taken) if !*taken => {
                    *taken = true;
                    p.used += e.length as u64;
                    p.owned.push(*e);
                }
                _ => p.unused += e.length as u64,
            }
        }
    }
    let mut remove: Vec<PackId> = Vec::new();
    let mut candidates: Vec<PackId> = Vec::new();
    let mut kept_bytes = 0u64;
    let mut unused_left = 0u64;
    for id in &order {
        let p = &packs[id];
        report.packs += 1;
        report.pack_bytes += p.size;
        report.used_bytes += p.used;
        report.unused_bytes += p.unused;
        if !p.on_disk {
            report.packs_missing += 1;
            continue;
        }
        if p.condemned {
            continue;
        }
        if p.used == 0 {
            remove.push(*id);
            continue;
        }
        kept_bytes += p.size;
        unused_left += p.unused;
        if p.unused > 0 {
            candidates.push(*id);
        }
    }
    report.packs_unused = remove.len() as u64;
    // Most garbage first, until what is left is within the limit.
    candidates.sort_by(|a, b| {
        let (pa, pb) = (&packs[a], &packs[b]);
        (pb.unused as f64 / pb.size as f64).total_cmp(&(pa.unused as f64 / pa.size as f64)).then(a.cmp(b))
    });
    let mut repack: Vec<PackId> = Vec::new();
    for id in candidates {
        if unused_left as f64 <= opts.max_unused.max(0.0) * kept_bytes as f64 {
            break;
        }
        let p = &packs[&id];
        unused_left -= p.unused;
        kept_bytes -= p.unused;
        repack.push(id);
    }
    report.unused_bytes_after = unused_left;
    report.packs_repacked = repack.len() as u64;
    let mut unindexed: Vec<PackId> =
        disk.keys().filter(|id| !packs.contains_key(*id) && !condemned_before.contains(*id)).copied().collect();
    unindexed.sort();
    report.packs_unindexed = unindexed.len() as u64;
    let to_condemn: Vec<PackId> = remove.iter().chain(&repack).chain(&unindexed).copied().collect();
    timer.lap(&mut report, "plan");
    hook("plan")?;
    if opts.dry_run {
        report.bytes_freed = to_condemn.iter().map(|id| disk[id]).sum::<u64>();
        report.bytes_repacked = repack.iter().map(|id| packs[id].used).sum();
        report.packs_condemned = to_condemn.len() as u64;
        return Ok(report);
    }
    let lease = lease.expect("a prune that writes holds the lease");

    // repack
    let mut new_packs: Vec<IndexPack> = Vec::new();
    {
        let pack_size = repo.config().pack_size as usize;
        let mut writers: [Option<PackWriter>; 2] = [None, None];
        let flush = |w: PackWriter, new_packs: &mut Vec<IndexPack>| -> Result<()> {
            let p = w.finish(repo.keys());
            repo.save_pack(&p)?;
            new_packs.push(IndexPack { id: p.id, size: p.bytes.len() as u64, blobs: p.entries });
            Ok(())
        };
        progress.set_phase(
            "repack",
            "packs",
            Some((repack.len() as u64, repack.iter().map(|id| packs[id].size).sum())),
        );
        for id in &repack {
            let name = ObjectName::of(id);
            let bytes = be.read(&name).map_err(Error::backend_err("read pack", &name))?;
            progress.add_done(1, packs[id].size);
            // The whole pack is verified (hash, header) and every blob copied is decrypted and
            // checked, so a repack never carries damage into a new pack unnoticed.
            pack::parse(repo.keys(), id, &bytes).map_err(|e| {
                Error::Other(format!("{e}; prune stopped before changing anything: run `clawback check --read-data`"))
            })?;
            for e in &packs[id].owned {
                let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                repo.decode_blob(e.ty, &e.id, stored, e.raw_length as usize)
                    .map_err(|err| Error::corrupt("pack", &name, format!("blob {}: {err}", e.id.short())))?;
                let slot = &mut writers[e.ty as usize];
                let w = slot.get_or_insert_with(|| PackWriter::new(e.ty, pack_size + pack_size / 8));
                w.add(e.id, stored, e.raw_length as usize);
                report.bytes_repacked += e.length as u64;
                if w.len() >= pack_size {
                    flush(slot.take().unwrap(), &mut new_packs)?;
                }
            }
        }
        for ty in [BlobType::Data, BlobType::Tree] {
            if let Some(w) = writers[ty as usize].take() {
                flush(w, &mut new_packs)?;
            }
        }
    }
    report.packs_written = new_packs.len() as u64;
    timer.lap(&mut report, "repack");
    hook("repack")?;

    progress.set_phase("index", "", None);
    // index: one file for the packs that stay (and the new ones), one for the condemned; both
    // written before any file they supersede is removed.
    let condemn_set: IdSet<PackId> = to_condemn.iter().copied().collect();
    if !to_condemn.is_empty() || index_names.len() > 1 || !new_packs.is_empty() {
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for id in &order {
            let p = packs.get_mut(id).unwrap();
            let ip = IndexPack { id: *id, size: p.size, blobs: std::mem::take(&mut p.entries) };
            if p.condemned || condemn_set.contains(id) {
                dead.push(ip);
            } else {
                live.push(ip);
            }
        }
        live.extend(new_packs);
        let supersedes: Vec<IndexId> = index_names.iter().filter_map(|n| n.id::<IndexId>()).collect();
        let mut written = HashSet::new();
        for (packs, supersedes) in [(live, supersedes), (dead, Vec::new())] {
            if packs.is_empty() {
                continue;
            }
            let id = repo.save_index(&IndexFile { version: 1, supersedes, packs })?;
            written.insert(ObjectName::of(&id));
            report.index_files_written += 1;
        }
        lease.ensure_held()?;
        for n in index_names.iter().filter(|n| !written.contains(*n)) {
            match be.delete(n) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::backend_err("delete index", n)(e))
                }
                _ => report.index_files_deleted += 1,
            }
        }
    }
    drop(packs);
    timer.lap(&mut report, "index");
    hook("index")?;

    // condemn
    if !to_condemn.is_empty() {
        condemned::condemn(be.as_ref(), to_condemn.clone(), || hook("condemn-pending"))?;
        report.packs_condemned = to_condemn.len() as u64;
    }
    timer.lap(&mut report, "condemn");
    hook("condemn")?;

    // delete
    progress.set_phase("delete", "", None);
    sweep(repo, &lease, &mut used, &mut marked, &mut report, &mut *hook)?;
    timer.lap(&mut report, "delete");
    hook("delete")?;
    lease.release();
    Ok(report)
}

/// Deletes the packs of every condemned record whose backup leases have all ended, after checking
/// that no snapshot has come to need them (those are resurrected instead).
fn sweep(
    repo: &Repository,
    lease: &Lease,
    used: &mut IdMap<BlobId, bool>,
    marked: &mut HashSet<SnapshotId>,
    report: &mut PruneReport,
    hook: Hook<'_>,
) -> Result<()> {
    let be = repo.backend().clone();
    let records = condemned::list_condemned(be.as_ref())?;
    if records.is_empty() {
        return Ok(());
    }
    let live: HashSet<String> = lease::live_backup_leases(be.as_ref())?.into_iter().collect();
    let mut all_condemned: IdSet<PackId> = IdSet::default();
    let mut eligible = Vec::new();
    for (mut rec, mut names) in records {
        all_condemned.extend(rec.packs.iter().copied());
        if rec.leases.is_none() {
            // Left at stage 0 by a prune that stopped there.
            names = vec![condemned::finalize(be.as_ref(), &mut rec, &names)?];
        }
        let waiting = condemned::waiting_on(&rec, &live);
        if !waiting.is_empty() {
            report.packs_waiting += rec.packs.len() as u64;
            report.waiting_on.extend(waiting.into_iter().cloned());
            continue;
        }
        eligible.push((rec, names));
    }
    report.waiting_on.sort();
    report.waiting_on.dedup();
    if eligible.is_empty() {
        return Ok(());
    }

    // What has come to be referenced since the mark: snapshots first, then the index (which
    // lists everything those snapshots need), then the packs.
    let snaps = repo.snapshots()?;
    repo.reload_index()?;
    for (id, s) in &snaps {
        if marked.insert(*id) {
            mark_snapshot(repo, id, s.tree, used)?;
        }
    }
    let (index_names, files, disk) = list_indexes_and_packs(repo)?;

    let mut candidates: Vec<PackId> = eligible.iter().flat_map(|(r, _)| r.packs.iter().copied()).collect();
    candidates.sort();
    candidates.dedup();
    let cand_set: IdSet<PackId> = candidates.iter().copied().collect();
    let mut entries: IdMap<PackId, Vec<PackEntry>> = IdMap::default();
    let mut listed: IdSet<PackId> = IdSet::default();
    for f in &files {
        for p in &f.packs {
            if cand_set.contains(&p.id) {
                listed.insert(p.id);
                entries.entry(p.id).or_insert_with(|| p.blobs.clone());
            }
        }
    }
    for id in &candidates {
        if !entries.contains_key(id) {
            if let Some(&size) = disk.get(id) {
                // In no index (never indexed, or a prune stopped after un-indexing it): its header
                // says what it holds. A damaged one holds nothing anyone can use; one the store
                // cannot serve now (an outage) may hold what a snapshot needs, so the prune stops.
                let es = match repo.read_pack_header(id, size) {
                    Ok(es) => es,
                    Err(Error::Backend { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e @ (Error::Backend { .. } | Error::Io { .. } | Error::Interrupted)) => return Err(e),
                    Err(_) => Vec::new(),
                };
                entries.insert(*id, es);
            }
        }
    }
    // Used blobs in candidates, and whether a live pack (indexed, present, not condemned) has them.
    let mut needed: IdMap<BlobId, bool> = IdMap::default();
    for es in entries.values() {
        for e in es {
            if used.contains_key(&e.id) {
                needed.insert(e.id, false);
            }
        }
    }
    if !needed.is_empty() {
        for f in &files {
            for p in f.packs.iter().filter(|p| !all_condemned.contains(&p.id) && disk.contains_key(&p.id)) {
                for e in &p.blobs {
                    if let Some(ok) = needed.get_mut(&e.id) {
                        *ok = true;
                    }
                }
            }
        }
    }
    let mut resurrect = Vec::new();
    let mut delete: IdSet<PackId> = IdSet::default();
    for id in &candidates {
        let es = entries.get(id).map(Vec::as_slice).unwrap_or_default();
        if disk.contains_key(id) && es.iter().any(|e| needed.get(&e.id) == Some(&false)) {
            for e in es {
                if let Some(ok) = needed.get_mut(&e.id) {
                    *ok = true;
                }
            }
            resurrect.push(*id);
        } else {
            delete.insert(*id);
        }
    }
    report.packs_resurrected += resurrect.len() as u64;

    lease.ensure_held()?;
    // 1. Resurrected packs no index lists get one.
    let unlisted: Vec<IndexPack> = resurrect
        .iter()
        .filter(|id| !listed.contains(*id))
        .map(|id| IndexPack { id: *id, size: disk[id], blobs: entries.remove(id).unwrap_or_default() })
        .collect();
    if !unlisted.is_empty() {
        repo.save_index(&IndexFile { version: 1, supersedes: vec![], packs: unlisted })?;
        report.index_files_written += 1;
    }
    // 2. The packs to delete leave every index file that lists them.
    for (name, f) in index_names.iter().zip(files) {
        if !f.packs.iter().any(|p| delete.contains(&p.id)) {
            continue;
        }
        let rest: Vec<IndexPack> = f.packs.into_iter().filter(|p| !delete.contains(&p.id)).collect();
        if !rest.is_empty() {
            let supersedes = name.id::<IndexId>().into_iter().collect();
            let id = repo.save_index(&IndexFile { version: 1, supersedes, packs: rest })?;
            report.index_files_written += 1;
            if ObjectName::of(&id) == *name {
                continue;
            }
        }
        match be.delete(name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::backend_err("delete index", name)(e))
            }
            _ => report.index_files_deleted += 1,
        }
    }
    hook("delete-index")?;
    // 3. The packs themselves.
    lease.ensure_held()?;
    let mut gone: Vec<&PackId> = delete.iter().collect();
    gone.sort();
    for id in gone {
        let Some(&size) = disk.get(id) else { continue };
        let name = ObjectName::of(id);
        match be.delete(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::backend_err("delete pack", &name)(e))
            }
            _ => {
                report.packs_deleted += 1;
                report.bytes_freed += size;
            }
        }
    }
    hook("delete-packs")?;
    // 4. The records: their packs are gone or live again.
    for (_, names) in &eligible {
        for n in names {
            match be.delete(n) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::backend_err("delete condemned record", n)(e))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
