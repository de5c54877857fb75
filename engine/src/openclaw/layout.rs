//! The shape of one OpenClaw install: state dir, config, agents and their workspaces, resolved as
//! OpenClaw's `resolveAgentWorkspaceDir` / `resolveAgentDir` do (src/agents/agent-scope-config.ts,
//! docs/gateway/config-agents.md):
//! - an agent's own `workspace` (in `agents.list[]` or `agents.entries.<id>`) wins;
//! - the default agent (the one marked `default: true`, else the first listed, else `main`) uses
//!   `agents.defaults.workspace`, else `OPENCLAW_WORKSPACE_DIR`, else `<state>/workspace`;
//! - any other agent uses `<state>/workspace-<id>`. (Newer OpenClaw releases use
//!   `<agents.defaults.workspace>/<id>` instead when the defaults set a workspace; that folder is
//!   used when it exists and the older one does not.)
//!
//! A workspace inside the state dir is flagged, so a backup of the state dir does not read it
//! twice; [`Layout::roots`] gives the folders a default backup reads, none inside another.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::{self, OpenClawConfig};
use super::env::Env;
use super::error::ConfigError;
use super::paths::{normalize_agent_id, DEFAULT_AGENT_ID};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// The agent that owns it (the first one, when agents share a workspace); `None` for
    /// `OPENCLAW_WORKSPACE_DIR` when no agent uses it.
    pub agent_id: Option<String>,
    pub path: PathBuf,
    /// Inside the state dir: a backup of the state dir already holds it.
    pub inside_state: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    /// The agent that gets the default workspace.
    pub default: bool,
    pub workspace: PathBuf,
    /// Its runtime folder: `agentDir` from the config, else `<state>/agents/<id>/agent`.
    pub agent_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub state_dir: PathBuf,
    /// The active config file (it may not exist).
    pub config_path: PathBuf,
    pub config_exists: bool,
    /// The config file and every file it `$include`s.
    pub config_files: Vec<PathBuf>,
    /// Distinct workspaces, the default agent's first.
    pub workspaces: Vec<Workspace>,
    pub agent_ids: Vec<String>,
    pub agents: Vec<Agent>,
    /// The OpenClaw version that last wrote the config (`meta.lastTouchedVersion`).
    pub openclaw_version: Option<String>,
    /// Things the user should know (unset variables, odd entries); never values.
    pub warnings: Vec<String>,
}

impl Layout {
    /// The part of the layout a snapshot records.
    pub fn to_meta(&self) -> crate::format::snapshot::OpenclawMeta {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        crate::format::snapshot::OpenclawMeta {
            state_dir: s(&self.state_dir),
            config_path: self.config_exists.then(|| s(&self.config_path)),
            config_files: self.config_files.iter().map(|p| s(p)).collect(),
            workspaces: self.workspaces.iter().map(|w| s(&w.path)).collect(),
            agents: self
                .agents
                .iter()
                .map(|a| crate::format::snapshot::AgentMeta {
                    id: a.id.clone(),
                    default: a.default,
                    workspace: s(&a.workspace),
                    agent_dir: s(&a.agent_dir),
                })
                .collect(),
            openclaw_version: self.openclaw_version.clone(),
            openclaw_version_source: self
                .openclaw_version
                .as_ref()
                .map(|_| crate::format::snapshot::VersionSource::Config),
        }
    }

    /// The workspace of an agent, by id (normalized as OpenClaw does).
    pub fn workspace_of(&self, agent_id: &str) -> Option<&Path> {
        let id = normalize_agent_id(agent_id);
        self.agents.iter().find(|a| a.id == id).map(|a| a.workspace.as_path())
    }

