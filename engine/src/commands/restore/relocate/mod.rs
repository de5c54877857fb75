//! Restoring onto another home or machine (`restore --relocate`): every root of the snapshot (the
//! state dir, each workspace, agent dirs and config files outside the state dir, any other path
//! it backed up) is given a new place, the restore writes there with the in-place rules (compare,
//! safety snapshot of what is there, atomic renames), and then every absolute path into the old
//! places is moved in what was restored: openclaw.json, its `$include`d files and the copies
//! OpenClaw falls back to (`.bak*`, `.last-good`), OpenClaw's SQLite databases in the state dir
//! (the cron store is keyed by the absolute path of `<state>/cron/jobs.json`; workspaces by their
//! path and its sha256) and symlinks whose target is an absolute old path. Each change is
//! reported ([`Report`]); see [`crate::openclaw::repath`] for which values move.
//!
//! Where the roots go ([`resolve`]): `onto_home` maps the snapshot's home (the folder holding its
//! `.openclaw`) to this machine's (`OPENCLAW_HOME`, else `HOME`), and the state dir to where
//! OpenClaw looks for it here (`OPENCLAW_STATE_DIR` or a profile when set, else the same name
//! in the new home), and the config to `OPENCLAW_CONFIG_PATH` when that is set; explicit (old,
//! new) pairs add to those or replace them. A path moves with the longest old prefix it lies
//! under. Every root must be mapped, or nothing happens and the unmapped ones are named.
//!
//! What is refused: a new place that already holds something (an existing install is not merged
//! into; with `replace` the restore goes over it after a safety snapshot, as in place), two roots
//! landing one inside the other, and `--target` (the new places are the target).
//!
//! This module resolves where the roots go; `rewrite.rs` restores there and moves the paths.

mod rewrite;

pub(super) use rewrite::restore;

use super::*;
use crate::openclaw::paths::{self, LEGACY_STATE_DIRNAMES, STATE_DIRNAME};
use crate::openclaw::repath::{self, Homes, PathMap};
use crate::openclaw::Env;

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct RelocateSpec {
    /// Map the snapshot's home onto this machine's (`--relocate`).
    pub onto_home: bool,
    /// Explicit (old, new) pairs (`--relocate=OLD=NEW`); they win over the automatic ones.
    pub pairs: Vec<(PathBuf, PathBuf)>,
    /// Restore over what is already at the new places, after a safety snapshot (`--force`).
    pub replace: bool,
}

/// Where a snapshot's roots go, resolved and checked.
#[derive(Clone, Debug)]
pub struct Relocation {
    pub map: PathMap,
    pub homes: Homes,
    /// Each root of the snapshot and its new place.
    pub moves: Vec<Move>,
    /// The state dir at its new place (for an OpenClaw snapshot).
    pub state_dir: Option<PathBuf>,
    /// The config file at its new place (for an OpenClaw snapshot).
    pub config_path: Option<PathBuf>,
    pub replace: bool,
    pub warnings: Vec<String>,
}

/// One root and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Move {
    /// `state dir`, `config`, `workspace of molty`, `agent dir of ops`, `backed-up path`.
    pub what: String,
    pub from: String,
    pub to: String,
    /// Something is already there (refused unless `replace`).
    pub occupied: bool,
}

/// One path moved in a restored file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// The file, at its new place.
    pub file: String,
    /// `config`, `database` or `symlink`.
    pub kind: &'static str,
    /// The config key, the `table.column`, or `target` for a symlink.
    pub location: String,
    pub from: String,
    pub to: String,
    /// Database rows changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// Rows that mention an old path inside longer text (transcripts, logs), left as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Left {
    pub file: String,
    pub location: String,
    pub rows: u64,
}

/// What a relocating restore did (or, on a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub moves: Vec<Move>,
    pub rewrites: Vec<Rewrite>,
    pub left: Vec<Left>,
    pub warnings: Vec<String>,
}

/// The home a state dir lives in: the parent of a folder named `.openclaw`, `.openclaw-<profile>`
/// or one of the legacy names; `None` for a state dir placed elsewhere.
fn home_of(state: &Path) -> Option<PathBuf> {
    let name = state.file_name()?.to_str()?;
    let known = name == STATE_DIRNAME
        || name.strip_prefix(STATE_DIRNAME).is_some_and(|r| r.starts_with('-'))
        || LEGACY_STATE_DIRNAMES.contains(&name);
    known.then(|| state.parent().map(Path::to_path_buf)).flatten()
}

