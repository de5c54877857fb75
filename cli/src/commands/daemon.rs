//! `clawback daemon`: runs the schedule in the foreground. Each cycle runs in this process: the
//! recorded backup (`backup::recorded`, so the run log, notifications, hooks and the retention
//! after every backup follow one code path), then `prune` at most once per
//! `retention.pruneEvery` (the backup leaves prune to the daemon). `enabled: false` in the config
//! stops it. One cycle at a time, one daemon per OpenClaw state dir (a lock file), a catch-up run
//! at start or after a wake when the last good run is older than one interval, and a clean stop on
//! SIGTERM/SIGINT/SIGHUP: a backup that is writing winds down and is recorded as interrupted, one
//! that stored nothing yet (or a prune) stops at once, and the daemon exits 0. Between cycles it
//! holds no repository.

use super::{backup, prune};
use crate::context::Ctx;
use crate::runs;
use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clawback_engine::config::{parse_duration, Schedule};
use clawback_engine::run::interrupt::{signal_name, Interrupt};
use clawback_engine::run::planner::{default_jitter, DaemonLock, DaemonState, Planner};
use clawback_engine::run::retention::Pruner;
use serde_json::json;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run one cycle (backup with its retention, prune if due) and exit with its status
    #[arg(long)]
    pub once: bool,
    /// Run every DUR instead of the configured schedule (e.g. 2h, 30m, 10s)
    #[arg(long, value_name = "DUR", conflicts_with = "schedule")]
    pub every: Option<String>,
    /// Use this schedule instead of the configured one ("2h", or a cron expression)
    #[arg(long, value_name = "EXPR")]
    pub schedule: Option<String>,
    /// Largest random delay added to each scheduled run (default: 1/20 of the interval, at most 2m)
    #[arg(long, value_name = "DUR")]
    pub jitter: Option<String>,
    /// Never prune (retention still runs)
    #[arg(long)]
    pub no_prune: bool,
}

struct Daemon<'a> {
    g: &'a GlobalArgs,
    /// The flags each cycle's backup and prune run with: the daemon's, without `--json` (only
    /// the daemon's own JSON lines go to stdout).
    cycle_g: GlobalArgs,
    /// clawback's own folder: run log, state, lock.
    dir: std::path::PathBuf,
    no_prune: bool,
    prune_every: Duration,
    interrupt: Interrupt,
    /// With `--json`: this process's stdout, where the daemon's JSON lines go; file descriptor 1
    /// then points at stderr, so what a cycle prints lands there.
    json_out: Option<Arc<File>>,
}

/// What the run log says started a cycle: what started the daemon (systemd, cron), else "daemon".
fn trigger() -> String {
    crate::runs::trigger_from_env().unwrap_or_else(|| "daemon".into())
}

/// Says something on stderr unless quiet.
fn say(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("clawback daemon: {msg}");
    }
}

/// Writes one JSON line to the daemon's stdout (with `--json`).
fn emit(json_out: &Option<Arc<File>>, v: &serde_json::Value) {
    if let Some(mut f) = json_out.as_deref() {
        let _ = writeln!(f, "{v}");
    }
}

/// Keeps this process's stdout for the daemon's JSON lines and points file descriptor 1 at
/// stderr for everything else.
fn json_stdout() -> Result<File> {
    std::io::stdout().flush().context("cannot flush stdout")?;
    let saved = std::io::stdout().as_fd().try_clone_to_owned().context("cannot duplicate stdout")?;
    // SAFETY: dup2 on this process's own standard descriptors, which stay open.
    if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot point stdout at stderr");
    }
    Ok(File::from(saved))
}

impl Daemon<'_> {
    fn say(&self, msg: &str) {
        say(self.g.quiet, msg);
    }

    /// One cycle: the recorded backup (which applies retention itself), prune when due. Returns
    /// its exit status and a JSON record.
    fn cycle(&mut self) -> (i32, serde_json::Value) {
        let start = Utc::now();
        let mut out = json!({ "start": start });
        let how =
            runs::How { interrupt: &self.interrupt, trigger: Some(trigger()), pruner: Pruner::Daemon, progress: None };
        // Stopped before the backup stored anything: recorded, said, and the daemon exits 0.
        let stopped_early: runs::StoppedEarly = {
            let (json_out, quiet, mut out) = (self.json_out.clone(), self.g.quiet, out.clone());
            Box::new(move |sig, _| {
                out["backup_exit"] = json!(130);
                out["stopped_by"] = json!(signal_name(sig));
                emit(&json_out, &out);
                say(quiet, &format!("{}: stopped", signal_name(sig)));
                0
            })
        };
        let args = backup::Args::default();
        // A fresh context per cycle: no backend, client or cache outlives the cycle that opened it.
        let ctx = Ctx::new(self.cycle_g.clone());
        let r = runs::record(&ctx.g, false, &how, stopped_early, |rec| backup::recorded(&ctx, &args, &how, rec));
        drop(ctx);
        let code = match &r.result {
            Ok(c) => *c,
            Err(e) => crate::ui::report_error(e),
        };
        if let (130, Some(sig)) = (code, self.interrupt.signal()) {
            out["backup_exit"] = json!(130);
            out["stopped_by"] = json!(signal_name(sig));
            return (130, out);
        }
        out["backup_exit"] = json!(code);
        if let Some(rt) = r.record.and_then(|r| r.retention) {
            out["retention"] = json!(rt);
        }
        self.say(&format!("backup finished (exit {code})"));
        let mut status = code;
        if matches!(code, 0 | 3) && self.interrupt.signal().is_none() {
            // The same state as a backup's own prune: one home for "is prune due".
            let mut st = DaemonState::load(&self.dir);
            if !self.no_prune && st.prune_due(Utc::now(), self.prune_every) {
                st.last_prune = Some(Utc::now());
                st.last_prune_by = Some("daemon".into());
                st.forgotten = 0;
                if let Err(e) = st.save(&self.dir) {
                    self.say(&format!("cannot save the daemon state: {e}"));
                }
                match self.prune(&out, status) {
                    0 => out["prune_exit"] = json!(0),
                    c => {
                        out["prune_exit"] = json!(c);
                        self.say(&format!("prune failed (exit {c})"));
                        status = status.max(1);
                    }
                }
            }
        }
        out["end"] = json!(Utc::now());
        out["status"] = json!(status);
        (status, out)
    }

    /// `clawback prune`, in this process. Prune is safe to stop anywhere, so a stop signal ends
    /// the daemon at once (recording the cycle as it stands), as it did a prune of its own.
    fn prune(&self, out: &serde_json::Value, status: i32) -> i32 {
        self.interrupt.preparing();
        let _watch = {
            let (json_out, quiet, mut out) = (self.json_out.clone(), self.g.quiet, out.clone());
            self.interrupt.watch(move |sig| {
                out["end"] = json!(Utc::now());
                out["status"] = json!(status);
                emit(&json_out, &out);
                say(quiet, &format!("{}: stopped after the current run", signal_name(sig)));
                std::process::exit(0);
            })
        };
        let args = prune::Args { dry_run: false, max_unused: "5%".into() };
        let code = match prune::run(&Ctx::new(self.cycle_g.clone()), &args) {
            Ok(c) => c,
            Err(e) => crate::ui::report_error(&e),
        };
        self.interrupt.written();
        code
    }
}

