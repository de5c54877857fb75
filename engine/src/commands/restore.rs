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
//! `--only` roots ([`only_roots`]): `state` is the state dir as a whole, including any workspace
//! that lives inside it (the state dir is the state dir); `workspace` is every workspace, wherever
//! it lives; `agent:<id>` is `<state>/agents/<id>/` (sessions and, by default, the agent dir), the
//! agent dir when configured elsewhere, and the agent's workspace.

use crate::backend::Kind;
use crate::blob::{self, BlobType};
use crate::commands::backup::{absolute_clean, backup, build_excludes, BackupOptions};
use crate::error::{Error, IoContext, Result};
use crate::id::{BlobId, SnapshotId};
use crate::index::BlobLoc;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{BackupIssue, OpenclawMeta, Snapshot};
use crate::tree::{Node, NodeKind};
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
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Where to restore (ignored in place).
    pub target: PathBuf,
    /// gitignore-style patterns on the original absolute path; empty: everything.
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    /// Restore only at or below these absolute paths (see [`only_roots`]); empty: everything.
    pub only: Vec<PathBuf>,
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
}

/// How the safety snapshot of an in-place restore is taken.
#[derive(Clone, Debug, Default)]
pub struct SafetyOptions {
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Never backed up, and never deleted or replaced (the repository, the cache).
    pub skip_paths: Vec<PathBuf>,
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
    /// `file`, `dir` or `symlink`: the snapshot's kind, or what is on disk for a deletion.
    pub kind: &'static str,
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
}

/// One entry to restore, with its path relative to the target.
pub struct Item {
    pub rel: PathBuf,
    pub node: Node,
    /// The entry itself is selected; false for a folder listed only because selected entries
    /// lie below it (an ancestor of an `only` root, or of an included path).
    pub selected: bool,
}

pub struct Selection {
    includes: Option<Gitignore>,
    excludes: Gitignore,
    roots: Vec<PathBuf>,
}

/// Where a path lies relative to the `only` roots.
#[derive(PartialEq, Eq)]
enum Place {
    Inside,
    Above,
    Outside,
}

impl Selection {
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self> {
        Ok(Selection {
            includes: if includes.is_empty() { None } else { Some(build_excludes(includes)?) },
            excludes: build_excludes(excludes)?,
            roots: Vec::new(),
        })
    }

    /// Restricts the selection to paths at or below `roots` (absolute); empty: no restriction.
    pub fn with_roots(mut self, roots: Vec<PathBuf>) -> Self {
        self.roots = roots;
        self
    }

    fn excluded(&self, abs: &Path, is_dir: bool) -> bool {
        self.excludes.matched(abs, is_dir).is_ignore()
    }
    fn included(&self, abs: &Path, is_dir: bool) -> bool {
        match &self.includes {
            None => true,
            Some(g) => g.matched_path_or_any_parents(abs, is_dir).is_ignore(),
        }
    }
    fn place(&self, abs: &Path) -> Place {
        if self.roots.is_empty() || self.roots.iter().any(|r| abs.starts_with(r)) {
            Place::Inside
        } else if self.roots.iter().any(|r| r.starts_with(abs)) {
            Place::Above
        } else {
            Place::Outside
        }
    }
    /// Whether an entry (not an ancestor) is selected, ignoring excludes of its ancestors.
    fn selects(&self, abs: &Path, is_dir: bool) -> bool {
        self.place(abs) == Place::Inside && !self.excluded(abs, is_dir) && self.included(abs, is_dir)
    }
}

/// Resolves `--only` values against a snapshot's OpenClaw metadata into absolute roots:
/// `state`, `workspace` (every workspace), `agent:<id>`, or an absolute path.
pub fn only_roots(snap: &Snapshot, only: &[String]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for o in only {
        let o = o.trim();
        if o.starts_with('/') {
            out.push(absolute_clean(Path::new(o))?);
            continue;
        }
        let meta = |what: &str| -> Result<&OpenclawMeta> {
            snap.openclaw.as_ref().ok_or_else(|| {
                Error::Usage(format!(
                    "--only {what}: this snapshot has no OpenClaw metadata (it was not made by a default \
                     `clawback backup` of an OpenClaw install); select paths with --include PATTERN or \
                     --only /absolute/path instead"
                ))
            })
        };
        let p = |s: &str| absolute_clean(Path::new(s));
        match o {
            "state" => out.push(p(&meta(o)?.state_dir)?),
            "workspace" | "workspaces" => {
                let m = meta(o)?;
                let mut ws: Vec<&str> = m.workspaces.iter().map(String::as_str).collect();
                ws.extend(m.agents.iter().map(|a| a.workspace.as_str()));
                if ws.is_empty() {
                    return Err(Error::Usage("--only workspace: the snapshot records no workspace".into()));
                }
                for w in ws {
                    out.push(p(w)?);
                }
            }
            _ => {
                let Some(raw) = o.strip_prefix("agent:") else {
                    return Err(Error::Usage(format!(
                        "--only {o:?}: expected state, workspace, agent:ID or an absolute path"
                    )));
                };
                let m = meta(o)?;
                let id = crate::openclaw::paths::normalize_agent_id(raw);
                let Some(a) = m.agents.iter().find(|a| a.id == id) else {
                    let known: Vec<&str> = m.agents.iter().map(|a| a.id.as_str()).collect();
                    return Err(Error::Usage(format!(
                        "--only agent:{raw}: no agent `{id}` in this snapshot; its agents are: {}",
                        if known.is_empty() { "(none recorded)".to_string() } else { known.join(", ") }
                    )));
                };
                out.push(p(&m.state_dir)?.join("agents").join(&a.id));
                if !a.agent_dir.is_empty() {
                    out.push(p(&a.agent_dir)?);
                }
                if !a.workspace.is_empty() {
                    out.push(p(&a.workspace)?);
                }
            }
        }
    }
    Ok(minimal_roots(out))
}

