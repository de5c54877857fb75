//! Diff: what changed between two snapshots. Both trees are walked together, merging their sorted
//! entries by name; a folder whose tree id is the same on both sides is skipped without being
//! loaded, so comparing two backups of a large, mostly unchanged home only reads the trees on the
//! paths that changed. On top of the plain lists, an OpenClaw-aware summary names the session
//! transcripts that appeared or grew, the memory files, config and credentials, and the databases
//! that changed, using the snapshots' OpenClaw metadata (state dir, workspaces) when they have it
//! and the shape of the paths otherwise.

use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::Repository;
use serde::Serialize;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How an entry changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Modified,
}

impl Change {
    /// The one-character marker of human output: `+`, `-`, `M`.
    pub fn marker(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
        }
    }
}

/// One changed entry. A type change (file to folder, ...) is a removal then an addition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEntry {
    pub path: PathBuf,
    pub change: Change,
    pub kind: NodeKind,
    /// Size in the first snapshot (files), when the entry is there.
    pub size_before: Option<u64>,
    /// Size in the second snapshot (files), when the entry is there.
    pub size_after: Option<u64>,
    /// Modified: the content (or symlink target) differs.
    pub content_changed: bool,
    /// Modified: permissions, owner or mtime differ.
    pub metadata_changed: bool,
}

/// Counters over the whole diff.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffStats {
    pub files_added: u64,
    pub files_removed: u64,
    pub files_modified: u64,
    pub dirs_added: u64,
    pub dirs_removed: u64,
    pub dirs_modified: u64,
    pub others_added: u64,
    pub others_removed: u64,
    pub others_modified: u64,
    /// Bytes of the files that were added.
    pub bytes_added: u64,
    /// Bytes of the files that were removed.
    pub bytes_removed: u64,
    /// Growth of the modified files that grew.
    pub bytes_grown: u64,
    /// Shrinkage of the modified files that shrank.
    pub bytes_shrunk: u64,
}

/// One file in the OpenClaw summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

/// A session transcript that appeared, grew, shrank or went away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionChange {
    pub path: String,
    /// The agent id (`agents/<id>/sessions/...`), when the path names one.
    pub agent: Option<String>,
    pub change: Change,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
    /// Bytes appended (negative: the transcript was rewritten shorter).
    pub grown: i64,
}

/// What changed, in OpenClaw's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpenclawSummary {
    /// Session transcripts (`agents/<id>/sessions/*.jsonl`).
    pub sessions: Vec<SessionChange>,
    /// `MEMORY.md` and `memory/*.md` in workspaces, `memory/*.sqlite` in the state dir.
    pub memory: Vec<FileChange>,
    /// `openclaw.json`, `credentials/**`, `.env`, `identity/**`, auth profiles.
    pub config: Vec<FileChange>,
    /// SQLite databases (`*.sqlite`, `*.db`, `*.sqlite3`).
    pub databases: Vec<FileChange>,
}

impl OpenclawSummary {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.memory.is_empty() && self.config.is_empty() && self.databases.is_empty()
    }
    pub fn sessions_added(&self) -> usize {
        self.sessions.iter().filter(|s| s.change == Change::Added).count()
    }
    pub fn sessions_grown(&self) -> usize {
        self.sessions.iter().filter(|s| s.change == Change::Modified && s.grown > 0).count()
    }
    /// Bytes appended to transcripts, new ones included.
    pub fn session_bytes_grown(&self) -> u64 {
        self.sessions.iter().filter(|s| s.change != Change::Removed && s.grown > 0).map(|s| s.grown as u64).sum()
    }
}

#[derive(Clone, Debug, Default)]
pub struct DiffResult {
    /// Depth first, in name order.
    pub entries: Vec<DiffEntry>,
    pub stats: DiffStats,
    pub openclaw: OpenclawSummary,
}

/// Compares snapshot `a` (before) with snapshot `b` (after).
pub fn diff(repo: &Repository, a: &Snapshot, b: &Snapshot) -> Result<DiffResult> {
    let mut w = Walker { repo, entries: Vec::new() };
    if a.tree != b.tree {
        let ta = repo.load_tree(&a.tree)?;
        let tb = repo.load_tree(&b.tree)?;
        w.pair(&ta, &tb, Path::new("/"), 0)?;
    }
    let entries = w.entries;
    let stats = stats_of(&entries);
    let layout = Layout::of(&[a, b]);
    let openclaw = summarize(&entries, &layout);
    Ok(DiffResult { entries, stats, openclaw })
}

