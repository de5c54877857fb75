//! Recording backup runs: `clawback backup` is wrapped by [`record`], which appends one line to the
//! run log (see `clawback_engine::run::runlog`) whatever the outcome, sends the notifications the config
//! asks for, turns Ctrl-C (SIGINT, SIGTERM) into one line saying what was and was not committed,
//! and, once the result is final, starts the prune retention asked for (detached: the backup never
//! waits for it). The backup reports its counters through [`backup_done`], which also compares
//! them with the parent snapshot and the recent runs of the same group and returns the anomalies.

use crate::context;
use crate::GlobalArgs;
use anyhow::Result;
use chrono::{DateTime, Utc};
use clawback_engine::config::BackupConfig;
use clawback_engine::format::snapshot::{Snapshot, Summary};
use clawback_engine::openclaw::Env;
use clawback_engine::progress::Progress;
use clawback_engine::repo::Secret;
use clawback_engine::run::anomaly::{self, Anomaly, Thresholds};
use clawback_engine::run::runlog::{strip_credentials, RetentionOutcome, RunLog, RunRecord, RunStatus};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set by the daemon (and the installed systemd unit or crontab line) for the runs it starts.
pub const TRIGGER_ENV: &str = "CLAWBACK_TRIGGER";

/// Set by the daemon for its backup children: the daemon prunes after the child, so the child
/// starts no prune of its own.
pub const DAEMON_PRUNES_ENV: &str = "CLAWBACK_DAEMON_PRUNES";

/// What the backup reported before returning.
#[derive(Default)]
struct Done {
    summary: Summary,
    snapshot_id: Option<String>,
    anomalies: Vec<Anomaly>,
    unreadable: usize,
    paths: Vec<String>,
    parent_id: Option<String>,
    content_changed: u64,
    forced: bool,
    retention: Option<RetentionOutcome>,
}

static DONE: Mutex<Option<Done>> = Mutex::new(None);
static STARTED: Mutex<Option<(Instant, DateTime<Utc>)>> = Mutex::new(None);
/// The password a prune started after the backup gets (through a pipe, never the environment).
static PRUNE: Mutex<Option<Secret>> = Mutex::new(None);

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

/// Where a prune started after a backup writes its output.
pub fn prune_log() -> PathBuf {
    clawback_dir().join("prune.log")
}

// ---- Ctrl-C -------------------------------------------------------------------------------

/// The signal that interrupted the run (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Where the run is, for what an interruption means.
enum Phase {
    /// Nothing stored yet: an interruption exits at once.
    Preparing,
    /// The engine is writing: it is asked to stop and winds down, keeping what it finished.
    Writing(Arc<Progress>),
    /// The snapshot is saved (or the backup failed): the run finishes and reports.
    After,
}

static PHASE: Mutex<Phase> = Mutex::new(Phase::Preparing);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// The signal that interrupted this run, if any.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGKILL => "SIGKILL",
        _ => "a signal",
    }
}

/// SIGINT and SIGTERM set [`SIGNAL`]; a second one ends the process at once (SA_RESETHAND).
fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The engine is about to write: an interruption from now on asks it to stop.
pub fn writing(progress: &Arc<Progress>) {
    *PHASE.lock().unwrap() = Phase::Writing(progress.clone());
    if interrupted().is_some() {
        progress.stop.store(true, Ordering::SeqCst);
    }
}

/// The engine returned.
pub fn written() {
    *PHASE.lock().unwrap() = Phase::After;
}

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

/// Watches for a signal: before anything is stored the run ends at once (recorded, exit 130);
/// while the engine writes, it is asked to stop.
fn watch_interrupts(g: GlobalArgs) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(25));
        let Some(sig) = interrupted() else { continue };
        let preparing = match &*PHASE.lock().unwrap() {
            Phase::Preparing => true,
            Phase::Writing(p) => {
                p.stop.store(true, Ordering::SeqCst);
                false
            }
            Phase::After => false,
        };
        if preparing {
            let e = interrupted_error(sig, 0, None);
            let code = crate::ui::report_error(&e);
            write_record(&g, code, Some(crate::ui::error_line(&e)), None);
            std::process::exit(code);
        }
        std::thread::sleep(Duration::from_millis(100));
    });
}

// ---- the backup's report -----------------------------------------------------------------

/// The snapshot a backup wrote and its parent, as anomaly detection and retention need them.
pub struct Written<'a> {
    pub snapshot: &'a Snapshot,
    pub parent: Option<&'a Snapshot>,
    pub forced: bool,
}

/// Called by the backup once it has its result: remembers the counters for the run log, and
/// returns the anomalies against the parent and the recent runs of the same group (also printed
/// as warnings on stderr).
pub fn backup_done(g: &GlobalArgs, r: &clawback_engine::commands::backup::BackupResult, w: &Written) -> Vec<Anomaly> {
    let duration = STARTED
        .lock()
        .unwrap()
        .map(|(t, _)| t.elapsed().as_secs_f64())
        .unwrap_or(r.summary.duration_s)
        .max(r.summary.duration_s);
    let mut paths = w.snapshot.paths.clone();
    paths.sort();
    let host = w.snapshot.hostname.as_str();
    // Like with like: a parent of other paths (`--parent`) is no baseline.
    let parent = w.parent.filter(|p| {
        let mut pp = p.paths.clone();
        pp.sort();
        pp == paths && p.hostname == host
    });
    let anomalies = if r.snapshot_id.is_some() {
        let t = Thresholds::default();
        let history = run_log().recent_successes(50).unwrap_or_default();
        let run = anomaly::Run {
            summary: &r.summary,
            content_changed: r.files_content_changed,
            duration_s: duration,
            forced: w.forced,
            unreadable: r.errors.len() as u64,
            host,
            paths: &paths,
            parent: parent.map(|p| &p.summary),
        };
        anomaly::detect(&run, &history, &t)
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
        paths,
        parent_id: r.parent_id.map(|i| i.to_hex()),
        content_changed: r.files_content_changed,
        forced: w.forced,
        retention: None,
    });
    anomalies
}

