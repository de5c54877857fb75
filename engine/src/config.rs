//! clawback's own configuration: its file's schema, where the file is found, and how it combines
//! with the `backup` section of `openclaw.json` (docs/CONTRACT.md, "Configuration").
//!
//! The file is `--config PATH`, else `CLAWBACK_CONFIG`, else `<state dir>/clawback.json`, else
//! `$XDG_CONFIG_HOME/clawback/config.json` (`~/.config/clawback/config.json`). It is JSON5 with
//! `$include` and `${VAR}` handled as OpenClaw handles them, and the same variables (process,
//! `.env` files, `openclaw.json`'s `env.vars`). Its top level is the backup section itself (a
//! file wrapped in `{ backup: {...} }` is read too). The `backup` section of `openclaw.json` is
//! read with lower precedence: objects merge key by key, anything else in clawback's file wins.
//! That section is legacy: OpenClaw 2026.9 rejects the unknown key (its gateway does not start),
//! so nothing clawback says puts it there, and [`migrate`] moves it into clawback's file.
//!
//! Unknown keys are warnings, never errors. A secret written literally into a file (not as
//! `${VAR}`) is a warning. A `${VAR}` whose variable is unset makes that setting unset, with a
//! warning. No secret value ever reaches a message or `Debug` output ([`Secret`]).

pub mod envfile;
mod json5_edit;
pub mod migrate;
pub mod password;
mod schedule;
mod schema;
pub mod secret;
pub mod storage;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::openclaw::config::{self as occonfig, OpenClawConfig};
use crate::openclaw::env::Env;
use crate::openclaw::error::ConfigError;
use crate::openclaw::include::{kind_name, load_with_includes};
use crate::openclaw::paths::state_dir;
use crate::openclaw::vars::{config_env_vars, substitute_at, Unresolved};

pub use schedule::{parse_duration, Schedule, ScheduleError};
pub use schema::url_has_credential;
pub use secret::Secret;
pub use storage::{valid_bucket, StorageConfig};

/// The backup settings, merged from every source. `None` means "not set": the accessors give
/// the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `"2h"`, `"1d"`, or a cron expression; checked when loaded, see [`BackupConfig::schedule`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub include: IncludeConfig,
    pub storage: StorageConfig,
    pub encryption: EncryptionConfig,
    pub retention: RetentionConfig,
    /// Gitignore-style exclude patterns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    pub notify: NotifyConfig,
    /// The Backup docs' flag; `notify.onFailure` wins when both are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_on_failure: Option<bool>,
    pub hooks: HooksConfig,
    /// The environment file clawback loads at start (default `$XDG_CONFIG_HOME/clawback/env`);
    /// `~` expanded, relative to the config's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IncludeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<bool>,
    /// More folders or files to back up; `~` expanded, relative ones resolved against the folder
    /// of the file that names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_paths: Vec<PathBuf>,
    /// Honour `.gitignore` files in workspaces (default false: OpenClaw's own backup keeps what
    /// they name, such as `.env`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitignore: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EncryptionConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Secret>,
    /// A file holding the passphrase; `~` expanded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// A command whose standard output is the passphrase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_command: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetentionConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_backups: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
    /// A restic-style duration (`"2y5m7d3h"`), parsed by `forget`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<String>,
    /// How often prune (which frees what retention forgot) may run: `"1d"` (the default), `"12h"`.
    /// Checked when loaded, see [`RetentionConfig::prune_every`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune_every: Option<String>,
}

/// Prune runs at most this often unless `retention.pruneEvery` says otherwise.
pub const DEFAULT_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl RetentionConfig {
    /// Whether any rule is set (`pruneEvery` alone is not a rule: it only paces prune).
    pub fn is_set(&self) -> bool {
        RetentionConfig { prune_every: None, ..self.clone() } != RetentionConfig::default()
    }

    /// `pruneEvery`, default one day (it was checked when the config was loaded).
    pub fn prune_every(&self) -> std::time::Duration {
        self.prune_every.as_deref().and_then(parse_duration).unwrap_or(DEFAULT_PRUNE_EVERY)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NotifyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<bool>,
    /// A URL to POST to; a secret, since such URLs usually carry a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramConfig>,
    /// Also raise an OpenClaw system event (seen by the agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openclaw_event: Option<bool>,
    /// A Slack-compatible incoming-webhook URL (`{"text": ...}`); a secret like `webhook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
}

/// `notify.email`: a mail over SMTP. Port 465 is implicit TLS; otherwise STARTTLS unless
/// `starttls: false` (a local relay).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmailConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TelegramConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HooksConfig {
    /// Shell commands run before a backup; a failure stops the backup.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// Shell commands run after a backup, whatever its outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Seconds a hook may run before its process group is killed (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Whether a failing `before` hook stops the backup (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_on_failure: Option<bool>,
}