struct Walker<'a> {
    repo: &'a Repository,
    entries: Vec<DiffEntry>,
}

fn size_of(n: &Node) -> Option<u64> {
    (n.kind == NodeKind::File).then_some(n.size)
}

/// Owner and permissions: what makes a folder "modified" by itself (its mtime moves whenever an
/// entry is added or removed, which the entries themselves already show).
fn same_dir_meta(x: &Node, y: &Node) -> bool {
    x.mode == y.mode && x.uid == y.uid && x.gid == y.gid
}

fn same_meta(x: &Node, y: &Node) -> bool {
    same_dir_meta(x, y) && x.mtime_ns == y.mtime_ns
}

impl Walker<'_> {
    fn pair(&mut self, ta: &Tree, tb: &Tree, at: &Path, depth: usize) -> Result<()> {
        crate::format::tree::check_depth(depth)?;
        let (mut i, mut j) = (0, 0);
        while i < ta.nodes.len() || j < tb.nodes.len() {
            let x = ta.nodes.get(i);
            let y = tb.nodes.get(j);
            let ord = match (x, y) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    let x = x.unwrap();
                    self.one_side(x, &at.join(OsStr::from_bytes(&x.name)), Change::Removed, depth)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let y = y.unwrap();
                    self.one_side(y, &at.join(OsStr::from_bytes(&y.name)), Change::Added, depth)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (x, y) = (x.unwrap(), y.unwrap());
                    self.both(x, y, &at.join(OsStr::from_bytes(&x.name)), depth)?;
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    /// An entry (and everything under it) present on one side only.
    fn one_side(&mut self, n: &Node, path: &Path, change: Change, depth: usize) -> Result<()> {
        let (size_before, size_after) = match change {
            Change::Removed => (size_of(n), None),
            _ => (None, size_of(n)),
        };
        self.entries.push(DiffEntry {
            path: path.to_path_buf(),
            change,
            kind: n.kind,
            size_before,
            size_after,
            content_changed: false,
            metadata_changed: false,
        });
        if let Some(id) = &n.subtree {
            crate::format::tree::check_depth(depth)?;
            let t = self.repo.load_tree(id)?;
            for c in &t.nodes {
                self.one_side(c, &path.join(OsStr::from_bytes(&c.name)), change, depth + 1)?;
            }
        }
        Ok(())
    }

    fn both(&mut self, x: &Node, y: &Node, path: &Path, depth: usize) -> Result<()> {
        if x.kind != y.kind {
            self.one_side(x, path, Change::Removed, depth)?;
            return self.one_side(y, path, Change::Added, depth);
        }
        let (content_changed, metadata_changed) = match x.kind {
            NodeKind::Dir => (false, !same_dir_meta(x, y)),
            NodeKind::File => (x.size != y.size || x.content != y.content, !same_meta(x, y)),
            NodeKind::Symlink => (x.target != y.target, !same_meta(x, y)),
        };
        if content_changed || metadata_changed {
            self.entries.push(DiffEntry {
                path: path.to_path_buf(),
                change: Change::Modified,
                kind: x.kind,
                size_before: size_of(x),
                size_after: size_of(y),
                content_changed,
                metadata_changed,
            });
        }
        if let (Some(sa), Some(sb)) = (&x.subtree, &y.subtree) {
            if sa != sb {
                let ta = self.repo.load_tree(sa)?;
                let tb = self.repo.load_tree(sb)?;
                self.pair(&ta, &tb, path, depth + 1)?;
            }
        }
        Ok(())
    }
}

fn stats_of(entries: &[DiffEntry]) -> DiffStats {
    let mut s = DiffStats::default();
    for e in entries {
        let (added, removed, modified) = match e.kind {
            NodeKind::File => (&mut s.files_added, &mut s.files_removed, &mut s.files_modified),
            NodeKind::Dir => (&mut s.dirs_added, &mut s.dirs_removed, &mut s.dirs_modified),
            NodeKind::Symlink => (&mut s.others_added, &mut s.others_removed, &mut s.others_modified),
        };
        match e.change {
            Change::Added => {
                *added += 1;
                s.bytes_added += e.size_after.unwrap_or(0);
            }
            Change::Removed => {
                *removed += 1;
                s.bytes_removed += e.size_before.unwrap_or(0);
            }
            Change::Modified => {
                *modified += 1;
                let (b, a) = (e.size_before.unwrap_or(0), e.size_after.unwrap_or(0));
                if a >= b {
                    s.bytes_grown += a - b;
                } else {
                    s.bytes_shrunk += b - a;
                }
            }
        }
    }
    s
}

/// Where OpenClaw's state and workspaces were, from the snapshots' metadata.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub state_dirs: Vec<PathBuf>,
    pub workspaces: Vec<PathBuf>,
    pub config_paths: Vec<PathBuf>,
}

