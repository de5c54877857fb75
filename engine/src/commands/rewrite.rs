//! `rewrite`: new snapshots without the entries exclude patterns match (gitignore syntax on
//! absolute paths, as `backup --exclude`), keeping time, host, paths and tags, with the first
//! original's id in `original`; each original is then forgotten, and `prune` frees what only it
//! held. How a leaked credential or a huge file leaves every snapshot. Trees are rewritten once
//! per (tree id, path) however many snapshots share them; a snapshot nothing matches in stays.
//! Like a backup it writes under a backup lease, and stores its trees before any snapshot names
//! them, so a crash leaves the originals or the new snapshots (or both), never a dangling one.

use crate::commands::backup::build_excludes;
use crate::error::Result;
use crate::format::id::{SnapshotId, TreeId};
use crate::format::snapshot::{BackupIssue, Snapshot};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::lease::Lease;
use crate::repo::writer::{Writer, WriterOptions};
use crate::repo::Repository;
use ignore::gitignore::Gitignore;
use serde::Serialize;
use std::collections::HashMap;

/// One entry taken out.
#[derive(Clone, Debug, Serialize)]
pub struct Removed {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Bytes of the files it held (itself or below it).
    pub bytes: u64,
    pub files: u64,
    pub pattern: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rewritten {
    pub snapshot: SnapshotId,
    pub time: String,
    /// `None` in a dry run.
    pub new_snapshot: Option<SnapshotId>,
    pub removed: Vec<Removed>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RewriteReport {
    pub rewritten: Vec<Rewritten>,
    /// Snapshots nothing matched in (left as they are).
    pub unchanged: Vec<SnapshotId>,
    pub trees_written: u64,
    pub dry_run: bool,
}

type Memo = HashMap<(TreeId, String), (TreeId, Vec<Removed>)>;

struct Rewriter<'a> {
    repo: &'a Repository,
    excludes: Gitignore,
    writer: Writer<'a>,
    memo: Memo,
    trees_written: u64,
}

/// Files and bytes a subtree holds.
fn weigh(repo: &Repository, n: &Node, depth: usize) -> Result<(u64, u64)> {
    crate::format::tree::check_depth(depth)?;
    match (n.kind, n.subtree) {
        (NodeKind::Dir, Some(t)) => {
            let mut sum = (0, 0);
            for c in repo.load_tree(&t)?.nodes {
                let (f, b) = weigh(repo, &c, depth + 1)?;
                sum = (sum.0 + f, sum.1 + b);
            }
            Ok(sum)
        }
        (NodeKind::File, _) => Ok((1, n.size)),
        _ => Ok((0, 0)),
    }
}

impl Rewriter<'_> {
    /// The tree `id` (at `at`) without what the patterns match, and what was taken out.
    fn tree(&mut self, id: TreeId, at: &str, depth: usize) -> Result<(TreeId, Vec<Removed>)> {
        crate::format::tree::check_depth(depth)?;
        let key = (id, at.to_string());
        if let Some(v) = self.memo.get(&key) {
            return Ok(v.clone());
        }
        let tree = self.repo.load_tree(&id)?;
        let mut removed = Vec::new();
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut n in tree.nodes {
            let p = format!("{}/{}", at.trim_end_matches('/'), n.name_lossy());
            let is_dir = n.kind == NodeKind::Dir;
            if let ignore::Match::Ignore(g) = self.excludes.matched(&p, is_dir) {
                let (files, bytes) = weigh(self.repo, &n, depth + 1)?;
                removed.push(Removed {
                    path: p,
                    kind: crate::commands::find::kind_name(n.kind),
                    bytes,
                    files,
                    pattern: g.original().to_string(),
                });
                continue;
            }
            if let Some(sub) = n.subtree {
                let (new, r) = self.tree(sub, &p, depth + 1)?;
                n.subtree = Some(new);
                removed.extend(r);
            }
            nodes.push(n);
        }
        let new = if removed.is_empty() {
            id
        } else {
            self.trees_written += 1;
            self.writer.store_tree(&Tree::new(nodes))?
        };
        self.memo.insert(key, (new, removed.clone()));
        Ok((new, removed))
    }
}

/// Rewrites `snaps` without what `patterns` match (see the module docs).
pub fn rewrite(
    repo: &Repository,
    snaps: &[(SnapshotId, Snapshot)],
    patterns: &[String],
    dry_run: bool,
) -> Result<RewriteReport> {
    if patterns.is_empty() {
        return Err(crate::error::Error::Usage(
            "rewrite needs what to remove: give --exclude PATTERN or --exclude-file FILE".into(),
        ));
    }
    let excludes = build_excludes(patterns)?;
    // Rewriting forgets the originals: refused up front where deletes are (append-only).
    if !dry_run && !snaps.is_empty() {
        repo.require_deletes("rewrite")?;
    }
    // A writer like a backup: a prune keeps the trees it reuses until the new snapshots exist.
    let lease = if dry_run { None } else { Some(Lease::backup(repo.backend().clone())?) };
    repo.refresh_index()?;
    let writer = Writer::new(repo, WriterOptions { dry_run, upload: None });
    let mut rw = Rewriter { repo, excludes, writer, memo: HashMap::new(), trees_written: 0 };
    let mut report = RewriteReport { dry_run, ..Default::default() };
    let mut new_snaps = Vec::new();
    for (id, s) in snaps {
        let (root, removed) = rw.tree(s.tree, "/", 0)?;
        if removed.is_empty() {
            report.unchanged.push(*id);
            continue;
        }
        let mut n = s.clone();
        n.tree = root;
        n.original = Some(s.original.unwrap_or(*id));
        n.parent = s.parent;
        let (files, bytes) = removed.iter().fold((0, 0), |a, r| (a.0 + r.files, a.1 + r.bytes));
        n.summary.total_files = n.summary.total_files.saturating_sub(files);
        n.summary.total_bytes = n.summary.total_bytes.saturating_sub(bytes);
        n.warnings.extend(removed.iter().map(|r| BackupIssue {
            path: r.path.clone(),
            error: format!("removed by rewrite --exclude {}", r.pattern),
        }));
        new_snaps.push((*id, n, removed));
    }
    report.trees_written = rw.trees_written;
    rw.writer.finish()?;
    for (id, n, removed) in new_snaps {
        let new_snapshot = match &lease {
            Some(l) => {
                l.ensure_held()?;
                Some(repo.replace_snapshot(&id, &n)?)
            }
            None => None,
        };
        report.rewritten.push(Rewritten { snapshot: id, time: n.time, new_snapshot, removed });
    }
    if let Some(l) = lease {
        l.release();
    }
    Ok(report)
}
