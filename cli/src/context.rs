//! Resolving what every command needs: the configuration (clawback's file and the `backup` section
//! of openclaw.json), where the repository is, the password and the cache; then opening the
//! repository. Flags beat environment variables, which beat files.

use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::backend::fault::{Fault, FaultConfig};
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::retry::{Retry, RetryPolicy};
use clawback_engine::backend::s3::{self, ObjectLock, S3Backend, S3Options, Sse};
use clawback_engine::backend::throttle::Throttle;
use clawback_engine::backend::Backend;
use clawback_engine::config::{BackupConfig, Loaded, Provider, StorageConfig};
use clawback_engine::openclaw::{self, Env};
use clawback_engine::repo::{CacheOptions, Repository, Secret};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub enum Location {
    Local(PathBuf),
    S3(Box<S3Options>),
}

impl Location {
    /// The folder of a local repository (what a backup must never read as data).
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3(_) => None,
        }
    }
}

/// The traffic flags (`--connections`, `--limit-upload`, `--limit-download`), for every backend
/// this process opens; set when the settings are loaded.
#[derive(Clone, Copy, Debug, Default)]
struct Traffic {
    connections: Option<usize>,
    limit_upload: Option<u64>,
    limit_download: Option<u64>,
}

static TRAFFIC: OnceLock<Traffic> = OnceLock::new();

/// Every backend opened, by what it was opened with: a command that looks at a repository twice
/// (does it exist, then open it) reuses one client and its caches, and `-v` reports the requests
/// each made.
static OPENED: Mutex<Vec<(String, Arc<dyn Backend>)>> = Mutex::new(Vec::new());

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
        let _ = TRAFFIC.set(Traffic {
            connections: g.connections,
            limit_upload: g.limit_upload,
            limit_download: g.limit_download,
        });
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
        return Ok(Resolved { location: location_for(g, s, r)?, is_default: false });
    }
    let st = &s.config.storage;
    match st.provider {
        Some(Provider::S3) => {
            let bucket = st
                .bucket
                .as_deref()
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| usage("the config's storage provider is s3 but storage.bucket is not set"))?;
            let mut o = S3Options::new(bucket);
            o.prefix = st.prefix.as_deref().unwrap_or("").trim_matches('/').to_string();
            apply_s3_settings(g, s, &mut o)?;
            Ok(Resolved { location: Location::S3(Box::new(o)), is_default: false })
        }
        Some(Provider::Local) | None if st.path.is_some() => {
            Ok(Resolved { location: Location::Local(st.path.clone().unwrap()), is_default: false })
        }
        Some(Provider::Local) => Err(usage("the config's storage provider is local but storage.path is not set")),
        None => Ok(Resolved { location: Location::Local(default_repo_path()), is_default: true }),
    }
}

/// A repository named on the command line (`--repo`, `copy --to`), with the config's S3 settings
/// (credentials, endpoint, region, storage class, encryption) and the traffic flags applied.
pub fn location_for(g: &GlobalArgs, s: &Settings, r: &str) -> Result<Location> {
    let mut loc = parse_location(r)?;
    if let Location::S3(o) = &mut loc {
        apply_s3_settings(g, s, o)?;
    }
    Ok(loc)
}

/// Parses a repository location: a path, `local:/path`, `s3:http[s]://host[:port]/bucket[/prefix]`
/// (path-style) or `s3://bucket[/prefix]` (endpoint and region from `AWS_ENDPOINT_URL` and
/// `AWS_REGION`; [`location_for`] adds the config's).
pub fn parse_location(r: &str) -> Result<Location> {
    if let Some(rest) = r.strip_prefix("s3:") {
        return parse_s3(r, rest).map(|o| Location::S3(Box::new(o)));
    }
    let p = r.strip_prefix("local:").unwrap_or(r);
    if p.is_empty() {
        return Err(usage("empty repository path"));
    }
    Ok(Location::Local(PathBuf::from(p)))
}

