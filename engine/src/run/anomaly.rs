//! Anomaly warnings: a backup run compared like with like. Its parent snapshot (same host, same
//! paths) says how many files were there before, so most of them given new content at once (what
//! ransomware encrypting a workspace looks like) or gone at once is flagged; the recent successful
//! runs of the same group give medians, and new data, new-content files or duration far above
//! them (by default 10×, and above an absolute floor so small numbers never alarm) are flagged.
//! A group's first run, a run after the path set changed and re-reads (`--force`, a touch) are not
//! anomalies. Warnings go to the backup output, the run log, `status` and notifications. The
//! history comes in as [`Past`] runs (the run log makes them from its records), so this module
//! depends on nothing of the run log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::snapshot::Summary;

/// When a run counts as anomalous.
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// A value this many times the recent median is flagged.
    pub factor: f64,
    /// Runs needed in the history before a jump over the median is flagged.
    pub min_history: usize,
    /// Successful runs the median is taken over.
    pub window: usize,
    /// Floors: below these a jump is never flagged.
    pub min_bytes_added: u64,
    pub min_files_changed: u64,
    pub min_duration_s: f64,
    /// Share of the parent's files given new content (or gone) in one run that counts as a mass
    /// change (or deletion), and the fewest files that can.
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
    MassDeletion,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// This run's value.
    pub value: f64,
    /// The recent median (or, for a mass change or deletion, the number of files in the parent).
    pub baseline: f64,
    /// One line for people.
    pub message: String,
}

/// One finished backup, as anomaly detection sees it.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    pub summary: &'a Summary,
    /// Files of the parent whose content changed (not merely re-read).
    pub content_changed: u64,
    /// Wall-clock seconds.
    pub duration_s: f64,
    /// `--force`: every file re-read, so the duration says nothing.
    pub forced: bool,
    /// Files that could not be read (still in the parent, not gone).
    pub unreadable: u64,
    /// The snapshot's host and sorted paths: its group.
    pub host: &'a str,
    pub paths: &'a [String],
    /// The parent snapshot's summary when the parent is of the same group; `None` on a first run
    /// or after the path set changed.
    pub parent: Option<&'a Summary>,
}

/// An earlier successful run that had a parent, as the medians need it.
#[derive(Clone, Debug)]
pub struct Past<'a> {
    pub end: DateTime<Utc>,
    pub bytes_added: u64,
    /// Files new or given new content.
    pub new_content_files: u64,
    pub duration_s: f64,
    pub forced: bool,
    pub host: &'a str,
    pub paths: &'a [String],
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

/// The files a summary's snapshot holds.
fn files_in(s: &Summary) -> u64 {
    match s.total_files {
        0 => s.files_new + s.files_changed + s.files_unmodified,
        n => n,
    }
}

