//! Hooks: the config's `hooks.before` and `hooks.after` shell commands, run around each backup.
//!
//! Each command runs with `sh -c` in its own process group, with a timeout (`hooks.timeout`
//! seconds, default [`DEFAULT_TIMEOUT_S`]); at the timeout the whole group gets SIGTERM, then
//! SIGKILL after [`KILL_GRACE`]. A failing `before` hook stops the backup unless
//! `hooks.abortOnFailure` is false. `after` hooks all run, whatever the backup's outcome, and learn
//! it from `CLAWBACK_STATUS` (ok, failed, partial), `CLAWBACK_SNAPSHOT_ID` and
//! `CLAWBACK_EXIT_CODE`. Where their output goes is the caller's choice (the CLI sends it to
//! stderr, so `--json` output stays clean).

use crate::config::HooksConfig;
use crate::error::{Error, Result};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds a hook may run when `hooks.timeout` is not set.
pub const DEFAULT_TIMEOUT_S: u64 = 300;
/// How long a timed-out hook has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// Which hooks: before or after the backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// How a backup ended, told to the `after` hooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `ok`, `failed` or `partial` (some files could not be read; the snapshot was written).
    pub status: &'static str,
    pub snapshot_id: Option<String>,
    pub exit_code: i32,
}

impl Outcome {
    /// The outcome for a backup's exit code: 0 ok, 3 partial, anything else failed.
    pub fn from_exit(exit_code: i32, snapshot_id: Option<String>) -> Outcome {
        let status = match exit_code {
            0 => "ok",
            3 => "partial",
            _ => "failed",
        };
        Outcome { status, snapshot_id, exit_code }
    }
}

/// The hook timeout from the config.
pub fn timeout(cfg: &HooksConfig) -> Duration {
    Duration::from_secs(cfg.timeout.map(u64::from).unwrap_or(DEFAULT_TIMEOUT_S).max(1))
}

