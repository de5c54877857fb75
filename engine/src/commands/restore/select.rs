//! What a restore selects: `--only` roots (with what is carved out of them, and the parts of
//! OpenClaw's state they name), include and exclude patterns, and the plan of entries.

use super::*;
use crate::openclaw::parts::{self, Part};
use crate::openclaw::rows::{self, RowKind, RowSet};

/// One entry to restore, with its path relative to the target.
pub struct Item {
    pub rel: PathBuf,
    pub node: Node,
    /// The entry itself is selected; false for a folder listed only because selected entries
    /// lie below it (an ancestor of an `only` root, or of an included path).
    pub selected: bool,
}

pub struct Selection {
    includes: Option<Gitignore>,
    excludes: Gitignore,
    roots: Vec<PathBuf>,
    /// Carved out of the roots: paths at or below one are never selected, unless a root lies
    /// deeper inside it (another agent's workspace nested in the one restored).
    except: Vec<PathBuf>,
}

/// What the include patterns said for the nearest folder above an entry that they matched (`None`:
/// none did), passed down a walk of the trees.
pub(super) type Inherited = Option<bool>;

/// Where a path lies relative to the `only` roots.
#[derive(PartialEq, Eq)]
enum Place {
    Inside,
    Above,
    Outside,
}

impl Selection {
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self> {
        Ok(Selection {
            includes: if includes.is_empty() { None } else { Some(build_excludes(includes)?) },
            excludes: build_excludes(excludes)?,
            roots: Vec::new(),
            except: Vec::new(),
        })
    }

    /// Restricts the selection to paths at or below `roots` (absolute); empty: no restriction.
    pub fn with_roots(mut self, roots: Vec<PathBuf>) -> Self {
        self.roots = roots;
        self
    }

    /// Carves `except` (absolute) out of the roots (see [`Only::except`]).
    pub fn with_except(mut self, except: Vec<PathBuf>) -> Self {
        self.except = except;
        self
    }

    /// Whether a carve-out covers `abs`: the deepest of the roots and carve-outs above it is a
    /// carve-out. (A root may still lie below it: the walk passes through, selecting nothing.)
    pub(super) fn carved_out(&self, abs: &Path) -> bool {
        let depth = |p: &PathBuf| p.components().count();
        let Some(e) = self.except.iter().filter(|e| abs.starts_with(e)).map(depth).max() else { return false };
        !self.roots.iter().any(|r| abs.starts_with(r) && depth(r) >= e)
    }

    pub(super) fn excluded(&self, abs: &Path, is_dir: bool) -> bool {
        self.excludes.matched(abs, is_dir).is_ignore()
    }
    fn included(&self, abs: &Path, is_dir: bool) -> bool {
        match &self.includes {
            None => true,
            Some(g) => g.matched_path_or_any_parents(abs, is_dir).is_ignore(),
        }
    }
    fn place(&self, abs: &Path) -> Place {
        let inside = if self.roots.is_empty() { true } else { self.roots.iter().any(|r| abs.starts_with(r)) };
        if inside && !self.carved_out(abs) {
            Place::Inside
        } else if self.roots.iter().any(|r| r.starts_with(abs)) {
            Place::Above
        } else {
            Place::Outside
        }
    }
    /// Whether a walk of the snapshot's trees visits an entry: `None` when it and everything below
    /// it are left out, else whether the entry itself is selected (a folder that is not may still
    /// hold selected entries) and what its folder's entries inherit. `above`: what the entry's
    /// folder passed down ([`Inherited`]).
    pub(super) fn visit(&self, abs: &Path, is_dir: bool, above: Inherited) -> Option<(bool, Inherited)> {
        let place = self.place(abs);
        if place == Place::Outside || (place == Place::Above && !is_dir) || self.excluded(abs, is_dir) {
            return None;
        }
        // The entry's own match decides, else the nearest folder above that matched: what
        // `matched_path_or_any_parents` finds, with one match per entry instead of one per folder.
        let (included, below) = match &self.includes {
            None => (true, None),
            Some(g) => match g.matched(abs, is_dir) {
                ignore::Match::Ignore(_) => (true, Some(true)),
                ignore::Match::Whitelist(_) => (false, Some(false)),
                ignore::Match::None => (above == Some(true), above),
            },
        };
        Some((place == Place::Inside && included, below))
    }

    /// Whether an entry (not an ancestor) is selected, ignoring excludes of its ancestors.
    pub(super) fn selects(&self, abs: &Path, is_dir: bool) -> bool {
        self.place(abs) == Place::Inside && !self.excluded(abs, is_dir) && self.included(abs, is_dir)
    }
}