/// The roots of a snapshot, with what each is: the OpenClaw ones first, then every other path it
/// backed up.
fn roots(snap: &Snapshot) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    if let Some(m) = &snap.openclaw {
        let state = PathBuf::from(&m.state_dir);
        out.push(("state dir".into(), state.clone()));
        if let Some(c) = &m.config_path {
            if !Path::new(c).starts_with(&state) {
                out.push(("config".into(), PathBuf::from(c)));
            }
        }
        let mut ws: Vec<(PathBuf, Vec<&str>)> = Vec::new();
        for a in &m.agents {
            let p = PathBuf::from(&a.workspace);
            match ws.iter_mut().find(|(w, _)| *w == p) {
                Some((_, ids)) => ids.push(&a.id),
                None => ws.push((p, vec![&a.id])),
            }
        }
        for w in &m.workspaces {
            if !ws.iter().any(|(p, _)| p == Path::new(w)) {
                ws.push((PathBuf::from(w), Vec::new()));
            }
        }
        for (p, ids) in ws {
            let what =
                if ids.is_empty() { "workspace".to_string() } else { format!("workspace of {}", ids.join(", ")) };
            out.push((what, p));
        }
        for a in &m.agents {
            let d = PathBuf::from(&a.agent_dir);
            if !a.agent_dir.is_empty() && !d.starts_with(&state) {
                out.push((format!("agent dir of {}", a.id), d));
            }
        }
    }
    for p in &snap.paths {
        if !out.iter().any(|(_, r)| r == Path::new(p)) {
            out.push(("backed-up path".into(), PathBuf::from(p)));
        }
    }
    out.retain(|(_, p)| !p.as_os_str().is_empty());
    out
}

/// Whether the snapshot backed up `p`, something inside it, or something it lies inside.
fn touches(snap: &Snapshot, p: &Path) -> bool {
    snap.paths.iter().any(|s| p.starts_with(s) || Path::new(s).starts_with(p))
        || roots(snap).iter().any(|(_, r)| r.starts_with(p) || p.starts_with(r))
}

