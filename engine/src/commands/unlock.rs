//! `unlock`: remove the leases (`locks/`) that no running operation holds any more: expired ones,
//! unreadable ones, and those of this host whose process is gone. With `remove_all`, every lease,
//! live or not (the caller warns: a running prune then loses its exclusion).

use crate::error::{Error, Result};
use crate::repo::lease::list_leases;
use crate::repo::Repository;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct LeaseLine {
    pub name: String,
    pub kind: &'static str,
    /// The holder as the lease tells it (`None`: unreadable).
    pub holder: Option<String>,
    pub live: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct UnlockReport {
    pub removed: Vec<LeaseLine>,
    /// Live leases left in place.
    pub kept: Vec<LeaseLine>,
}

pub fn unlock(repo: &Repository, remove_all: bool) -> Result<UnlockReport> {
    let be = repo.backend();
    let now = chrono::Utc::now();
    let mut report = UnlockReport::default();
    for l in list_leases(be.as_ref())? {
        let live = l.info.as_ref().is_some_and(|i| i.is_live(now));
        let line = LeaseLine {
            name: l.name.to_string(),
            kind: l.kind.name(),
            holder: l.info.as_ref().map(|i| i.describe()),
            live,
        };
        if live && !remove_all {
            report.kept.push(line);
            continue;
        }
        match be.delete(&l.name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Backend { op: "delete lease", name: l.name.to_string(), source }),
        }
        report.removed.push(line);
    }
    Ok(report)
}
