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

mod damage;
mod data;
mod structure;
mod subset;

pub use subset::Subset;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, IdMap, PackId, TreeId};
use crate::format::pack::PackEntry;
use crate::format::tree::Tree;
use crate::progress::Progress;
use crate::repo::Repository;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

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

/// One check run: what the index files, the pack listing and the trees said, and the report.
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
    trees: IdMap<TreeId, Option<Tree>>,
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
    c.check_dictionaries()?;
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
}

/// The reason in a corruption error, without the object's name (the message names it already).
fn why(e: &Error) -> String {
    match e {
        Error::Corrupt { why, .. } => why.clone(),
        e => e.to_string(),
    }
}
