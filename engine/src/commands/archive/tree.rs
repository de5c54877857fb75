//! The tree of an archive's entries: folders assembled in memory as entries arrive (in any
//! order, each folder's metadata once its own entry is seen), then stored bottom-up as trees.

use super::bad;
use super::import::MAX_DEPTH;
use crate::error::Result;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::writer::Writer;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A folder being assembled from archive entries.
#[derive(Default)]
pub(super) struct DirB {
    /// Its metadata, once its own entry was seen.
    pub(super) node: Option<Node>,
    pub(super) children: BTreeMap<Vec<u8>, Child>,
}

pub(super) enum Child {
    Dir(DirB),
    Leaf(Node),
}

impl DirB {
    /// Inserts `node` at `comps` (its name is the last component), creating folders on the way.
    pub(super) fn insert(&mut self, comps: &[&[u8]], node: Node, shown: &str) -> Result<()> {
        let mut d = self;
        for c in &comps[..comps.len() - 1] {
            let e = d.children.entry(c.to_vec()).or_insert_with(|| Child::Dir(DirB::default()));
            d = match e {
                Child::Dir(x) => x,
                Child::Leaf(_) => return Err(bad(format!("{shown} is inside something that is not a folder"))),
            };
        }
        let name = comps[comps.len() - 1].to_vec();
        match (d.children.get_mut(&name), node.kind) {
            (None, NodeKind::Dir) => {
                d.children.insert(name, Child::Dir(DirB { node: Some(node), children: BTreeMap::new() }));
            }
            (None, _) => {
                d.children.insert(name, Child::Leaf(node));
            }
            (Some(Child::Dir(x)), NodeKind::Dir) if x.node.is_none() => x.node = Some(node),
            _ => return Err(bad(format!("{shown} appears twice, or as both a folder and a file"))),
        }
        Ok(())
    }

    pub(super) fn find_leaf_mut(&mut self, comps: &[&[u8]]) -> Option<&mut Node> {
        let mut d = self;
        for c in &comps[..comps.len().checked_sub(1)?] {
            d = match d.children.get_mut(*c)? {
                Child::Dir(x) => x,
                Child::Leaf(_) => return None,
            };
        }
        match d.children.get_mut(comps[comps.len() - 1])? {
            Child::Leaf(n) => Some(n),
            Child::Dir(_) => None,
        }
    }

    pub(super) fn contains(&self, comps: &[&[u8]]) -> bool {
        let mut d = self;
        for (i, c) in comps.iter().enumerate() {
            match d.children.get(*c) {
                None => return false,
                Some(Child::Dir(x)) => d = x,
                Some(Child::Leaf(_)) => return i + 1 == comps.len(),
            }
        }
        true
    }

    /// The names of the sub-folders at `comps`.
    pub(super) fn subdirs(&self, comps: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut d = self;
        for c in comps {
            match d.children.get(*c) {
                Some(Child::Dir(x)) => d = x,
                _ => return Vec::new(),
            }
        }
        d.children.iter().filter(|(_, c)| matches!(c, Child::Dir(_))).map(|(n, _)| n.clone()).collect()
    }
}

/// The absolute path whose components (below `/`) are `comps`.
pub(super) fn abs_path(comps: &[&[u8]]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

pub(super) fn comps_of(p: &Path) -> Vec<&[u8]> {
    p.components().skip(1).map(|c| c.as_os_str().as_bytes()).collect()
}

/// Stores the trees below a folder, deepest first, and returns the folder's own tree.
pub(super) fn build_tree(
    w: &Writer,
    children: BTreeMap<Vec<u8>, Child>,
    default_dir: &Node,
    depth: usize,
) -> Result<Tree> {
    if depth > MAX_DEPTH {
        return Err(bad("entries nested too deeply"));
    }
    let mut nodes = Vec::with_capacity(children.len());
    for (name, c) in children {
        match c {
            Child::Leaf(n) => nodes.push(n),
            Child::Dir(d) => {
                let mut n = d.node.unwrap_or_else(|| default_dir.clone());
                n.name = name;
                n.kind = NodeKind::Dir;
                n.size = 0;
                let t = build_tree(w, d.children, default_dir, depth + 1)?;
                n.subtree = Some(w.store_tree(&t)?);
                nodes.push(n);
            }
        }
    }
    Ok(Tree::new(nodes))
}