/// Resolves where the snapshot's roots go on this machine (`env`: its environment), checking the
/// mapping covers them all without overlaps. Nothing on disk is looked at but the new places'
/// folders (for symlinks in them).
pub fn resolve(snap: &Snapshot, env: &Env, spec: &RelocateSpec) -> Result<Relocation> {
    let meta = snap.openclaw.as_ref();
    let old_home = meta.and_then(|m| home_of(Path::new(&m.state_dir)));
    let new_home = env.home();
    let mut pairs: Vec<(PathBuf, PathBuf)> = Vec::new();
    if spec.onto_home {
        let Some(m) = meta else {
            return Err(Error::Usage(format!(
                "--relocate: this snapshot has no OpenClaw metadata, so where its home was is unknown; \
                 map each path it backed up ({}) with --relocate=OLD=NEW",
                snap.paths.join(" ")
            )));
        };
        if let Some(h) = &old_home {
            pairs.push((h.clone(), new_home.clone()));
        }
        let old_state = PathBuf::from(&m.state_dir);
        // OpenClaw 2026.9.6 reads only OPENCLAW_STATE_DIR (`--profile NAME` sets it).
        let named = env.get_trimmed("OPENCLAW_STATE_DIR").is_some();
        let new_state = match (&old_home, old_state.file_name()) {
            (Some(_), Some(name)) if !named => new_home.join(name),
            _ => paths::state_dir(env),
        };
        pairs.push((old_state, new_state.clone()));
        let config_env = env.get_trimmed("OPENCLAW_CONFIG_PATH").or_else(|| env.get_trimmed("CLAWDBOT_CONFIG_PATH"));
        if let (Some(_), Some(c)) = (config_env, &m.config_path) {
            pairs.push((PathBuf::from(c), paths::config_path(env, &new_state)));
        }
    }
    for (old, new) in &spec.pairs {
        let pair = format!("--relocate={}={}", old.display(), new.display());
        if !old.is_absolute() || !new.is_absolute() {
            return Err(Error::Usage(format!("{pair}: both paths must be absolute")));
        }
        let (old, new) = (crate::openclaw::env::clean(old), crate::openclaw::env::clean(new));
        if old == Path::new("/") || new == Path::new("/") {
            return Err(Error::Usage(format!("{pair}: map folders, not the whole file system")));
        }
        if !touches(snap, &old) {
            return Err(Error::Usage(format!(
                "{pair}: the snapshot holds nothing at {} (it backed up {})",
                old.display(),
                snap.paths.join(" ")
            )));
        }
        pairs.push((old, new));
    }
    if pairs.is_empty() {
        return Err(Error::Usage("--relocate: no mapping given".into()));
    }
    let map = PathMap::new(pairs);

    // Every root mapped, and no two landing one inside the other.
    let all = roots(snap);
    let unmapped: Vec<String> =
        all.iter().filter(|(_, p)| map.map(p).is_none()).map(|(what, p)| format!("{} ({what})", p.display())).collect();
    if !unmapped.is_empty() {
        let why = match (&old_home, spec.onto_home) {
            (Some(h), true) => format!(" (outside the snapshot's home {})", h.display()),
            (None, true) => " (the snapshot's state dir is not in a home, so only it was mapped)".to_string(),
            _ => String::new(),
        };
        return Err(Error::Usage(format!(
            "--relocate leaves {} unmapped{why}; map each with --relocate=OLD=NEW \
             (--relocate=P=P keeps one where it is)",
            unmapped.join(", ")
        )));
    }
    let mut moves: Vec<Move> = Vec::new();
    for (what, p) in &all {
        let to = map.map(p).expect("checked above");
        moves.push(Move {
            what: what.clone(),
            from: p.to_string_lossy().into_owned(),
            to: to.to_string_lossy().into_owned(),
            occupied: false,
        });
    }
    for a in &moves {
        for b in &moves {
            let (af, at, bf, bt) = (Path::new(&a.from), Path::new(&a.to), Path::new(&b.from), Path::new(&b.to));
            if af != bf && bt.starts_with(at) && !bf.starts_with(af) {
                return Err(Error::Usage(format!(
                    "--relocate puts {} ({}) at {}, inside where {} ({}) goes ({}); give them separate places",
                    b.from, b.what, b.to, a.from, a.what, a.to
                )));
            }
        }
    }

    let state_dir = meta.and_then(|m| map.map(Path::new(&m.state_dir)));
    let config_path = meta.map(|m| {
        let c =
            m.config_path.clone().map(PathBuf::from).unwrap_or_else(|| Path::new(&m.state_dir).join("openclaw.json"));
        map.map(&c).unwrap_or(c)
    });
    let mut warnings = Vec::new();
    if let (Some(s), Some(c)) = (&state_dir, &config_path) {
        warnings.extend(lookup_warnings(env, s, c));
    }
    for (_, new) in map.pairs() {
        if let Some(real) = through_symlink(new) {
            warnings.push(format!(
                "{} is reached through a symlink ({}); OpenClaw keys a workspace's state by its resolved \
                 path, so run `openclaw doctor` after the move and let it rebind the workspace if it asks",
                new.display(),
                real.display()
            ));
        }
    }
    warnings.dedup();
    Ok(Relocation {
        map,
        homes: Homes { old: old_home, new: new_home },
        moves,
        state_dir,
        config_path,
        replace: spec.replace,
        warnings,
    })
}

/// Whether OpenClaw, run here with `env`, finds the state dir and config at their new places.
fn lookup_warnings(env: &Env, state: &Path, config: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let named = env.get_trimmed("OPENCLAW_STATE_DIR").is_some();
    let found = if named {
        paths::state_dir(env) == state
    } else {
        // Without a variable OpenClaw takes ~/.openclaw, else a legacy folder when that is missing.
        let home = env.home();
        state == home.join(STATE_DIRNAME) || LEGACY_STATE_DIRNAMES.iter().any(|n| state == home.join(n))
    };
    if !found {
        out.push(format!(
            "OpenClaw here looks for its state dir at {}; set OPENCLAW_STATE_DIR={} where it runs so it finds the moved one",
            paths::state_dir(env).display(),
            state.display()
        ));
    }
    let config_env = env.get_trimmed("OPENCLAW_CONFIG_PATH").or_else(|| env.get_trimmed("CLAWDBOT_CONFIG_PATH"));
    let read = match config_env {
        Some(p) => env.resolve_user_path(p) == config,
        None => config.parent() == Some(state),
    };
    if !read {
        out.push(format!(
            "OpenClaw here reads its config from {}; set OPENCLAW_CONFIG_PATH={} where it runs",
            paths::config_path(env, state).display(),
            config.display()
        ));
    }
    out
}

