//! Listing a snapshot's entries, depth first in name order, optionally under one path.

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::repo::Repository;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One listed entry: its absolute original path and node.
pub struct Entry {
    pub path: PathBuf,
    pub node: Node,
}

/// Calls `f` for every entry under `under` (absolute; `/` for all). Errors if `under` is absent.
pub fn walk(repo: &Repository, snap: &Snapshot, under: &Path, f: &mut dyn FnMut(Entry)) -> Result<()> {
    let mut tree = repo.load_tree(&snap.tree)?;
    let mut at = PathBuf::from("/");
    let comps: Vec<_> = under.components().skip(1).collect();
    for (i, c) in comps.iter().enumerate() {
        let name = c.as_os_str().as_bytes();
        let n = tree.find(name).cloned().ok_or_else(|| snap.path_not_held(under))?;
        at.push(OsStr::from_bytes(name));
        match n.kind {
            NodeKind::Dir => tree = repo.load_tree(n.subtree.as_ref().unwrap())?,
            _ if i + 1 == comps.len() => {
                f(Entry { path: at, node: n });
                return Ok(());
            }
            _ => return Err(Error::Usage(format!("{} is not a folder in the snapshot", at.display()))),
        }
    }
    walk_tree(repo, &tree.nodes, &at, f, 0)
}

fn walk_tree(repo: &Repository, nodes: &[Node], at: &Path, f: &mut dyn FnMut(Entry), depth: usize) -> Result<()> {
    crate::format::tree::check_depth(depth)?;
    for n in nodes {
        let p = at.join(OsStr::from_bytes(&n.name));
        let sub = n.subtree;
        f(Entry { path: p.clone(), node: n.clone() });
        if let Some(id) = sub {
            let t = repo.load_tree(&id)?;
            walk_tree(repo, &t.nodes, &p, f, depth + 1)?;
        }
    }
    Ok(())
}
