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

mod ask;
mod finish;
mod password;
mod storage;

use crate::context::{self, Ctx};
use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use ask::Asker;
use clawback_engine::commands::setup::answers::{check_schedule, parse_keep, KeepFlags, DEFAULT_KEEP};
use clawback_engine::commands::setup::existing::{self, Found};
use clawback_engine::commands::setup::{self as plan, providers};
use clawback_engine::config::password::write_private;
use clawback_engine::config::BackupConfig;
use clawback_engine::openclaw::Env;
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::PathBuf;

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
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(providers::NAMES))]
    pub storage: Option<String>,
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

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
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
    let path = plan::answers::absolute(&env, &plan::config_path(g.config.as_deref(), &env))?;
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
    let provider = storage::provider(a, &asker)?;
    let answers = storage::answers(g, a, &asker, provider, &env)?;
    let storage_json = answers.to_json();
    let key_vars = answers.key_vars();

    // What is there already, before any password is chosen: an existing repository keeps its
    // password. (S3 with --no-test is not looked at: no network without the checks.)
    let storage = plan::storage_settings(&storage_json, &env)?;
    let probe_settings = context::Settings { config: BackupConfig { storage, ..Default::default() }, env: env.clone() };
    let res = context::resolve(&GlobalArgs { repo: None, ..g.clone() }, &probe_settings)?;
    let be = ctx.backend(&res.location)?;
    let loc = be.location();
    let found = if a.no_test && !provider.is_folder() { Found::Nothing } else { existing::look(be.as_ref()) };
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
    let mut to_write = None;
    let encryption = if existing {
        if a.generate_password {
            return Err(plan::generated_for_existing(&loc).into());
        }
        let (enc, how) = password::prove_existing(g, a, &asker, &be, &path, &env)?;
        say(format!("the repository at {loc} exists: {how}; using it"));
        enc
    } else {
        let new = password::for_new(g, a, &asker, &env, &say)?;
        to_write = new.to_write;
        new.encryption
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
    let password_note = match to_write {
        Some((f, data)) => password::write_file(&asker, &f, data, &say)?,
        None => None,
    };

    // The config; one it replaces is kept beside it.
    if path.exists() {
        let kept = plan::kept_copy(&path, chrono::Utc::now());
        std::fs::copy(&path, &kept).with_context(|| format!("cannot keep a copy of {}", path.display()))?;
        say(format!("kept the previous config as {}", kept.display()));
    }
    let text = plan::config_text(&cfg);
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
    crate::envfile::write_needed(&env_file, &crate::envfile::needed(Some(&text), false, &[]), g.quiet)?;
    if a.no_test {
        return Ok(0);
    }
    finish::run(g, a, &asker, &path, existing, create_bucket, &say)
}

/// The retention policy: from the flags, else asked, else the default (24 hourly, 7 daily,
/// 4 weekly, 12 monthly).
fn retention(a: &Args, asker: &Asker) -> Result<Value> {
    let flags = KeepFlags {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
    };
    if let Some(r) = flags.retention() {
        return Ok(r);
    }
    loop {
        let answer = asker.ask("Snapshots to keep (last= hourly= daily= weekly= monthly= yearly=)", DEFAULT_KEEP)?;
        match parse_keep(&answer) {
            Ok(v) => return Ok(v),
            Err(e) if asker.tty => eprintln!("{e}"),
            Err(e) => return Err(usage(e)),
        }
    }
}