    /// The folders and files a default backup reads: the state dir, then every workspace, agent
    /// dir and config file outside it, leaving out any path inside another one and any that does
    /// not exist.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut candidates = vec![self.state_dir.clone()];
        candidates.extend(self.workspaces.iter().map(|w| w.path.clone()));
        candidates.extend(self.agents.iter().map(|a| a.agent_dir.clone()));
        candidates.extend(self.config_files.iter().cloned());
        let candidates: Vec<PathBuf> = candidates.into_iter().filter(|p| p.exists()).collect();
        let mut out: Vec<PathBuf> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let covered =
                candidates.iter().enumerate().any(|(j, o)| j != i && is_inside(o, c) && (!is_inside(c, o) || j < i));
            if !covered {
                out.push(c.clone());
            }
        }
        out
    }
}

/// Folders outside every root that OpenClaw's backup reads for managed skills
/// (`resolveManagedSkillSymlinkTargetCandidates`): where `<state>/skills`, or a skill folder in
/// it (one holding a `SKILL.md`), is a symlink, its target, unless it lies inside one of `roots`
/// or holds one.
pub fn managed_skill_targets(state_dir: &Path, roots: &[PathBuf]) -> Vec<PathBuf> {
    let skills = state_dir.join("skills");
    let mut links = vec![skills.clone()];
    let mut children: Vec<PathBuf> = std::fs::read_dir(&skills)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("SKILL.md").is_file())
        .collect();
    children.sort();
    links.extend(children);
    let mut out: Vec<PathBuf> = Vec::new();
    for link in links {
        if !std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        let Ok(target) = std::fs::canonicalize(&link) else { continue };
        let owned = roots.iter().any(|r| {
            let r = std::fs::canonicalize(r).unwrap_or_else(|_| r.clone());
            target.starts_with(&r) || r.starts_with(&target)
        });
        if target.is_dir() && !owned && !out.contains(&target) {
            out.push(target);
        }
    }
    out
}

/// True when `p` is `root` or below it, lexically or once symlinks are resolved.
pub fn is_inside(root: &Path, p: &Path) -> bool {
    if p.starts_with(root) {
        return true;
    }
    match (std::fs::canonicalize(root), std::fs::canonicalize(p)) {
        (Ok(r), Ok(q)) => q.starts_with(r),
        _ => false,
    }
}

/// Reads OpenClaw's config (as `env` locates it) and resolves the layout. Fails when the config
/// exists but cannot be read, as `openclaw backup create` does: workspaces depend on it.
pub fn discover(env: &Env) -> Result<Layout, ConfigError> {
    let cfg = config::load(env)?;
    Ok(layout_from(&cfg, env))
}

struct RawAgent {
    id: String,
    /// Where it was configured, for messages (`agents.list[1]`, `agents.entries.work`).
    key: String,
    workspace: Option<String>,
    agent_dir: Option<String>,
    default: bool,
    from_list: bool,
}

