//! Retention after a backup: the config's policy applied to the new snapshot's group (same host,
//! same paths), and whether prune follows: at most once per `retention.pruneEvery` and only when
//! something was forgotten since the last one (one state file for backups and the daemon), either
//! by the daemon after the run or as a detached `clawback prune` started once the run is recorded.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::commands::forget::{self, Policy};
use crate::config::RetentionConfig;
use crate::error::Error;
use crate::format::id::SnapshotId;
use crate::repo::{Repository, Secret};
use crate::run::planner::DaemonState;
use crate::run::runlog::RetentionOutcome;

/// What retention after a backup did.
#[derive(Default)]
pub struct RetentionStep {
    /// `None` when no policy is set.
    pub outcome: Option<RetentionOutcome>,
    /// The password for the prune to start once the run is recorded, when one is due.
    pub prune_with: Option<Secret>,
    /// Warnings for the caller to show (retention failed, the state could not be saved).
    pub warnings: Vec<String>,
}

/// Who prunes after this backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pruner {
    /// This run starts a detached prune when one is due.
    Backup,
    /// The daemon prunes after the run when due: the backup leaves it alone.
    Daemon,
}

/// One line for an error and the causes it does not already say.
fn one_line(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !msg.contains(&c_text) {
            msg = format!("{msg}: {c_text}");
        }
        cause = c.source();
    }
    msg.replace('\n', " ")
}

/// Applies `rc` to the group of the new snapshot `id`, and decides about prune (see the module
/// comment). `dir` is clawback's folder (the prune state); `password` is asked only when a prune
/// is to start. A failure is reported in the outcome and as a warning: the backup succeeded.
pub fn after_backup(
    repo: &Repository,
    rc: &RetentionConfig,
    id: &SnapshotId,
    dir: &Path,
    pruner: Pruner,
    now: DateTime<Utc>,
    password: impl FnOnce() -> Result<Secret, String>,
) -> RetentionStep {
    let mut step = RetentionStep::default();
    if !rc.is_set() {
        return step;
    }
    let mut out = RetentionOutcome::default();
    let applied = Policy::from_config(rc).and_then(|(policy, _)| {
        let Some(policy) = policy else { return Ok(None) };
        let snaps = repo.snapshots()?;
        let plan = crate::commands::retention::plan_after_backup(&snaps, id, &policy, now, &chrono::Local);
        let removed = forget::apply(repo, &plan)?;
        Ok(Some((plan.keep().len(), removed)))
    });
    match applied {
        Ok(Some((kept, removed))) => {
            out.kept = kept;
            out.removed = removed.iter().map(|i| i.to_hex()).collect();
        }
        Ok(None) => return step,
        Err(e) => {
            let line = one_line(&e);
            step.warnings.push(format!("retention after the backup failed: {line}; the snapshot is saved"));
            out.error = Some(line);
            step.outcome = Some(out);
            return step;
        }
    }
    if pruner == Pruner::Daemon {
        out.prune = Some("daemon".into());
        step.outcome = Some(out);
        return step;
    }
    let mut st = DaemonState::load(dir);
    st.forgotten += out.removed.len() as u64;
    let every = rc.prune_every();
    if st.forgotten > 0 && st.prune_due(now, every) {
        match password() {
            Ok(pw) => {
                st.last_prune = Some(now);
                st.last_prune_by = Some("backup".into());
                st.forgotten = 0;
                out.prune = Some("started".into());
                step.prune_with = Some(pw);
            }
            Err(e) => out.error = Some(format!("prune not started: {e}")),
        }
    } else if st.forgotten > 0 {
        out.prune = Some("not_due".into());
        out.next_prune = st.next_prune(every);
    }
    if let Err(e) = st.save(dir) {
        step.warnings.push(format!("cannot save {}: {e}", DaemonState::path(dir).display()));
    }
    step.outcome = Some(out);
    step
}

/// Where a prune started after a backup writes its output.
pub fn prune_log(dir: &Path) -> PathBuf {
    dir.join("prune.log")
}

