//! `forget`: decide which snapshots a retention policy keeps, and delete the others' snapshot
//! objects (their data stays until prune).
//!
//! The GFS policy follows restic's `ApplyPolicy` exactly: within each group (by host and paths
//! unless told otherwise) snapshots are walked newest first; every `keep-*` count rule has a bucket
//! function (last: every snapshot its own bucket; hourly/daily/weekly/monthly/yearly: the local
//! hour, day, ISO week, month, year). A snapshot whose bucket differs from the previous kept one of
//! that rule is kept and uses up one count, so each bucket keeps its newest snapshot. The oldest
//! snapshot of the group is also kept by a rule that still has counts left ("oldest daily
//! snapshot", ...), which keeps the longest history while counts remain. `keep-within` keeps what
//! is newer than the newest snapshot (not now) minus the duration; `keep-tag` keeps snapshots that
//! carry all tags of one of the lists. Local time is whatever time zone the caller passes, so tests
//! are deterministic and the CLI passes `chrono::Local`.
//!
//! The OpenClaw Backup docs' `maxBackups`/`maxAgeDays`, used when no `keep*` rule is set, mean:
//! first drop the snapshots older than `maxAgeDays` (age measured from now), then of the rest keep
//! the newest `maxBackups`.
//!
//! Whatever the policy, a snapshot tagged `pre-restore` younger than 7 days is kept.

use crate::config::RetentionConfig;
use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::repo::Repository;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use std::collections::BTreeMap;

pub use crate::format::snapshot::PRE_RESTORE_TAG;
/// How long a `pre-restore` snapshot survives every policy.
pub const PRE_RESTORE_DAYS: i64 = 7;
pub const PRE_RESTORE_REASON: &str = "pre-restore safety (7 days)";

/// A restic duration: `1y2m3d4h` (years, months, days, hours).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Within {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub hours: i32,
}

impl Within {
    /// Parses `2d`, `1y2m3d4h`, ... (restic's units y, m, d, h; a repeated unit adds up).
    pub fn parse(s: &str) -> Result<Within> {
        let bad = |why: &str| Error::Usage(format!("invalid duration {s:?}: {why} (e.g. 2d, 1y2m3d4h; units y m d h)"));
        let mut w = Within::default();
        let mut num = String::new();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if num.is_empty() {
                return Err(bad("a unit must follow a number"));
            }
            let n: i32 = num.parse().map_err(|_| bad("number too large"))?;
            num.clear();
            let slot = match c {
                'y' => &mut w.years,
                'm' => &mut w.months,
                'd' => &mut w.days,
                'h' => &mut w.hours,
                _ => return Err(bad(&format!("unknown unit {c:?}"))),
            };
            *slot = slot.checked_add(n).ok_or_else(|| bad("number too large"))?;
        }
        if !num.is_empty() {
            return Err(bad("the last number has no unit"));
        }
        Ok(w)
    }

    pub fn is_zero(&self) -> bool {
        *self == Within::default()
    }

    /// `t` minus this duration, computed like Go's `t.AddDate(-y, -m, -d).Add(-h hours)` in the
    /// time zone `tz` (a day that does not exist in a month overflows into the next one).
    pub fn before<Tz: TimeZone>(&self, t: DateTime<Utc>, tz: &Tz) -> DateTime<Utc> {
        let local = t.with_timezone(tz).naive_local();
        let months = local.year() as i64 * 12 + local.month0() as i64 - self.years as i64 * 12 - self.months as i64;
        let (y, m0) = (months.div_euclid(12), months.rem_euclid(12));
        let first = NaiveDate::from_ymd_opt(y as i32, m0 as u32 + 1, 1).unwrap_or(NaiveDate::MIN);
        let date = first + Duration::days(local.day() as i64 - 1 - self.days as i64);
        let naive = date.and_time(local.time());
        let back = match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(x) => x.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            // In a DST gap: Go moves forward by the gap; the UTC reading of the wall time is close.
            chrono::LocalResult::None => naive.and_utc(),
        };
        back - Duration::hours(self.hours as i64)
    }
}

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut any = false;
        for (n, u) in [(self.years, 'y'), (self.months, 'm'), (self.days, 'd'), (self.hours, 'h')] {
            if n != 0 {
                write!(f, "{n}{u}")?;
                any = true;
            }
        }
        if !any {
            f.write_str("0h")?;
        }
        Ok(())
    }
}

