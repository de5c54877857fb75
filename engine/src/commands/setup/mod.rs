//! `setup`'s decisions, apart from its questions (the CLI asks them): where the config goes, the
//! providers offered and their defaults, the checks each answer meets, the storage and
//! encryption sections written (always `${VAR}` references or a password file, never a literal
//! secret), what is already at the location and which password opens it, and which of the final
//! checks fail the set-up.

pub mod answers;
pub mod existing;
pub mod providers;

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::config::StorageConfig;
use crate::error::{Error, Result};
use crate::openclaw::Env;

/// Where the config goes: `explicit` (`--config`), else `CLAWBACK_CONFIG`, else
/// `<state dir>/clawback.json`.
pub fn config_path(explicit: Option<&Path>, env: &Env) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = env.get("CLAWBACK_CONFIG") {
        return PathBuf::from(p);
    }
    crate::openclaw::paths::state_dir(env).join("clawback.json")
}

/// Where a config that `setup --force` replaces is kept: beside it, `<name>.bak-<UTC time>`.
pub fn kept_copy(path: &Path, now: chrono::DateTime<chrono::Utc>) -> PathBuf {
    path.with_file_name(format!(
        "{}.bak-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("clawback.json"),
        now.format("%Y%m%dT%H%M%SZ")
    ))
}

/// The config file's text.
pub fn config_text(cfg: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_default() + "\n"
}

/// The folder inside the bucket `setup` suggests.
pub const DEFAULT_PREFIX: &str = "clawback";
/// The variables `setup` suggests for the S3 keys.
pub const DEFAULT_ACCESS_KEY_VAR: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";

/// The storage answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageAnswers {
    Folder(PathBuf),
    Bucket(BucketAnswers),
}

/// The answers for an S3-compatible store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketAnswers {
    pub bucket: String,
    pub region: String,
    /// None for AWS S3 itself.
    pub endpoint: Option<String>,
    pub prefix: String,
    /// The variables holding the keys, written as `${VAR}` references.
    pub access_key_var: String,
    pub secret_key_var: String,
}

impl StorageAnswers {
    /// The config's `storage` section.
    pub fn to_json(&self) -> Value {
        match self {
            StorageAnswers::Folder(p) => json!({ "provider": "local", "path": p }),
            StorageAnswers::Bucket(BucketAnswers {
                bucket,
                region,
                endpoint,
                prefix,
                access_key_var,
                secret_key_var,
            }) => {
                let mut s = json!({
                    "provider": "s3",
                    "bucket": bucket,
                    "region": region,
                    "accessKeyId": format!("${{{access_key_var}}}"),
                    "secretAccessKey": format!("${{{secret_key_var}}}"),
                });
                if let Some(e) = endpoint {
                    s["endpoint"] = json!(e);
                }
                if !prefix.trim_matches('/').is_empty() {
                    s["prefix"] = json!(prefix.trim_matches('/'));
                }
                s
            }
        }
    }

    /// The variables the section refers to for its keys.
    pub fn key_vars(&self) -> Vec<String> {
        match self {
            StorageAnswers::Folder(_) => Vec::new(),
            StorageAnswers::Bucket(BucketAnswers { access_key_var, secret_key_var, .. }) => {
                vec![access_key_var.clone(), secret_key_var.clone()]
            }
        }
    }
}

/// A `storage` section as settings, its `${VAR}` references resolved from `env`: to look at the
/// repository before anything is written.
pub fn storage_settings(storage: &Value, env: &Env) -> Result<StorageConfig> {
    let mut unresolved = Vec::new();
    let v = crate::openclaw::vars::substitute(storage, env, &mut unresolved);
    serde_json::from_value(v)
        .map_err(|e| Error::Other(format!("the storage answers do not make a storage setting: {e}")))
}