/// What `--only` values select (see [`resolve_only`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Only {
    /// Files and folders restored whole, none inside another unless it lies in a carve-out.
    pub roots: Vec<PathBuf>,
    /// Carved out of the roots: what lies in an agent's folders but belongs to another agent (a
    /// workspace nested in the one restored, another agent's agent dir).
    pub except: Vec<PathBuf>,
    /// Units inside shared databases, restored row by row.
    pub rows: Vec<RowSet>,
    /// The values given that name no part (`state`, `agent:ID`, paths), as given.
    pub named: Vec<String>,
    /// The files, folders and databases the parts resolved to. An undo names those its safety
    /// snapshot holds: a database whose rows changed goes back whole, as it was just before.
    pub part_paths: Vec<PathBuf>,
}

/// Resolves `--only` values against a snapshot: `state`, `workspace` (every workspace),
/// `agent:<id>`, an absolute path, or a part of OpenClaw's state
/// ([`crate::openclaw::parts::Part`]) found in the layout the snapshot holds.
pub fn resolve_only(repo: &Repository, snap: &Snapshot, only: &[String]) -> Result<Only> {
    let files = SnapFiles { repo, snap };
    resolve(snap, only, &mut |part, o| part_selection(&files, part, o))
}

/// What one part selects: files and folders, and row sets.
pub(super) type PartSelection = (Vec<PathBuf>, Vec<RowSet>);

pub(super) fn resolve(
    snap: &Snapshot,
    only: &[String],
    parts: &mut dyn FnMut(&Part, &str) -> Result<PartSelection>,
) -> Result<Only> {
    let mut out = Only::default();
    // Per value: the roots it named and its carve-outs, which apply against the other values' roots.
    let mut asked: Vec<(Vec<PathBuf>, Vec<PathBuf>)> = Vec::new();
    for o in only {
        let o = o.trim();
        if let Some(part) = Part::parse(o).map_err(Error::Usage)? {
            let (paths, rows) = parts(&part, o)?;
            out.part_paths.extend(paths.iter().chain(rows.iter().map(|r| &r.db)).cloned());
            asked.push((paths.clone(), Vec::new()));
            out.roots.extend(paths);
            out.rows.extend(rows);
            continue;
        }
        let (mine, except) = only_root(snap, o)?;
        let held: Vec<PathBuf> = mine.iter().filter(|r| holds(snap, r)).cloned().collect();
        if held.is_empty() {
            let want: Vec<String> = mine.iter().map(|r| r.display().to_string()).collect();
            let hint =
                snap.openclaw.as_ref().map(|m| format!(", or `latest --path {}`", m.state_dir)).unwrap_or_default();
            return Err(Error::Usage(format!(
                "--only {o}: this snapshot ({}, of {}) does not hold {}; pick one that does (`clawback snapshots`{hint})",
                snap.time,
                snap.paths.join(" "),
                want.join(" ")
            )));
        }
        out.named.push(o.to_string());
        asked.push((mine, except));
        out.roots.extend(held);
    }
    // A carve-out never hides what another value asked for: it goes when another value's root holds
    // it (`agent:a agent:b` with b's workspace in a's, `state agent:a`); a root deeper inside it
    // is reached anyway (the deepest of roots and carve-outs decides).
    for (i, (_, except)) in asked.iter().enumerate() {
        for e in except {
            let others = asked.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, (r, _))| r);
            if !others.clone().any(|r| e.starts_with(r)) {
                out.except.push(e.clone());
            }
        }
    }
    out.except.sort();
    out.except.dedup();
    // None inside another, except one inside a carve-out, which the one above it does not reach.
    let all = std::mem::take(&mut out.roots);
    out.roots = minimal_roots(all.clone());
    for r in all {
        if out.except.iter().any(|e| r.starts_with(e)) && !out.roots.contains(&r) {
            out.roots.push(r);
        }
    }
    out.roots.sort();
    // A database restored whole needs no rows restored into it; the same units asked twice merge.
    let sel = Selection::new(&[], &[])?.with_roots(out.roots.clone()).with_except(out.except.clone());
    let mut rows: Vec<RowSet> = Vec::new();
    for r in std::mem::take(&mut out.rows) {
        if !out.roots.is_empty() && sel.selects(&r.db, false) {
            continue;
        }
        match rows.iter_mut().find(|x| x.db == r.db && x.kind == r.kind) {
            Some(x) if x.keys.is_empty() || r.keys.is_empty() => x.keys.clear(),
            Some(x) => {
                x.keys.extend(r.keys);
                x.keys.sort();
                x.keys.dedup();
            }
            None => rows.push(r),
        }
    }
    out.rows = rows;
    out.named.dedup();
    out.part_paths = minimal_roots(std::mem::take(&mut out.part_paths));
    Ok(out)
}

