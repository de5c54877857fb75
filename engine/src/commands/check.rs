//! `check`: verify a repository without trusting the cache.
//!
//! Structure (always): every index file's name is the hash of its bytes and it decodes; every
//! indexed pack exists in `data/` with the indexed size; packs no index lists are warnings (left
//! over from an interrupted backup) unless a snapshot needs a blob only they hold; every snapshot
//! decodes; every tree reachable from a snapshot loads (each tree once) and every blob a tree
//! references is in the index with the right type.
//!
//! `--read-data` (all packs or a subset) also downloads each pack, checks that its bytes hash to its
//! name, decodes its header, checks the header against the index, and decrypts and verifies every
//! blob (authentication, length, keyed hash).
//!
//! Every problem names the pack, blob, index or snapshot it is about; problems that make blobs
//! unreadable also name the snapshots and files that use those blobs (found by walking the
//! snapshots' trees again, only into trees that contain damage).

use crate::backend::Kind;
use crate::error::{Error, Result};
use crate::format::blob::{self, BlobType};
use crate::format::id::{BlobId, IdMap, IdSet, ObjectId, PackId, SnapshotId};
use crate::format::pack::{self, PackEntry};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Tree};
use crate::progress::Progress;
use crate::repo::Repository;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Which packs `--read-data` downloads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    All,
    /// Group `n` (1-based) of `m`: packs whose id's first byte is `n-1` modulo `m`, as restic does.
    Bucket {
        n: u32,
        m: u32,
    },
    /// This percentage of the packs, chosen at random.
    Percent(f64),
}

impl Subset {
    /// `n/m` or `P%`.
    pub fn parse(s: &str) -> Result<Subset> {
        let bad = |why: &str| Error::Usage(format!("--read-data-subset {s:?}: {why} (give n/m or P%)"));
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad("not a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad("the percentage must be above 0 and at most 100"));
            }
            return Ok(Subset::Percent(v));
        }
        let (n, m) = s.split_once('/').ok_or_else(|| bad("not n/m"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("n is not a number"))?;
        let m: u32 = m.trim().parse().map_err(|_| bad("m is not a number"))?;
        if m == 0 || m > 256 {
            return Err(bad("m must be between 1 and 256"));
        }
        if n == 0 || n > m {
            return Err(bad("n must be between 1 and m"));
        }
        Ok(Subset::Bucket { n, m })
    }

    /// The packs of `all` (sorted by id) this subset selects.
    pub fn select(&self, all: &[PackId]) -> Vec<PackId> {
        match *self {
            Subset::All => all.to_vec(),
            Subset::Bucket { n, m } => all.iter().filter(|p| p.0[0] as u32 % m == n - 1).copied().collect(),
            Subset::Percent(pct) => {
                use rand::seq::IndexedRandom;
                let k = ((all.len() as f64 * pct / 100.0).ceil() as usize).min(all.len());
                let mut v: Vec<PackId> = all.choose_multiple(&mut rand::rng(), k).copied().collect();
                v.sort();
                v
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// `None`: structure only.
    pub read_data: Option<Subset>,
}

/// One problem found. `snapshots` and `files` list what it damages, where known.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Snapshots (full ids) with files that cannot be restored because of this problem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
    /// Those files (absolute original paths; a folder when a whole tree is lost).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Blobs this problem may make unreadable; only those with no healthy copy count.
    #[serde(skip)]
    blobs: Vec<BlobId>,
}

impl Problem {
    fn new(kind: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            message: message.into(),
            pack: None,
            blob: None,
            index: None,
            snapshot: None,
            snapshots: vec![],
            files: vec![],
            blobs: vec![],
        }
    }
    fn pack(mut self, p: &PackId) -> Self {
        self.pack = Some(p.to_hex());
        self
    }
    fn blob(mut self, b: &BlobId) -> Self {
        self.blob = Some(b.to_hex());
        self
    }
    fn blobs(mut self, b: Vec<BlobId>) -> Self {
        self.blobs = b;
        self
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Packs whose presence and size were checked (structure), or that were downloaded and
    /// verified (`--read-data`).
    pub packs_checked: u64,
    /// Distinct blobs the snapshots reference, looked up in the index (structure), plus the blobs
    /// decrypted and verified (`--read-data`).
    pub blobs_checked: u64,
    pub snapshots_checked: u64,
    pub trees_checked: u64,
}

/// Everything the index files say about one pack.
struct PackInfo {
    size: u64,
    entries: Vec<PackEntry>,
    indexes: Vec<String>,
}

struct Checker<'a> {
    repo: &'a Repository,
    report: CheckReport,
    packs: BTreeMap<PackId, PackInfo>,
    /// Every indexed copy of every blob.
    blobs: IdMap<BlobId, Vec<(PackId, PackEntry)>>,
    /// Packs in `data/` and their sizes.
    stored: BTreeMap<PackId, u64>,
    /// Packs in `data/` that no index lists, with their header's entries when it could be read.
    unindexed: BTreeMap<PackId, Vec<PackEntry>>,
    /// Copies known to be unreadable.
    bad_copies: HashSet<(BlobId, PackId)>,
    trees: IdMap<BlobId, Option<Tree>>,
    progress: &'a Progress,
}

/// Runs the check. Errors in the repository are in the report; `Err` means the check itself could
/// not run (the backend cannot list, say).
pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    check_with_progress(repo, opts, &Progress::default())
}