impl BackupConfig {
    /// `enabled`, default true.
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// The schedule, parsed (it was checked when the config was loaded).
    pub fn schedule(&self) -> Option<Schedule> {
        self.schedule.as_deref().and_then(|s| Schedule::parse(s).ok())
    }

    /// `include.stateDir`, default true.
    pub fn include_state_dir(&self) -> bool {
        self.include.state_dir.unwrap_or(true)
    }

    /// `include.workspace`, default true.
    pub fn include_workspace(&self) -> bool {
        self.include.workspace.unwrap_or(true)
    }

    /// `include.gitignore`, default false.
    pub fn include_gitignore(&self) -> bool {
        self.include.gitignore.unwrap_or(false)
    }

    /// Notify on failure: `notify.onFailure`, else `notifyOnFailure`, default true (a channel
    /// configured without either is meant for failures).
    pub fn notify_on_failure(&self) -> bool {
        self.notify.on_failure.or(self.notify_on_failure).unwrap_or(true)
    }

    /// Notify on success: `notify.onSuccess`, default false.
    pub fn notify_on_success(&self) -> bool {
        self.notify.on_success.unwrap_or(false)
    }
}

/// The config, with what was said about it and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: BackupConfig,
    /// Unknown keys, literal secrets, unset variables: one line each, never a value.
    pub warnings: Vec<String>,
    /// The files that contributed, lowest precedence first (openclaw.json and its includes,
    /// then clawback's file and its includes).
    pub sources: Vec<PathBuf>,
    /// clawback's own config file, if one was found (where `setup` would update it).
    pub file: Option<PathBuf>,
}

/// Where clawback's own file is: `explicit` (`--config`), else `CLAWBACK_CONFIG`, else
/// `<state>/clawback.json` if it exists, else `$XDG_CONFIG_HOME/clawback/config.json` (default
/// `~/.config/clawback/config.json`) if it exists. An explicit or `CLAWBACK_CONFIG` path must
/// exist; `Ok(None)` means no file.
pub fn find_config_file(env: &Env, state: &Path, explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = explicit {
        let p = env.resolve_user_path(&p.to_string_lossy());
        return match p.exists() {
            true => Ok(Some(p)),
            false => Err(ConfigError::Missing { path: p, hint: " (given with --config)".into() }),
        };
    }
    if let Some(p) = env.get_trimmed("CLAWBACK_CONFIG") {
        let p = env.resolve_user_path(p);
        return match p.exists() {
            true => Ok(Some(p)),
            false => Err(ConfigError::Missing { path: p, hint: " (named by CLAWBACK_CONFIG)".into() }),
        };
    }
    Ok(default_config_paths(env, state).into_iter().find(|p| p.exists()))
}

/// The places clawback's file is looked for when none is named, in order.
pub fn default_config_paths(env: &Env, state: &Path) -> Vec<PathBuf> {
    let xdg = env
        .get_trimmed("XDG_CONFIG_HOME")
        .map(|p| env.resolve_user_path(p))
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| env.user_home().join(".config"));
    vec![state.join("clawback.json"), xdg.join("clawback").join("config.json")]
}

/// Loads the config as `env` locates it; `explicit` is `--config`.
pub fn load(env: &Env, explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let state = state_dir(env);
    let oc = occonfig::load_from(env, &state, &crate::openclaw::paths::config_path(env, &state))?;
    load_with(env, &oc, explicit)
}

