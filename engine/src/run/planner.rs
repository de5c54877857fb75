//! What the scheduler decides, apart from running anything: when the first cycle is due (at once
//! when the last successful run is older than one interval: catching up once after downtime, not
//! once per missed slot), when the next is due after a cycle (due times that passed while a run was
//! still going are skipped, never doubled), the random jitter, whether prune is due (at most once
//! per `retention.pruneEvery`, for the daemon and for the backups that start prune themselves:
//! one state file), and the lock that keeps a second daemon off the same state dir.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::Schedule;
use crate::error::{Error, IoContext, Result};

/// The default jitter: a twentieth of the interval, at most two minutes.
pub fn default_jitter(s: &Schedule) -> Duration {
    (s.interval_hint() / 20).min(Duration::from_secs(120))
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The schedule with its jitter.
#[derive(Clone, Debug)]
pub struct Planner {
    pub schedule: Schedule,
    pub jitter: Duration,
}

impl Planner {
    /// When the first cycle is due, given the end of the last successful run (from the run log).
    pub fn first_due(&self, last_success: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(last) = last_success else {
            return now;
        };
        match self.schedule.previous_at_or_before(now) {
            // Cron: a fire time passed since the last good run.
            Some(prev) if prev > last => now,
            Some(_) => self.schedule.next_after(now),
            // Interval: due one interval after the last good run, at once if that has passed.
            None => {
                let due = last + chrono(self.schedule.interval_hint());
                if due <= now {
                    now
                } else {
                    due
                }
            }
        }
    }

    /// When the cycle after the one that started at `started` is due, and how many due times
    /// passed while it ran (skipped, not made up).
    pub fn next_due(&self, started: DateTime<Utc>, now: DateTime<Utc>) -> (DateTime<Utc>, u32) {
        let mut due = self.schedule.next_after(started);
        let mut skipped = 0u32;
        if self.schedule.is_cron() {
            if due <= now {
                skipped = 1;
                let mut t = due;
                while skipped < 10_000 {
                    t = self.schedule.next_after(t);
                    if t > now {
                        break;
                    }
                    skipped += 1;
                }
                due = t;
            }
        } else {
            let step = chrono(self.schedule.interval_hint());
            if due <= now && step > chrono::Duration::zero() {
                let behind = (now - due).num_milliseconds().max(0) as f64;
                let n = (behind / step.num_milliseconds().max(1) as f64).floor() as i32 + 1;
                skipped = n as u32;
                due += step * n;
            }
        }
        (due, skipped)
    }

    /// A random delay in `[0, jitter]`.
    pub fn draw_jitter(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let ms = self.jitter.as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }
}

/// What scheduled and manual runs remember between runs (`<state dir>/clawback/daemon.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DaemonState {
    /// When the last prune started (by the daemon, or by a backup after its retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune: Option<DateTime<Utc>>,
    /// What started it: "daemon", or "backup" (a detached prune after a backup's retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune_by: Option<String>,
    /// Snapshots backups forgot since then: a backup starts prune only when there is something
    /// to free.
    #[serde(default)]
    pub forgotten: u64,
}

impl DaemonState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("daemon.json")
    }

    /// The saved state in clawback's folder `dir`; a missing or unreadable file is the empty state.
    pub fn load(dir: &Path) -> DaemonState {
        fs::read(Self::path(dir)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Saves atomically (write then rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let p = Self::path(dir);
        let dir = p.parent().unwrap();
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).ctx("create", dir)?;
        let tmp = p.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        fs::write(&tmp, body).ctx("write", &tmp)?;
        fs::rename(&tmp, &p).ctx("rename", &p)?;
        Ok(())
    }

    /// Whether prune may run again: none yet, or the last one started at least `every` ago.
    pub fn prune_due(&self, now: DateTime<Utc>, every: Duration) -> bool {
        self.last_prune.is_none_or(|t| now - t >= chrono(every))
    }

    /// When prune is next due.
    pub fn next_prune(&self, every: Duration) -> Option<DateTime<Utc>> {
        self.last_prune.map(|t| t + chrono(every))
    }
}

