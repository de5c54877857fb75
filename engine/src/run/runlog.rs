//! The run log: one JSON line per backup run in `<state dir>/clawback/runs.jsonl` (start, end,
//! status, exit code, counters, snapshot id and group, error, anomalies, retention), so `status`,
//! the daemon, anomaly detection and monitors know how recent runs went without opening the
//! repository.
//!
//! The folder is created 0700 and the file 0600. Each record is written with one `write` on a file
//! opened for appending, so concurrent writers do not interleave lines. When the file reaches
//! [`MAX_BYTES`] it becomes `runs.jsonl.1` (the previous `.1` is dropped) before the next append.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::format::snapshot::Summary;
use crate::run::anomaly::{Anomaly, Past};

/// Size at which the log is rotated.
/// Set by the installed systemd unit, crontab line and OpenClaw job: what started the run (the
/// record's `trigger`).
pub const TRIGGER_ENV: &str = "CLAWBACK_TRIGGER";

pub const MAX_BYTES: u64 = 1024 * 1024;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// A snapshot was written and every file was read.
    Ok,
    /// A snapshot was written but some files could not be read (exit 3).
    Partial,
    /// No snapshot was written.
    Failed,
}

impl RunStatus {
    /// The status an exit code of `clawback backup` stands for.
    pub fn from_exit_code(code: i32) -> RunStatus {
        match code {
            0 => RunStatus::Ok,
            3 => RunStatus::Partial,
            _ => RunStatus::Failed,
        }
    }

    /// Ok and partial runs wrote a snapshot.
    pub fn succeeded(self) -> bool {
        matches!(self, RunStatus::Ok | RunStatus::Partial)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// One line of the run log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// RFC 3339, UTC.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: RunStatus,
    pub exit_code: i32,
    pub duration_s: f64,
    /// The backup's counters (absent when the run failed before counting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The error line of a failed run (never a secret: the same line the CLI prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
    /// Notifiers that failed, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_errors: Vec<String>,
    #[serde(default)]
    pub host: String,
    /// The repository location, credentials stripped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// What started the run when known: "daemon", or absent for a direct `clawback backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    pub pid: u32,
    /// The snapshot's paths, sorted: with `host`, its group (what anomalies compare like with like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The parent snapshot; absent on a group's first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Files of the parent whose content changed (`counters.files_changed` also counts re-reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_content_changed: Option<u64>,
    /// Run with `--force` (every file re-read: slower, and no guide to the next run's duration).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// What the retention policy did after the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionOutcome>,
}

impl RunRecord {
    /// This run as anomaly detection's history sees it: only a successful run with counters that
    /// had a parent counts. Older records lack the content counter: their `files_changed` stands in.
    pub fn past(&self) -> Option<Past<'_>> {
        let c = self.counters.as_ref().filter(|_| self.status.succeeded() && self.parent_id.is_some())?;
        Some(Past {
            end: self.end,
            bytes_added: c.bytes_added,
            new_content_files: c.files_new + self.files_content_changed.unwrap_or(c.files_changed),
            duration_s: self.duration_s,
            forced: self.forced,
            host: &self.host,
            paths: &self.paths,
        })
    }
}

/// Retention after a backup: the snapshots of its group the policy forgot, and prune.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionOutcome {
    /// Snapshot ids forgotten.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Snapshots the group keeps.
    #[serde(default)]
    pub kept: usize,
    /// Why retention could not be applied (the backup itself still succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// "started" (a detached prune), "not_due" (pruned less than `pruneEvery` ago), "daemon"
    /// (the daemon prunes after the backup), "interrupted"; absent when no prune was considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<String>,
    /// When prune is next allowed, with "not_due".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_prune: Option<DateTime<Utc>>,
}

/// The run log of one OpenClaw state dir.
#[derive(Clone, Debug)]
pub struct RunLog {
    path: PathBuf,
}

impl RunLog {
    /// The log under `state_dir` (`<state dir>/clawback/runs.jsonl`).
    pub fn for_state_dir(state_dir: &Path) -> RunLog {
        RunLog { path: state_dir.join("clawback").join("runs.jsonl") }
    }

    /// The log in clawback's own folder `dir` (`<state dir>/clawback`).
    pub fn in_dir(dir: &Path) -> RunLog {
        RunLog { path: dir.join("runs.jsonl") }
    }