/// Runs one hook command. `out` gives the Stdio for its stdout and stderr (called twice).
/// Fails with a message naming the hook, the command and how it failed.
pub fn run_one(
    phase: Phase,
    cmd: &str,
    env: &[(&str, String)],
    timeout: Duration,
    out: &dyn Fn() -> Stdio,
) -> Result<()> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).stdin(Stdio::null()).stdout(out()).stderr(out()).process_group(0);
    c.env("CLAWBACK_HOOK", phase.name());
    for (k, v) in env {
        c.env(k, v);
    }
    let fail = |why: String| Error::Other(format!("{} hook {cmd:?} {why}", phase.name()));
    let mut child = c.spawn().map_err(|e| fail(format!("could not be started: {e}")))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| fail(format!("could not be waited for: {e}")))? {
            break s;
        }
        if start.elapsed() >= timeout {
            let pgid = child.id() as i32;
            // SAFETY: kill(2) on the hook's own process group; no memory is involved.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let grace = Instant::now();
            while grace.elapsed() < KILL_GRACE {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as above; stragglers in the group that ignored SIGTERM.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return Err(fail(format!(
                "did not finish within {}s and was killed (raise hooks.timeout if it needs longer)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    Err(fail(match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("failed ({status})"),
    }))
}

/// Runs the `before` hooks in order, stopping at the first that fails (its error is returned,
/// whatever `abortOnFailure` says: the caller decides whether the backup goes on).
pub fn run_before(cfg: &HooksConfig, out: &dyn Fn() -> Stdio) -> Result<()> {
    let t = timeout(cfg);
    for cmd in &cfg.before {
        run_one(Phase::Before, cmd, &[], t, out)?;
    }
    Ok(())
}

/// Whether a failing `before` hook stops the backup (`hooks.abortOnFailure`, default true).
pub fn abort_on_failure(cfg: &HooksConfig) -> bool {
    cfg.abort_on_failure.unwrap_or(true)
}

/// What the `before` hooks decided about the backup.
#[derive(Debug)]
pub enum Before {
    /// They all succeeded (or there are none): back up.
    Go,
    /// One failed but `hooks.abortOnFailure` is false: back up anyway; the warning to show.
    GoAnyway(String),
    /// One failed and stops the backup: the error the run ends with, and the failures of the
    /// `after` hooks, which were run with a failed outcome.
    Abort { error: Error, after: Vec<Error> },
}

/// Runs the `before` hooks and decides whether the backup runs (see [`Before`]).
pub fn before(cfg: &HooksConfig, out: &dyn Fn() -> Stdio) -> Before {
    let Err(e) = run_before(cfg, out) else { return Before::Go };
    if !abort_on_failure(cfg) {
        return Before::GoAnyway(format!("{e}; backing up anyway (hooks.abortOnFailure is false)"));
    }
    let after = run_after(cfg, &Outcome::from_exit(1, None), out);
    let error = Error::Other(format!(
        "{e}; the backup was not run (fix the hook, or set hooks.abortOnFailure to false to back up anyway)"
    ));
    Before::Abort { error, after }
}

/// Runs every `after` hook in order with the outcome in the environment; returns the failures
/// (a failing after hook never changes the backup's outcome).
pub fn run_after(cfg: &HooksConfig, outcome: &Outcome, out: &dyn Fn() -> Stdio) -> Vec<Error> {
    let t = timeout(cfg);
    let env = [
        ("CLAWBACK_STATUS", outcome.status.to_string()),
        ("CLAWBACK_SNAPSHOT_ID", outcome.snapshot_id.clone().unwrap_or_default()),
        ("CLAWBACK_EXIT_CODE", outcome.exit_code.to_string()),
    ];
    cfg.after.iter().filter_map(|cmd| run_one(Phase::After, cmd, &env, t, out).err()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null() -> Stdio {
        Stdio::null()
    }

    #[test]
    fn ok_failure_and_timeout() {
        let t = Duration::from_secs(5);
        run_one(Phase::Before, "true", &[], t, &null).unwrap();
        let e = run_one(Phase::Before, "exit 4", &[], t, &null).unwrap_err().to_string();
        assert!(e.contains("before hook \"exit 4\" exited with status 4"), "{e}");
        let start = Instant::now();
        let e = run_one(Phase::After, "sleep 30 & sleep 30", &[], Duration::from_secs(1), &null).unwrap_err();
        assert!(e.to_string().contains("did not finish within 1s"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_failing_before_hook_stops_the_backup_unless_told_not_to() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("after");
        let mut cfg = HooksConfig {
            before: vec!["exit 2".into()],
            after: vec![format!("echo $CLAWBACK_STATUS >> {}", f.display()), "exit 1".into()],
            ..Default::default()
        };
        match before(&cfg, &null) {
            Before::Abort { error, after } => {
                assert!(error.to_string().contains("the backup was not run"), "{error}");
                assert_eq!(after.len(), 1, "the failing after hook is reported");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "failed\n", "after hooks learn the backup failed");
        cfg.abort_on_failure = Some(false);
        assert!(matches!(before(&cfg, &null), Before::GoAnyway(w) if w.contains("backing up anyway")));
        cfg.before = vec!["true".into()];
        assert!(matches!(before(&cfg, &null), Before::Go));
    }

    #[test]
    fn after_hooks_see_the_outcome_and_all_run() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("log");
        let cfg = HooksConfig {
            after: vec![
                format!(
                    "echo \"$CLAWBACK_HOOK $CLAWBACK_STATUS $CLAWBACK_SNAPSHOT_ID $CLAWBACK_EXIT_CODE\" >> {}",
                    f.display()
                ),
                "exit 1".into(),
                format!("echo second >> {}", f.display()),
            ],
            ..Default::default()
        };
        let errs = run_after(&cfg, &Outcome::from_exit(3, Some("abcd".into())), &null);
        assert_eq!(errs.len(), 1);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "after partial abcd 3\nsecond\n");
    }
}