/// The password answers for a new repository.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordAnswers<'a> {
    /// `--password-env VAR`.
    pub password_env: Option<&'a str>,
    /// `--generate-password`.
    pub generate: bool,
    /// `--password-file F`.
    pub password_file: Option<&'a Path>,
}

/// How a new repository's password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChoice {
    /// From this variable (`--password-env`).
    Env(String),
    /// `CLAWBACK_PASSWORD`, which is set and which every command takes first.
    ClawbackPassword,
    /// A random one, generated into this new file (or the file that is there, never replaced).
    Generate(PathBuf),
    /// An existing key/password file.
    KeyFile(PathBuf),
    /// Nothing said it: ask on the terminal.
    Ask,
}

impl PasswordChoice {
    /// The config's `encryption` section for it (`Ask` has none yet).
    pub fn encryption(&self) -> Option<Value> {
        match self {
            PasswordChoice::Env(v) => Some(passphrase_from(v)),
            PasswordChoice::ClawbackPassword => Some(passphrase_from("CLAWBACK_PASSWORD")),
            PasswordChoice::Generate(f) | PasswordChoice::KeyFile(f) => Some(key_file(f)),
            PasswordChoice::Ask => None,
        }
    }
}

/// `encryption` taking the passphrase from `${var}`.
pub fn passphrase_from(var: &str) -> Value {
    json!({ "passphrase": format!("${{{var}}}") })
}

/// `encryption` taking the passphrase from a file.
pub fn key_file(f: &Path) -> Value {
    json!({ "keyFile": f })
}

/// How a NEW repository's password is kept, from the answers: `--password-env`, else
/// `CLAWBACK_PASSWORD` when set (every command takes it before the config's password, so a new
/// password beside it would not be the one used), else a generated file (asked for, or no
/// terminal and no file given), else `--password-file`, else ask. `env_file` names the
/// environment file in messages.
pub fn choose_password(a: PasswordAnswers, env: &Env, tty: bool, env_file: &str) -> Result<PasswordChoice> {
    if let Some(v) = a.password_env {
        return Ok(PasswordChoice::Env(answers::check_var(v).map_err(Error::Usage)?));
    }
    if env.vars.get("CLAWBACK_PASSWORD").is_some_and(|p| !p.is_empty()) {
        if a.generate || a.password_file.is_some() {
            return Err(Error::Usage(format!(
                "CLAWBACK_PASSWORD is set (in this shell or {env_file}) and every command takes it before the config's \
                 password: use it (--password-env CLAWBACK_PASSWORD, or leave out --generate-password and \
                 --password-file), or unset it and remove it from that file first"
            )));
        }
        return Ok(PasswordChoice::ClawbackPassword);
    }
    if a.generate || (a.password_file.is_none() && !tty) {
        let f = a.password_file.map(Path::to_path_buf).unwrap_or_else(|| existing::password_file(env));
        return Ok(PasswordChoice::Generate(answers::absolute(env, &f)?));
    }
    if let Some(f) = a.password_file {
        if !f.is_file() {
            return Err(Error::Usage(format!(
                "password file {} does not exist (add --generate-password to create it)",
                f.display()
            )));
        }
        return Ok(PasswordChoice::KeyFile(crate::repo::host::absolute_clean(f)?));
    }
    Ok(PasswordChoice::Ask)
}

/// The refusal for `--generate-password` on a repository that exists.
pub fn generated_for_existing(loc: &str) -> Error {
    Error::Usage(format!(
        "the repository at {loc} exists; a generated password would not open it: run setup without \
         --generate-password (with --password-file FILE or --password-env VAR holding its password), and add \
         a new password with `clawback key add` once in"
    ))
}

/// A password file about to be written: whether one is there already, and whether it holds a
/// password (a file is never written over: it may be the only key to another repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordFile {
    Missing,
    /// There, holding a password: kept and used.
    Kept,
}

