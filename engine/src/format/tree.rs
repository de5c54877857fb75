//! Trees: one blob per directory, listing its entries sorted by name bytes. Encoded with postcard
//! (see format-spec/README.md, "Trees") so the same directory always gives the same bytes and the
//! same blob id, which is how an unchanged directory reuses its tree.

use crate::error::{Error, Result};
use crate::format::canonical;
use crate::format::id::{DataId, TreeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum NodeKind {
    File = 0,
    Dir = 1,
    Symlink = 2,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The entry's name as raw bytes, so non-UTF-8 names survive.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    /// File content, in order.
    pub content: Vec<DataId>,
    /// Directory: its tree.
    pub subtree: Option<TreeId>,
    /// Symlink target, raw bytes.
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
}

impl Node {
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// A name that is safe to join under a directory: one path component, not `.` or `..`.
    pub fn check_name(name: &[u8]) -> Result<()> {
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
            return Err(Error::UnsafePath(format!("tree entry name {:?}", String::from_utf8_lossy(name))));
        }
        Ok(())
    }

    /// Whether the metadata used for change detection matches (content not compared).
    pub fn same_file_meta(&self, o: &Node) -> bool {
        self.kind == o.kind
            && self.size == o.size
            && self.mtime_ns == o.mtime_ns
            && self.ctime_ns == o.ctime_ns
            && self.ino == o.ino
    }
}

/// How deep a walk of a snapshot's trees may go before the repository is taken for hostile (a tree
/// cycle or an absurd nesting would otherwise loop or exhaust the stack).
pub const MAX_DEPTH: usize = 4096;

/// Refuses a walk that has gone deeper than `MAX_DEPTH`.
pub fn check_depth(depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::UnsafePath("trees nested too deeply".into()));
    }
    Ok(())
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub version: u8,
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn new(mut nodes: Vec<Node>) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Tree { version: 1, nodes }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("serialize tree")
    }

    /// Decodes and validates a tree: version, canonical encoding, safe and strictly increasing
    /// names, consistent kinds.
    pub fn decode(id: &TreeId, bytes: &[u8]) -> Result<Tree> {
        // The first byte is `version`: a later version is named as such, not as bad encoding.
        if let Some(&v) = bytes.first().filter(|&&v| v != 1) {
            return Err(Error::corrupt("tree", id, format!("unsupported version {v}")));
        }
        let t: Tree = canonical::postcard(bytes).map_err(|e| Error::corrupt("tree", id, e))?;
        for (i, n) in t.nodes.iter().enumerate() {
            Node::check_name(&n.name).map_err(|e| Error::corrupt("tree", id, e))?;
            if i > 0 && t.nodes[i - 1].name >= n.name {
                return Err(Error::corrupt("tree", id, "entries not sorted or duplicated"));
            }
            if (n.kind == NodeKind::Dir) != n.subtree.is_some() {
                return Err(Error::corrupt("tree", id, format!("entry {} has an inconsistent kind", n.name_lossy())));
            }
        }
        Ok(t)
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.binary_search_by(|n| n.name.as_slice().cmp(name)).ok().map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn node(name: &[u8], kind: NodeKind) -> Node {
        Node {
            name: name.to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 1,
            ctime_ns: 2,
            dev: 3,
            ino: 4,
            nlink: 1,
            size: 0,
            content: vec![],
            subtree: if kind == NodeKind::Dir { Some(TreeId([0; 32])) } else { None },
            target: vec![],
        }
    }

    #[test]
    fn deterministic_sorted_round_trip() {
        let a = Tree::new(vec![node(b"b", NodeKind::File), node(b"a\xff", NodeKind::Dir)]);
        let b = Tree::new(vec![node(b"a\xff", NodeKind::Dir), node(b"b", NodeKind::File)]);
        assert_eq!(a.encode(), b.encode());
        let t = Tree::decode(&TreeId::default(), &a.encode()).unwrap();
        assert_eq!(t.nodes[0].name, b"a\xff");
        assert!(t.find(b"b").is_some());
    }

    #[test]
    fn hostile_trees_are_refused() {
        for bad in [&b".."[..], b".", b"", b"a/b"] {
            let t = Tree { version: 1, nodes: vec![node(bad, NodeKind::File)] };
            assert!(Tree::decode(&TreeId::default(), &t.encode()).is_err(), "{bad:?}");
        }
        let dup = Tree { version: 1, nodes: vec![node(b"x", NodeKind::File), node(b"x", NodeKind::File)] };
        assert!(Tree::decode(&TreeId::default(), &dup.encode()).is_err());
        assert!(Tree::decode(&TreeId::default(), &[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn only_the_canonical_encoding_is_a_tree() {
        let good = Tree::new(vec![node(b"a", NodeKind::File)]).encode();
        assert_eq!(good[..7], [1, 1, 1, b'a', 0, 0xa4, 0x03], "version, count, name, kind, mode 0o644");
        assert!(Tree::decode(&TreeId::default(), &good).is_ok());
        let err = |bytes: &[u8]| Tree::decode(&TreeId::default(), bytes).unwrap_err().to_string();
        let overlong = [&good[..5], &[0xa4, 0x83, 0x00], &good[7..]].concat();
        assert!(err(&overlong).contains("not in canonical form"), "{}", err(&overlong));
        let trailing = [&good[..], &[0]].concat();
        assert!(err(&trailing).contains("bytes after"), "{}", err(&trailing));
        let mut v2 = good.clone();
        v2[0] = 2;
        assert!(err(&v2).contains("unsupported version 2"), "{}", err(&v2));
        assert!(err(&[]).contains("end of buffer"), "{}", err(&[]));
    }
}