/// restic's expire policy. Counts: 0 = rule off, -1 = unlimited.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GfsPolicy {
    pub last: i64,
    pub hourly: i64,
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub yearly: i64,
    pub within: Within,
    /// Keep snapshots that carry every tag of at least one of these lists.
    pub keep_tags: Vec<Vec<String>>,
}

impl GfsPolicy {
    pub fn is_empty(&self) -> bool {
        *self == GfsPolicy::default()
    }
}

/// What decides which snapshots stay.
#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    /// restic's rules.
    Gfs(GfsPolicy),
    /// The OpenClaw Backup docs' limits.
    Limits { max_backups: Option<u32>, max_age_days: Option<u32> },
}

impl Policy {
    /// The policy a config's `retention` section describes: the `keep*` rules when any is set,
    /// else `maxBackups`/`maxAgeDays`, else none. The second value is a note when both kinds are set.
    pub fn from_config(r: &RetentionConfig) -> Result<(Option<Policy>, Option<String>)> {
        let c = |v: Option<u32>| v.map(|n| n as i64).unwrap_or(0);
        let gfs = GfsPolicy {
            last: c(r.keep_last),
            hourly: c(r.keep_hourly),
            daily: c(r.keep_daily),
            weekly: c(r.keep_weekly),
            monthly: c(r.keep_monthly),
            yearly: c(r.keep_yearly),
            within: match r.keep_within.as_deref().filter(|w| !w.is_empty()) {
                Some(w) => Within::parse(w).map_err(|e| Error::Usage(format!("retention.keepWithin: {e}")))?,
                None => Within::default(),
            },
            keep_tags: vec![],
        };
        let limits = r.max_backups.is_some() || r.max_age_days.is_some();
        if !gfs.is_empty() {
            let note =
                limits.then(|| "retention has keep* rules, so maxBackups/maxAgeDays are not applied".to_string());
            return Ok((Some(Policy::Gfs(gfs)), note));
        }
        if limits {
            return Ok((Some(Policy::Limits { max_backups: r.max_backups, max_age_days: r.max_age_days }), None));
        }
        Ok((None, None))
    }
}

pub use crate::format::snapshot::Filter;

/// What snapshots are grouped by before the policy applies to each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy { host: true, paths: true, tags: false }
    }
}

impl GroupBy {
    /// `host,paths`, `host`, `paths,tags`, `` (no grouping), ...
    pub fn parse(s: &str) -> Result<GroupBy> {
        let mut g = GroupBy { host: false, paths: false, tags: false };
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p {
                "host" => g.host = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                _ => return Err(Error::Usage(format!("--group-by {p:?}: expected host, paths and/or tags"))),
            }
        }
        Ok(g)
    }
}

/// The key of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GroupKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// One group's decision, newest snapshot first.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupPlan {
    pub key: GroupKey,
    pub keep: Vec<SnapshotId>,
    pub remove: Vec<SnapshotId>,
}

/// The whole decision.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub groups: Vec<GroupPlan>,
    /// Why each kept snapshot stays.
    pub reasons: BTreeMap<SnapshotId, Vec<String>>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn keep(&self) -> Vec<SnapshotId> {
        self.groups.iter().flat_map(|g| g.keep.iter().copied()).collect()
    }
    pub fn remove(&self) -> Vec<SnapshotId> {
        self.groups.iter().flat_map(|g| g.remove.iter().copied()).collect()
    }
}

fn group_key(s: &Snapshot, by: GroupBy) -> GroupKey {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    GroupKey {
        hostname: by.host.then(|| s.hostname.clone()),
        paths: by.paths.then(|| sorted(&s.paths)),
        tags: by.tags.then(|| sorted(&s.tags)),
    }
}

