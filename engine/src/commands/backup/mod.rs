//! Backup: walk the given paths, cut changed files into chunks, store the chunks and trees that are
//! new, and write a snapshot last. This module holds the options, the result and the run itself;
//! the jobs it is made of each have a module:
//!
//! - [`walk`]: the folders, in parallel (rayon), with the read-ahead of new files;
//! - [`file`]: change detection against the parent snapshot, and reading a file into chunks (again,
//!   while it changes under the reader);
//! - [`database`]: SQLite databases stored as consistent images, without their sidecars;
//! - [`exclude`]: exclude patterns, `.gitignore` and `.clawbackignore` scopes;
//! - [`stdin`]: a command's output stored as one file of the snapshot;
//! - [`report`]: what a dry run reports;
//! - [`node`]: tree nodes from metadata, or made up.
//!
//! Blobs and trees go through the repository's writer session ([`crate::repo::writer`]), whose
//! packer runs in a thread of its own fed through a bounded channel, so memory stays bounded by
//! (threads × batch) + (2 × pack size) whatever the amount of data.

pub(crate) mod database;
mod exclude;
pub(crate) mod file;
pub(crate) mod node;
mod report;
mod sample;
pub mod stdin;
mod walk;

pub use exclude::build_excludes;
pub use report::{DryRunReport, ExcludedEntry, FileUsage, RootUsage, LARGEST_FILES};
pub use sample::Presample;
pub use stdin::StdinCommand;

use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::chunker::Chunker;
use crate::format::id::{DataId, SnapshotId, TreeId};
use crate::format::snapshot::{BackupIssue, Snapshot, Summary};
use crate::format::tree::Tree;
use crate::openclaw::sqlite;
use crate::progress::Progress;
use crate::repo::host::absolute_clean;
use crate::repo::prefetch::Prefetcher;
use crate::repo::writer::{Writer, WriterOptions};
use crate::repo::Repository;
use exclude::{Rules, Scope};
use parking_lot::Mutex;
use report::ReportAcc;
use sample::Sampler;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use walk::{in_pool, scan_totals, walker_pool, Trie};

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
    pub openclaw: Option<crate::format::snapshot::OpenclawMeta>,
    /// `openclaw --version`, asked while the backup runs; its answer goes into `openclaw`.
    pub openclaw_cli: Option<crate::openclaw::version::CliVersion>,
    /// Folders (workspaces) under which `.gitignore` files are honoured; empty: none.
    pub gitignore_roots: Vec<PathBuf>,
    /// Why each exclude pattern is there (pattern, reason), for the dry-run report.
    pub exclude_reasons: Vec<(String, String)>,
    /// Fleet group id recorded in the snapshot.
    pub group: Option<String>,
    /// Commands whose output is stored as a file of the snapshot (database dumps); see
    /// [`stdin`]. A command that fails fails the backup.
    pub stdin_commands: Vec<StdinCommand>,
    /// Samples for the first dictionaries, taken while the repository was opened.
    pub presample: Option<Arc<Presample>>,
}

#[derive(Clone, Debug, Default)]
pub struct BackupResult {
    pub snapshot_id: Option<SnapshotId>,
    pub parent_id: Option<SnapshotId>,
    pub summary: Summary,
    pub errors: Vec<BackupIssue>,
    pub skipped: Vec<BackupIssue>,
    /// Files that kept changing while they were read; the snapshot holds what the last read got
    /// (also recorded in the snapshot's `changed`).
    pub changed: Vec<BackupIssue>,
    /// Stored, but not as intended: SQLite databases that could not be imaged consistently and were
    /// copied as plain files with their sidecars.
    pub warnings: Vec<BackupIssue>,
    /// On a dry run: what would be read and what is left out, and why.
    pub dry_run: Option<DryRunReport>,
    /// Files of the parent whose content changed (`files_changed` also counts files re-read for
    /// new metadata or `force` whose content is the same): what anomaly detection compares.
    pub files_content_changed: u64,
    /// The snapshot as saved (on a dry run, as it would have been), and its parent: what the
    /// caller's retention and anomaly checks need, without reading them back.
    pub snapshot: Option<Snapshot>,
    pub parent: Option<Snapshot>,
}

