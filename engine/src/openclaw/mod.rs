//! Knowing OpenClaw: where its state dir and workspaces are, resolved the way OpenClaw resolves
//! them. (Config parsing, default excludes and live SQLite snapshots build on this.)

use std::path::PathBuf;

/// Environment the resolution reads; a struct so tests can give their own.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub vars: std::collections::HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars().collect(),
        }
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars
            .get(k)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }
    /// OpenClaw's notion of home: `OPENCLAW_HOME`, else `HOME`.
    pub fn home(&self) -> PathBuf {
        self.get("OPENCLAW_HOME")
            .or_else(|| self.get("HOME"))
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
    }
    /// Expands a leading `~` against OpenClaw's home.
    pub fn expand(&self, p: &str) -> PathBuf {
        if p == "~" {
            self.home()
        } else if let Some(rest) = p.strip_prefix("~/") {
            self.home().join(rest)
        } else {
            PathBuf::from(p)
        }
    }
}

/// The state dir: `OPENCLAW_STATE_DIR`; else `~/.openclaw` (`~/.openclaw-<profile>` with
/// `OPENCLAW_PROFILE`); the legacy `~/.clawdbot` or `~/.moltbot` when only they exist.
pub fn state_dir(env: &Env) -> PathBuf {
    if let Some(d) = env.get("OPENCLAW_STATE_DIR") {
        return env.expand(d);
    }
    let home = env.home();
    let name = match env.get("OPENCLAW_PROFILE") {
        Some(p) if p != "default" => format!(".openclaw-{p}"),
        _ => ".openclaw".to_string(),
    };
    let new = home.join(&name);
    if !new.exists() && env.get("OPENCLAW_PROFILE").is_none() {
        for legacy in [".clawdbot", ".moltbot"] {
            let l = home.join(legacy);
            if l.is_dir() {
                return l;
            }
        }
    }
    new
}