/// Loads the config given OpenClaw's config, already read (discovery reads it too).
pub fn load_with(env: &Env, oc: &OpenClawConfig, explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let mut sources = Vec::new();
    let vars = &oc.vars;

    // openclaw.json's `backup` section: lower precedence.
    let low = match oc.raw.get("backup") {
        Some(section) => {
            sources.extend(oc.files.iter().cloned());
            Some(prepare(section.clone(), "backup", &oc.path, &oc.state_dir, env, vars, &mut warnings)?)
        }
        None => None,
    };

    // clawback's own file: higher precedence.
    let file = find_config_file(env, &oc.state_dir, explicit)?;
    let high = match &file {
        Some(path) => {
            let inc = load_with_includes(path, env)?;
            warnings.extend(inc.warnings);
            sources.extend(inc.files.iter().cloned());
            // clawback's file may set variables in its own `env.vars` too, below the rest.
            let mut own_vars = vars.clone();
            for (k, v) in config_env_vars(Some(&inc.value)) {
                if own_vars.get(&k).is_none() {
                    own_vars.vars.insert(k, v);
                }
            }
            let Value::Object(mut root) = inc.value else {
                return Err(ConfigError::Invalid {
                    path: path.clone(),
                    key: "(top level)".into(),
                    why: format!("must be an object, found {}", kind_name(&inc.value)),
                });
            };
            root.remove("env");
            // A file wrapped as `{ backup: {...} }` is read as the section it wraps.
            let (section, prefix) = match root.remove("backup") {
                Some(inner) => {
                    for k in root.keys().filter(|k| k.as_str() != "$schema") {
                        warnings.push(format!("{}: unknown key `{k}` beside `backup` ignored", path.display()));
                    }
                    (inner, "backup")
                }
                None => (Value::Object(root), ""),
            };
            Some(prepare(section, prefix, path, &oc.state_dir, env, &own_vars, &mut warnings)?)
        }
        None => None,
    };

    let schedule_from = match (&high, &low) {
        (Some(h), _) if h.get("schedule").is_some_and(|v| !v.is_null()) => file.clone(),
        (_, Some(l)) if l.get("schedule").is_some_and(|v| !v.is_null()) => Some(oc.path.clone()),
        _ => None,
    };
    let merged = match (low, high) {
        (Some(l), Some(h)) => merge_override(l, h),
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => Value::Object(Map::new()),
    };
    let config: BackupConfig = serde_json::from_value(merged).map_err(|_| ConfigError::Invalid {
        // Not reached after the schema check; the serde message could quote a value, so it is
        // not passed on.
        path: file.clone().unwrap_or_else(|| oc.path.clone()),
        key: "backup".into(),
        why: "cannot be read as clawback's backup settings".into(),
    })?;
    if let (Some(s), Some(from)) = (&config.schedule, schedule_from) {
        Schedule::parse(s).map_err(|e| ConfigError::Invalid {
            path: from,
            key: "schedule".into(),
            why: e.to_string(),
        })?;
    }
    if let Some(p) = &config.retention.prune_every {
        if parse_duration(p).is_none_or(|d| d.is_zero()) {
            return Err(ConfigError::Invalid {
                path: file.clone().unwrap_or_else(|| oc.path.clone()),
                key: "retention.pruneEvery".into(),
                why: format!("{p:?} is not a duration; write one like \"1d\", \"12h\" or \"1w\""),
            });
        }
    }
    sources.dedup();
    Ok(Loaded { config, warnings, sources, file })
}

/// Checks one source's section (raw, before substitution), substitutes it, drops settings whose
/// variables are unset, and resolves its paths.
fn prepare(
    mut section: Value,
    prefix: &str,
    file: &Path,
    state: &Path,
    env: &Env,
    vars: &Env,
    warnings: &mut Vec<String>,
) -> Result<Value, ConfigError> {
    let mut checker = schema::Checker { file, state_dir: state, warnings: Vec::new() };
    checker.check(&mut section, &schema::SECTION, prefix)?;
    warnings.extend(checker.warnings);
    let mut unresolved: Vec<Unresolved> = Vec::new();
    let mut value = substitute_at(&section, vars, prefix, &mut unresolved);
    for u in &unresolved {
        warnings.push(u.warning(file));
        let rel = u.key.strip_prefix(prefix).map(|k| k.trim_start_matches('.')).unwrap_or(&u.key);
        unset(&mut value, rel);
    }
    drop_null_items(&mut value);
    resolve_paths(&mut value, file, env);
    Ok(value)
}

