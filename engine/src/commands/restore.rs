//! Restore: recreate a snapshot (or the part selected by include/exclude patterns) under a target
//! folder. Every chunk is checked against its id as it is decrypted. Names come from trees that
//! were validated as single safe components, folders are created one level at a time and refused
//! if a symlink stands in their place, and files are opened with O_NOFOLLOW: nothing a repository
//! says can make restore write outside the target.

use crate::backend::Kind;
use crate::blob::{self, BlobType};
use crate::index::BlobLoc;
use parking_lot::Mutex;
use std::fs::File;
use std::sync::atomic::AtomicUsize;
use crate::commands::backup::build_excludes;
use crate::error::{Error, IoContext, Result};
use crate::id::BlobId;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{BackupIssue, Snapshot};
use crate::tree::{Node, NodeKind};
use ignore::gitignore::Gitignore;
use rayon::prelude::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// gitignore-style patterns on the original absolute path; empty: everything.
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    /// Re-read and re-hash every written file.
    pub verify: bool,
    /// Plan only; write nothing.
    pub dry_run: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreResult {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub bytes: u64,
    /// Files that could not be restored (damaged or missing data), with the reason.
    pub errors: Vec<BackupIssue>,
}

/// One entry to restore, with its path relative to the target.
pub struct Item {
    pub rel: PathBuf,
    pub node: Node,
}

pub struct Selection {
    includes: Option<Gitignore>,
    excludes: Gitignore,
}

impl Selection {
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self> {
        Ok(Selection {
            includes: if includes.is_empty() {
                None
            } else {
                Some(build_excludes(includes)?)
            },
            excludes: build_excludes(excludes)?,
        })
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
}

/// Walks the snapshot's trees and lists what the selection restores, folders before their content.
pub fn plan(repo: &Repository, snap: &Snapshot, sel: &Selection) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let root = repo.load_tree(&snap.tree)?;
    plan_tree(repo, &root.nodes, Path::new(""), sel, &mut out, 0)?;
    Ok(out)
}

const MAX_DEPTH: usize = 4096;

fn plan_tree(
    repo: &Repository,
    nodes: &[Node],
    rel: &Path,
    sel: &Selection,
    out: &mut Vec<Item>,
    depth: usize,
) -> Result<bool> {
    if depth > MAX_DEPTH {
        return Err(Error::UnsafePath("trees nested too deeply".into()));
    }
    let mut any = false;
    for n in nodes {
        Node::check_name(&n.name)?;
        let r = rel.join(OsStr::from_bytes(&n.name));
        let abs = Path::new("/").join(&r);
        let is_dir = n.kind == NodeKind::Dir;
        if sel.excluded(&abs, is_dir) {
            continue;
        }
        if is_dir {
            let pos = out.len();
            out.push(Item {
                rel: r.clone(),
                node: n.clone(),
            });
            let sub = repo.load_tree(n.subtree.as_ref().expect("validated"))?;
            let inner = plan_tree(repo, &sub.nodes, &r, sel, out, depth + 1)?;
            if inner || sel.included(&abs, true) {
                any = true;
            } else {
                out.remove(pos);
            }
        } else if sel.included(&abs, false) {
            out.push(Item {
                rel: r,
                node: n.clone(),
            });
            any = true;
        }
    }
    Ok(any)
}

/// Creates `target/rel` as a real folder; refuses a symlink or a file in its place.
fn safe_mkdir(target: &Path, rel: &Path) -> Result<()> {
    let p = target.join(rel);
    match std::fs::create_dir(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let md = std::fs::symlink_metadata(&p).ctx("inspect", &p)?;
            if md.file_type().is_symlink() || !md.is_dir() {
                return Err(Error::UnsafePath(format!(
                    "{} exists and is not a folder (a symlink would lead outside the target)",
                    p.display()
                )));
            }
            Ok(())
        }
        Err(e) => Err(Error::io("create folder", &p, e)),
    }
}

fn set_owner(path: &Path, n: &Node) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
            // SAFETY: c is a valid NUL-terminated path.
            unsafe { libc::lchown(c.as_ptr(), n.uid, n.gid) };
        }
    }
}