/// What to do with the password file `f` setup means to write.
pub fn password_file_state(f: &Path) -> Result<PasswordFile> {
    if !f.exists() {
        return Ok(PasswordFile::Missing);
    }
    match crate::config::password::read_password_file(f) {
        Ok(_) => Ok(PasswordFile::Kept),
        Err(_) => Err(Error::Usage(format!(
            "{} exists but holds no password; remove it or give another --password-file",
            f.display()
        ))),
    }
}

/// The names of the checks (as `clawback test --json` lists them) that failed.
pub fn failed_checks(checks: &Value) -> Vec<String> {
    checks
        .as_array()
        .map(|l| l.iter().filter(|c| c["ok"] != true).filter_map(|c| c["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Whether the failed checks fail the set-up: any but the schedule's, and the schedule's too
/// when setup installed the schedule itself.
pub fn checks_fail_setup(failed: &[String], installed_schedule: bool) -> bool {
    failed.iter().any(|n| n != "schedule") || (!failed.is_empty() && installed_schedule)
}

/// Whether the commands setup runs with the new config must not see this shell's
/// `CLAWBACK_PASSWORD` (they must open the repository as the config says): unless the config
/// refers to it or it was chosen with `--password-env CLAWBACK_PASSWORD`.
pub fn hide_clawback_password(password_env: Option<&str>, config_text: Option<&str>) -> bool {
    password_env != Some("CLAWBACK_PASSWORD") && !config_text.is_some_and(|t| t.contains("${CLAWBACK_PASSWORD}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_goes_where_it_is_named() {
        let env = Env::from_pairs([("OPENCLAW_STATE_DIR", "/state"), ("HOME", "/home/u")]);
        assert_eq!(config_path(Some(Path::new("/x.json")), &env), PathBuf::from("/x.json"));
        assert_eq!(config_path(None, &env), PathBuf::from("/state/clawback.json"));
        let env = env.with("CLAWBACK_CONFIG", "/named.json");
        assert_eq!(config_path(None, &env), PathBuf::from("/named.json"));
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z").unwrap().to_utc();
        assert_eq!(
            kept_copy(Path::new("/s/clawback.json"), now),
            PathBuf::from("/s/clawback.json.bak-20260304T050607Z")
        );
    }

    #[test]
    fn storage_sections_hold_references_not_secrets() {
        let r2 = BucketAnswers {
            bucket: "bkt".into(),
            region: "auto".into(),
            endpoint: Some("https://acc.r2.cloudflarestorage.com".into()),
            prefix: "/clawback/".into(),
            access_key_var: "R2_KEY".into(),
            secret_key_var: "R2_SECRET".into(),
        };
        let b = StorageAnswers::Bucket(r2.clone());
        assert_eq!(
            b.to_json(),
            json!({ "provider": "s3", "bucket": "bkt", "region": "auto", "accessKeyId": "${R2_KEY}",
                    "secretAccessKey": "${R2_SECRET}", "endpoint": "https://acc.r2.cloudflarestorage.com",
                    "prefix": "clawback" })
        );
        assert_eq!(b.key_vars(), vec!["R2_KEY", "R2_SECRET"]);
        let aws = StorageAnswers::Bucket(BucketAnswers { endpoint: None, prefix: "/".into(), ..r2 });
        assert!(aws.to_json().get("endpoint").is_none() && aws.to_json().get("prefix").is_none());
        let f = StorageAnswers::Folder("/srv/repo".into());
        assert_eq!(f.to_json(), json!({ "provider": "local", "path": "/srv/repo" }));
        assert!(f.key_vars().is_empty());

        let env = Env::from_pairs([("R2_KEY", "AKIA"), ("R2_SECRET", "s3cr3t")]);
        let st = storage_settings(&b.to_json(), &env).unwrap();
        assert_eq!(st.access_key_id.unwrap().expose(), "AKIA");
        assert_eq!((st.provider.as_deref(), st.prefix.as_deref()), (Some("s3"), Some("clawback")));
        // Unset variables leave the setting as written; nothing fails before the storage is looked at.
        assert!(storage_settings(&b.to_json(), &Env::default()).is_ok());
    }

    #[test]
    fn new_repository_passwords() {
        let t = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("XDG_CONFIG_HOME", t.path().to_string_lossy().into_owned())]);
        let none = PasswordAnswers::default();
        let choose = |a, env: &Env, tty| choose_password(a, env, tty, "~/.config/clawback/env");
        let default = t.path().join("clawback/password");
        assert_eq!(choose(none, &env, true).unwrap(), PasswordChoice::Ask);
        assert_eq!(choose(none, &env, false).unwrap(), PasswordChoice::Generate(default.clone()));
        let gen = PasswordAnswers { generate: true, ..none };
        assert_eq!(choose(gen, &env, true).unwrap(), PasswordChoice::Generate(default));
        let var = PasswordAnswers { password_env: Some("MY_PW"), generate: true, ..none };
        assert_eq!(choose(var, &env, false).unwrap(), PasswordChoice::Env("MY_PW".into()));
        assert_eq!(
            choose(PasswordAnswers { password_env: Some("bad"), ..none }, &env, false).unwrap_err().exit_code(),
            2
        );
        let f = t.path().join("pw");
        let file = PasswordAnswers { password_file: Some(&f), ..none };
        let e = choose(file, &env, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("password file {} does not exist (add --generate-password to create it)", f.display())
        );
        std::fs::write(&f, "x").unwrap();
        assert_eq!(choose(file, &env, true).unwrap(), PasswordChoice::KeyFile(f.clone()));
        assert_eq!(choose(file, &env, true).unwrap().encryption(), Some(json!({ "keyFile": f })));
        // With CLAWBACK_PASSWORD set, it is the password; asking for another is refused.
        let env = env.with("CLAWBACK_PASSWORD", "pw");
        assert_eq!(choose(none, &env, false).unwrap(), PasswordChoice::ClawbackPassword);
        assert_eq!(
            PasswordChoice::ClawbackPassword.encryption(),
            Some(json!({ "passphrase": "${CLAWBACK_PASSWORD}" }))
        );
        let e = choose(gen, &env, false).unwrap_err();
        assert!(e.to_string().starts_with("CLAWBACK_PASSWORD is set (in this shell or ~/.config/clawback/env)"), "{e}");
        assert!(choose(file, &env, false).is_err());
    }

    #[test]
    fn password_files_are_never_replaced() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("pw");
        assert_eq!(password_file_state(&f).unwrap(), PasswordFile::Missing);
        std::fs::write(&f, "pw\n").unwrap();
        assert_eq!(password_file_state(&f).unwrap(), PasswordFile::Kept);
        std::fs::write(&f, "\n").unwrap();
        assert!(password_file_state(&f)
            .unwrap_err()
            .to_string()
            .ends_with("exists but holds no password; remove it or give another --password-file"));
    }

    #[test]
    fn which_checks_fail_the_setup() {
        let checks = json!([
            { "name": "config", "ok": true },
            { "name": "schedule", "ok": false },
            { "name": "key", "ok": true }
        ]);
        let failed = failed_checks(&checks);
        assert_eq!(failed, vec!["schedule"]);
        assert!(!checks_fail_setup(&failed, false));
        assert!(checks_fail_setup(&failed, true));
        assert!(checks_fail_setup(&["storage".to_string()], false));
        assert!(!checks_fail_setup(&[], true));
    }

    #[test]
    fn children_see_clawback_password_only_when_it_is_the_password() {
        assert!(hide_clawback_password(None, Some(r#"{"encryption":{"keyFile":"/k"}}"#)));
        assert!(!hide_clawback_password(Some("CLAWBACK_PASSWORD"), None));
        assert!(!hide_clawback_password(None, Some(r#"{"passphrase":"${CLAWBACK_PASSWORD}"}"#)));
    }
}