/// Reading what a snapshot holds, for resolving parts.
struct SnapFiles<'a> {
    repo: &'a Repository,
    snap: &'a Snapshot,
}

impl SnapFiles<'_> {
    /// The node at `path`, if the snapshot has one.
    fn node(&self, path: &Path) -> Result<Option<Node>> {
        match crate::commands::dump::find(self.repo, self.snap, path) {
            Ok(crate::commands::dump::Found::Node(n)) => Ok(Some(n)),
            Ok(crate::commands::dump::Found::Root(_)) => Ok(None),
            Err(Error::Usage(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A file's content (at most `limit` bytes; more is an error).
    fn read(&self, path: &Path, node: &Node, limit: u64) -> Result<Vec<u8>> {
        if node.size > limit {
            return Err(Error::Usage(format!("{} is larger than {} MiB in the snapshot", path.display(), limit >> 20)));
        }
        let mut out = Vec::new();
        crate::commands::dump::dump_file(self.repo, node, path, &mut out)?;
        Ok(out)
    }

    /// The names in a folder of the snapshot.
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let Some(n) = self.node(dir)? else { return Ok(Vec::new()) };
        let Some(sub) = &n.subtree else { return Ok(Vec::new()) };
        let t = self.repo.load_tree(sub)?;
        Ok(t.nodes.iter().map(|n| String::from_utf8_lossy(&n.name).into_owned()).collect())
    }
}

/// Resolves a part against what the snapshot holds: the part's files and folders it has, and its
/// row sets whose database it has. Nothing at all is an error naming where the part was looked for.
fn part_selection(files: &SnapFiles, part: &Part, o: &str) -> Result<PartSelection> {
    let snap = files.snap;
    let meta = snap.openclaw.as_ref().ok_or_else(|| no_meta(o))?;
    let located = parts::locate(part, meta);
    let mut paths = Vec::new();
    for p in &located.paths {
        if files.node(p)?.is_some() {
            paths.push(p.clone());
        }
    }
    let mut rows = Vec::new();
    for r in &located.rows {
        if files.node(&r.db)?.is_some_and(|n| n.kind == NodeKind::File) {
            rows.push(r.clone());
        }
    }
    if let Part::Session { agent, id } = part {
        return session_selection(files, meta, agent, id, rows, o);
    }
    if paths.is_empty() && rows.is_empty() {
        let looked: Vec<String> =
            located.paths.iter().chain(located.rows.iter().map(|r| &r.db)).map(|p| p.display().to_string()).collect();
        return Err(Error::Usage(format!(
            "--only {o}: this snapshot ({}) holds no {} (looked for {}); pick one that does (`clawback snapshots`)",
            snap.time,
            part.what(),
            looked.join(", ")
        )));
    }
    Ok((paths, rows))
}

/// Cap on a `sessions.json` read to look a session up.
const MAX_INDEX: u64 = 256 << 20;

/// One session: its rows in the agent's database (SQLite era), or its transcript files and its
/// `sessions.json` entry (file era), looked up by session id or key.
fn session_selection(
    files: &SnapFiles,
    meta: &OpenclawMeta,
    agent: &str,
    id: &str,
    dbs: Vec<RowSet>,
    o: &str,
) -> Result<PartSelection> {
    if !meta.agents.iter().any(|a| a.id == agent) {
        let known: Vec<&str> = meta.agents.iter().map(|a| a.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "--only {o}: no agent `{agent}` in this snapshot; its agents are: {}",
            if known.is_empty() { "(none recorded)".to_string() } else { known.join(", ") }
        )));
    }
    let tmp = crate::openclaw::sqlite::TempDir::new();
    let mut rows = Vec::new();
    let mut paths = Vec::new();
    let mut known: Vec<String> = Vec::new();
    for mut r in dbs {
        let node = files.node(&r.db)?.expect("kept because the snapshot has it");
        let image = tmp.file().map_err(Error::Other)?;
        let mut f = File::create(&image).ctx("write", &image)?;
        crate::commands::dump::dump_file(files.repo, &node, &r.db, &mut f)?;
        drop(f);
        if !rows::has_table(&image, "session_nodes")? {
            continue;
        }
        let keys = rows::find_sessions(&image, id)?;
        if keys.is_empty() {
            known.extend(rows::list_sessions(&image, 10)?.into_iter().map(|(sid, key)| format!("{sid} ({key})")));
            continue;
        }
        r.keys = keys;
        rows.push(r);
    }
    // File era: the entry in sessions.json and the transcripts named after the session id.
    let dir = parts::sessions_dir(meta, agent);
    let index_path = dir.join("sessions.json");
    let names = files.list(&dir)?;
    let mut sids: Vec<String> = Vec::new();
    if let Some(node) = files.node(&index_path)?.filter(|n| n.kind == NodeKind::File) {
        let index: serde_json::Value =
            serde_json::from_slice(&files.read(&index_path, &node, MAX_INDEX)?).unwrap_or(serde_json::Value::Null);
        let keys = rows::find_entries(&index, id);
        for k in &keys {
            if let Some(sid) = index[k].get("sessionId").and_then(serde_json::Value::as_str) {
                sids.push(sid.to_string());
            }
            if let Some(f) = index[k].get("sessionFile").and_then(serde_json::Value::as_str) {
                if let Some(name) = Path::new(f).file_name() {
                    paths.push(dir.join(name));
                }
            }
        }
        if keys.is_empty() {
            if let serde_json::Value::Object(o) = &index {
                known.extend(o.iter().take(10).map(|(k, v)| {
                    format!("{} ({k})", v.get("sessionId").and_then(serde_json::Value::as_str).unwrap_or("?"))
                }));
            }
        } else {
            rows.push(RowSet {
                db: index_path.clone(),
                kind: RowKind::SessionEntry,
                keys,
                within: Vec::new(),
                files_dir: dir.clone(),
            });
        }
    }
    if sids.is_empty() && names.iter().any(|n| n == &format!("{id}.jsonl")) {
        sids.push(id.to_string());
    }
    for sid in &sids {
        // `<id>.jsonl` and its topic transcripts `<id>-topic-<n>.jsonl`.
        for n in &names {
            if n == &format!("{sid}.jsonl") || (n.starts_with(&format!("{sid}-topic-")) && n.ends_with(".jsonl")) {
                paths.push(dir.join(n));
            }
        }
    }
    paths.sort();
    paths.dedup();
    let mut held = Vec::new();
    for p in paths {
        if files.node(&p)?.is_some() {
            held.push(p);
        }
    }
    if held.is_empty() && rows.is_empty() {
        known.sort();
        known.dedup();
        return Err(Error::Usage(format!(
            "--only {o}: agent {agent} has no session {id} in this snapshot ({}); {}",
            files.snap.time,
            if known.is_empty() {
                "it holds no sessions of that agent".to_string()
            } else {
                format!("its sessions (id (key)): {}", known.join(", "))
            }
        )));
    }
    Ok((held, rows))
}

