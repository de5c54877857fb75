//! The parts of an OpenClaw install that `restore --only` names besides whole folders, and where
//! OpenClaw keeps each one. Two storage eras exist, and a snapshot may hold either (or both, half
//! migrated); every candidate location of both is listed, and the restore keeps those the snapshot
//! actually holds:
//!
//! | part | file era (≤ 2026.1) | SQLite era (2026.x, seen in 2026.9.6) |
//! |---|---|---|
//! | `sessions` | `<state>/agents/<id>/sessions/` (`sessions.json` + `<sessionId>.jsonl`) | rows of `agents/<id>/agent/openclaw-agent.sqlite` (`session_nodes` and what cascades from it); `sessions/` stays (mostly empty) |
//! | `session:AGENT/ID` | that agent's transcript files of the session, and its `sessions.json` entry | that session's rows |
//! | `cron` | `<state>/cron/` (`jobs.json`, `runs/*.jsonl`) | `cron_jobs` rows of `<state>/state/openclaw.sqlite` |
//! | `memory` | `MEMORY.md` and `memory/` of every workspace; the index in `<state>/memory/<id>.sqlite` | the same files; the index lives in the agent database and is rebuilt from them |
//! | `config` | `openclaw.json` (the active config file), the files it `$include`s, `<state>/.env` | the same |
//! | `credentials` | `<state>/credentials/`; `auth-profiles.json`, `auth-state.json`, `auth.json` in each agent dir | `<state>/credentials/`; `auth_profile_store`/`auth_profile_state` rows of each agent database and the shared `authProfiles.*` rows of `config_machine_state` |
//!
//! The memory index of the SQLite era is not restored row by row: it is derived from the Markdown
//! files, and OpenClaw re-indexes changed files (`openclaw memory index`).

use std::path::{Path, PathBuf};

use super::paths::normalize_agent_id;
use super::rows::{RowKind, RowSet, SHARED_AUTH_KEYS};
use crate::format::snapshot::OpenclawMeta;

/// What `--only` accepts, for messages.
pub const ONLY_VALUES: &str =
    "state, workspace, agent:ID, sessions, session:AGENT/ID, memory, cron, config, credentials, or an absolute path";

/// An agent database's file name (`src/state/openclaw-agent-db.paths.ts`).
pub const AGENT_DB: &str = "openclaw-agent.sqlite";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Sessions,
    /// One session of one agent: `id` is a session id or a session key.
    Session {
        agent: String,
        id: String,
    },
    Memory,
    Cron,
    Config,
    Credentials,
}

impl Part {
    /// The part `s` names; `Ok(None)` when it names none (`state`, a path, ...), an error for a
    /// malformed `session:` value.
    pub fn parse(s: &str) -> Result<Option<Part>, String> {
        Ok(Some(match s {
            "sessions" => Part::Sessions,
            "memory" => Part::Memory,
            "cron" => Part::Cron,
            "config" => Part::Config,
            "credentials" => Part::Credentials,
            _ => {
                let Some(rest) = s.strip_prefix("session:") else { return Ok(None) };
                match rest.split_once('/') {
                    Some((a, id)) if !a.trim().is_empty() && !id.trim().is_empty() => {
                        Part::Session { agent: normalize_agent_id(a), id: id.trim().to_string() }
                    }
                    _ => {
                        return Err(format!(
                            "--only {s}: expected session:AGENT/ID (an agent id, a slash, a session id or key, as \
                             `openclaw sessions --all-agents --json` lists them)"
                        ))
                    }
                }
            }
        }))
    }

    /// What the part holds, for messages (`cron jobs`).
    pub fn what(&self) -> &'static str {
        match self {
            Part::Sessions => "sessions",
            Part::Session { .. } => "session",
            Part::Memory => "memory files",
            Part::Cron => "cron jobs",
            Part::Config => "config",
            Part::Credentials => "credentials",
        }
    }
}

/// Where a part may live per the snapshot's metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Located {
    /// Files and folders (absolute).
    pub paths: Vec<PathBuf>,
    /// Units in databases; for [`Part::Session`] with no keys yet (the restore looks the id up).
    pub rows: Vec<RowSet>,
}