/// Decides, for every snapshot that passes `filter`, whether `policy` keeps it. `now` is the
/// current time (for `maxAgeDays` and the pre-restore rule); `tz` is the local time zone.
pub fn plan<Tz: TimeZone>(
    snapshots: &[(SnapshotId, Snapshot)],
    filter: &Filter,
    group_by: GroupBy,
    policy: &Policy,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Plan {
    let mut groups: BTreeMap<GroupKey, Vec<(SnapshotId, &Snapshot)>> = BTreeMap::new();
    for (id, s) in snapshots.iter().filter(|(_, s)| filter.matches(s)) {
        groups.entry(group_key(s, group_by)).or_default().push((*id, s));
    }
    let mut out = Plan::default();
    for (key, mut list) in groups {
        // Newest first; ties by id, newest-looking last, so the order is total and deterministic.
        list.sort_by(|a, b| b.1.time().cmp(&a.1.time()).then(b.0.cmp(&a.0)));
        let mut reasons: Vec<Vec<String>> = match policy {
            Policy::Gfs(p) => apply_gfs(&list, p, now, tz),
            Policy::Limits { max_backups, max_age_days } => apply_limits(&list, *max_backups, *max_age_days, now),
        };
        for (i, (_, s)) in list.iter().enumerate() {
            let age = now - s.time();
            if s.tags.iter().any(|t| t == PRE_RESTORE_TAG) && age < Duration::days(PRE_RESTORE_DAYS) {
                reasons[i].push(PRE_RESTORE_REASON.to_string());
            }
        }
        let mut g = GroupPlan { key, keep: vec![], remove: vec![] };
        for ((id, _), r) in list.iter().zip(reasons) {
            if r.is_empty() {
                g.remove.push(*id);
            } else {
                g.keep.push(*id);
                out.reasons.insert(*id, r);
            }
        }
        out.groups.push(g);
    }
    out
}

type Bucker<Tz> = fn(&DateTime<Tz>, usize) -> i64;

fn ymdh<Tz: TimeZone>(d: &DateTime<Tz>, _: usize) -> i64 {
    d.year() as i64 * 1_000_000 + d.month() as i64 * 10_000 + d.day() as i64 * 100 + d.hour() as i64
}
fn ymd<Tz: TimeZone>(d: &DateTime<Tz>, _: usize) -> i64 {
    d.year() as i64 * 10_000 + d.month() as i64 * 100 + d.day() as i64
}
fn yw<Tz: TimeZone>(d: &DateTime<Tz>, _: usize) -> i64 {
    let w = d.iso_week();
    w.year() as i64 * 100 + w.week() as i64
}
fn ym<Tz: TimeZone>(d: &DateTime<Tz>, _: usize) -> i64 {
    d.year() as i64 * 100 + d.month() as i64
}
fn y<Tz: TimeZone>(d: &DateTime<Tz>, _: usize) -> i64 {
    d.year() as i64
}
fn always<Tz: TimeZone>(_: &DateTime<Tz>, nr: usize) -> i64 {
    nr as i64
}

/// restic's `ApplyPolicy` over one group sorted newest first; returns each snapshot's reasons
/// (empty: removed).
fn apply_gfs<Tz: TimeZone>(
    list: &[(SnapshotId, &Snapshot)],
    p: &GfsPolicy,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); list.len()];
    if p.is_empty() {
        return out;
    }
    struct Bucket<Tz: TimeZone> {
        count: i64,
        bucker: Bucker<Tz>,
        last: Option<i64>,
        reason: &'static str,
    }
    let mut buckets: [Bucket<Tz>; 6] = [
        Bucket { count: p.last, bucker: always::<Tz>, last: None, reason: "last snapshot" },
        Bucket { count: p.hourly, bucker: ymdh::<Tz>, last: None, reason: "hourly snapshot" },
        Bucket { count: p.daily, bucker: ymd::<Tz>, last: None, reason: "daily snapshot" },
        Bucket { count: p.weekly, bucker: yw::<Tz>, last: None, reason: "weekly snapshot" },
        Bucket { count: p.monthly, bucker: ym::<Tz>, last: None, reason: "monthly snapshot" },
        Bucket { count: p.yearly, bucker: y::<Tz>, last: None, reason: "yearly snapshot" },
    ];
    // The newest snapshot that is not in the future; with none, everything is "within".
    let latest = list.iter().map(|(_, s)| s.time()).filter(|t| *t < now).max();
    let within_since = latest.filter(|_| !p.within.is_zero()).map(|l| p.within.before(l, tz));
    let n = list.len();
    for (nr, (_, s)) in list.iter().enumerate() {
        let reasons = &mut out[nr];
        let t = s.time();
        for l in &p.keep_tags {
            if l.iter().all(|t| s.tags.contains(t)) {
                reasons.push(format!("has tags {}", l.join(",")));
            }
        }
        if !p.within.is_zero() && within_since.is_none_or(|since| t > since) {
            reasons.push(format!("within {}", p.within));
        }
        let local = t.with_timezone(tz);
        for b in buckets.iter_mut() {
            if b.count > 0 || b.count == -1 {
                let val = (b.bucker)(&local, nr);
                if Some(val) != b.last || nr == n - 1 {
                    let reason =
                        if Some(val) == b.last { format!("oldest {}", b.reason) } else { b.reason.to_string() };
                    b.last = Some(val);
                    if b.count > 0 {
                        b.count -= 1;
                    }
                    reasons.push(reason);
                }
            }
        }
    }
    out
}

