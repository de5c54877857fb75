//! Retention after a backup: the configured policy applied to the snapshot group the new snapshot
//! belongs to (its host and paths), so every successful backup forgets what the policy drops and
//! leaves other hosts and path sets alone. When prune may follow is `daemon::DaemonState`.

use chrono::{DateTime, TimeZone, Utc};

use crate::commands::forget::{self, Filter, GroupBy, Plan, Policy};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;

/// What `policy` drops from the group of snapshot `new` (same host, same paths). The new snapshot
/// itself is always kept: a backup never forgets what it just saved (a `--time` in the past could
/// otherwise put it beyond `maxAgeDays`).
pub fn plan_after_backup<Tz: TimeZone>(
    snapshots: &[(SnapshotId, Snapshot)],
    new: &SnapshotId,
    policy: &Policy,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Plan {
    let Some((_, snap)) = snapshots.iter().find(|(id, _)| id == new) else {
        return Plan::default();
    };
    let filter = Filter { hosts: vec![snap.hostname.clone()], ..Default::default() };
    let mut paths = snap.paths.clone();
    paths.sort();
    let mut plan = forget::plan(snapshots, &filter, GroupBy { host: true, paths: true, tags: false }, policy, now, tz);
    plan.groups.retain(|g| g.key.paths.as_ref() == Some(&paths));
    for g in &mut plan.groups {
        if let Some(i) = g.remove.iter().position(|id| id == new) {
            g.remove.remove(i);
            g.keep.insert(0, *new);
        }
    }
    let kept: Vec<SnapshotId> = plan.keep();
    plan.reasons.retain(|id, _| kept.contains(id));
    plan.reasons.entry(*new).or_insert_with(|| vec!["the snapshot this backup saved".into()]);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::SnapshotId;

    fn snap(host: &str, paths: &[&str], day: u32) -> Snapshot {
        Snapshot::for_test(host, paths, &format!("2026-01-{day:02}T10:00:00Z"))
    }

    #[test]
    fn only_the_new_snapshots_group_is_thinned_and_the_new_one_stays() {
        let id = |n: u8| SnapshotId([n; 32]);
        let mut all = Vec::new();
        for d in 1..=5u8 {
            all.push((id(d), snap("h", &["/a"], d as u32)));
            all.push((id(10 + d), snap("h", &["/b"], d as u32)));
            all.push((id(20 + d), snap("other", &["/a"], d as u32)));
        }
        let now = "2026-01-06T00:00:00Z".parse().unwrap();
        let keep2 = Policy::Limits { max_backups: Some(2), max_age_days: None };
        let p = plan_after_backup(&all, &id(5), &keep2, now, &Utc);
        assert_eq!(p.remove(), vec![id(3), id(2), id(1)]);
        assert_eq!(p.keep(), vec![id(5), id(4)]);
        // An old --time: the new snapshot is past maxAgeDays, and is kept all the same.
        let young = Policy::Limits { max_backups: None, max_age_days: Some(1) };
        let p = plan_after_backup(&all, &id(1), &young, now, &Utc);
        assert!(p.keep().contains(&id(1)), "{:?}", p.remove());
        assert!(!p.remove().contains(&id(1)));
    }
}