/// Resolves the layout from a config already read.
pub fn layout_from(cfg: &OpenClawConfig, env: &Env) -> Layout {
    let state = cfg.state_dir.clone();
    let mut warnings = cfg.warnings.clone();
    // A string setting, substituted; unresolved references make it unset, with a warning.
    let setting = |key: &str, v: Option<&Value>, warnings: &mut Vec<String>| {
        let s = v.and_then(Value::as_str)?.trim();
        if s.is_empty() {
            return None;
        }
        if cfg.is_unresolved(key) {
            for u in cfg.unresolved.iter().filter(|u| u.key == key) {
                warnings.push(u.warning(&cfg.path));
            }
            return None;
        }
        Some(s.to_string())
    };

    let mut raw: Vec<RawAgent> = Vec::new();
    match cfg.get("agents.list") {
        Some(Value::Array(list)) => {
            for (i, entry) in list.iter().enumerate() {
                let key = format!("agents.list[{i}]");
                let Value::Object(o) = entry else {
                    warnings.push(format!("{}: `{key}` is not an object; ignored", cfg.path.display()));
                    continue;
                };
                raw.push(RawAgent {
                    id: normalize_agent_id(o.get("id").and_then(Value::as_str).unwrap_or("")),
                    workspace: setting(&format!("{key}.workspace"), o.get("workspace"), &mut warnings),
                    agent_dir: setting(&format!("{key}.agentDir"), o.get("agentDir"), &mut warnings),
                    default: o.get("default").and_then(Value::as_bool).unwrap_or(false),
                    from_list: true,
                    key,
                });
            }
        }
        Some(_) => warnings.push(format!("{}: `agents.list` is not a list; ignored", cfg.path.display())),
        None => {}
    }
    match cfg.get("agents.entries") {
        Some(Value::Object(entries)) => {
            for (name, entry) in entries {
                let key = format!("agents.entries.{name}");
                let o = entry.as_object();
                raw.push(RawAgent {
                    id: normalize_agent_id(name),
                    workspace: setting(&format!("{key}.workspace"), o.and_then(|o| o.get("workspace")), &mut warnings),
                    agent_dir: setting(&format!("{key}.agentDir"), o.and_then(|o| o.get("agentDir")), &mut warnings),
                    default: o.and_then(|o| o.get("default")).and_then(Value::as_bool).unwrap_or(false),
                    from_list: false,
                    key,
                });
            }
        }
        Some(_) => warnings.push(format!("{}: `agents.entries` is not an object; ignored", cfg.path.display())),
        None => {}
    }

    // One agent per id: the first mention wins, later ones only fill in what it lacks.
    let mut agents_raw: Vec<RawAgent> = Vec::new();
    for a in raw {
        match agents_raw.iter_mut().find(|b| b.id == a.id) {
            Some(b) => {
                if b.workspace.is_none() {
                    b.workspace = a.workspace;
                } else if a.workspace.is_some() && a.workspace != b.workspace {
                    warnings.push(format!(
                        "{}: agent `{}` is configured twice with different workspaces; `{}` wins",
                        cfg.path.display(),
                        b.id,
                        b.key
                    ));
                }
                if b.agent_dir.is_none() {
                    b.agent_dir = a.agent_dir;
                }
                b.default |= a.default;
            }
            None => agents_raw.push(a),
        }
    }
    if agents_raw.is_empty() {
        agents_raw.push(RawAgent {
            id: DEFAULT_AGENT_ID.into(),
            key: String::new(),
            workspace: None,
            agent_dir: None,
            default: true,
            from_list: false,
        });
    }
    let default_idx = agents_raw
        .iter()
        .position(|a| a.default)
        .or_else(|| agents_raw.iter().position(|a| a.from_list))
        .or_else(|| agents_raw.iter().position(|a| a.id == DEFAULT_AGENT_ID))
        .unwrap_or(0);

    let defaults_ws = setting("agents.defaults.workspace", cfg.get("agents.defaults.workspace"), &mut warnings)
        .map(|s| env.resolve_user_path(&s));
    let env_ws = env.get_trimmed("OPENCLAW_WORKSPACE_DIR").map(|s| env.resolve_user_path(s));

    let agents: Vec<Agent> = agents_raw
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let workspace = match &a.workspace {
                Some(w) => env.resolve_user_path(w),
                None if i == default_idx => {
                    defaults_ws.clone().or_else(|| env_ws.clone()).unwrap_or_else(|| state.join("workspace"))
                }
                None => {
                    let legacy = state.join(format!("workspace-{}", a.id));
                    match &defaults_ws {
                        Some(d) if d.join(&a.id).is_dir() && !legacy.exists() => d.join(&a.id),
                        _ => legacy,
                    }
                }
            };
            let agent_dir = match &a.agent_dir {
                Some(d) => env.resolve_user_path(d),
                None => state.join("agents").join(&a.id).join("agent"),
            };
            Agent { id: a.id.clone(), default: i == default_idx, workspace, agent_dir }
        })
        .collect();

    // Workspaces: the default agent's first, then the others in order, each path once.
    let mut order: Vec<&Agent> = agents.iter().filter(|a| a.default).collect();
    order.extend(agents.iter().filter(|a| !a.default));
    let mut workspaces: Vec<Workspace> = Vec::new();
    let mut push = |agent_id: Option<String>, path: PathBuf| {
        if workspaces.iter().any(|w| w.path == path || same_file(&w.path, &path)) {
            return;
        }
        workspaces.push(Workspace { agent_id, inside_state: is_inside(&state, &path), path });
    };
    for a in order {
        push(Some(a.id.clone()), a.workspace.clone());
    }
    if let Some(w) = env_ws {
        push(None, w);
    }

    Layout {
        state_dir: state.clone(),
        config_path: cfg.path.clone(),
        config_exists: cfg.exists,
        config_files: cfg.files.clone(),
        workspaces,
        agent_ids: agents.iter().map(|a| a.id.clone()).collect(),
        agents,
        openclaw_version: cfg.version(),
        warnings,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Fixture {
        _t: tempfile::TempDir,
        home: PathBuf,
        state: PathBuf,
    }

    fn fixture(config: Option<&str>) -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().canonicalize().unwrap();
        let state = home.join(".openclaw");
        fs::create_dir(&state).unwrap();
        if let Some(c) = config {
            fs::write(state.join("openclaw.json"), c).unwrap();
        }
        Fixture { _t: t, home, state }
    }

    impl Fixture {
        fn env(&self) -> Env {
            Env::from_pairs([("HOME", self.home.to_str().unwrap())])
        }
        fn discover(&self) -> Layout {
            discover(&self.env()).unwrap()
        }
    }

    fn paths(l: &Layout) -> Vec<(Option<&str>, PathBuf, bool)> {
        l.workspaces.iter().map(|w| (w.agent_id.as_deref(), w.path.clone(), w.inside_state)).collect()
    }

    #[test]
    fn no_config_means_one_main_agent_with_the_default_workspace() {
        let f = fixture(None);
        let l = f.discover();
        assert_eq!(l.state_dir, f.state);
        assert!(!l.config_exists);
        assert_eq!(l.agent_ids, vec!["main"]);
        assert_eq!(paths(&l), vec![(Some("main"), f.state.join("workspace"), true)]);
        assert_eq!(l.agents[0].agent_dir, f.state.join("agents/main/agent"));
        assert_eq!(l.openclaw_version, None);
    }

    #[test]
    fn defaults_workspace_with_tilde() {
        let f = fixture(Some(r#"{ agents: { defaults: { workspace: "~/ws" } } }"#));
        let l = f.discover();
        assert_eq!(paths(&l), vec![(Some("main"), f.home.join("ws"), false)]);
    }

    #[test]
    fn openclaw_workspace_dir_is_the_default_when_the_config_sets_none() {
        let f = fixture(None);
        let env = f.env().with("OPENCLAW_WORKSPACE_DIR", "~/envws");
        let l = discover(&env).unwrap();
        assert_eq!(paths(&l), vec![(Some("main"), f.home.join("envws"), false)]);
        // The config wins over the variable; the variable's folder is still listed.
        fs::write(f.state.join("openclaw.json"), r#"{ agents: { defaults: { workspace: "~/cfgws" } } }"#).unwrap();
        let l = discover(&env).unwrap();
        assert_eq!(paths(&l), vec![(Some("main"), f.home.join("cfgws"), false), (None, f.home.join("envws"), false)]);
    }

    #[test]
    fn agents_list_with_default_and_per_agent_workspaces() {
        let f = fixture(Some(
            r#"{
              meta: { lastTouchedVersion: "2026.1.8" },
              agents: {
                defaults: { workspace: "~/.openclaw/workspace" },
                list: [
                  { id: "main" },
                  { id: "Research" },
                  { id: "ops", workspace: "~/projects/agent-ws" },
                  { id: "writer", default: false },
                ],
              },
            }"#,
        ));
        let l = f.discover();
        assert_eq!(l.agent_ids, vec!["main", "research", "ops", "writer"]);
        assert_eq!(
            paths(&l),
            vec![
                (Some("main"), f.state.join("workspace"), true),
                (Some("research"), f.state.join("workspace-research"), true),
                (Some("ops"), f.home.join("projects/agent-ws"), false),
                (Some("writer"), f.state.join("workspace-writer"), true),
            ]
        );
        assert_eq!(l.openclaw_version.as_deref(), Some("2026.1.8"));
        assert_eq!(l.workspace_of("OPS"), Some(f.home.join("projects/agent-ws").as_path()));
        assert!(l.agents[0].default && !l.agents[1].default);
    }

    #[test]
    fn explicit_default_flag_picks_the_default_agent() {
        let f = fixture(Some(r#"{ agents: { list: [ { id: "a" }, { id: "b", default: true } ] } }"#));
        let l = f.discover();
        assert_eq!(
            paths(&l),
            vec![(Some("b"), f.state.join("workspace"), true), (Some("a"), f.state.join("workspace-a"), true),]
        );
    }

    #[test]
    fn first_listed_agent_is_the_default_without_a_flag() {
        let f = fixture(Some(r#"{ agents: { list: [ { id: "home" }, { id: "main" } ] } }"#));
        let l = f.discover();
        assert_eq!(l.workspace_of("home"), Some(f.state.join("workspace").as_path()));
        assert_eq!(l.workspace_of("main"), Some(f.state.join("workspace-main").as_path()));
    }

    #[test]
    fn agents_entries_map() {
        let f = fixture(Some(
            r#"{
              agents: {
                entries: {
                  work: { workspace: "~/.openclaw/workspace-work" },
                  home: { workspace: "/srv/home-ws", agentDir: "~/agents/home" },
                  main: {},
                  extra: {},
                },
              },
            }"#,
        ));
        let l = f.discover();
        // Map keys come sorted: extra, home, main, work; `main` is the default.
        assert_eq!(l.agent_ids, vec!["extra", "home", "main", "work"]);
        assert_eq!(
            paths(&l),
            vec![
                (Some("main"), f.state.join("workspace"), true),
                (Some("extra"), f.state.join("workspace-extra"), true),
                (Some("home"), PathBuf::from("/srv/home-ws"), false),
                (Some("work"), f.state.join("workspace-work"), true),
            ]
        );
        let home = l.agents.iter().find(|a| a.id == "home").unwrap();
        assert_eq!(home.agent_dir, f.home.join("agents/home"));
    }

    #[test]
    fn list_and_entries_together() {
        let f = fixture(Some(
            r#"{ agents: {
                  list: [ { id: "main" }, { id: "ops" } ],
                  entries: { ops: { workspace: "~/ops-ws" }, side: { workspace: "~/side" } },
            } }"#,
        ));
        let l = f.discover();
        assert_eq!(l.agent_ids, vec!["main", "ops", "side"]);
        assert_eq!(l.workspace_of("ops"), Some(f.home.join("ops-ws").as_path()));
        assert_eq!(l.workspace_of("side"), Some(f.home.join("side").as_path()));
    }

    #[test]
    fn newer_openclaw_subfolder_of_the_defaults_workspace() {
        let f =
            fixture(Some(r#"{ agents: { defaults: { workspace: "~/fleet" }, list: [ { id: "a" }, { id: "b" } ] } }"#));
        fs::create_dir_all(f.home.join("fleet/b")).unwrap();
        let l = f.discover();
        assert_eq!(l.workspace_of("a"), Some(f.home.join("fleet").as_path()));
        // `b` has only the newer layout's folder: that one.
        assert_eq!(l.workspace_of("b"), Some(f.home.join("fleet/b").as_path()));
        // With the older folder present, the older one wins.
        fs::create_dir_all(f.state.join("workspace-b")).unwrap();
        let l = f.discover();
        assert_eq!(l.workspace_of("b"), Some(f.state.join("workspace-b").as_path()));
    }

    #[test]
    fn shared_workspaces_are_listed_once() {
        let f = fixture(Some(
            r#"{ agents: { list: [
                { id: "a", workspace: "~/shared" },
                { id: "b", workspace: "~/shared/" },
                { id: "c", workspace: "~/./shared" },
            ] } }"#,
        ));
        let l = f.discover();
        assert_eq!(paths(&l), vec![(Some("a"), f.home.join("shared"), false)]);
        assert_eq!(l.agents.len(), 3);
        assert_eq!(l.workspace_of("c"), Some(f.home.join("shared").as_path()));
    }

    #[test]
    fn symlinked_duplicates_are_listed_once() {
        let f = fixture(None);
        fs::create_dir(f.home.join("real")).unwrap();
        std::os::unix::fs::symlink(f.home.join("real"), f.home.join("link")).unwrap();
        fs::write(
            f.state.join("openclaw.json"),
            r#"{ agents: { list: [ { id: "a", workspace: "~/real" }, { id: "b", workspace: "~/link" } ] } }"#,
        )
        .unwrap();
        assert_eq!(f.discover().workspaces.len(), 1);
    }

    #[test]
    fn workspace_variables_and_unset_ones() {
        let f = fixture(Some(
            r#"{ agents: { list: [
                { id: "a", workspace: "${WS_ROOT}/a" },
                { id: "b", workspace: "${NOT_SET}/b" },
            ] } }"#,
        ));
        fs::write(f.state.join(".env"), "WS_ROOT=/data\n").unwrap();
        let l = f.discover();
        assert_eq!(l.workspace_of("a"), Some(Path::new("/data/a")));
        // Unresolved: warned about, and the agent falls back to its default folder.
        assert_eq!(l.workspace_of("b"), Some(f.state.join("workspace-b").as_path()));
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("NOT_SET") && l.warnings[0].contains("agents.list[1].workspace"));
    }

    #[test]
    fn includes_feed_the_agents() {
        let f = fixture(Some(r#"{ agents: { $include: "./agents.json5" } }"#));
        fs::write(f.state.join("agents.json5"), r#"{ list: [ { id: "inc", workspace: "~/inc-ws" } ] }"#).unwrap();
        let l = f.discover();
        assert_eq!(l.agent_ids, vec!["inc"]);
        assert_eq!(l.workspace_of("inc"), Some(f.home.join("inc-ws").as_path()));
        assert_eq!(l.config_files.len(), 2);
    }

    #[test]
    fn profiles_legacy_dirs_and_config_path_variable() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().canonicalize().unwrap();
        fs::create_dir(home.join(".clawdbot")).unwrap();
        fs::write(home.join(".clawdbot/clawdbot.json"), r#"{ meta: { lastTouchedVersion: "2025.12.1" } }"#).unwrap();
        let env = Env::from_pairs([("HOME", home.to_str().unwrap())]);
        let l = discover(&env).unwrap();
        assert_eq!(l.state_dir, home.join(".clawdbot"));
        assert_eq!(l.config_path, home.join(".clawdbot/clawdbot.json"));
        assert_eq!(l.openclaw_version.as_deref(), Some("2025.12.1"));
        assert_eq!(l.workspaces[0].path, home.join(".clawdbot/workspace"));

        // OPENCLAW_PROFILE alone changes nothing; `--profile dev` (its environment) does.
        let l = discover(&env.clone().with("OPENCLAW_PROFILE", "dev")).unwrap();
        assert_eq!(l.state_dir, home.join(".clawdbot"));
        let l = discover(&env.clone().with_profile("dev").unwrap()).unwrap();
        assert_eq!(l.state_dir, home.join(".openclaw-dev"));
        assert_eq!(l.workspaces[0].path, home.join(".openclaw-dev/workspace"));

        fs::write(home.join("elsewhere.json"), r#"{ agents: { defaults: { workspace: "/w" } } }"#).unwrap();
        let l = discover(&env.with("OPENCLAW_CONFIG_PATH", "~/elsewhere.json")).unwrap();
        assert_eq!(l.config_path, home.join("elsewhere.json"));
        assert_eq!(l.workspaces[0].path, PathBuf::from("/w"));
    }

    #[test]
    fn broken_config_is_an_error_naming_the_file() {
        let f = fixture(Some("{ agents: "));
        let e = discover(&f.env()).unwrap_err().to_string();
        assert!(e.contains("openclaw.json"), "{e}");
    }

    #[test]
    fn roots_leave_out_nested_and_missing_paths() {
        let f = fixture(Some(
            r#"{ agents: { list: [
                { id: "main" },
                { id: "out", workspace: "~/out" },
                { id: "nested", workspace: "~/out/sub" },
                { id: "gone", workspace: "~/missing" },
                { id: "ext", agentDir: "~/agentdirs/ext" },
            ] } }"#,
        ));
        for d in ["out/sub", "agentdirs/ext"] {
            fs::create_dir_all(f.home.join(d)).unwrap();
        }
        fs::create_dir_all(f.state.join("workspace")).unwrap();
        let l = f.discover();
        assert_eq!(l.roots(), vec![f.state.clone(), f.home.join("out"), f.home.join("agentdirs/ext")]);
        // The config file outside the state dir is a root of its own.
        let env = f.env().with("OPENCLAW_CONFIG_PATH", f.home.join("cfg.json").to_str().unwrap());
        fs::write(f.home.join("cfg.json"), "{}").unwrap();
        let l = discover(&env).unwrap();
        assert_eq!(l.roots(), vec![f.state.clone(), f.home.join("cfg.json")]);
    }

    #[test]
    fn symlinked_managed_skills_outside_the_roots_are_read() {
        let f = fixture(None);
        let skills = f.state.join("skills");
        fs::create_dir_all(&skills).unwrap();
        for d in ["dev/linked", "dev/notaskill", "dev/other"] {
            fs::create_dir_all(f.home.join(d)).unwrap();
        }
        fs::write(f.home.join("dev/linked/SKILL.md"), "# skill").unwrap();
        fs::write(f.home.join("dev/other/SKILL.md"), "# skill").unwrap();
        std::os::unix::fs::symlink(f.home.join("dev/linked"), skills.join("linked")).unwrap();
        std::os::unix::fs::symlink(f.home.join("dev/notaskill"), skills.join("plain")).unwrap();
        // A skill linked from inside a root is read with that root already.
        fs::create_dir_all(f.state.join("workspace/own")).unwrap();
        fs::write(f.state.join("workspace/own/SKILL.md"), "# skill").unwrap();
        std::os::unix::fs::symlink(f.state.join("workspace/own"), skills.join("own")).unwrap();
        fs::create_dir_all(skills.join("local")).unwrap();
        fs::write(skills.join("local/SKILL.md"), "# skill").unwrap();
        let roots = vec![f.state.clone()];
        assert_eq!(managed_skill_targets(&f.state, &roots), vec![f.home.join("dev/linked")]);
        // A link to a folder holding a root is not followed (it would read the whole home).
        std::os::unix::fs::symlink(&f.home, skills.join("home")).unwrap();
        fs::write(f.home.join("SKILL.md"), "# not really").unwrap();
        assert_eq!(managed_skill_targets(&f.state, &roots), vec![f.home.join("dev/linked")]);
    }

    #[test]
    fn a_workspace_containing_the_state_dir_covers_it() {
        let f = fixture(Some(r#"{ agents: { defaults: { workspace: "~" } } }"#));
        let l = f.discover();
        assert_eq!(l.roots(), vec![f.home.clone()]);
        assert!(!l.workspaces[0].inside_state);
    }

    #[test]
    fn layout_serializes_for_snapshot_metadata() {
        let f = fixture(None);
        let l = f.discover();
        let j = serde_json::to_value(&l).unwrap();
        assert_eq!(j["agent_ids"], serde_json::json!(["main"]));
        let back: Layout = serde_json::from_value(j).unwrap();
        assert_eq!(back, l);
    }
}
