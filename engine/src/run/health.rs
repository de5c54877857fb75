//! The health rule `clawback status` (and monitors) apply: healthy when the newest snapshot is
//! younger than the allowed age (by default 1.5 × the schedule interval; for cron, the longest gap
//! between two runs; a day without a schedule) and the last run did not fail. The repository's
//! newest snapshot is the truth; the run log stands in when the repository cannot be read.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Schedule;
use crate::run::runlog::{RunRecord, RunStatus};

/// Without a schedule, a backup a day is expected.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// What the repository said about its newest snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Newest {
    /// Read: the newest snapshot's time, if there is one.
    Read(Option<DateTime<Utc>>),
    /// The repository cannot be read.
    Unreadable,
}

/// The verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Healthy,
    Stale,
    Failing,
    NoBackup,
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Stale => "stale",
            State::Failing => "failing",
            State::NoBackup => "no_backup",
            State::Error => "error",
        }
    }
}

/// The health of the backups, with what it was decided from.
#[derive(Debug)]
pub struct Health<'a> {
    pub state: State,
    pub healthy: bool,
    pub stale: bool,
    pub failing: bool,
    /// Runs that failed in a row, counting back from the most recent.
    pub consecutive_failures: usize,
    /// The newest snapshot's time (or, with the repository unreadable, the last good run's end).
    pub last_time: Option<DateTime<Utc>>,
    pub age_s: Option<i64>,
    pub max_age: Duration,
    /// The schedule's interval (for cron, its longest gap), or [`DEFAULT_INTERVAL`].
    pub interval: Duration,
    /// When the next backup is due by the schedule.
    pub next_due: Option<DateTime<Utc>>,
    pub last_run: Option<&'a RunRecord>,
    pub last_success: Option<&'a RunRecord>,
}

/// Applies the rule to the run log's records, the repository's newest snapshot, the schedule and
/// an explicit `max_age` (`--max-age`), at `now`.
pub fn assess<'a>(
    runs: &'a [RunRecord],
    newest: Newest,
    schedule: Option<&Schedule>,
    max_age: Option<Duration>,
    now: DateTime<Utc>,
) -> Health<'a> {
    let interval = schedule.map(|s| s.interval_hint()).unwrap_or(DEFAULT_INTERVAL);
    let max_age = max_age.unwrap_or_else(|| interval.mul_f64(1.5));
    let last_run = runs.iter().max_by_key(|r| r.end);
    let last_success = runs.iter().filter(|r| r.status.succeeded()).max_by_key(|r| r.end);
    let consecutive_failures = {
        let mut sorted: Vec<&RunRecord> = runs.iter().collect();
        sorted.sort_by_key(|r| r.end);
        sorted.iter().rev().take_while(|r| r.status == RunStatus::Failed).count()
    };
    let last_time = match newest {
        Newest::Read(t) => t,
        Newest::Unreadable => last_success.map(|r| r.end),
    };
    let age_s = last_time.map(|t| (now - t).num_seconds().max(0));
    let stale = age_s.is_none_or(|a| a as f64 > max_age.as_secs_f64());
    let failing = consecutive_failures > 0;
    let unreadable = newest == Newest::Unreadable;
    let state = if unreadable {
        State::Error
    } else if last_time.is_none() {
        State::NoBackup
    } else if failing {
        State::Failing
    } else if stale {
        State::Stale
    } else {
        State::Healthy
    };
    let next_due = schedule.map(|sch| match (sch.is_cron(), last_time) {
        (false, Some(t)) => sch.next_after(t).max(now),
        _ => sch.next_after(now),
    });
    Health {
        state,
        healthy: !stale && !failing && !unreadable,
        stale,
        failing,
        consecutive_failures,
        last_time,
        age_s,
        max_age,
        interval,
        next_due,
        last_run,
        last_success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    fn run(end: &str, status: RunStatus) -> RunRecord {
        RunRecord {
            start: t(end),
            end: t(end),
            status,
            exit_code: if status == RunStatus::Failed { 1 } else { 0 },
            duration_s: 1.0,
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
    fn young_snapshot_and_good_last_run_are_healthy_else_stale_or_failing() {
        let now = t("2026-01-02T12:00:00Z");
        let sch = Schedule::parse("2h").unwrap();
        let runs = vec![run("2026-01-02T11:00:00Z", RunStatus::Ok)];
        let h = assess(&runs, Newest::Read(Some(t("2026-01-02T11:00:00Z"))), Some(&sch), None, now);
        assert_eq!((h.state, h.healthy, h.age_s), (State::Healthy, true, Some(3600)));
        assert_eq!(h.max_age, Duration::from_secs(3 * 3600), "1.5 × the interval");
        assert_eq!(h.next_due, Some(t("2026-01-02T13:00:00Z")));
        // Older than 1.5 × 2h.
        let h = assess(&runs, Newest::Read(Some(t("2026-01-02T08:00:00Z"))), Some(&sch), None, now);
        assert_eq!((h.state, h.healthy, h.stale), (State::Stale, false, true));
        assert_eq!(h.next_due, Some(now), "overdue: due now");
        // An explicit --max-age wins.
        let h = assess(
            &runs,
            Newest::Read(Some(t("2026-01-02T08:00:00Z"))),
            Some(&sch),
            Some(Duration::from_secs(5 * 3600)),
            now,
        );
        assert!(h.healthy);
        // The last two runs failed: failing, whatever the age.
        let mut failing = runs.clone();
        failing.push(run("2026-01-02T11:30:00Z", RunStatus::Failed));
        failing.push(run("2026-01-02T11:45:00Z", RunStatus::Failed));
        let h = assess(&failing, Newest::Read(Some(t("2026-01-02T11:00:00Z"))), Some(&sch), None, now);
        assert_eq!((h.state, h.consecutive_failures, h.healthy), (State::Failing, 2, false));
        assert_eq!(h.last_success.unwrap().end, t("2026-01-02T11:00:00Z"));
        assert_eq!(h.last_run.unwrap().end, t("2026-01-02T11:45:00Z"));
    }

    #[test]
    fn no_snapshot_is_no_backup_and_an_unreadable_repository_falls_back_to_the_run_log() {
        let now = t("2026-01-02T12:00:00Z");
        let h = assess(&[], Newest::Read(None), None, None, now);
        assert_eq!((h.state, h.healthy, h.interval), (State::NoBackup, false, DEFAULT_INTERVAL));
        let runs = vec![run("2026-01-02T10:00:00Z", RunStatus::Partial)];
        let h = assess(&runs, Newest::Unreadable, None, None, now);
        assert_eq!((h.state, h.healthy, h.stale), (State::Error, false, false));
        assert_eq!(h.last_time, Some(t("2026-01-02T10:00:00Z")), "the last good run stands in");
    }
}
