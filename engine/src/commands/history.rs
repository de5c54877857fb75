//! A file's life across snapshots, and what changed between two versions of it. `history` groups
//! the snapshots holding a path by content (the hash of its chunk list), so each distinct version
//! is listed once with the first and last snapshot that hold it; `compare` says what changed: a
//! unified diff for text, lines appended for JSONL transcripts, per-table row counts for SQLite
//! databases, a chunk summary for anything else. The web console reuses both.

use crate::commands::dump::ContentReader;
use crate::commands::find::kind_name;
use crate::error::{Error, Result};
use crate::format::id::{SnapshotId, TreeId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::repo::Repository;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Past this size a version is not read into memory for a text or JSONL comparison: the binary
/// summary says what changed instead.
pub const MAX_TEXT_BYTES: u64 = 32 << 20;
/// Past this size a database is not copied out to count its rows.
pub const MAX_SQLITE_BYTES: u64 = 1 << 30;

/// One distinct version of the file.
#[derive(Clone, Debug, Serialize)]
pub struct Version {
    /// blake3 of the chunk ids in order (a file), of the target (a symlink), or the tree id (a
    /// folder): equal ids, equal content.
    pub content_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: u64,
    pub mtime_ns: i64,
    pub first_snapshot: SnapshotId,
    pub first_time: String,
    pub last_snapshot: SnapshotId,
    pub last_time: String,
    /// How many of the snapshots searched hold this version.
    pub snapshots: u64,
    #[serde(skip)]
    pub node: Node,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryReport {
    pub path: String,
    pub snapshots_searched: u64,
    pub snapshots_holding: u64,
    /// In the order they first appear.
    pub versions: Vec<Version>,
}

/// The content id of a node (see [`Version::content_id`]).
pub fn content_id(n: &Node) -> String {
    match n.kind {
        NodeKind::File => {
            let mut h = blake3::Hasher::new();
            for c in &n.content {
                h.update(c.as_bytes());
            }
            h.finalize().to_hex().to_string()
        }
        NodeKind::Symlink => blake3::hash(&n.target).to_hex().to_string(),
        NodeKind::Dir => n.subtree.map(|t| t.to_hex()).unwrap_or_default(),
    }
}

/// Looks `comps` up below the tree `id`, remembering each answer by (tree id, depth): a subtree
/// unchanged between snapshots is read once.
fn lookup(
    repo: &Repository,
    id: TreeId,
    comps: &[&[u8]],
    depth: usize,
    memo: &mut HashMap<(TreeId, usize), Option<Node>>,
) -> Result<Option<Node>> {
    if let Some(n) = memo.get(&(id, depth)) {
        return Ok(n.clone());
    }
    let tree = repo.load_tree(&id)?;
    let found = match tree.find(comps[depth]) {
        None => None,
        Some(n) if depth + 1 == comps.len() => Some(n.clone()),
        Some(n) => match n.subtree {
            Some(sub) => lookup(repo, sub, comps, depth + 1, memo)?,
            None => None,
        },
    };
    memo.insert((id, depth), found.clone());
    Ok(found)
}

/// Every distinct version of `path` (absolute, clean) in `snaps` (oldest first).
pub fn history(repo: &Repository, snaps: &[(SnapshotId, Snapshot)], path: &Path) -> Result<HistoryReport> {
    let comps: Vec<&[u8]> = path.components().skip(1).map(|c| c.as_os_str().as_bytes()).collect();
    if comps.is_empty() {
        return Err(Error::Usage("history needs a path below /, e.g. ~/.openclaw/workspace/MEMORY.md".into()));
    }
    let mut memo = HashMap::new();
    let mut report = HistoryReport {
        path: path.to_string_lossy().into_owned(),
        snapshots_searched: 0,
        snapshots_holding: 0,
        versions: Vec::new(),
    };
    let mut by_content: HashMap<String, usize> = HashMap::new();
    for (id, s) in snaps {
        report.snapshots_searched += 1;
        let Some(n) = lookup(repo, s.tree, &comps, 0, &mut memo)? else { continue };
        report.snapshots_holding += 1;
        let cid = content_id(&n);
        match by_content.get(&cid) {
            Some(&i) => {
                let v = &mut report.versions[i];
                v.last_snapshot = *id;
                v.last_time = s.time.clone();
                v.snapshots += 1;
            }
            None => {
                by_content.insert(cid.clone(), report.versions.len());
                report.versions.push(Version {
                    content_id: cid,
                    kind: kind_name(n.kind),
                    size: n.size,
                    mtime_ns: n.mtime_ns,
                    first_snapshot: *id,
                    first_time: s.time.clone(),
                    last_snapshot: *id,
                    last_time: s.time.clone(),
                    snapshots: 1,
                    node: n,
                });
            }
        }
    }
    Ok(report)
}

/// Rows of one table in the two versions of a database (`None`: no such table in that version).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TableRows {
    pub table: String,
    pub rows_before: Option<u64>,
    pub rows_after: Option<u64>,
}

/// What changed between two versions of a file.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Comparison {
    /// The same content.
    Same,
    /// Text: a unified diff, and the lines it adds and removes.
    Text { lines_before: u64, lines_after: u64, lines_added: u64, lines_removed: u64, patch: String },
    /// A JSONL transcript: lines appended after the lines the two share at the start, and whether
    /// any earlier line changed (then `patch` has the unified diff).
    Jsonl {
        lines_before: u64,
        lines_after: u64,
        lines_appended: u64,
        earlier_changed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
    },
    /// A SQLite database: rows per table in both versions.
    Sqlite { tables: Vec<TableRows> },
    /// Anything else: sizes, and how many chunks the two share.
    Binary { size_before: u64, size_after: u64, chunks_before: u64, chunks_after: u64, chunks_shared: u64 },
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

fn read_all(repo: &Repository, n: &Node, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n.size as usize);
    ContentReader::new(repo, n, what)
        .read_to_end(&mut out)
        .map_err(|e| Error::Other(format!("reading {what}: {e}")))?;
    Ok(out)
}

