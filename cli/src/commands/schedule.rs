//! `clawback schedule install --systemd | --cron | --openclaw` and `schedule remove`: register the
//! schedule with a systemd user timer, a crontab block, or OpenClaw's own scheduler. Each job runs
//! `clawback daemon --once --low-priority` (backup, retention, prune when due; one at a time) with
//! the absolute path of this program and the flags and OpenClaw variables of this shell, and
//! each install prints what it wrote and how to check it. Before installing, the variables the job
//! needs from this shell go into clawback's environment file, and the job's command is run under
//! the scheduler's empty environment (`test --scheduled-probe`): a job that would fail is not
//! installed, and the one-line error says what it lacks. OpenClaw's job is a command job with a
//! declaration key, made and removed as OpenClaw makes its own (see `openclaw_job`). What each
//! scheduler's definition says is the engine's (`run::scheduler`); this module writes it, runs
//! `systemctl`/`crontab`, and says what it did.

use crate::ui::{usage, Out};
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::config::{parse_duration, Schedule};
use clawback_engine::openclaw::Env;
use clawback_engine::run::scheduler::{self, cron, systemd, Job, JobFlags, JobKind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Register the schedule with systemd (user timer), cron, or OpenClaw's scheduler
    Install(InstallArgs),
    /// Undo `schedule install` (all kinds found, or only the one named)
    Remove(Which),
}

#[derive(clap::Args, Debug, Clone, Copy)]
#[group(multiple = false)]
pub struct Which {
    /// A systemd user service and timer (~/.config/systemd/user/clawback.{service,timer})
    #[arg(long)]
    pub systemd: bool,
    /// A block in your crontab
    #[arg(long)]
    pub cron: bool,
    /// A job in OpenClaw's own scheduler (`openclaw cron`)
    #[arg(long)]
    pub openclaw: bool,
}

#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub which: Which,
    /// Run every DUR instead of the configured schedule
    #[arg(long, value_name = "DUR", conflicts_with = "schedule")]
    pub every: Option<String>,
    /// Use this schedule instead of the configured one ("2h", or a cron expression)
    #[arg(long, value_name = "EXPR")]
    pub schedule: Option<String>,
    /// systemd: MemoryMax= of the service
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    pub memory_max: String,
}

fn schedule_from(g: &GlobalArgs, every: &Option<String>, expr: &Option<String>) -> Result<Schedule> {
    if let Some(e) = every {
        let d = parse_duration(e)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| usage(format!("--every {e}: give a duration like 2h, 30m or 1d")))?;
        return Ok(Schedule::Every { text: e.trim().to_string(), interval: d });
    }
    if let Some(x) = expr {
        return Schedule::parse(x).map_err(|e| usage(e.to_string()));
    }
    // Quietly: what the job would lack is said by the check that follows, in one line.
    let s = crate::context::Settings::load(&GlobalArgs { quiet: true, ..g.clone() })?;
    s.config.schedule().ok_or_else(|| {
        usage("no schedule: set `schedule` in the config (\"2h\", \"1d\" or a cron expression), or pass --every 2h")
    })
}

/// The scheduled command: this program, by absolute path, with this run's global flags.
fn job_argv(g: &GlobalArgs) -> Result<Vec<OsString>> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let flags = JobFlags {
        repo: g.repo.clone(),
        password_file: g.password_file.clone(),
        password_command: g.password_command.clone(),
        config: g.config.clone(),
        cache_dir: g.cache_dir.clone(),
        no_cache: g.no_cache,
    };
    Ok(scheduler::job_argv(&exe, &flags))
}

/// The variables `schedule install` writes into a job of `kind`, from this shell.
fn job_env(kind: JobKind) -> Vec<(String, String)> {
    scheduler::job_env(kind, &Env::from_process())
}

/// Whether this shell's runs take the password from CLAWBACK_PASSWORD (it beats the config).
fn password_from_env(g: &GlobalArgs) -> bool {
    std::env::var("CLAWBACK_PASSWORD").is_ok_and(|p| !p.is_empty())
        && g.password_file.is_none()
        && g.password_command.is_none()
}

