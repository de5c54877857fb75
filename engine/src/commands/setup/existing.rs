//! What `setup` finds before it writes anything, so nothing it does locks a user out: whether a
//! repository is already at the location, and every password this setup holds or was given, to
//! prove one opens it. Never writes over a password file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::answers::absolute;
use crate::backend::{Backend, ObjectName};
use crate::config::password::{self, read_password_file};
use crate::error::{Error, Result};
use crate::openclaw::Env;
use crate::repo::{location, CacheOptions, Repository, Secret};

/// What is at the repository location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Repository,
    Nothing,
    /// The S3 bucket itself does not exist.
    NoBucket,
    /// The storage did not answer, or refused: the error's line.
    Unreachable(String),
}

/// Looks at the location: one read of the repository's config.
pub fn look(be: &dyn Backend) -> Found {
    match be.read(&ObjectName::config()) {
        Ok(_) => Found::Repository,
        Err(e) if location::is_missing_container(&e) => Found::NoBucket,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Nothing,
        Err(e) => Found::Unreachable(e.to_string()),
    }
}

/// Where `setup` keeps a passphrase it generates or is typed: `$XDG_CONFIG_HOME/clawback/password`.
pub fn password_file(env: &Env) -> PathBuf {
    location::config_dir(env).join("password")
}

/// A password file name that does not exist yet, next to [`password_file`] (`password-2`, ...).
pub fn free_password_file(env: &Env) -> PathBuf {
    let base = password_file(env);
    if !base.exists() {
        return base;
    }
    (2..).map(|n| base.with_file_name(format!("password-{n}"))).find(|p| !p.exists()).unwrap()
}

/// A password that can be tried on the repository, and how the config refers to it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Where it came from, for messages (`$VAR`, a file, the old config).
    pub what: String,
    pub secret: Secret,
    /// The config's `encryption` section that gives it (references kept, never the value).
    pub encryption: Value,
}

/// The password answers `setup` was given: `--password-env VAR` and `--password-file F`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    pub password_env: Option<&'a str>,
    pub password_file: Option<&'a Path>,
}

/// Every password this setup holds or was given, in order: the flags, `CLAWBACK_PASSWORD(_FILE)`,
/// the config being replaced (`old_config`), the default password files.
pub fn candidates(given: Given, old_config: &Path, env: &Env) -> Vec<Candidate> {
    let mut out = Vec::new();
    let key_file = |f: &Path, out: &mut Vec<Candidate>| {
        if let (Ok(s), Ok(abs)) = (read_password_file(f), absolute(env, f)) {
            out.push(Candidate { what: abs.display().to_string(), secret: s, encryption: json!({ "keyFile": abs }) });
        }
    };
    if let Some(v) = given.password_env {
        if let Some(p) = env.vars.get(v).filter(|p| !p.is_empty()) {
            out.push(Candidate {
                what: format!("${v}"),
                secret: Secret(p.as_bytes().to_vec()),
                encryption: json!({ "passphrase": format!("${{{v}}}") }),
            });
        }
    }
    if let Some(f) = given.password_file {
        key_file(f, &mut out);
    }
    if let Some(p) = env.vars.get("CLAWBACK_PASSWORD").filter(|p| !p.is_empty()) {
        out.push(Candidate {
            what: "$CLAWBACK_PASSWORD".into(),
            secret: Secret(p.as_bytes().to_vec()),
            encryption: json!({ "passphrase": "${CLAWBACK_PASSWORD}" }),
        });
    }
    if let Some(f) = env.vars.get("CLAWBACK_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        key_file(Path::new(f), &mut out);
    }
    out.extend(from_old_config(old_config, env));
    for f in [password_file(env), location::default_password_file(env)] {
        if let Ok(s) = read_password_file(&f) {
            out.push(Candidate { what: f.display().to_string(), secret: s, encryption: json!({ "keyFile": f }) });
        }
    }
    out
}

/// The config being replaced: its encryption section as written (references kept), tried with
/// the value it resolves to.
fn from_old_config(old_config: &Path, env: &Env) -> Option<Candidate> {
    if !old_config.is_file() {
        return None;
    }
    let l = crate::config::load(env, Some(old_config)).ok()?;
    let raw = crate::openclaw::include::load_with_includes(old_config, env).ok()?;
    let mut e = raw.value.get("backup").unwrap_or(&raw.value).get("encryption").cloned()?;
    let enc = &l.config.encryption;
    let secret = password::configured(enc)?.read().ok()?;
    if let (Some(f), Some(o)) = (&enc.key_file, e.as_object_mut()) {
        o.insert("keyFile".into(), json!(f));
    }
    Some(Candidate { what: format!("the encryption settings of {}", old_config.display()), secret, encryption: e })
}