impl Layout {
    pub fn of(snaps: &[&Snapshot]) -> Layout {
        let mut l = Layout::default();
        for s in snaps {
            if let Some(m) = &s.openclaw {
                if !m.state_dir.is_empty() {
                    l.state_dirs.push(PathBuf::from(&m.state_dir));
                }
                l.workspaces.extend(m.workspaces.iter().filter(|w| !w.is_empty()).map(PathBuf::from));
                l.config_paths.extend(m.config_path.iter().map(PathBuf::from));
            }
        }
        for v in [&mut l.state_dirs, &mut l.workspaces, &mut l.config_paths] {
            v.sort();
            v.dedup();
        }
        l
    }
}

/// What a file is to OpenClaw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Class {
    /// A session transcript, with the agent id when the path names one.
    pub session: Option<Option<String>>,
    pub memory: bool,
    pub config: bool,
    pub database: bool,
}

/// Names of state dirs recognised without metadata: `.openclaw`, `.openclaw-<profile>`, and the
/// legacy `.clawdbot` and `.moltbot`.
fn looks_like_state_dir(name: &[u8]) -> bool {
    name == b".openclaw" || name.starts_with(b".openclaw-") || name == b".clawdbot" || name == b".moltbot"
}

fn is_workspace_dir_name(name: &[u8]) -> bool {
    name == b"workspace" || name.starts_with(b"workspace-")
}

fn ext_is(name: &[u8], exts: &[&[u8]]) -> bool {
    exts.iter().any(|e| name.len() > e.len() && name.ends_with(e))
}

fn is_database_name(name: &[u8]) -> bool {
    ext_is(name, &[b".sqlite", b".db", b".sqlite3"])
}

/// Classifies a file at `path` given where the state dir and workspaces are.
pub fn classify(path: &Path, layout: &Layout) -> Class {
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    let mut c = Class { database: is_database_name(name), ..Class::default() };
    if layout.config_paths.iter().any(|p| p == path) {
        c.config = true;
    }
    // The most specific known root holding the path decides how the rest is read.
    let mut best: Option<(&Path, bool)> = None;
    for (roots, is_ws) in [(&layout.state_dirs, false), (&layout.workspaces, true)] {
        for r in roots.iter() {
            if path.starts_with(r) && best.is_none_or(|(b, _)| r.as_os_str().len() > b.as_os_str().len()) {
                best = Some((r.as_path(), is_ws));
            }
        }
    }
    let comps: Vec<&[u8]> = path.components().skip(1).map(|c| c.as_os_str().as_bytes()).collect();
    match best {
        Some((root, is_ws)) => {
            let rel: Vec<&[u8]> =
                path.strip_prefix(root).unwrap().components().map(|c| c.as_os_str().as_bytes()).collect();
            if is_ws {
                workspace_rules(&rel, &mut c);
            } else {
                state_rules(&rel, &mut c);
            }
        }
        None => {
            // No metadata covers the path: find a state dir by its name.
            match comps.iter().rposition(|n| looks_like_state_dir(n)) {
                Some(i) => state_rules(&comps[i + 1..], &mut c),
                None => {
                    if name == b"MEMORY.md" || name == b"memory.md" {
                        c.memory = true;
                    }
                    if comps.len() >= 2 && comps[comps.len() - 2] == b"memory" && ext_is(name, &[b".md", b".sqlite"]) {
                        c.memory = true;
                    }
                    if name == b"openclaw.json" {
                        c.config = true;
                    }
                    session_rule(&comps, &mut c);
                }
            }
        }
    }
    c
}

/// `agents/<id>/sessions/**/*.jsonl` anywhere in `rel`, or a top-level `sessions/**/*.jsonl`
/// (the layout before agents had their own folders).
fn session_rule(rel: &[&[u8]], c: &mut Class) {
    let Some(name) = rel.last() else { return };
    if !ext_is(name, &[b".jsonl"]) {
        return;
    }
    for i in 0..rel.len().saturating_sub(3) {
        if rel[i] == b"agents" && rel[i + 2] == b"sessions" {
            c.session = Some(Some(String::from_utf8_lossy(rel[i + 1]).into_owned()));
            return;
        }
    }
    if rel.len() >= 2 && rel[0] == b"sessions" {
        c.session = Some(None);
    }
}