fn ft(ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// Restores a snapshot under `opts.target`.
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreResult> {
    let sel = Selection::new(&opts.includes, &opts.excludes)?;
    let items = plan(repo, snap, &sel)?;
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

    // Hard links: the first file of each (dev, inode) group is written, the rest linked to it.
    let mut first_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut link_to: Vec<(usize, usize)> = Vec::new();
    let mut write: Vec<usize> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if it.node.kind != NodeKind::File {
            continue;
        }
        if it.node.nlink > 1 {
            match first_of.get(&(it.node.dev, it.node.ino)) {
                Some(&f) => {
                    link_to.push((i, f));
                    continue;
                }
                None => {
                    first_of.insert((it.node.dev, it.node.ino), i);
                }
            }
        }
        write.push(i);
    }

    let mut errors = write_files(repo, target, &items, &write, opts.verify, progress)?;
    let failed: HashMap<String, String> = errors
        .iter()
        .map(|e| (e.path.clone(), e.error.clone()))
        .collect();

    for (i, f) in link_to {
        let src = target.join(&items[f].rel);
        let dst = target.join(&items[i].rel);
        let first = Path::new("/")
            .join(&items[f].rel)
            .to_string_lossy()
            .into_owned();
        if let Some(why) = failed.get(&first) {
            // A hard link to a file that could not be restored is lost too: name it.
            errors.push(BackupIssue {
                path: Path::new("/").join(&items[i].rel).to_string_lossy().into_owned(),
                error: format!("hard link to {first}, which could not be restored: {why}"),
            });
            let _ = std::fs::remove_file(&dst);
            continue;
        }
        let _ = std::fs::remove_file(&dst);
        std::fs::hard_link(&src, &dst).ctx("hard link", &dst)?;
        res.hardlinks += 1;
    }

    for it in items.iter().filter(|i| i.node.kind == NodeKind::Symlink) {
        let p = target.join(&it.rel);
        if let Ok(md) = std::fs::symlink_metadata(&p) {
            if md.is_dir() {
                return Err(Error::UnsafePath(format!(
                    "{} is a folder where the snapshot has a symlink",
                    p.display()
                )));
            }
            std::fs::remove_file(&p).ctx("replace", &p)?;
        }
        std::os::unix::fs::symlink(OsStr::from_bytes(&it.node.target), &p)
            .ctx("create symlink", &p)?;
        set_owner(&p, &it.node);
        let t = ft(it.node.mtime_ns);
        let _ = filetime::set_symlink_file_times(&p, t, t);
    }

    // Folder metadata last, deepest first, so writing into them does not change their mtime.
    for it in items.iter().rev().filter(|i| i.node.kind == NodeKind::Dir) {
        let p = target.join(&it.rel);
        set_owner(&p, &it.node);
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(it.node.mode));
        let t = ft(it.node.mtime_ns);
        let _ = filetime::set_file_times(&p, t, t);
    }
    res.errors = errors;
    Ok(res)
}

/// A file being restored: created on first write, finished when its last chunk is written.
struct FileTask<'a> {
    path: PathBuf,
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

    /// Opens the file for writing, creating (truncated, sized) it the first time.
    fn open(&self) -> Result<File> {
        let mut created = self.created.lock();
        let mut o = OpenOptions::new();
        o.write(true).custom_flags(libc::O_NOFOLLOW);
        if !*created {
            if let Ok(md) = std::fs::symlink_metadata(&self.path) {
                if md.is_dir() {
                    return Err(Error::UnsafePath(format!(
                        "{} is a folder where the snapshot has a file",
                        self.path.display()
                    )));
                }
            }
            o.create(true).truncate(true).mode(0o600);
        }
        let f = o.open(&self.path).ctx("create", &self.path)?;
        if !*created {
            f.set_len(self.node.size).ctx("size", &self.path)?;
            *created = true;
        }
        Ok(f)
    }

    /// After the last chunk: verify if asked, then owner, mode and times.
    fn finish(&self, repo: &Repository, f: Option<File>, verify: bool) -> Result<()> {
        let f = match f {
            Some(f) => f,
            None => self.open()?,
        };
        if verify {
            verify_file(repo, &self.path, &self.node.content)?;
        }
        set_owner(&self.path, self.node);
        f.set_permissions(std::fs::Permissions::from_mode(self.node.mode)).ctx("chmod", &self.path)?;
        let t = ft(self.node.mtime_ns);
        filetime::set_file_handle_times(&f, Some(t), Some(t)).ctx("set times", &self.path)?;
        Ok(())
    }
}

/// Writes the files' contents. Chunks are grouped by pack; packs are processed in parallel, each
/// read with as few ranged reads as possible (one for a pack whose blobs are all needed), so the
/// repository is read sequentially whatever the order of files. Returns the files that failed,
/// after removing them: a partial file is never left where it could pass for whole.
fn write_files(
    repo: &Repository,
    target: &Path,
    items: &[Item],
    write: &[usize],
    verify: bool,
    progress: &Progress,
) -> Result<Vec<BackupIssue>> {
    let tasks: Vec<FileTask> = write
        .iter()
        .map(|&i| FileTask {
            path: target.join(&items[i].rel),
            node: &items[i].node,
            remaining: AtomicUsize::new(items[i].node.content.len()),
            created: Mutex::new(false),
            failed: Mutex::new(None),
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
    packs.par_iter_mut().for_each(|(pack, blobs)| {
        blobs.sort_by_key(|(_, l)| l.offset);
        let pack_id = repo.index().pack_id(*pack);
        let name = pack_id.to_hex();
        // Blobs separated by small gaps are read together.
        let mut start = 0;
        while start < blobs.len() {
            let mut end = start + 1;
            while end < blobs.len() {
                let prev = &blobs[end - 1].1;
                let gap = (blobs[end].1.offset as u64).saturating_sub(prev.offset as u64 + prev.length as u64);
                if gap > 256 << 10 {
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
    });

    let mut errors = Vec::new();
    for t in &tasks {
        if let Some(why) = t.failed.lock().take() {
            let _ = std::fs::remove_file(&t.path);
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
            .ok_or_else(|| Error::Missing {
                what: "blob",
                id: id.to_hex(),
            })?;
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
    Ok(())
}