/// Whether `pw` opens the repository at `be` (false: wrong password; other failures are errors).
pub fn opens(be: &Arc<dyn Backend>, pw: &Secret) -> Result<bool> {
    match Repository::open_unloaded(be.clone(), pw, &CacheOptions { dir: None, disabled: true }) {
        Ok(_) => Ok(true),
        Err(Error::WrongPassword) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The first candidate that opens the repository at `be`.
pub fn first_opening<'a>(be: &Arc<dyn Backend>, tried: &'a [Candidate]) -> Result<Option<&'a Candidate>> {
    for c in tried {
        if opens(be, &c.secret)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// What was tried, when none opened: `no password was given`, or `A, B did not open it`.
pub fn none_opened(tried: &[Candidate]) -> String {
    let names: Vec<&str> = tried.iter().map(|c| c.what.as_str()).collect();
    if names.is_empty() {
        "no password was given".to_string()
    } else {
        format!("{} did not open it", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::format::crypto::KdfParams;
    use crate::repo::InitOptions;

    struct Fx {
        _t: tempfile::TempDir,
        root: PathBuf,
        env: Env,
    }

    fn fx() -> Fx {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let env = Env::from_pairs([
            ("HOME", root.join("home").to_string_lossy().into_owned()),
            ("XDG_CONFIG_HOME", root.join("cfg").to_string_lossy().into_owned()),
            ("OPENCLAW_STATE_DIR", root.join("state").to_string_lossy().into_owned()),
        ]);
        Fx { _t: t, root, env }
    }

    fn repo(at: &Path, pw: &str) -> Arc<dyn Backend> {
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(at));
        let opts = InitOptions { kdf: KdfParams { m_cost: 1024, t_cost: 1, p_cost: 1 }, ..InitOptions::default() };
        Repository::init(be.clone(), &Secret(pw.as_bytes().to_vec()), &opts).unwrap();
        be
    }

    #[test]
    fn what_is_there() {
        let f = fx();
        let empty: Arc<dyn Backend> = Arc::new(LocalBackend::new(f.root.join("nothing")));
        assert_eq!(look(empty.as_ref()), Found::Nothing);
        let be = repo(&f.root.join("r"), "pw");
        assert_eq!(look(be.as_ref()), Found::Repository);
    }

    #[test]
    fn candidates_in_order_and_the_one_that_opens() {
        let f = fx();
        let be = repo(&f.root.join("r"), "right");
        std::fs::write(f.root.join("flag.pw"), "wrong-file\n").unwrap();
        std::fs::create_dir_all(f.root.join("cfg/clawback")).unwrap();
        std::fs::write(f.root.join("cfg/clawback/password"), "right\n").unwrap();
        let env = f.env.clone().with("MY_PW", "from-var").with("CLAWBACK_PASSWORD", "env-pw");
        let given = Given { password_env: Some("MY_PW"), password_file: Some(&f.root.join("flag.pw")) };
        let c = candidates(given, &f.root.join("no-config.json"), &env);
        let whats: Vec<&str> = c.iter().map(|c| c.what.as_str()).collect();
        let flag = f.root.join("flag.pw").display().to_string();
        let default = f.root.join("cfg/clawback/password").display().to_string();
        assert_eq!(whats, vec!["$MY_PW", flag.as_str(), "$CLAWBACK_PASSWORD", default.as_str()]);
        assert_eq!(c[0].encryption, json!({ "passphrase": "${MY_PW}" }));
        assert_eq!(c[2].encryption, json!({ "passphrase": "${CLAWBACK_PASSWORD}" }));
        let hit = first_opening(&be, &c).unwrap().unwrap();
        assert_eq!(hit.encryption, json!({ "keyFile": f.root.join("cfg/clawback/password") }));
        assert!(first_opening(&be, &c[..3]).unwrap().is_none());
        assert_eq!(none_opened(&c[..1]), "$MY_PW did not open it");
        assert_eq!(none_opened(&[]), "no password was given");
    }

    #[test]
    fn the_old_config_keeps_its_references() {
        let f = fx();
        let be = repo(&f.root.join("r"), "old-pw");
        let cfg = f.root.join("clawback.json");
        std::fs::write(&cfg, r#"{ encryption: { passphrase: "${OLD_PW}" } }"#).unwrap();
        let env = f.env.clone().with("OLD_PW", "old-pw");
        let c = candidates(Given::default(), &cfg, &env);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].encryption, json!({ "passphrase": "${OLD_PW}" }));
        assert!(opens(&be, &c[0].secret).unwrap());
        // A relative keyFile is written back resolved.
        std::fs::write(f.root.join("k.pw"), "old-pw").unwrap();
        std::fs::write(&cfg, r#"{ backup: { encryption: { keyFile: "k.pw" } } }"#).unwrap();
        let c = candidates(Given::default(), &cfg, &f.env);
        assert_eq!(c[0].encryption, json!({ "keyFile": f.root.join("k.pw") }));
    }

    #[test]
    fn free_password_files() {
        let f = fx();
        assert_eq!(free_password_file(&f.env), f.root.join("cfg/clawback/password"));
        std::fs::create_dir_all(f.root.join("cfg/clawback")).unwrap();
        std::fs::write(f.root.join("cfg/clawback/password"), "x").unwrap();
        std::fs::write(f.root.join("cfg/clawback/password-2"), "x").unwrap();
        assert_eq!(free_password_file(&f.env), f.root.join("cfg/clawback/password-3"));
    }
}
