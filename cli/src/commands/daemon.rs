//! `clawback daemon`: runs the schedule in the foreground. Each cycle spawns this same program as
//! `clawback backup` (so the run log, notifications, hooks and the retention after every backup
//! follow one code path), then `prune` at most once per `retention.pruneEvery` (the backup child
//! leaves prune to the daemon). `enabled: false` in the config stops it. One cycle at a time, one
//! daemon per OpenClaw state dir (a lock file), a catch-up run at start or after a wake when the
//! last good run is older than one interval, and a clean stop on SIGTERM/SIGINT: the signal is
//! passed on to the running child, the daemon waits for it and exits 0.

use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clawback_engine::config::{parse_duration, Schedule};
use clawback_engine::run::planner::{default_jitter, DaemonLock, DaemonState, Planner};
use clawback_engine::run::runlog::{RunRecord, RunStatus};
use serde_json::json;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
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

/// The signal that asked the daemon to stop (0: none yet).
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn stopping() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

use crate::runs::signal_name;

/// The global flags a child needs to reach the same repository the same way; without the
/// password flags when the caller hands the password over itself.
pub fn global_flags(g: &GlobalArgs, with_password: bool) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let mut pair = |k: &str, val: OsString| {
        v.push(k.into());
        v.push(val);
    };
    if let Some(r) = &g.repo {
        pair("--repo", r.into());
    }
    if with_password {
        if let Some(f) = &g.password_file {
            pair("--password-file", f.into());
        }
        if let Some(c) = &g.password_command {
            pair("--password-command", c.into());
        }
    }
    if let Some(c) = &g.config {
        pair("--config", c.into());
    }
    if let Some(d) = &g.cache_dir {
        pair("--cache-dir", d.into());
    }
    if let Some(n) = g.connections {
        pair("--connections", n.to_string().into());
    }
    if let Some(n) = g.limit_upload {
        pair("--limit-upload", n.to_string().into());
    }
    if let Some(n) = g.limit_download {
        pair("--limit-download", n.to_string().into());
    }
    if let Some(c) = &g.storage_class {
        pair("--storage-class", c.into());
    }
    if g.no_cache {
        v.push("--no-cache".into());
    }
    if g.quiet {
        v.push("--quiet".into());
    }
    for _ in 0..g.verbose {
        v.push("-v".into());
    }
    if g.low_priority {
        v.push("--low-priority".into());
    }
    v
}

struct Daemon<'a> {
    g: &'a GlobalArgs,
    exe: std::path::PathBuf,
    /// clawback's own folder: run log, state, lock.
    dir: std::path::PathBuf,
    no_prune: bool,
    prune_every: Duration,
    prune_available: Option<bool>,
}

/// What the run log says started a child: what started the daemon (systemd, cron), else "daemon".
fn trigger() -> String {
    std::env::var(crate::runs::TRIGGER_ENV).ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "daemon".into())
}

/// How one child ended.
enum Outcome {
    Exited(i32),
    /// Ended by the signal the daemon passed on.
    Stopped(i32),
}

/// How one child ended, and its pid (to find its run-log line).
struct Ended {
    outcome: Outcome,
    pid: u32,
}