fn first_bytes(repo: &Repository, n: &Node) -> Result<Vec<u8>> {
    match n.content.first() {
        Some(c) => repo.read_data(c),
        None => Ok(Vec::new()),
    }
}

fn line_count(b: &[u8]) -> u64 {
    let n = b.iter().filter(|&&c| c == b'\n').count() as u64;
    n + u64::from(!b.is_empty() && !b.ends_with(b"\n"))
}

fn is_text(b: &[u8]) -> bool {
    !b.contains(&0) && std::str::from_utf8(b).is_ok()
}

fn unified(a: &str, b: &str, name_a: &str, name_b: &str) -> (String, u64, u64) {
    let d = similar::TextDiff::from_lines(a, b);
    let (mut added, mut removed) = (0u64, 0u64);
    for c in d.iter_all_changes() {
        match c.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let patch = d.unified_diff().context_radius(3).header(name_a, name_b).to_string();
    (patch, added, removed)
}

/// The content of the file at `path` in `snap`, refused past `limit` bytes (a page shows text,
/// not archives).
pub fn read_file(repo: &Repository, snap: &Snapshot, path: &Path, limit: u64) -> Result<Vec<u8>> {
    match crate::commands::dump::find(repo, snap, path)? {
        crate::commands::dump::Found::Node(n) if n.kind == NodeKind::File => {
            if n.size > limit {
                return Err(Error::Usage(format!(
                    "{} is {} bytes, more than the {limit} shown; download it instead",
                    path.display(),
                    n.size
                )));
            }
            read_all(repo, &n, &path.display().to_string())
        }
        _ => Err(Error::Usage(format!("{} is not a file in the snapshot", path.display()))),
    }
}

/// Compares two versions of a file. `path` names it (its extension picks JSONL); `label_a` and
/// `label_b` head the unified diff (e.g. `3f2a…:/path`).
pub fn compare(repo: &Repository, a: &Node, b: &Node, path: &Path, label_a: &str, label_b: &str) -> Result<Comparison> {
    if a.kind != NodeKind::File || b.kind != NodeKind::File {
        return Err(Error::Usage(format!(
            "{} is a {} in one version and a {} in the other: only files are compared",
            path.display(),
            kind_name(a.kind),
            kind_name(b.kind)
        )));
    }
    if content_id(a) == content_id(b) {
        return Ok(Comparison::Same);
    }
    let what = path.display().to_string();
    let binary = || {
        let ids: std::collections::HashSet<_> = a.content.iter().collect();
        Comparison::Binary {
            size_before: a.size,
            size_after: b.size,
            chunks_before: a.content.len() as u64,
            chunks_after: b.content.len() as u64,
            chunks_shared: b.content.iter().filter(|c| ids.contains(c)).count() as u64,
        }
    };
    let (ha, hb) = (first_bytes(repo, a)?, first_bytes(repo, b)?);
    if ha.starts_with(SQLITE_MAGIC) && hb.starts_with(SQLITE_MAGIC) {
        if a.size.max(b.size) > MAX_SQLITE_BYTES {
            return Ok(binary());
        }
        return Ok(Comparison::Sqlite { tables: sqlite_rows(repo, a, b, &what)? });
    }
    if a.size.max(b.size) > MAX_TEXT_BYTES {
        return Ok(binary());
    }
    let (ba, bb) = (read_all(repo, a, &what)?, read_all(repo, b, &what)?);
    if !is_text(&ba) || !is_text(&bb) {
        return Ok(binary());
    }
    let (sa, sb) = (std::str::from_utf8(&ba).unwrap(), std::str::from_utf8(&bb).unwrap());
    let (lines_before, lines_after) = (line_count(&ba), line_count(&bb));
    if path.extension().is_some_and(|e| e == "jsonl") {
        // A transcript only grows: its earlier lines are a byte prefix of the later version.
        if bb.starts_with(&ba) {
            return Ok(Comparison::Jsonl {
                lines_before,
                lines_after,
                lines_appended: line_count(&bb[ba.len()..]),
                earlier_changed: false,
                patch: None,
            });
        }
        let shared = sa.split_inclusive('\n').zip(sb.split_inclusive('\n')).take_while(|(x, y)| x == y).count() as u64;
        let (patch, _, _) = unified(sa, sb, label_a, label_b);
        return Ok(Comparison::Jsonl {
            lines_before,
            lines_after,
            lines_appended: lines_after.saturating_sub(lines_before.max(shared)),
            earlier_changed: true,
            patch: Some(patch),
        });
    }
    let (patch, lines_added, lines_removed) = unified(sa, sb, label_a, label_b);
    Ok(Comparison::Text { lines_before, lines_after, lines_added, lines_removed, patch })
}

/// Row counts per table of two database versions, each copied to a private temporary file and
/// opened read-only and immutable (no lock, no journal, nothing written beside it).
fn sqlite_rows(repo: &Repository, a: &Node, b: &Node, what: &str) -> Result<Vec<TableRows>> {
    let dir = tempfile::Builder::new()
        .prefix("clawback-history-")
        .tempdir()
        .map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    let mut counts = Vec::new();
    for (i, n) in [a, b].into_iter().enumerate() {
        let file = dir.path().join(format!("v{i}.sqlite"));
        let mut out = std::fs::File::create(&file).map_err(|e| Error::io("create", &file, e))?;
        crate::commands::dump::dump_file(repo, n, Path::new(what), &mut out)?;
        drop(out);
        let rows = crate::openclaw::sqlite::table_rows(&file)
            .map_err(|e| Error::Other(format!("reading {what} as a database: {e}")))?;
        counts.push(rows.into_iter().collect::<HashMap<String, u64>>());
    }
    let (ca, cb) = (&counts[0], &counts[1]);
    let mut names: Vec<&String> = ca.keys().chain(cb.keys()).collect();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|t| TableRows { table: t.clone(), rows_before: ca.get(t).copied(), rows_after: cb.get(t).copied() })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_patches() {
        assert_eq!(line_count(b""), 0);
        assert_eq!(line_count(b"a\nb"), 2);
        assert_eq!(line_count(b"a\nb\n"), 2);
        let (p, add, rm) = unified("a\nb\n", "a\nc\n", "x", "y");
        assert_eq!((add, rm), (1, 1));
        assert!(p.contains("-b\n+c\n") && p.starts_with("--- x\n+++ y\n"), "{p}");
        assert!(!is_text(b"a\0b"));
    }

    #[test]
    fn tables_are_counted_in_an_immutable_copy() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("d.sqlite");
        let db = rusqlite::Connection::open(&f).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2); CREATE TABLE u(y);",
        )
        .unwrap();
        drop(db);
        let c = crate::openclaw::sqlite::table_rows(&f).unwrap();
        assert_eq!(c, vec![("t".to_string(), 2), ("u".to_string(), 0)]);
    }
}