fn no_meta(what: &str) -> Error {
    Error::Usage(format!(
        "--only {what}: this snapshot has no OpenClaw metadata (it was not made by a default \
         `clawback backup` of an OpenClaw install); select paths with --include PATTERN or \
         --only /absolute/path instead"
    ))
}

/// Whether the snapshot backed up `root` or something inside it.
fn holds(snap: &Snapshot, root: &Path) -> bool {
    snap.paths.iter().any(|p| root.starts_with(p) || Path::new(p).starts_with(root))
}

/// The absolute roots one `--only` value (not a part) names, and what is carved out of them.
fn only_root(snap: &Snapshot, o: &str) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut out: Vec<PathBuf> = Vec::new();
    if o.starts_with('/') {
        return Ok((vec![absolute_clean(Path::new(o))?], Vec::new()));
    }
    let meta = |what: &str| -> Result<&OpenclawMeta> { snap.openclaw.as_ref().ok_or_else(|| no_meta(what)) };
    let p = |s: &str| absolute_clean(Path::new(s));
    let mut except = Vec::new();
    match o {
        "state" => out.push(p(&meta(o)?.state_dir)?),
        "workspace" | "workspaces" => {
            let m = meta(o)?;
            let mut ws: Vec<&str> = m.workspaces.iter().map(String::as_str).collect();
            ws.extend(m.agents.iter().map(|a| a.workspace.as_str()));
            if ws.is_empty() {
                return Err(Error::Usage("--only workspace: the snapshot records no workspace".into()));
            }
            for w in ws {
                out.push(p(w)?);
            }
        }
        _ => {
            let Some(raw) = o.strip_prefix("agent:") else {
                return Err(Error::Usage(format!("--only {o:?}: expected {}", parts::ONLY_VALUES)));
            };
            let m = meta(o)?;
            let id = crate::openclaw::paths::normalize_agent_id(raw);
            let Some(a) = m.agents.iter().find(|a| a.id == id) else {
                let known: Vec<&str> = m.agents.iter().map(|a| a.id.as_str()).collect();
                return Err(Error::Usage(format!(
                    "--only agent:{raw}: no agent `{id}` in this snapshot; its agents are: {}",
                    if known.is_empty() { "(none recorded)".to_string() } else { known.join(", ") }
                )));
            };
            let agents_dir = p(&m.state_dir)?.join("agents");
            out.push(agents_dir.join(&a.id));
            if !a.agent_dir.is_empty() {
                out.push(p(&a.agent_dir)?);
            }
            if !a.workspace.is_empty() {
                out.push(p(&a.workspace)?);
            }
            // Another agent's folders inside this one's (`agents add --role` nests a workspace in
            // the default agent's) belong to that agent: never restored or deleted as this one's.
            for other in m.agents.iter().filter(|b| b.id != a.id) {
                let mut theirs = vec![agents_dir.join(&other.id)];
                for s in [&other.agent_dir, &other.workspace] {
                    if !s.is_empty() {
                        theirs.push(p(s)?);
                    }
                }
                for t in theirs {
                    if !out.contains(&t) && out.iter().any(|r| t.starts_with(r)) {
                        except.push(t);
                    }
                }
            }
        }
    }
    Ok((out, except))
}