#[derive(Default)]
struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_content_changed: AtomicU64,
    /// Symlinks stored: with files, what makes a backup set non-empty.
    symlinks: AtomicU64,
    files_unmodified: AtomicU64,
    dirs: AtomicU64,
    bytes_read: AtomicU64,
    total_files: AtomicU64,
    total_bytes: AtomicU64,
}

/// One backup run, shared by the walk's workers: what to leave out, where blobs go, and what was
/// counted and met on the way.
struct Ctx<'a> {
    repo: &'a Repository,
    chunker: Chunker,
    level: i32,
    /// What is left out before the ignore files.
    rules: Rules,
    /// Where new blobs and trees go (its packer runs in a thread of its own).
    writer: Writer<'a>,
    c: Counters,
    errors: Mutex<Vec<BackupIssue>>,
    skipped: Mutex<Vec<BackupIssue>>,
    progress: &'a Progress,
    force: bool,
    changed: Mutex<Vec<BackupIssue>>,
    warnings: Mutex<Vec<BackupIssue>>,
    /// Where database images are written (created on first use, removed at the end).
    sqlite_tmp: sqlite::TempDir,
    /// Databases stored as images (or reused as such): their sidecars are not stored.
    imaged: Mutex<HashSet<PathBuf>>,
    reasons: HashMap<String, String>,
    report: Option<ReportAcc>,
    /// The trees of folders made up on the way to the backed-up paths, by id (still in the packer,
    /// not loadable yet), for grafting stream files into them.
    virtual_trees: Mutex<HashMap<TreeId, Tree>>,
    /// Reads ahead the files of each folder listed (not on a dry run).
    prefetch: Option<Prefetcher<Scope>>,
    /// Whether the blobs of an unchanged file are looked up before they are reused (see
    /// [`crate::format::index::Index::reuse_needs_check`]); mostly not: an unchanged file then
    /// costs no lookup.
    check_reuse: bool,
}

/// The paths `opts` backs up, absolute and clean, sorted, each once; an error for one that
/// cannot be read.
fn backup_paths(opts: &BackupOptions) -> Result<Vec<PathBuf>> {
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
    Ok(paths)
}