/// Sorted, without duplicates or paths inside another one.
fn minimal_roots(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    v.sort();
    v.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in v {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

/// Walks the snapshot's trees and lists what the selection restores, folders before their content.
pub fn plan(repo: &Repository, snap: &Snapshot, sel: &Selection) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let root = repo.load_tree(&snap.tree)?;
    plan_tree(repo, &root.nodes, Path::new(""), sel, &mut out, 0)?;
    Ok(out)
}

fn plan_tree(
    repo: &Repository,
    nodes: &[Node],
    rel: &Path,
    sel: &Selection,
    out: &mut Vec<Item>,
    depth: usize,
) -> Result<bool> {
    crate::tree::check_depth(depth)?;
    let mut any = false;
    for n in nodes {
        Node::check_name(&n.name)?;
        let r = rel.join(OsStr::from_bytes(&n.name));
        let abs = Path::new("/").join(&r);
        let is_dir = n.kind == NodeKind::Dir;
        let place = sel.place(&abs);
        if place == Place::Outside || (place == Place::Above && !is_dir) || sel.excluded(&abs, is_dir) {
            continue;
        }
        let selected = place == Place::Inside && sel.included(&abs, is_dir);
        if is_dir {
            let pos = out.len();
            out.push(Item { rel: r.clone(), node: n.clone(), selected });
            let sub = repo.load_tree(n.subtree.as_ref().expect("validated"))?;
            let inner = plan_tree(repo, &sub.nodes, &r, sel, out, depth + 1)?;
            if inner || selected {
                any = true;
            } else {
                out.remove(pos);
            }
        } else if selected {
            out.push(Item { rel: r, node: n.clone(), selected });
            any = true;
        }
    }
    Ok(any)
}

/// Creates `target/rel` as a real folder; refuses a symlink or a file in its place. Returns
/// whether it was created.
fn safe_mkdir(target: &Path, rel: &Path) -> Result<bool> {
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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn set_owner(path: &Path, n: &Node) {
    if is_root() {
        if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
            // SAFETY: c is a valid NUL-terminated path.
            unsafe { libc::lchown(c.as_ptr(), n.uid, n.gid) };
        }
    }
}

fn ft(ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
}

fn kind_name(k: NodeKind) -> &'static str {
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
    let sel = Selection::new(&opts.includes, &opts.excludes)?.with_roots(minimal_roots(opts.only.clone()));
    let items = plan(repo, snap, &sel)?;
    if opts.in_place {
        return restore_in_place(repo, snap, opts, &sel, items, progress);
    }
    let mut res = RestoreResult::default();
    for it in &items {
        match it.node.kind {
            NodeKind::File => {
                res.files += 1;
                res.bytes += it.node.size;
                progress.add_total(1, it.node.size);
            }
            NodeKind::Dir => res.dirs += 1,
            NodeKind::Symlink => res.symlinks += 1,
        }
    }
    progress.total_known.store(true, Relaxed);
    if opts.dry_run {
        return Ok(res);
    }
    let target = &opts.target;
    std::fs::create_dir_all(target).ctx("create target folder", target)?;
    for it in items.iter().filter(|i| i.node.kind == NodeKind::Dir) {
        safe_mkdir(target, &it.rel)?;
    }

    let all: Vec<usize> = (0..items.len()).collect();
    let (write, link_to) = link_groups(&items, &all);
    let mut errors = write_files(repo, target, &items, &write, opts.verify, None, progress)?;
    res.hardlinks = make_links(target, &items, &link_to, &mut errors, false)?;

    for it in items.iter().filter(|i| i.node.kind == NodeKind::Symlink) {
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
    for it in items.iter().rev().filter(|i| i.node.kind == NodeKind::Dir) {
        set_dir_meta(&target.join(&it.rel), &it.node);
    }
    res.errors = errors;
    Ok(res)
}

/// Splits the files among `which` into those written and (hard link, first of its group) pairs:
/// the first file of each (dev, inode) group is written, the rest linked to it.
fn link_groups(items: &[Item], which: &[usize]) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut first_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut link_to = Vec::new();
    let mut write = Vec::new();
    for &i in which {
        let n = &items[i].node;
        if n.kind != NodeKind::File {
            continue;
        }
        if n.nlink > 1 {
            match first_of.get(&(n.dev, n.ino)) {
                Some(&f) => {
                    link_to.push((i, f));
                    continue;
                }
                None => {
                    first_of.insert((n.dev, n.ino), i);
                }
            }
        }
        write.push(i);
    }
    (write, link_to)
}