/// An exclusive lock on `<clawback dir>/daemon.lock` (flock, released when dropped or when the
/// process dies), holding the owner's pid for the error message.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
    path: PathBuf,
}

impl DaemonLock {
    /// Takes the lock in clawback's folder `dir` (created 0700).
    pub fn acquire(dir: &Path) -> Result<DaemonLock> {
        let dir = dir.to_path_buf();
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).ctx("create", &dir)?;
        let path = dir.join("daemon.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .ctx("open", &path)?;
        // SAFETY: flock on a descriptor this function owns.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.is_empty() { String::new() } else { format!(" (pid {pid})") };
            return Err(Error::Locked(format!(
                "another clawback daemon{who} is running for this OpenClaw state dir (lock {}); stop it first",
                path.display()
            )));
        }
        file.set_len(0).ctx("truncate", &path)?;
        file.rewind().ctx("rewind", &path)?;
        write!(file, "{}", std::process::id()).ctx("write", &path)?;
        Ok(DaemonLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn planner(s: &str) -> Planner {
        Planner { schedule: Schedule::parse(s).unwrap(), jitter: Duration::ZERO }
    }

    #[test]
    fn catch_up_once_after_downtime() {
        let p = planner("2h");
        let now = utc("2026-01-02T10:00:00Z");
        assert_eq!(p.first_due(None, now), now);
        assert_eq!(p.first_due(Some(utc("2026-01-01T10:00:00Z")), now), now);
        assert_eq!(p.first_due(Some(utc("2026-01-02T09:00:00Z")), now), utc("2026-01-02T11:00:00Z"));
        let c = planner("CRON_TZ=UTC 0 */2 * * *");
        assert_eq!(
            c.first_due(Some(utc("2026-01-02T07:30:00Z")), utc("2026-01-02T09:00:00Z")),
            utc("2026-01-02T09:00:00Z")
        );
        assert_eq!(
            c.first_due(Some(utc("2026-01-02T08:01:00Z")), utc("2026-01-02T09:00:00Z")),
            utc("2026-01-02T10:00:00Z")
        );
    }

    #[test]
    fn overrunning_cycles_are_skipped_not_doubled() {
        let p = planner("2h");
        let start = utc("2026-01-02T10:00:00Z");
        assert_eq!(p.next_due(start, utc("2026-01-02T10:05:00Z")), (utc("2026-01-02T12:00:00Z"), 0));
        assert_eq!(p.next_due(start, utc("2026-01-02T15:00:00Z")), (utc("2026-01-02T16:00:00Z"), 2));
        let c = planner("CRON_TZ=UTC 0 * * * *");
        assert_eq!(c.next_due(start, utc("2026-01-02T12:30:00Z")), (utc("2026-01-02T13:00:00Z"), 2));
    }

    #[test]
    fn one_daemon_per_state_dir() {
        let t = tempfile::tempdir().unwrap();
        let l = DaemonLock::acquire(t.path()).unwrap();
        let e = DaemonLock::acquire(t.path()).unwrap_err();
        assert_eq!(e.exit_code(), 12);
        assert!(e.to_string().contains(&std::process::id().to_string()), "{e}");
        drop(l);
        DaemonLock::acquire(t.path()).unwrap();
    }

    #[test]
    fn prune_at_most_once_per_period() {
        let t = tempfile::tempdir().unwrap();
        let now = utc("2026-01-02T10:00:00Z");
        let day = Duration::from_secs(24 * 3600);
        let mut s = DaemonState::load(t.path());
        assert!(s.prune_due(now, day));
        s.last_prune = Some(now);
        s.save(t.path()).unwrap();
        let s = DaemonState::load(t.path());
        assert!(!s.prune_due(utc("2026-01-02T20:00:00Z"), day));
        assert!(s.prune_due(utc("2026-01-03T10:00:00Z"), day));
        assert!(s.prune_due(utc("2026-01-02T22:00:00Z"), Duration::from_secs(12 * 3600)));
        assert_eq!(s.next_prune(day), Some(utc("2026-01-03T10:00:00Z")));
    }
}
