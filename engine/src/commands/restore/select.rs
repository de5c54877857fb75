//! What a restore selects: `--only` roots, include and exclude patterns, and the plan of entries.

use super::*;

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
        })
    }

    /// Restricts the selection to paths at or below `roots` (absolute); empty: no restriction.
    pub fn with_roots(mut self, roots: Vec<PathBuf>) -> Self {
        self.roots = roots;
        self
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
        if self.roots.is_empty() || self.roots.iter().any(|r| abs.starts_with(r)) {
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

/// Resolves `--only` values against a snapshot's OpenClaw metadata into absolute roots:
/// `state`, `workspace` (every workspace), `agent:<id>`, or an absolute path.
pub fn only_roots(snap: &Snapshot, only: &[String]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for o in only {
        let o = o.trim();
        let mine = only_root(snap, o)?;
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
        out.extend(held);
    }
    Ok(minimal_roots(out))
}

/// Whether the snapshot backed up `root` or something inside it.
fn holds(snap: &Snapshot, root: &Path) -> bool {
    snap.paths.iter().any(|p| root.starts_with(p) || Path::new(p).starts_with(root))
}

/// The absolute roots one `--only` value names.
fn only_root(snap: &Snapshot, o: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    if o.starts_with('/') {
        return Ok(vec![absolute_clean(Path::new(o))?]);
    }
    let meta = |what: &str| -> Result<&OpenclawMeta> {
        snap.openclaw.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "--only {what}: this snapshot has no OpenClaw metadata (it was not made by a default \
                 `clawback backup` of an OpenClaw install); select paths with --include PATTERN or \
                 --only /absolute/path instead"
            ))
        })
    };
    let p = |s: &str| absolute_clean(Path::new(s));
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
                return Err(Error::Usage(format!(
                    "--only {o:?}: expected state, workspace, agent:ID or an absolute path"
                )));
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
            out.push(p(&m.state_dir)?.join("agents").join(&a.id));
            if !a.agent_dir.is_empty() {
                out.push(p(&a.agent_dir)?);
            }
            if !a.workspace.is_empty() {
                out.push(p(&a.workspace)?);
            }
        }
    }
    Ok(out)
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
    crate::tree::check_depth(depth)?;
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
