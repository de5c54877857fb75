//! One file across snapshots: the distinct versions of a path (a new one each time its content
//! changes) and a unified text diff of two of them. Kept small and self-contained so the
//! `history` command's engine can absorb it.

use crate::commands::dump::{dump_file, find, Found};
use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::repo::Repository;
use std::path::Path;

/// One version of a file: the oldest snapshot holding this content, and how many later ones kept it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Version {
    pub snapshot_id: String,
    pub time: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// Snapshots (this one included) that hold this same content, up to the next change.
    pub snapshots: usize,
}

/// The versions of the file at `path` in `snapshots` (any order), oldest first. Snapshots that do
/// not hold the path, or hold something other than a file there, are skipped.
pub fn versions(repo: &Repository, snapshots: &[(SnapshotId, Snapshot)], path: &Path) -> Result<Vec<Version>> {
    let mut snaps: Vec<&(SnapshotId, Snapshot)> = snapshots.iter().collect();
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    let mut out: Vec<Version> = Vec::new();
    let mut last_content = None;
    for (id, s) in snaps {
        let node = match find(repo, s, path) {
            Ok(Found::Node(n)) if n.kind == NodeKind::File => n,
            // Not held by this snapshot (a usage error), or not a file there.
            Ok(_) | Err(Error::Usage(_)) => continue,
            Err(e) => return Err(e),
        };
        if last_content.as_ref() == Some(&node.content) {
            if let Some(v) = out.last_mut() {
                v.snapshots += 1;
            }
            continue;
        }
        out.push(Version {
            snapshot_id: id.to_hex(),
            time: s.time.clone(),
            size: node.size,
            mtime_ns: node.mtime_ns,
            snapshots: 1,
        });
        last_content = Some(node.content);
    }
    Ok(out)
}

/// The content of the file at `path` in `snap`, refused past `limit` bytes (a page shows text,
/// not archives).
pub fn read_file(repo: &Repository, snap: &Snapshot, path: &Path, limit: u64) -> Result<Vec<u8>> {
    match find(repo, snap, path)? {
        Found::Node(n) if n.kind == NodeKind::File => {
            if n.size > limit {
                return Err(Error::Usage(format!(
                    "{} is {} bytes, more than the {limit} shown; download it instead",
                    path.display(),
                    n.size
                )));
            }
            let mut buf = Vec::with_capacity(n.size as usize);
            dump_file(repo, &n, path, &mut buf)?;
            Ok(buf)
        }
        _ => Err(Error::Usage(format!("{} is not a file in the snapshot", path.display()))),
    }
}

/// A unified diff (three lines of context) from `old` to `new`; empty when they are equal.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    if diff.ratio() == 1.0 && old == new {
        return String::new();
    }
    diff.unified_diff().context_radius(3).header(old_name, new_name).to_string()
}

#[cfg(test)]
mod tests {
    use super::unified_diff;

    #[test]
    fn diff_shows_changed_lines() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "old", "new");
        assert!(d.starts_with("--- old\n+++ new\n"), "{d}");
        assert!(d.contains("-b\n") && d.contains("+B\n"), "{d}");
        assert_eq!(unified_diff("same\n", "same\n", "o", "n"), "");
    }
}
