//! Restore: recreate a snapshot (or the part selected by `--only` roots and include/exclude
//! patterns) under a target folder, or in place at the original paths. Every chunk is checked
//! against its id as it is decrypted. Names come from trees that were validated as single safe
//! components, folders are created one level at a time and refused if a symlink stands in their
//! place, and files are opened with O_NOFOLLOW: nothing a repository says can make restore write
//! outside the target.
//!
//! In place ([`RestoreOptions::in_place`]), the target is `/` and the rules are stricter:
//! - The disk is compared first: entries already identical (same kind, size, mtime and mode, or
//!   same symlink target) are left alone; a kind conflict that involves a folder (a folder where
//!   the snapshot has a file, or anything but a folder where it has one) is only resolved with
//!   `delete`, since resolving it removes what the snapshot does not have.
//! - A safety snapshot of the restored roots is taken before anything changes (a normal backup,
//!   tagged), and everything the restore overwrites must be in it, or nothing is changed.
//! - Files are written to a temporary name in their folder, synced and renamed into place, and
//!   symlinks and hard links are made under a temporary name and renamed too: a crash leaves the
//!   old entry or the new one, never a truncated file.
//! - Folders above the snapshot's own paths (`/home`, `/home/user` for a backup of
//!   `/home/user/.openclaw`) are resolved as the backup resolved them (symlinks followed) and
//!   only created if missing, never modified; at and below those paths no symlink is followed.
//! - With `delete`, entries on disk that the selection covers but the snapshot lacks are removed,
//!   within the selected roots only, except what a backup leaves out by design (OpenClaw's
//!   default excludes, `.gitignore`d files in workspaces, `.clawbackignore`d files, sockets and
//!   other special files, the `protect` patterns, the repository and cache) and anything the
//!   safety snapshot does not hold.
//! - A SQLite database renamed into place first loses the `-wal`/`-shm`/`-journal` files of the
//!   database it replaces (unless the snapshot has them): SQLite would otherwise apply the old
//!   write-ahead log to the new file. Backups store databases as consistent images without them.
//!
//! Onto another home ([`RestoreOptions::relocate`], module [`relocate`]): the roots go to new
//! places, written with the in-place rules, and the paths in OpenClaw's config and databases move
//! with them.
//!
//! Before anything is written ([`safety`]): the modes must go together, an OpenClaw gateway
//! running on what is restored stops the restore (in place unless forced, a relocation always),
//! and the safety snapshot is tagged `pre-restore` and leaves out the repository and the cache.
//!
//! `--only` ([`resolve_only`]): `state` is the state dir as a whole, including any workspace
//! that lives inside it (the state dir is the state dir); `workspace` is every workspace, wherever
//! it lives; `agent:<id>` is `<state>/agents/<id>/` (sessions and, by default, the agent dir), the
//! agent dir when configured elsewhere, and the agent's workspace, never what belongs to another
//! agent inside them (a workspace nested in this one's, another agent's agent dir): those are
//! carved out of the selection in every mode, `delete` included. The parts of OpenClaw's state
//! (`sessions`, `session:AGENT/ID`, `memory`, `cron`, `config`, `credentials`) resolve to the files
//! the snapshot holds of them and, in the SQLite era, to units of rows in shared databases, which
//! are merged row by row in place and written as OpenClaw's file-era files into a target
//! ([`units`], [`crate::openclaw::rows`]).

use crate::backend::ObjectName;
use crate::commands::backup::{backup, build_excludes, BackupOptions};
use crate::error::{Error, IoContext, Result};
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, DataId, SnapshotId};
use crate::format::index::BlobLoc;
use crate::format::snapshot::{BackupIssue, OpenclawMeta, Snapshot};
use crate::format::tree::{Node, NodeKind};
use crate::progress::Progress;
use crate::repo::host::absolute_clean;
use crate::repo::Repository;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use parking_lot::Mutex;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};

mod in_place;
pub mod relocate;
pub mod safety;
mod select;
mod trees;
mod units;
mod write;

pub use crate::openclaw::rows::RowSet;
pub use safety::{check_modes, gateway_rule, running_gateway, undo_selection, RunningGateway, SafetyOptions};
use select::{minimal_roots, Inherited};
pub use select::{plan, resolve_only, Item, Only, Selection};
use trees::TreesAhead;

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Where to restore (ignored in place).
    pub target: PathBuf,
    /// gitignore-style patterns on the original absolute path; empty: everything.
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    /// Restore only at or below these absolute paths (see [`resolve_only`]); empty: everything
    /// (unless `rows` is not empty: then no file at all).
    pub only: Vec<PathBuf>,
    /// Never at or below these, unless a root of `only` lies deeper ([`Only::except`]).
    pub only_except: Vec<PathBuf>,
    /// Units restored row by row ([`Only::rows`]).
    pub rows: Vec<RowSet>,
    /// Re-read and re-hash every written file (in place: also every file left alone as
    /// identical, which is rewritten if its content differs after all).
    pub verify: bool,
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// Restore to the original paths, atomically per entry (see the module docs).
    pub in_place: bool,
    /// In place: remove entries the snapshot does not have, within the selected roots.
    pub delete: bool,
    /// In place: take a safety snapshot of the selected roots first (none: no safety snapshot).
    pub safety: Option<SafetyOptions>,
    /// In place: patterns (gitignore syntax, absolute) of entries never deleted and left out of
    /// the safety snapshot, as a backup leaves them out (the config's `exclude`).
    pub protect: Vec<String>,
    /// Restore onto other places than the snapshot's ([`relocate::resolve`]), in place there;
    /// selections (`only`, patterns) still name the snapshot's paths.
    pub relocate: Option<relocate::Relocation>,
}

/// What an in-place restore does to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing there yet.
    Create,
    /// Something of a compatible kind there, different: replaced atomically.
    Update,
    /// A kind conflict involving a folder: what is there is removed first (needs `delete`).
    Replace,
    /// Not in the snapshot: removed (with `delete`).
    Delete,
}

