//! Where OpenClaw keeps its state and its config file, resolved exactly as OpenClaw 2026.9.6's
//! `resolveStateDir` / `resolveConfigPath` / `resolveOAuthDir` do (src/config/state-dir.ts,
//! src/config/paths.ts). `OPENCLAW_PROFILE` alone selects nothing here: OpenClaw's `--profile`
//! flag sets `OPENCLAW_STATE_DIR` and `OPENCLAW_CONFIG_PATH` ([`super::profile`]).

use std::path::{Path, PathBuf};

use super::env::Env;

/// The state folder's name in the home, and the one it had before the rename (the only legacy
/// name OpenClaw 2026.9.6 still looks for).
pub const STATE_DIRNAME: &str = ".openclaw";
pub const LEGACY_STATE_DIRNAMES: [&str; 1] = [".clawdbot"];
/// The config file's name in the state dir, and the name it had before.
pub const CONFIG_FILENAME: &str = "openclaw.json";
pub const LEGACY_CONFIG_FILENAMES: [&str; 1] = ["clawdbot.json"];

/// The state dir:
/// 1. `OPENCLAW_STATE_DIR`, `~`-expanded and made absolute;
/// 2. `<home>/.openclaw` if it exists, else `<home>/.clawdbot` if that exists, else
///    `<home>/.openclaw`.
///
/// `<home>` is [`Env::home`] (`OPENCLAW_HOME`, else `HOME`).
pub fn state_dir(env: &Env) -> PathBuf {
    if let Some(d) = env.get_trimmed("OPENCLAW_STATE_DIR") {
        return env.resolve_user_path(d);
    }
    default_state_dir(env)
}

/// The state dir when `OPENCLAW_STATE_DIR` is not set (`resolveStateDirFromHome`).
fn default_state_dir(env: &Env) -> PathBuf {
    let home = env.home();
    let new = home.join(STATE_DIRNAME);
    if new.exists() {
        return new;
    }
    LEGACY_STATE_DIRNAMES.iter().map(|n| home.join(n)).find(|d| d.exists()).unwrap_or(new)
}

/// The active config file for the state dir `state` (OpenClaw's `resolveConfigPath`):
/// 1. `OPENCLAW_CONFIG_PATH`, `~`-expanded;
/// 2. the first of `<state>/openclaw.json`, `<state>/clawdbot.json` that exists;
/// 3. with `OPENCLAW_STATE_DIR` set: `<state>/openclaw.json`;
/// 4. when `state` is the default state dir: the first that exists of `openclaw.json` and
///    `clawdbot.json` in `~/.openclaw`, then in `~/.clawdbot`;
/// 5. else `<state>/openclaw.json`.
pub fn config_path(env: &Env, state: &Path) -> PathBuf {
    if let Some(p) = env.get_trimmed("OPENCLAW_CONFIG_PATH") {
        return env.resolve_user_path(p);
    }
    let names = || std::iter::once(CONFIG_FILENAME).chain(LEGACY_CONFIG_FILENAMES);
    if let Some(p) = names().map(|n| state.join(n)).find(|p| p.exists()) {
        return p;
    }
    let canonical = state.join(CONFIG_FILENAME);
    if env.get_trimmed("OPENCLAW_STATE_DIR").is_some() || env.absolute_path(state) != default_state_dir(env) {
        return canonical;
    }
    let home = env.home();
    std::iter::once(STATE_DIRNAME)
        .chain(LEGACY_STATE_DIRNAMES)
        .flat_map(|d| names().map(move |n| (d, n)))
        .map(|(d, n)| home.join(d).join(n))
        .find(|p| p.exists())
        .unwrap_or(canonical)
}

/// The credentials folder (`resolveOAuthDir`): `OPENCLAW_OAUTH_DIR`, else `<state>/credentials`.
/// OpenClaw's backup reads it as a root of its own when it lies outside the state dir.
pub fn oauth_dir(env: &Env, state: &Path) -> PathBuf {
    match env.get_trimmed("OPENCLAW_OAUTH_DIR") {
        Some(d) => env.resolve_user_path(d),
        None => state.join("credentials"),
    }
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
        // The variable wins over a profile name, which alone selects nothing.
        let env = Env::from_pairs([("HOME", "/home/u"), ("OPENCLAW_STATE_DIR", "/s"), ("OPENCLAW_PROFILE", "work")]);
        assert_eq!(state_dir(&env), PathBuf::from("/s"));
        // Names OpenClaw 2026.9.6 no longer reads.
        let env = Env::from_pairs([("HOME", "/home/u"), ("CLAWDBOT_STATE_DIR", "/legacy")]);
        assert_eq!(state_dir(&env), PathBuf::from("/home/u/.openclaw"));
    }

    #[test]
    fn state_dir_default_when_nothing_exists() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(state_dir(&home_env(t.path())), t.path().join(".openclaw"));
    }

    #[test]
    fn openclaw_profile_alone_does_not_switch_the_state_dir() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join(".openclaw-work")).unwrap();
        let env = home_env(t.path()).with("OPENCLAW_PROFILE", "work");
        assert_eq!(state_dir(&env), t.path().join(".openclaw"));
        assert_eq!(config_path(&env, &state_dir(&env)), t.path().join(".openclaw/openclaw.json"));
    }

    #[test]
    fn state_dir_uses_openclaw_home() {
        let t = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("HOME", "/nonexistent-home"), ("OPENCLAW_HOME", t.path().to_str().unwrap())]);
        assert_eq!(state_dir(&env), t.path().join(".openclaw"));
    }

    #[test]
    fn legacy_state_dir_only_when_the_new_one_is_absent() {
        let t = tempfile::tempdir().unwrap();
        // Older names than .clawdbot are not looked for any more.
        fs::create_dir(t.path().join(".moltbot")).unwrap();
        assert_eq!(state_dir(&home_env(t.path())), t.path().join(".openclaw"));
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
        // The default state dir without a config: one in ~/.clawdbot is used.
        fs::create_dir(t.path().join(".clawdbot")).unwrap();
        fs::write(t.path().join(".clawdbot/clawdbot.json"), "{}").unwrap();
        assert_eq!(config_path(&env, &state), t.path().join(".clawdbot/clawdbot.json"));
        // ... but not for a state dir named by OPENCLAW_STATE_DIR.
        let named = env.clone().with("OPENCLAW_STATE_DIR", state.to_str().unwrap());
        assert_eq!(config_path(&named, &state), state.join("openclaw.json"));
        fs::write(state.join("clawdbot.json"), "{}").unwrap();
        assert_eq!(config_path(&env, &state), state.join("clawdbot.json"));
        fs::write(state.join("openclaw.json"), "{}").unwrap();
        assert_eq!(config_path(&env, &state), state.join("openclaw.json"));
        let env = env.with("OPENCLAW_CONFIG_PATH", "~/etc/oc.json5");
        assert_eq!(config_path(&env, &state), t.path().join("etc/oc.json5"));
    }

    #[test]
    fn oauth_dir_from_variable_or_state() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(oauth_dir(&env, Path::new("/s")), PathBuf::from("/s/credentials"));
        let env = env.with("OPENCLAW_OAUTH_DIR", "~/creds");
        assert_eq!(oauth_dir(&env, Path::new("/s")), PathBuf::from("/home/u/creds"));
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
