//! Recording backup runs: `clawback backup` is wrapped by [`record`], which appends one line to the
//! run log (see `clawback_engine::runlog`) whatever the outcome, and sends the notifications the
//! config asks for. The backup itself reports its counters through [`backup_done`], which also
//! compares them with the recent runs and returns the anomaly warnings for the output.

use crate::context;
use crate::GlobalArgs;
use anyhow::Result;
use chrono::{DateTime, Utc};
use clawback_engine::anomaly::{self, Anomaly, Thresholds};
use clawback_engine::config::BackupConfig;
use clawback_engine::openclaw::Env;
use clawback_engine::runlog::{strip_credentials, RunLog, RunRecord, RunStatus};
use clawback_engine::snapshot::Summary;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// Set by the daemon (and the installed systemd unit or crontab line) for the runs it starts.
pub const TRIGGER_ENV: &str = "CLAWBACK_TRIGGER";

/// What the backup reported before returning.
struct Done {
    summary: Summary,
    snapshot_id: Option<String>,
    anomalies: Vec<Anomaly>,
    unreadable: usize,
}

static DONE: Mutex<Option<Done>> = Mutex::new(None);
static STARTED: Mutex<Option<Instant>> = Mutex::new(None);

/// The OpenClaw state dir the run log lives in.
pub fn state_dir() -> PathBuf {
    clawback_engine::openclaw::state_dir(&Env::from_process())
}

pub fn run_log() -> RunLog {
    RunLog::for_state_dir(&state_dir())
}

/// Called by the backup once it has its result: remembers the counters for the run log, and
/// returns the anomalies against the recent successful runs (also printed as warnings on stderr).
pub fn backup_done(g: &GlobalArgs, r: &clawback_engine::commands::backup::BackupResult) -> Vec<Anomaly> {
    let duration = STARTED
        .lock()
        .unwrap()
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(r.summary.duration_s)
        .max(r.summary.duration_s);
    let anomalies = if r.snapshot_id.is_some() {
        let history = run_log().recent_successes(Thresholds::default().window).unwrap_or_default();
        anomaly::detect(&r.summary, duration, &history, &Thresholds::default())
    } else {
        Vec::new()
    };
    if !g.quiet {
        for a in &anomalies {
            eprintln!("clawback: warning: anomaly: {}", a.message);
        }
    }
    *DONE.lock().unwrap() = Some(Done {
        summary: r.summary.clone(),
        snapshot_id: r.snapshot_id.map(|i| i.to_hex()),
        anomalies: anomalies.clone(),
        unreadable: r.errors.len(),
    });
    anomalies
}

/// The error as the one line `main` prints for it.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg.replace('\n', " ")
}

/// The config, loaded quietly (the backup itself prints its warnings).
fn quiet_config(g: &GlobalArgs, env: &Env) -> BackupConfig {
    let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").map(PathBuf::from));
    clawback_engine::config::load(env, explicit.as_deref()).map(|l| l.config).unwrap_or_default()
}

/// The repository location for messages, without credentials.
fn repo_location(g: &GlobalArgs, env: &Env, config: &BackupConfig) -> Option<String> {
    let s = context::Settings { env: env.clone(), config: config.clone() };
    let res = context::resolve(g, &s).ok()?;
    let loc = match &res.location {
        context::Location::Local(p) => p.display().to_string(),
        other => context::backend(other).ok()?.location(),
    };
    Some(strip_credentials(&loc))
}

/// Runs `backup` and records it: one run-log line and the notifications. Dry runs are not
/// recorded. The backup's own result is returned unchanged: neither the log nor a notifier can
/// turn a good backup into a failed one.
pub fn record(g: &GlobalArgs, dry_run: bool, backup: impl FnOnce() -> Result<i32>) -> Result<i32> {
    let start: DateTime<Utc> = Utc::now();
    *STARTED.lock().unwrap() = Some(Instant::now());
    let result = backup();
    if dry_run {
        return result;
    }
    let end = Utc::now();
    let done = DONE.lock().unwrap().take();
    let exit_code = match &result {
        Ok(c) => *c,
        Err(e) => crate::ui::exit_code(e),
    };
    let error = match &result {
        Err(e) => Some(error_line(e)),
        Ok(3) => done.as_ref().map(|d| format!("{} files could not be read", d.unreadable)),
        Ok(_) => None,
    };
    let env = Env::from_process();
    let config = quiet_config(g, &env);
    let mut rec = RunRecord {
        start,
        end,
        status: RunStatus::from_exit_code(exit_code),
        exit_code,
        duration_s: (end - start).num_milliseconds() as f64 / 1000.0,
        counters: done.as_ref().map(|d| d.summary.clone()),
        snapshot_id: done.as_ref().and_then(|d| d.snapshot_id.clone()),
        error,
        anomalies: done.map(|d| d.anomalies).unwrap_or_default(),
        notify_errors: Vec::new(),
        host: clawback_engine::repo::hostname(),
        repo: repo_location(g, &env, &config),
        trigger: std::env::var(TRIGGER_ENV).ok().filter(|t| !t.is_empty()),
        pid: std::process::id(),
    };
    rec.notify_errors = clawback_engine::notify::notify(&config, &rec);
    if !g.quiet {
        for e in &rec.notify_errors {
            eprintln!("clawback: warning: notification failed: {e}");
        }
    }
    let log = run_log();
    if let Err(e) = log.append(&rec) {
        if !g.quiet {
            eprintln!("clawback: warning: cannot write the run log {}: {e}", log.path().display());
        }
    }
    result
}
