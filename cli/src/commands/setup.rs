//! `clawback setup`: first-time set-up, and safe to run again. Asks (on a terminal, again after an
//! invalid answer) or takes from flags where backups go, how the repository password is kept, the
//! schedule and the retention; writes clawback's config file (`--config`, else `CLAWBACK_CONFIG`,
//! else `<state dir>/clawback.json`) with `${VAR}` references and a 0600 password file, never a
//! literal secret, and the variables a scheduled run needs into the environment file; then runs
//! `init` (unless the repository exists; a missing bucket is offered for creation), installs the
//! schedule if asked, runs the same checks as `clawback test` and offers a first backup.
//!
//! Nothing it does locks a user out: on an existing repository it first proves that the password
//! it holds or is given opens it, asks for the right one (or stops with exit 11) when none does,
//! and never writes over a password file. Every question is a flag; with `--yes`, or without a
//! terminal, nothing is asked and defaults fill the gaps. `--migrate-config` does only one thing:
//! move a `backup` section out of openclaw.json into clawback's file (`commands::migrate`).

use crate::context;
use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::config::Schedule;
use clawback_engine::openclaw::Env;
use clawback_engine::repo::{CacheOptions, Repository, Secret};
use serde_json::{json, Map, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    Local,
    R2,
    S3,
    B2,
    Minio,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installer {
    Systemd,
    Cron,
    Openclaw,
    None,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where backups go: a local folder or disk, Cloudflare R2, AWS S3, Backblaze B2, MinIO
    #[arg(long, value_enum)]
    pub storage: Option<Storage>,
    /// local: the repository folder
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// S3-compatible: the endpoint URL (R2: https://<account id>.r2.cloudflarestorage.com)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3-compatible: the bucket
    #[arg(long)]
    pub bucket: Option<String>,
    /// S3-compatible: a folder inside the bucket
    #[arg(long)]
    pub prefix: Option<String>,
    /// S3-compatible: the region
    #[arg(long)]
    pub region: Option<String>,
    /// The environment variable holding the access key id (referenced as ${VAR})
    #[arg(long, value_name = "VAR")]
    pub access_key_env: Option<String>,
    /// The environment variable holding the secret access key (referenced as ${VAR})
    #[arg(long, value_name = "VAR")]
    pub secret_key_env: Option<String>,
    /// Make a random passphrase and keep it in a 0600 file (--password-file, default
    /// ~/.config/clawback/password)
    #[arg(long)]
    pub generate_password: bool,
    /// Take the passphrase from this environment variable (referenced as ${VAR})
    #[arg(long, value_name = "VAR", conflicts_with = "generate_password")]
    pub password_env: Option<String>,
    /// How often to back up: "2h", "1d" or a cron expression
    #[arg(long)]
    pub schedule: Option<String>,
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Register the schedule with systemd, cron or OpenClaw's scheduler (default: none)
    #[arg(long, value_enum)]
    pub install_schedule: Option<Installer>,
    /// Ask nothing: flags and defaults only
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Replace an existing config file (kept as <file>.bak-<time>); a password file is never
    /// replaced
    #[arg(long)]
    pub force: bool,
    /// Do not run `init` and `test` after writing the config
    #[arg(long)]
    pub no_test: bool,
    /// S3: create the bucket when it does not exist (asked on a terminal)
    #[arg(long)]
    pub create_bucket: bool,
    /// Run a first backup once the checks pass (asked on a terminal; with --yes only with this)
    #[arg(long)]
    pub backup_now: bool,
    /// Only move a `backup` section out of openclaw.json (which OpenClaw 2026.9 rejects) into
    /// clawback's own file, after a copy of openclaw.json; nothing else is set up
    #[arg(long, conflicts_with_all = [
        "storage", "path", "endpoint", "bucket", "prefix", "region", "access_key_env", "secret_key_env",
        "generate_password", "password_env", "schedule", "keep_last", "keep_hourly", "keep_daily", "keep_weekly",
        "keep_monthly", "keep_yearly", "install_schedule", "force", "no_test", "create_bucket", "backup_now",
    ])]
    pub migrate_config: bool,
}

/// Questions on the terminal, or none.
struct Asker {
    tty: bool,
}

impl Asker {
    /// Asks with a default; Enter takes the default. Without a terminal, the default.
    fn ask(&self, q: &str, default: &str) -> Result<String> {
        if !self.tty {
            return Ok(default.to_string());
        }
        if default.is_empty() {
            eprint!("{q}: ");
        } else {
            eprint!("{q} [{default}]: ");
        }
        std::io::stderr().flush()?;
        let mut l = String::new();
        if std::io::stdin().lock().read_line(&mut l)? == 0 {
            return Err(usage("setup cancelled (end of input)"));
        }
        let l = l.trim();
        Ok(if l.is_empty() { default.to_string() } else { l.to_string() })
    }