/// Runs a backup. Returns the snapshot id (none on a dry run) and the counters.
pub fn backup(repo: &Repository, opts: &BackupOptions, progress: &Progress) -> Result<BackupResult> {
    let start = Instant::now();
    if opts.paths.is_empty() && opts.stdin_commands.is_empty() {
        return Err(Error::Usage("nothing to back up: no paths given".into()));
    }
    let paths = backup_paths(opts)?;
    stdin::check_overlap(&opts.stdin_commands, &paths)?;
    let dry = opts.dry_run;
    // The backup lease goes up before the index is (re)loaded: a prune that condemns packs after
    // this sees the lease and keeps them until it is gone (format-spec, "Prune").
    let lease = if dry { None } else { Some(crate::repo::lease::Lease::backup(repo.backend().clone())?) };
    // Lazily: an unchanged run looks no blob up, so it need not read the index files other hosts
    // wrote since the last run (they are read at the first lookup).
    repo.refresh_index_lazily()?;
    let mut path_strings: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    for c in &opts.stdin_commands {
        path_strings.push(c.path()?.to_string_lossy().into_owned());
    }
    let host = opts.host.clone().unwrap_or_else(crate::repo::host::hostname);
    let set_key = format!("{host}\0{}", path_strings.join("\0"));
    let check_reuse = repo.reuse_needs_check(&set_key);
    if check_reuse {
        repo.absorb_pending()?; // every reused blob is looked up
    }

    // The parent: given, or the latest snapshot of this host with the same paths.
    let parent = match &opts.parent {
        Some(id) => Some(repo.find_snapshot(&id.to_hex(), |_| true)?),
        None => repo.latest_of_set(&host, &path_strings)?,
    };
    let parent_tree = match &parent {
        Some((_, s)) => Some(repo.load_tree(&s.tree)?),
        None => None,
    };

    let mut trie = Trie::default();
    for p in &paths {
        let comps: Vec<Vec<u8>> = p.components().skip(1).map(|c| c.as_os_str().as_bytes().to_vec()).collect();
        if comps.is_empty() {
            trie = Trie::default();
            trie.0.insert(Vec::new(), None); // "/" itself
            break;
        }
        trie.insert(&comps);
    }

    let sqlite_tmp = sqlite::TempDir::new();
    let report = dry.then(|| ReportAcc {
        roots: paths.iter().map(|p| (p.clone(), AtomicU64::new(0), AtomicU64::new(0))).collect(),
        excluded: Mutex::new(Vec::new()),
        largest: Mutex::new(BinaryHeap::new()),
    });
    let rules = Rules::of(opts, Some(sqlite_tmp.path()))?;
    // (The walk's context takes the rules; the totals' thread, when there is one, a copy.)
    let scan_excludes = opts.scan_totals.then(|| rules.excludes.clone());

    let cfg = repo.config();
    let stop_scan = AtomicBool::new(false);

    let (root, counters, issues, report, packed) = std::thread::scope(|s| {
        let writer = Writer::spawn(s, repo, WriterOptions { dry_run: dry, upload: Some(progress.upload.clone()) });
        if let Some(ex) = &scan_excludes {
            let (paths, stop) = (&paths, &stop_scan);
            s.spawn(move || scan_totals(paths, ex, progress, stop));
        }
        let prefetch = (!dry).then(|| {
            let rules = rules.clone();
            Prefetcher::start(move |p: &Path, scope: &Scope| rules.exclusion(p, false, scope).is_none())
        });
        let ctx = Ctx {
            repo,
            chunker: Chunker::new(cfg.chunker, repo.keys().chunker_seed),
            level: cfg.compression,
            rules,
            writer,
            c: Counters::default(),
            errors: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            progress,
            force: opts.force,
            changed: Mutex::new(Vec::new()),
            warnings: Mutex::new(Vec::new()),
            sqlite_tmp,
            imaged: Mutex::new(HashSet::new()),
            reasons: opts.exclude_reasons.iter().cloned().collect(),
            report,
            virtual_trees: Mutex::new(HashMap::new()),
            prefetch,
            check_reuse,
        };
        let pool = walker_pool();
        // A repository's first dictionaries, from samples spread over what is backed up (by the
        // first backup of these paths only: a later one, if nothing was sampled then, samples
        // its first blobs instead of listing the whole tree again), taken while the repository
        // was opened ([`Presample`]) or now. Each is stored before the walk stores a blob.
        let presampled = opts.presample.as_ref();
        if parent.is_none() && ctx.writer.wants_dictionaries() {
            let samples = presampled.and_then(|p| p.take()).unwrap_or_else(|| {
                let stop = || progress.stopped();
                let sampler = Sampler { rules: &ctx.rules, stop: &stop };
                in_pool(&walk::lister_pool(), || sampler.samples(&paths))
            });
            let trained = in_pool(&pool, || sample::train(samples));
            ctx.writer.adopt_dictionaries(trained);
        } else if let Some(p) = presampled {
            p.cancel();
        }
        // Streams first: a failing dump command stops the backup before the walk.
        let streams = ctx.read_streams(&opts.stdin_commands, parent_tree.as_ref());
        let root = streams.and_then(|nodes| {
            let walk = || {
                if trie.0.contains_key(&Vec::new()) {
                    // (process_dir reads "/"'s own ignore files.)
                    ctx.process_dir(Path::new("/"), parent_tree.as_ref(), &Scope::default())
                } else {
                    ctx.process_virtual(Path::new("/"), &trie, parent_tree.as_ref(), &Scope::default())
                }
            };
            in_pool(&pool, walk).and_then(|t| ctx.graft_streams(t, nodes))
        });
        let root = root.and_then(|t| ctx.store_tree(&t, parent.as_ref().map(|(_, s)| &s.tree)));
        stop_scan.store(true, Relaxed);
        let Ctx { c, errors, skipped, changed, warnings, report, writer, .. } = ctx;
        let bytes_added = writer.bytes_added();
        // The packs written so far are indexed even when the walk failed, for the next backup.
        let packed = writer.finish().map(|bytes_stored| {
            crate::failpoint::hit("backup:after-packer");
            (bytes_stored, bytes_added)
        });
        let mut issues = [errors, skipped, changed, warnings].map(|m| m.into_inner());
        for list in &mut issues {
            list.sort_by(|a, b| a.path.cmp(&b.path));
        }
        (root, c, issues, report, packed)
    });
    let (bytes_stored, bytes_added) = packed?;
    // What an interrupted backup leaves: the packs written so far, indexed, for the next one.
    progress.bytes_stored.store(bytes_stored, Relaxed);
    let root = root?;
    let [errors, skipped, changed, warnings] = issues;
    let stored = counters.total_files.load(Relaxed) + counters.symlinks.load(Relaxed);
    if !dry && stored == 0 && opts.stdin_commands.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to back up: {} hold no files or symlinks (after excludes); give paths that hold files, or check \
             the excludes",
            path_strings.join(", ")
        )));
    }
    let files_content_changed = counters.files_content_changed.load(Relaxed);
    let mut summary = Summary {
        files_new: counters.files_new.into_inner(),
        files_changed: counters.files_changed.into_inner(),
        files_unmodified: counters.files_unmodified.into_inner(),
        dirs: counters.dirs.into_inner(),
        bytes_read: counters.bytes_read.into_inner(),
        bytes_added,
        bytes_stored,
        duration_s: 0.0,
        total_files: counters.total_files.into_inner(),
        total_bytes: counters.total_bytes.into_inner(),
    };
    let time = opts.time.unwrap_or_else(chrono::Utc::now);
    let mut snap = Snapshot {
        version: 1,
        time: time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        hostname: host,
        username: crate::repo::host::username(),
        paths: path_strings,
        tags: opts.tags.clone(),
        parent: parent.as_ref().map(|(id, _)| *id),
        tree: root,
        summary: summary.clone(),
        program_version: format!("clawback {}", env!("CARGO_PKG_VERSION")),
        errors: errors.clone(),
        skipped: skipped.clone(),
        changed: changed.clone(),
        warnings: warnings.clone(),
        openclaw: opts.openclaw.clone().map(|mut m| {
            if let Some(cli) = &opts.openclaw_cli {
                cli.record(&mut m);
            }
            m
        }),
        group: opts.group.clone(),
        original: None,
    };
    let snapshot_id = if dry {
        None
    } else {
        summary.duration_s = start.elapsed().as_secs_f64();
        snap.summary.duration_s = summary.duration_s;
        crate::failpoint::hit("backup:before-snapshot");
        if let Some(l) = &lease {
            l.ensure_held()?;
        }
        let id = repo.save_snapshot_counting_itself(&mut snap)?;
        crate::failpoint::hit("backup:after-snapshot");
        if check_reuse {
            repo.reuse_checked(&set_key)?;
        }
        summary.bytes_stored = snap.summary.bytes_stored;
        Some(id)
    };
    summary.duration_s = start.elapsed().as_secs_f64();
    Ok(BackupResult {
        snapshot_id,
        parent_id: snap.parent,
        summary,
        errors,
        skipped,
        changed,
        warnings,
        dry_run: report.map(ReportAcc::finish),
        files_content_changed,
        snapshot: Some(snap),
        parent: parent.map(|(_, p)| p),
    })
}

impl Ctx<'_> {
    fn issue(&self, list: &Mutex<Vec<BackupIssue>>, path: &Path, error: impl ToString) {
        list.lock().push(BackupIssue { path: path.to_string_lossy().into_owned(), error: error.to_string() });
    }

    fn known(&self, id: &DataId) -> bool {
        self.writer.known(BlobType::Data, &id.blob())
    }

    /// Whether a blob of the parent snapshot may be reused as it is: without a lookup, unless the
    /// index says reuse must be checked this time.
    fn reusable_blob(&self, id: &DataId) -> bool {
        !self.check_reuse || self.known(id)
    }

    /// Stores a folder's tree. One identical to the parent's tree of that folder is not looked up
    /// unless reuse is checked: the parent snapshot names it, so it is stored (as its unchanged
    /// files' blobs are), and an unchanged run then needs no lookup at all.
    fn store_tree(&self, t: &Tree, parent: Option<&TreeId>) -> Result<TreeId> {
        let bytes = t.encode();
        if let Some(p) = parent.filter(|_| !self.check_reuse) {
            if self.repo.keys().tree_id(&bytes) == *p {
                return Ok(*p);
            }
        }
        Ok(self.writer.store_tree_bytes(&bytes)?.0)
    }
}
