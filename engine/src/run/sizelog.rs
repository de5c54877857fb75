//! The size log: one JSON line per measurement of a repository's size, `<state dir>/clawback/
//! sizes.jsonl`, written after each backup and each prune, so the web console can plot what the
//! repository really holds over time (it goes down after a prune; the snapshots' summaries only
//! ever add). Folder 0700, file 0600, rotated to `sizes.jsonl.1` at [`MAX_BYTES`] like the run log.
//!
//! A prune, and a backup with no listed point of its repository in the last [`LISTING_AGE`], list
//! the repository (every object, as `status` does). Other backups add what they stored to the last
//! point: listing every pack after every two-hourly run would make its cost follow the size of the
//! repository (on S3, a request per thousand packs), not what changed. What other hosts stored
//! shows at the next listed point.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Size at which the log is rotated (about 8000 measurements: a year of two-hourly runs with
/// daily prunes).
pub const MAX_BYTES: u64 = 1024 * 1024;

/// A backup lists the repository when its last listed point is older than this.
pub const LISTING_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What was measured after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeEvent {
    Backup,
    Prune,
}

/// One measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizePoint {
    pub time: DateTime<Utc>,
    /// Bytes the repository holds (`Repository::stored_bytes`), or, when not `listed`, the last
    /// point's plus what the backup stored.
    pub bytes: u64,
    /// Whether `bytes` comes from listing the repository (lines before this field were all).
    #[serde(default = "listed_by_default")]
    pub listed: bool,
    pub event: SizeEvent,
    /// The repository location, credentials stripped: a machine may back up to more than one.
    pub repo: String,
    /// The backup's snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

fn listed_by_default() -> bool {
    true
}

/// The size log of one clawback folder.
#[derive(Clone, Debug)]
pub struct SizeLog {
    path: PathBuf,
}

impl SizeLog {
    /// The log in clawback's own folder `dir` (`<state dir>/clawback`).
    pub fn in_dir(dir: &Path) -> SizeLog {
        SizeLog { path: dir.join("sizes.jsonl") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated_path(&self) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(".1");
        PathBuf::from(s)
    }

    /// Appends one point (one `write` on a file opened for appending: concurrent writers do not
    /// interleave), creating the folder and file, rotating first when full.
    pub fn append(&self, p: &SizePoint) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).ctx("create", dir)?;
        }
        if fs::metadata(&self.path).map(|m| m.len() >= MAX_BYTES).unwrap_or(false) {
            fs::rename(&self.path, self.rotated_path()).ctx("rotate", &self.path)?;
        }
        let mut line = serde_json::to_vec(p).map_err(|e| Error::Other(format!("size log record: {e}")))?;
        line.push(b'\n');
        let mut f =
            OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path).ctx("open", &self.path)?;
        f.write_all(&line).ctx("append to", &self.path)
    }

    /// The points of repository `repo`, oldest first (the rotated file, then the current one;
    /// lines that do not parse are skipped).
    pub fn read(&self, repo: &str) -> Result<Vec<SizePoint>> {
        let mut out: Vec<SizePoint> = Vec::new();
        for p in [self.rotated_path(), self.path.clone()] {
            let text = match fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", &p, e)),
            };
            out.extend(
                text.lines().filter_map(|l| serde_json::from_str::<SizePoint>(l).ok()).filter(|p| p.repo == repo),
            );
        }
        out.sort_by_key(|p| p.time);
        Ok(out)
    }

    /// What a backup that stored `stored` bytes into `repo` at `now` can record without listing
    /// the repository: the last point's bytes plus `stored`, while a listed point of `repo` is
    /// younger than [`LISTING_AGE`]. `None`: list it.
    pub fn added_to_last(&self, repo: &str, stored: u64, now: DateTime<Utc>) -> Option<u64> {
        let points = self.read(repo).ok()?;
        let last = points.last()?;
        let listed = points.iter().rev().find(|p| p.listed)?;
        (now - listed.time < LISTING_AGE && listed.time <= now).then(|| last.bytes.saturating_add(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(s: i64, bytes: u64, event: SizeEvent, repo: &str) -> SizePoint {
        SizePoint {
            time: DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap(),
            bytes,
            listed: true,
            event,
            repo: repo.into(),
            snapshot_id: None,
        }
    }

    #[test]
    fn a_backup_adds_to_the_last_point_while_a_listing_is_recent() {
        let dir = tempfile::tempdir().unwrap();
        let log = SizeLog::in_dir(&dir.path().join("clawback"));
        let at = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
        assert_eq!(log.added_to_last("/r", 5, at(0)), None, "no point yet: list");
        log.append(&point(0, 100, SizeEvent::Backup, "/r")).unwrap();
        log.append(&SizePoint { listed: false, ..point(10, 130, SizeEvent::Backup, "/r") }).unwrap();
        log.append(&point(20, 7, SizeEvent::Backup, "/other")).unwrap();
        assert_eq!(log.added_to_last("/r", 5, at(30)), Some(135));
        let day = LISTING_AGE.num_seconds();
        assert_eq!(log.added_to_last("/r", 5, at(day + 1)), None, "the listed point is a day old: list");
        // A line written before `listed` existed was a listing.
        let old = r#"{"time":"2023-11-14T22:13:20Z","bytes":9,"event":"prune","repo":"/q"}"#;
        fs::write(log.path(), format!("{}\n{old}\n", fs::read_to_string(log.path()).unwrap().trim_end())).unwrap();
        assert_eq!(log.added_to_last("/q", 1, at(40)), Some(10));
    }

    #[test]
    fn points_of_one_repository_in_time_order_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = SizeLog::in_dir(&dir.path().join("clawback"));
        log.append(&point(10, 100, SizeEvent::Backup, "/r")).unwrap();
        log.append(&point(5, 50, SizeEvent::Backup, "/other")).unwrap();
        fs::rename(log.path(), log.rotated_path()).unwrap();
        log.append(&point(30, 40, SizeEvent::Prune, "/r")).unwrap();
        log.append(&point(20, 200, SizeEvent::Backup, "/r")).unwrap();
        let got: Vec<_> = log.read("/r").unwrap().iter().map(|p| (p.bytes, p.event)).collect();
        assert_eq!(got, vec![(100, SizeEvent::Backup), (200, SizeEvent::Backup), (40, SizeEvent::Prune)]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