/// The databases an agent's rows may be in: `<state>/agents/<id>/agent/openclaw-agent.sqlite`, and
/// the configured agent dir's when that is elsewhere.
pub fn agent_databases(meta: &OpenclawMeta, id: &str) -> Vec<PathBuf> {
    let state = Path::new(&meta.state_dir);
    let mut v = vec![state.join("agents").join(id).join("agent").join(AGENT_DB)];
    if let Some(a) = meta.agents.iter().find(|a| a.id == id) {
        if !a.agent_dir.is_empty() {
            let other = Path::new(&a.agent_dir).join(AGENT_DB);
            if !v.contains(&other) {
                v.push(other);
            }
        }
    }
    v
}

/// An agent's `sessions/` folder.
pub fn sessions_dir(meta: &OpenclawMeta, id: &str) -> PathBuf {
    Path::new(&meta.state_dir).join("agents").join(id).join("sessions")
}

fn agent_dir(meta: &OpenclawMeta, id: &str) -> PathBuf {
    match meta.agents.iter().find(|a| a.id == id) {
        Some(a) if !a.agent_dir.is_empty() => PathBuf::from(&a.agent_dir),
        _ => Path::new(&meta.state_dir).join("agents").join(id).join("agent"),
    }
}

fn set(db: PathBuf, kind: RowKind, keys: Vec<String>, files_dir: PathBuf) -> RowSet {
    RowSet { db, kind, keys, within: Vec::new(), files_dir }
}