#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub path: String,
    pub action: Action,
    /// `file`, `dir` or `symlink`: the snapshot's kind, or what is on disk for a deletion; `row`
    /// for a unit inside the database `path` (see `row`).
    pub kind: &'static str,
    /// For `row`: what the unit is (`session agent:main:main`, `cron job nightly (<id>)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreResult {
    /// Files written (in place: created or changed; identical ones are not counted).
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub bytes: u64,
    /// Files that could not be restored (damaged or missing data), with the reason.
    pub errors: Vec<BackupIssue>,
    /// In place: files and symlinks already identical on disk, left alone.
    pub unchanged: u64,
    /// In place: entries removed (with `delete`).
    pub deleted: u64,
    /// In place: every entry created, updated, replaced or deleted (or that would be, dry run).
    pub changes: Vec<Change>,
    /// In place: entries `delete` left because they are not in the safety snapshot, or could not
    /// be removed.
    pub kept: Vec<BackupIssue>,
    /// In place: the safety snapshot (none on a dry run, or when nothing was there).
    pub safety_snapshot: Option<SnapshotId>,
    /// In place: the roots the restore covered (`only`, else the snapshot's paths).
    pub scope: Vec<PathBuf>,
    /// In place: the roots that existed, which the safety snapshot holds.
    pub safety_paths: Vec<PathBuf>,
    /// Relocating: where each root went and each path moved.
    pub relocation: Option<relocate::Report>,
    /// In place: units restored row by row (created or changed). Into a folder: the files written
    /// for them (counted in `files` too).
    pub rows: u64,
}

/// Creates `target/rel` as a real folder; refuses a symlink or a file in its place. Returns
/// whether it was created.
pub(super) fn safe_mkdir(target: &Path, rel: &Path) -> Result<bool> {
    let p = target.join(rel);
    match std::fs::create_dir(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let md = std::fs::symlink_metadata(&p).ctx("inspect", &p)?;
            if md.file_type().is_symlink() || !md.is_dir() {
                return Err(Error::UnsafePath(format!(
                    "{} exists and is not a folder (a symlink would lead outside the target)",
                    p.display()
                )));
            }
            Ok(false)
        }
        Err(e) => Err(Error::io("create folder", &p, e)),
    }
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub(super) fn set_owner(path: &Path, n: &Node) {
    if is_root() {
        if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
            // SAFETY: c is a valid NUL-terminated path.
            unsafe { libc::lchown(c.as_ptr(), n.uid, n.gid) };
        }
    }
}

pub(super) fn ft(ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
}

pub(super) fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
    }
}

/// Restores a snapshot under `opts.target`, or in place with `opts.in_place`.
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreResult> {
    if opts.delete && !opts.in_place {
        return Err(Error::Usage("--delete applies only to a restore in place (without --target)".into()));
    }
    // Not reduced to the outermost roots: one inside a carve-out is only reached as itself.
    let sel = Selection::new(&opts.includes, &opts.excludes)?
        .with_roots(opts.only.clone())
        .with_except(opts.only_except.clone());
    if let Some(r) = &opts.relocate {
        return relocate::restore(repo, snap, opts, r, &sel, progress);
    }
    // Only rows asked for: no file is selected.
    let files = !opts.only.is_empty() || opts.rows.is_empty();
    let images = if opts.rows.is_empty() { None } else { Some(units::Images::load(repo, snap, &opts.rows)?) };
    if opts.in_place {
        let items = if files { plan(repo, snap, &sel)? } else { Vec::new() };
        return in_place::restore_in_place(repo, snap, opts, &sel, items, images.as_ref(), progress);
    }
    let mut res =
        if files { restore_to_target(repo, snap, opts, &sel, progress, BATCH)? } else { RestoreResult::default() };
    if let Some(images) = &images {
        let (n, bytes) = units::export_to_target(images, &opts.target, opts.dry_run)?;
        res.files += n;
        res.bytes += bytes;
        res.rows = n;
    }
    Ok(res)
}

/// Files handed from the tree walk to the writers at a time, and chunks referenced by them: enough
/// for packs to be read in long ranges, few enough that a batch takes a few MiB of memory. On a
/// 1.9 GB home, 32 Ki chunks peaked at 65 MB and 24 Ki at 59 MB, in the same time (5.4-5.9 s).
const BATCH: Batch = Batch { files: 6 << 10, chunks: 24 << 10 };

#[derive(Clone, Copy)]
struct Batch {
    files: usize,
    chunks: usize,
}

fn restore_to_target(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    sel: &Selection,
    progress: &Progress,
    batch: Batch,
) -> Result<RestoreResult> {
    if !opts.dry_run {
        std::fs::create_dir_all(&opts.target).ctx("create target folder", &opts.target)?;
    }
    let stop = AtomicBool::new(false);
    let walker = Walker::new(repo, sel, &opts.target, opts.dry_run, progress, batch, &stop);
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Item>>(1);
    let (walked, written) = std::thread::scope(|s| {
        // One thread walks the trees, creating folders and handing over batches of files, while
        // this one writes the batch before: memory holds a few batches, never the whole plan.
        let walk = s.spawn(|| walker.run(snap, tx));
        let written = write_batches(repo, &opts.target, rx, opts.verify, progress);
        if written.is_err() {
            // The writers stopped on an error: the walk stops too, creating no more folders.
            stop.store(true, Relaxed);
        }
        (walk.join().unwrap_or_else(|_| Err(Error::Other("the restore's tree walk panicked".into()))), written)
    });
    let walked = walked?;
    let (mut errors, links) = written?;
    let mut res = walked.res;
    if opts.dry_run {
        return Ok(res);
    }
    let target = &opts.target;
    res.hardlinks = write::make_links(target, &links, &mut errors, false)?;
    for it in &walked.symlinks {
        let p = target.join(&it.rel);
        if let Ok(md) = std::fs::symlink_metadata(&p) {
            if md.is_dir() {
                return Err(Error::UnsafePath(format!("{} is a folder where the snapshot has a symlink", p.display())));
            }
            std::fs::remove_file(&p).ctx("replace", &p)?;
        }
        make_symlink(&p, &p, &it.node)?;
    }
    // Folder metadata last, deepest first, so writing into them does not change their mtime.
    for (rel, node) in walked.dirs.iter().rev() {
        set_dir_meta(&target.join(rel), node);
    }
    res.errors = errors;
    Ok(res)
}

