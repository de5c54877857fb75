//! `find`: which snapshots hold entries matching glob patterns (on the name or the whole path,
//! with optional mtime bounds), or naming a data blob or a tree by id. Every snapshot is searched,
//! but a subtree met again at the same path (the usual case: most of a home is unchanged between
//! two backups) is answered from a memo keyed by its tree id, without loading it again.

use crate::error::{Error, Result};
use crate::format::id::{SnapshotId, TreeId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::repo::Repository;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// What to look for.
pub enum Query {
    /// Entries whose name matches one of `names` or whose absolute path matches one of `paths`,
    /// with an mtime after `newer_ns` and before `older_ns` when given.
    Glob { names: GlobSet, paths: GlobSet, newer_ns: Option<i64>, older_ns: Option<i64> },
    /// Files holding a data blob whose id starts with one of these (lowercase hex) prefixes.
    Blob(Vec<String>),
    /// Folders (or the root) whose tree id starts with one of these prefixes.
    Tree(Vec<String>),
}

impl Query {
    /// A glob query: each pattern without a `/` matches names, one with a `/` whole paths (and,
    /// when it does not start with `/`, at any depth). `names` and `paths` are taken as told.
    pub fn glob(
        patterns: &[String],
        names: &[String],
        paths: &[String],
        newer_ns: Option<i64>,
        older_ns: Option<i64>,
    ) -> Result<Query> {
        let mut nb = GlobSetBuilder::new();
        let mut pb = GlobSetBuilder::new();
        let mut any = false;
        let glob = |p: &str| {
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Usage(format!("bad pattern {p:?}: {e}")))
        };
        for p in patterns.iter().chain(names) {
            if patterns.contains(p) && p.contains('/') {
                continue;
            }
            nb.add(glob(p)?);
            any = true;
        }
        for p in patterns.iter().filter(|p| p.contains('/')).chain(paths) {
            let full = if p.starts_with('/') { p.clone() } else { format!("/**/{p}") };
            pb.add(glob(&full)?);
            any = true;
        }
        if !any {
            return Err(Error::Usage(
                "find needs a pattern: give PATTERN, --name GLOB or --path GLOB (or --blob/--tree ID)".into(),
            ));
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| Error::Usage(format!("bad pattern: {e}")));
        Ok(Query::Glob { names: build(nb)?, paths: build(pb)?, newer_ns, older_ns })
    }

    /// A blob or tree query from id prefixes (at least 4 hex digits each).
    pub fn ids(prefixes: &[String], tree: bool) -> Result<Query> {
        let mut v = Vec::new();
        for p in prefixes {
            if p.len() < 4 || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Usage(format!("invalid id {p:?}: give at least 4 hex digits")));
            }
            v.push(p.to_ascii_lowercase());
        }
        Ok(if tree { Query::Tree(v) } else { Query::Blob(v) })
    }
}

/// One entry found.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: u64,
    pub mtime_ns: i64,
    /// For `--blob`/`--tree`: the id that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The entries one snapshot holds.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotHits {
    pub snapshot: SnapshotId,
    pub time: String,
    pub hostname: String,
    pub tags: Vec<String>,
    pub found: Vec<Found>,
}

#[derive(Debug, Default, Serialize)]
pub struct FindReport {
    /// Only the snapshots with something found, oldest first.
    pub snapshots: Vec<SnapshotHits>,
    pub snapshots_searched: u64,
    /// Trees read (each distinct subtree once per path it sits at).
    pub trees_loaded: u64,
    /// Subtrees answered from the memo instead.
    pub trees_reused: u64,
}

pub fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
    }
}

struct Finder<'a> {
    repo: &'a Repository,
    q: &'a Query,
    memo: HashMap<(TreeId, String), Arc<Vec<Found>>>,
    loaded: u64,
    reused: u64,
}

fn starts(id_hex: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| id_hex.starts_with(p.as_str()))
}