/// Every location of `part` in both eras (see the module docs).
pub fn locate(part: &Part, meta: &OpenclawMeta) -> Located {
    let state = PathBuf::from(&meta.state_dir);
    let ids: Vec<&str> = meta.agents.iter().map(|a| a.id.as_str()).collect();
    let mut out = Located::default();
    match part {
        Part::Sessions | Part::Session { .. } => {
            let only: Vec<&str> = match part {
                Part::Session { agent, .. } => vec![agent.as_str()],
                _ => ids.clone(),
            };
            for id in only {
                let dir = sessions_dir(meta, id);
                if matches!(part, Part::Sessions) {
                    out.paths.push(dir.clone());
                }
                for db in agent_databases(meta, id) {
                    out.rows.push(set(db, RowKind::Session, Vec::new(), dir.clone()));
                }
            }
        }
        Part::Memory => {
            let mut ws: Vec<&str> = meta.workspaces.iter().map(String::as_str).collect();
            ws.extend(meta.agents.iter().map(|a| a.workspace.as_str()));
            ws.retain(|w| !w.is_empty());
            ws.sort();
            ws.dedup();
            for w in ws {
                let w = Path::new(w);
                out.paths.extend([w.join("MEMORY.md"), w.join("memory.md"), w.join("memory")]);
            }
            out.paths.push(state.join("memory"));
        }
        Part::Cron => {
            out.paths.push(state.join("cron"));
            let mut s = set(state.join("state/openclaw.sqlite"), RowKind::CronJob, Vec::new(), state.join("cron"));
            // OpenClaw keys its default cron store by this path (src/cron/store/paths.ts).
            s.within.push(state.join("cron/jobs.json").to_string_lossy().into_owned());
            out.rows.push(s);
        }
        Part::Config => {
            out.paths.push(meta.config_path.as_ref().map(PathBuf::from).unwrap_or_else(|| state.join("openclaw.json")));
            out.paths.extend(meta.config_files.iter().map(PathBuf::from));
            out.paths.push(state.join(".env"));
        }
        Part::Credentials => {
            out.paths.push(state.join("credentials"));
            for id in &ids {
                let dir = agent_dir(meta, id);
                out.paths.extend(["auth-profiles.json", "auth-state.json", "auth.json"].map(|n| dir.join(n)));
                for db in agent_databases(meta, id) {
                    out.rows.push(set(db.clone(), RowKind::AuthProfiles, Vec::new(), dir.clone()));
                    out.rows.push(set(db, RowKind::AuthState, Vec::new(), dir.clone()));
                }
            }
            // The shared store's file-era home is the implicit main agent's dir.
            out.rows.push(set(
                state.join("state/openclaw.sqlite"),
                RowKind::SharedAuth,
                SHARED_AUTH_KEYS.iter().map(|k| k.to_string()).collect(),
                state.join("agents/main/agent"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::AgentMeta;

    fn meta() -> OpenclawMeta {
        OpenclawMeta {
            state_dir: "/h/.openclaw".into(),
            config_path: Some("/h/.openclaw/openclaw.json".into()),
            config_files: vec!["/h/.openclaw/openclaw.json".into(), "/h/.openclaw/agents.json5".into()],
            workspaces: vec!["/h/.openclaw/workspace".into(), "/h/work".into()],
            agents: vec![
                AgentMeta {
                    id: "molty".into(),
                    default: true,
                    workspace: "/h/.openclaw/workspace".into(),
                    agent_dir: "/h/.openclaw/agents/molty/agent".into(),
                },
                AgentMeta {
                    id: "ops".into(),
                    default: false,
                    workspace: "/h/work".into(),
                    agent_dir: "/srv/ops".into(),
                },
            ],
            openclaw_version: None,
            openclaw_version_source: None,
        }
    }

    #[test]
    fn parts_parse_and_session_needs_agent_and_id() {
        assert_eq!(Part::parse("cron").unwrap(), Some(Part::Cron));
        assert_eq!(Part::parse("state").unwrap(), None);
        assert_eq!(Part::parse("/abs").unwrap(), None);
        assert_eq!(
            Part::parse("session:Molty/abc-1").unwrap(),
            Some(Part::Session { agent: "molty".into(), id: "abc-1".into() })
        );
        // A session key holds colons and may hold slashes after the first one.
        assert_eq!(
            Part::parse("session:molty/agent:molty:x/y").unwrap(),
            Some(Part::Session { agent: "molty".into(), id: "agent:molty:x/y".into() })
        );
        for bad in ["session:", "session:molty", "session:molty/", "session:/id"] {
            assert!(Part::parse(bad).unwrap_err().contains("session:AGENT/ID"), "{bad}");
        }
    }

    #[test]
    fn locations_of_both_eras() {
        let m = meta();
        let l = locate(&Part::Cron, &m);
        assert_eq!(l.paths, [PathBuf::from("/h/.openclaw/cron")]);
        assert_eq!(l.rows[0].db, PathBuf::from("/h/.openclaw/state/openclaw.sqlite"));
        assert_eq!(l.rows[0].within, ["/h/.openclaw/cron/jobs.json"]);

        let l = locate(&Part::Sessions, &m);
        assert_eq!(
            l.paths,
            [PathBuf::from("/h/.openclaw/agents/molty/sessions"), PathBuf::from("/h/.openclaw/agents/ops/sessions")]
        );
        let dbs: Vec<&Path> = l.rows.iter().map(|r| r.db.as_path()).collect();
        assert_eq!(
            dbs,
            [
                Path::new("/h/.openclaw/agents/molty/agent/openclaw-agent.sqlite"),
                Path::new("/h/.openclaw/agents/ops/agent/openclaw-agent.sqlite"),
                Path::new("/srv/ops/openclaw-agent.sqlite"),
            ]
        );

        let l = locate(&Part::Session { agent: "ops".into(), id: "x".into() }, &m);
        assert!(l.paths.is_empty());
        assert!(l.rows.iter().all(|r| r.kind == RowKind::Session && r.files_dir.ends_with("agents/ops/sessions")));

        let l = locate(&Part::Memory, &m);
        assert!(l.paths.contains(&PathBuf::from("/h/.openclaw/workspace/MEMORY.md")));
        assert!(l.paths.contains(&PathBuf::from("/h/work/memory")));
        assert!(l.paths.contains(&PathBuf::from("/h/.openclaw/memory")));
        assert!(l.rows.is_empty());

        let l = locate(&Part::Config, &m);
        assert!(
            l.paths.contains(&PathBuf::from("/h/.openclaw/agents.json5"))
                && l.paths.contains(&PathBuf::from("/h/.openclaw/.env"))
        );

        let l = locate(&Part::Credentials, &m);
        assert!(l.paths.contains(&PathBuf::from("/h/.openclaw/credentials")));
        assert!(l.paths.contains(&PathBuf::from("/srv/ops/auth-profiles.json")));
        assert!(l.rows.iter().any(|r| r.kind == RowKind::SharedAuth && r.keys.len() == 2));
        assert!(l.rows.iter().any(|r| r.kind == RowKind::AuthProfiles && r.files_dir == Path::new("/srv/ops")));
    }
}
