//! The recorded backup, for the CLI, the daemon and the web console alike: a [`Recording`] starts
//! the clock, takes the backup's report (checking it for anomalies against its parent and the run
//! log), keeps what retention did, and [`Recording::finish`] turns the outcome into one run-log
//! record, sends the notifications and appends it. Nothing prints: each step returns what happened.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::commands::backup::BackupResult;
use crate::config::BackupConfig;
use crate::error::Error;
use crate::format::snapshot::{Snapshot, Summary};
use crate::repo::Secret;
use crate::run::anomaly::{self, Anomaly, Thresholds};
use crate::run::retention::RetentionStep;
use crate::run::runlog::{RetentionOutcome, RunLog, RunRecord, RunStatus};

pub use crate::run::runlog::TRIGGER_ENV;

/// Successful runs anomaly detection reads from the run log.
const HISTORY: usize = 50;

/// When and for whom a run started: what every record of it says, even one written by a watcher
/// thread when the run is stopped before it stored anything.
#[derive(Clone, Debug)]
pub struct Start {
    /// clawback's own folder (`<state dir>/clawback`): run log and daemon state.
    pub dir: PathBuf,
    /// What started the run ("daemon", "systemd", ...); `None` for a backup run by hand.
    pub trigger: Option<String>,
    instant: Instant,
    time: DateTime<Utc>,
}

impl Start {
    pub fn now(dir: &Path, trigger: Option<String>) -> Start {
        Start { dir: dir.to_path_buf(), trigger, instant: Instant::now(), time: Utc::now() }
    }

    pub fn log(&self) -> RunLog {
        RunLog::in_dir(&self.dir)
    }

    /// The run's record: `report` is what the backup reported, if it got that far; `repo` the
    /// repository location without credentials.
    pub fn record(
        &self,
        exit_code: i32,
        error: Option<String>,
        report: Option<Report>,
        repo: Option<String>,
    ) -> RunRecord {
        let d = report.unwrap_or_default();
        let ran = d.snapshot_id.is_some() || d.summary != Summary::default();
        RunRecord {
            start: self.time,
            end: Utc::now(),
            status: RunStatus::from_exit_code(exit_code),
            exit_code,
            duration_s: self.instant.elapsed().as_secs_f64(),
            counters: ran.then(|| d.summary.clone()),
            snapshot_id: d.snapshot_id,
            error,
            anomalies: d.anomalies,
            notify_errors: Vec::new(),
            host: crate::repo::hostname(),
            repo,
            trigger: self.trigger.clone(),
            pid: std::process::id(),
            paths: d.paths,
            parent_id: d.parent_id,
            files_content_changed: ran.then_some(d.content_changed),
            forced: d.forced,
            retention: d.retention,
        }
    }
}

/// What the backup reported, for its record.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub summary: Summary,
    pub snapshot_id: Option<String>,
    pub anomalies: Vec<Anomaly>,
    pub unreadable: usize,
    /// The snapshot's paths, sorted.
    pub paths: Vec<String>,
    pub parent_id: Option<String>,
    pub content_changed: u64,
    pub forced: bool,
    pub retention: Option<RetentionOutcome>,
}

/// The snapshot a backup wrote and its parent, as anomaly detection needs them.
pub struct Written<'a> {
    pub snapshot: &'a Snapshot,
    pub parent: Option<&'a Snapshot>,
    pub forced: bool,
}

/// A recorded run in progress.
pub struct Recording {
    start: Start,
    report: Option<Report>,
    prune_with: Option<Secret>,
}

/// A finished recording: what was appended to the run log, and what is left to do.
pub struct Finished {
    /// The record as appended (with the notifiers that failed); `None` when the run was not
    /// recorded (a usage error before any run log exists).
    pub record: Option<RunRecord>,
    /// Why the record could not be appended.
    pub log_error: Option<Error>,
    /// The password for the prune retention asked to start, if it did.
    pub prune_with: Option<Secret>,
}

impl Recording {
    pub fn start(dir: &Path, trigger: Option<String>) -> Recording {
        Recording { start: Start::now(dir, trigger), report: None, prune_with: None }
    }

    pub fn started(&self) -> &Start {
        &self.start
    }