/// What the tree walk of a restore to a target leaves for the end.
struct Walked {
    res: RestoreResult,
    /// Folders created, parents first, with their metadata (set last, deepest first).
    dirs: Vec<(PathBuf, Node)>,
    symlinks: Vec<Item>,
}

/// Walks a snapshot's trees for a restore to a target: counts what the selection restores,
/// creates its folders (a folder only once something below it, or itself, is selected), and
/// sends its files in batches.
struct Walker<'a> {
    repo: &'a Repository,
    sel: &'a Selection,
    target: &'a Path,
    dry_run: bool,
    progress: &'a Progress,
    limit: Batch,
    /// Set when the writers failed.
    stop: &'a AtomicBool,
    /// Folders entered but not created yet: nothing below them was selected so far.
    pending: Vec<(PathBuf, Node)>,
    batch: Vec<Item>,
    batch_chunks: usize,
    out: Walked,
}

impl<'a> Walker<'a> {
    fn new(
        repo: &'a Repository,
        sel: &'a Selection,
        target: &'a Path,
        dry_run: bool,
        progress: &'a Progress,
        limit: Batch,
        stop: &'a AtomicBool,
    ) -> Self {
        Walker {
            repo,
            sel,
            target,
            dry_run,
            progress,
            limit,
            stop,
            pending: Vec::new(),
            batch: Vec::new(),
            batch_chunks: 0,
            out: Walked { res: RestoreResult::default(), dirs: Vec::new(), symlinks: Vec::new() },
        }
    }

    fn run(mut self, snap: &Snapshot, tx: crossbeam_channel::Sender<Vec<Item>>) -> Result<Walked> {
        // Trees are loaded ahead by as many threads as the store takes requests at once.
        let loaders = self.repo.backend().connections().max(2);
        TreesAhead::run(self.repo, loaders, |trees| {
            let root = trees.take(&snap.tree)?;
            self.walk(trees, &root.nodes, Path::new(""), None, 0, &tx)?;
            if !self.batch.is_empty() && !self.dry_run {
                let _ = tx.send(std::mem::take(&mut self.batch));
            }
            self.progress.total_known.store(true, Relaxed);
            Ok(self.out)
        })
    }

    fn walk(
        &mut self,
        trees: &TreesAhead,
        nodes: &[Node],
        rel: &Path,
        above: Inherited,
        depth: usize,
        tx: &crossbeam_channel::Sender<Vec<Item>>,
    ) -> Result<()> {
        crate::format::tree::check_depth(depth)?;
        // What the selection visits, decided first so that the folders entered are loaded ahead.
        let mut visits = Vec::with_capacity(nodes.len());
        for n in nodes {
            Node::check_name(&n.name)?;
            let r = rel.join(OsStr::from_bytes(&n.name));
            let abs = Path::new("/").join(&r);
            let v = self.sel.visit(&abs, n.kind == NodeKind::Dir, above);
            visits.push((r, v));
        }
        trees.want(
            nodes
                .iter()
                .zip(&visits)
                .filter(|(n, (_, v))| v.is_some() && n.kind == NodeKind::Dir)
                .map(|(n, _)| n.subtree.as_ref().expect("validated")),
        );
        for (n, (r, v)) in nodes.iter().zip(visits) {
            if self.stop.load(Relaxed) {
                return Ok(());
            }
            let Some((selected, below)) = v else { continue };
            if n.kind == NodeKind::Dir {
                let pos = self.pending.len();
                let sub = n.subtree.as_ref().expect("validated");
                self.pending.push((r.clone(), n.clone()));
                if selected {
                    self.make_pending()?;
                }
                let sub = trees.take(sub)?;
                self.walk(trees, &sub.nodes, &r, below, depth + 1, tx)?;
                self.pending.truncate(pos);
                continue;
            }
            if !selected {
                continue;
            }
            self.make_pending()?;
            let res = &mut self.out.res;
            if n.kind == NodeKind::Symlink {
                res.symlinks += 1;
                self.out.symlinks.push(Item { rel: r, node: n.clone(), selected });
                continue;
            }
            res.files += 1;
            res.bytes += n.size;
            self.progress.add_total(1, n.size);
            if self.dry_run {
                continue;
            }
            self.batch_chunks += n.content.len();
            self.batch.push(Item { rel: r, node: n.clone(), selected });
            if self.batch.len() >= self.limit.files || self.batch_chunks >= self.limit.chunks {
                self.batch_chunks = 0;
                if tx.send(std::mem::take(&mut self.batch)).is_err() {
                    // The writers stopped on an error, which they report.
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Creates the folders entered so far that are not created yet, parents first.
    fn make_pending(&mut self) -> Result<()> {
        for (rel, node) in self.pending.drain(..) {
            self.out.res.dirs += 1;
            if !self.dry_run {
                safe_mkdir(self.target, &rel)?;
                self.out.dirs.push((rel, node));
            }
        }
        Ok(())
    }
}

/// Hard links to make: (link, first file of its group), relative to the target.
type HardLinks = Vec<(PathBuf, PathBuf)>;

/// Writes the batches of files the tree walk sends, as they come. Returns the files that failed
/// and the hard links to make: (link, first file of its group), relative to the target.
fn write_batches(
    repo: &Repository,
    target: &Path,
    rx: crossbeam_channel::Receiver<Vec<Item>>,
    verify: bool,
    progress: &Progress,
) -> Result<(Vec<BackupIssue>, HardLinks)> {
    let mut errors = Vec::new();
    let mut links = Vec::new();
    let mut first_of: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for batch in rx {
        let mut write = Vec::with_capacity(batch.len());
        for (i, it) in batch.iter().enumerate() {
            let n = &it.node;
            if n.nlink > 1 {
                if let Some(first) = first_of.get(&(n.dev, n.ino)) {
                    links.push((it.rel.clone(), first.clone()));
                    continue;
                }
                first_of.insert((n.dev, n.ino), it.rel.clone());
            }
            write.push(i);
        }
        errors.extend(write::write_files(repo, target, &batch, &write, verify, None, progress)?);
    }
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((errors, links))
}

/// Creates the symlink `node` at `tmp` and renames it to `dst` (the same path when not atomic).
pub(super) fn make_symlink(tmp: &Path, dst: &Path, node: &Node) -> Result<()> {
    std::os::unix::fs::symlink(OsStr::from_bytes(&node.target), tmp).ctx("create symlink", dst)?;
    set_owner(tmp, node);
    let t = ft(node.mtime_ns);
    let _ = filetime::set_symlink_file_times(tmp, t, t);
    if tmp != dst {
        if let Err(e) = std::fs::rename(tmp, dst) {
            let _ = std::fs::remove_file(tmp);
            return Err(Error::io("rename into place", dst, e));
        }
    }
    Ok(())
}

/// Sets a folder's owner, mode and times: through one descriptor of it (one lookup of the path,
/// and no change of owner when it is already right), else by path.
pub(super) fn set_dir_meta(p: &Path, n: &Node) {
    let t = ft(n.mtime_ns);
    let open =
        OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC).open(p);
    let Ok(d) = open else {
        set_owner(p, n);
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(n.mode));
        let _ = filetime::set_file_times(p, t, t);
        return;
    };
    if is_root() && d.metadata().map_or(true, |md| md.uid() != n.uid || md.gid() != n.gid) {
        let _ = std::os::unix::fs::fchown(&d, Some(n.uid), Some(n.gid));
    }
    let _ = d.set_permissions(std::fs::Permissions::from_mode(n.mode));
    let _ = filetime::set_file_handle_times(&d, Some(t), Some(t));
}

/// A fresh temporary name next to `dst`, ending in `.tmp` (which backups leave out).
pub(super) fn temp_name(dst: &Path) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Relaxed);
    let name = format!(".clawback-restore-{}-{n}.tmp", std::process::id());
    dst.parent().unwrap_or(Path::new("/")).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::format::crypto::KdfParams;
    use crate::format::snapshot::{AgentMeta, Summary};
    use crate::repo::{CacheOptions, InitOptions, Secret};
    use std::sync::Arc;