fn parse_s3(r: &str, rest: &str) -> Result<S3Options> {
    let bad = |why: &str| {
        usage(format!("repository {r}: {why}; write s3:http[s]://host[:port]/bucket[/prefix] or s3://bucket[/prefix]"))
    };
    let (endpoint, path) = if let Some(p) = rest.strip_prefix("//") {
        (None, p)
    } else {
        let (scheme, after) = rest.split_once("://").ok_or_else(|| bad("no endpoint URL"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the endpoint must start with http:// or https://"));
        }
        let (host, path) = after.split_once('/').unwrap_or((after, ""));
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host in the endpoint (credentials go in the environment or config, not the URL)"));
        }
        (Some(format!("{scheme}://{host}")), path)
    };
    let path = path.trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket"));
    }
    let valid = bucket.len() >= 3
        && bucket.len() <= 63
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_');
    if !valid {
        return Err(bad(&format!("{bucket:?} is not a valid bucket name (3-63 lower-case letters, digits, - and .)")));
    }
    let mut o = S3Options::new(bucket);
    o.endpoint = endpoint;
    o.prefix = prefix.trim_matches('/').to_string();
    if o.prefix.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") && !o.prefix.is_empty() {
        return Err(bad("the prefix has an empty, `.` or `..` part"));
    }
    Ok(o)
}

/// Fills in what the URL does not say, flags beating environment beating the config file: the
/// endpoint, region, credentials, addressing, storage class, server-side encryption and
/// object lock.
fn apply_s3_settings(g: &GlobalArgs, s: &Settings, o: &mut S3Options) -> Result<()> {
    let st: &StorageConfig = &s.config.storage;
    let env = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let conf = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    if o.endpoint.is_none() {
        o.endpoint = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")).or_else(|| conf(&st.endpoint));
        if let Some(e) = &o.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(usage(format!("the S3 endpoint {e} must start with http:// or https://")));
            }
        }
    }
    o.region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).or_else(|| conf(&st.region));
    let secret = |v: &Option<clawback_engine::config::Secret>| {
        v.as_ref().map(|s| s.expose().trim().to_string()).filter(|s| !s.is_empty())
    };
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(a), Some(k)) => {
            o.access_key_id = Some(a);
            o.secret_access_key = Some(k);
            o.session_token = env("AWS_SESSION_TOKEN");
        }
        _ => {
            o.access_key_id = secret(&st.access_key_id);
            o.secret_access_key = secret(&st.secret_access_key);
        }
    }
    // Path-style with an endpoint of one's own (every S3-compatible store takes it); AWS itself
    // prefers virtual-hosted names.
    o.path_style = st.path_style.unwrap_or(o.endpoint.is_some());
    o.storage_class = g.storage_class.clone().or_else(|| conf(&st.storage_class)).map(|c| c.to_ascii_uppercase());
    o.sse = match conf(&st.server_side_encryption).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => None,
        Some("aes256") => Some(Sse::Aes256),
        Some("aws:kms") => Some(Sse::Kms(conf(&st.kms_key_id))),
        Some(other) => {
            return Err(usage(format!("storage.serverSideEncryption {other:?}: use \"AES256\" or \"aws:kms\"")))
        }
    };
    o.object_lock = match (conf(&st.object_lock_mode), st.object_lock_days) {
        (None, None) => None,
        (Some(mode), Some(days)) if days > 0 => Some(ObjectLock { mode: mode.to_ascii_uppercase(), days }),
        _ => {
            return Err(usage(
                "object lock needs both storage.objectLockMode (GOVERNANCE or COMPLIANCE) and storage.objectLockDays (1 or more)",
            ))
        }
    };
    if let Some(n) = g.connections {
        o.connections = n;
    }
    Ok(())
}

/// Asks `init` to create the bucket when it is missing (`--create-bucket`).
pub fn set_create_bucket(res: &mut Resolved) -> Result<()> {
    match &mut res.location {
        Location::S3(o) => {
            o.create_bucket = true;
            Ok(())
        }
        Location::Local(_) => Err(usage("--create-bucket is for S3 repositories")),
    }
}

