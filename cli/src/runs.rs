//! Recording backup runs from the command line: [`record`] runs `clawback backup` (by hand, or as
//! one of the daemon's cycles in its own process) inside the engine's recorded run
//! (`clawback_engine::run::recorded`), and says what that returned: the interrupted-run line, the
//! notifiers and run log that failed, and the detached prune retention asked for.

use crate::context;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::config::BackupConfig;
use clawback_engine::openclaw::Env;
use clawback_engine::run::interrupt::{signal_name, Interrupt};
use clawback_engine::run::recorded::{self, Ending, Recording, Start};
use clawback_engine::run::retention::{self, Pruner};
use clawback_engine::run::runlog::{strip_credentials, RunLog, RunRecord};
use std::ffi::OsString;
use std::path::PathBuf;

use clawback_engine::run::runlog::TRIGGER_ENV;

/// The OpenClaw state dir.
pub fn state_dir() -> PathBuf {
    clawback_engine::openclaw::state_dir(&Env::from_process())
}

/// clawback's own folder in the state dir: run log, daemon state and lock, prune log.
pub fn clawback_dir() -> PathBuf {
    state_dir().join("clawback")
}

pub fn run_log() -> RunLog {
    RunLog::in_dir(&clawback_dir())
}

/// What started the run, from the environment the scheduler gave this process.
pub fn trigger_from_env() -> Option<String> {
    std::env::var(TRIGGER_ENV).ok().filter(|t| !t.is_empty())
}

/// How a run is recorded: who can stop it, what started it, who prunes after it.
pub struct How<'a> {
    pub interrupt: &'a Interrupt,
    pub trigger: Option<String>,
    pub pruner: Pruner,
    /// The counters the backup reports to (the web console watches them); `None`: its own.
    pub progress: Option<std::sync::Arc<clawback_engine::progress::Progress>>,
}

/// Once a stop before anything was stored is recorded: the exit code the process ends with,
/// given the signal and the run's own exit code.
pub type StoppedEarly = Box<dyn FnOnce(i32, i32) -> i32 + Send>;

/// The error an interrupted backup ends with: one line saying what the repository now holds.
pub fn interrupted_error(sig: i32, stored: u64, snapshot: Option<&str>) -> anyhow::Error {
    let msg = match snapshot {
        Some(id) => format!("interrupted by {} after snapshot {id} was saved", signal_name(sig)),
        None if stored > 0 => format!(
            "interrupted by {}: no snapshot was written; {} of new data is in the repository and will be reused \
             by the next backup",
            signal_name(sig),
            crate::ui::human_bytes(stored)
        ),
        None => format!("interrupted by {}: no snapshot was written and nothing was stored", signal_name(sig)),
    };
    anyhow::Error::new(clawback_engine::Error::Interrupted).context(msg)
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
    Some(strip_credentials(&res.location.name()))
}

/// The config and repository location a record is written with.
fn ending_context(g: &GlobalArgs) -> (BackupConfig, Option<String>) {
    let env = Env::from_process();
    let config = quiet_config(g, &env);
    let repo = repo_location(g, &env, &config);
    (config, repo)
}

/// Says what went wrong writing a record.
fn report_record(g: &GlobalArgs, rec: &RunRecord, log_error: Option<clawback_engine::Error>, log: &RunLog) {
    if g.quiet {
        return;
    }
    for e in &rec.notify_errors {
        eprintln!("clawback: warning: notification failed: {e}");
    }
    if let Some(e) = log_error {
        eprintln!("clawback: warning: cannot write the run log {}: {e}", log.path().display());
    }
}

/// A run stopped before it stored anything: record it, say so, and end the process.
fn stop_now(g: &GlobalArgs, start: &Start, sig: i32, then: StoppedEarly) -> ! {
    let e = interrupted_error(sig, 0, None);
    let code = crate::ui::report_error(&e);
    let (config, repo) = ending_context(g);
    let log = start.log();
    let (rec, log_error) =
        recorded::append(&log, start.record(code, Some(crate::ui::error_line(&e)), None, repo), &config);
    report_record(g, &rec, log_error, &log);
    std::process::exit(then(sig, code));
}

