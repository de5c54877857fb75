//! Resolving what every command needs: where the repository is, the password, and the cache; then
//! opening the repository. Flags beat environment variables, which beat files.

use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::Backend;
use clawback_engine::repo::{CacheOptions, Repository, Secret};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

pub enum Location {
    Local(PathBuf),
}

pub struct Resolved {
    pub location: Location,
    /// True when no repository was named and the embedded default is used.
    pub is_default: bool,
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| clawback_engine::repo::home_dir().join(fallback))
}

/// The embedded default repository: `$XDG_DATA_HOME/clawback/repo`.
pub fn default_repo_path() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share")
        .join("clawback")
        .join("repo")
}

/// Where the generated password of the embedded default repository is kept (0600).
pub fn default_password_file() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config")
        .join("clawback")
        .join("default-repo.password")
}

pub fn resolve(g: &GlobalArgs) -> Result<Resolved> {
    match g.repo.as_deref() {
        None | Some("") => Ok(Resolved {
            location: Location::Local(default_repo_path()),
            is_default: true,
        }),
        Some(r) => Ok(Resolved {
            location: parse_location(r)?,
            is_default: false,
        }),
    }
}

pub fn parse_location(r: &str) -> Result<Location> {
    if r.starts_with("s3:") {
        return Err(usage(format!(
            "repository {r}: the S3 backend is not available in this build yet; use a local path"
        )));
    }
    let p = r.strip_prefix("local:").unwrap_or(r);
    if p.is_empty() {
        return Err(usage("empty repository path"));
    }
    Ok(Location::Local(PathBuf::from(p)))
}

pub fn backend(loc: &Location) -> Arc<dyn Backend> {
    match loc {
        Location::Local(p) => Arc::new(LocalBackend::new(p.clone())),
    }
}

fn read_password_file(p: &std::path::Path) -> Result<Secret> {
    let s =
        std::fs::read(p).with_context(|| format!("cannot read password file {}", p.display()))?;
    let mut s = s;
    while matches!(s.last(), Some(b'\n' | b'\r')) {
        s.pop();
    }
    Ok(Secret(s))
}

/// The password from, in order: `--password-file`, `CLAWBACK_PASSWORD`, `CLAWBACK_PASSWORD_FILE`,
/// the embedded default repository's generated file, or a prompt on a terminal.
pub fn password(g: &GlobalArgs, res: &Resolved, new_repo: bool) -> Result<Secret> {
    if let Some(f) = &g.password_file {
        return read_password_file(f);
    }
    if let Ok(p) = std::env::var("CLAWBACK_PASSWORD") {
        if !p.is_empty() {
            return Ok(Secret(p.into_bytes()));
        }
    }
    if let Some(f) = std::env::var_os("CLAWBACK_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        return read_password_file(std::path::Path::new(&f));
    }
    if res.is_default {
        let f = default_password_file();
        if f.exists() {
            return read_password_file(&f);
        }
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("enter repository password: ")
            .context("cannot read the password")?;
        if new_repo {
            let again = rpassword::prompt_password("enter the password again: ")
                .context("cannot read the password")?;
            if again != p {
                return Err(usage("the passwords do not match"));
            }
        }
        if p.is_empty() {
            return Err(usage("empty password"));
        }
        return Ok(Secret(p.into_bytes()));
    }
    if res.is_default && new_repo {
        return generate_default_password();
    }
    Err(clawback_engine::Error::NoPassword.into())
}

/// For the embedded default repository with no password given and no terminal to ask on: make a
/// random one and keep it in a 0600 file, saying where.
fn generate_default_password() -> Result<Secret> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let f = default_password_file();
    std::fs::create_dir_all(f.parent().unwrap())
        .with_context(|| format!("cannot create {}", f.parent().unwrap().display()))?;
    let pw = hex::encode(rand_bytes());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&f)
        .with_context(|| format!("cannot create {}", f.display()))?;
    file.write_all(pw.as_bytes())?;
    eprintln!("clawback: generated a password for the default repository in {} (keep a copy elsewhere: without it the backups cannot be read)", f.display());
    Ok(Secret(pw.into_bytes()))
}

fn rand_bytes() -> [u8; 24] {
    let mut b = [0u8; 24];
    let f = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    f.expect("read /dev/urandom");
    b
}

pub fn cache_options(g: &GlobalArgs) -> CacheOptions {
    CacheOptions {
        dir: g.cache_dir.clone(),
        disabled: g.no_cache,
    }
}

/// Opens the repository named by the flags.
pub fn open(g: &GlobalArgs) -> Result<Repository> {
    let res = resolve(g)?;
    let be = backend(&res.location);
    if matches!(be.read(clawback_engine::backend::Kind::Config, "config"), Err(ref e) if e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(clawback_engine::Error::RepoNotFound(be.location()).into());
    }
    let pw = password(g, &res, false)?;
    Ok(Repository::open(be, &pw, &cache_options(g))?)
}
