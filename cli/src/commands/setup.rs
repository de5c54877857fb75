//! `clawback setup`: first-time set-up. Asks (on a terminal) or takes from flags where backups go,
//! how the repository password is kept, the schedule and the retention; writes clawback's config
//! file (`--config`, else `CLAWBACK_CONFIG`, else `<state dir>/clawback.json`) with `${VAR}`
//! references and a 0600 password file, never a literal secret; then runs `init` (unless the
//! repository exists) and `test`, and installs the schedule if asked. Every question is a flag;
//! with `--yes`, or without a terminal, nothing is asked and defaults fill the gaps.

use crate::context;
use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::config::Schedule;
use clawback_engine::openclaw::Env;
use serde_json::{json, Map, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    /// Overwrite an existing config file (and a password file --generate-password would write)
    #[arg(long)]
    pub force: bool,
    /// Do not run `init` and `test` after writing the config
    #[arg(long)]
    pub no_test: bool,
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

    /// Asks until the answer is not empty (a value with no default).
    fn ask_required(&self, q: &str, flag: &str) -> Result<String> {
        if !self.tty {
            return Err(usage(format!("{flag} is needed (or run setup on a terminal to be asked)")));
        }
        loop {
            let a = self.ask(q, "")?;
            if !a.is_empty() {
                return Ok(a);
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
    Ok(clawback_engine::commands::backup::absolute_clean(&env.expand(&p.to_string_lossy()))?)
}

fn valid_var(v: &str) -> Result<String> {
    let ok = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(usage(format!("{v:?} is not an environment variable name")));
    }
    Ok(v.to_string())
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

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    let env = Env::from_process();
    let asker = Asker { tty: !a.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() };
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
    let storage_json = if storage == Storage::Local {
        let p = match &a.path {
            Some(p) => p.clone(),
            None => PathBuf::from(asker.ask("Repository folder", &context::default_repo_path().to_string_lossy())?),
        };
        let p = clawback_engine::commands::backup::absolute_clean(&env.expand(&p.to_string_lossy()))?;
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
            (Some(e), _) => Some(e.clone()),
            (None, Storage::S3) => None,
            (None, Storage::R2) => {
                let id = asker.ask_required("Cloudflare account id (from the R2 page)", "--endpoint")?;
                Some(format!("https://{id}.r2.cloudflarestorage.com"))
            }
            (None, Storage::B2) => Some(asker.ask("Endpoint", &format!("https://s3.{region}.backblazeb2.com"))?),
            (None, _) => Some(asker.ask("Endpoint", endpoint_default)?),
        };
        let bucket = match &a.bucket {
            Some(b) => b.clone(),
            None => asker.ask_required("Bucket", "--bucket")?,
        };
        let prefix = match &a.prefix {
            Some(p) => p.clone(),
            None => asker.ask("Folder inside the bucket (empty: none)", "clawback")?,
        };
        let akv = valid_var(&match &a.access_key_env {
            Some(v) => v.clone(),
            None => asker.ask("Environment variable holding the access key id", "AWS_ACCESS_KEY_ID")?,
        })?;
        let skv = valid_var(&match &a.secret_key_env {
            Some(v) => v.clone(),
            None => asker.ask("Environment variable holding the secret access key", "AWS_SECRET_ACCESS_KEY")?,
        })?;
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
        if !prefix.is_empty() {
            s["prefix"] = json!(prefix);
        }
        for v in [&akv, &skv] {
            if std::env::var_os(v).is_none() && !g.quiet {
                eprintln!(
                    "clawback: note: {v} is not set here; set it where clawback runs (or in {}/.env)",
                    clawback_engine::openclaw::paths::state_dir(&env).display()
                );
            }
        }
        s
    };
    cfg.insert("storage".into(), storage_json);

    // Passphrase.
    let mut password_note = None;
    let mut to_write: Option<(PathBuf, Vec<u8>)> = None;
    let encryption = if let Some(v) = &a.password_env {
        json!({ "passphrase": format!("${{{}}}", valid_var(v)?) })
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
        json!({ "keyFile": clawback_engine::commands::backup::absolute_clean(f)? })
    } else {
        let opts = [
            ("generate", "a random passphrase kept in a 0600 file (recommended; keep a copy elsewhere)"),
            ("type", "a passphrase you type, kept in a 0600 file"),
            ("env", "from an environment variable, referenced as ${VAR}"),
            ("file", "an existing key/password file"),
        ];
        match asker.choose("How should the repository passphrase be kept?", &opts, 0)? {
            c @ (0 | 1) => {
                let f =
                    absolute(Path::new(&asker.ask("Passphrase file", &default_password_file().to_string_lossy())?))?;
                // Generated now; a typed one is asked for last (empty data).
                let data = if c == 0 { random_password()?.into_bytes() } else { Vec::new() };
                to_write = Some((f.clone(), data));
                password_note = Some(f.clone());
                json!({ "keyFile": f })
            }
            2 => {
                let v = valid_var(&asker.ask("Environment variable", "CLAWBACK_PASSWORD")?)?;
                json!({ "passphrase": format!("${{{v}}}") })
            }
            _ => {
                let f = absolute(Path::new(&asker.ask_required("Key/password file", "--password-file")?))?;
                if !f.is_file() {
                    return Err(usage(format!("{} does not exist", f.display())));
                }
                json!({ "keyFile": f })
            }
        }
    };
    cfg.insert("encryption".into(), encryption);

    // Schedule.
    let schedule = match &a.schedule {
        Some(s) => s.clone(),
        None => asker.ask("How often to back up (\"2h\", \"1d\" or a cron expression)", "2h")?,
    };
    Schedule::parse(&schedule).map_err(|e| usage(format!("schedule {schedule:?}: {e}")))?;
    cfg.insert("schedule".into(), json!(schedule));

    // Retention.
    cfg.insert("retention".into(), retention(a, &asker)?);

    // The passphrase file, once every answer is in (a typed one is asked last of all).
    if let Some((f, mut data)) = to_write {
        if data.is_empty() {
            data = typed_or_generated(&asker)?.into_bytes();
        }
        if f.exists() && !a.force {
            return Err(usage(format!(
                "{} exists; point --password-file at it without --generate-password to use it, or add --force",
                f.display()
            )));
        }
        write_private(&f, &data, a.force)?;
    }

    let text = serde_json::to_string_pretty(&Value::Object(cfg))? + "\n";
    write_private(&path, text.as_bytes(), a.force)?;
    if !g.quiet && !g.json {
        println!("wrote {}", path.display());
        if let Some(f) = &password_note {
            println!(
                "passphrase kept in {} (0600): keep a copy somewhere else, without it the backups cannot be read",
                f.display()
            );
        }
    }
    if a.no_test {
        return Ok(0);
    }

    // init (unless it exists), then test, then the schedule.
    let settings = context::Settings::load(&GlobalArgs { config: Some(path.clone()), repo: None, ..g.clone() })?;
    let res = context::resolve(&GlobalArgs { repo: None, ..g.clone() }, &settings)?;
    let exists = context::backend(&res.location).map(|b| context::exists(b.as_ref())).unwrap_or(false);
    if exists {
        if !g.quiet && !g.json {
            println!("the repository exists already; using it");
        }
    } else {
        let code = sub(g, &path, a, &["init"])?;
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
        let code = sub(g, &path, a, &["schedule", "install", flag])?;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "`clawback schedule install {flag}` failed (exit {code}); run it again once fixed"
            ))
            .into());
        }
    } else if !g.quiet && !g.json {
        println!("schedule not installed: `clawback schedule install --systemd` (or --cron, --openclaw) does it later");
    }
    let test_args: &[&str] = if flag.is_some() { &["test"] } else { &["test", "--no-schedule-check"] };
    let code = sub(g, &path, a, test_args)?;
    if code != 0 {
        return Err(clawback_engine::Error::Other(format!(
            "`clawback test` found problems (see above); the config is in {}",
            path.display()
        ))
        .into());
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
/// are removed unless the config refers to them).
fn sub(g: &GlobalArgs, config: &Path, a: &Args, args: &[&str]) -> Result<i32> {
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
    if a.password_env.as_deref() != Some("CLAWBACK_PASSWORD") {
        c.env_remove("CLAWBACK_PASSWORD");
    }
    if g.json {
        // setup's own stdout is not JSON; the sub-commands' human output goes to stderr.
        c.stdout(std::process::Stdio::from(std::io::stderr().lock().try_clone_fd()?));
    }
    let st = c.status().with_context(|| format!("cannot run clawback {}", args.join(" ")))?;
    Ok(st.code().unwrap_or(1))
}

trait CloneFd {
    fn try_clone_fd(&self) -> Result<std::os::fd::OwnedFd>;
}
impl<T: std::os::fd::AsFd> CloneFd for T {
    fn try_clone_fd(&self) -> Result<std::os::fd::OwnedFd> {
        Ok(self.as_fd().try_clone_to_owned()?)
    }
}