/// A recorded run's result and its record.
pub struct Recorded {
    /// The backup's own result (an interruption after the snapshot was saved turns it into the
    /// interrupted-run error).
    pub result: Result<i32>,
    /// What was appended to the run log (`None` for a dry run or an unrecorded usage error).
    pub record: Option<RunRecord>,
}

/// Runs `backup` and records it: one run-log line and the notifications, then the prune its
/// retention asked for. Dry runs are not recorded. A stop before anything is stored ends the
/// process (see [`StoppedEarly`]). Neither the log, a notifier nor prune can turn a good backup into
/// a failed one.
pub fn record(
    g: &GlobalArgs,
    dry_run: bool,
    how: &How,
    stopped_early: StoppedEarly,
    backup: impl FnOnce(&mut Recording) -> Result<i32>,
) -> Recorded {
    let mut rec = Recording::start(&clawback_dir(), how.trigger.clone());
    if dry_run {
        return Recorded { result: backup(&mut rec), record: None };
    }
    how.interrupt.preparing();
    let watch = {
        let (g, start) = (g.clone(), rec.started().clone());
        how.interrupt.watch(move |sig| stop_now(&g, &start, sig, stopped_early))
    };
    let result = backup(&mut rec);
    how.interrupt.written();
    drop(watch);
    let stopped = how.interrupt.signal();
    // A signal while the saved backup was finishing up (retention, output): the snapshot stands.
    let result = match (result, stopped) {
        (Ok(_), Some(sig)) => Err(interrupted_error(sig, 0, rec.snapshot_id())),
        (r, _) => r,
    };
    let exit_code = match &result {
        Ok(c) => *c,
        Err(e) => crate::ui::exit_code(e),
    };
    let error = match &result {
        Err(e) => Some(crate::ui::error_line(e)),
        Ok(3) => rec.unreadable().map(|n| format!("{n} files could not be read")),
        Ok(_) => None,
    };
    let (config, repo) = ending_context(g);
    let log = rec.started().log();
    let f = rec.finish(Ending { exit_code, error, config: &config, repo, stopped: stopped.is_some() });
    if let Some(r) = &f.record {
        report_record(g, r, f.log_error, &log);
    }
    if let Some(pw) = f.prune_with {
        let started =
            std::env::current_exe().and_then(|exe| retention::start_prune(&exe, &prune_flags(g), &pw, &clawback_dir()));
        if let Err(e) = started {
            if !g.quiet {
                eprintln!("clawback: warning: cannot start prune after the backup: {e}");
            }
        }
    }
    Recorded { result, record: f.record }
}

/// The global flags a detached prune needs to reach the same repository the same way (the
/// password goes through a pipe, not a flag).
fn prune_flags(g: &GlobalArgs) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let mut pair = |k: &str, val: OsString| {
        v.push(k.into());
        v.push(val);
    };
    if let Some(r) = &g.repo {
        pair("--repo", r.into());
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

/// Records the repository's size after a backup or prune in the size log beside the run log
/// (the web console's size plot). Only where clawback's folder exists (a prune on a machine that
/// never backed up creates nothing); a failure costs the plot one point and nothing else, so it
/// is not reported. A backup passes the bytes it `stored`: while the log has a recent listed point,
/// they are added to the last one instead of listing the repository (see `sizelog`).
pub fn record_size(
    dir: &std::path::Path,
    repo: &clawback_engine::repo::Repository,
    event: clawback_engine::run::sizelog::SizeEvent,
    snapshot_id: Option<String>,
    stored: Option<u64>,
) {
    use clawback_engine::run::sizelog::{SizeLog, SizePoint};
    if !dir.is_dir() {
        return;
    }
    let (log, location) = (SizeLog::in_dir(dir), strip_credentials(&repo.backend().location()));
    let now = chrono::Utc::now();
    let (bytes, listed) = match stored.and_then(|n| log.added_to_last(&location, n, now)) {
        Some(b) => (b, false),
        None => match repo.stored_bytes() {
            Ok(b) => (b, true),
            Err(_) => return,
        },
    };
    let p = SizePoint { time: now, bytes, listed, event, repo: location, snapshot_id };
    let _ = SizeLog::in_dir(dir).append(&p);
}
