//! Where OpenClaw keeps its state and its config file, resolved as OpenClaw's own
//! `resolveStateDir` / `resolveConfigPath` do (src/config/paths.ts, src/cli/profile.ts).

use std::path::{Path, PathBuf};

use super::env::Env;

/// The state folder's name in the home, and the names it had before the renames.
pub const STATE_DIRNAME: &str = ".openclaw";
pub const LEGACY_STATE_DIRNAMES: [&str; 3] = [".clawdbot", ".moldbot", ".moltbot"];
/// The config file's name in the state dir, and the names it had before.
pub const CONFIG_FILENAME: &str = "openclaw.json";
pub const LEGACY_CONFIG_FILENAMES: [&str; 3] = ["clawdbot.json", "moldbot.json", "moltbot.json"];

/// The state dir:
/// 1. `OPENCLAW_STATE_DIR` (legacy `CLAWDBOT_STATE_DIR`), `~`-expanded;
/// 2. with `OPENCLAW_PROFILE=p` (not `default`): `<home>/.openclaw-p`, as `openclaw --profile p`
///    sets it;
/// 3. `<home>/.openclaw` if it exists, else the first of `~/.clawdbot`, `~/.moldbot`,
///    `~/.moltbot` that exists, else `<home>/.openclaw`.
///
/// `<home>` is `OPENCLAW_HOME`, else `HOME`.
pub fn state_dir(env: &Env) -> PathBuf {
    if let Some(d) = env.get_trimmed("OPENCLAW_STATE_DIR").or_else(|| env.get_trimmed("CLAWDBOT_STATE_DIR")) {
        return env.resolve_user_path(d);
    }
    let home = env.home();
    if let Some(p) = env.get_trimmed("OPENCLAW_PROFILE") {
        // `--profile default` sets the state dir to `~/.openclaw` explicitly: no legacy lookup.
        let suffix = if p.eq_ignore_ascii_case("default") { String::new() } else { format!("-{p}") };
        return home.join(format!("{STATE_DIRNAME}{suffix}"));
    }
    let new = home.join(STATE_DIRNAME);
    if new.exists() {
        return new;
    }
    LEGACY_STATE_DIRNAMES.iter().map(|n| home.join(n)).find(|d| d.exists()).unwrap_or(new)
}

/// The active config file: `OPENCLAW_CONFIG_PATH` (legacy `CLAWDBOT_CONFIG_PATH`), else the first
/// of `openclaw.json`, `clawdbot.json`, `moldbot.json`, `moltbot.json` in the state dir that
/// exists, else `<state>/openclaw.json`.
pub fn config_path(env: &Env, state_dir: &Path) -> PathBuf {
    if let Some(p) = env.get_trimmed("OPENCLAW_CONFIG_PATH").or_else(|| env.get_trimmed("CLAWDBOT_CONFIG_PATH")) {
        return env.resolve_user_path(p);
    }
    std::iter::once(CONFIG_FILENAME)
        .chain(LEGACY_CONFIG_FILENAMES)
        .map(|n| state_dir.join(n))
        .find(|p| p.exists())
        .unwrap_or_else(|| state_dir.join(CONFIG_FILENAME))
}

/// OpenClaw's `normalizeAgentId`: trimmed and lower-cased; anything but `[a-z0-9_-]` collapses
/// to `-`, at most 64 characters; empty becomes `main`.
pub fn normalize_agent_id(raw: &str) -> String {
    let t = raw.trim();
    if t.is_empty() {
        return DEFAULT_AGENT_ID.to_string();
    }
    let valid = t.len() <= 64
        && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        return t.to_ascii_lowercase();
    }
    let mut out = String::new();
    let mut dash = false;
    for c in t.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    let out: String = out.trim_matches('-').chars().take(64).collect();
    if out.is_empty() {
        DEFAULT_AGENT_ID.to_string()
    } else {
        out
    }
}