    fn meta(state: &str, agents: &[(&str, &str, &str)]) -> OpenclawMeta {
        OpenclawMeta {
            state_dir: state.into(),
            config_path: Some(format!("{state}/openclaw.json")),
            config_files: vec![],
            workspaces: agents.iter().map(|a| a.1.to_string()).collect(),
            agents: agents
                .iter()
                .enumerate()
                .map(|(i, a)| AgentMeta {
                    id: a.0.into(),
                    default: i == 0,
                    workspace: a.1.into(),
                    agent_dir: a.2.into(),
                })
                .collect(),
            openclaw_version: None,
            openclaw_version_source: None,
        }
    }

    /// A snapshot of the usual roots (state dir, the outside workspace and agent dir, /h/y, /data).
    fn snap_with(m: Option<OpenclawMeta>) -> Snapshot {
        Snapshot {
            version: 1,
            time: "2026-01-01T00:00:00Z".into(),
            hostname: "h".into(),
            username: "u".into(),
            paths: ["/h/.oc", "/h/ws-ops", "/srv/ops-agent", "/h/y", "/data"].map(String::from).to_vec(),
            tags: vec![],
            parent: None,
            tree: crate::format::id::TreeId::default(),
            summary: Summary::default(),
            program_version: String::new(),
            errors: vec![],
            skipped: vec![],
            changed: vec![],
            warnings: vec![],
            openclaw: m,
            group: None,
            original: None,
        }
    }