/// Writes what the job needs from this shell into the environment file: the variables the
/// config refers to, CLAWBACK_PASSWORD when it is the password source, an S3 repository's AWS_*
/// settings, PATH. Never a value on the terminal.
pub fn write_job_env(g: &GlobalArgs) -> Result<()> {
    let env = clawback_engine::openclaw::Env::from_process();
    let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").map(PathBuf::from));
    let loaded = clawback_engine::config::load(&env, explicit.as_deref()).ok();
    let text = loaded.as_ref().and_then(|l| l.file.as_ref()).and_then(|f| std::fs::read_to_string(f).ok());
    let settings =
        crate::context::Settings { env, config: loaded.as_ref().map(|l| l.config.clone()).unwrap_or_default() };
    let backend_vars = crate::context::resolve(g, &settings).map(|r| r.location.env_vars()).unwrap_or_default();
    let pw_env = password_from_env(g);
    if pw_env && !g.quiet {
        eprintln!(
            "clawback: note: CLAWBACK_PASSWORD is set in this shell and is the password; the scheduled job reads it \
             from the environment file (0600), never from the job's own definition"
        );
    }
    let path = crate::envfile::path_for(g.config.as_deref());
    crate::envfile::write_needed(&path, &crate::envfile::needed(text.as_deref(), pw_env, backend_vars), g.quiet)
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    let out = Out { json: g.json };
    match &a.action {
        Action::Install(i) => install(g, i, out),
        Action::Remove(w) => remove(g, *w, out),
    }
}

fn install(g: &GlobalArgs, a: &InstallArgs, out: Out) -> Result<i32> {
    let w = a.which;
    if !(w.systemd || w.cron || w.openclaw) {
        return Err(usage("say where: schedule install --systemd, --cron or --openclaw"));
    }
    let schedule = schedule_from(g, &a.every, &a.schedule)?;
    let argv = job_argv(g)?;
    write_job_env(g)?;
    let kind = if w.systemd {
        JobKind::Systemd
    } else if w.cron {
        JobKind::Cron
    } else {
        JobKind::Openclaw
    };
    let job = Job { kind, argv: argv.clone(), env: job_env(kind) };
    let probe = job
        .probe()
        .map_err(|e| clawback_engine::Error::Other(format!("not installed: the scheduled job would fail: {e}")))?;
    if !g.quiet && !g.json {
        out.say(format!("checked the job as {} would run it (an empty environment but its own): {probe}", kind.name()));
    }
    let env = Env::from_process();
    let carried = scheduler::carried_env(&env);
    let report = if w.systemd {
        install_systemd(&env, &schedule, &argv, &carried, &a.memory_max, out)?
    } else if w.cron {
        install_cron(&env, &schedule, &argv, &carried, out)?
    } else {
        super::openclaw_job::install(&schedule, &argv, &job_env(JobKind::Openclaw), out)?
    };
    if g.json {
        crate::ui::print_json(&report);
    }
    Ok(0)
}

/// Every clawback job installed for this user, with where it was found (asks `openclaw cron
/// list` once).
pub fn installed_jobs(state_dir: &Path) -> Vec<(String, Job)> {
    let listed = super::openclaw_job::list();
    scheduler::installed_jobs(&Env::from_process(), state_dir, listed.as_deref())
}

/// The job `schedule install --systemd` would write from this shell (for `test` before any
/// schedule is installed).
pub fn prospective_job(g: &GlobalArgs) -> Result<Job> {
    Ok(Job { kind: JobKind::Systemd, argv: job_argv(g)?, env: job_env(JobKind::Systemd) })
}

