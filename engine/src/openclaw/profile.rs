//! OpenClaw profiles, as `openclaw --profile NAME` selects one (src/cli/profile.ts,
//! `applyCliProfileEnv`, 2026.9.6): the flag, not the `OPENCLAW_PROFILE` variable, picks the
//! state dir. It sets `OPENCLAW_PROFILE=NAME`, `OPENCLAW_STATE_DIR=<home>/.openclaw-NAME` (plain
//! `~/.openclaw` for `default`) and `OPENCLAW_CONFIG_PATH=<that dir>/openclaw.json`, keeping a
//! state dir or config path already set unless it is the inherited profile's own; `dev` also sets
//! `OPENCLAW_GATEWAY_PORT=19001` when unset. clawback's `--profile` does the same to its own
//! environment, so everything after it (discovery, the gateway check, hooks, scheduled jobs)
//! sees what an `openclaw --profile NAME` command would.

use std::fmt;
use std::path::PathBuf;

use super::env::Env;

/// Variables a gateway service unit sets to select its install; a profile switch made inside
/// such a service drops them all when they name the inherited profile
/// (`GATEWAY_SERVICE_SELECTOR_ENV_KEYS`).
const SERVICE_SELECTOR_KEYS: &[&str] = &[
    "OPENCLAW_STATE_DIR",
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_PROFILE",
    "OPENCLAW_GATEWAY_PORT",
    "OPENCLAW_LAUNCHD_LABEL",
    "OPENCLAW_SYSTEMD_UNIT",
    "OPENCLAW_WINDOWS_TASK_NAME",
];

/// A profile name OpenClaw refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProfile {
    pub name: String,
    /// Where the name came from: `--profile` or `OPENCLAW_PROFILE`.
    pub source: &'static str,
}

impl fmt::Display for InvalidProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid OpenClaw profile name {:?} in {} (use letters, digits, \"_\" and \"-\", starting with a letter or \
             digit, at most 64 characters)",
            self.name, self.source
        )
    }
}

impl std::error::Error for InvalidProfile {}

/// OpenClaw's `isValidProfileName`: `^[a-z0-9][a-z0-9_-]{0,63}$`, any case.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// OpenClaw's `normalizeProfileName`: a valid name other than `default`, trimmed.
pub fn named_profile(raw: Option<&str>) -> Option<&str> {
    let p = raw?.trim();
    (is_valid_name(p) && !p.eq_ignore_ascii_case("default")).then_some(p)
}

/// `resolveProfileStateDir`: `<home>/.openclaw-NAME`, or `<home>/.openclaw` for `default`.
pub fn profile_state_dir(env: &Env, name: &str, source: &'static str) -> Result<PathBuf, InvalidProfile> {
    let name = name.trim();
    if !is_valid_name(name) {
        return Err(InvalidProfile { name: name.to_string(), source });
    }
    let suffix = if name.eq_ignore_ascii_case("default") { String::new() } else { format!("-{name}") };
    Ok(env.home().join(format!("{}{suffix}", super::paths::STATE_DIRNAME)))
}

/// One change to the environment: set a variable, or remove it (`None`).
pub type Change = (String, Option<String>);

/// The changes `openclaw --profile NAME` makes to the environment `env`, in order.
pub fn profile_changes(env: &Env, name: &str) -> Result<Vec<Change>, InvalidProfile> {
    let profile = name.trim();
    let selected = profile_state_dir(env, profile, "--profile")?;
    let inherited_name = env.get_trimmed("OPENCLAW_PROFILE").unwrap_or("default");
    let inherited = profile_state_dir(env, inherited_name, "OPENCLAW_PROFILE")?;
    let existing_state = env.get_trimmed("OPENCLAW_STATE_DIR");
    let existing_config = env.get_trimmed("OPENCLAW_CONFIG_PATH");
    let switches = inherited != selected;
    let switches_state = switches && existing_state.is_some_and(|s| env.resolve_user_path(s) == inherited);
    let replaces_config = switches
        && (existing_state.is_none() || switches_state)
        && existing_config.is_some_and(|c| env.resolve_user_path(c) == inherited.join(super::paths::CONFIG_FILENAME));
    let service = env.get_trimmed("OPENCLAW_SERVICE_MARKER") == Some("openclaw")
        && env.get_trimmed("OPENCLAW_SERVICE_KIND").is_none_or(|k| k == "gateway");
    let drop_service_selectors = switches && service && switches_state && replaces_config;

    let mut changes: Vec<Change> = Vec::new();
    if drop_service_selectors {
        changes.extend(SERVICE_SELECTOR_KEYS.iter().map(|k| (k.to_string(), None)));
    }
    changes.push(("OPENCLAW_PROFILE".into(), Some(profile.to_string())));
    let retained = if drop_service_selectors { None } else { existing_state };
    let state = match retained {
        Some(s) if !switches_state => PathBuf::from(s),
        _ => selected,
    };
    if retained.is_none() || switches_state {
        changes.push(("OPENCLAW_STATE_DIR".into(), Some(state.to_string_lossy().into_owned())));
    }
    if !drop_service_selectors && (existing_config.is_none() || replaces_config) {
        let config = state.join(super::paths::CONFIG_FILENAME);
        changes.push(("OPENCLAW_CONFIG_PATH".into(), Some(config.to_string_lossy().into_owned())));
    }
    let port_set = !drop_service_selectors && env.get_trimmed("OPENCLAW_GATEWAY_PORT").is_some();
    if profile == "dev" && !port_set {
        changes.push(("OPENCLAW_GATEWAY_PORT".into(), Some("19001".into())));
    }
    Ok(changes)
}

