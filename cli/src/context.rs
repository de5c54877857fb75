//! What every command shares within one run of the program, built once in `main`: the global
//! flags, the backends opened so far (reused, and counted for `-v`) and the passwords typed at the
//! prompt ([`Ctx`]); and loading the settings (clawback's config and the environment), with its
//! warnings printed. Where the repository is and which password opens it are the engine's rules
//! (`repo::location`, `config::password`); this module applies them to the flags and prompts.

use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::backend::fault::FaultConfig;
use clawback_engine::backend::Backend;
use clawback_engine::config::password::{self, PasswordFlags};
use clawback_engine::config::{BackupConfig, Loaded};
use clawback_engine::openclaw::{self, Env};
use clawback_engine::repo::location::{self, Backends, Location, Overrides, Sources, Traffic};
use clawback_engine::repo::{CacheOptions, Repository, Secret};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use clawback_engine::repo::location::Resolved;

/// One run of the program: its global flags and what its commands opened and were told.
pub struct Ctx {
    pub g: GlobalArgs,
    /// Every backend opened, by location: a command that looks at a repository twice (does it
    /// exist, then open it) reuses one client and its caches, and `-v` reports the requests each
    /// made.
    backends: Backends,
    /// Passwords typed at the prompt, by repository: a command that creates a repository and then
    /// opens it (or starts prune after a backup) asks once.
    typed: Mutex<Vec<(String, Secret)>>,
}

/// The environment and configuration, loaded once per command.
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

/// `--storage-class` and `--connections`, which beat the environment and the config.
fn overrides(g: &GlobalArgs) -> Overrides {
    Overrides { storage_class: g.storage_class.clone(), connections: g.connections }
}

/// `--repo`/`CLAWBACK_REPO`, else the config's `storage`, else the embedded default.
pub fn resolve(g: &GlobalArgs, s: &Settings) -> Result<Resolved> {
    let flags = overrides(g);
    Ok(location::resolve(g.repo.as_deref(), &Sources { storage: &s.config.storage, env: &s.env, flags: &flags })?)
}

/// A repository named on the command line (`--repo`, `copy --to`), with the config's S3 settings
/// (credentials, endpoint, region, storage class, encryption) and the traffic flags applied.
pub fn location_for(g: &GlobalArgs, s: &Settings, r: &str) -> Result<Location> {
    let flags = overrides(g);
    Ok(location::from_url(r, &Sources { storage: &s.config.storage, env: &s.env, flags: &flags })?)
}

/// Asks `init` to create the bucket when it is missing (`--create-bucket`).
pub fn set_create_bucket(res: &mut Resolved) -> Result<()> {
    match res.location.create_container() {
        true => Ok(()),
        false => Err(usage("--create-bucket is for S3 repositories")),
    }
}

/// The requests a backend made, as a JSON object (`{"get": 3, "put": 4, ...}`).
pub fn requests_json(be: &dyn Backend) -> serde_json::Value {
    be.requests().into_iter().map(|(k, n)| (k.to_string(), serde_json::Value::from(n))).collect()
}

/// The error for a repository whose config cannot be found: a missing bucket says how to make it.
fn not_found(be: &dyn Backend) -> clawback_engine::Error {
    match be.read(&clawback_engine::backend::ObjectName::config()) {
        Err(e) if location::is_missing_container(&e) => clawback_engine::Error::BucketNotFound(e.to_string()),
        _ => clawback_engine::Error::RepoNotFound(be.location()),
    }
}

/// A password file's content without its trailing newlines (`config::password`).
pub fn read_password_file(p: &std::path::Path) -> Result<Secret> {
    Ok(password::read_password_file(p)?)
}

pub fn cache_options(g: &GlobalArgs) -> CacheOptions {
    CacheOptions { dir: g.cache_dir.clone(), disabled: g.no_cache }
}

/// Whether the repository at `be` exists (has a config).
pub fn exists(be: &dyn Backend) -> bool {
    !matches!(be.read(&clawback_engine::backend::ObjectName::config()), Err(ref e) if e.kind() == std::io::ErrorKind::NotFound)
}

impl Ctx {
    /// The context for one run with these flags; `CLAWBACK_FAULTS` (tests only) is read here.
    pub fn new(g: GlobalArgs) -> Ctx {
        let traffic =
            Traffic { connections: g.connections, limit_upload: g.limit_upload, limit_download: g.limit_download };
        Ctx { g, backends: Backends::new(traffic, FaultConfig::from_env()), typed: Mutex::new(Vec::new()) }
    }

    /// Opens the storage at `loc` with its decorators (retries of transient failures, the traffic
    /// flags, and the faults tests ask for), or the one opened before for the same location.
    pub fn backend(&self, loc: &Location) -> Result<Arc<dyn Backend>> {
        Ok(self.backends.open(loc)?)
    }

    /// With `-v`: the requests each repository was sent, by type (S3 counts them).
    pub fn report_requests(&self) {
        if self.g.verbose == 0 {
            return;
        }
        for be in self.backends.opened() {
            let r = be.requests();
            if r.is_empty() {
                continue;
            }
            let total: u64 = r.iter().map(|(_, n)| n).sum();
            let parts: Vec<String> = r.iter().map(|(k, n)| format!("{k} {n}")).collect();
            eprintln!("clawback: {} requests to {}: {}", total, be.location(), parts.join(", "));
        }
    }