/// Makes the hard links; a link to a file that failed is reported and not made.
fn make_links(
    target: &Path,
    items: &[Item],
    link_to: &[(usize, usize)],
    errors: &mut Vec<BackupIssue>,
    atomic: bool,
) -> Result<u64> {
    let failed: HashMap<String, String> = errors.iter().map(|e| (e.path.clone(), e.error.clone())).collect();
    let mut n = 0;
    for &(i, f) in link_to {
        let src = target.join(&items[f].rel);
        let dst = target.join(&items[i].rel);
        let first = Path::new("/").join(&items[f].rel).to_string_lossy().into_owned();
        if let Some(why) = failed.get(&first) {
            // A hard link to a file that could not be restored is lost too: name it.
            errors.push(BackupIssue {
                path: Path::new("/").join(&items[i].rel).to_string_lossy().into_owned(),
                error: format!("hard link to {first}, which could not be restored: {why}"),
            });
            if !atomic {
                let _ = std::fs::remove_file(&dst);
            }
            continue;
        }
        if atomic {
            let tmp = temp_name(&dst);
            std::fs::hard_link(&src, &tmp).ctx("hard link", &dst)?;
            if let Err(e) = std::fs::rename(&tmp, &dst) {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io("rename into place", &dst, e));
            }
        } else {
            let _ = std::fs::remove_file(&dst);
            std::fs::hard_link(&src, &dst).ctx("hard link", &dst)?;
        }
        n += 1;
    }
    Ok(n)
}

/// Creates the symlink `node` at `tmp` and renames it to `dst` (the same path when not atomic).
fn make_symlink(tmp: &Path, dst: &Path, node: &Node) -> Result<()> {
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

fn set_dir_meta(p: &Path, n: &Node) {
    set_owner(p, n);
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(n.mode));
    let t = ft(n.mtime_ns);
    let _ = filetime::set_file_times(p, t, t);
}

/// A fresh temporary name next to `dst`, ending in `.tmp` (which backups leave out).
fn temp_name(dst: &Path) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Relaxed);
    let name = format!(".clawback-restore-{}-{n}.tmp", std::process::id());
    dst.parent().unwrap_or(Path::new("/")).join(name)
}

fn mtime_ns(md: &std::fs::Metadata) -> i64 {
    md.mtime().saturating_mul(1_000_000_000).saturating_add(md.mtime_nsec())
}

/// Whether a file on disk is the snapshot's by its metadata: size, mtime, mode (and owner as root).
fn same_file(md: &std::fs::Metadata, n: &Node) -> bool {
    md.is_file()
        && md.len() == n.size
        && mtime_ns(md) == n.mtime_ns
        && md.mode() & 0o7777 == n.mode
        && (!is_root() || (md.uid() == n.uid && md.gid() == n.gid))
}

/// What the default backup of the snapshot's roots leaves out, so `delete` never removes it:
/// OpenClaw's default excludes (from the snapshot's metadata), the `protect` patterns,
/// `.gitignore` files in workspaces and `.clawbackignore` files anywhere.
struct Protector {
    patterns: Vec<String>,
    /// Never touched: the repository and the cache (a backup skips them too).
    skip: Vec<PathBuf>,
    fixed: Gitignore,
    workspaces: Vec<PathBuf>,
    cache: Mutex<HashMap<PathBuf, Option<std::sync::Arc<Gitignore>>>>,
}