/// The agent id OpenClaw uses when none is configured.
pub const DEFAULT_AGENT_ID: &str = "main";

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn home_env(home: &Path) -> Env {
        Env::from_pairs([("HOME", home.to_str().unwrap())])
    }

    #[test]
    fn state_dir_from_variable_with_tilde() {
        let env = Env::from_pairs([("HOME", "/home/u"), ("OPENCLAW_STATE_DIR", "~/custom/")]);
        assert_eq!(state_dir(&env), PathBuf::from("/home/u/custom"));
        let env = Env::from_pairs([("HOME", "/home/u"), ("CLAWDBOT_STATE_DIR", "/legacy")]);
        assert_eq!(state_dir(&env), PathBuf::from("/legacy"));
        // The variable wins over a profile.
        let env = Env::from_pairs([("HOME", "/home/u"), ("OPENCLAW_STATE_DIR", "/s"), ("OPENCLAW_PROFILE", "work")]);
        assert_eq!(state_dir(&env), PathBuf::from("/s"));
    }

    #[test]
    fn state_dir_default_when_nothing_exists() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(state_dir(&home_env(t.path())), t.path().join(".openclaw"));
    }

    #[test]
    fn state_dir_profiles() {
        let t = tempfile::tempdir().unwrap();
        let env = home_env(t.path()).with("OPENCLAW_PROFILE", "work");
        assert_eq!(state_dir(&env), t.path().join(".openclaw-work"));
        let env = home_env(t.path()).with("OPENCLAW_PROFILE", "Default");
        assert_eq!(state_dir(&env), t.path().join(".openclaw"));
        // A profile never falls back to the legacy dirs.
        fs::create_dir(t.path().join(".clawdbot")).unwrap();
        let env = home_env(t.path()).with("OPENCLAW_PROFILE", "default");
        assert_eq!(state_dir(&env), t.path().join(".openclaw"));
    }

    #[test]
    fn state_dir_uses_openclaw_home() {
        let t = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("HOME", "/nonexistent-home"), ("OPENCLAW_HOME", t.path().to_str().unwrap())]);
        assert_eq!(state_dir(&env), t.path().join(".openclaw"));
        let env = env.with("OPENCLAW_PROFILE", "p");
        assert_eq!(state_dir(&env), t.path().join(".openclaw-p"));
    }

    #[test]
    fn legacy_state_dirs_only_when_the_new_one_is_absent() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join(".moltbot")).unwrap();
        assert_eq!(state_dir(&home_env(t.path())), t.path().join(".moltbot"));
        fs::create_dir(t.path().join(".clawdbot")).unwrap();
        assert_eq!(state_dir(&home_env(t.path())), t.path().join(".clawdbot"));
        fs::create_dir(t.path().join(".openclaw")).unwrap();
        assert_eq!(state_dir(&home_env(t.path())), t.path().join(".openclaw"));
    }

    #[test]
    fn config_path_resolution() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join(".openclaw");
        fs::create_dir(&state).unwrap();
        let env = home_env(t.path());
        assert_eq!(config_path(&env, &state), state.join("openclaw.json"));
        fs::write(state.join("clawdbot.json"), "{}").unwrap();
        assert_eq!(config_path(&env, &state), state.join("clawdbot.json"));
        fs::write(state.join("openclaw.json"), "{}").unwrap();
        assert_eq!(config_path(&env, &state), state.join("openclaw.json"));
        let env = env.with("OPENCLAW_CONFIG_PATH", "~/etc/oc.json5");
        assert_eq!(config_path(&env, &state), t.path().join("etc/oc.json5"));
    }

    #[test]
    fn agent_ids_normalize_like_openclaw() {
        assert_eq!(normalize_agent_id("Main"), "main");
        assert_eq!(normalize_agent_id("  "), "main");
        assert_eq!(normalize_agent_id("my agent!"), "my-agent");
        assert_eq!(normalize_agent_id("--x--"), "x");
        assert_eq!(normalize_agent_id("a_b-c9"), "a_b-c9");
        assert_eq!(normalize_agent_id("%%%"), "main");
        assert_eq!(normalize_agent_id(&"a".repeat(80)).len(), 64);
    }
}
