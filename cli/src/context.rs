//! Resolving what every command needs: the configuration (clawback's file and the `backup` section
//! of openclaw.json), where the repository is, the password and the cache; then opening the
//! repository. Flags beat environment variables, which beat files.

use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::Backend;
use clawback_engine::config::{BackupConfig, Loaded, Provider};
use clawback_engine::openclaw::{self, Env};
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

/// The environment and configuration, loaded once per run.
pub struct Settings {
    pub env: Env,
    pub config: BackupConfig,
}

impl Settings {
    /// Loads the configuration. A file named by `--config` must load; otherwise a broken config is
    /// reported as a warning and the defaults apply, so a backup still runs.
    pub fn load(g: &GlobalArgs) -> Result<Settings> {
        let env = Env::from_process();
        let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").map(PathBuf::from));
        match clawback_engine::config::load(&env, explicit.as_deref()) {
            Ok(Loaded { config, warnings, sources, .. }) => {
                if !g.quiet {
                    for w in &warnings {
                        eprintln!("clawback: warning: {w}");
                    }
                }
                if g.verbose > 0 {
                    for f in &sources {
                        eprintln!("clawback: config read from {}", f.display());
                    }
                }
                Ok(Settings { env, config })
            }
            Err(e) if explicit.is_none() => {
                if !g.quiet {
                    eprintln!("clawback: warning: configuration ignored: {e}");
                }
                Ok(Settings { env, config: BackupConfig::default() })
            }
            Err(e) => Err(clawback_engine::Error::from(e).into()),
        }
    }
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| clawback_engine::repo::home_dir().join(fallback))
}

/// The embedded default repository: `$XDG_DATA_HOME/clawback/repo`.
pub fn default_repo_path() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("clawback").join("repo")
}

/// Where the generated password of the embedded default repository is kept (0600).
pub fn default_password_file() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("clawback").join("default-repo.password")
}

/// `--repo`/`CLAWBACK_REPO`, else the config's `storage`, else the embedded default.
pub fn resolve(g: &GlobalArgs, s: &Settings) -> Result<Resolved> {
    if let Some(r) = g.repo.as_deref().filter(|r| !r.is_empty()) {
        return Ok(Resolved { location: parse_location(r)?, is_default: false });
    }
    let st = &s.config.storage;
    match st.provider {
        Some(Provider::S3) => Err(usage(
            "the config's storage provider is s3: the S3 backend is not available in this build yet; use provider local",
        )),
        Some(Provider::Local) | None if st.path.is_some() => {
            Ok(Resolved { location: Location::Local(st.path.clone().unwrap()), is_default: false })
        }
        Some(Provider::Local) => Err(usage("the config's storage provider is local but storage.path is not set")),
        None => Ok(Resolved { location: Location::Local(default_repo_path()), is_default: true }),
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

pub fn read_password_file(p: &std::path::Path) -> Result<Secret> {
    let mut s = std::fs::read(p).with_context(|| format!("cannot read password file {}", p.display()))?;
    while matches!(s.last(), Some(b'\n' | b'\r')) {
        s.pop();
    }
    if s.is_empty() {
        return Err(usage(format!("password file {} is empty", p.display())));
    }
    Ok(Secret(s))
}

/// Runs a password command (`sh -c`) and takes its output without the trailing newline; the output is
/// never logged.
pub fn password_from_command(cmd: &str) -> Result<Secret> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run the password command")?;
    if !out.status.success() {
        return Err(clawback_engine::Error::Other(format!(
            "the password command failed ({}); check --password-command or encryption.passwordCommand",
            out.status
        ))
        .into());
    }
    let mut pw = out.stdout;
    if pw.last() == Some(&b'\n') {
        pw.pop();
        if pw.last() == Some(&b'\r') {
            pw.pop();
        }
    }
    if pw.is_empty() {
        return Err(clawback_engine::Error::Other("the password command printed no password".into()).into());
    }
    Ok(Secret(pw))
}

/// The password from, in order: `--password-file`, `--password-command`, `CLAWBACK_PASSWORD`, `CLAWBACK_PASSWORD_FILE`, the
/// config's `encryption` (passphrase, keyFile, passwordCommand), the embedded default repository's
/// generated file, or a prompt on a terminal.
pub fn password(g: &GlobalArgs, s: &Settings, res: &Resolved, new_repo: bool) -> Result<Secret> {
    if let Some(f) = &g.password_file {
        return read_password_file(f);
    }
    if let Some(c) = &g.password_command {
        return password_from_command(c);
    }
    if let Ok(p) = std::env::var("CLAWBACK_PASSWORD") {
        if !p.is_empty() {
            return Ok(Secret(p.into_bytes()));
        }
    }
    if let Some(f) = std::env::var_os("CLAWBACK_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        return read_password_file(std::path::Path::new(&f));
    }
    let enc = &s.config.encryption;
    if let Some(p) = enc.passphrase.as_ref().filter(|p| !p.is_empty()) {
        return Ok(Secret(p.expose().as_bytes().to_vec()));
    }
    if let Some(f) = &enc.key_file {
        return read_password_file(f);
    }
    if let Some(c) = enc.password_command.as_deref().filter(|c| !c.is_empty()) {
        return password_from_command(c);
    }
    if res.is_default {
        let f = default_password_file();
        if f.exists() {
            return read_password_file(&f);
        }
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("enter repository password: ").context("cannot read the password")?;
        if new_repo {
            let again = rpassword::prompt_password("enter the password again: ").context("cannot read the password")?;
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
    let dir = f.parent().unwrap();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut b))
        .context("cannot read /dev/urandom")?;
    let pw = hex::encode(b);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&f)
        .with_context(|| format!("cannot create {}", f.display()))?;
    file.write_all(pw.as_bytes())?;
    eprintln!(
        "clawback: generated a password for the default repository in {} (keep a copy elsewhere: without it the backups cannot be read)",
        f.display()
    );
    Ok(Secret(pw.into_bytes()))
}

