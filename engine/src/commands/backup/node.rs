//! Tree nodes as backup makes them: from a file's metadata (with the nanosecond times change
//! detection compares), or made up for what was never on disk (a stream's file, a folder made up
//! to hold one, an archive's missing parent).

use crate::format::tree::{Node, NodeKind};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

pub(super) fn mtime_ns(md: &Metadata) -> i64 {
    md.mtime().saturating_mul(1_000_000_000).saturating_add(md.mtime_nsec())
}
pub(super) fn ctime_ns(md: &Metadata) -> i64 {
    md.ctime().saturating_mul(1_000_000_000).saturating_add(md.ctime_nsec())
}

pub(super) fn node_from_meta(name: Vec<u8>, kind: NodeKind, md: &Metadata) -> Node {
    Node {
        name,
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: mtime_ns(md),
        ctime_ns: ctime_ns(md),
        dev: md.dev(),
        ino: md.ino(),
        nlink: md.nlink(),
        size: if kind == NodeKind::File { md.len() } else { 0 },
        content: Vec::new(),
        subtree: None,
        target: Vec::new(),
    }
}

pub(super) fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// A node for an entry that was never on disk (a stream's file, a folder made up to hold one or an
/// archive's missing parent): no content, one link, no device or inode, both times `time_ns`.
pub(crate) fn made_up_node(name: Vec<u8>, kind: NodeKind, mode: u32, uid: u32, gid: u32, time_ns: i64) -> Node {
    Node {
        name,
        kind,
        mode,
        uid,
        gid,
        mtime_ns: time_ns,
        ctime_ns: time_ns,
        dev: 0,
        ino: 0,
        nlink: 1,
        size: 0,
        content: Vec::new(),
        subtree: None,
        target: Vec::new(),
    }
}