impl Protector {
    fn new(meta: Option<&OpenclawMeta>, protect: &[String], skip: &[PathBuf]) -> Result<Protector> {
        let mut patterns = Vec::new();
        let mut workspaces = Vec::new();
        if let Some(m) = meta {
            workspaces = m.workspaces.iter().chain(m.agents.iter().map(|a| &a.workspace)).map(PathBuf::from).collect();
            let layout = crate::openclaw::Layout {
                state_dir: PathBuf::from(&m.state_dir),
                config_path: PathBuf::from(m.config_path.clone().unwrap_or_default()),
                config_exists: m.config_path.is_some(),
                config_files: Vec::new(),
                workspaces: workspaces
                    .iter()
                    .map(|w| crate::openclaw::Workspace {
                        agent_id: None,
                        path: w.clone(),
                        inside_state: w.starts_with(&m.state_dir),
                    })
                    .collect(),
                agent_ids: Vec::new(),
                agents: Vec::new(),
                openclaw_version: None,
                warnings: Vec::new(),
            };
            patterns.extend(crate::openclaw::excludes::patterns(&crate::openclaw::default_excludes(&layout)));
        }
        patterns.extend(protect.iter().cloned());
        Ok(Protector {
            fixed: build_excludes(&patterns)?,
            patterns,
            skip: skip.iter().filter_map(|p| absolute_clean(p).ok()).collect(),
            workspaces,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The ignore files of one folder (`.gitignore` only inside a workspace).
    fn dir_rules(&self, dir: &Path) -> Option<std::sync::Arc<Gitignore>> {
        if let Some(g) = self.cache.lock().get(dir) {
            return g.clone();
        }
        let mut b = GitignoreBuilder::new(dir);
        let mut any = false;
        let mut names = vec![".clawbackignore"];
        if self.workspaces.iter().any(|w| dir.starts_with(w)) {
            names.insert(0, ".gitignore");
        }
        for name in names {
            let f = dir.join(name);
            if std::fs::symlink_metadata(&f).is_ok_and(|m| m.is_file()) {
                any = true;
                let _ = b.add(&f);
            }
        }
        let g = if any { b.build().ok().map(std::sync::Arc::new) } else { None };
        self.cache.lock().insert(dir.to_path_buf(), g.clone());
        g
    }

    fn protected(&self, p: &Path, is_dir: bool) -> bool {
        if self.skip.iter().any(|s| p.starts_with(s)) {
            return true;
        }
        if self.fixed.matched_path_or_any_parents(p, is_dir).is_ignore() {
            return true;
        }
        // The deepest ignore file that says something decides.
        for dir in p.ancestors().skip(1) {
            if let Some(g) = self.dir_rules(dir) {
                match g.matched_path_or_any_parents(p, is_dir) {
                    ignore::Match::Ignore(_) => return true,
                    ignore::Match::Whitelist(_) => return false,
                    ignore::Match::None => {}
                }
            }
        }
        false
    }
}

/// What is on disk where an item goes, in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// Nothing (or below a folder that is created or replaced).
    Absent,
    /// Already the snapshot's entry.
    Same,
    /// A different entry that an atomic rename replaces.
    Differs,
    /// A kind conflict involving a folder; the bool: what is there is a folder.
    Conflict(bool),
}

fn restore_in_place(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    sel: &Selection,
    items: Vec<Item>,
    progress: &Progress,
) -> Result<RestoreResult> {
    let root = Path::new("/");
    let snap_paths: Vec<PathBuf> = snap.paths.iter().map(PathBuf::from).collect();
    let below_snap = |abs: &Path| snap_paths.iter().any(|p| abs.starts_with(p));
    let scope = if opts.only.is_empty() { minimal_roots(snap_paths.clone()) } else { minimal_roots(opts.only.clone()) };
    let mut res = RestoreResult { scope: scope.clone(), ..Default::default() };

    // 1. Compare with the disk, parents first.
    let mut disk = vec![Disk::Absent; items.len()];
    let mut fresh: HashSet<&Path> = HashSet::new();
    for (i, it) in items.iter().enumerate() {
        let abs = root.join(&it.rel);
        let is_dir = it.node.kind == NodeKind::Dir;
        if it.rel.parent().is_some_and(|p| fresh.contains(p)) {
            if is_dir {
                fresh.insert(&it.rel);
            }
            continue;
        }
        // Above the snapshot's paths, folders resolve as they did for the backup.
        let scaffold = !below_snap(&abs);
        let md = if scaffold { std::fs::metadata(&abs) } else { std::fs::symlink_metadata(&abs) };
        let md = match md {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if is_dir {
                    fresh.insert(&it.rel);
                }
                continue;
            }
            Err(e) => return Err(Error::io("inspect", &abs, e)),
        };
        let ftype = md.file_type();
        disk[i] = match it.node.kind {
            NodeKind::Dir if md.is_dir() => Disk::Same,
            NodeKind::Dir if scaffold => {
                return Err(Error::UnsafePath(format!(
                    "{} is not a folder, but the snapshot's paths lie below it",
                    abs.display()
                )))
            }
            NodeKind::Dir => Disk::Conflict(false),
            _ if md.is_dir() => Disk::Conflict(true),
            NodeKind::File => {
                if same_file(&md, &it.node) && (!opts.verify || verify_file(repo, &abs, &it.node.content).is_ok()) {
                    Disk::Same
                } else {
                    Disk::Differs
                }
            }
            NodeKind::Symlink => {
                if ftype.is_symlink()
                    && std::fs::read_link(&abs).is_ok_and(|t| t.as_os_str().as_bytes() == it.node.target.as_slice())
                {
                    Disk::Same
                } else {
                    Disk::Differs
                }
            }
        };
        if is_dir && disk[i] != Disk::Same {
            fresh.insert(&it.rel);
        }
    }
    drop(fresh);

    let conflicts: Vec<usize> = (0..items.len()).filter(|&i| matches!(disk[i], Disk::Conflict(_))).collect();
    if !conflicts.is_empty() && !opts.delete {
        let mut list: Vec<String> = conflicts
            .iter()
            .take(3)
            .map(|&i| {
                let what = if disk[i] == Disk::Conflict(true) { "a folder" } else { "not a folder" };
                format!(
                    "{} is {what} where the snapshot has a {}",
                    root.join(&items[i].rel).display(),
                    kind_name(items[i].node.kind)
                )
            })
            .collect();
        if conflicts.len() > 3 {
            list.push(format!("and {} more", conflicts.len() - 3));
        }
        return Err(Error::Usage(format!(
            "restoring in place would replace entries of another kind: {}; rerun with --delete to replace them",
            list.join("; ")
        )));
    }

    // 2. What `delete` removes: entries under the roots that the selection covers and the
    // snapshot lacks, children before their folder.
    let skip = opts.safety.as_ref().map(|s| s.skip_paths.as_slice()).unwrap_or_default();
    let protector = Protector::new(snap.openclaw.as_ref(), &opts.protect, skip)?;
    let planned: HashMap<PathBuf, NodeKind> = items.iter().map(|it| (root.join(&it.rel), it.node.kind)).collect();
    let mut extras: Vec<(PathBuf, &'static str)> = Vec::new();
    if opts.delete {
        for r in &scope {
            if let Ok(md) = std::fs::symlink_metadata(r) {
                find_extras(r, &md, sel, &protector, &planned, &mut extras);
            }
        }
    }

    // 3. The safety snapshot: the roots as they are, before anything changes.
    let touched: Vec<usize> =
        (0..items.len()).filter(|&i| matches!(disk[i], Disk::Differs | Disk::Conflict(_))).collect();
    if !opts.dry_run {
        if let Some(so) = &opts.safety {
            res.safety_paths = scope.iter().filter(|r| std::fs::symlink_metadata(r).is_ok()).cloned().collect();
            if !res.safety_paths.is_empty() {
                // Take everything when the restore overwrites what a backup would leave out.
                let full = touched
                    .iter()
                    .any(|&i| disk[i] == Disk::Conflict(true) || protector.protected(&root.join(&items[i].rel), false));
                let mut excludes = opts.excludes.clone();
                if !full {
                    excludes.extend(protector.patterns.iter().cloned());
                }
                let bo = BackupOptions {
                    paths: res.safety_paths.clone(),
                    excludes,
                    skip_paths: so.skip_paths.clone(),
                    tags: so.tags.clone(),
                    host: so.host.clone(),
                    openclaw: snap.openclaw.clone(),
                    gitignore_roots: if full { Vec::new() } else { protector.workspaces.clone() },
                    ..Default::default()
                };
                let br = backup(repo, &bo, &Progress::default())?;
                let id = br.snapshot_id.ok_or_else(|| Error::Other("the safety snapshot was not saved".into()))?;
                res.safety_snapshot = Some(id);
                let (_, safety) = repo.find_snapshot(&id.to_hex(), |_| true)?;
                let held: HashSet<PathBuf> = plan(repo, &safety, &Selection::new(&[], &[])?.with_roots(scope.clone()))?
                    .into_iter()
                    .map(|it| root.join(&it.rel))
                    .collect();
                // Everything overwritten must be in it, or nothing changes.
                for &i in &touched {
                    let abs = root.join(&items[i].rel);
                    let mut missing = (!held.contains(&abs)).then(|| abs.clone());
                    if missing.is_none() && disk[i] == Disk::Conflict(true) {
                        missing = first_missing(&abs, &held);
                    }
                    if let Some(m) = missing {
                        let why = br.errors.iter().find(|e| Path::new(&e.path) == m).map(|e| format!(": {}", e.error));
                        return Err(Error::Other(format!(
                            "{} could not be saved in the safety snapshot {}{}; nothing was changed",
                            m.display(),
                            id.short(),
                            why.unwrap_or_default()
                        )));
                    }
                }
                extras.retain(|(p, _)| {
                    let ok = held.contains(p);
                    if !ok {
                        res.kept.push(BackupIssue {
                            path: p.to_string_lossy().into_owned(),
                            error: "not in the safety snapshot; kept".into(),
                        });
                    }
                    ok
                });
            }
        }
    }

    // The changes, in order.
    for (i, it) in items.iter().enumerate() {
        let action = match disk[i] {
            Disk::Same => {
                if it.node.kind != NodeKind::Dir {
                    res.unchanged += 1;
                }
                continue;
            }
            Disk::Absent => Action::Create,
            Disk::Differs => Action::Update,
            Disk::Conflict(_) => Action::Replace,
        };
        match it.node.kind {
            NodeKind::File => {
                res.files += 1;
                res.bytes += it.node.size;
                progress.add_total(1, it.node.size);
            }
            NodeKind::Dir => res.dirs += 1,
            NodeKind::Symlink => res.symlinks += 1,
        }
        res.changes.push(Change {
            path: root.join(&it.rel).to_string_lossy().into_owned(),
            action,
            kind: kind_name(it.node.kind),
        });
    }
    for (p, kind) in &extras {
        res.changes.push(Change { path: p.to_string_lossy().into_owned(), action: Action::Delete, kind });
    }
    progress.total_known.store(true, Relaxed);
    if opts.dry_run {
        res.deleted = extras.len() as u64;
        return Ok(res);
    }

    // Steps 4 to 8 change the disk; if one fails, say where what was there before is.
    let safety_id = res.safety_snapshot;
    let applied = (|| -> Result<()> {
        // 4. Kind conflicts: remove what stands in the way.
        for &i in &conflicts {
            let p = root.join(&items[i].rel);
            let r =
                if disk[i] == Disk::Conflict(true) { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.ctx("replace", &p)?;
        }

        // 5. Folders: created where missing; at and below the snapshot's paths never a symlink.
        let mut created: HashSet<usize> = HashSet::new();
        for (i, it) in items.iter().enumerate().filter(|(_, i)| i.node.kind == NodeKind::Dir) {
            let abs = root.join(&it.rel);
            if disk[i] == Disk::Same {
                continue;
            }
            if below_snap(&abs) {
                safe_mkdir(root, &it.rel)?;
            } else {
                match std::fs::create_dir(&abs) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && abs.is_dir() => {}
                    Err(e) => return Err(Error::io("create folder", &abs, e)),
                }
            }
            created.insert(i);
        }

        // 6. Files, hard links and symlinks, each under a temporary name renamed into place. A hard
        // link group is written whole when any of its files changed.
        let mut groups_changed: HashSet<(u64, u64)> = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            if it.node.kind == NodeKind::File && it.node.nlink > 1 && disk[i] != Disk::Same {
                groups_changed.insert((it.node.dev, it.node.ino));
            }
        }
        let to_write: Vec<usize> = (0..items.len())
            .filter(|&i| {
                let n = &items[i].node;
                n.kind == NodeKind::File
                    && (disk[i] != Disk::Same || (n.nlink > 1 && groups_changed.contains(&(n.dev, n.ino))))
            })
            .collect();
        let (write, link_to) = link_groups(&items, &to_write);
        let mut errors = write_files(repo, root, &items, &write, opts.verify, Some(&planned), progress)?;
        res.hardlinks = make_links(root, &items, &link_to, &mut errors, true)?;
        for (i, it) in items.iter().enumerate() {
            if it.node.kind == NodeKind::Symlink && disk[i] != Disk::Same {
                let p = root.join(&it.rel);
                make_symlink(&temp_name(&p), &p, &it.node)?;
            }
        }

        // 7. Deletions, children first.
        for (p, kind) in &extras {
            let r = if *kind == "dir" { std::fs::remove_dir(p) } else { std::fs::remove_file(p) };
            match r {
                Ok(()) => res.deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => res.kept.push(BackupIssue { path: p.to_string_lossy().into_owned(), error: e.to_string() }),
            }
        }
        if !res.kept.is_empty() {
            let kept: HashSet<&str> = res.kept.iter().map(|k| k.path.as_str()).collect();
            res.changes.retain(|c| c.action != Action::Delete || !kept.contains(c.path.as_str()));
        }

        // 8. Folder metadata, deepest first: folders created here, and selected folders at or below
        // the snapshot's paths; never the folders above them.
        let mut synced: HashSet<PathBuf> = HashSet::new();
        for &i in to_write.iter().chain(created.iter()) {
            if let Some(parent) = root.join(&items[i].rel).parent() {
                synced.insert(parent.to_path_buf());
            }
        }
        for (i, it) in items.iter().enumerate().rev().filter(|(_, i)| i.node.kind == NodeKind::Dir) {
            let abs = root.join(&it.rel);
            if created.contains(&i) || (it.selected && below_snap(&abs)) {
                set_dir_meta(&abs, &it.node);
            }
        }
        // The renames are durable once their folders are synced.
        for d in synced {
            if let Ok(f) = File::open(&d) {
                let _ = f.sync_all();
            }
        }
        res.errors = errors;
        Ok(())
    })();
    match (applied, safety_id) {
        (Ok(()), _) => Ok(res),
        (Err(e), Some(id)) => Err(Error::Other(format!(
            "{e}; the restore stopped part way: what was there before is in safety snapshot {} (tag {})",
            id.to_hex(),
            opts.safety.as_ref().and_then(|s| s.tags.first()).map(String::as_str).unwrap_or("none")
        ))),
        (Err(e), None) => Err(e),
    }
}

/// The first entry under `dir` (on disk, not following symlinks) that `held` lacks.
fn first_missing(dir: &Path, held: &HashSet<PathBuf>) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
                continue;
            }
            if !held.contains(&p) {
                return Some(p);
            }
            if t.is_dir() {
                stack.push(p);
            }
        }
    }
    None
}