/// The resolved path of `p`'s nearest existing folder joined with the rest, when a symlink lies
/// on the way.
fn through_symlink(p: &Path) -> Option<PathBuf> {
    let mut existing = p;
    let mut rest = Vec::new();
    while std::fs::symlink_metadata(existing).is_err() {
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
    let real = std::fs::canonicalize(existing).ok()?;
    let real = rest.iter().rev().fold(real, |acc, n| acc.join(n));
    (real != p).then_some(real)
}

/// Whether something is at `p`: a file, a symlink, or a folder with anything in it.
fn occupied(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => std::fs::read_dir(p).map(|mut d| d.next().is_some()).unwrap_or(true),
        Ok(_) => true,
        Err(_) => false,
    }
}
#[cfg(test)]
mod tests {
    use super::rewrite::{map_items, map_pattern, mapped_snapshot};
    use super::*;
    use crate::format::snapshot::AgentMeta;

    fn snap_of(state: &str, agents: &[(&str, &str)], paths: &[&str]) -> Snapshot {
        let mut s = Snapshot::for_test("old-box", paths, "2026-01-01T00:00:00Z");
        s.openclaw = Some(OpenclawMeta {
            state_dir: state.into(),
            config_path: Some(format!("{state}/openclaw.json")),
            config_files: Vec::new(),
            workspaces: agents.iter().map(|a| a.1.to_string()).collect(),
            agents: agents
                .iter()
                .enumerate()
                .map(|(i, a)| AgentMeta {
                    id: a.0.into(),
                    default: i == 0,
                    workspace: a.1.into(),
                    agent_dir: format!("{state}/agents/{}/agent", a.0),
                })
                .collect(),
            openclaw_version: None,
            openclaw_version_source: None,
        });
        s
    }

    fn ann() -> Snapshot {
        snap_of(
            "/home/ann/.openclaw",
            &[
                ("molty", "/home/ann/.openclaw/workspace"),
                ("worker", "/home/ann/work/worker"),
                ("scribe", "/home/ann/.openclaw/workspace/scribe"),
            ],
            &["/home/ann/.openclaw", "/home/ann/work/worker"],
        )
    }

    fn spec(onto: bool, pairs: &[(&str, &str)]) -> RelocateSpec {
        RelocateSpec {
            onto_home: onto,
            pairs: pairs.iter().map(|(a, b)| (PathBuf::from(a), PathBuf::from(b))).collect(),
            replace: false,
        }
    }

    fn moves(r: &Relocation) -> Vec<(String, String, String)> {
        r.moves.iter().map(|m| (m.what.clone(), m.from.clone(), m.to.clone())).collect()
    }

    fn t(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn onto_this_home_maps_every_root_and_follows_openclaw_state_dir() {
        let env = Env::from_pairs([("HOME", "/home/bob")]);
        let r = resolve(&ann(), &env, &spec(true, &[])).unwrap();
        assert_eq!(
            moves(&r),
            [
                t("state dir", "/home/ann/.openclaw", "/home/bob/.openclaw"),
                t("workspace of molty", "/home/ann/.openclaw/workspace", "/home/bob/.openclaw/workspace"),
                t("workspace of worker", "/home/ann/work/worker", "/home/bob/work/worker"),
                t(
                    "workspace of scribe",
                    "/home/ann/.openclaw/workspace/scribe",
                    "/home/bob/.openclaw/workspace/scribe"
                ),
            ]
        );
        assert_eq!(r.state_dir.as_deref(), Some(Path::new("/home/bob/.openclaw")));
        assert_eq!(r.config_path.as_deref(), Some(Path::new("/home/bob/.openclaw/openclaw.json")));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);

        // OPENCLAW_STATE_DIR: the state dir goes there, the rest under the home.
        let env = env.with("OPENCLAW_STATE_DIR", "/data/oc");
        let r = resolve(&ann(), &env, &spec(true, &[])).unwrap();
        assert_eq!(r.moves[0].to, "/data/oc");
        assert_eq!(r.moves[1].to, "/data/oc/workspace");
        assert_eq!(r.moves[2].to, "/home/bob/work/worker");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);