/// Sets the value at a key path like `storage.path` or `hooks.before[1]` to null.
fn unset(v: &mut Value, key: &str) {
    let mut cur = v;
    for seg in key.split('.') {
        let (name, indexes) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            match cur.get_mut(name) {
                Some(next) => cur = next,
                None => return,
            }
        }
        for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()).filter_map(|s| s.parse::<usize>().ok()) {
            match cur.get_mut(idx) {
                Some(next) => cur = next,
                None => return,
            }
        }
    }
    *cur = Value::Null;
}

/// Nulls inside lists are removed (a list item whose variable was unset).
fn drop_null_items(v: &mut Value) {
    match v {
        Value::Array(items) => {
            items.retain(|i| !i.is_null());
            items.iter_mut().for_each(drop_null_items);
        }
        Value::Object(map) => map.values_mut().for_each(drop_null_items),
        _ => {}
    }
}

/// `~` expansion (OpenClaw's home) and resolution of relative paths against the file's folder,
/// for `include.extraPaths`, `storage.path`, `encryption.keyFile` and `envFile`.
fn resolve_paths(v: &mut Value, file: &Path, env: &Env) {
    let base = file.parent().unwrap_or(Path::new("/"));
    let fix = |s: &mut Value| {
        if let Value::String(p) = s {
            let t = p.trim();
            let expanded = env.expand(t);
            let abs = if expanded.is_absolute() { expanded } else { base.join(expanded) };
            *p = crate::openclaw::env::clean(&abs).to_string_lossy().into_owned();
        }
    };
    if let Some(Value::Array(items)) = v.pointer_mut("/include/extraPaths") {
        items.iter_mut().for_each(fix);
    }
    for ptr in ["/storage/path", "/encryption/keyFile", "/envFile"] {
        if let Some(s) = v.pointer_mut(ptr) {
            fix(s);
        }
    }
}