/// Collects the entries at or below `p` that `delete` removes, children before their folder.
/// Returns whether `p` itself is removed (so its folder can be).
fn find_extras(
    p: &Path,
    md: &std::fs::Metadata,
    sel: &Selection,
    protector: &Protector,
    planned: &HashMap<PathBuf, NodeKind>,
    out: &mut Vec<(PathBuf, &'static str)>,
) -> bool {
    let t = md.file_type();
    let is_dir = t.is_dir();
    if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
        return false; // never backed up, never deleted
    }
    if sel.excluded(p, is_dir) || protector.protected(p, is_dir) {
        return false;
    }
    match planned.get(p) {
        Some(NodeKind::Dir) if is_dir => {
            visit_children(p, sel, protector, planned, out);
            false
        }
        Some(_) => false, // the restore writes or replaces it
        None => {
            let all = !is_dir || visit_children(p, sel, protector, planned, out);
            if all && sel.selects(p, is_dir) {
                let kind = if is_dir {
                    "dir"
                } else if t.is_symlink() {
                    "symlink"
                } else {
                    "file"
                };
                out.push((p.to_path_buf(), kind));
                true
            } else {
                false
            }
        }
    }
}

fn visit_children(
    dir: &Path,
    sel: &Selection,
    protector: &Protector,
    planned: &HashMap<PathBuf, NodeKind>,
    out: &mut Vec<(PathBuf, &'static str)>,
) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut all = true;
    for p in names {
        match std::fs::symlink_metadata(&p) {
            Ok(md) => all &= find_extras(&p, &md, sel, protector, planned, out),
            Err(_) => all = false,
        }
    }
    all
}

