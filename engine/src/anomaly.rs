//! Anomaly warnings: a backup run compared with the recent successful runs in the run log. New
//! data, changed files or duration far above the recent median (by default 10×, and above an
//! absolute floor so small numbers never alarm), or most files changed at once (what ransomware
//! encrypting a workspace looks like), become warnings for the backup output, the run log, `status`
//! and a notification.

use serde::{Deserialize, Serialize};

use crate::runlog::RunRecord;
use crate::snapshot::Summary;

/// When a run counts as anomalous.
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// A value this many times the recent median is flagged.
    pub factor: f64,
    /// Runs needed in the history before anything is flagged (the first backups are all large).
    pub min_history: usize,
    /// Successful runs the median is taken over.
    pub window: usize,
    /// Floors: below these a jump is never flagged.
    pub min_bytes_added: u64,
    pub min_files_changed: u64,
    pub min_duration_s: f64,
    /// Share of the previously existing files changed in one run that counts as a mass change.
    pub mass_change_fraction: f64,
    pub min_mass_change_files: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            factor: 10.0,
            min_history: 3,
            window: 10,
            min_bytes_added: 8 * 1024 * 1024,
            min_files_changed: 200,
            min_duration_s: 60.0,
            mass_change_fraction: 0.5,
            min_mass_change_files: 50,
        }
    }
}

/// What was unusual about a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    BytesAdded,
    FilesChanged,
    Duration,
    MassChange,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// This run's value.
    pub value: f64,
    /// The recent median (or, for a mass change, the number of files that existed before).
    pub baseline: f64,
    /// One line for people.
    pub message: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

/// Compares `run` (its counters and wall-clock duration) with `history` (earlier runs, any order;
/// only successful ones count).
pub fn detect(run: &Summary, duration_s: f64, history: &[RunRecord], t: &Thresholds) -> Vec<Anomaly> {
    let mut past: Vec<&RunRecord> = history.iter().filter(|r| r.status.succeeded() && r.counters.is_some()).collect();
    past.sort_by_key(|r| r.end);
    let skip = past.len().saturating_sub(t.window);
    let past = &past[skip..];
    let mut out = Vec::new();

    // Most of the files that were there last time changed in this one run.
    if let Some(prev) = past.last().and_then(|r| r.counters.as_ref()) {
        let before = match prev.total_files {
            0 => prev.files_new + prev.files_changed + prev.files_unmodified,
            n => n,
        };
        if before > 0
            && run.files_changed >= t.min_mass_change_files
            && run.files_changed as f64 >= t.mass_change_fraction * before as f64
        {
            out.push(Anomaly {
                kind: AnomalyKind::MassChange,
                value: run.files_changed as f64,
                baseline: before as f64,
                message: format!(
                    "{} of {} files changed in one run ({:.0}%): check for mass modification or encryption \
                     (ransomware) before trusting this snapshot",
                    run.files_changed,
                    before,
                    100.0 * run.files_changed as f64 / before as f64
                ),
            });
        }
    }

    if past.len() < t.min_history {
        return out;
    }
    let counters = |f: fn(&Summary) -> f64| median(past.iter().filter_map(|r| r.counters.as_ref()).map(f).collect());
    let jump = |value: f64, base: f64, floor: f64| value >= floor && value > t.factor * base.max(f64::MIN_POSITIVE);

    let added = run.bytes_added as f64;
    let base = counters(|s| s.bytes_added as f64);
    if jump(added, base, t.min_bytes_added as f64) {
        out.push(Anomaly {
            kind: AnomalyKind::BytesAdded,
            value: added,
            baseline: base,
            message: format!(
                "this run added {} of new data, {:.0}× the recent median of {}",
                mib(added),
                added / base.max(1.0),
                mib(base)
            ),
        });
    }
    let changed = (run.files_new + run.files_changed) as f64;
    let base = counters(|s| (s.files_new + s.files_changed) as f64);
    if jump(changed, base, t.min_files_changed as f64) {
        out.push(Anomaly {
            kind: AnomalyKind::FilesChanged,
            value: changed,
            baseline: base,
            message: format!(
                "{} files new or changed in this run, {:.0}× the recent median of {}",
                changed,
                changed / base.max(1.0),
                base
            ),
        });
    }
    let base = median(past.iter().map(|r| r.duration_s).collect());
    if jump(duration_s, base, t.min_duration_s) {
        out.push(Anomaly {
            kind: AnomalyKind::Duration,
            value: duration_s,
            baseline: base,
            message: format!(
                "this run took {:.0}s, {:.0}× the recent median of {:.1}s",
                duration_s,
                duration_s / base.max(0.001),
                base
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runlog::RunStatus;

    fn hist(added: u64, files: u64) -> RunRecord {
        RunRecord {
            start: chrono::Utc::now(),
            end: chrono::Utc::now(),
            status: RunStatus::Ok,
            exit_code: 0,
            duration_s: 2.0,
            counters: Some(Summary {
                bytes_added: added,
                files_changed: 3,
                files_unmodified: files,
                total_files: files,
                ..Default::default()
            }),
            snapshot_id: None,
            error: None,
            anomalies: vec![],
            notify_errors: vec![],
            host: String::new(),
            repo: None,
            trigger: None,
            pid: 0,
        }
    }

    #[test]
    fn jumps_over_the_median_and_floor_are_flagged() {
        let t = Thresholds::default();
        let h: Vec<RunRecord> = (0..4).map(|_| hist(1024 * 1024, 1000)).collect();
        let normal = Summary { bytes_added: 2 * 1024 * 1024, files_changed: 5, ..Default::default() };
        assert!(detect(&normal, 2.0, &h, &t).is_empty());
        let big = Summary { bytes_added: 20 * 1024 * 1024, files_changed: 5, ..Default::default() };
        let a = detect(&big, 2.0, &h, &t);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, AnomalyKind::BytesAdded);
        // Not enough history: nothing but mass changes.
        assert!(detect(&big, 2.0, &h[..2], &t).is_empty());
        // Small absolute numbers never alarm, however large the factor.
        let small: Vec<RunRecord> = (0..4).map(|_| hist(10, 1000)).collect();
        assert!(detect(&Summary { bytes_added: 10_000, ..Default::default() }, 2.0, &small, &t).is_empty());
        let slow = detect(&normal, 100.0, &h, &t);
        assert_eq!(slow[0].kind, AnomalyKind::Duration);
    }

    #[test]
    fn most_files_changed_is_a_mass_change() {
        let t = Thresholds::default();
        let h = vec![hist(0, 1000)];
        let a = detect(&Summary { files_changed: 800, ..Default::default() }, 1.0, &h, &t);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, AnomalyKind::MassChange);
        assert!(a[0].message.contains("800 of 1000"));
    }
}