impl Finder<'_> {
    fn hit(&self, n: &Node, path: &str) -> Option<Found> {
        let found = |id: Option<String>| Found {
            path: path.to_string(),
            kind: kind_name(n.kind),
            size: n.size,
            mtime_ns: n.mtime_ns,
            id,
        };
        match self.q {
            Query::Glob { names, paths, newer_ns, older_ns } => {
                let name = n.name_lossy();
                let ok = (names.is_match(&name) || paths.is_match(path))
                    && newer_ns.is_none_or(|t| n.mtime_ns > t)
                    && older_ns.is_none_or(|t| n.mtime_ns < t);
                ok.then(|| found(None))
            }
            Query::Blob(pre) => n.content.iter().map(|c| c.to_hex()).find(|h| starts(h, pre)).map(|h| found(Some(h))),
            Query::Tree(pre) => n.subtree.map(|t| t.to_hex()).filter(|h| starts(h, pre)).map(|h| found(Some(h))),
        }
    }

    /// Everything found in the tree `id`, which sits at `at` (`/` for the root).
    fn tree(&mut self, id: TreeId, at: &str, depth: usize) -> Result<Arc<Vec<Found>>> {
        crate::format::tree::check_depth(depth)?;
        let key = (id, at.to_string());
        if let Some(v) = self.memo.get(&key) {
            self.reused += 1;
            return Ok(v.clone());
        }
        let tree = self.repo.load_tree(&id)?;
        self.loaded += 1;
        let mut out = Vec::new();
        for n in &tree.nodes {
            let p = format!("{}/{}", at.trim_end_matches('/'), n.name_lossy());
            if let Some(f) = self.hit(n, &p) {
                out.push(f);
            }
            if let Some(sub) = n.subtree {
                out.extend(self.tree(sub, &p, depth + 1)?.iter().cloned());
            }
        }
        let v = Arc::new(out);
        self.memo.insert(key, v.clone());
        Ok(v)
    }
}

/// Searches `snaps` (oldest first) for `q`.
pub fn find(repo: &Repository, snaps: &[(SnapshotId, Snapshot)], q: &Query) -> Result<FindReport> {
    let mut f = Finder { repo, q, memo: HashMap::new(), loaded: 0, reused: 0 };
    let mut report = FindReport::default();
    for (id, s) in snaps {
        report.snapshots_searched += 1;
        let mut found = Vec::new();
        if let Query::Tree(pre) = q {
            let h = s.tree.to_hex();
            if starts(&h, pre) {
                found.push(Found { path: "/".into(), kind: "dir", size: 0, mtime_ns: 0, id: Some(h) });
            }
        }
        found.extend(f.tree(s.tree, "/", 0)?.iter().cloned());
        if !found.is_empty() {
            report.snapshots.push(SnapshotHits {
                snapshot: *id,
                time: s.time.clone(),
                hostname: s.hostname.clone(),
                tags: s.tags.clone(),
                found,
            });
        }
    }
    report.trees_loaded = f.loaded;
    report.trees_reused = f.reused;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_of(q: &Query, name: &str, path: &str) -> bool {
        match q {
            Query::Glob { names, paths, .. } => names.is_match(name) || paths.is_match(path),
            _ => unreachable!(),
        }
    }

    #[test]
    fn patterns_with_a_slash_match_paths_and_others_names() {
        let q = Query::glob(&["*.jsonl".into(), "workspace/MEMORY.md".into()], &[], &[], None, None).unwrap();
        assert!(names_of(&q, "a.jsonl", "/h/.openclaw/agents/main/sessions/a.jsonl"));
        assert!(names_of(&q, "MEMORY.md", "/h/.openclaw/workspace/MEMORY.md"));
        assert!(!names_of(&q, "MEMORY.md", "/h/.openclaw/other/MEMORY.md"));
        let q = Query::glob(&[], &[], &["/h/*/x".into()], None, None).unwrap();
        assert!(names_of(&q, "x", "/h/a/x"));
        assert!(!names_of(&q, "x", "/h/a/b/x"), "* does not cross a /");
        assert!(Query::glob(&[], &[], &[], None, None).is_err());
        assert!(Query::ids(&["abc".into()], true).is_err());
    }
}