    /// Asks until `check` accepts the answer, saying why each rejected one is wrong; without a
    /// terminal the default must pass (else a usage error naming `flag`).
    fn ask_valid<T>(
        &self,
        q: &str,
        default: &str,
        flag: &str,
        check: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<T> {
        if !self.tty {
            return check(default).map_err(|e| usage(format!("{flag}: {e}")));
        }
        loop {
            let a = self.ask(q, default)?;
            match check(&a) {
                Ok(v) => return Ok(v),
                Err(e) => eprintln!("{e}; try again"),
            }
        }
    }

    /// A yes/no question; Enter takes `default`. Without a terminal, `default`.
    fn confirm(&self, q: &str, default: bool) -> Result<bool> {
        if !self.tty {
            return Ok(default);
        }
        loop {
            let a = self.ask(q, if default { "Y/n" } else { "y/N" })?;
            match a.to_ascii_lowercase().as_str() {
                "y/n" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("please answer y or n"),
            }
        }
    }

    /// A choice among `options` (by number or name).
    fn choose(&self, q: &str, options: &[(&str, &str)], default: usize) -> Result<usize> {
        if !self.tty {
            return Ok(default);
        }
        eprintln!("{q}");
        for (i, (name, what)) in options.iter().enumerate() {
            eprintln!("  {}) {name}: {what}", i + 1);
        }
        loop {
            let a = self.ask("choose", &(default + 1).to_string())?;
            if let Ok(n) = a.parse::<usize>() {
                if (1..=options.len()).contains(&n) {
                    return Ok(n - 1);
                }
            }
            if let Some(i) = options.iter().position(|(n, _)| n.eq_ignore_ascii_case(&a)) {
                return Ok(i);
            }
            eprintln!("please answer 1 to {}", options.len());
        }
    }
}

/// Where the config goes: `--config`, else `CLAWBACK_CONFIG`, else `<state dir>/clawback.json`.
fn config_path(g: &GlobalArgs, env: &Env) -> PathBuf {
    if let Some(p) = &g.config {
        return p.clone();
    }
    if let Some(p) = env.get("CLAWBACK_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    clawback_engine::openclaw::paths::state_dir(env).join("clawback.json")
}

fn default_password_file() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| clawback_engine::repo::home_dir().join(".config"))
        .join("clawback")
        .join("password")
}

/// An absolute, clean path (`~` expanded): the config resolves relative paths against its own
/// folder, so everything written into it is absolute.
fn absolute(p: &Path) -> Result<PathBuf> {
    let env = Env::from_process();
    Ok(clawback_engine::repo::host::absolute_clean(&env.expand(&p.to_string_lossy()))?)
}

fn check_var(v: &str) -> std::result::Result<String, String> {
    let v = v.trim();
    let ok = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(format!(
            "{v:?} is not an environment variable name (upper-case letters, digits and _, as ${{VAR}} references need)"
        ));
    }
    Ok(v.to_string())
}

fn valid_var(v: &str) -> Result<String> {
    check_var(v).map_err(usage)
}

fn check_endpoint(e: &str) -> std::result::Result<String, String> {
    let e = e.trim().trim_end_matches('/');
    if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 10 {
        return Err(format!("{e:?}: the endpoint is a URL starting with http:// or https://"));
    }
    Ok(e.to_string())
}

fn check_bucket(b: &str) -> std::result::Result<String, String> {
    let b = b.trim();
    let ok = (3..=63).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.' || c == b'_');
    if !ok {
        return Err(format!("{b:?} is not a bucket name (3-63 lower-case letters, digits, - and .)"));
    }
    Ok(b.to_string())
}

fn check_schedule(s: &str) -> std::result::Result<String, String> {
    Schedule::parse(s.trim()).map(|_| s.trim().to_string()).map_err(|e| format!("schedule {s:?}: {e}"))
}

fn check_path(p: &str) -> std::result::Result<PathBuf, String> {
    if p.trim().is_empty() {
        return Err("give a folder".into());
    }
    absolute(Path::new(p.trim())).map_err(|e| format!("{p:?}: {e}"))
}