/// Sorted, without duplicates or paths inside another one.
pub(super) fn minimal_roots(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    v.sort();
    v.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in v {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

/// Walks the snapshot's trees and lists what the selection restores, folders before their content.
pub fn plan(repo: &Repository, snap: &Snapshot, sel: &Selection) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let root = repo.load_tree(&snap.tree)?;
    plan_tree(repo, &root.nodes, Path::new(""), sel, None, &mut out, 0)?;
    Ok(out)
}

fn plan_tree(
    repo: &Repository,
    nodes: &[Node],
    rel: &Path,
    sel: &Selection,
    above: Inherited,
    out: &mut Vec<Item>,
    depth: usize,
) -> Result<bool> {
    crate::format::tree::check_depth(depth)?;
    let mut any = false;
    for n in nodes {
        Node::check_name(&n.name)?;
        let r = rel.join(OsStr::from_bytes(&n.name));
        let abs = Path::new("/").join(&r);
        let is_dir = n.kind == NodeKind::Dir;
        let Some((selected, below)) = sel.visit(&abs, is_dir, above) else { continue };
        if is_dir {
            let pos = out.len();
            out.push(Item { rel: r.clone(), node: n.clone(), selected });
            let sub = repo.load_tree(n.subtree.as_ref().expect("validated"))?;
            let inner = plan_tree(repo, &sub.nodes, &r, sel, below, out, depth + 1)?;
            if inner || selected {
                any = true;
            } else {
                out.remove(pos);
            }
        } else if selected {
            out.push(Item { rel: r, node: n.clone(), selected });
            any = true;
        }
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_passed_down_a_walk_decide_as_matching_every_folder_above() {
        let patterns = ["/h/ws", "*.md", "!/h/ws/tmp", "/h/a/**/keep", "!*.skip.md"];
        let sel = Selection::new(&patterns.map(String::from), &[]).unwrap();
        let entries = [
            ("/h", true),
            ("/h/ws", true),
            ("/h/ws/x.txt", false),
            ("/h/ws/tmp", true),
            ("/h/ws/tmp/y", false),
            ("/h/ws/tmp/z.md", false),
            ("/h/ws/tmp/deeper", true),
            ("/h/ws/tmp/deeper/w", false),
            ("/h/b", true),
            ("/h/b/n.md", false),
            ("/h/b/n.skip.md", false),
            ("/h/b/o.txt", false),
            ("/h/a", true),
            ("/h/a/q", true),
            ("/h/a/q/keep", true),
            ("/h/a/q/keep/f", false),
            ("/h/a/q/other", false),
        ];
        let mut passed: HashMap<PathBuf, Inherited> = HashMap::new();
        let mut selected = Vec::new();
        for (p, is_dir) in entries {
            let p = Path::new(p);
            let above = passed.get(p.parent().unwrap()).copied().flatten();
            let (sel_now, below) = sel.visit(p, is_dir, above).unwrap();
            assert_eq!(sel_now, sel.included(p, is_dir), "{}", p.display());
            if is_dir {
                passed.insert(p.to_path_buf(), below);
            }
            if sel_now {
                selected.push(p.to_str().unwrap());
            }
        }
        assert_eq!(selected, ["/h/ws", "/h/ws/x.txt", "/h/ws/tmp/z.md", "/h/b/n.md", "/h/a/q/keep", "/h/a/q/keep/f"]);
    }
}
