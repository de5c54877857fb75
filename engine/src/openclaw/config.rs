//! Reading `openclaw.json` the way the gateway reads it: JSON5, `$include`s resolved, then the
//! config's `env` section applied to the variables, then `${VAR}` substituted.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::env::Env;
use super::error::ConfigError;
use super::include::load_with_includes;
use super::paths::{config_path, state_dir};
use super::vars::{effective_vars, substitute, Unresolved};

/// OpenClaw's config, read. Its values may hold secrets, so `Debug` shows only the file names.
#[derive(Clone)]
pub struct OpenClawConfig {
    pub state_dir: PathBuf,
    /// The active config path (whether or not it exists).
    pub path: PathBuf,
    pub exists: bool,
    /// The config with includes resolved, before substitution (`{}` when there is no file).
    pub raw: Value,
    /// The config with `${VAR}`s substituted (unresolved references left as written).
    pub value: Value,
    /// The variables substitution saw: process, `.env` files, `env.vars`.
    pub vars: Env,
    /// Every file read: the config, then its includes.
    pub files: Vec<PathBuf>,
    /// References that could not be resolved, anywhere in the config. Callers warn only about
    /// the keys they use.
    pub unresolved: Vec<Unresolved>,
    /// Problems worth telling the user that did not stop the read.
    pub warnings: Vec<String>,
}

impl fmt::Debug for OpenClawConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenClawConfig")
            .field("state_dir", &self.state_dir)
            .field("path", &self.path)
            .field("exists", &self.exists)
            .field("files", &self.files)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl OpenClawConfig {
    /// No config at all: the layout then follows OpenClaw's defaults (used when the file is broken).
    pub fn empty(env: &Env) -> Self {
        let state = state_dir(env);
        OpenClawConfig {
            path: config_path(env, &state),
            state_dir: state,
            exists: false,
            raw: Value::Object(Default::default()),
            value: Value::Object(Default::default()),
            vars: env.clone(),
            files: Vec::new(),
            unresolved: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The substituted value at a dotted key path (`agents.defaults.workspace`).
    pub fn get(&self, dotted: &str) -> Option<&Value> {
        get_path(&self.value, dotted)
    }

    /// The unsubstituted value at a dotted key path.
    pub fn get_raw(&self, dotted: &str) -> Option<&Value> {
        get_path(&self.raw, dotted)
    }

    /// Whether a reference under this key path (itself or below) is unresolved.
    pub fn is_unresolved(&self, key: &str) -> bool {
        self.unresolved.iter().any(|u| u.key == key || u.key.starts_with(&format!("{key}.")))
    }

    /// The OpenClaw version that last wrote the config: `meta.lastTouchedVersion`, else the
    /// onboarding wizard's `wizard.lastRunVersion`.
    pub fn version(&self) -> Option<String> {
        ["meta.lastTouchedVersion", "wizard.lastRunVersion"]
            .iter()
            .find_map(|k| self.get_raw(k).and_then(Value::as_str))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// Finds the state dir and config file from `env` and reads the config.
pub fn load(env: &Env) -> Result<OpenClawConfig, ConfigError> {
    let state = state_dir(env);
    let path = config_path(env, &state);
    load_from(env, &state, &path)
}

/// Reads the config at `path` for the state dir `state`. A missing file is an empty config, as
/// for OpenClaw ("if the file is missing, OpenClaw uses safe defaults").
pub fn load_from(env: &Env, state: &Path, path: &Path) -> Result<OpenClawConfig, ConfigError> {
    let exists = path.exists();
    let (raw, files, mut warnings) = if exists {
        let inc = load_with_includes(path, env)?;
        (inc.value, inc.files, inc.warnings)
    } else {
        (Value::Object(Default::default()), Vec::new(), Vec::new())
    };
    if exists && !raw.is_object() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            key: "(top level)".into(),
            why: format!("must be an object, found {}", super::include::kind_name(&raw)),
        });
    }
    let (vars, env_warnings) = effective_vars(env, state, Some(&raw));
    warnings.extend(env_warnings);
    let mut unresolved = Vec::new();
    let value = substitute(&raw, &vars, &mut unresolved);
    Ok(OpenClawConfig {
        state_dir: state.to_path_buf(),
        path: path.to_path_buf(),
        exists,
        raw,
        value,
        vars,
        files,
        unresolved,
        warnings,
    })
}

/// The value at a dotted key path; plain keys only (no list indexes).
pub fn get_path<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, k| cur.get(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn missing_config_is_empty() {
        let t = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("HOME", t.path().to_str().unwrap())]);
        let c = load(&env).unwrap();
        assert!(!c.exists);
        assert_eq!(c.path, t.path().join(".openclaw/openclaw.json"));
        assert_eq!(c.value, serde_json::json!({}));
        assert_eq!(c.version(), None);
    }

    #[test]
    fn env_section_and_dotenv_feed_substitution() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join(".openclaw");
        fs::create_dir(&state).unwrap();
        fs::write(state.join(".env"), "TOKEN=from-dotenv\nWS=dotenv-ws\n").unwrap();
        fs::write(
            state.join("openclaw.json"),
            r#"{
              meta: { lastTouchedVersion: "2026.1.8" },
              env: { vars: { WS: "cfg-ws", ONLY_CFG: "cfg" } },
              gateway: { auth: { token: "${TOKEN}" } },
              a: "${WS}", b: "${ONLY_CFG}", c: "${NOPE}", d: "$${TOKEN}",
            }"#,
        )
        .unwrap();
        let env = Env::from_pairs([("HOME", t.path().to_str().unwrap())]);
        let c = load(&env).unwrap();
        assert_eq!(c.get("gateway.auth.token").unwrap(), "from-dotenv");
        assert_eq!(c.get("a").unwrap(), "dotenv-ws");
        assert_eq!(c.get("b").unwrap(), "cfg");
        assert_eq!(c.get("c").unwrap(), "${NOPE}");
        assert_eq!(c.get("d").unwrap(), "${TOKEN}");
        assert_eq!(c.get_raw("gateway.auth.token").unwrap(), "${TOKEN}");
        assert!(c.is_unresolved("c") && !c.is_unresolved("a"));
        assert_eq!(c.version().as_deref(), Some("2026.1.8"));
        // Process env wins over .env.
        let c = load(&env.clone().with("TOKEN", "from-process")).unwrap();
        assert_eq!(c.get("gateway.auth.token").unwrap(), "from-process");
        // Debug shows no values.
        let d = format!("{c:?}");
        assert!(!d.contains("from-process") && !d.contains("from-dotenv"), "{d}");
    }

    #[test]
    fn version_falls_back_to_the_wizard() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("oc.json");
        fs::write(&p, r#"{ wizard: { lastRunVersion: "2026.2.26" } }"#).unwrap();
        let c = load_from(&Env::default(), t.path(), &p).unwrap();
        assert_eq!(c.version().as_deref(), Some("2026.2.26"));
    }

    #[test]
    fn top_level_must_be_an_object() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("oc.json");
        fs::write(&p, "[1]").unwrap();
        let e = load_from(&Env::default(), t.path(), &p).unwrap_err();
        assert!(e.to_string().contains("oc.json"), "{e}");
    }
}