        // An explicit pair wins for what lies below it.
        let r =
            resolve(&ann(), &Env::from_pairs([("HOME", "/home/bob")]), &spec(true, &[("/home/ann/work", "/srv/w")]))
                .unwrap();
        assert_eq!(r.moves[2].to, "/srv/w/worker");
    }

    #[test]
    fn unmapped_roots_and_collisions_are_refused_by_name() {
        let env = Env::from_pairs([("HOME", "/home/bob")]);
        let mut s = ann();
        s.paths.push("/srv/shared".into());
        let e = resolve(&s, &env, &spec(true, &[])).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("/srv/shared (backed-up path)") && msg.contains("outside the snapshot's home /home/ann"),
            "{msg}"
        );
        assert!(resolve(&s, &env, &spec(true, &[("/srv/shared", "/srv/shared")])).is_ok());

        // Explicit pairs only: the worker's workspace is left out.
        let e = resolve(&ann(), &env, &spec(false, &[("/home/ann/.openclaw", "/home/bob/.openclaw")])).unwrap_err();
        assert!(e.to_string().contains("/home/ann/work/worker (workspace of worker)"), "{e}");

        // Two roots one inside the other at the new places.
        let e = resolve(&ann(), &env, &spec(true, &[("/home/ann/work/worker", "/home/bob/.openclaw/workspace/w")]))
            .unwrap_err();
        assert!(e.to_string().contains("inside where /home/ann/.openclaw"), "{e}");

        // Pairs must name something the snapshot has, absolutely.
        let e = resolve(&ann(), &env, &spec(true, &[("/nowhere", "/x")])).unwrap_err();
        assert!(e.to_string().contains("holds nothing at /nowhere"), "{e}");
        let e = resolve(&ann(), &env, &spec(true, &[("/home/ann", "rel")])).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");

        // Without OpenClaw metadata, only explicit pairs.
        let bare = Snapshot::for_test("h", &["/data/x"], "2026-01-01T00:00:00Z");
        let e = resolve(&bare, &env, &spec(true, &[])).unwrap_err();
        assert!(e.to_string().contains("no OpenClaw metadata") && e.to_string().contains("/data/x"), "{e}");
        let r = resolve(&bare, &env, &spec(false, &[("/data", "/srv/data")])).unwrap();
        assert_eq!(moves(&r), [t("backed-up path", "/data/x", "/srv/data/x")]);
    }

    #[test]
    fn a_state_dir_openclaw_would_not_find_is_a_warning() {
        let env = Env::from_pairs([("HOME", "/home/bob")]);
        let r = resolve(&ann(), &env, &spec(true, &[("/home/ann/.openclaw", "/data/oc")])).unwrap();
        assert_eq!(r.moves[0].to, "/data/oc");
        assert!(r.warnings.iter().any(|w| w.contains("OPENCLAW_STATE_DIR=/data/oc")), "{:?}", r.warnings);
        // A profile's state dir keeps its name in the new home.
        let s = snap_of(
            "/home/ann/.openclaw-work",
            &[("main", "/home/ann/.openclaw-work/workspace")],
            &["/home/ann/.openclaw-work"],
        );
        let r = resolve(&s, &env, &spec(true, &[])).unwrap();
        assert_eq!(r.moves[0].to, "/home/bob/.openclaw-work");
        assert!(r.warnings.iter().any(|w| w.contains("OPENCLAW_STATE_DIR")), "{:?}", r.warnings);
        // OPENCLAW_PROFILE alone selects nothing in OpenClaw 2026.9.6: still the warning.
        let r = resolve(&s, &env.clone().with("OPENCLAW_PROFILE", "work"), &spec(true, &[])).unwrap();
        assert!(r.warnings.iter().any(|w| w.contains("OPENCLAW_STATE_DIR")), "{:?}", r.warnings);
        // What `--profile work` sets: found where OpenClaw looks.
        let r =
            resolve(&s, &env.clone().with("OPENCLAW_STATE_DIR", "/home/bob/.openclaw-work"), &spec(true, &[])).unwrap();
        assert_eq!(r.moves[0].to, "/home/bob/.openclaw-work");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn items_move_and_folders_above_the_roots_are_dropped() {
        let s = ann();
        let map = PathMap::new([
            (PathBuf::from("/home/ann"), PathBuf::from("/home/bob")),
            (PathBuf::from("/home/ann/work/worker"), PathBuf::from("/data/w")),
        ]);
        let ms = mapped_snapshot(&s, &map);
        assert_eq!(ms.paths, ["/home/bob/.openclaw", "/data/w"]);
        assert_eq!(ms.openclaw.as_ref().unwrap().agents[1].workspace, "/data/w");
        let node = |kind: NodeKind, target: &str| Node {
            name: Vec::new(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            dev: 0,
            ino: 0,
            nlink: 1,
            size: 0,
            content: Vec::new(),
            subtree: None,
            target: target.as_bytes().to_vec(),
        };
        let it = |rel: &str, kind: NodeKind, target: &str| Item {
            rel: PathBuf::from(rel),
            node: node(kind, target),
            selected: true,
        };
        let items = vec![
            it("home", NodeKind::Dir, ""),
            it("home/ann", NodeKind::Dir, ""),
            it("home/ann/.openclaw", NodeKind::Dir, ""),
            it("home/ann/.openclaw/link", NodeKind::Symlink, "/home/ann/work/worker/notes.md"),
            it("home/ann/.openclaw/rel", NodeKind::Symlink, "workspace"),
            it("home/ann/work", NodeKind::Dir, ""),
            it("home/ann/work/worker", NodeKind::Dir, ""),
            it("home/ann/work/worker/notes.md", NodeKind::File, ""),
        ];
        let (out, links) = map_items(items, &map, &ms).unwrap();
        let rels: Vec<&str> = out.iter().map(|i| i.rel.to_str().unwrap()).collect();
        // `/home` is above everything; `~/work` would be an empty folder: the worker went to /data.
        assert_eq!(
            rels,
            [
                "home/bob",
                "home/bob/.openclaw",
                "home/bob/.openclaw/link",
                "home/bob/.openclaw/rel",
                "data/w",
                "data/w/notes.md"
            ]
        );
        assert_eq!(out[2].node.target, b"/data/w/notes.md");
        assert_eq!(out[3].node.target, b"workspace");
        assert_eq!(links.len(), 1);
        assert_eq!(
            (links[0].from.as_str(), links[0].to.as_str()),
            ("/home/ann/work/worker/notes.md", "/data/w/notes.md")
        );
        assert_eq!(map_pattern("!/home/ann/.openclaw/**/*.md", &map), "!/home/bob/.openclaw/**/*.md");
        assert_eq!(map_pattern("*.md", &map), "*.md");
    }

    /// A repository and a fake home `a` with a JSON5 config that `$include`s a file outside the
    /// state dir, a database, an outside workspace and a symlink into it.
    struct World {
        dir: tempfile::TempDir,
    }

    impl World {
        fn new() -> World {
            use crate::backend::local::LocalBackend;
            use crate::format::crypto::KdfParams;
            use crate::repo::{InitOptions, Secret};
            let w = World { dir: tempfile::tempdir().unwrap() };
            let be = std::sync::Arc::new(LocalBackend::new(w.p("repo")));
            let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
            Repository::init(be, &Secret(b"pw".to_vec()), &opts).unwrap();
            w
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn s(&self, rel: &str) -> String {
            self.p(rel).to_string_lossy().into_owned()
        }
        fn repo(&self) -> Repository {
            use crate::backend::local::LocalBackend;
            use crate::repo::{CacheOptions, Secret};
            let be = std::sync::Arc::new(LocalBackend::new(self.p("repo")));
            Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
        }
        fn put(&self, rel: &str, text: &str) {
            let p = self.p(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        fn read(&self, rel: &str) -> String {
            std::fs::read_to_string(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
        }
    }

    #[test]
    fn a_relocated_restore_moves_files_config_databases_and_symlinks() {
        let w = World::new();
        let (a, st) = (w.s("a"), w.s("a/.openclaw"));
        let config = format!(
            "// written by hand\n{{\n  agents: {{ defaults: {{ workspace: '{a}/.openclaw/workspace' }},\n    \
             entries: {{ ops: {{ workspace: \"{a}/ops\" }} }} }},\n  $include: \"../shared/extra.json5\",\n}}\n"
        );
        w.put("a/.openclaw/openclaw.json", &config);
        w.put("a/shared/extra.json5", &format!("{{ tools: {{ root: \"{a}/ops/tools\" }} }}\n"));
        w.put("a/.openclaw/workspace/MEMORY.md", "memory\n");
        w.put("a/ops/notes.md", "ops notes\n");
        std::os::unix::fs::symlink(format!("{a}/ops/notes.md"), w.p("a/.openclaw/workspace/ops-notes")).unwrap();
        std::fs::create_dir_all(w.p("a/.openclaw/state")).unwrap();
        let c = rusqlite::Connection::open(w.p("a/.openclaw/state/openclaw.sqlite")).unwrap();
        c.execute_batch(&format!(
            "CREATE TABLE cron_jobs (store_key TEXT, job_id TEXT); INSERT INTO cron_jobs VALUES ('{st}/cron/jobs.json', 'j');"
        ))
        .unwrap();
        drop(c);
        let mut meta =
            snap_of(&st, &[("main", &format!("{st}/workspace")), ("ops", &format!("{a}/ops"))], &[]).openclaw.unwrap();
        meta.agents[1].agent_dir = format!("{st}/agents/ops/agent");
        let repo = w.repo();
        let bo = BackupOptions {
            paths: vec![w.p("a/.openclaw"), w.p("a/ops"), w.p("a/shared/extra.json5")],
            openclaw: Some(meta),
            host: Some("old-box".into()),
            ..Default::default()
        };
        let id = backup(&repo, &bo, &Progress::default()).unwrap().snapshot_id.unwrap();
        let (_, snap) = repo.find_snapshot(&id.to_hex(), |_| true).unwrap();

        let b = w.s("b");
        let env = Env::from_pairs([("HOME", b.as_str())]);
        let rel = resolve(&snap, &env, &RelocateSpec { onto_home: true, ..Default::default() }).unwrap();
        let run = |dry_run: bool, only: Vec<PathBuf>| {
            let o = RestoreOptions { in_place: true, dry_run, only, relocate: Some(rel.clone()), ..Default::default() };
            super::super::restore(&repo, &snap, &o, &Progress::default()).unwrap()
        };

        // A dry run reports the same rewrites and writes nothing.
        let dry = run(true, vec![]).relocation.unwrap();
        assert!(!w.p("b").exists());
        let r = run(false, vec![]);
        let rep = r.relocation.unwrap();
        assert_eq!(dry.rewrites, rep.rewrites);
        let got: Vec<(&str, &str, &str)> =
            rep.rewrites.iter().map(|r| (r.kind, r.location.as_str(), r.to.as_str())).collect();
        let ops_notes = format!("{b}/ops/notes.md");
        let jobs = format!("{b}/.openclaw/cron/jobs.json");
        assert!(got.contains(&("symlink", "target", ops_notes.as_str())), "{got:?}");
        assert!(got.contains(&("database", "cron_jobs.store_key", jobs.as_str())), "{got:?}");
        assert!(got.iter().any(|g| g.1 == "tools.root"), "the included file too: {got:?}");

        // The config keeps its comment and quotes; the relative include still resolves.
        let want = config.replace(&format!("{a}/"), &format!("{b}/"));
        assert_eq!(w.read("b/.openclaw/openclaw.json"), want);
        assert_eq!(w.read("b/shared/extra.json5"), format!("{{ tools: {{ root: \"{b}/ops/tools\" }} }}\n"));
        assert_eq!(std::fs::read_link(w.p("b/.openclaw/workspace/ops-notes")).unwrap(), PathBuf::from(&ops_notes));
        assert_eq!(w.read("b/.openclaw/workspace/ops-notes"), "ops notes\n");
        let c = rusqlite::Connection::open(w.p("b/.openclaw/state/openclaw.sqlite")).unwrap();
        let k: String = c.query_row("SELECT store_key FROM cron_jobs", [], |r| r.get(0)).unwrap();
        assert_eq!(k, jobs);
        // The source is untouched.
        assert_eq!(w.read("a/.openclaw/openclaw.json"), config);

        // `only` narrows what is checked and written: the ops workspace alone, onto a fresh home.
        let c2 = w.s("c");
        let env = Env::from_pairs([("HOME", c2.as_str())]);
        let rel = resolve(&snap, &env, &RelocateSpec { onto_home: true, ..Default::default() }).unwrap();
        let o = RestoreOptions { in_place: true, only: vec![w.p("a/ops")], relocate: Some(rel), ..Default::default() };
        let r = super::super::restore(&repo, &snap, &o, &Progress::default()).unwrap();
        let rep = r.relocation.unwrap();
        assert_eq!(rep.moves.iter().map(|m| m.what.as_str()).collect::<Vec<_>>(), ["workspace of ops"]);
        assert_eq!(w.read("c/ops/notes.md"), "ops notes\n");
        assert!(!w.p("c/.openclaw").exists() && rep.rewrites.is_empty(), "{:?}", rep.rewrites);
    }
}