impl Env {
    /// Applies changes (as [`profile_changes`] returns them) to this environment.
    pub fn apply(&mut self, changes: &[Change]) {
        for (k, v) in changes {
            match v {
                Some(v) => self.vars.insert(k.clone(), v.clone()),
                None => self.vars.remove(k),
            };
        }
    }

    /// This environment as `openclaw --profile NAME` would leave it.
    pub fn with_profile(mut self, name: &str) -> Result<Env, InvalidProfile> {
        let changes = profile_changes(&self, name)?;
        self.apply(&changes);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openclaw::paths::{config_path, state_dir};

    fn home() -> Env {
        Env::from_pairs([("HOME", "/home/u")])
    }

    fn var<'a>(env: &'a Env, k: &str) -> Option<&'a str> {
        env.vars.get(k).map(String::as_str)
    }

    #[test]
    fn names() {
        for ok in ["work", "Work_2", "a", "0-x", &"a".repeat(64)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", "_x", "a b", "a/b", "ü", &"a".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert_eq!(named_profile(Some(" work ")), Some("work"));
        assert_eq!(named_profile(Some("Default")), None);
        assert_eq!(named_profile(Some("bad name")), None);
    }

    #[test]
    fn a_profile_sets_state_dir_and_config_path() {
        let env = home().with_profile("work").unwrap();
        assert_eq!(var(&env, "OPENCLAW_PROFILE"), Some("work"));
        assert_eq!(var(&env, "OPENCLAW_STATE_DIR"), Some("/home/u/.openclaw-work"));
        assert_eq!(var(&env, "OPENCLAW_CONFIG_PATH"), Some("/home/u/.openclaw-work/openclaw.json"));
        assert_eq!(state_dir(&env), PathBuf::from("/home/u/.openclaw-work"));
        assert_eq!(config_path(&env, &state_dir(&env)), PathBuf::from("/home/u/.openclaw-work/openclaw.json"));
        assert_eq!(var(&env, "OPENCLAW_GATEWAY_PORT"), None);
        // `default` is the plain state dir, named explicitly.
        let env = home().with_profile("default").unwrap();
        assert_eq!(var(&env, "OPENCLAW_STATE_DIR"), Some("/home/u/.openclaw"));
        // `dev` also picks its port.
        let env = home().with_profile("dev").unwrap();
        assert_eq!(var(&env, "OPENCLAW_GATEWAY_PORT"), Some("19001"));
        let env = home().with("OPENCLAW_GATEWAY_PORT", "1234").with_profile("dev").unwrap();
        assert_eq!(var(&env, "OPENCLAW_GATEWAY_PORT"), Some("1234"));
    }

    #[test]
    fn an_explicit_state_dir_and_config_stay() {
        let env = home().with("OPENCLAW_STATE_DIR", "/srv/s").with("OPENCLAW_CONFIG_PATH", "/etc/oc.json");
        let env = env.with_profile("work").unwrap();
        assert_eq!(var(&env, "OPENCLAW_STATE_DIR"), Some("/srv/s"));
        assert_eq!(var(&env, "OPENCLAW_CONFIG_PATH"), Some("/etc/oc.json"));
        // With only a state dir set, the config follows it.
        let env = home().with("OPENCLAW_STATE_DIR", "/srv/s").with_profile("work").unwrap();
        assert_eq!(var(&env, "OPENCLAW_CONFIG_PATH"), Some("/srv/s/openclaw.json"));
    }

    #[test]
    fn switching_away_from_the_inherited_profile_replaces_its_paths() {
        // What `openclaw --profile a` leaves, then `--profile b` inside it.
        let env = home().with_profile("a").unwrap().with_profile("b").unwrap();
        assert_eq!(var(&env, "OPENCLAW_STATE_DIR"), Some("/home/u/.openclaw-b"));
        assert_eq!(var(&env, "OPENCLAW_CONFIG_PATH"), Some("/home/u/.openclaw-b/openclaw.json"));
        // Inside a gateway service of profile a, its selectors go.
        let env = home()
            .with_profile("a")
            .unwrap()
            .with("OPENCLAW_SERVICE_MARKER", "openclaw")
            .with("OPENCLAW_SYSTEMD_UNIT", "openclaw-gateway-a")
            .with_profile("b")
            .unwrap();
        assert_eq!(var(&env, "OPENCLAW_STATE_DIR"), Some("/home/u/.openclaw-b"));
        assert_eq!(var(&env, "OPENCLAW_CONFIG_PATH"), None);
        assert_eq!(var(&env, "OPENCLAW_SYSTEMD_UNIT"), None);
        assert_eq!(config_path(&env, &state_dir(&env)), PathBuf::from("/home/u/.openclaw-b/openclaw.json"));
    }

    #[test]
    fn bad_names_are_refused_with_their_source() {
        let e = home().with_profile("no/slash").unwrap_err();
        assert_eq!(e.source, "--profile");
        assert!(e.to_string().contains("no/slash"), "{e}");
        let e = home().with("OPENCLAW_PROFILE", "bad name").with_profile("work").unwrap_err();
        assert_eq!(e.source, "OPENCLAW_PROFILE");
    }
}