impl Daemon<'_> {
    fn say(&self, msg: &str) {
        if !self.g.quiet {
            eprintln!("clawback daemon: {msg}");
        }
    }

    /// Runs `clawback <globals> <args>`, passing on a stop signal, and waits for it.
    fn child(&self, args: &[&str]) -> Result<Ended> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(global_flags(self.g, true))
            .args(args)
            .env(crate::runs::TRIGGER_ENV, trigger())
            .env(crate::runs::DAEMON_PRUNES_ENV, "1")
            .stdin(Stdio::null());
        if self.g.json {
            // Only the daemon's own JSON lines go to stdout.
            let err = std::io::stderr().as_fd().try_clone_to_owned().context("cannot duplicate stderr")?;
            cmd.stdout(Stdio::from(err));
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", self.exe.display()))?;
        let mut forwarded = None;
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the backup process")? {
                return Ok(Ended { outcome: outcome(status, forwarded), pid: child.id() });
            }
            if let (Some(sig), None) = (stopping(), forwarded) {
                // SAFETY: signalling our own child by pid, which has not been reaped yet.
                unsafe { libc::kill(child.id() as libc::pid_t, sig) };
                forwarded = Some(sig);
                self.say(&format!("{}: waiting for `{}` to stop", signal_name(sig), args[0]));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn has_prune(&mut self) -> bool {
        *self.prune_available.get_or_insert_with(|| {
            Command::new(&self.exe)
                .args(["prune", "--help"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// The run-log line the backup child `pid` wrote, if it wrote one.
    fn child_record(&self, pid: u32) -> Option<RunRecord> {
        let log = clawback_engine::run::runlog::RunLog::in_dir(&self.dir);
        log.recent(20).ok()?.into_iter().rev().find(|r| r.pid == pid)
    }

    /// One cycle: backup (which applies retention itself), prune when due. Returns its exit
    /// status and a JSON record.
    fn cycle(&mut self) -> Result<(i32, serde_json::Value)> {
        let start = Utc::now();
        let backup = self.child(&["backup"])?;
        let mut out = json!({ "start": start });
        let rec = self.child_record(backup.pid);
        let code = match backup.outcome {
            Outcome::Stopped(sig) => {
                // A child that caught the signal recorded itself, saying what it kept.
                if rec.is_none() {
                    self.record_interrupted(start, sig);
                }
                out["backup_exit"] = json!(130);
                out["stopped_by"] = json!(signal_name(sig));
                return Ok((130, out));
            }
            Outcome::Exited(c) => c,
        };
        out["backup_exit"] = json!(code);
        if let Some(rt) = rec.and_then(|r| r.retention) {
            out["retention"] = json!(rt);
        }
        self.say(&format!("backup finished (exit {code})"));
        let mut status = code;
        if matches!(code, 0 | 3) && stopping().is_none() {
            // The same state as a backup's own prune: one home for "is prune due".
            let mut st = DaemonState::load(&self.dir);
            if !self.no_prune && stopping().is_none() && st.prune_due(Utc::now(), self.prune_every) {
                if self.has_prune() {
                    st.last_prune = Some(Utc::now());
                    st.last_prune_by = Some("daemon".into());
                    st.forgotten = 0;
                    if let Err(e) = st.save(&self.dir) {
                        self.say(&format!("cannot save the daemon state: {e}"));
                    }
                    match self.child(&["prune"])?.outcome {
                        Outcome::Exited(0) => out["prune_exit"] = json!(0),
                        Outcome::Exited(c) => {
                            out["prune_exit"] = json!(c);
                            self.say(&format!("prune failed (exit {c})"));
                            status = status.max(1);
                        }
                        Outcome::Stopped(_) => {}
                    }
                } else {
                    out["prune_skipped"] = json!("this build has no prune command");
                    self.say("prune skipped: this build has no prune command");
                }
            }
        }
        out["end"] = json!(Utc::now());
        out["status"] = json!(status);
        Ok((status, out))
    }

    /// A backup child ended by the stop signal wrote no run-log line of its own.
    fn record_interrupted(&self, start: DateTime<Utc>, sig: i32) {
        let end = Utc::now();
        let rec = RunRecord {
            start,
            end,
            status: RunStatus::Failed,
            exit_code: 130,
            duration_s: (end - start).num_milliseconds() as f64 / 1000.0,
            counters: None,
            snapshot_id: None,
            error: Some(format!("interrupted: the daemon was stopped by {}", signal_name(sig))),
            anomalies: Vec::new(),
            notify_errors: Vec::new(),
            host: clawback_engine::repo::hostname(),
            repo: None,
            trigger: Some(trigger()),
            pid: std::process::id(),
            paths: Vec::new(),
            parent_id: None,
            files_content_changed: None,
            forced: false,
            retention: None,
        };
        if let Err(e) = clawback_engine::run::runlog::RunLog::in_dir(&self.dir).append(&rec) {
            self.say(&format!("cannot write the run log: {e}"));
        }
    }
}

fn outcome(status: ExitStatus, forwarded: Option<i32>) -> Outcome {
    match (status.code(), status.signal(), forwarded) {
        (_, Some(sig), _) => Outcome::Stopped(sig),
        (Some(130), None, Some(sig)) => Outcome::Stopped(sig),
        (Some(c), _, _) => Outcome::Exited(c),
        (None, None, _) => Outcome::Exited(1),
    }
}

/// Sleeps until `due` (wall clock, so a suspend that passes it wakes the loop at once) or a stop.
fn sleep_until(due: DateTime<Utc>) {
    while stopping().is_none() {
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
    let dir = crate::runs::clawback_dir();
    let lock = DaemonLock::acquire(&dir)?;
    install_signal_handlers();
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let prune_every = s.config.retention.prune_every();
    let mut d = Daemon { g, exe, dir, no_prune: a.no_prune, prune_every, prune_available: None };
    let emit = |v: &serde_json::Value| {
        if g.json {
            println!("{v}");
        }
    };

    if a.once {
        let (code, out) = d.cycle()?;
        emit(&out);
        drop(lock);
        return Ok(if stopping().is_some() { 0 } else { code });
    }

    let planner = Planner { schedule, jitter };
    let last_ok = crate::runs::run_log().last_success().ok().flatten().map(|r| r.end);
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
        sleep_until(due);
        if let Some(sig) = stopping() {
            d.say(&format!("{}: stopped", signal_name(sig)));
            return Ok(0);
        }
        let started = Utc::now();
        let (_, out) = d.cycle()?;
        emit(&out);
        if let Some(sig) = stopping() {
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