/// Gives the memory a cycle freed back to the system before the daemon sleeps.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: a plain allocator call with no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sleeps until `due` (wall clock, so a suspend that passes it wakes the loop at once) or a stop.
fn sleep_until(due: DateTime<Utc>, interrupt: &Interrupt) {
    while interrupt.signal().is_none() {
        let left = due - Utc::now();
        if left <= chrono::Duration::zero() {
            return;
        }
        std::thread::sleep(left.to_std().unwrap_or_default().min(Duration::from_millis(100)));
    }
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    let s = crate::context::Settings::load(g)?;
    if !s.config.enabled() {
        // Not an error: the user turned scheduled backups off (a manual `backup` still runs).
        if !g.quiet {
            eprintln!("clawback daemon: backups are disabled in the config (enabled: false)");
        }
        return Ok(0);
    }
    let schedule = match (&a.every, &a.schedule) {
        (Some(e), _) => {
            let d = parse_duration(e).filter(|d| !d.is_zero());
            let d = d.ok_or_else(|| usage(format!("--every {e}: give a duration like 2h, 30m or 10s")))?;
            Schedule::Every { text: e.trim().to_string(), interval: d }
        }
        (None, Some(x)) => Schedule::parse(x).map_err(|e| usage(e.to_string()))?,
        (None, None) => match s.config.schedule() {
            Some(sch) => sch,
            None if a.once => Schedule::parse("1d").expect("a valid interval"),
            None => return Err(usage(
                "no schedule: set `schedule` in the config (\"2h\", \"1d\" or a cron expression), or pass --every DUR",
            )),
        },
    };
    let jitter = match &a.jitter {
        Some(j) if j.trim() == "0" => Duration::ZERO,
        Some(j) => parse_duration(j).ok_or_else(|| usage(format!("--jitter {j}: give a duration like 30s, or 0")))?,
        None => default_jitter(&schedule),
    };
    let dir = runs::clawback_dir();
    let lock = DaemonLock::acquire(&dir)?;
    let interrupt = Interrupt::new();
    interrupt
        .catch(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP], false)
        .context("cannot catch SIGTERM, SIGINT and SIGHUP")?;
    let json_out = if g.json { Some(Arc::new(json_stdout()?)) } else { None };
    let prune_every = s.config.retention.prune_every();
    drop(s);
    let cycle_g = GlobalArgs { json: false, ..g.clone() };
    let mut d = Daemon { g, cycle_g, dir, no_prune: a.no_prune, prune_every, interrupt, json_out };
    let stopping = |d: &Daemon| d.interrupt.signal();

    if a.once {
        let (code, out) = d.cycle();
        emit(&d.json_out, &out);
        drop(lock);
        return Ok(if stopping(&d).is_some() { 0 } else { code });
    }

    let planner = Planner { schedule, jitter };
    let last_ok = runs::run_log().last_success().ok().flatten().map(|r| r.end);
    let mut due = planner.first_due(last_ok, Utc::now());
    d.say(&format!(
        "running schedule {} (lock {}); {}",
        planner.schedule,
        lock.path().display(),
        if due <= Utc::now() {
            "the last good backup is older than one interval: backing up now".to_string()
        } else {
            format!("next backup at {}", due.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    ));
    loop {
        sleep_until(due, &d.interrupt);
        if let Some(sig) = stopping(&d) {
            d.say(&format!("{}: stopped", signal_name(sig)));
            return Ok(0);
        }
        let started = Utc::now();
        let (_, out) = d.cycle();
        emit(&d.json_out, &out);
        release_memory();
        if let Some(sig) = stopping(&d) {
            d.say(&format!("{}: stopped after the current run", signal_name(sig)));
            return Ok(0);
        }
        let (next, skipped) = planner.next_due(started, Utc::now());
        if skipped > 0 {
            d.say(&format!("the run took longer than the schedule: {skipped} due run(s) skipped, not doubled"));
        }
        due = next + chrono::Duration::from_std(planner.draw_jitter()).unwrap_or_default();
        d.say(&format!("next backup at {}", due.format("%Y-%m-%d %H:%M:%S UTC")));
    }
}