/// Precedence merge: objects merge key by key, anything else from `high` replaces `low`; a null
/// in `high` (unset) keeps `low`'s value.
pub fn merge_override(low: Value, high: Value) -> Value {
    match (low, high) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => merge_override(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (low, Value::Null) => low,
        (_, high) => high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

    struct Fx {
        _t: tempfile::TempDir,
        home: PathBuf,
        state: PathBuf,
    }

    fn fx() -> Fx {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().canonicalize().unwrap();
        let state = home.join(".openclaw");
        fs::create_dir(&state).unwrap();
        Fx { _t: t, home, state }
    }

    impl Fx {
        fn env(&self) -> Env {
            Env::from_pairs([("HOME", self.home.to_str().unwrap())])
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.home.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            p
        }
        fn load(&self) -> Loaded {
            load(&self.env(), None).unwrap()
        }
    }

    fn assert_no_secret(l: &Loaded) {
        for w in &l.warnings {
            assert!(!w.contains(SECRET), "warning leaks the secret: {w}");
        }
        let d = format!("{l:?}");
        assert!(!d.contains(SECRET), "Debug leaks the secret: {d}");
    }

    #[test]
    fn nothing_configured() {
        let f = fx();
        let l = f.load();
        assert_eq!(l.config, BackupConfig::default());
        assert!(l.warnings.is_empty() && l.sources.is_empty() && l.file.is_none());
        assert!(
            l.config.enabled()
                && l.config.include_state_dir()
                && l.config.include_workspace()
                && !l.config.include_gitignore()
        );
        assert!(l.config.notify_on_failure(), "on by default; without a channel nothing is sent");
        assert_eq!(l.config.schedule(), None);
    }

    #[test]
    fn full_schema_from_clawback_json() {
        let f = fx();
        f.write(
            ".openclaw/clawback.json",
            r#"// clawback settings
            {
              enabled: true,
              schedule: "2h",
              include: { stateDir: true, workspace: false, extraPaths: ["~/notes", "rel/dir"], gitignore: true },
              storage: { provider: "S3", endpoint: "http://127.0.0.1:9000", bucket: "b", region: "eu-1",
                         accessKeyId: "${AWS_ACCESS_KEY_ID}", secretAccessKey: "${AWS_SECRET_ACCESS_KEY}",
                         prefix: "claw", path: "~/repo" },
              encryption: { enabled: true, algorithm: "aes-256-gcm-siv", passphrase: "${PASS}",
                            keyFile: "~/.key", passwordCommand: "pass show clawback" },
              retention: { maxBackups: 30, maxAgeDays: 90, keepLast: 5, keepHourly: 24, keepDaily: 7,
                           keepWeekly: 4, keepMonthly: 12, keepYearly: 2, keepWithin: "2d" },
              exclude: ["*.bak", "/tmp/x"],
              notify: { onFailure: true, onSuccess: false, webhook: "${HOOK}",
                        telegram: { botToken: "${TG}", chatId: -1001234 }, openclawEvent: true },
              notifyOnFailure: false,
              hooks: { before: ["sync"], after: "echo done" },
            }"#,
        );
        let env = f
            .env()
            .with("AWS_ACCESS_KEY_ID", "AKIA1")
            .with("AWS_SECRET_ACCESS_KEY", SECRET)
            .with("PASS", "pw")
            .with("HOOK", "https://hooks.example/x?token=1")
            .with("TG", "123:abc");
        let l = load(&env, None).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let c = &l.config;
        assert_eq!(c.schedule().unwrap().interval_hint().as_secs(), 7200);
        assert_eq!(c.include.workspace, Some(false));
        assert!(c.include_gitignore());
        assert_eq!(c.include.extra_paths, vec![f.home.join("notes"), f.state.join("rel/dir")]);
        assert_eq!(c.storage.provider.as_deref(), Some("s3"));
        assert_eq!(c.storage.secret_access_key.as_ref().unwrap().expose(), SECRET);
        assert_eq!(c.storage.path, Some(f.home.join("repo")));
        assert_eq!(c.encryption.passphrase.as_ref().unwrap().expose(), "pw");
        assert_eq!(c.encryption.key_file, Some(f.home.join(".key")));
        assert_eq!(c.retention.keep_yearly, Some(2));
        assert!(c.retention.is_set());
        assert_eq!(c.exclude, vec!["*.bak", "/tmp/x"]);
        assert_eq!(c.notify.telegram.as_ref().unwrap().chat_id.as_deref(), Some("-1001234"));
        assert_eq!(c.hooks.after, vec!["echo done"]);
        assert!(c.notify_on_failure(), "notify.onFailure wins over notifyOnFailure");
        assert_eq!(l.file, Some(f.state.join("clawback.json")));
        assert_eq!(l.sources, vec![f.state.join("clawback.json")]);
        assert_no_secret(&l);
    }

    #[test]
    fn unknown_keys_warn_with_suggestions_and_never_fail() {
        let f = fx();
        f.write(
            ".openclaw/clawback.json",
            r#"{ storag: { bucket: "x" }, storage: { bucket: "b", regoin: "r" }, futureThing: 1 }"#,
        );
        let l = f.load();
        assert_eq!(l.config.storage.bucket.as_deref(), Some("b"));
        assert_eq!(l.config.storage.region, None);
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        let all = l.warnings.join("\n");
        assert!(all.contains("unknown key `storag`") && all.contains("did you mean `storage`"));
        assert!(all.contains("`storage.regoin`") && all.contains("`region`"));
        assert!(all.contains("`futureThing`") && all.contains("clawback.json"));
    }

    #[test]
    fn literal_secrets_warn_without_showing_them() {
        let f = fx();
        f.write(
            ".openclaw/clawback.json",
            &format!(
                r#"{{
                  storage: {{ accessKeyId: "AKIA{SECRET}", secretAccessKey: "{SECRET}" }},
                  encryption: {{ passphrase: "{SECRET}" }},
                  notify: {{ webhook: "https://hooks.slack.com/services/T0/B0/{SECRET}",
                             telegram: {{ botToken: "{SECRET}" }} }},
                }}"#
            ),
        );
        let l = f.load();
        assert_eq!(l.warnings.len(), 5, "{:?}", l.warnings);
        for (key, var) in [
            ("storage.accessKeyId", "AWS_ACCESS_KEY_ID"),
            ("storage.secretAccessKey", "AWS_SECRET_ACCESS_KEY"),
            ("encryption.passphrase", "CLAWBACK_PASSWORD"),
            ("notify.webhook", "CLAWBACK_WEBHOOK_URL"),
            ("notify.telegram.botToken", "TELEGRAM_BOT_TOKEN"),
        ] {
            assert!(
                l.warnings.iter().any(|w| w.contains(&format!("`{key}`")) && w.contains(&format!("${{{var}}}"))),
                "{key}: {:?}",
                l.warnings
            );
        }
        // The values are still used.
        assert_eq!(l.config.encryption.passphrase.as_ref().unwrap().expose(), SECRET);
        assert_no_secret(&l);
    }

    #[test]
    fn references_and_plain_webhooks_do_not_warn() {
        let f = fx();
        f.write(
            ".openclaw/clawback.json",
            r#"{ encryption: { passphrase: "${P}" }, notify: { webhook: "https://ntfy.sh/my-backups" },
                 storage: { secretAccessKey: "" } }"#,
        );
        let l = load(&f.env().with("P", "x"), None).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn literal_secret_in_openclaw_json_backup_section_warns_too() {
        let f = fx();
        f.write(".openclaw/openclaw.json", &format!(r#"{{ backup: {{ encryption: {{ passphrase: "{SECRET}" }} }} }}"#));
        let l = f.load();
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("openclaw.json") && l.warnings[0].contains("`backup.encryption.passphrase`"));
        assert_no_secret(&l);
    }

    #[test]
    fn unset_variables_unset_the_setting_with_a_warning() {
        let f = fx();
        f.write(
            ".openclaw/clawback.json",
            r#"{ encryption: { passphrase: "${NOT_SET}" }, storage: { bucket: "pre-${ALSO_NOT}" },
                 exclude: ["a", "${GONE}", "b"], hooks: { before: ["$${LITERAL}"] } }"#,
        );
        let l = f.load();
        assert_eq!(l.config.encryption.passphrase, None);
        assert_eq!(l.config.storage.bucket, None);
        assert_eq!(l.config.exclude, vec!["a", "b"]);
        assert_eq!(l.config.hooks.before, vec!["${LITERAL}"]);
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert!(l.warnings.iter().any(|w| w.contains("NOT_SET") && w.contains("`encryption.passphrase`")));
        assert!(l.warnings.iter().any(|w| w.contains("GONE") && w.contains("`exclude[1]`")));
    }

    #[test]
    fn lowercase_references_are_not_substituted() {
        let f = fx();
        f.write(".openclaw/clawback.json", r#"{ storage: { bucket: "${bucket}" } }"#);
        let l = load(&f.env().with("bucket", "nope"), None).unwrap();
        assert_eq!(l.config.storage.bucket.as_deref(), Some("${bucket}"));
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn variables_from_dotenv_and_openclaw_env_vars() {
        let f = fx();
        f.write(".openclaw/.env", "BUCKET=from-dotenv\nREGION=dotenv-region\n");
        f.write(".openclaw/openclaw.json", r#"{ env: { vars: { REGION: "cfg-region", PREFIX: "cfg-prefix" } } }"#);
        f.write(
            ".openclaw/clawback.json",
            r#"{ storage: { bucket: "${BUCKET}", region: "${REGION}", prefix: "${PREFIX}" } }"#,
        );
        let l = f.load();
        assert_eq!(l.config.storage.bucket.as_deref(), Some("from-dotenv"));
        assert_eq!(l.config.storage.region.as_deref(), Some("dotenv-region"));
        assert_eq!(l.config.storage.prefix.as_deref(), Some("cfg-prefix"));
        // The process environment beats .env.
        let l = load(&f.env().with("BUCKET", "from-process"), None).unwrap();
        assert_eq!(l.config.storage.bucket.as_deref(), Some("from-process"));
    }

    #[test]
    fn clawback_json_beats_openclaw_json_backup_section() {
        let f = fx();
        f.write(
            ".openclaw/openclaw.json",
            r#"{
              backup: {
                schedule: "1d",
                storage: { provider: "s3", bucket: "oc-bucket", region: "oc-region" },
                retention: { maxBackups: 10 },
                exclude: ["from-openclaw"],
                notifyOnFailure: true,
              },
            }"#,
        );
        f.write(
            ".openclaw/clawback.json",
            r#"{ schedule: "2h", storage: { bucket: "cb-bucket" }, exclude: ["from-clawback"] }"#,
        );
        let l = f.load();
        let c = &l.config;
        assert_eq!(c.schedule.as_deref(), Some("2h"));
        assert_eq!(c.storage.bucket.as_deref(), Some("cb-bucket"));
        assert_eq!(c.storage.region.as_deref(), Some("oc-region"));
        assert_eq!(c.storage.provider.as_deref(), Some("s3"));
        assert_eq!(c.retention.max_backups, Some(10));
        assert_eq!(c.exclude, vec!["from-clawback"]);
        assert!(c.notify_on_failure());
        assert_eq!(l.sources, vec![f.state.join("openclaw.json"), f.state.join("clawback.json")]);
        // Without clawback.json, openclaw.json's section alone.
        fs::remove_file(f.state.join("clawback.json")).unwrap();
        let l = f.load();
        assert_eq!(l.config.schedule.as_deref(), Some("1d"));
        assert_eq!(l.config.storage.bucket.as_deref(), Some("oc-bucket"));
        assert_eq!(l.file, None);
    }

    #[test]
    fn config_file_locations_in_order() {
        let f = fx();
        let xdg = f.write(".config/clawback/config.json", r#"{ schedule: "3h" }"#);
        assert_eq!(f.load().config.schedule.as_deref(), Some("3h"));
        assert_eq!(f.load().file, Some(xdg));
        // XDG_CONFIG_HOME moves it.
        let other = f.write("xdg/clawback/config.json", r#"{ schedule: "4h" }"#);
        let env = f.env().with("XDG_CONFIG_HOME", f.home.join("xdg").to_str().unwrap());
        assert_eq!(load(&env, None).unwrap().file, Some(other));
        // The state dir's clawback.json comes first.
        let state_file = f.write(".openclaw/clawback.json", r#"{ schedule: "5h" }"#);
        assert_eq!(f.load().file, Some(state_file));
        // CLAWBACK_CONFIG beats it; --config beats that.
        let named = f.write("named.json5", r#"{ schedule: "6h" }"#);
        let env = f.env().with("CLAWBACK_CONFIG", "~/named.json5");
        assert_eq!(load(&env, None).unwrap().config.schedule.as_deref(), Some("6h"));
        let flag = f.write("flag.json", r#"{ schedule: "7h" }"#);
        let l = load(&env, Some(&flag)).unwrap();
        assert_eq!(l.config.schedule.as_deref(), Some("7h"));
        assert_eq!(l.file, Some(flag));
        let _ = named;
    }

    #[test]
    fn env_file_is_a_path_resolved_like_the_others() {
        let f = fx();
        f.write(".openclaw/clawback.json", r#"{ envFile: "secrets/clawback.env" }"#);
        assert_eq!(f.load().config.env_file, Some(f.state.join("secrets/clawback.env")));
        f.write(".openclaw/clawback.json", r#"{ envFile: "~/cb.env" }"#);
        let l = f.load();
        assert_eq!(l.config.env_file, Some(f.home.join("cb.env")));
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn named_files_must_exist() {
        let f = fx();
        let e = load(&f.env(), Some(Path::new("/nonexistent/cb.json"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cb.json") && e.to_string().contains("--config"));
        let e = load(&f.env().with("CLAWBACK_CONFIG", "/nope.json"), None).unwrap_err();
        assert!(e.to_string().contains("CLAWBACK_CONFIG"));
    }

    #[test]
    fn state_dir_from_profile_finds_clawback_json() {
        let f = fx();
        f.write(".openclaw-work/clawback.json", r#"{ schedule: "8h" }"#);
        let l = load(&f.env().with_profile("work").unwrap(), None).unwrap();
        assert_eq!(l.config.schedule.as_deref(), Some("8h"));
        // The variable alone selects no profile, as in OpenClaw.
        let l = load(&f.env().with("OPENCLAW_PROFILE", "work"), None).unwrap();
        assert_eq!(l.config.schedule, None);
    }

    #[test]
    fn wrapped_backup_section_and_includes() {
        let f = fx();
        f.write(".openclaw/retention.json5", r#"{ keepDaily: 7 }"#);
        f.write(
            ".openclaw/clawback.json",
            r#"{ $schema: "x", backup: { schedule: "1d", retention: { $include: "./retention.json5", keepLast: 3 } } }"#,
        );
        let l = f.load();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.retention.keep_daily, Some(7));
        assert_eq!(l.config.retention.keep_last, Some(3));
        assert_eq!(l.sources.len(), 2);
    }

    #[test]
    fn type_errors_name_file_and_key_but_not_the_value() {
        let f = fx();
        for (text, key) in [
            (format!(r#"{{ enabled: "{SECRET}" }}"#), "`enabled`"),
            (r#"{ storage: { secretAccessKey: 12345 } }"#.to_string(), "`storage.secretAccessKey`"),
            (format!(r#"{{ storage: {{ provider: "{SECRET}" }} }}"#), "`storage.provider`"),
            (r#"{ retention: { keepLast: -3 } }"#.to_string(), "`retention.keepLast`"),
            (r#"{ retention: { keepLast: 1.5 } }"#.to_string(), "`retention.keepLast`"),
            (format!(r#"{{ exclude: ["ok", {{ x: "{SECRET}" }}] }}"#), "`exclude[1]`"),
            (r#"{ include: [] }"#.to_string(), "`include`"),
        ] {
            f.write(".openclaw/clawback.json", &text);
            let e = load(&f.env(), None).unwrap_err().to_string();
            assert!(e.contains("clawback.json") && e.contains(key), "{e}");
            assert!(!e.contains(SECRET) && !e.contains("12345") && !e.contains("-3"), "{e}");
        }
    }

    #[test]
    fn bad_schedule_is_an_error_naming_its_file() {
        let f = fx();
        f.write(".openclaw/openclaw.json", r#"{ backup: { schedule: "every tuesday" } }"#);
        let e = load(&f.env(), None).unwrap_err().to_string();
        assert!(e.contains("openclaw.json") && e.contains("`schedule`"), "{e}");
        f.write(".openclaw/clawback.json", r#"{ schedule: "CRON_TZ=Europe/Berlin 0 */2 * * *" }"#);
        let l = f.load();
        assert!(l.config.schedule().unwrap().is_cron());
    }

    #[test]
    fn prune_every_defaults_to_a_day_and_a_bad_one_names_its_key() {
        let f = fx();
        f.write(".openclaw/clawback.json", r#"{ retention: { pruneEvery: "12h" } }"#);
        let r = f.load().config.retention;
        assert_eq!(r.prune_every().as_secs(), 12 * 3600);
        assert!(!r.is_set(), "pruneEvery alone is no retention rule");
        assert_eq!(RetentionConfig::default().prune_every(), DEFAULT_PRUNE_EVERY);
        f.write(".openclaw/clawback.json", r#"{ retention: { keepLast: 3, pruneEvery: "sometimes" } }"#);
        let e = load(&f.env(), None).unwrap_err().to_string();
        assert!(e.contains("clawback.json") && e.contains("retention.pruneEvery"), "{e}");
    }

    #[test]
    fn syntax_errors_in_either_file_name_it() {
        let f = fx();
        f.write(".openclaw/clawback.json", "{ schedule: ");
        let e = load(&f.env(), None).unwrap_err().to_string();
        assert!(e.contains("clawback.json"), "{e}");
        f.write(".openclaw/clawback.json", "{}");
        f.write(".openclaw/openclaw.json", "{ backup: ");
        let e = load(&f.env(), None).unwrap_err().to_string();
        assert!(e.contains("openclaw.json"), "{e}");
    }

    #[test]
    fn merge_override_rules() {
        use serde_json::json;
        assert_eq!(
            merge_override(
                json!({"a": {"x": 1, "y": 1}, "l": [1], "s": "low", "k": 1}),
                json!({"a": {"y": 2}, "l": [2], "s": null})
            ),
            json!({"a": {"x": 1, "y": 2}, "l": [2], "s": "low", "k": 1})
        );
    }

    #[test]
    fn config_serializes_back_to_camel_case() {
        let mut c = BackupConfig { schedule: Some("2h".into()), ..Default::default() };
        c.storage.secret_access_key = Some(Secret::new("x"));
        c.include.extra_paths = vec![PathBuf::from("/a")];
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["storage"]["secretAccessKey"], "x");
        assert_eq!(v["include"]["extraPaths"][0], "/a");
        assert!(v.get("enabled").is_none());
        let back: BackupConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