/// maxAgeDays, then maxBackups, over one group sorted newest first.
fn apply_limits(
    list: &[(SnapshotId, &Snapshot)],
    max_backups: Option<u32>,
    max_age_days: Option<u32>,
    now: DateTime<Utc>,
) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); list.len()];
    let mut kept = 0u64;
    for (i, (_, s)) in list.iter().enumerate() {
        if let Some(d) = max_age_days {
            if now - s.time() > Duration::days(d as i64) {
                continue;
            }
        }
        if let Some(m) = max_backups {
            if kept >= m as u64 {
                continue;
            }
        }
        kept += 1;
        let r = &mut out[i];
        if let Some(d) = max_age_days {
            r.push(format!("younger than maxAgeDays ({d})"));
        }
        if let Some(m) = max_backups {
            r.push(format!("among the newest maxBackups ({m})"));
        }
    }
    out
}

/// Deletes the snapshot objects of `plan`'s removed snapshots (and their cache entries). Returns
/// the ids deleted.
pub fn apply(repo: &Repository, plan: &Plan) -> Result<Vec<SnapshotId>> {
    forget_ids(repo, &plan.remove())
}

/// Deletes the snapshot objects `ids` (`forget ID...`). Returns the ids deleted.
pub fn forget_ids(repo: &Repository, ids: &[SnapshotId]) -> Result<Vec<SnapshotId>> {
    if !ids.is_empty() {
        repo.require_deletes("forget")?;
    }
    for id in ids {
        repo.remove_snapshot(id)?;
    }
    Ok(ids.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::SnapshotId;
    use chrono::FixedOffset;

    fn snap(time: &str, tags: &[&str]) -> Snapshot {
        Snapshot { tags: tags.iter().map(|t| t.to_string()).collect(), ..Snapshot::for_test("h", &["/p"], time) }
    }

    /// Snapshots numbered by position: id byte = index + 1.
    fn list(times: &[(&str, &[&str])]) -> Vec<(SnapshotId, Snapshot)> {
        times.iter().enumerate().map(|(i, (t, tags))| (SnapshotId([i as u8 + 1; 32]), snap(t, tags))).collect()
    }

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2027-06-01T00:00:00Z".parse().unwrap()
    }

    /// Indices (in `times`) kept by the policy.
    fn kept<Tz: TimeZone>(times: &[(&str, &[&str])], p: Policy, tz: &Tz, now: DateTime<Utc>) -> (Vec<usize>, Plan) {
        let l = list(times);
        let plan = plan(&l, &Filter::default(), GroupBy::default(), &p, now, tz);
        let keep = plan.keep();
        let mut idx: Vec<usize> =
            l.iter().enumerate().filter(|(_, (id, _))| keep.contains(id)).map(|(i, _)| i).collect();
        idx.sort();
        (idx, plan)
    }

    fn gfs(f: impl FnOnce(&mut GfsPolicy)) -> Policy {
        let mut p = GfsPolicy::default();
        f(&mut p);
        Policy::Gfs(p)
    }

    fn reasons(plan: &Plan, i: usize) -> Vec<String> {
        plan.reasons.get(&SnapshotId([i as u8 + 1; 32])).cloned().unwrap_or_default()
    }

    /// Times (UTC) chosen across hour, day, ISO-week, month and year boundaries.
    const T: &[(&str, &[&str])] = &[
        ("2025-12-31T23:30:00Z", &[]), // 0: Wed, ISO 2026-W01, Dec 2025, year 2025
        ("2026-01-01T00:10:00Z", &[]), // 1: Thu, ISO 2026-W01, Jan 2026
        ("2026-01-01T00:50:00Z", &[]), // 2: same hour as 1
        ("2026-01-04T22:00:00Z", &[]), // 3: Sun, ISO 2026-W01
        ("2026-01-05T01:00:00Z", &[]), // 4: Mon, ISO 2026-W02
        ("2026-12-28T08:00:00Z", &[]), // 5: Mon, ISO 2026-W53
        ("2026-12-31T10:00:00Z", &[]), // 6: Thu, ISO 2026-W53, Dec 2026
        ("2027-01-01T09:00:00Z", &[]), // 7: Fri, ISO 2026-W53, Jan 2027
        ("2027-01-03T12:00:00Z", &[]), // 8: Sun, ISO 2026-W53
        ("2027-01-04T07:00:00Z", &[]), // 9: Mon, ISO 2027-W01
        ("2027-01-04T07:40:00Z", &[]), // 10: same hour as 9
        ("2027-01-04T09:15:00Z", &[]), // 11: same day as 9
    ];

    #[test]
    fn iso_weeks_of_the_table_are_what_the_comments_say() {
        let w = |s: &str| {
            let t: DateTime<Utc> = s.parse().unwrap();
            (t.iso_week().year(), t.iso_week().week())
        };
        assert_eq!(w(T[0].0), (2026, 1));
        assert_eq!(w(T[5].0), (2026, 53));
        assert_eq!(w(T[8].0), (2026, 53));
        assert_eq!(w(T[9].0), (2027, 1));
    }

    #[test]
    fn gfs_table() {
        let z = utc();
        // (policy, kept indices), each checked by hand against the table above.
        let cases: Vec<(Policy, Vec<usize>)> = vec![
            (gfs(|p| p.last = 3), vec![9, 10, 11]),
            // Hourly: 11 (09h), 10 (07h; 9 same hour), 8, 7; the 1/2 hour keeps 2 (newest).
            (gfs(|p| p.hourly = 4), vec![7, 8, 10, 11]),
            (gfs(|p| p.hourly = 9), vec![2, 3, 4, 5, 6, 7, 8, 10, 11]),
            // Daily: 11 (Jan 4), 8 (Jan 3), 7, 6, 5, 4, 3, then Jan 1 2026 keeps 2.
            (gfs(|p| p.daily = 8), vec![2, 3, 4, 5, 6, 7, 8, 11]),
            // Weekly: 2027-W01 → 11; 2026-W53 → 8 (5,6,7 same week); W02 → 4; W01 → 3 (0..3).
            (gfs(|p| p.weekly = 4), vec![3, 4, 8, 11]),
            // Weekly with counts left keeps the oldest snapshot too ("oldest weekly snapshot").
            (gfs(|p| p.weekly = 10), vec![0, 3, 4, 8, 11]),
            // Monthly: Jan 2027 → 11; Dec 2026 → 6; Jan 2026 → 4; Dec 2025 → 0.
            (gfs(|p| p.monthly = 3), vec![4, 6, 11]),
            (gfs(|p| p.monthly = 4), vec![0, 4, 6, 11]),
            // Yearly: 2027 → 11; 2026 → 6; 2025 → 0.
            (gfs(|p| p.yearly = 2), vec![6, 11]),
            (gfs(|p| p.yearly = -1), vec![0, 6, 11]),
            // Combined: union of last 1, daily 2, monthly 2.
            (
                gfs(|p| {
                    p.last = 1;
                    p.daily = 2;
                    p.monthly = 2;
                }),
                vec![6, 8, 11],
            ),
        ];
        for (p, want) in cases {
            let (got, _) = kept(T, p.clone(), &z, now());
            assert_eq!(got, want, "policy {p:?}");
        }
    }

    #[test]
    fn reasons_name_the_rules() {
        let (_, plan) = kept(
            T,
            gfs(|p| {
                p.last = 1;
                p.daily = 2;
                p.weekly = 10;
            }),
            &utc(),
            now(),
        );
        assert_eq!(reasons(&plan, 11), ["last snapshot", "daily snapshot", "weekly snapshot"]);
        assert_eq!(reasons(&plan, 8), ["daily snapshot", "weekly snapshot"]);
        assert_eq!(reasons(&plan, 0), ["oldest weekly snapshot"]);
        assert!(reasons(&plan, 10).is_empty());
    }

    #[test]
    fn buckets_use_the_given_local_time() {
        // 23:30 and 00:10 UTC: different days (and years) in UTC, the same day at UTC+2 (01:30 and
        // 02:10 on Jan 1).
        let t: &[(&str, &[&str])] = &[("2025-12-31T23:30:00Z", &[]), ("2026-01-01T00:10:00Z", &[])];
        let p = gfs(|p| p.daily = 1);
        assert_eq!(kept(t, p.clone(), &utc(), now()).0, vec![1]);
        let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(kept(t, p.clone(), &plus2, now()).0, vec![1]);
        let p2 = gfs(|p| p.daily = 2);
        assert_eq!(kept(t, p2.clone(), &utc(), now()).0, vec![0, 1]);
        // At UTC+2 both are on Jan 1: one daily bucket, but the oldest is kept with counts left.
        let (k, plan) = kept(t, p2.clone(), &plus2, now());
        assert_eq!(k, vec![0, 1]);
        assert_eq!(reasons(&plan, 0), ["oldest daily snapshot"]);
        // Yearly at UTC+2: both in 2026, one count: only the newest.
        assert_eq!(kept(t, gfs(|p| p.yearly = 1), &plus2, now()).0, vec![1]);
        assert_eq!(kept(t, gfs(|p| p.yearly = 1), &utc(), now()).0, vec![1]);
        // At UTC the two are in different years: yearly 2 keeps both as yearly snapshots.
        let (_, plan) = kept(t, gfs(|p| p.yearly = 2), &utc(), now());
        assert_eq!(reasons(&plan, 0), ["yearly snapshot"]);
        // Hours: 10:59 and 11:01 UTC are in different hours at UTC and at UTC+5:30 they are
        // 16:29 and 16:31, the same hour.
        let h: &[(&str, &[&str])] =
            &[("2026-03-01T10:59:00Z", &[]), ("2026-03-01T11:01:00Z", &[]), ("2026-03-01T12:00:00Z", &[])];
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        assert_eq!(kept(h, gfs(|p| p.hourly = 2), &utc(), now()).0, vec![1, 2]);
        assert_eq!(kept(h, gfs(|p| p.hourly = 2), &ist, now()).0, vec![1, 2]);
        assert_eq!(kept(h, gfs(|p| p.hourly = 3), &ist, now()).0, vec![0, 1, 2]);
        let (_, plan) = kept(h, gfs(|p| p.hourly = 3), &ist, now());
        assert_eq!(reasons(&plan, 0), ["oldest hourly snapshot"]);
        let (_, plan) = kept(h, gfs(|p| p.hourly = 3), &utc(), now());
        assert_eq!(reasons(&plan, 0), ["hourly snapshot"]);
    }

    #[test]
    fn within_is_relative_to_the_newest_snapshot() {
        assert_eq!(Within::parse("1y2m3d4h").unwrap(), Within { years: 1, months: 2, days: 3, hours: 4 });
        assert_eq!(Within::parse("2d").unwrap().to_string(), "2d");
        for bad in ["", "d", "2", "2w", "1d2"] {
            assert!(Within::parse(bad).is_err(), "{bad}");
        }
        // Newest is 2027-01-04T09:15; 2d → after 2027-01-02T09:15: 8, 9, 10, 11.
        let (k, plan) = kept(T, gfs(|p| p.within = Within::parse("2d").unwrap()), &utc(), now());
        assert_eq!(k, vec![8, 9, 10, 11]);
        assert_eq!(reasons(&plan, 8), ["within 2d"]);
        // 1m: after 2026-12-04T09:15 → 5..11. 2h: after 07:15 → 10, 11.
        assert_eq!(
            kept(T, gfs(|p| p.within = Within::parse("1m").unwrap()), &utc(), now()).0,
            vec![5, 6, 7, 8, 9, 10, 11]
        );
        assert_eq!(kept(T, gfs(|p| p.within = Within::parse("2h").unwrap()), &utc(), now()).0, vec![10, 11]);
        // 1y3d → after 2026-01-01T09:15: 3..11.
        assert_eq!(
            kept(T, gfs(|p| p.within = Within::parse("1y3d").unwrap()), &utc(), now()).0,
            vec![3, 4, 5, 6, 7, 8, 9, 10, 11]
        );
        // Go's AddDate overflow: March 31 minus 1 month is "February 31" = March 3.
        let t: DateTime<Utc> = "2026-03-31T12:00:00Z".parse().unwrap();
        assert_eq!(
            Within::parse("1m").unwrap().before(t, &utc()),
            "2026-03-03T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // A snapshot in the future does not count as the newest.
        let f: &[(&str, &[&str])] =
            &[("2027-05-01T00:00:00Z", &[]), ("2027-05-30T00:00:00Z", &[]), ("2030-01-01T00:00:00Z", &[])];
        assert_eq!(kept(f, gfs(|p| p.within = Within::parse("2d").unwrap()), &utc(), now()).0, vec![1, 2]);
    }

    #[test]
    fn keep_tag_keeps_snapshots_with_all_tags_of_a_list() {
        let t: &[(&str, &[&str])] = &[
            ("2026-01-01T00:00:00Z", &["a", "b"]),
            ("2026-01-02T00:00:00Z", &["a"]),
            ("2026-01-03T00:00:00Z", &["c"]),
            ("2026-01-04T00:00:00Z", &[]),
        ];
        let p = gfs(|p| p.keep_tags = vec![vec!["a".into(), "b".into()], vec!["c".into()]]);
        let (k, plan) = kept(t, p, &utc(), now());
        assert_eq!(k, vec![0, 2]);
        assert_eq!(reasons(&plan, 0), ["has tags a,b"]);
        // Combined with last 1.
        let p = gfs(|p| {
            p.keep_tags = vec![vec!["a".into()]];
            p.last = 1;
        });
        assert_eq!(kept(t, p, &utc(), now()).0, vec![0, 1, 3]);
    }

    #[test]
    fn max_backups_and_max_age_days() {
        // now = 2027-06-01. Ages: 0: 40 d, 1: 20 d, 2: 10 d, 3: 5 d, 4: 1 d.
        let t: &[(&str, &[&str])] = &[
            ("2027-04-22T00:00:00Z", &[]),
            ("2027-05-12T00:00:00Z", &[]),
            ("2027-05-22T00:00:00Z", &[]),
            ("2027-05-27T00:00:00Z", &[]),
            ("2027-05-31T00:00:00Z", &[]),
        ];
        let lim = |b, d| Policy::Limits { max_backups: b, max_age_days: d };
        assert_eq!(kept(t, lim(None, Some(30)), &utc(), now()).0, vec![1, 2, 3, 4]);
        assert_eq!(kept(t, lim(Some(2), None), &utc(), now()).0, vec![3, 4]);
        assert_eq!(kept(t, lim(Some(10), Some(15)), &utc(), now()).0, vec![2, 3, 4]);
        // Age first, then count: 30 days leaves 1..4, of which the newest 3.
        let (k, plan) = kept(t, lim(Some(3), Some(30)), &utc(), now());
        assert_eq!(k, vec![2, 3, 4]);
        assert_eq!(reasons(&plan, 2), ["younger than maxAgeDays (30)", "among the newest maxBackups (3)"]);
        // Everything older than the limit goes, even if maxBackups would allow more.
        assert_eq!(kept(t, lim(Some(100), Some(3)), &utc(), now()).0, vec![4]);

        // From a config: only max* set → Limits; keep* set → GFS with a note.
        let r = RetentionConfig { max_backups: Some(3), max_age_days: Some(30), ..Default::default() };
        assert_eq!(Policy::from_config(&r).unwrap(), (Some(lim(Some(3), Some(30))), None));
        let r = RetentionConfig { max_backups: Some(3), keep_daily: Some(7), ..Default::default() };
        let (p, note) = Policy::from_config(&r).unwrap();
        assert_eq!(p, Some(gfs(|p| p.daily = 7)));
        assert!(note.is_some());
        assert_eq!(Policy::from_config(&RetentionConfig::default()).unwrap(), (None, None));
        let r = RetentionConfig { keep_within: Some("3x".into()), ..Default::default() };
        assert!(Policy::from_config(&r).is_err());
    }

    #[test]
    fn pre_restore_snapshots_survive_seven_days() {
        // now = 2027-06-01; 0: 10 d old pre-restore, 1: 6 d old pre-restore, 2: newest, untagged.
        let t: &[(&str, &[&str])] = &[
            ("2027-05-22T00:00:00Z", &["pre-restore"]),
            ("2027-05-26T00:00:00Z", &["pre-restore"]),
            ("2027-05-31T00:00:00Z", &[]),
        ];
        let (k, plan) = kept(t, gfs(|p| p.last = 1), &utc(), now());
        assert_eq!(k, vec![1, 2]);
        assert_eq!(reasons(&plan, 1), [PRE_RESTORE_REASON]);
        let (k, _) = kept(t, Policy::Limits { max_backups: Some(1), max_age_days: None }, &utc(), now());
        assert_eq!(k, vec![1, 2]);
        // Kept by the policy too: both reasons.
        let (_, plan) = kept(t, gfs(|p| p.last = 2), &utc(), now());
        assert_eq!(reasons(&plan, 1), ["last snapshot", PRE_RESTORE_REASON]);
    }

    #[test]
    fn groups_filters_and_empty_policy() {
        let mut l =
            list(&[("2026-01-01T00:00:00Z", &[]), ("2026-01-02T00:00:00Z", &[]), ("2026-01-03T00:00:00Z", &["x"])]);
        l[0].1.hostname = "other".into();
        let p = gfs(|p| p.last = 1);
        let plan = plan(&l, &Filter::default(), GroupBy::default(), &p, now(), &utc());
        assert_eq!(plan.groups.len(), 2);
        assert_eq!(plan.remove(), vec![l[1].0]);
        let plan2 = super::plan(
            &l,
            &Filter { hosts: vec!["h".into()], ..Default::default() },
            GroupBy::default(),
            &p,
            now(),
            &utc(),
        );
        assert_eq!(plan2.keep(), vec![l[2].0]);
        assert_eq!(plan2.remove(), vec![l[1].0]);
        let plan3 = super::plan(
            &l,
            &Filter { tags: vec![vec!["x".into()]], ..Default::default() },
            GroupBy::default(),
            &p,
            now(),
            &utc(),
        );
        assert_eq!(plan3.keep(), vec![l[2].0]);
        assert!(plan3.remove().is_empty());
        let plan4 = super::plan(&l, &Filter::default(), GroupBy::parse("").unwrap(), &p, now(), &utc());
        assert_eq!(plan4.keep(), vec![l[2].0]);
        assert_eq!(plan4.remove().len(), 2);
        assert!(GroupBy::parse("host,bogus").is_err());
        // An empty GFS policy keeps nothing (the CLI refuses to run without a policy).
        let plan5 =
            super::plan(&l, &Filter::default(), GroupBy::default(), &Policy::Gfs(GfsPolicy::default()), now(), &utc());
        assert_eq!(plan5.remove().len(), 3);
    }
}
