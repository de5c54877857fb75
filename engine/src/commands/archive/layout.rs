//! OpenClaw's layout as an imported archive declares it: the archived openclaw.json (at the
//! manifest's `paths.configPath`), resolved by the layout code discovery uses, completed by the
//! manifest's `paths.agentRoots` and `workspaceDirs`.

use super::manifest::Manifest;
use super::tree::{comps_of, DirB};
use crate::format::snapshot::{BackupIssue, OpenclawMeta};
use crate::openclaw::paths::{
    normalize_agent_id, CONFIG_FILENAME, LEGACY_CONFIG_FILENAMES, LEGACY_STATE_DIRNAMES, STATE_DIRNAME,
};
use crate::openclaw::{include, layout, vars, Env, OpenClawConfig};
use std::path::{Path, PathBuf};

/// Largest file read as OpenClaw's config, and how many candidates are held (see
/// `config_candidate`).
pub(super) const MAX_CONFIG: u64 = 4 << 20;
pub(super) const MAX_CONFIG_CANDIDATES: usize = 16;

/// The state dir an archive declares: the manifest's `paths.stateDir`, else its `state` asset.
pub(super) fn manifest_state(m: &Manifest) -> Option<PathBuf> {
    let abs = |s: &String| s.starts_with('/').then(|| PathBuf::from(s));
    m.state_dir
        .as_ref()
        .and_then(abs)
        .or_else(|| m.assets.iter().find(|(k, s, _)| k == "state" && s.starts_with('/')).map(|(_, s, _)| s.into()))
}

/// Whether an archived file may be OpenClaw's config: the path the manifest names (once read:
/// OpenClaw writes the manifest last, clawback first), or any file with one of the config's names.
/// Such files are held in memory until the end, when `archived_config` picks the one the
/// manifest names.
pub(super) fn config_candidate(abs: &Path, m: Option<&Manifest>) -> bool {
    let named = m.into_iter().flat_map(|m| {
        let ext = m.clawback.as_ref().and_then(|x| x.openclaw.as_ref()).and_then(|o| o.config_path.as_deref());
        m.config_path.as_deref().into_iter().chain(ext)
    });
    if named.into_iter().any(|p| Path::new(p) == abs) {
        return true;
    }
    abs.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == CONFIG_FILENAME || LEGACY_CONFIG_FILENAMES.contains(&n))
}

/// The archived config: the file at the manifest's `configPath`, else `<state>/openclaw.json` (or
/// a legacy name), if the archive holds it.
pub(super) fn archived_config<'c>(m: &Manifest, configs: &'c [(PathBuf, Vec<u8>)]) -> Option<(&'c Path, &'c [u8])> {
    let state = manifest_state(m)?;
    let mut want: Vec<PathBuf> = m.config_path.iter().filter(|p| p.starts_with('/')).map(PathBuf::from).collect();
    want.push(state.join(CONFIG_FILENAME));
    want.extend(LEGACY_CONFIG_FILENAMES.iter().map(|n| state.join(n)));
    want.iter().find_map(|w| configs.iter().find(|(p, _)| p == w)).map(|(p, d)| (p.as_path(), d.as_slice()))
}