/// Called by the backup after its retention: for the run log, and (with a password) the prune
/// to start once the result is final.
pub fn retention_done(outcome: &RetentionOutcome, prune_with: Option<Secret>) {
    if let Some(d) = DONE.lock().unwrap().as_mut() {
        d.retention = Some(outcome.clone());
    }
    *PRUNE.lock().unwrap() = prune_with;
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

/// Runs `backup` and records it: one run-log line and the notifications, then the prune its
/// retention asked for. Dry runs are not recorded. The backup's own result is returned unchanged:
/// neither the log, a notifier nor prune can turn a good backup into a failed one.
pub fn record(g: &GlobalArgs, dry_run: bool, backup: impl FnOnce() -> Result<i32>) -> Result<i32> {
    *STARTED.lock().unwrap() = Some((Instant::now(), Utc::now()));
    if !dry_run {
        catch_interrupts();
        watch_interrupts(g.clone());
    }
    let result = backup();
    if dry_run {
        return result;
    }
    written();
    // A signal while the saved backup was finishing up (retention, output): the snapshot stands.
    let result = match (result, interrupted()) {
        (Ok(_), Some(sig)) => {
            let id = DONE.lock().unwrap().as_ref().and_then(|d| d.snapshot_id.clone());
            Err(interrupted_error(sig, 0, id.as_deref()))
        }
        (r, _) => r,
    };
    let exit_code = match &result {
        Ok(c) => *c,
        Err(e) => crate::ui::exit_code(e),
    };
    let error = match &result {
        Err(e) => Some(crate::ui::error_line(e)),
        Ok(3) => DONE.lock().unwrap().as_ref().map(|d| format!("{} files could not be read", d.unreadable)),
        Ok(_) => None,
    };
    // A usage error (exit 2) is a wrong command, not a failed backup: it creates no run log, so a
    // first try on a machine without OpenClaw leaves nothing behind.
    if exit_code != 2 || run_log().path().exists() {
        write_record(g, exit_code, error, DONE.lock().unwrap().take());
    }
    // Not after a Ctrl-C: the user wants clawback to stop, not to start more work.
    if let Some(pw) = PRUNE.lock().unwrap().take().filter(|_| interrupted().is_none()) {
        if let Err(e) = start_prune(g, &pw) {
            if !g.quiet {
                eprintln!("clawback: warning: cannot start prune after the backup: {}", crate::ui::error_line(&e));
            }
        }
    }
    result
}

/// Appends the run's line to the run log and sends the notifications.
fn write_record(g: &GlobalArgs, exit_code: i32, error: Option<String>, done: Option<Done>) {
    let (start_instant, start) = STARTED.lock().unwrap().unwrap_or((Instant::now(), Utc::now()));
    let end = Utc::now();
    let env = Env::from_process();
    let config = quiet_config(g, &env);
    let d = done.unwrap_or_default();
    let ran = d.snapshot_id.is_some() || d.summary != Summary::default();
    let mut rec = RunRecord {
        start,
        end,
        status: RunStatus::from_exit_code(exit_code),
        exit_code,
        duration_s: start_instant.elapsed().as_secs_f64(),
        counters: ran.then(|| d.summary.clone()),
        snapshot_id: d.snapshot_id,
        error,
        anomalies: d.anomalies,
        notify_errors: Vec::new(),
        host: clawback_engine::repo::hostname(),
        repo: repo_location(g, &env, &config),
        trigger: std::env::var(TRIGGER_ENV).ok().filter(|t| !t.is_empty()),
        pid: std::process::id(),
        paths: d.paths,
        parent_id: d.parent_id,
        files_content_changed: ran.then_some(d.content_changed),
        forced: d.forced,
        retention: d.retention,
    };
    rec.notify_errors = clawback_engine::run::notify::notify(&config, &rec);
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
}

/// Starts `clawback prune` in its own process group (a Ctrl-C at the terminal does not reach it)
/// with its output appended to [`prune_log`], and does not wait for it. The password goes through
/// a pipe (`--password-file /dev/stdin`), so a password typed at the prompt works too.
fn start_prune(g: &GlobalArgs, pw: &Secret) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let path = prune_log();
    let mut log = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
    writeln!(log, "--- {} prune started after a backup (pid {})", Utc::now().to_rfc3339(), std::process::id())?;
    let mut child = std::process::Command::new(exe)
        .args(crate::commands::daemon::global_flags(g, false))
        .args(["--password-file", "/dev/stdin", "prune", "--json"])
        .env(TRIGGER_ENV, "retention")
        .stdin(std::process::Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&pw.0)?;
    }
    Ok(())
}