/// Opens the storage at `loc` with its decorators: retries of transient failures, the traffic
/// flags, and (tests only) the faults `CLAWBACK_FAULTS` asks for.
pub fn backend(loc: &Location) -> Result<Arc<dyn Backend>> {
    let id = location_key(loc);
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, be)) = opened.iter().find(|(k, _)| *k == id) {
        return Ok(be.clone());
    }
    let base: Arc<dyn Backend> = match loc {
        Location::Local(p) => Arc::new(LocalBackend::new(p.clone())),
        Location::S3(o) => Arc::new(
            S3Backend::new((**o).clone()).with_context(|| format!("cannot set up the S3 client for {}", o.url()))?,
        ),
    };
    let base: Arc<dyn Backend> = match FaultConfig::from_env() {
        None => base,
        Some(Ok(cfg)) => Arc::new(Fault::new(base, cfg)),
        Some(Err(e)) => return Err(usage(e)),
    };
    let t = TRAFFIC.get().copied().unwrap_or_default();
    let base: Arc<dyn Backend> = if t.connections.is_some() || t.limit_upload.is_some() || t.limit_download.is_some() {
        Arc::new(Throttle::new(base, t.connections, t.limit_upload, t.limit_download))
    } else {
        base
    };
    let be: Arc<dyn Backend> = Arc::new(Retry::new(base, RetryPolicy::default()));
    opened.push((id, be.clone()));
    Ok(be)
}

/// What a location is known by within this process (never a secret).
fn location_key(loc: &Location) -> String {
    match loc {
        Location::Local(p) => format!("local:{}", p.display()),
        // Debug leaves the secrets out; which key is used is part of what was opened.
        Location::S3(o) => format!("{o:?} {:?}", o.access_key_id),
    }
}

/// With `-v`: the requests each repository was sent, by type (S3 counts them).
pub fn report_requests(g: &GlobalArgs) {
    if g.verbose == 0 {
        return;
    }
    for (_, be) in OPENED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let r = be.requests();
        if r.is_empty() {
            continue;
        }
        let total: u64 = r.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = r.iter().map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!("clawback: {} requests to {}: {}", total, be.location(), parts.join(", "));
    }
}

/// The requests a backend made, as a JSON object (`{"get": 3, "put": 4, ...}`).
pub fn requests_json(be: &dyn Backend) -> serde_json::Value {
    be.requests().into_iter().map(|(k, n)| (k.to_string(), serde_json::Value::from(n))).collect()
}

/// The error for a repository whose config cannot be found: a missing bucket says how to make it.
fn not_found(be: &dyn Backend) -> clawback_engine::Error {
    match be.read(clawback_engine::backend::Kind::Config, "config") {
        Err(e) if s3::is_missing_bucket(&e) => clawback_engine::Error::BucketNotFound(e.to_string()),
        _ => clawback_engine::Error::RepoNotFound(be.location()),
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

/// Passwords typed at the prompt in this process, by repository: a command that creates a
/// repository and then opens it (or starts prune after a backup) asks once.
static TYPED: Mutex<Vec<(String, Secret)>> = Mutex::new(Vec::new());

/// The password from, in order: `--password-file`, `--password-command`, `CLAWBACK_PASSWORD`, `CLAWBACK_PASSWORD_FILE`, the
/// config's `encryption` (passphrase, keyFile, passwordCommand), the embedded default repository's
/// generated file, or a prompt on a terminal. A new embedded default repository's password typed
/// at the prompt is kept (0600) where later unattended runs look, [`default_password_file`].
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
    let key = location_key(&res.location);
    if let Some((_, pw)) = TYPED.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == key) {
        return Ok(pw.clone());
    }
    if std::io::stdin().is_terminal() {
        let first = if new_repo { "enter a password for the new repository: " } else { "enter repository password: " };
        let p = rpassword::prompt_password(first).context("cannot read the password")?;
        if p.is_empty() {
            return Err(usage("empty password: type a password, or set CLAWBACK_PASSWORD_FILE"));
        }
        if new_repo {
            let again = rpassword::prompt_password("enter the password again: ").context("cannot read the password")?;
            if again != p {
                return Err(usage(
                    "the passwords do not match; run the command again and type the same password twice",
                ));
            }
        }
        let pw = Secret(p.into_bytes());
        if new_repo && res.is_default {
            keep_default_password(&pw)?;
        }
        TYPED.lock().unwrap_or_else(|e| e.into_inner()).push((key, pw.clone()));
        return Ok(pw);
    }
    if res.is_default && new_repo {
        return generate_default_password();
    }
    Err(clawback_engine::Error::NoPassword.into())
}

