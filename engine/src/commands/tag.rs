//! `tag`: change the tags of snapshots, as restic does. A snapshot object is named by its
//! content, so a changed snapshot is written anew (recording the first original's id in
//! `original`) and the old object deleted; a snapshot whose tags would not change is left alone.

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::repo::Repository;
use serde::Serialize;

/// The change asked for: `set` replaces every tag (then `add`/`remove` are empty); otherwise
/// `add` then `remove` apply.
#[derive(Clone, Debug, Default)]
pub struct TagChange {
    pub set: Option<Vec<String>>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl TagChange {
    pub fn validate(&self) -> Result<()> {
        if self.set.is_none() && self.add.is_empty() && self.remove.is_empty() {
            return Err(Error::Usage("tag needs --add, --remove or --set".into()));
        }
        if self.set.is_some() && !(self.add.is_empty() && self.remove.is_empty()) {
            return Err(Error::Usage("--set replaces every tag: give it alone, or use --add/--remove".into()));
        }
        Ok(())
    }

    /// The tags `tags` become.
    pub fn apply(&self, tags: &[String]) -> Vec<String> {
        let mut out: Vec<String> = match &self.set {
            Some(s) => s.clone(),
            None => tags.to_vec(),
        };
        for t in &self.add {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out.retain(|t| !self.remove.contains(t));
        let mut seen = std::collections::HashSet::new();
        out.retain(|t| seen.insert(t.clone()));
        out
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Retagged {
    pub snapshot: SnapshotId,
    /// The new snapshot's id (`None` in a dry run).
    pub new_snapshot: Option<SnapshotId>,
    pub tags_before: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TagReport {
    pub changed: Vec<Retagged>,
    /// Snapshots whose tags already were what was asked.
    pub unchanged: Vec<SnapshotId>,
    pub dry_run: bool,
}

pub fn tag(
    repo: &Repository,
    snaps: &[(SnapshotId, Snapshot)],
    change: &TagChange,
    dry_run: bool,
) -> Result<TagReport> {
    change.validate()?;
    // A tag change replaces snapshot objects: refused up front where deletes are (append-only).
    if !dry_run && !snaps.is_empty() {
        repo.require_deletes("tag")?;
    }
    let mut report = TagReport { dry_run, ..Default::default() };
    for (id, s) in snaps {
        let tags = change.apply(&s.tags);
        if tags == s.tags {
            report.unchanged.push(*id);
            continue;
        }
        let mut n = s.clone();
        n.tags = tags.clone();
        n.original = Some(s.original.unwrap_or(*id));
        let new_snapshot = if dry_run { None } else { Some(repo.replace_snapshot(id, &n)?) };
        report.changed.push(Retagged { snapshot: *id, new_snapshot, tags_before: s.tags.clone(), tags });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn add_remove_set() {
        let c = TagChange { add: v(&["b", "c"]), remove: v(&["a"]), set: None };
        assert_eq!(c.apply(&v(&["a", "b"])), v(&["b", "c"]));
        let c = TagChange { set: Some(v(&["x", "x"])), ..Default::default() };
        assert_eq!(c.apply(&v(&["a"])), v(&["x"]));
        let c = TagChange { set: Some(vec![]), ..Default::default() };
        assert!(c.apply(&v(&["a"])).is_empty());
        assert!(c.validate().is_ok(), "--set '' clears every tag");
        assert!(TagChange::default().validate().is_err());
        assert!(TagChange { set: Some(vec![]), add: v(&["a"]), ..Default::default() }.validate().is_err());
    }
}
