//! Restore: recreate a snapshot (or the part selected by include/exclude patterns) under a target
//! folder. Every chunk is checked against its id as it is decrypted. Names come from trees that
//! were validated as single safe components, folders are created one level at a time and refused
//! if a symlink stands in their place, and files are opened with O_NOFOLLOW: nothing a repository
//! says can make restore write outside the target.

use crate::blob::BlobType;
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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

    let written = AtomicU64::new(0);
    let errors: Vec<BackupIssue> = write
        .par_iter()
        .filter_map(|&i| {
            let it = &items[i];
            let path = target.join(&it.rel);
            match restore_file(repo, &path, &it.node, opts.verify, progress) {
                Ok(()) => {
                    written.fetch_add(1, Relaxed);
                    None
                }
                Err(e) => {
                    // Never leave a partial file that could pass for whole.
                    let _ = std::fs::remove_file(&path);
                    Some(BackupIssue {
                        path: Path::new("/").join(&it.rel).to_string_lossy().into_owned(),
                        error: e.to_string(),
                    })
                }
            }
        })
        .collect();
    let failed: std::collections::HashSet<&str> = errors.iter().map(|e| e.path.as_str()).collect();

    for (i, f) in link_to {
        let src = target.join(&items[f].rel);
        let dst = target.join(&items[i].rel);
        if failed.contains(
            Path::new("/")
                .join(&items[f].rel)
                .to_string_lossy()
                .as_ref(),
        ) {
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

fn restore_file(
    repo: &Repository,
    path: &Path,
    n: &Node,
    verify: bool,
    progress: &Progress,
) -> Result<()> {
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if md.is_dir() {
            return Err(Error::UnsafePath(format!(
                "{} is a folder where the snapshot has a file",
                path.display()
            )));
        }
    }
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx("create", path)?;
    f.set_len(n.size).ctx("size", path)?;
    let mut off = 0u64;
    for id in &n.content {
        let data = repo.read_blob(BlobType::Data, id)?;
        // Zero chunks stay holes: the file was sized already, so sparse files stay sparse.
        if !data.iter().all(|&b| b == 0) {
            f.write_all_at(&data, off).ctx("write", path)?;
        }
        off += data.len() as u64;
        progress.bytes_done.fetch_add(data.len() as u64, Relaxed);
    }
    if off != n.size {
        return Err(Error::corrupt(
            "tree",
            path.display(),
            format!("file content is {off} bytes, the tree says {}", n.size),
        ));
    }
    if verify {
        verify_file(repo, path, &n.content)?;
    }
    set_owner(path, n);
    f.set_permissions(std::fs::Permissions::from_mode(n.mode))
        .ctx("chmod", path)?;
    let t = ft(n.mtime_ns);
    filetime::set_file_handle_times(&f, Some(t), Some(t)).ctx("set times", path)?;
    progress.files_done.fetch_add(1, Relaxed);
    Ok(())
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