    /// A log at an explicit path (tests).
    pub fn at(path: PathBuf) -> RunLog {
        RunLog { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotated older half.
    pub fn rotated_path(&self) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(".1");
        PathBuf::from(s)
    }

    /// Appends one record, creating the folder (0700) and file (0600), rotating first when full.
    pub fn append(&self, r: &RunRecord) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).ctx("create", dir)?;
        }
        if fs::metadata(&self.path).map(|m| m.len() >= MAX_BYTES).unwrap_or(false) {
            fs::rename(&self.path, self.rotated_path()).ctx("rotate", &self.path)?;
        }
        let mut line = serde_json::to_vec(r).map_err(|e| Error::Other(format!("run log record: {e}")))?;
        line.push(b'\n');
        let mut f =
            OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path).ctx("open", &self.path)?;
        // A file created by an older version or another umask is tightened.
        if let Ok(m) = f.metadata() {
            if m.permissions().mode() & 0o077 != 0 {
                let _ = fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600));
            }
        }
        f.write_all(&line).ctx("append to", &self.path)?;
        Ok(())
    }

    /// Every readable record, oldest first (the rotated file, then the current one). Lines that do
    /// not parse (a torn write, a future format) are skipped.
    pub fn read_all(&self) -> Result<Vec<RunRecord>> {
        let mut out = Vec::new();
        for p in [self.rotated_path(), self.path.clone()] {
            let text = match fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", &p, e)),
            };
            out.extend(text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()));
        }
        Ok(out)
    }

    /// The `n` most recent records, oldest first.
    pub fn recent(&self, n: usize) -> Result<Vec<RunRecord>> {
        let mut all = self.read_all()?;
        let skip = all.len().saturating_sub(n);
        Ok(all.split_off(skip))
    }

    /// The most recent run, whatever its status (by end time: runs from two processes may
    /// finish out of order).
    pub fn last(&self) -> Result<Option<RunRecord>> {
        Ok(self.read_all()?.into_iter().max_by_key(|r| r.end))
    }

    /// The most recent run that wrote a snapshot (ok or partial).
    pub fn last_success(&self) -> Result<Option<RunRecord>> {
        Ok(self.read_all()?.into_iter().filter(|r| r.status.succeeded()).max_by_key(|r| r.end))
    }

    /// The `n` most recent successful runs, oldest first.
    pub fn recent_successes(&self, n: usize) -> Result<Vec<RunRecord>> {
        let mut ok: Vec<RunRecord> = self.read_all()?.into_iter().filter(|r| r.status.succeeded()).collect();
        let skip = ok.len().saturating_sub(n);
        Ok(ok.split_off(skip))
    }

    /// How many runs failed in a row, counting back from the most recent.
    pub fn consecutive_failures(&self) -> Result<usize> {
        let mut all = self.read_all()?;
        all.sort_by_key(|r| r.end);
        Ok(all.iter().rev().take_while(|r| r.status == RunStatus::Failed).count())
    }
}

/// A repository location without credentials: `user:password@` in a URL and query strings are
/// dropped (an S3 URL never needs them to be recognised).
pub fn strip_credentials(location: &str) -> String {
    let (scheme, rest) = match location.find("://") {
        Some(i) => (&location[..i + 3], &location[i + 3..]),
        None => return location.to_string(),
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let tail = tail.split(['?', '#']).next().unwrap_or("");
    format!("{scheme}{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(end_s: i64, status: RunStatus) -> RunRecord {
        let t = DateTime::from_timestamp(1_700_000_000 + end_s, 0).unwrap();
        RunRecord {
            start: t,
            end: t,
            status,
            exit_code: 0,
            duration_s: 0.0,
            counters: None,
            snapshot_id: None,
            error: None,
            anomalies: Vec::new(),
            notify_errors: Vec::new(),
            host: "h".into(),
            repo: None,
            trigger: None,
            pid: 1,
            paths: Vec::new(),
            parent_id: None,
            files_content_changed: None,
            forced: false,
            retention: None,
        }
    }

    #[test]
    fn append_read_and_rotate() {
        let t = tempfile::tempdir().unwrap();
        let log = RunLog::for_state_dir(t.path());
        assert_eq!(log.last().unwrap(), None);
        log.append(&rec(1, RunStatus::Ok)).unwrap();
        log.append(&rec(2, RunStatus::Failed)).unwrap();
        log.append(&rec(3, RunStatus::Failed)).unwrap();
        let dir_mode = fs::metadata(t.path().join("clawback")).unwrap().permissions().mode() & 0o777;
        let file_mode = fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!((dir_mode, file_mode), (0o700, 0o600));
        assert_eq!(log.last().unwrap().unwrap().status, RunStatus::Failed);
        assert_eq!(log.last_success().unwrap().unwrap().end, rec(1, RunStatus::Ok).end);
        assert_eq!(log.consecutive_failures().unwrap(), 2);
        assert_eq!(log.recent(2).unwrap().len(), 2);
        // A torn line is skipped.
        fs::OpenOptions::new().append(true).open(log.path()).unwrap().write_all(b"{\"start\":\n").unwrap();
        assert_eq!(log.read_all().unwrap().len(), 3);

        let mut big = rec(4, RunStatus::Ok);
        big.error = Some("x".repeat(300 * 1024));
        for _ in 0..4 {
            log.append(&big).unwrap();
        }
        log.append(&rec(9, RunStatus::Partial)).unwrap();
        assert!(log.rotated_path().exists());
        assert!(fs::metadata(log.path()).unwrap().len() < MAX_BYTES);
        assert_eq!(log.last_success().unwrap().unwrap().status, RunStatus::Partial);
    }

    #[test]
    fn only_successful_runs_with_a_parent_are_history() {
        let mut r = rec(1, RunStatus::Ok);
        assert!(r.past().is_none(), "no counters");
        r.counters = Some(Summary { files_new: 2, files_changed: 7, bytes_added: 5, ..Default::default() });
        assert!(r.past().is_none(), "no parent: a group's first run");
        r.parent_id = Some("p".into());
        let p = r.past().unwrap();
        assert_eq!((p.bytes_added, p.new_content_files), (5, 9), "an older record: files_changed stands in");
        r.files_content_changed = Some(1);
        assert_eq!(r.past().unwrap().new_content_files, 3);
        r.status = RunStatus::Failed;
        assert!(r.past().is_none());
    }

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(strip_credentials("s3:https://AKIA:secret@host:9000/b/p?x=1"), "s3:https://host:9000/b/p");
        assert_eq!(strip_credentials("/srv/repo"), "/srv/repo");
        assert_eq!(strip_credentials("s3://bucket/prefix"), "s3://bucket/prefix");
    }
}