/// `check`, counting its steps in `progress`: index files read, trees walked, pack bytes read.
pub fn check_with_progress(repo: &Repository, opts: &CheckOptions, progress: &Progress) -> Result<CheckReport> {
    let mut c = Checker {
        repo,
        report: CheckReport::default(),
        packs: BTreeMap::new(),
        blobs: IdMap::default(),
        stored: BTreeMap::new(),
        unindexed: BTreeMap::new(),
        bad_copies: HashSet::new(),
        trees: IdMap::default(),
        progress,
    };
    c.load_indexes()?;
    c.check_packs()?;
    let snaps = c.load_snapshots()?;
    let referenced = c.walk_trees(&snaps);
    c.check_referenced(&referenced);
    if let Some(subset) = opts.read_data {
        c.read_data(subset);
    }
    c.map_damage(&snaps);
    let mut r = c.report;
    r.ok = r.errors.is_empty();
    Ok(r)
}

impl Checker<'_> {
    fn error(&mut self, p: Problem) {
        self.report.errors.push(p);
    }

    fn load_indexes(&mut self) -> Result<()> {
        let be = self.repo.backend();
        let list = be.list(Kind::Index).map_err(Error::backend_err("list", "index"))?;
        let bytes_total = list.iter().map(|(_, n)| n).sum();
        self.progress.set_phase("index", "index files", Some((list.len() as u64, bytes_total)));
        for (name, size) in list {
            self.progress.add_done(1, size);
            let f = match self.repo.read_index_file(&name) {
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

    fn check_packs(&mut self) -> Result<()> {
        let be = self.repo.backend().clone();
        for (name, size) in be.list(Kind::Pack).map_err(Error::backend_err("list", "data"))? {
            match ObjectId::from_hex(&name) {
                Some(id) => {
                    self.stored.insert(id, size);
                }
                None => self
                    .report
                    .warnings
                    .push(Problem::new("pack_name", format!("data/{name} is not named like a pack"))),
            }
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

    fn load_snapshots(&mut self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let be = self.repo.backend().clone();
        let mut out = Vec::new();
        for (name, _) in be.list(Kind::Snapshot).map_err(Error::backend_err("list", "snapshots"))? {
            self.report.snapshots_checked += 1;
            let res = self.repo.read_snapshot(&name).map_err(|e| match e {
                Error::Backend { source, .. } => format!("cannot be read: {source}"),
                Error::Corrupt { why, .. } if why == "content does not match its name" => why,
                e => e.to_string(),
            });
            match (res, ObjectId::from_hex(&name)) {
                (Ok(s), Some(id)) => out.push((id, s)),
                (Err(e), _) => {
                    let mut p = Problem::new("snapshot", format!("snapshot {name}: {e}"));
                    p.snapshot = Some(name.clone());
                    p.snapshots = vec![name];
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
    fn read_indexed(&mut self, ty: BlobType, id: &BlobId) -> std::result::Result<Vec<u8>, Box<Problem>> {
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
            let name = pid.to_hex();
            let r = self
                .repo
                .backend()
                .read_range(Kind::Pack, &name, e.offset as u64, e.length as u64)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    if e.ty != ty {
                        return Err(format!("indexed as {}, used as {}", e.ty.name(), ty.name()));
                    }
                    blob::decode(self.repo.keys(), ty, id, &b, e.raw_length as usize).map_err(|e| why(&e))
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
    fn walk_trees(&mut self, snaps: &[(SnapshotId, Snapshot)]) -> IdMap<BlobId, BlobType> {
        let mut referenced: IdMap<BlobId, BlobType> = IdMap::default();
        // (tree, its depth below the snapshot's root): a chain deeper than restore and ls follow
        // is reported rather than walked further.
        let mut stack: Vec<(BlobId, usize)> = Vec::new();
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
                        .blob(&tid),
                    );
                    continue;
                }
                referenced.insert(tid, BlobType::Tree);
                self.progress.add_done(1, 0);
                let tree = match self.read_indexed(BlobType::Tree, &tid) {
                    Ok(bytes) => match Tree::decode(&tid, &bytes) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            self.error(Problem::new("tree", format!("tree {tid}: {e}")).blob(&tid).blobs(vec![tid]));
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
                                    referenced.insert(*b, BlobType::Data);
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
    fn check_referenced(&mut self, referenced: &IdMap<BlobId, BlobType>) {
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
            w.pack.as_ref().is_none_or(|p| ObjectId::from_hex(p).is_none_or(|id| !in_unindexed.contains_key(&id)))
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

    fn read_data(&mut self, subset: Subset) {
        use rayon::prelude::*;
        let all: Vec<PackId> = self.stored.keys().copied().collect();
        let chosen = subset.select(&all);
        // Structure already counted the indexed packs; with --read-data the count is of packs read.
        self.report.packs_checked = chosen.len() as u64;
        let jobs: Vec<(PackId, Option<Vec<PackEntry>>)> =
            chosen.iter().map(|id| (*id, self.packs.get(id).map(|i| i.entries.clone()))).collect();
        let bytes_total = chosen.iter().map(|id| self.stored.get(id).copied().unwrap_or(0)).sum();
        self.progress.set_phase("read data", "packs", Some((chosen.len() as u64, bytes_total)));
        let results: Vec<PackResult> = jobs.par_iter().map(|(id, idx)| self.read_pack(id, idx.as_deref())).collect();
        for r in results {
            self.report.blobs_checked += r.blobs_checked;
            self.bad_copies.extend(r.bad.iter().map(|b| (*b, r.id)));
            self.report.errors.extend(r.errors);
        }
    }

    fn read_pack(&self, id: &PackId, indexed: Option<&[PackEntry]>) -> PackResult {
        let mut r = PackResult { id: *id, blobs_checked: 0, bad: vec![], errors: vec![] };
        let name = id.to_hex();
        let read = self.repo.backend().read(Kind::Pack, &name);
        self.progress.add_done(1, self.stored.get(id).copied().unwrap_or(0));
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                let lost: Vec<BlobId> = indexed.unwrap_or_default().iter().map(|e| e.id).collect();
                r.bad = lost.clone();
                r.errors.push(Problem::new("pack_read", format!("pack {id} cannot be read: {e}")).pack(id).blobs(lost));
                return r;
            }
        };
        let hash_ok = PackId::of_bytes(&bytes) == *id;
        let header = pack::header_of(self.repo.keys(), id, &bytes);
        let mut header_problem = None;
        let expected: Vec<PackEntry> = match (&header, indexed) {
            (Ok(h), Some(ix)) => {
                let mut a: Vec<PackEntry> = h.clone();
                let mut b: Vec<PackEntry> = ix.to_vec();
                a.sort_by_key(|e| (e.id, e.offset));
                b.sort_by_key(|e| (e.id, e.offset));
                if a != b {
                    header_problem = Some(
                        Problem::new("pack_index_mismatch", format!("pack {id}: its header and the index disagree"))
                            .pack(id),
                    );
                }
                ix.to_vec()
            }
            (Ok(h), None) => h.clone(),
            (Err(e), ix) => {
                header_problem =
                    Some(Problem::new("pack_header", format!("pack {id}: header unreadable: {e}")).pack(id));
                ix.unwrap_or_default().to_vec()
            }
        };
        for e in &expected {
            r.blobs_checked += 1;
            let end = e.offset as u64 + e.length as u64;
            let res = if end > bytes.len() as u64 {
                Err("beyond the end of the pack".to_string())
            } else {
                blob::decode(
                    self.repo.keys(),
                    e.ty,
                    &e.id,
                    &bytes[e.offset as usize..end as usize],
                    e.raw_length as usize,
                )
                .map(|_| ())
                .map_err(|x| why(&x))
            };
            if let Err(why) = res {
                r.bad.push(e.id);
                r.errors.push(
                    Problem::new("blob", format!("{} blob {} in pack {id}: {why}", e.ty.name(), e.id))
                        .pack(id)
                        .blob(&e.id)
                        .blobs(vec![e.id]),
                );
            }
        }
        if !hash_ok {
            let n = r.bad.len();
            let p = Problem::new(
                "pack_hash",
                format!("pack {id}: content does not match its name ({n} of {} blobs damaged)", expected.len()),
            )
            .pack(id)
            .blobs(r.bad.clone());
            r.errors.insert(0, p);
        }
        if let Some(mut p) = header_problem {
            p.blobs = r.bad.clone();
            r.errors.insert(0, p);
        }
        r
    }

    /// Fills in the snapshots and files each problem affects.
    fn map_damage(&mut self, snaps: &[(SnapshotId, Snapshot)]) {
        // A blob is damaged when no indexed copy is healthy (or it has none).
        let mut damaged: IdSet<BlobId> = IdSet::default();
        for p in self.report.errors.iter() {
            for b in &p.blobs {
                let healthy = self.blobs.get(b).is_some_and(|copies| {
                    copies
                        .iter()
                        .any(|(pid, _)| self.stored.contains_key(pid) && !self.bad_copies.contains(&(*b, *pid)))
                });
                if !healthy {
                    damaged.insert(*b);
                }
            }
        }
        // Trees that could not be loaded are damaged too.
        for (id, t) in &self.trees {
            if t.is_none() {
                damaged.insert(*id);
            }
        }
        if damaged.is_empty() {
            return;
        }
        let mut affected: IdMap<BlobId, BTreeSet<(usize, String)>> = IdMap::default();
        let mut memo: IdMap<BlobId, bool> = IdMap::default();
        for (si, (_, s)) in snaps.iter().enumerate() {
            if damaged.contains(&s.tree) {
                affected.entry(s.tree).or_default().insert((si, "/".into()));
            }
            self.visit(&s.tree, "", si, &damaged, &mut memo, &mut affected, 0);
        }
        for p in self.report.errors.iter_mut() {
            let mut snap_set = BTreeSet::new();
            let mut files = BTreeSet::new();
            for b in p.blobs.iter().filter(|b| damaged.contains(*b)) {
                for (si, path) in affected.get(b).into_iter().flatten() {
                    snap_set.insert(*si);
                    files.insert(path.clone());
                }
            }
            for si in snap_set {
                let id = snaps[si].0.to_hex();
                if !p.snapshots.contains(&id) {
                    p.snapshots.push(id);
                }
            }
            p.files.extend(files);
        }
    }

    /// Whether the tree `id` (loaded) contains a damaged blob anywhere below it.
    fn has_damage(&self, id: &BlobId, damaged: &IdSet<BlobId>, memo: &mut IdMap<BlobId, bool>, depth: usize) -> bool {
        if let Some(&m) = memo.get(id) {
            return m;
        }
        if damaged.contains(id) {
            return true;
        }
        let Some(Some(t)) = self.trees.get(id) else {
            return true;
        };
        let mut any = false;
        if depth < crate::format::tree::MAX_DEPTH {
            for n in &t.nodes {
                let hit = match n.kind {
                    NodeKind::File => n.content.iter().any(|b| damaged.contains(b)),
                    NodeKind::Dir => n
                        .subtree
                        .as_ref()
                        .is_some_and(|s| damaged.contains(s) || self.has_damage(s, damaged, memo, depth + 1)),
                    NodeKind::Symlink => false,
                };
                if hit {
                    any = true;
                    break;
                }
            }
        }
        memo.insert(*id, any);
        any
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &self,
        id: &BlobId,
        at: &str,
        si: usize,
        damaged: &IdSet<BlobId>,
        memo: &mut IdMap<BlobId, bool>,
        affected: &mut IdMap<BlobId, BTreeSet<(usize, String)>>,
        depth: usize,
    ) {
        if depth > 4096 || !self.has_damage(id, damaged, memo, depth) {
            return;
        }
        let Some(Some(t)) = self.trees.get(id) else {
            return;
        };
        for n in &t.nodes {
            let path = format!("{at}/{}", n.name_lossy());
            match n.kind {
                NodeKind::File => {
                    for b in n.content.iter().filter(|b| damaged.contains(*b)) {
                        affected.entry(*b).or_default().insert((si, path.clone()));
                    }
                }
                NodeKind::Dir => {
                    // A damaged tree that could still be read (from an unindexed pack) is walked
                    // too, to name the files under it.
                    let sub = n.subtree.unwrap();
                    if damaged.contains(&sub) {
                        affected.entry(sub).or_default().insert((si, path.clone()));
                    }
                    self.visit(&sub, &path, si, damaged, memo, affected, depth + 1);
                }
                NodeKind::Symlink => {}
            }
        }
    }
}

/// The reason in a corruption error, without the object's name (the message names it already).
fn why(e: &Error) -> String {
    match e {
        Error::Corrupt { why, .. } => why.clone(),
        e => e.to_string(),
    }
}

struct PackResult {
    id: PackId,
    blobs_checked: u64,
    bad: Vec<BlobId>,
    errors: Vec<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets() {
        assert_eq!(Subset::parse("2/5").unwrap(), Subset::Bucket { n: 2, m: 5 });
        assert_eq!(Subset::parse("10%").unwrap(), Subset::Percent(10.0));
        for bad in ["0/5", "6/5", "1/0", "1/300", "0%", "101%", "x", "1/x"] {
            assert!(Subset::parse(bad).is_err(), "{bad}");
        }
        let all: Vec<PackId> = (0..=255u8).map(|b| ObjectId([b; 32])).collect();
        // The m groups partition the packs, deterministically by the first byte of the id.
        let mut seen = BTreeSet::new();
        for n in 1..=3 {
            let s = Subset::Bucket { n, m: 3 }.select(&all);
            assert!(s.iter().all(|p| p.0[0] as u32 % 3 == n - 1));
            for p in s {
                assert!(seen.insert(p));
            }
        }
        assert_eq!(seen.len(), 256);
        assert_eq!(Subset::Percent(10.0).select(&all).len(), 26);
        assert_eq!(Subset::Percent(100.0).select(&all), all);
        assert_eq!(Subset::All.select(&all).len(), 256);
    }
}