/// OpenClaw's layout as the archive declares it. Its config (`config`, the archived
/// openclaw.json) is resolved by the layout code discovery uses (`agents.entries` / `agents.list`
/// with each agent's `workspace` and `agentDir`, `agents.defaults.workspace`), as on the machine
/// it came from (HOME the state dir's parent); the manifest's `agentRoots` (each agent's dir as
/// OpenClaw resolved it) and `workspaceDirs` complete it. Without a config the agents are those of
/// `agentRoots`, else the folders under `<state>/agents/`, placed by OpenClaw's defaults.
pub(super) fn openclaw_meta(
    m: &Manifest,
    config: Option<(&Path, &[u8])>,
    top: &DirB,
    warnings: &mut Vec<BackupIssue>,
) -> Option<OpenclawMeta> {
    let state = manifest_state(m)?;
    let held = |p: &Path| top.contains(&comps_of(p));
    let home = state
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n == STATE_DIRNAME || LEGACY_STATE_DIRNAMES.contains(n))
        .and_then(|_| state.parent());
    let mut env = Env::from_pairs([("OPENCLAW_STATE_DIR", state.to_string_lossy().into_owned())]);
    if let Some(h) = home {
        env = env.with("HOME", h.to_string_lossy().into_owned());
    }
    // Relative settings resolve against the archived machine's folders, never this process's.
    env.cwd = Some(home.unwrap_or(&state).to_path_buf());

    let config_path = match config {
        Some((p, _)) => p.to_path_buf(),
        None => m
            .config_path
            .as_ref()
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from)
            .unwrap_or_else(|| state.join(CONFIG_FILENAME)),
    };
    let parsed = config.and_then(|(p, bytes)| {
        let v = std::str::from_utf8(bytes)
            .map_err(|_| "it is not UTF-8".to_string())
            .and_then(|t| include::parse_json5(p, t).map_err(|e| e.to_string()))
            .and_then(|v| if v.is_object() { Ok(v) } else { Err("it is not a JSON object".into()) });
        match v {
            Ok(v) => Some(v),
            Err(why) => {
                warnings.push(BackupIssue {
                    path: p.to_string_lossy().into_owned(),
                    error: format!(
                        "cannot read the archived config ({why}); its agents were placed by OpenClaw's defaults"
                    ),
                });
                None
            }
        }
    });
    let exists = parsed.is_some();
    let raw = parsed.unwrap_or_else(|| {
        // No config: the agents the manifest or the state dir names, with their folders.
        let mut entries = serde_json::Map::new();
        for (id, dir) in &m.agent_roots {
            entries.insert(id.clone(), serde_json::json!({ "agentDir": dir }));
        }
        if entries.is_empty() {
            let mut ac = comps_of(&state);
            ac.push(b"agents");
            for id in top.subdirs(&ac) {
                entries.insert(String::from_utf8_lossy(&id).into_owned(), serde_json::json!({}));
            }
        }
        serde_json::json!({ "agents": { "entries": entries } })
    });
    let mut unresolved = Vec::new();
    let value = vars::substitute(&raw, &env, &mut unresolved);
    let cfg = OpenClawConfig {
        state_dir: state.clone(),
        path: config_path.clone(),
        exists,
        raw,
        value,
        vars: env.clone(),
        files: vec![config_path],
        unresolved,
        warnings: Vec::new(),
    };
    let defaults_ws = cfg
        .get("agents.defaults.workspace")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .map(|s| env.resolve_user_path(s));
    let lay = layout::layout_from(&cfg, &env);
    let mut meta = lay.to_meta();

    let declared: Vec<PathBuf> = m.workspace_dirs.iter().filter(|p| p.starts_with('/')).map(PathBuf::from).collect();
    for a in &mut meta.agents {
        if let Some((_, dir)) =
            m.agent_roots.iter().find(|(id, d)| normalize_agent_id(id) == a.id && d.starts_with('/'))
        {
            a.agent_dir = dir.clone();
        }
        // An agent without a workspace of its own lives in `<state>/workspace-<id>` or, in newer
        // releases, `<agents.defaults.workspace>/<id>`; discovery tells them apart on disk, an
        // archive by what it declares and holds.
        let ws = PathBuf::from(&a.workspace);
        let fallbacks = [Some(state.join(format!("workspace-{}", a.id))), defaults_ws.as_ref().map(|d| d.join(&a.id))];
        let known = |p: &Path| declared.iter().any(|d| d == p) || held(p);
        if !known(&ws) && fallbacks.iter().flatten().any(|f| *f == ws) {
            if let Some(f) = fallbacks.iter().flatten().find(|f| **f != ws && known(f)) {
                a.workspace = f.to_string_lossy().into_owned();
            }
        }
    }
    // The default agent's workspace first, as discovery orders them, then what the manifest adds.
    let mut workspaces: Vec<String> = Vec::new();
    let by_default = meta.agents.iter().filter(|a| a.default).chain(meta.agents.iter().filter(|a| !a.default));
    let also = declared.iter().map(|d| d.to_string_lossy().into_owned());
    for w in by_default.map(|a| a.workspace.clone()).chain(also) {
        if !workspaces.contains(&w) {
            workspaces.push(w);
        }
    }
    meta.workspaces = workspaces;
    if m.runtime_version.is_some() {
        meta.openclaw_version = m.runtime_version.clone();
        meta.openclaw_version_source = Some(crate::format::snapshot::VersionSource::Archive);
    } else if meta.openclaw_version.is_some() {
        meta.openclaw_version_source = Some(crate::format::snapshot::VersionSource::Config);
    }
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::super::manifest::parse_manifest;
    use super::*;
    use crate::commands::backup::node::made_up_node;
    use crate::format::tree::NodeKind;

    /// An archive tree holding `paths` as folders.
    fn tree_with(paths: &[&str]) -> DirB {
        let mut top = DirB::default();
        for p in paths {
            let comps = comps_of(Path::new(p));
            for i in 1..=comps.len() {
                let name = comps[i - 1].to_vec();
                let _ = top.insert(&comps[..i], made_up_node(name, NodeKind::Dir, 0o755, 0, 0, 0), p);
            }
        }
        top
    }

    #[test]
    fn import_reads_the_agents_the_archived_config_declares() {
        let m = parse_manifest(
            br#"{"schemaVersion":1,"createdAt":"2026-03-09T08:00:00Z","archiveRoot":"r","runtimeVersion":"2026.9.6",
                "paths":{"stateDir":"/h/.openclaw","configPath":"/h/.openclaw/openclaw.json",
                         "workspaceDirs":["/h/.openclaw/workspace","/h/work/worker","/h/ws/helper"],
                         "agentRoots":[{"agentId":"worker","sourcePath":"/data/worker-agent"}]},
                "assets":[{"kind":"state","sourcePath":"/h/.openclaw","archivePath":"r/payload/posix/h/.openclaw"}]}"#,
        )
        .unwrap();
        assert_eq!(m.agent_roots, [("worker".to_string(), "/data/worker-agent".to_string())]);
        let config = br#"{
            // JSON5, as OpenClaw reads it
            agents: {
                defaults: { workspace: "~/ws" },
                entries: { molty: { default: true }, worker: { workspace: "~/work/worker" }, helper: {} },
            },
            meta: { lastTouchedVersion: "2026.9.1" },
        }"#;
        let top = tree_with(&["/h/.openclaw/agents/molty", "/h/work/worker"]);
        let mut warnings = Vec::new();
        let cfg = Path::new("/h/.openclaw/openclaw.json");
        let meta = openclaw_meta(&m, Some((cfg, config.as_slice())), &top, &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(&str, bool, &str, &str)> = meta
            .agents
            .iter()
            .map(|a| (a.id.as_str(), a.default, a.workspace.as_str(), a.agent_dir.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                // The default agent: agents.defaults.workspace; `~` is the archived machine's home.
                ("helper", false, "/h/ws/helper", "/h/.openclaw/agents/helper/agent"),
                ("molty", true, "/h/ws", "/h/.openclaw/agents/molty/agent"),
                // Its own workspace, and its dir as the manifest's agentRoots has it.
                ("worker", false, "/h/work/worker", "/data/worker-agent"),
            ]
        );
        assert_eq!(meta.config_path.as_deref(), Some("/h/.openclaw/openclaw.json"));
        assert_eq!(meta.openclaw_version.as_deref(), Some("2026.9.6"), "the manifest's runtime version");
        assert_eq!(meta.workspaces[0], "/h/ws", "the default agent's first");
        for w in ["/h/ws/helper", "/h/work/worker", "/h/.openclaw/workspace"] {
            assert!(meta.workspaces.iter().any(|x| x == w), "{w} in {:?}", meta.workspaces);
        }

        // A config that does not parse: a warning, and the agents the manifest names.
        let meta = openclaw_meta(&m, Some((cfg, b"{ agents: ".as_slice())), &top, &mut warnings).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].error.contains("cannot read the archived config"), "{warnings:?}");
        let ids: Vec<&str> = meta.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["worker"]);
        assert_eq!(meta.agents[0].agent_dir, "/data/worker-agent");
        assert_eq!(meta.config_path, None);
    }
}