/// Writes `data` to a new 0600 file (creating its folder 0700).
fn write_private(p: &Path, data: &[u8], overwrite: bool) -> Result<()> {
    if let Some(dir) = p.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(0o600);
    if overwrite {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(p).with_context(|| format!("cannot create {}", p.display()))?;
    f.write_all(data).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;

/// What is at the repository location before setup writes anything.
enum Found {
    Repository,
    Nothing,
    NoBucket,
    Unreachable(String),
}

fn look(be: &dyn clawback_engine::backend::Backend) -> Found {
    match be.read(clawback_engine::backend::Kind::Config, "config") {
        Ok(_) => Found::Repository,
        Err(e) if clawback_engine::backend::s3::is_missing_bucket(&e) => Found::NoBucket,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Nothing,
        Err(e) => Found::Unreachable(e.to_string()),
    }
}

/// The storage answers as settings (`${VAR}` references resolved from this shell), to look at the
/// repository before anything is written.
fn settings_for(storage: &Value) -> Result<context::Settings> {
    let env = Env::from_process();
    let mut unresolved = Vec::new();
    let v = clawback_engine::openclaw::vars::substitute(storage, &env, &mut unresolved);
    let storage: clawback_engine::config::StorageConfig =
        serde_json::from_value(v).context("the storage answers do not make a storage setting")?;
    let config = clawback_engine::config::BackupConfig { storage, ..Default::default() };
    Ok(context::Settings { env, config })
}

/// A password that can be tried on the repository, and how the config refers to it.
struct Candidate {
    what: String,
    secret: Secret,
    encryption: Value,
}

fn read_secret(p: &Path) -> Option<Secret> {
    context::read_password_file(p).ok()
}

/// Every password this setup holds or was given, in order: the flags, CLAWBACK_PASSWORD(_FILE),
/// the config being replaced, the default password file.
fn candidates(g: &GlobalArgs, a: &Args, old_config: &Path, env: &Env) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(v) = &a.password_env {
        if let Some(p) = std::env::var(v).ok().filter(|p| !p.is_empty()) {
            out.push(Candidate {
                what: format!("${v}"),
                secret: Secret(p.into_bytes()),
                encryption: json!({ "passphrase": format!("${{{v}}}") }),
            });
        }
    }
    if let Some(f) = &g.password_file {
        if let (Some(s), Ok(abs)) = (read_secret(f), absolute(f)) {
            out.push(Candidate { what: abs.display().to_string(), secret: s, encryption: json!({ "keyFile": abs }) });
        }
    }
    if let Some(p) = std::env::var("CLAWBACK_PASSWORD").ok().filter(|p| !p.is_empty()) {
        out.push(Candidate {
            what: "$CLAWBACK_PASSWORD".into(),
            secret: Secret(p.into_bytes()),
            encryption: json!({ "passphrase": "${CLAWBACK_PASSWORD}" }),
        });
    }
    if let Some(f) = std::env::var_os("CLAWBACK_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        let f = PathBuf::from(f);
        if let (Some(s), Ok(abs)) = (read_secret(&f), absolute(&f)) {
            out.push(Candidate { what: abs.display().to_string(), secret: s, encryption: json!({ "keyFile": abs }) });
        }
    }
    // The config being replaced: its encryption section as written (references kept), tried with
    // the values it resolves to.
    if old_config.is_file() {
        if let (Ok(l), Ok(raw)) = (
            clawback_engine::config::load(env, Some(old_config)),
            clawback_engine::openclaw::include::load_with_includes(old_config, env),
        ) {
            let raw_enc = raw.value.get("backup").unwrap_or(&raw.value).get("encryption").cloned();
            let enc = &l.config.encryption;
            let secret = if let Some(p) = enc.passphrase.as_ref().filter(|p| !p.is_empty()) {
                Some(Secret(p.expose().as_bytes().to_vec()))
            } else if let Some(f) = &enc.key_file {
                read_secret(f)
            } else if let Some(c) = enc.password_command.as_deref().filter(|c| !c.is_empty()) {
                context::password_from_command(c).ok()
            } else {
                None
            };
            if let (Some(secret), Some(raw_enc)) = (secret, raw_enc) {
                let mut e = raw_enc;
                if let (Some(f), Some(o)) = (&enc.key_file, e.as_object_mut()) {
                    o.insert("keyFile".into(), json!(f));
                }
                out.push(Candidate {
                    what: format!("the encryption settings of {}", old_config.display()),
                    secret,
                    encryption: e,
                });
            }
        }
    }
    for f in [default_password_file(), context::default_password_file()] {
        if let Some(s) = read_secret(&f) {
            out.push(Candidate { what: f.display().to_string(), secret: s, encryption: json!({ "keyFile": f }) });
        }
    }
    out
}

fn opens(be: &Arc<dyn clawback_engine::backend::Backend>, pw: &Secret) -> Result<bool> {
    match Repository::open_unloaded(be.clone(), pw, &CacheOptions { dir: None, disabled: true }) {
        Ok(_) => Ok(true),
        Err(clawback_engine::Error::WrongPassword) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A password file name that does not exist yet, next to the default one.
fn free_password_file() -> PathBuf {
    let base = default_password_file();
    if !base.exists() {
        return base;
    }
    (2..).map(|n| base.with_file_name(format!("password-{n}"))).find(|p| !p.exists()).unwrap()
}

/// The encryption settings for an existing repository: a password this setup holds or was given
/// that opens it, else one typed on the terminal (kept in a new 0600 file), else exit 11.
fn prove_existing(
    g: &GlobalArgs,
    a: &Args,
    asker: &Asker,
    be: &Arc<dyn clawback_engine::backend::Backend>,
    old_config: &Path,
    env: &Env,
) -> Result<(Value, String)> {
    let loc = be.location();
    let tried = candidates(g, a, old_config, env);
    for c in &tried {
        if opens(be, &c.secret)? {
            return Ok((c.encryption.clone(), format!("the password from {} opens it", c.what)));
        }
    }
    let names: Vec<&str> = tried.iter().map(|c| c.what.as_str()).collect();
    let none = if names.is_empty() {
        "no password was given".to_string()
    } else {
        format!("{} did not open it", names.join(", "))
    };
    if !asker.tty {
        return Err(anyhow::Error::new(clawback_engine::Error::WrongPassword).context(format!(
            "the repository at {loc} exists and {none}: run setup again with --password-file FILE (or --password-env VAR) \
             holding its password, or on a terminal to be asked; setup never replaces it (a new one is added with `clawback key add`)"
        )));
    }
    eprintln!("The repository at {loc} exists; {none}.");
    for attempt in 1..=5 {
        let p =
            rpassword::prompt_password("Password of the existing repository: ").context("cannot read the password")?;
        if p.is_empty() {
            continue;
        }
        let secret = Secret(p.into_bytes());
        if opens(be, &secret)? {
            let f = asker.ask_valid(
                "Keep it in which file (0600)",
                &free_password_file().to_string_lossy(),
                "--password-file",
                |s| {
                    let f = check_path(s)?;
                    if f.exists() {
                        return Err(format!("{} exists and is never overwritten; give a new file", f.display()));
                    }
                    Ok(f)
                },
            )?;
            write_private(&f, &secret.0, false)?;
            return Ok((
                json!({ "keyFile": f }),
                format!("the password typed opens it; kept in {} (0600)", f.display()),
            ));
        }
        eprintln!("that password does not open {loc} ({attempt} of 5)");
    }
    Err(anyhow::Error::new(clawback_engine::Error::WrongPassword)
        .context(format!("no password typed opens the repository at {loc}; nothing was written")))
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    if a.migrate_config {
        return crate::commands::migrate::run(g);
    }
    let env = Env::from_process();
    let asker = Asker { tty: !a.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() };
    let say = |m: String| {
        if !g.quiet && !g.json {
            println!("{m}");
        }
    };
    let path = absolute(&config_path(g, &env))?;
    if path.exists() && !a.force {
        return Err(usage(format!(
            "{} exists; `clawback setup --force` replaces it (or edit it by hand)",
            path.display()
        )));
    }
    if asker.tty {
        eprintln!("clawback setup: writes {}; Enter takes the [default].", path.display());
    }
    let mut cfg = Map::new();

    // Storage.
    let storage = match a.storage {
        Some(s) => s,
        None => {
            let opts = [
                ("local", "a folder or a mounted disk"),
                ("r2", "Cloudflare R2"),
                ("s3", "AWS S3"),
                ("b2", "Backblaze B2 (S3 API)"),
                ("minio", "MinIO or another S3-compatible server"),
            ];
            [Storage::Local, Storage::R2, Storage::S3, Storage::B2, Storage::Minio]
                [asker.choose("Where should backups go?", &opts, 0)?]
        }
    };
    let mut key_vars: Vec<String> = Vec::new();
    let storage_json = if storage == Storage::Local {
        let p = match &a.path {
            Some(p) => check_path(&p.to_string_lossy()).map_err(|e| usage(format!("--path {e}")))?,
            None => asker.ask_valid(
                "Repository folder",
                &context::default_repo_path().to_string_lossy(),
                "--path",
                check_path,
            )?,
        };
        json!({ "provider": "local", "path": p })
    } else {
        let (endpoint_default, region_default): (&str, &str) = match storage {
            Storage::R2 => ("", "auto"),
            Storage::S3 => ("", "us-east-1"),
            Storage::B2 => ("", "us-west-004"),
            _ => ("http://localhost:9000", "us-east-1"),
        };
        let region = match &a.region {
            Some(r) => r.clone(),
            None => asker.ask("Region", region_default)?,
        };
        let endpoint = match (&a.endpoint, storage) {
            (Some(e), _) => Some(check_endpoint(e).map_err(|e| usage(format!("--endpoint {e}")))?),
            (None, Storage::S3) => None,
            (None, Storage::R2) => {
                let id = asker.ask_valid("Cloudflare account id (from the R2 page)", "", "--endpoint", |s| {
                    let s = s.trim();
                    if s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit()) {
                        Ok(s.to_string())
                    } else {
                        Err(format!("{s:?} is not an account id (32 hex digits on the R2 page)"))
                    }
                })?;
                Some(format!("https://{id}.r2.cloudflarestorage.com"))
            }
            (None, Storage::B2) => Some(asker.ask_valid(
                "Endpoint",
                &format!("https://s3.{region}.backblazeb2.com"),
                "--endpoint",
                check_endpoint,
            )?),
            (None, _) => Some(asker.ask_valid("Endpoint", endpoint_default, "--endpoint", check_endpoint)?),
        };
        let bucket = match &a.bucket {
            Some(b) => check_bucket(b).map_err(|e| usage(format!("--bucket {e}")))?,
            None if asker.tty => asker.ask_valid("Bucket", "", "--bucket", check_bucket)?,
            None => return Err(usage("--bucket is needed (or run setup on a terminal to be asked)")),
        };
        let prefix = match &a.prefix {
            Some(p) => p.clone(),
            None => asker.ask("Folder inside the bucket (empty: none)", "clawback")?,
        };
        let akv = match &a.access_key_env {
            Some(v) => valid_var(v)?,
            None => asker.ask_valid(
                "Environment variable holding the access key id",
                "AWS_ACCESS_KEY_ID",
                "--access-key-env",
                check_var,
            )?,
        };
        let skv = match &a.secret_key_env {
            Some(v) => valid_var(v)?,
            None => asker.ask_valid(
                "Environment variable holding the secret access key",
                "AWS_SECRET_ACCESS_KEY",
                "--secret-key-env",
                check_var,
            )?,
        };
        let mut s = json!({
            "provider": "s3",
            "bucket": bucket,
            "region": region,
            "accessKeyId": format!("${{{akv}}}"),
            "secretAccessKey": format!("${{{skv}}}"),
        });
        if let Some(e) = endpoint {
            s["endpoint"] = json!(e);
        }
        if !prefix.trim_matches('/').is_empty() {
            s["prefix"] = json!(prefix.trim_matches('/'));
        }
        for v in [&akv, &skv] {
            if std::env::var_os(v).is_none() && !g.quiet {
                eprintln!(
                    "clawback: note: {v} is not set here; set it in this shell and run setup again, or add it to {} \
                     (scheduled runs read it there)",
                    crate::envfile::display(&crate::envfile::path_for(g.config.as_deref()))
                );
            }
        }
        key_vars = vec![akv, skv];
        s
    };

    // What is there already, before any password is chosen: an existing repository keeps its
    // password. (S3 with --no-test is not looked at: no network without the checks.)
    let probe_settings = settings_for(&storage_json)?;
    let res = context::resolve(&GlobalArgs { repo: None, ..g.clone() }, &probe_settings)?;
    let be = context::backend(&res.location)?;
    let loc = be.location();
    let found = if a.no_test && storage != Storage::Local { Found::Nothing } else { look(be.as_ref()) };
    let mut create_bucket = false;
    match &found {
        Found::Unreachable(e) => {
            let unset: Vec<&String> = key_vars.iter().filter(|v| std::env::var_os(v).is_none()).collect();
            let hint = if unset.is_empty() {
                String::new()
            } else {
                format!(" ({} not set in this shell)", unset.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
            };
            return Err(clawback_engine::Error::Other(format!(
                "cannot look at {loc}{hint}: {e}; nothing was written: fix it and run setup again (or add --no-test to \
                 write the config without looking)"
            ))
            .into());
        }
        Found::NoBucket => {
            create_bucket =
                a.create_bucket || asker.confirm(&format!("The bucket of {loc} does not exist. Create it?"), false)?;
            if !create_bucket && !a.no_test {
                return Err(clawback_engine::Error::BucketNotFound(format!(
                    "the bucket of {loc} does not exist; nothing was written: add --create-bucket to create it, or \
                     create it in the provider's console"
                ))
                .into());
            }
        }
        Found::Repository | Found::Nothing => {}
    }
    let existing = matches!(found, Found::Repository);
    cfg.insert("storage".into(), storage_json);

    // Passphrase.
    let mut password_note = None;
    let mut to_write: Option<(PathBuf, Vec<u8>)> = None;
    let encryption = if existing {
        if a.generate_password {
            return Err(usage(format!(
                "the repository at {loc} exists; a generated password would not open it: run setup without \
                 --generate-password (with --password-file FILE or --password-env VAR holding its password), and add \
                 a new password with `clawback key add` once in"
            )));
        }
        let (enc, how) = prove_existing(g, a, &asker, &be, &path, &env)?;
        say(format!("the repository at {loc} exists: {how}; using it"));
        enc
    } else if let Some(v) = &a.password_env {
        json!({ "passphrase": format!("${{{}}}", valid_var(v)?) })
    } else if std::env::var("CLAWBACK_PASSWORD").is_ok_and(|p| !p.is_empty()) {
        // Every command takes CLAWBACK_PASSWORD before the config's password: a new password
        // beside it would not be the one the repository is made or opened with.
        if a.generate_password || g.password_file.is_some() {
            return Err(usage(format!(
                "CLAWBACK_PASSWORD is set (in this shell or {}) and every command takes it before the config's \
                 password: use it (--password-env CLAWBACK_PASSWORD, or leave out --generate-password and \
                 --password-file), or unset it and remove it from that file first",
                crate::envfile::display(&crate::envfile::path_for(g.config.as_deref()))
            )));
        }
        say("the new repository's password is CLAWBACK_PASSWORD (set here or in the environment file)".into());
        json!({ "passphrase": "${CLAWBACK_PASSWORD}" })
    } else if a.generate_password || (g.password_file.is_none() && !asker.tty) {
        let f = absolute(&g.password_file.clone().unwrap_or_else(default_password_file))?;
        to_write = Some((f.clone(), random_password()?.into_bytes()));
        password_note = Some(f.clone());
        json!({ "keyFile": f })
    } else if let Some(f) = &g.password_file {
        if !f.is_file() {
            return Err(usage(format!(
                "password file {} does not exist (add --generate-password to create it)",
                f.display()
            )));
        }
        json!({ "keyFile": clawback_engine::repo::host::absolute_clean(f)? })
    } else {
        let opts = [
            ("generate", "a random passphrase kept in a 0600 file (recommended; keep a copy elsewhere)"),
            ("type", "a passphrase you type, kept in a 0600 file"),
            ("env", "from an environment variable, referenced as ${VAR}"),
            ("file", "an existing key/password file"),
        ];
        match asker.choose("How should the repository passphrase be kept?", &opts, 0)? {
            c @ (0 | 1) => {
                let f = asker.ask_valid(
                    "Passphrase file",
                    &default_password_file().to_string_lossy(),
                    "--password-file",
                    check_path,
                )?;
                // Generated now; a typed one is asked for last (empty data).
                let data = if c == 0 { random_password()?.into_bytes() } else { Vec::new() };
                to_write = Some((f.clone(), data));
                password_note = Some(f.clone());
                json!({ "keyFile": f })
            }
            2 => {
                let v = asker.ask_valid("Environment variable", "CLAWBACK_PASSWORD", "--password-env", check_var)?;
                json!({ "passphrase": format!("${{{v}}}") })
            }
            _ => {
                let f = asker.ask_valid("Key/password file", "", "--password-file", |s| {
                    let f = check_path(s)?;
                    if f.is_file() {
                        Ok(f)
                    } else {
                        Err(format!("{} does not exist", f.display()))
                    }
                })?;
                json!({ "keyFile": f })
            }
        }
    };
    cfg.insert("encryption".into(), encryption);

    // Schedule.
    let schedule = match &a.schedule {
        Some(s) => check_schedule(s).map_err(usage)?,
        None => asker.ask_valid(
            "How often to back up (\"2h\", \"1d\" or a cron expression)",
            "2h",
            "--schedule",
            check_schedule,
        )?,
    };
    cfg.insert("schedule".into(), json!(schedule));

    // Retention.
    cfg.insert("retention".into(), retention(a, &asker)?);

    // The passphrase file, once every answer is in (a typed one is asked last of all). An
    // existing file is never written over: it may be the only key to another repository.
    if let Some((f, mut data)) = to_write {
        if f.exists() {
            if read_secret(&f).is_none() {
                return Err(usage(format!(
                    "{} exists but holds no password; remove it or give another --password-file",
                    f.display()
                )));
            }
            say(format!(
                "{} exists; it is kept and used as this repository's password (never overwritten)",
                f.display()
            ));
            password_note = None;
        } else {
            if data.is_empty() {
                data = typed_or_generated(&asker)?.into_bytes();
            }
            write_private(&f, &data, false)?;
        }
    }

    // The config; one it replaces is kept beside it.
    if path.exists() {
        let kept = path.with_file_name(format!(
            "{}.bak-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("clawback.json"),
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::copy(&path, &kept).with_context(|| format!("cannot keep a copy of {}", path.display()))?;
        say(format!("kept the previous config as {}", kept.display()));
    }
    let text = serde_json::to_string_pretty(&Value::Object(cfg))? + "\n";
    write_private(&path, text.as_bytes(), true)?;
    say(format!("wrote {}", path.display()));
    if let Some(f) = &password_note {
        say(format!(
            "passphrase kept in {} (0600): keep a copy somewhere else, without it the backups cannot be read",
            f.display()
        ));
    }
    // What a scheduled run needs from this shell (the ${VAR}s just written, PATH).
    let env_file = crate::envfile::path_for(Some(&path));
    crate::envfile::write_needed(&env_file, &crate::envfile::needed(Some(&text), false, false), g.quiet)?;
    if a.no_test {
        return Ok(0);
    }

    // init (unless it exists), the schedule, then the same checks as `clawback test`.
    if !existing {
        let mut args = vec!["init"];
        if create_bucket {
            args.push("--create-bucket");
        }
        let code = sub(g, &path, a, &args, false)?.0;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "`clawback init` failed (exit {code}); the config is in {}: fix it and run `clawback init`",
                path.display()
            ))
            .into());
        }
    }
    let installer = match a.install_schedule {
        Some(i) => i,
        None => {
            let opts = [
                ("none", "not now (`clawback schedule install` later)"),
                ("systemd", "a systemd user timer"),
                ("cron", "a crontab line"),
                ("openclaw", "OpenClaw's own scheduler"),
            ];
            [Installer::None, Installer::Systemd, Installer::Cron, Installer::Openclaw]
                [asker.choose("Install the schedule now?", &opts, 0)?]
        }
    };
    let flag = match installer {
        Installer::None => None,
        Installer::Systemd => Some("--systemd"),
        Installer::Cron => Some("--cron"),
        Installer::Openclaw => Some("--openclaw"),
    };
    if let Some(flag) = flag {
        let code = sub(g, &path, a, &["schedule", "install", flag], false)?.0;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "`clawback schedule install {flag}` failed (exit {code}); run it again once fixed"
            ))
            .into());
        }
    }
    // The checks exactly as `clawback test` makes them, the schedule's included.
    let (_, out) = sub(g, &path, a, &["test", "--json"], true)?;
    let checks: Value = serde_json::from_str(&out).context("`clawback test --json` printed no checks")?;
    if g.json {
        crate::ui::print_json(&checks);
    } else {
        crate::commands::test::render(&checks);
    }
    let failed: Vec<&str> = checks
        .as_array()
        .map(|l| l.iter().filter(|c| c["ok"] != true).filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    if failed.iter().any(|n| *n != "schedule") || (!failed.is_empty() && flag.is_some()) {
        return Err(clawback_engine::Error::Other(format!(
            "setup wrote {} but the checks found problems ({}); fix them and run `clawback test`",
            path.display(),
            failed.join(", ")
        ))
        .into());
    }
    if flag.is_none() {
        say("the schedule is not installed, so no backup runs by itself yet: `clawback schedule install --systemd` (or --cron, --openclaw)".into());
    }

    // A first backup, if wanted.
    let backup_now =
        a.backup_now || (asker.tty && asker.confirm("Run a first backup now (`clawback backup`)?", true)?);
    if backup_now {
        let code = sub(g, &path, a, &["backup"], false)?.0;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "the first backup failed (exit {code}); the set-up itself is done: fix the error above and run `clawback backup`"
            ))
            .into());
        }
    } else {
        say("start a first backup with `clawback backup`".into());
    }
    Ok(0)
}