    /// `--only` values resolved without a repository (parts need one: none is given here).
    fn resolved(s: &Snapshot, only: &[&str]) -> Result<Only> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        select::resolve(s, &only, &mut |_, o| Err(Error::Other(format!("{o}: a part, not resolved here"))))
    }

    fn roots(s: &Snapshot, only: &[&str]) -> Result<Vec<PathBuf>> {
        resolved(s, only).map(|o| o.roots)
    }

    fn pb(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn only_roots_from_metadata() {
        let s = snap_with(Some(meta(
            "/h/.oc",
            &[
                ("main", "/h/.oc/workspace", "/h/.oc/agents/main/agent"),
                ("research", "/h/.oc/workspace-research", "/h/.oc/agents/research/agent"),
                ("ops", "/h/ws-ops", "/srv/ops-agent"),
            ],
        )));
        assert_eq!(roots(&s, &["state"]).unwrap(), pb(&["/h/.oc"]));
        assert_eq!(
            roots(&s, &["workspace"]).unwrap(),
            pb(&["/h/.oc/workspace", "/h/.oc/workspace-research", "/h/ws-ops"])
        );
        // The agent dir inside the agent's folder is not a root of its own.
        assert_eq!(roots(&s, &["agent:Main"]).unwrap(), pb(&["/h/.oc/agents/main", "/h/.oc/workspace"]));
        assert_eq!(roots(&s, &["agent:ops"]).unwrap(), pb(&["/h/.oc/agents/ops", "/h/ws-ops", "/srv/ops-agent"]));
        // The state dir holds the workspaces inside it; the others stay roots.
        assert_eq!(roots(&s, &["state", "workspace"]).unwrap(), pb(&["/h/.oc", "/h/ws-ops"]));
        assert_eq!(roots(&s, &["/h/x/../y/"]).unwrap(), pb(&["/h/y"]));

        let e = roots(&s, &["agent:nobody"]).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(e.to_string().contains("main, research, ops"), "{e}");
        let e = roots(&s, &["bogus"]).unwrap_err();
        assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("agent:ID, sessions, session:AGENT/ID"), "{e}");
        assert!(roots(&s, &["session:main"]).unwrap_err().to_string().contains("session:AGENT/ID"));

        let bare = snap_with(None);
        for o in ["state", "workspace", "agent:main"] {
            let e = roots(&bare, &[o]).unwrap_err();
            assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("no OpenClaw metadata"), "{e}");
        }
        assert_eq!(roots(&bare, &["/data"]).unwrap(), pb(&["/data"]));

        // What the snapshot did not back up is an error, not an empty restore; a root that holds
        // something backed up is fine, and of an agent only the parts held are kept.
        let e = roots(&bare, &["/elsewhere"]).unwrap_err();
        assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("does not hold /elsewhere"), "{e}");
        assert_eq!(roots(&bare, &["/h"]).unwrap(), pb(&["/h"]));
        let mut only_state = s.clone();
        only_state.paths = vec!["/h/.oc".into()];
        assert_eq!(roots(&only_state, &["agent:ops"]).unwrap(), pb(&["/h/.oc/agents/ops"]));
        let e = roots(&only_state, &["/srv/ops-agent"]).unwrap_err();
        assert!(e.to_string().contains("latest --path /h/.oc"), "{e}");
    }

    #[test]
    fn an_agent_never_takes_another_agents_nested_folders() {
        // `openclaw agents add scribe --role writer` nests scribe's workspace in molty's.
        let s = snap_with(Some(meta(
            "/h/.oc",
            &[
                ("molty", "/h/.oc/workspace", "/h/.oc/agents/molty/agent"),
                ("scribe", "/h/.oc/workspace/scribe", "/h/.oc/agents/scribe/agent"),
                ("odd", "/h/ws-ops", "/h/.oc/workspace/odd-agent-dir"),
            ],
        )));
        let o = resolved(&s, &["agent:molty"]).unwrap();
        assert_eq!(o.roots, pb(&["/h/.oc/agents/molty", "/h/.oc/workspace"]));
        assert_eq!(o.except, pb(&["/h/.oc/workspace/odd-agent-dir", "/h/.oc/workspace/scribe"]));
        assert_eq!(o.named, ["agent:molty"]);
        // Asking for both: scribe's workspace is asked for, so it is not carved out; nor is
        // anything when the whole state dir is asked for.
        let o = resolved(&s, &["agent:molty", "agent:scribe"]).unwrap();
        assert_eq!(o.except, pb(&["/h/.oc/workspace/odd-agent-dir"]));
        assert!(resolved(&s, &["agent:molty", "state"]).unwrap().except.is_empty());
        // A path inside scribe's workspace brings that path, not the rest of scribe's workspace.
        let o = resolved(&s, &["agent:molty", "/h/.oc/workspace/scribe/notes.md"]).unwrap();
        assert!(o.except.contains(&PathBuf::from("/h/.oc/workspace/scribe")));
        let sel = Selection::new(&[], &[]).unwrap().with_roots(o.roots.clone()).with_except(o.except.clone());
        assert!(sel.selects(Path::new("/h/.oc/workspace/scribe/notes.md"), false));
        assert!(!sel.selects(Path::new("/h/.oc/workspace/scribe/SOUL.md"), false));
        // The selection: deepest wins, and a root inside a carve-out is still reached.
        let sel = Selection::new(&[], &[])
            .unwrap()
            .with_roots(pb(&["/h/.oc/workspace", "/h/.oc/workspace/scribe/keep"]))
            .with_except(pb(&["/h/.oc/workspace/scribe"]));
        assert!(sel.selects(Path::new("/h/.oc/workspace/MEMORY.md"), false));
        assert!(!sel.selects(Path::new("/h/.oc/workspace/scribe/notes.md"), false));
        assert!(sel.visit(Path::new("/h/.oc/workspace/scribe"), true, None).is_some_and(|(sel, _)| !sel));
        assert!(sel.selects(Path::new("/h/.oc/workspace/scribe/keep/x"), false));
        assert!(sel.carved_out(Path::new("/h/.oc/workspace/scribe/other")));
    }

    #[test]
    fn in_place_with_delete_leaves_a_nested_agents_workspace_alone() {
        let w = World::new();
        let (st, ws) = (w.state(), w.ws());
        let scribe = ws.join("scribe");
        put(&ws.join("MEMORY.md"), "molty\n");
        put(&scribe.join("notes.md"), "scribe's\n");
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let m = meta(
            &s(&st),
            &[
                ("molty", &s(&ws), &s(&st.join("agents/molty/agent"))),
                ("scribe", &s(&scribe), &s(&st.join("agents/scribe/agent"))),
            ],
        );
        let repo = w.repo();
        let opts = BackupOptions { paths: vec![st.clone()], openclaw: Some(m), ..Default::default() };
        let id = backup(&repo, &opts, &Progress::default()).unwrap().snapshot_id.unwrap();
        let (_, snap) = repo.find_snapshot(&id.to_hex(), |_| true).unwrap();
        put(&ws.join("MEMORY.md"), "edited\n");
        put(&scribe.join("notes.md"), "scribe edited\n");
        put(&scribe.join("later.md"), "added later\n");
        let only = select::resolve(&snap, &["agent:molty".to_string()], &mut |_, _| unreachable!()).unwrap();
        for dry_run in [true, false] {
            let r = w
                .restore(&snap, |o| {
                    o.only = only.roots.clone();
                    o.only_except = only.except.clone();
                    o.delete = true;
                    o.dry_run = dry_run;
                })
                .unwrap();
            assert!(r.changes.iter().all(|c| !c.path.contains("/scribe")), "{:?}", r.changes);
            assert_eq!(r.files, 1);
        }
        assert_eq!(read(&ws.join("MEMORY.md")), "molty\n");
        assert_eq!(read(&scribe.join("notes.md")), "scribe edited\n");
        assert_eq!(read(&scribe.join("later.md")), "added later\n");
    }

    struct World {
        dir: tempfile::TempDir,
    }

    impl World {
        fn new() -> World {
            let w = World { dir: tempfile::tempdir().unwrap() };
            let be = Arc::new(LocalBackend::new(w.path("repo")));
            let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
            Repository::init(be, &Secret(b"pw".to_vec()), &opts).unwrap();
            w
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn repo(&self) -> Repository {
            let be = Arc::new(LocalBackend::new(self.path("repo")));
            Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
        }
        fn state(&self) -> PathBuf {
            self.path("home/.openclaw")
        }
        fn ws(&self) -> PathBuf {
            self.path("home/.openclaw/workspace")
        }
        fn meta(&self) -> OpenclawMeta {
            let s = self.state().to_string_lossy().into_owned();
            let ws = self.ws().to_string_lossy().into_owned();
            meta(&s, &[("main", &ws, &format!("{s}/agents/main/agent"))])
        }
        /// Backs up the state dir with OpenClaw metadata; returns the snapshot.
        fn backup(&self) -> (SnapshotId, Snapshot) {
            let repo = self.repo();
            let opts = BackupOptions {
                paths: vec![self.state()],
                skip_paths: vec![self.path("repo"), self.state().join("backups/repo")],
                openclaw: Some(self.meta()),
                ..Default::default()
            };
            let id = backup(&repo, &opts, &Progress::default()).unwrap().snapshot_id.unwrap();
            repo.find_snapshot(&id.to_hex(), |_| true).unwrap()
        }
        fn restore(&self, snap: &Snapshot, f: impl FnOnce(&mut RestoreOptions)) -> Result<RestoreResult> {
            let mut o = RestoreOptions {
                in_place: true,
                safety: Some(SafetyOptions {
                    tags: vec!["pre-restore".into()],
                    host: None,
                    skip_paths: vec![self.path("repo"), self.state().join("backups/repo")],
                }),
                ..Default::default()
            };
            f(&mut o);
            restore(&self.repo(), snap, &o, &Progress::default())
        }
    }

    fn put(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn temp_files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let t = e.file_type().unwrap();
                if t.is_dir() {
                    stack.push(e.path());
                } else if e.file_name().to_string_lossy().starts_with(".clawback-restore-") {
                    out.push(e.path());
                }
            }
        }
        out
    }

    #[test]
    fn in_place_restores_takes_a_safety_snapshot_and_deletes_only_what_a_backup_would_hold() {
        let w = World::new();
        let (st, ws) = (w.state(), w.ws());
        put(&st.join("agents/main/sessions/s1.jsonl"), "session one\n");
        put(&st.join("openclaw.json"), "{}");
        put(&ws.join("MEMORY.md"), "original memory\n");
        put(&ws.join(".gitignore"), "build/\n");
        let (sid, snap) = w.backup();

        put(&ws.join("MEMORY.md"), "changed memory, longer\n");
        std::fs::remove_file(st.join("agents/main/sessions/s1.jsonl")).unwrap();
        put(&ws.join("new.md"), "new note\n");
        put(&ws.join("newdir/deep/x.txt"), "x\n");
        put(&st.join("agents/main/sessions/extra.jsonl"), "extra\n");
        // What a backup leaves out by design: kept even with delete.
        put(&ws.join("node_modules/dep/index.js"), "dep\n");
        put(&ws.join("build/out.o"), "obj\n");
        put(&st.join("gateway.pid"), "123\n");
        // A repository kept inside the state dir (the backup skipped it).
        put(&st.join("backups/repo/config"), "repo\n");
        let fifo = std::ffi::CString::new(ws.join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        // A dry run lists and touches nothing.
        let before = w.repo().snapshots().unwrap().len();
        let r = w
            .restore(&snap, |o| {
                o.delete = true;
                o.dry_run = true;
            })
            .unwrap();
        let listed: Vec<(String, Action)> = r.changes.iter().map(|c| (c.path.clone(), c.action)).collect();
        let p = |x: &Path| x.to_string_lossy().into_owned();
        assert!(listed.contains(&(p(&ws.join("MEMORY.md")), Action::Update)), "{listed:?}");
        assert!(listed.contains(&(p(&st.join("agents/main/sessions/s1.jsonl")), Action::Create)), "{listed:?}");
        assert!(listed.contains(&(p(&ws.join("newdir/deep/x.txt")), Action::Delete)), "{listed:?}");
        assert!(listed.contains(&(p(&ws.join("newdir")), Action::Delete)), "{listed:?}");
        assert!(!listed.iter().any(|(x, _)| x.contains("node_modules") || x.contains("build") || x.contains("pid")));
        assert_eq!(r.deleted, 5, "{listed:?}");
        assert_eq!(read(&ws.join("MEMORY.md")), "changed memory, longer\n");
        assert_eq!(w.repo().snapshots().unwrap().len(), before);

        // Without delete: restored, nothing removed.
        let r = w.restore(&snap, |_| {}).unwrap();
        assert_eq!(read(&ws.join("MEMORY.md")), "original memory\n");
        assert_eq!(read(&st.join("agents/main/sessions/s1.jsonl")), "session one\n");
        assert!(ws.join("new.md").exists() && st.join("agents/main/sessions/extra.jsonl").exists());
        assert_eq!(r.files, 2);
        assert!(r.unchanged >= 2, "{}", r.unchanged);
        let first_safety = r.safety_snapshot.unwrap();

        // With delete: the extras go, what a backup leaves out stays.
        let r = w.restore(&snap, |o| o.delete = true).unwrap();
        assert_eq!(r.deleted, 5);
        assert_eq!(r.files, 0);
        for gone in ["new.md", "newdir"] {
            assert!(!ws.join(gone).exists(), "{gone}");
        }
        assert!(!st.join("agents/main/sessions/extra.jsonl").exists());
        for kept in ["node_modules/dep/index.js", "build/out.o", "pipe"] {
            assert!(std::fs::symlink_metadata(ws.join(kept)).is_ok(), "{kept}");
        }
        assert!(st.join("gateway.pid").exists());
        assert_eq!(read(&st.join("backups/repo/config")), "repo\n");
        assert!(temp_files(&w.path("home")).is_empty());

        // The safety snapshots are tagged, hold what was there, and restoring one undoes.
        let repo = w.repo();
        let (_, safety) = repo.find_snapshot(&r.safety_snapshot.unwrap().to_hex(), |_| true).unwrap();
        assert_eq!(safety.tags, vec!["pre-restore".to_string()]);
        assert_eq!(safety.openclaw, snap.openclaw);
        assert_ne!(r.safety_snapshot.unwrap(), sid);
        let r = w.restore(&safety, |o| o.delete = true).unwrap();
        assert_eq!(r.deleted, 0);
        assert_eq!(read(&ws.join("new.md")), "new note\n");
        assert_eq!(read(&ws.join("newdir/deep/x.txt")), "x\n");
        assert_eq!(read(&st.join("agents/main/sessions/extra.jsonl")), "extra\n");
        // And the first one, taken before anything was restored, brings back the edits too.
        let (_, first) = repo.find_snapshot(&first_safety.to_hex(), |_| true).unwrap();
        let r = w.restore(&first, |o| o.delete = true).unwrap();
        assert_eq!(read(&ws.join("MEMORY.md")), "changed memory, longer\n");
        assert!(!st.join("agents/main/sessions/s1.jsonl").exists());
        assert_eq!(r.deleted, 1);
    }

    #[test]
    fn only_roots_limit_what_is_restored_and_deleted() {
        let w = World::new();
        let (st, ws) = (w.state(), w.ws());
        put(&st.join("agents/main/sessions/s1.jsonl"), "one\n");
        put(&ws.join("MEMORY.md"), "memory\n");
        let (_, snap) = w.backup();
        put(&st.join("agents/main/sessions/s1.jsonl"), "edited\n");
        put(&ws.join("MEMORY.md"), "edited\n");
        put(&st.join("agents/main/sessions/extra.jsonl"), "extra\n");
        put(&ws.join("extra.md"), "extra\n");

        let r = w
            .restore(&snap, |o| {
                o.only = vec![ws.clone()];
                o.delete = true;
            })
            .unwrap();
        assert_eq!(read(&ws.join("MEMORY.md")), "memory\n");
        assert!(!ws.join("extra.md").exists());
        assert_eq!(read(&st.join("agents/main/sessions/s1.jsonl")), "edited\n");
        assert!(st.join("agents/main/sessions/extra.jsonl").exists());
        assert_eq!(r.scope, vec![ws.clone()]);
        // Folders above the root keep their metadata: only the workspace's is set.
        assert!(r.changes.iter().all(|c| c.path.starts_with(&*ws.to_string_lossy())), "{:?}", r.changes);

        // Includes narrow further.
        put(&ws.join("MEMORY.md"), "edited again\n");
        put(&ws.join("notes.txt"), "txt\n");
        let r = w
            .restore(&snap, |o| {
                o.only = vec![ws.clone()];
                o.includes = vec!["*.md".into()];
                o.delete = true;
            })
            .unwrap();
        assert_eq!(read(&ws.join("MEMORY.md")), "memory\n");
        assert!(ws.join("notes.txt").exists(), "not selected by --include: kept");
        assert_eq!(r.deleted, 0);
    }

    #[test]
    fn kind_conflicts_need_delete_and_symlinks_are_never_followed() {
        let w = World::new();
        let (st, ws) = (w.state(), w.ws());
        put(&ws.join("notes/a.md"), "snapshot a\n");
        put(&ws.join("f"), "snapshot f\n");
        std::os::unix::fs::symlink("MEMORY.md", ws.join("link")).unwrap();
        put(&ws.join("MEMORY.md"), "m\n");
        put(&st.join("openclaw.json"), "{}");
        let (_, snap) = w.backup();

        // A symlink to a folder outside where the snapshot has a folder; a folder where it has a
        // file; a file where it has a symlink.
        put(&w.path("outside/a.md"), "outside\n");
        std::fs::remove_dir_all(ws.join("notes")).unwrap();
        std::os::unix::fs::symlink(w.path("outside"), ws.join("notes")).unwrap();
        std::fs::remove_file(ws.join("f")).unwrap();
        put(&ws.join("f/inner.txt"), "inner\n");
        std::fs::remove_file(ws.join("link")).unwrap();
        put(&ws.join("link"), "now a file\n");

        let e = w.restore(&snap, |_| {}).unwrap_err();
        assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("--delete"), "{e}");
        assert!(std::fs::symlink_metadata(ws.join("notes")).unwrap().file_type().is_symlink());
        assert_eq!(read(&ws.join("f/inner.txt")), "inner\n");
        assert_eq!(w.repo().snapshots().unwrap().len(), 1, "no safety snapshot when refused");

        let r = w.restore(&snap, |o| o.delete = true).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let md = std::fs::symlink_metadata(ws.join("notes")).unwrap();
        assert!(md.is_dir() && !md.file_type().is_symlink());
        assert_eq!(read(&ws.join("notes/a.md")), "snapshot a\n");
        assert_eq!(read(&w.path("outside/a.md")), "outside\n", "the symlink's target is untouched");
        assert_eq!(read(&ws.join("f")), "snapshot f\n");
        assert_eq!(std::fs::read_link(ws.join("link")).unwrap(), PathBuf::from("MEMORY.md"));
        // The safety snapshot holds what was replaced.
        let repo = w.repo();
        let (_, safety) = repo.find_snapshot(&r.safety_snapshot.unwrap().to_hex(), |_| true).unwrap();
        let held: Vec<PathBuf> = plan(&repo, &safety, &Selection::new(&[], &[]).unwrap())
            .unwrap()
            .into_iter()
            .map(|i| Path::new("/").join(i.rel))
            .collect();
        assert!(held.contains(&ws.join("f/inner.txt")));
        assert!(held.contains(&ws.join("notes")));
    }

    #[test]
    fn a_restored_database_loses_the_old_write_ahead_log() {
        let w = World::new();
        let db = w.ws().join("memory.sqlite");
        std::fs::create_dir_all(w.ws()).unwrap();
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);").unwrap();
        }
        let (_, snap) = w.backup();
        // Later: the database changes, and a write-ahead log of the new file lies next to it.
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch("INSERT INTO t VALUES (4);").unwrap();
        }
        put(&db.with_extension("sqlite-wal"), "not the restored database's log");
        put(&db.with_extension("sqlite-shm"), "shm");
        let r = w.restore(&snap, |_| {}).unwrap();
        assert!(r.errors.is_empty());
        assert!(!db.with_extension("sqlite-wal").exists() && !db.with_extension("sqlite-shm").exists());
        let c = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn folders_above_the_snapshot_paths_may_be_symlinks() {
        // /home -> /usr/home style: the backup read through the link, and so does the restore.
        let w = World::new();
        let real = w.path("real");
        put(&real.join(".openclaw/workspace/MEMORY.md"), "m\n");
        std::os::unix::fs::symlink(&real, w.path("home")).unwrap();
        let (_, snap) = w.backup();
        put(&w.ws().join("MEMORY.md"), "edited\n");
        w.restore(&snap, |_| {}).unwrap();
        assert_eq!(read(&real.join(".openclaw/workspace/MEMORY.md")), "m\n");
        assert!(std::fs::symlink_metadata(w.path("home")).unwrap().file_type().is_symlink());
    }

    /// Every entry under `root` (not following symlinks): path, kind, content or target, mode, mtime.
    fn tree_of(root: &Path) -> Vec<(PathBuf, String, Vec<u8>, u32, i64)> {
        use std::os::unix::ffi::OsStringExt;
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                let (kind, data) = if md.is_dir() {
                    stack.push(p.clone());
                    ("dir", Vec::new())
                } else if md.file_type().is_symlink() {
                    ("symlink", std::fs::read_link(&p).unwrap().into_os_string().into_vec())
                } else {
                    ("file", std::fs::read(&p).unwrap())
                };
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, kind.to_string(), data, md.mode() & 0o7777, md.mtime()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_restore_in_small_batches_equals_the_source_and_a_restore_in_one() {
        let w = World::new();
        let st = w.state();
        // Content cut into several chunks, the same content twice, hard links in folders far
        // apart (so in different batches), a symlink, an empty folder, and a folder whose only
        // file is excluded.
        let mut big = Vec::new();
        let mut x: u64 = 1;
        while big.len() < 3 << 20 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            big.extend_from_slice(&x.to_le_bytes());
        }
        for d in 0..6 {
            for f in 0..5 {
                put(&st.join(format!("d{d}/f{f}.txt")), &format!("file {d}/{f}\n"));
            }
        }
        std::fs::write(st.join("d0/big.bin"), &big).unwrap();
        std::fs::write(st.join("d5/big-copy.bin"), &big).unwrap();
        std::fs::hard_link(st.join("d0/f0.txt"), st.join("d5/link-to-d0-f0.txt")).unwrap();
        std::os::unix::fs::symlink("d0/f1.txt", st.join("sym")).unwrap();
        std::fs::create_dir_all(st.join("empty")).unwrap();
        put(&st.join("only-skipped/a.skip"), "x");
        std::fs::set_permissions(st.join("d3/f2.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
        let (_, snap) = w.backup();
        let repo = w.repo();
        let sel = Selection::new(&[], &["*.skip".to_string()]).unwrap();
        let run = |dir: &str, batch: Batch| {
            let o = RestoreOptions { target: w.path(dir), excludes: vec!["*.skip".into()], ..Default::default() };
            let r = restore_to_target(&repo, &snap, &o, &sel, &Progress::default(), batch).unwrap();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            (r, w.path(dir).join(st.strip_prefix("/").unwrap()))
        };
        let (small, at_small) = run("small", Batch { files: 2, chunks: 3 });
        let (one, at_one) = run("one", BATCH);
        assert_eq!(
            (small.files, small.dirs, small.symlinks, small.hardlinks),
            (one.files, one.dirs, one.symlinks, one.hardlinks)
        );
        assert_eq!(small.hardlinks, 1);
        // A selected folder is restored, without its excluded content.
        assert!(at_small.join("only-skipped").is_dir());
        let mut want = tree_of(&st);
        want.retain(|(p, ..)| !p.starts_with("only-skipped/a.skip"));
        let bytes: usize = want.iter().filter(|e| e.1 == "file").map(|e| e.2.len()).sum();
        assert_eq!(small.bytes, bytes as u64);
        assert_eq!(small.files, 33);
        assert_eq!(tree_of(&at_small), want);
        assert_eq!(tree_of(&at_one), want);
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&at_small.join("d0/f0.txt")), ino(&at_small.join("d5/link-to-d0-f0.txt")));

        // With includes, folders holding nothing included are not created.
        let inc = Selection::new(&["*.bin".to_string()], &[]).unwrap();
        let o = RestoreOptions { target: w.path("inc"), includes: vec!["*.bin".into()], ..Default::default() };
        let r = restore_to_target(&repo, &snap, &o, &inc, &Progress::default(), Batch { files: 1, chunks: 1 }).unwrap();
        let at = w.path("inc").join(st.strip_prefix("/").unwrap());
        assert_eq!(r.files, 2);
        assert_eq!(std::fs::read(at.join("d5/big-copy.bin")).unwrap(), big);
        assert!(!at.join("d1").exists() && !at.join("empty").exists() && !at.join("sym").exists());

        // A dry run counts the same and writes nothing.
        let o = RestoreOptions {
            target: w.path("dry"),
            dry_run: true,
            excludes: vec!["*.skip".into()],
            ..Default::default()
        };
        let r = restore_to_target(&repo, &snap, &o, &sel, &Progress::default(), Batch { files: 2, chunks: 3 }).unwrap();
        assert_eq!((r.files, r.dirs, r.symlinks, r.bytes), (one.files, one.dirs, one.symlinks, one.bytes));
        assert!(!w.path("dry").exists());
    }
}