/// A file being restored: created on first write, finished when its last chunk is written. In
/// atomic mode it is written under `tmp` and renamed to `path` when finished.
struct FileTask<'a> {
    path: PathBuf,
    tmp: Option<PathBuf>,
    /// SQLite sidecars (`-wal`, `-shm`, `-journal`) of `path` that the restore does not write: they
    /// belong to the file being replaced and are removed before a database is renamed into place,
    /// or SQLite would apply the old write-ahead log to the new database.
    sidecars: Vec<PathBuf>,
    node: &'a Node,
    remaining: AtomicUsize,
    created: Mutex<bool>,
    failed: Mutex<Option<String>>,
}

impl FileTask<'_> {
    fn fail(&self, why: String) {
        let mut f = self.failed.lock();
        if f.is_none() {
            *f = Some(why);
        }
    }

    fn is_failed(&self) -> bool {
        self.failed.lock().is_some()
    }

    /// Where the bytes go: the temporary name, or the path itself.
    fn dest(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.path)
    }

    /// Opens the file for writing, creating (truncated, sized) it the first time.
    fn open(&self) -> Result<File> {
        let mut created = self.created.lock();
        let dest = self.dest();
        let mut o = OpenOptions::new();
        o.write(true).custom_flags(libc::O_NOFOLLOW);
        if !*created {
            if self.tmp.is_some() {
                o.create_new(true).mode(0o600);
            } else {
                if let Ok(md) = std::fs::symlink_metadata(dest) {
                    if md.is_dir() {
                        return Err(Error::UnsafePath(format!(
                            "{} is a folder where the snapshot has a file",
                            dest.display()
                        )));
                    }
                }
                o.create(true).truncate(true).mode(0o600);
            }
        }
        let f = o.open(dest).ctx("create", &self.path)?;
        if !*created {
            f.set_len(self.node.size).ctx("size", &self.path)?;
            *created = true;
        }
        Ok(f)
    }

    /// After the last chunk: verify if asked, then owner, mode and times; in atomic mode, sync
    /// and rename into place.
    fn finish(&self, repo: &Repository, f: Option<File>, verify: bool) -> Result<()> {
        let f = match f {
            Some(f) => f,
            None => self.open()?,
        };
        let dest = self.dest();
        if verify {
            verify_file(repo, dest, &self.node.content)?;
        }
        set_owner(dest, self.node);
        f.set_permissions(std::fs::Permissions::from_mode(self.node.mode)).ctx("chmod", &self.path)?;
        let t = ft(self.node.mtime_ns);
        filetime::set_file_handle_times(&f, Some(t), Some(t)).ctx("set times", &self.path)?;
        if let Some(tmp) = &self.tmp {
            f.sync_all().ctx("sync", &self.path)?;
            if !self.sidecars.is_empty() && is_sqlite(tmp) {
                for sc in &self.sidecars {
                    if std::fs::symlink_metadata(sc).is_ok_and(|m| m.is_file()) {
                        std::fs::remove_file(sc).ctx("remove the old database's", sc)?;
                    }
                }
            }
            crate::failpoint::hit("restore:before-rename");
            std::fs::rename(tmp, &self.path).ctx("rename into place", &self.path)?;
            crate::failpoint::hit("restore:after-rename");
        }
        Ok(())
    }
}