/// For the embedded default repository with no password given and no terminal to ask on: make a
/// random one and keep it in a 0600 file, saying where.
fn generate_default_password() -> Result<Secret> {
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut b))
        .context("cannot read /dev/urandom")?;
    let pw = Secret(hex::encode(b).into_bytes());
    let f = write_default_password(&pw)?;
    eprintln!(
        "clawback: generated a password for the default repository in {} (keep a copy elsewhere: without it the backups cannot be read)",
        f.display()
    );
    Ok(pw)
}

/// The password typed for a new embedded default repository, kept where scheduled runs (cron,
/// systemd, the daemon) look for it, since they have no terminal to ask on.
fn keep_default_password(pw: &Secret) -> Result<()> {
    let f = write_default_password(pw)?;
    eprintln!(
        "clawback: saved the password in {} (readable only by you) so scheduled backups can open the repository; \
         keep a copy elsewhere: without it the backups cannot be read",
        f.display()
    );
    Ok(())
}

/// Writes [`default_password_file`] (0600, in a 0700 folder). Never replaces an existing file:
/// that one may open a repository.
fn write_default_password(pw: &Secret) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let f = default_password_file();
    let dir = f.parent().unwrap();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&f)
        .with_context(|| format!("cannot create {} (it must not exist yet)", f.display()))?;
    file.write_all(&pw.0).with_context(|| format!("cannot write {}", f.display()))?;
    Ok(f)
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
    let be = backend(&res.location)?;
    if !exists(be.as_ref()) {
        return Err(not_found(be.as_ref()).into());
    }
    let pw = password(g, s, &res, false)?;
    Ok(Repository::open(be, &pw, &cache_options(g))?)
}

/// Creates the repository at the resolved location with `opts`.
pub fn create(g: &GlobalArgs, s: &Settings, res: &Resolved, opts: &clawback_engine::repo::InitOptions) -> Result<()> {
    let pw = password(g, s, res, true)?;
    Repository::init(backend(&res.location)?, &pw, opts)?;
    Ok(())
}

/// Opens the repository, first creating it when it is the embedded default and does not exist yet
/// (what `backup` and `import` do on first use). The index is not loaded: both take their backup
/// lease and then load it with `refresh_index` (one listing of index files, after the lease).
pub fn open_or_create_default(g: &GlobalArgs, s: &Settings) -> Result<(Repository, Resolved)> {
    let res = resolve(g, s)?;
    let be = backend(&res.location)?;
    if !exists(be.as_ref()) {
        if !res.is_default {
            return Err(not_found(be.as_ref()).into());
        }
        create(g, s, &res, &clawback_engine::repo::InitOptions::default())?;
        if !g.quiet {
            eprintln!("clawback: created the default repository at {}", be.location());
        }
    }
    let pw = password(g, s, &res, false)?;
    Ok((Repository::open_unloaded(be, &pw, &cache_options(g))?, res))
}

/// Loads the settings and opens the repository.
pub fn open(g: &GlobalArgs) -> Result<Repository> {
    open_with(g, &Settings::load(g)?)
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