fn state_rules(rel: &[&[u8]], c: &mut Class) {
    let Some(&first) = rel.first() else { return };
    let name = rel[rel.len() - 1];
    if rel.len() > 1 && is_workspace_dir_name(first) {
        return workspace_rules(&rel[1..], c);
    }
    if rel.len() == 1 && (name == b"openclaw.json" || name == b".env" || name == b"clawback.json") {
        c.config = true;
    }
    if rel.len() > 1 && (first == b"credentials" || first == b"identity") {
        c.config = true;
    }
    if name == b"auth-profiles.json" || name == b"auth.json" {
        c.config = true;
    }
    if rel.len() >= 2 && first == b"memory" && ext_is(name, &[b".sqlite", b".md"]) {
        c.memory = true;
    }
    session_rule(rel, c);
}

fn workspace_rules(rel: &[&[u8]], c: &mut Class) {
    let Some(&name) = rel.last() else { return };
    if rel.len() == 1 && (name == b"MEMORY.md" || name == b"memory.md") {
        c.memory = true;
    }
    if rel.len() >= 2 && rel[0] == b"memory" && ext_is(name, &[b".md", b".sqlite"]) {
        c.memory = true;
    }
}

fn summarize(entries: &[DiffEntry], layout: &Layout) -> OpenclawSummary {
    let mut s = OpenclawSummary::default();
    for e in entries.iter().filter(|e| e.kind == NodeKind::File) {
        let c = classify(&e.path, layout);
        let path = e.path.to_string_lossy().into_owned();
        let fc = || FileChange {
            path: path.clone(),
            change: e.change,
            size_before: e.size_before,
            size_after: e.size_after,
        };
        if let Some(agent) = c.session {
            // A transcript whose metadata alone changed did not grow.
            if e.change != Change::Modified || e.content_changed {
                s.sessions.push(SessionChange {
                    path: path.clone(),
                    agent,
                    change: e.change,
                    size_before: e.size_before,
                    size_after: e.size_after,
                    grown: e.size_after.unwrap_or(0) as i64 - e.size_before.unwrap_or(0) as i64,
                });
            }
        }
        let content = e.change != Change::Modified || e.content_changed;
        if c.memory && content {
            s.memory.push(fc());
        }
        if c.config {
            s.config.push(fc());
        }
        if c.database && content {
            s.databases.push(fc());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            state_dirs: vec!["/home/u/.openclaw".into()],
            workspaces: vec!["/home/u/.openclaw/workspace".into(), "/home/u/projects/ws".into()],
            config_paths: vec!["/etc/openclaw/openclaw.json".into()],
        }
    }

    fn class(p: &str) -> Class {
        classify(Path::new(p), &layout())
    }

    #[test]
    fn sessions_are_found_by_layout_and_by_shape() {
        assert_eq!(class("/home/u/.openclaw/agents/main/sessions/abc.jsonl").session, Some(Some("main".into())));
        assert_eq!(class("/home/u/.openclaw/agents/ops/sessions/old/x.jsonl").session, Some(Some("ops".into())));
        assert_eq!(class("/home/u/.openclaw/sessions/x.jsonl").session, Some(None));
        assert_eq!(class("/home/u/.openclaw/agents/main/sessions/sessions.json").session, None);
        assert_eq!(class("/home/u/.openclaw/logs/gateway.jsonl").session, None);
        // No metadata: a state dir is recognised by its name, or the agents/<id>/sessions shape.
        let none = Layout::default();
        let c = classify(Path::new("/root/.openclaw-dev/agents/a1/sessions/s.jsonl"), &none);
        assert_eq!(c.session, Some(Some("a1".into())));
        let c = classify(Path::new("/srv/backup/agents/a2/sessions/s.jsonl"), &none);
        assert_eq!(c.session, Some(Some("a2".into())));
        // Inside a workspace, a file shaped like a transcript is the user's, not OpenClaw's.
        assert_eq!(class("/home/u/projects/ws/agents/x/sessions/s.jsonl").session, None);
    }

    #[test]
    fn memory_files() {
        assert!(class("/home/u/.openclaw/workspace/MEMORY.md").memory);
        assert!(class("/home/u/.openclaw/workspace/memory/2026-03-01.md").memory);
        assert!(class("/home/u/projects/ws/MEMORY.md").memory);
        assert!(class("/home/u/projects/ws/memory/notes/a.md").memory);
        assert!(class("/home/u/.openclaw/memory/main.sqlite").memory);
        assert!(class("/home/u/.openclaw/workspace-research/memory/x.md").memory, "workspace-<id> by name");
        assert!(!class("/home/u/projects/ws/docs/MEMORY.md").memory, "only at a workspace's root");
        assert!(!class("/home/u/projects/ws/README.md").memory);
        let none = Layout::default();
        assert!(classify(Path::new("/x/ws/MEMORY.md"), &none).memory);
        assert!(classify(Path::new("/x/ws/memory/a.md"), &none).memory);
        assert!(!classify(Path::new("/x/ws/notes/a.md"), &none).memory);
    }

    #[test]
    fn config_and_credentials() {
        assert!(class("/home/u/.openclaw/openclaw.json").config);
        assert!(class("/etc/openclaw/openclaw.json").config, "config path from metadata");
        assert!(class("/home/u/.openclaw/credentials/whatsapp/creds.json").config);
        assert!(class("/home/u/.openclaw/.env").config);
        assert!(class("/home/u/.openclaw/identity/device.json").config);
        assert!(class("/home/u/.openclaw/agents/main/agent/auth-profiles.json").config);
        assert!(!class("/home/u/.openclaw/workspace/.env").config);
        assert!(!class("/home/u/.openclaw/cron/jobs.json").config);
        assert!(!class("/home/u/.openclaw/credentials").config, "the folder itself is not a file");
    }

    #[test]
    fn databases_by_name() {
        assert!(class("/home/u/.openclaw/state/openclaw.sqlite").database);
        assert!(class("/home/u/.openclaw/agents/main/agent/openclaw-agent.sqlite").database);
        assert!(class("/home/u/projects/ws/data/app.db").database);
        assert!(class("/tmp/x.sqlite3").database);
        assert!(!class("/tmp/x.sqlite-wal").database);
        assert!(!class("/tmp/.db").database);
        let c = class("/home/u/.openclaw/memory/main.sqlite");
        assert!(c.database && c.memory);
    }

    fn entry(p: &str, change: Change, before: Option<u64>, after: Option<u64>) -> DiffEntry {
        DiffEntry {
            path: p.into(),
            change,
            kind: NodeKind::File,
            size_before: before,
            size_after: after,
            content_changed: change == Change::Modified,
            metadata_changed: false,
        }
    }

    #[test]
    fn summary_counts_growth_and_stats() {
        let entries = vec![
            entry("/home/u/.openclaw/agents/main/sessions/a.jsonl", Change::Modified, Some(100), Some(250)),
            entry("/home/u/.openclaw/agents/main/sessions/b.jsonl", Change::Added, None, Some(40)),
            entry("/home/u/.openclaw/agents/main/sessions/c.jsonl", Change::Removed, Some(7), None),
            entry("/home/u/.openclaw/workspace/MEMORY.md", Change::Modified, Some(10), Some(5)),
            entry("/home/u/.openclaw/openclaw.json", Change::Modified, Some(1), Some(1)),
            entry("/home/u/.openclaw/state/openclaw.sqlite", Change::Modified, Some(4096), Some(8192)),
        ];
        let s = summarize(&entries, &layout());
        assert_eq!(s.sessions.len(), 3);
        assert_eq!(s.sessions_added(), 1);
        assert_eq!(s.sessions_grown(), 1);
        assert_eq!(s.session_bytes_grown(), 150 + 40);
        assert_eq!(s.sessions[0].grown, 150);
        assert_eq!(s.memory.len(), 1);
        assert_eq!(s.config.len(), 1);
        assert_eq!(s.databases.len(), 1);
        let st = stats_of(&entries);
        assert_eq!((st.files_added, st.files_removed, st.files_modified), (1, 1, 4));
        assert_eq!((st.bytes_added, st.bytes_removed, st.bytes_grown, st.bytes_shrunk), (40, 7, 150 + 4096, 5));
    }

    #[test]
    fn touched_transcript_is_not_a_grown_session() {
        let mut e = entry("/home/u/.openclaw/agents/main/sessions/a.jsonl", Change::Modified, Some(9), Some(9));
        e.content_changed = false;
        e.metadata_changed = true;
        let s = summarize(&[e], &layout());
        assert!(s.sessions.is_empty());
    }
}