fn install_systemd(
    env: &Env,
    s: &Schedule,
    argv: &[OsString],
    carried: &[(String, String)],
    memory_max: &str,
    out: Out,
) -> Result<serde_json::Value> {
    let (service, timer) = systemd::unit_files(s, argv, carried, memory_max)?;
    let dir = systemd::unit_dir(env);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sp = dir.join(systemd::SERVICE);
    let tp = dir.join(systemd::TIMER);
    std::fs::write(&sp, &service).with_context(|| format!("cannot write {}", sp.display()))?;
    std::fs::write(&tp, &timer).with_context(|| format!("cannot write {}", tp.display()))?;
    out.say(format!("wrote {}:\n{service}", sp.display()));
    out.say(format!("wrote {}:\n{timer}", tp.display()));
    let enabled = match systemd::systemctl(env) {
        Some(bin) => match systemd::run_systemctl(&bin, &["daemon-reload"])
            .and_then(|_| systemd::run_systemctl(&bin, &["enable", "--now", "clawback.timer"]))
        {
            Ok(()) => {
                out.say("enabled and started clawback.timer");
                true
            }
            Err(e) => {
                eprintln!("clawback: warning: systemctl --user failed ({e}); run these yourself:");
                false
            }
        },
        None => {
            out.say("systemctl was not found; on a machine with systemd run:");
            false
        }
    };
    if !enabled {
        out.say("  systemctl --user daemon-reload && systemctl --user enable --now clawback.timer");
        out.say("  (and `loginctl enable-linger $USER` for runs while you are logged out)");
    }
    out.say("check it with: systemctl --user list-timers clawback.timer; journalctl --user -u clawback.service; clawback status");
    Ok(serde_json::json!({
        "kind": "systemd", "service": sp, "timer": tp, "enabled": enabled, "schedule": s.to_string(),
    }))
}

fn install_cron(
    env: &Env,
    s: &Schedule,
    argv: &[OsString],
    carried: &[(String, String)],
    out: Out,
) -> Result<serde_json::Value> {
    let (fields, tz) = cron::cron_fields(s)?;
    let log_dir = crate::runs::clawback_dir();
    let log = log_dir.join("cron.log");
    let line = cron::line(&fields, carried, argv, &log);
    let (mut text, replaced) = cron::strip_block(&cron::read_crontab(env)?);
    let block = cron::block(&line, tz.as_deref());
    text.push_str(&block);
    let _ = std::fs::create_dir_all(&log_dir);
    cron::write_crontab(env, &text)?;
    out.say(format!("{} the clawback block in your crontab:\n{block}", if replaced { "replaced" } else { "added" }));
    if tz.is_some() {
        out.say("note: CRON_TZ needs cronie (Fedora, Arch, Debian's cronie); the block stays last in the crontab so it does not change the zone of your other lines");
    }
    out.say(format!("check it with: crontab -l; clawback status (output of each run goes to {})", log.display()));
    Ok(
        serde_json::json!({ "kind": "cron", "line": line, "cron_tz": tz, "replaced": replaced, "schedule": s.to_string() }),
    )
}

fn remove(g: &GlobalArgs, w: Which, out: Out) -> Result<i32> {
    let env = Env::from_process();
    let all = !(w.systemd || w.cron || w.openclaw);
    let mut removed: Vec<&str> = Vec::new();
    if w.systemd || all {
        let dir = systemd::unit_dir(&env);
        let files = [dir.join(systemd::TIMER), dir.join(systemd::SERVICE)];
        if files.iter().any(|f| f.exists()) {
            if let Some(bin) = systemd::systemctl(&env) {
                if let Err(e) = systemd::run_systemctl(&bin, &["disable", "--now", "clawback.timer"]) {
                    eprintln!("clawback: warning: systemctl --user disable failed ({e})");
                }
            }
            for f in &files {
                if f.exists() {
                    std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
                    out.say(format!("removed {}", f.display()));
                }
            }
            if let Some(bin) = systemd::systemctl(&env) {
                let _ = systemd::run_systemctl(&bin, &["daemon-reload"]);
            }
            removed.push("systemd");
        } else if w.systemd {
            out.say(format!("no clawback units in {}", dir.display()));
        }
    }
    if w.cron || all {
        match cron::read_crontab(&env) {
            Ok(text) => {
                let (rest, found) = cron::strip_block(&text);
                if found {
                    cron::write_crontab(&env, &rest)?;
                    out.say("removed the clawback block from your crontab");
                    removed.push("cron");
                } else if w.cron {
                    out.say("no clawback block in your crontab");
                }
            }
            Err(e) if w.cron => return Err(e.into()),
            Err(_) => {}
        }
    }
    if w.openclaw || all {
        let state = clawback_engine::openclaw::state_dir(&env);
        if !super::openclaw_job::remove(w.openclaw, &state, out)?.is_empty() {
            removed.push("openclaw");
        }
    }
    if all && removed.is_empty() {
        out.say("no clawback schedule found (systemd units, crontab block or OpenClaw job)");
    }
    if g.json {
        crate::ui::print_json(&serde_json::json!({ "removed": removed }));
    }
    Ok(0)
}