/// The retention policy: from the flags, else asked, else the default (24 hourly, 7 daily,
/// 4 weekly, 12 monthly).
fn retention(a: &Args, asker: &Asker) -> Result<Value> {
    let given = [
        ("keepLast", a.keep_last),
        ("keepHourly", a.keep_hourly),
        ("keepDaily", a.keep_daily),
        ("keepWeekly", a.keep_weekly),
        ("keepMonthly", a.keep_monthly),
        ("keepYearly", a.keep_yearly),
    ];
    let mut m = Map::new();
    for (k, v) in given {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if !m.is_empty() {
        return Ok(Value::Object(m));
    }
    let default = "hourly=24 daily=7 weekly=4 monthly=12";
    loop {
        let answer = asker.ask("Snapshots to keep (last= hourly= daily= weekly= monthly= yearly=)", default)?;
        match parse_keep(&answer) {
            Ok(v) => return Ok(v),
            Err(e) if asker.tty => eprintln!("{e}"),
            Err(e) => return Err(usage(e)),
        }
    }
}

fn parse_keep(s: &str) -> std::result::Result<Value, String> {
    let mut m = Map::new();
    for tok in s.split([' ', ',']).filter(|t| !t.is_empty()) {
        let (k, v) = tok.split_once('=').ok_or(format!("{tok:?}: write it as name=N, like daily=7"))?;
        let key = match k.trim().to_ascii_lowercase().as_str() {
            "last" => "keepLast",
            "hourly" => "keepHourly",
            "daily" => "keepDaily",
            "weekly" => "keepWeekly",
            "monthly" => "keepMonthly",
            "yearly" => "keepYearly",
            _ => return Err(format!("{k:?}: use last, hourly, daily, weekly, monthly or yearly")),
        };
        let n: u32 = v.trim().parse().map_err(|_| format!("{v:?} is not a whole number"))?;
        m.insert(key.into(), json!(n));
    }
    if m.is_empty() {
        return Err("keep at least one snapshot, e.g. last=10".into());
    }
    Ok(Value::Object(m))
}

fn random_password() -> Result<String> {
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut b))
        .context("cannot read /dev/urandom")?;
    Ok(hex::encode(b))
}