    /// The password the flags, environment or config give (see `config::password`), else one
    /// typed at the prompt on a terminal (kept for this run). A new embedded default repository's
    /// password typed at the prompt is kept (0600) where later unattended runs look; with no
    /// terminal, one is generated and kept there.
    pub fn password(&self, s: &Settings, res: &Resolved, new_repo: bool) -> Result<Secret> {
        let g = &self.g;
        let flags = PasswordFlags { file: g.password_file.as_deref(), command: g.password_command.as_deref() };
        let default_file = location::default_password_file(&s.env);
        if let Some(src) = password::given(flags, &s.env, &s.config.encryption, res.is_default, &default_file) {
            return Ok(src.read()?);
        }
        let key = res.location.key();
        if let Some((_, pw)) = self.typed.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == key) {
            return Ok(pw.clone());
        }
        if std::io::stdin().is_terminal() {
            let first =
                if new_repo { "enter a password for the new repository: " } else { "enter repository password: " };
            let p = rpassword::prompt_password(first).context("cannot read the password")?;
            if p.is_empty() {
                return Err(usage("empty password: type a password, or set CLAWBACK_PASSWORD_FILE"));
            }
            if new_repo {
                let again =
                    rpassword::prompt_password("enter the password again: ").context("cannot read the password")?;
                if again != p {
                    return Err(usage(
                        "the passwords do not match; run the command again and type the same password twice",
                    ));
                }
            }
            let pw = Secret(p.into_bytes());
            if new_repo && res.is_default {
                password::keep_default_password(&default_file, &pw)?;
                eprintln!(
                    "clawback: saved the password in {} (readable only by you) so scheduled backups can open the repository; \
                     keep a copy elsewhere: without it the backups cannot be read",
                    default_file.display()
                );
            }
            self.typed.lock().unwrap_or_else(|e| e.into_inner()).push((key, pw.clone()));
            return Ok(pw);
        }
        if res.is_default && new_repo {
            // No password given and no terminal to ask on: a random one, kept in a 0600 file.
            let pw = Secret(password::random_password()?.into_bytes());
            password::keep_default_password(&default_file, &pw)?;
            eprintln!(
                "clawback: generated a password for the default repository in {} (keep a copy elsewhere: without it the backups cannot be read)",
                default_file.display()
            );
            return Ok(pw);
        }
        Err(clawback_engine::Error::NoPassword.into())
    }

    /// Opens the repository named by the flags, environment or config.
    pub fn open_with(&self, s: &Settings) -> Result<Repository> {
        let res = resolve(&self.g, s)?;
        let be = self.backend(&res.location)?;
        if !exists(be.as_ref()) {
            return Err(not_found(be.as_ref()).into());
        }
        let pw = self.password(s, &res, false)?;
        let repo = Repository::open(be, &pw, &cache_options(&self.g))?;
        self.lift_append_only(&repo)?;
        Ok(repo)
    }

    /// With `--maintenance-key-file`, lifts an append-only repository's mode for this run; a key
    /// that is not the repository's is an error, so a typo does not pass for a refusal later.
    pub fn lift_append_only(&self, repo: &Repository) -> Result<()> {
        if let Some(f) = &self.g.maintenance_key_file {
            let key = std::fs::read(f)
                .map_err(|e| anyhow::anyhow!("cannot read the maintenance key file {}: {e}", f.display()))?;
            repo.lift_append_only(&Secret(key))?;
        }
        Ok(())
    }

    /// Creates the repository at the resolved location with `opts`.
    pub fn create(&self, s: &Settings, res: &Resolved, opts: &clawback_engine::repo::InitOptions) -> Result<()> {
        let pw = self.password(s, res, true)?;
        Repository::init(self.backend(&res.location)?, &pw, opts)?;
        Ok(())
    }

    /// Opens the repository, first creating it when it is the embedded default and does not exist
    /// yet (what `backup` and `import` do on first use). The index is not loaded: both take their
    /// backup lease and then load it with `refresh_index` (one listing of index files, after the
    /// lease).
    pub fn open_or_create_default(&self, s: &Settings) -> Result<(Repository, Resolved)> {
        self.open_or_create_default_then(s, |_, _| {})
    }

    /// [`Ctx::open_or_create_default`], calling `before_unlock` with the backend once the
    /// repository exists, before its key is derived from the password (which takes a while).
    pub fn open_or_create_default_then(
        &self,
        s: &Settings,
        before_unlock: impl FnOnce(&Arc<dyn Backend>, &Resolved),
    ) -> Result<(Repository, Resolved)> {
        let g = &self.g;
        let res = resolve(g, s)?;
        let be = self.backend(&res.location)?;
        if !exists(be.as_ref()) {
            if !res.is_default {
                return Err(not_found(be.as_ref()).into());
            }
            self.create(s, &res, &clawback_engine::repo::InitOptions::default())?;
            if !g.quiet {
                eprintln!("clawback: created the default repository at {}", be.location());
            }
        }
        before_unlock(&be, &res);
        let pw = self.password(s, &res, false)?;
        let repo = Repository::open_unloaded(be, &pw, &cache_options(g))?;
        self.lift_append_only(&repo)?;
        Ok((repo, res))
    }

    /// Loads the settings and opens the repository.
    pub fn open(&self) -> Result<Repository> {
        self.open_with(&Settings::load(&self.g)?)
    }
}

/// Sets this process's environment as `openclaw --profile NAME` sets its own
/// (`OPENCLAW_PROFILE`, `OPENCLAW_STATE_DIR`, `OPENCLAW_CONFIG_PATH`). Must run before any thread
/// starts (it calls `std::env::set_var`).
pub fn apply_profile(name: &str) -> Result<()> {
    let changes = openclaw::profile::profile_changes(&Env::from_process(), name).map_err(|e| usage(e.to_string()))?;
    for (k, v) in changes {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
    Ok(())
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