/// Whether a file starts with the SQLite database header.
fn is_sqlite(p: &Path) -> bool {
    let mut h = [0u8; 16];
    File::open(p).and_then(|f| f.read_exact_at(&mut h, 0)).is_ok() && &h == b"SQLite format 3\0"
}

/// The SQLite sidecars of `path` that exist on disk and that `planned` (what the restore writes)
/// does not hold.
fn stale_sidecars(path: &Path, planned: &HashMap<PathBuf, NodeKind>) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|sfx| {
            let mut s = path.as_os_str().to_os_string();
            s.push(sfx);
            PathBuf::from(s)
        })
        .filter(|p| !planned.contains_key(p) && std::fs::symlink_metadata(p).is_ok())
        .collect()
}

/// Writes the files' contents. Chunks are grouped by pack; packs are processed in parallel, each
/// read with as few ranged reads as possible (one for a pack whose blobs are all needed), so the
/// repository is read sequentially whatever the order of files. Returns the files that failed,
/// after removing them: a partial file is never left where it could pass for whole. `atomic`
/// (in place; with what the restore writes) writes each file under a temporary name renamed into
/// place when complete: on failure only the temporary file is removed, and what was there stays.
fn write_files(
    repo: &Repository,
    target: &Path,
    items: &[Item],
    write: &[usize],
    verify: bool,
    atomic: Option<&HashMap<PathBuf, NodeKind>>,
    progress: &Progress,
) -> Result<Vec<BackupIssue>> {
    let tasks: Vec<FileTask> = write
        .iter()
        .map(|&i| {
            let path = target.join(&items[i].rel);
            FileTask {
                tmp: atomic.map(|_| temp_name(&path)),
                sidecars: atomic.map(|planned| stale_sidecars(&path, planned)).unwrap_or_default(),
                path,
                node: &items[i].node,
                remaining: AtomicUsize::new(items[i].node.content.len()),
                created: Mutex::new(false),
                failed: Mutex::new(None),
            }
        })
        .collect();

    // Where each needed blob goes, (task, offset in file), and the blobs grouped by pack.
    let mut targets: HashMap<BlobId, Vec<(u32, u64)>> = HashMap::new();
    let mut by_pack: HashMap<u32, Vec<(BlobId, BlobLoc)>> = HashMap::new();
    {
        let index = repo.index();
        for (t, task) in tasks.iter().enumerate() {
            let mut off = 0u64;
            for id in &task.node.content {
                let Some(loc) = index.get(id) else {
                    task.fail(format!("data blob {} is missing from the repository", id.short()));
                    break;
                };
                let e = targets.entry(*id).or_default();
                if e.is_empty() {
                    by_pack.entry(loc.pack).or_default().push((*id, loc));
                }
                e.push((t as u32, off));
                off += loc.raw_length as u64;
            }
            if !task.is_failed() && off != task.node.size {
                task.fail(format!("content is {off} bytes, the tree says {}", task.node.size));
            }
        }
    }

    // Files without content (empty) are finished here.
    tasks.par_iter().filter(|t| t.node.content.is_empty() && !t.is_failed()).for_each(|t| {
        if let Err(e) = t.finish(repo, None, verify) {
            t.fail(e.to_string());
        }
        progress.files_done.fetch_add(1, Relaxed);
    });

    let mut packs: Vec<(u32, Vec<(BlobId, BlobLoc)>)> = by_pack.into_iter().collect();
    packs.sort_by_key(|(p, _)| *p);
    // Pack reads wait on the store more than on the CPU: keep as many in flight as the backend
    // takes (`--connections`), each a ranged read of the blobs needed.
    let readers = repo.backend().connections().max(rayon::current_num_threads());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(readers)
        .build()
        .map_err(|e| Error::Other(format!("cannot start the restore threads: {e}")))?;
    pool.install(|| {
        packs.par_iter_mut().for_each(|(pack, blobs)| {
            blobs.sort_by_key(|(_, l)| l.offset);
            let pack_id = repo.index().pack_id(*pack);
            let name = pack_id.to_hex();
            // Blobs separated by small gaps are read together, in ranges of at most MAX_RANGE (one
            // blob beyond it), so each reader holds a few MiB, not a whole pack.
            const MAX_RANGE: u64 = 4 << 20;
            let mut start = 0;
            while start < blobs.len() {
                let mut end = start + 1;
                while end < blobs.len() {
                    let prev = &blobs[end - 1].1;
                    let gap = (blobs[end].1.offset as u64).saturating_sub(prev.offset as u64 + prev.length as u64);
                    if gap > 256 << 10
                        || prev.offset as u64 + prev.length as u64 - blobs[start].1.offset as u64 >= MAX_RANGE
                    {
                        break;
                    }
                    end += 1;
                }
                let first = blobs[start].1.offset as u64;
                let last = &blobs[end - 1].1;
                let len = last.offset as u64 + last.length as u64 - first;
                let data = repo.backend().read_range(Kind::Pack, &name, first, len);
                for (id, loc) in &blobs[start..end] {
                    let plain = match &data {
                        Ok(d) => {
                            let s = (loc.offset as u64 - first) as usize;
                            blob::decode(
                                repo.keys(),
                                BlobType::Data,
                                id,
                                &d[s..s + loc.length as usize],
                                loc.raw_length as usize,
                            )
                            .map_err(|e| format!("pack {name} is damaged: {e}"))
                        }
                        Err(e) => Err(format!("cannot read pack {name}: {e}")),
                    };
                    for &(t, off) in &targets[id] {
                        let task = &tasks[t as usize];
                        if task.is_failed() {
                            continue;
                        }
                        let res = match &plain {
                            Err(e) => Err(e.clone()),
                            Ok(p) => write_chunk(task, p, off).map_err(|e| e.to_string()),
                        };
                        match res {
                            Err(e) => task.fail(e),
                            Ok(f) => {
                                progress.bytes_done.fetch_add(loc.raw_length as u64, Relaxed);
                                if task.remaining.fetch_sub(1, Relaxed) == 1 {
                                    if let Err(e) = task.finish(repo, Some(f), verify) {
                                        task.fail(e.to_string());
                                    }
                                    progress.files_done.fetch_add(1, Relaxed);
                                }
                            }
                        }
                    }
                }
                start = end;
            }
        })
    });

    let mut errors = Vec::new();
    for t in &tasks {
        if let Some(why) = t.failed.lock().take() {
            if *t.created.lock() || t.tmp.is_none() {
                let _ = std::fs::remove_file(t.dest());
            }
            let rel = t.path.strip_prefix(target).unwrap_or(&t.path);
            errors.push(BackupIssue { path: Path::new("/").join(rel).to_string_lossy().into_owned(), error: why });
        }
    }
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(errors)
}