/// A passphrase typed twice (empty: generate one).
fn typed_or_generated(asker: &Asker) -> Result<String> {
    if !asker.tty {
        return random_password();
    }
    loop {
        let p = rpassword::prompt_password("Passphrase (empty: generate a random one): ")
            .context("cannot read the passphrase")?;
        if p.is_empty() {
            return random_password();
        }
        let again = rpassword::prompt_password("Passphrase again: ").context("cannot read the passphrase")?;
        if again == p {
            return Ok(p);
        }
        eprintln!("the passphrases do not match; again");
    }
}

/// Runs this binary with the new config: `clawback --config PATH ARGS...`. The password and
/// repository come from the config alone (the environment's CLAWBACK_REPO and password variables
/// are removed unless the config refers to them). With `capture`, its stdout is returned;
/// otherwise it is shown (on stderr under `--json`, where setup's own stdout is JSON).
fn sub(g: &GlobalArgs, config: &Path, a: &Args, args: &[&str], capture: bool) -> Result<(i32, String)> {
    let exe = std::env::current_exe().context("cannot find the clawback binary")?;
    let mut c = Command::new(exe);
    c.arg("--config").arg(config);
    if let Some(d) = &g.cache_dir {
        c.arg("--cache-dir").arg(d);
    }
    if g.no_cache {
        c.arg("--no-cache");
    }
    if g.quiet {
        c.arg("--quiet");
    }
    c.args(args);
    c.env_remove("CLAWBACK_REPO").env_remove("CLAWBACK_PASSWORD_FILE").env_remove("CLAWBACK_CONFIG");
    if a.password_env.as_deref() != Some("CLAWBACK_PASSWORD")
        && !std::fs::read_to_string(config).is_ok_and(|t| t.contains("${CLAWBACK_PASSWORD}"))
    {
        // Set empty, not removed: the child would take it from the environment file again.
        c.env("CLAWBACK_PASSWORD", "");
    }
    if capture {
        let out = c
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run clawback {}", args.join(" ")))?;
        return Ok((out.status.code().unwrap_or(1), String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    if g.json {
        c.stdout(std::process::Stdio::from(std::io::stderr().lock().try_clone_fd()?));
    }
    let st = c.status().with_context(|| format!("cannot run clawback {}", args.join(" ")))?;
    Ok((st.code().unwrap_or(1), String::new()))
}

trait CloneFd {
    fn try_clone_fd(&self) -> Result<std::os::fd::OwnedFd>;
}
impl<T: std::os::fd::AsFd> CloneFd for T {
    fn try_clone_fd(&self) -> Result<std::os::fd::OwnedFd> {
        Ok(self.as_fd().try_clone_to_owned()?)
    }
}