pub fn cache_options(g: &GlobalArgs) -> CacheOptions {
    CacheOptions { dir: g.cache_dir.clone(), disabled: g.no_cache }
}

/// Whether the repository at `be` exists (has a config).
pub fn exists(be: &dyn Backend) -> bool {
    !matches!(be.read(clawback_engine::backend::Kind::Config, "config"), Err(ref e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Opens the repository named by the flags, environment or config.
pub fn open_with(g: &GlobalArgs, s: &Settings) -> Result<Repository> {
    let res = resolve(g, s)?;
    let be = backend(&res.location);
    if !exists(be.as_ref()) {
        return Err(clawback_engine::Error::RepoNotFound(be.location()).into());
    }
    let pw = password(g, s, &res, false)?;
    Ok(Repository::open(be, &pw, &cache_options(g))?)
}

/// Creates the repository at the resolved location with `opts`.
pub fn create(g: &GlobalArgs, s: &Settings, res: &Resolved, opts: &clawback_engine::repo::InitOptions) -> Result<()> {
    let pw = password(g, s, res, true)?;
    Repository::init(backend(&res.location), &pw, opts)?;
    Ok(())
}

/// Opens the repository, first creating it when it is the embedded default and does not exist yet
/// (what `backup` and `import` do on first use).
pub fn open_or_create_default(g: &GlobalArgs, s: &Settings) -> Result<(Repository, Resolved)> {
    let res = resolve(g, s)?;
    let be = backend(&res.location);
    if !exists(be.as_ref()) {
        if !res.is_default {
            return Err(clawback_engine::Error::RepoNotFound(be.location()).into());
        }
        create(g, s, &res, &clawback_engine::repo::InitOptions::default())?;
        if !g.quiet {
            eprintln!("clawback: created the default repository at {}", be.location());
        }
    }
    Ok((open_with(g, s)?, res))
}

/// Loads the settings and opens the repository.
pub fn open(g: &GlobalArgs) -> Result<Repository> {
    open_with(g, &Settings::load(g)?)
}

/// OpenClaw's layout as discovery finds it; a broken openclaw.json is a warning, not a failure.
pub fn layout(g: &GlobalArgs, s: &Settings) -> openclaw::Layout {
    match openclaw::discover(&s.env) {
        Ok(l) => {
            if !g.quiet {
                for w in &l.warnings {
                    eprintln!("clawback: warning: {w}");
                }
            }
            l
        }
        Err(e) => {
            if !g.quiet {
                eprintln!("clawback: warning: cannot read the OpenClaw config ({e}); using the default layout");
            }
            openclaw::layout::layout_from(&openclaw::config::OpenClawConfig::empty(&s.env), &s.env)
        }
    }
}