    /// The backup returned its result: keeps its counters for the record and returns the anomalies
    /// against the parent and the recent runs of the same group (host and paths).
    pub fn backup_done(&mut self, r: &BackupResult, w: &Written) -> Vec<Anomaly> {
        let duration = self.start.instant.elapsed().as_secs_f64().max(r.summary.duration_s);
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
            let records = self.start.log().recent_successes(HISTORY).unwrap_or_default();
            let history: Vec<_> = records.iter().filter_map(RunRecord::past).collect();
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
            anomaly::detect(&run, &history, &Thresholds::default())
        } else {
            Vec::new()
        };
        self.report = Some(Report {
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

    /// Retention after the backup ran: its outcome goes into the record, and the prune it asks
    /// for starts once the run is recorded.
    pub fn retention_done(&mut self, step: &mut RetentionStep) {
        if let (Some(d), Some(o)) = (self.report.as_mut(), step.outcome.as_ref()) {
            d.retention = Some(o.clone());
        }
        self.prune_with = step.prune_with.take();
    }

    /// The snapshot the backup saved, if it got that far.
    pub fn snapshot_id(&self) -> Option<&str> {
        self.report.as_ref().and_then(|d| d.snapshot_id.as_deref())
    }

    /// Files the backup could not read, once it reported.
    pub fn unreadable(&self) -> Option<usize> {
        self.report.as_ref().map(|d| d.unreadable)
    }

    /// Ends the run: one record in the run log (not for a usage error, exit 2, before any run log
    /// exists: a wrong command on a machine without OpenClaw leaves nothing behind), sent to the
    /// notifiers the config asks for. `stopped`: the run was interrupted, so no prune starts.
    pub fn finish(self, ending: Ending) -> Finished {
        let log = self.start.log();
        let prune_with = self.prune_with.filter(|_| !ending.stopped);
        if ending.exit_code == 2 && !log.path().exists() {
            return Finished { record: None, log_error: None, prune_with };
        }
        let rec = self.start.record(ending.exit_code, ending.error, self.report, ending.repo);
        let (record, log_error) = append(&log, rec, ending.config);
        Finished { record: Some(record), log_error, prune_with }
    }
}

/// How a run ended, as the caller (which knows its error and exit code) says it.
pub struct Ending<'a> {
    pub exit_code: i32,
    /// The error line of a failed run, or why a partial one is partial.
    pub error: Option<String>,
    /// The config the notifications come from.
    pub config: &'a BackupConfig,
    /// The repository location, credentials stripped.
    pub repo: Option<String>,
    /// Interrupted by a signal.
    pub stopped: bool,
}

/// Sends `rec` to the notifiers `config` asks for, keeping their failures in it, and appends it
/// to `log`; returns the record and why it could not be appended.
pub fn append(log: &RunLog, mut rec: RunRecord, config: &BackupConfig) -> (RunRecord, Option<Error>) {
    rec.notify_errors = crate::run::notify::notify(config, &rec);
    let e = log.append(&rec).err();
    (rec, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::SnapshotId;

    fn snapshot(paths: &[&str]) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "version": 1, "time": "2026-01-01T00:00:00Z", "tree": "00".repeat(32), "paths": paths,
            "hostname": "h", "username": "u", "parent": null, "program_version": "t",
            "summary": Summary::default(),
        }))
        .unwrap()
    }

    fn result(files: u64, changed: u64) -> BackupResult {
        BackupResult {
            snapshot_id: SnapshotId::from_hex(&"07".repeat(32)),
            summary: Summary { files_changed: changed, files_unmodified: files - changed, ..Default::default() },
            files_content_changed: changed,
            ..Default::default()
        }
    }

    #[test]
    fn a_run_is_recorded_with_its_report_anomalies_and_retention() {
        let t = tempfile::tempdir().unwrap();
        let mut rec = Recording::start(t.path(), Some("daemon".into()));
        let parent = Snapshot {
            summary: Summary { files_unmodified: 1000, total_files: 1000, ..Default::default() },
            ..snapshot(&["/w"])
        };
        let snap = snapshot(&["/w"]);
        // Most files got new content: a mass change against the parent of the same group.
        let a = rec.backup_done(&result(1000, 900), &Written { snapshot: &snap, parent: Some(&parent), forced: false });
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(rec.snapshot_id(), Some("07".repeat(32).as_str()));
        let mut step = RetentionStep {
            outcome: Some(RetentionOutcome { kept: 3, ..Default::default() }),
            prune_with: Some(Secret(b"pw".to_vec())),
            warnings: Vec::new(),
        };
        rec.retention_done(&mut step);
        let config = BackupConfig::default();
        let f =
            rec.finish(Ending { exit_code: 0, error: None, config: &config, repo: Some("/r".into()), stopped: false });
        assert!(f.log_error.is_none() && f.prune_with.is_some());
        let got = RunLog::in_dir(t.path()).read_all().unwrap();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!((r.status, r.trigger.as_deref(), r.pid), (RunStatus::Ok, Some("daemon"), std::process::id()));
        assert_eq!(r.anomalies.len(), 1);
        assert_eq!(r.retention.as_ref().unwrap().kept, 3);
        assert_eq!(r.paths, vec!["/w".to_string()]);
        assert_eq!(r.counters.as_ref().unwrap().files_changed, 900);
    }

    #[test]
    fn a_stopped_run_starts_no_prune_and_a_usage_error_leaves_no_log() {
        let t = tempfile::tempdir().unwrap();
        let config = BackupConfig::default();
        let rec = Recording::start(t.path(), None);
        let f =
            rec.finish(Ending { exit_code: 2, error: Some("bad".into()), config: &config, repo: None, stopped: false });
        assert!(f.record.is_none());
        assert!(!RunLog::in_dir(t.path()).path().exists());

        let mut rec = Recording::start(t.path(), None);
        let mut step = RetentionStep { prune_with: Some(Secret(b"pw".to_vec())), ..Default::default() };
        rec.retention_done(&mut step);
        let error = Some("interrupted by SIGINT".to_string());
        let f = rec.finish(Ending { exit_code: 130, error, config: &config, repo: None, stopped: true });
        assert!(f.prune_with.is_none());
        let r = f.record.unwrap();
        assert_eq!((r.status, r.exit_code, r.counters.is_none()), (RunStatus::Failed, 130, true));
        // Once a run log exists, a usage error is recorded too.
        let f = Recording::start(t.path(), None).finish(Ending {
            exit_code: 2,
            error: None,
            config: &config,
            repo: None,
            stopped: false,
        });
        assert!(f.record.is_some());
    }
}