/// Starts `program args... --password-file /dev/stdin prune --json` in its own process group (a
/// Ctrl-C at the terminal does not reach it) with its output appended to [`prune_log`], and does
/// not wait for it. The password goes through a pipe, so one typed at a prompt works too.
pub fn start_prune(program: &Path, args: &[std::ffi::OsString], pw: &Secret, dir: &Path) -> std::io::Result<()> {
    let path = prune_log(dir);
    let mut log = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
    writeln!(log, "--- {} prune started after a backup (pid {})", Utc::now().to_rfc3339(), std::process::id())?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .args(["--password-file", "/dev/stdin", "prune", "--json"])
        .env(crate::run::runlog::TRIGGER_ENV, "retention")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::commands::backup::{backup, BackupOptions};
    use crate::progress::Progress;
    use crate::repo::{CacheOptions, InitOptions};
    use std::sync::Arc;
    use std::time::Duration;

    /// A scratch repository with three snapshots of one folder, an hour apart; the newest id.
    fn three_snapshots(t: &Path) -> (Repository, SnapshotId) {
        let src = t.join("src");
        std::fs::create_dir_all(&src).unwrap();
        let be: Arc<dyn crate::backend::Backend> = Arc::new(LocalBackend::new(t.join("repo")));
        let pw = Secret(b"pw".to_vec());
        let mut opts = InitOptions::default();
        opts.kdf.m_cost = 1024;
        opts.kdf.t_cost = 1;
        Repository::init(be.clone(), &pw, &opts).unwrap();
        let repo = Repository::open(be, &pw, &CacheOptions { dir: None, disabled: true }).unwrap();
        let mut last = None;
        for h in 0..3 {
            std::fs::write(src.join("f"), format!("version {h}")).unwrap();
            let time = Some(Utc::now() - chrono::Duration::hours(3 - h));
            let bo = BackupOptions { paths: vec![src.clone()], time, ..Default::default() };
            last = backup(&repo, &bo, &Progress::default()).unwrap().snapshot_id;
        }
        (repo, last.unwrap())
    }

    #[test]
    fn retention_forgets_and_starts_prune_at_most_once_per_period() {
        let t = tempfile::tempdir().unwrap();
        let (repo, id) = three_snapshots(t.path());
        let dir = t.path().join("clawback");
        let rc = RetentionConfig { keep_last: Some(2), ..Default::default() };
        let now = Utc::now();
        let step = after_backup(&repo, &rc, &id, &dir, Pruner::Backup, now, || Ok(Secret(b"pw".to_vec())));
        let out = step.outcome.unwrap();
        assert_eq!((out.kept, out.removed.len(), out.prune.as_deref()), (2, 1, Some("started")));
        assert!(step.prune_with.is_some() && step.warnings.is_empty());
        assert_eq!(DaemonState::load(&dir).last_prune_by.as_deref(), Some("backup"));
        assert_eq!(repo.snapshots().unwrap().len(), 2);

        // Nothing forgotten since: no prune considered. Something forgotten, but pruned an hour ago:
        // not due, and when it is.
        let rc1 = RetentionConfig { keep_last: Some(1), ..Default::default() };
        let later = now + chrono::Duration::hours(1);
        let no_pw = || -> Result<Secret, String> { panic!("no password is asked when no prune starts") };
        let step = after_backup(&repo, &rc1, &id, &dir, Pruner::Backup, later, no_pw);
        let out = step.outcome.unwrap();
        assert_eq!((out.removed.len(), out.prune.as_deref()), (1, Some("not_due")));
        assert_eq!(out.next_prune, Some(now + chrono::Duration::days(1)));
        assert_eq!(DaemonState::load(&dir).forgotten, 1);

        // The daemon prunes itself; no policy: nothing happens.
        let step = after_backup(&repo, &rc1, &id, &dir, Pruner::Daemon, later, no_pw);
        assert_eq!(step.outcome.unwrap().prune.as_deref(), Some("daemon"));
        let none = after_backup(&repo, &RetentionConfig::default(), &id, &dir, Pruner::Backup, later, no_pw);
        assert!(none.outcome.is_none());
    }

    #[test]
    fn without_the_password_prune_is_not_started_and_says_why() {
        let t = tempfile::tempdir().unwrap();
        let (repo, id) = three_snapshots(t.path());
        let rc = RetentionConfig { keep_last: Some(1), ..Default::default() };
        let dir = t.path().join("clawback");
        let step = after_backup(&repo, &rc, &id, &dir, Pruner::Backup, Utc::now(), || Err("no password given".into()));
        let out = step.outcome.unwrap();
        assert_eq!(out.error.as_deref(), Some("prune not started: no password given"));
        assert!(step.prune_with.is_none() && out.prune.is_none());
    }

    #[test]
    fn a_detached_prune_gets_the_password_on_stdin_and_logs() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("got");
        // A stand-in program: the password it reads and the arguments it got.
        let prog = t.path().join("fake");
        // Written by a child `install`, never through a descriptor of this process that a test thread
        // forking at that moment could inherit (exec would then fail with "Text file busy").
        let draft = t.path().join("fake.sh");
        std::fs::write(&draft, format!("#!/bin/sh\necho \"$@\" > {0}; cat >> {0}\n", out.display())).unwrap();
        assert!(std::process::Command::new("install").arg("-m755").arg(&draft).arg(&prog).status().unwrap().success());
        start_prune(&prog, &["--repo".into(), "/r".into()], &Secret(b"s3cret".to_vec()), t.path()).unwrap();
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&out).is_ok_and(|s| s.contains("s3cret")) {
            assert!(start.elapsed() < Duration::from_secs(10), "the prune did not get its password");
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.starts_with("--repo /r --password-file /dev/stdin prune --json"), "{got}");
        assert!(std::fs::read_to_string(prune_log(t.path())).unwrap().contains("prune started after a backup"));
    }
}