/// Compares `run` with its parent and with `history` (earlier successful runs that had a parent,
/// any order, any group: only those of the same group count).
pub fn detect(run: &Run, history: &[Past], t: &Thresholds) -> Vec<Anomaly> {
    let mut out = Vec::new();
    // A first run, or the first since the paths changed: nothing to compare with.
    let Some(parent) = run.parent else {
        return out;
    };
    let before = files_in(parent);
    let mass =
        |n: u64| before > 0 && n >= t.min_mass_change_files && n as f64 >= t.mass_change_fraction * before as f64;
    let pct = |n: u64| 100.0 * n as f64 / before.max(1) as f64;
    if mass(run.content_changed) {
        out.push(Anomaly {
            kind: AnomalyKind::MassChange,
            value: run.content_changed as f64,
            baseline: before as f64,
            message: format!(
                "{} of {} files got new content in one run ({:.0}%): check for mass modification or encryption \
                 (ransomware) before trusting this snapshot",
                run.content_changed,
                before,
                pct(run.content_changed)
            ),
        });
    }
    // Files of the parent still there: re-read or reused (a file that could not be read is not gone).
    let still = run.summary.files_changed + run.summary.files_unmodified + run.unreadable;
    let gone = before.saturating_sub(still);
    if mass(gone) {
        out.push(Anomaly {
            kind: AnomalyKind::MassDeletion,
            value: gone as f64,
            baseline: before as f64,
            message: format!(
                "{gone} of {before} files disappeared since the last backup ({:.0}%): check for mass deletion \
                 before forgetting older snapshots",
                pct(gone)
            ),
        });
    }

    let mut past: Vec<&Past> = history.iter().filter(|r| r.host == run.host && r.paths == run.paths).collect();
    past.sort_by_key(|r| r.end);
    let skip = past.len().saturating_sub(t.window);
    let past = &past[skip..];
    if past.len() < t.min_history {
        return out;
    }
    let jump = |value: f64, base: f64, floor: f64| value >= floor && value > t.factor * base.max(f64::MIN_POSITIVE);

    let added = run.summary.bytes_added as f64;
    let base = median(past.iter().map(|r| r.bytes_added as f64).collect());
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
    let changed = (run.summary.files_new + run.content_changed) as f64;
    let base = median(past.iter().map(|r| r.new_content_files as f64).collect());
    if jump(changed, base, t.min_files_changed as f64) {
        out.push(Anomaly {
            kind: AnomalyKind::FilesChanged,
            value: changed,
            baseline: base,
            message: format!(
                "{} files new or with new content in this run, {:.0}× the recent median of {}",
                changed,
                changed / base.max(1.0),
                base
            ),
        });
    }
    let timed: Vec<f64> = past.iter().filter(|r| !r.forced).map(|r| r.duration_s).collect();
    let base = median(timed.clone());
    if !run.forced && timed.len() >= t.min_history && jump(run.duration_s, base, t.min_duration_s) {
        out.push(Anomaly {
            kind: AnomalyKind::Duration,
            value: run.duration_s,
            baseline: base,
            message: format!(
                "this run took {:.0}s, {:.0}× the recent median of {:.1}s",
                run.duration_s,
                run.duration_s / base.max(0.001),
                base
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Vec<String> {
        vec!["/w".to_string()]
    }

    const W: &[String] = &[];

    fn hist(added: u64) -> Past<'static> {
        Past {
            end: chrono::Utc::now(),
            bytes_added: added,
            new_content_files: 3,
            duration_s: 2.0,
            forced: false,
            host: "h",
            paths: W,
        }
    }

    /// `n` runs of the group `/w` on host h.
    fn history(ps: &[String], n: usize, added: u64) -> Vec<Past<'_>> {
        (0..n).map(|_| Past { paths: ps, ..hist(added) }).collect()
    }

    fn parent(files: u64) -> Summary {
        Summary { files_unmodified: files, total_files: files, ..Default::default() }
    }

    fn run<'a>(s: &'a Summary, parent: Option<&'a Summary>, paths: &'a [String]) -> Run<'a> {
        Run {
            summary: s,
            content_changed: s.files_changed,
            duration_s: 2.0,
            forced: false,
            unreadable: 0,
            host: "h",
            paths,
            parent,
        }
    }

    #[test]
    fn jumps_over_the_median_and_floor_are_flagged() {
        let t = Thresholds::default();
        let (p, ps) = (parent(1000), paths());
        let h = history(&ps, 4, 1024 * 1024);
        let normal =
            Summary { bytes_added: 2 * 1024 * 1024, files_changed: 5, files_unmodified: 995, ..Default::default() };
        assert!(detect(&run(&normal, Some(&p), &ps), &h, &t).is_empty());
        let big = Summary { bytes_added: 20 * 1024 * 1024, ..normal.clone() };
        let a = detect(&run(&big, Some(&p), &ps), &h, &t);
        assert_eq!(a.iter().map(|a| a.kind).collect::<Vec<_>>(), vec![AnomalyKind::BytesAdded]);
        // Not enough history: no median to jump over.
        assert!(detect(&run(&big, Some(&p), &ps), &h[..2], &t).is_empty());
        // History of another path set does not count.
        let other = vec!["/elsewhere".to_string()];
        assert!(detect(&run(&big, Some(&p), &other), &h, &t).is_empty());
        // Small absolute numbers never alarm, however large the factor.
        let small = history(&ps, 4, 10);
        let tick = Summary { bytes_added: 10_000, files_unmodified: 1000, ..Default::default() };
        assert!(detect(&run(&tick, Some(&p), &ps), &small, &t).is_empty());
        let mut slow = run(&normal, Some(&p), &ps);
        slow.duration_s = 100.0;
        assert_eq!(detect(&slow, &h, &t)[0].kind, AnomalyKind::Duration);
        slow.forced = true;
        assert!(detect(&slow, &h, &t).is_empty(), "a forced run is slow by request");
    }

    #[test]
    fn new_content_in_most_files_is_a_mass_change_and_re_reads_are_not() {
        let t = Thresholds::default();
        let (p, ps) = (parent(1000), paths());
        let s = Summary { files_changed: 800, files_unmodified: 200, ..Default::default() };
        let a = detect(&run(&s, Some(&p), &ps), &[], &t);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, AnomalyKind::MassChange);
        assert!(a[0].message.contains("800 of 1000"));
        // Re-read (--force, touched) with the same content: not a change.
        let mut forced = run(&s, Some(&p), &ps);
        forced.content_changed = 0;
        assert!(detect(&forced, &[], &t).is_empty());
        // No parent (first run, or paths changed): nothing to compare with.
        assert!(detect(&run(&s, None, &ps), &[], &t).is_empty());
    }

    #[test]
    fn most_files_gone_is_a_mass_deletion() {
        let t = Thresholds::default();
        let (p, ps) = (parent(1000), paths());
        let s = Summary { files_unmodified: 300, ..Default::default() };
        let a = detect(&run(&s, Some(&p), &ps), &[], &t);
        assert_eq!(a.iter().map(|a| a.kind).collect::<Vec<_>>(), vec![AnomalyKind::MassDeletion]);
        assert!(a[0].message.contains("700 of 1000"), "{}", a[0].message);
        // Unreadable files are not gone.
        let mut r = run(&s, Some(&p), &ps);
        r.unreadable = 650;
        assert!(detect(&r, &[], &t).is_empty());
    }
}