/// Writes one chunk at `off`. Zero chunks stay holes (the file was sized when created), so sparse
/// files stay sparse. Returns the open file so the last chunk's writer can finish it.
fn write_chunk(task: &FileTask, data: &[u8], off: u64) -> Result<File> {
    let f = task.open()?;
    if !data.iter().all(|&b| b == 0) {
        f.write_all_at(data, off).ctx("write", &task.path)?;
    }
    crate::failpoint::hit("restore:after-chunk");
    Ok(f)
}

/// Re-reads a restored file and checks every chunk's id.
fn verify_file(repo: &Repository, path: &Path, content: &[BlobId]) -> Result<()> {
    let f = std::fs::File::open(path).ctx("open for verify", path)?;
    let mut off = 0u64;
    let mut buf = Vec::new();
    for id in content {
        let len = repo
            .index()
            .get(id)
            .map(|l| l.raw_length as usize)
            .ok_or_else(|| Error::Missing { what: "blob", id: id.to_hex() })?;
        buf.resize(len, 0);
        f.read_exact_at(&mut buf, off).ctx("verify", path)?;
        if repo.keys().blob_id(&buf) != *id {
            return Err(Error::corrupt(
                "restored file",
                path.display(),
                format!("bytes at offset {off} differ from the snapshot"),
            ));
        }
        off += len as u64;
    }
    if f.metadata().ctx("verify", path)?.len() != off {
        return Err(Error::corrupt("restored file", path.display(), "its length differs from the snapshot"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::crypto::KdfParams;
    use crate::repo::{CacheOptions, InitOptions, Secret};
    use crate::snapshot::{AgentMeta, Summary};
    use std::sync::Arc;

    fn meta(state: &str, agents: &[(&str, &str, &str)]) -> OpenclawMeta {
        OpenclawMeta {
            state_dir: state.into(),
            config_path: Some(format!("{state}/openclaw.json")),
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
        }
    }

    fn snap_with(m: Option<OpenclawMeta>) -> Snapshot {
        Snapshot {
            version: 1,
            time: "2026-01-01T00:00:00Z".into(),
            hostname: "h".into(),
            username: "u".into(),
            paths: vec![],
            tags: vec![],
            parent: None,
            tree: BlobId::default(),
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

    fn roots(s: &Snapshot, only: &[&str]) -> Result<Vec<PathBuf>> {
        only_roots(s, &only.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
        assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("agent:ID"), "{e}");

        let bare = snap_with(None);
        for o in ["state", "workspace", "agent:main"] {
            let e = roots(&bare, &[o]).unwrap_err();
            assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("no OpenClaw metadata"), "{e}");
        }
        assert_eq!(roots(&bare, &["/data"]).unwrap(), pb(&["/data"]));
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
}
