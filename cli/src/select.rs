//! Picking snapshots on the command line, as restic does: `--host`, `--tag`, `--path` and `--group`
//! narrow the snapshots a command considers, and `latest` is the newest of those. One definition
//! shared by every command that takes a SNAPSHOT or lists snapshots, so the flags mean the same
//! everywhere (`--tag a,b`: both a and b; a repeated `--tag`: either list). `latest` is the latest
//! backup: the safety snapshots in-place restores take (tag `pre-restore`) are passed over unless
//! `--tag pre-restore` asks for them; an id or prefix names any snapshot.

use anyhow::Result;
use clawback_engine::commands::backup::absolute_clean;
use clawback_engine::format::id::SnapshotId;
use clawback_engine::format::snapshot::{tag_lists, Filter, Snapshot, PRE_RESTORE_TAG};
use clawback_engine::repo::Repository;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of this host (repeatable: any of them)
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Only snapshots with these tags (a,b: both; repeatable: any of the lists)
    #[arg(long = "tag", value_name = "T[,T]")]
    pub tags: Vec<String>,
    /// Only snapshots that backed up this path (repeatable: all of them)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only the snapshots of this fleet group (`backup --group`)
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
}

impl SnapshotFilter {
    /// The engine's filter; paths are made absolute and clean, as snapshots record them.
    pub fn filter(&self) -> Result<Filter> {
        let env = clawback_engine::openclaw::Env::from_process();
        let paths = self
            .paths
            .iter()
            .map(|p| Ok(absolute_clean(&env.expand(&p.to_string_lossy()))?.to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Filter { hosts: self.hosts.clone(), tags: tag_lists(&self.tags), paths, group: self.group.clone() })
    }

    /// The flags as they were given, for messages (`--host h --tag a,b`).
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        v.extend(self.hosts.iter().map(|h| format!("--host {h}")));
        v.extend(self.tags.iter().map(|t| format!("--tag {t}")));
        v.extend(self.paths.iter().map(|p| format!("--path {}", p.display())));
        v.extend(self.group.iter().map(|g| format!("--group {g}")));
        v.join(" ")
    }
}

/// Resolves SNAPSHOT (`latest`, an id or a prefix) among the snapshots the filter and `also` let
/// through; `latest` skips safety snapshots unless the filter's tags name them. With filters, a
/// `latest` that matches nothing says which filters.
pub fn find(
    repo: &Repository,
    spec: &str,
    f: &SnapshotFilter,
    also: impl Fn(&Snapshot) -> bool,
) -> Result<(SnapshotId, Snapshot)> {
    let filter = f.filter()?;
    let safety_too = filter.names_pre_restore();
    let pick = |s: &Snapshot| filter.matches(s) && also(s);
    repo.find_snapshot(spec, |s| pick(s) && (safety_too || !s.is_pre_restore())).map_err(|e| match e {
        clawback_engine::Error::SnapshotNotFound(what) => {
            let with = if filter.is_empty() { String::new() } else { format!(" with {}", f.describe()) };
            let only_safety = spec.starts_with("latest")
                && !safety_too
                && repo.snapshots().is_ok_and(|all| {
                    let mut picked = all.iter().filter(|(_, s)| pick(s));
                    picked.clone().next().is_some() && picked.all(|(_, s)| s.is_pre_restore())
                });
            let hint = if only_safety {
                format!(
                    " (only {PRE_RESTORE_TAG} safety snapshots match, which `latest` passes over; \
                     give one's id or add --tag {PRE_RESTORE_TAG})"
                )
            } else {
                String::new()
            };
            clawback_engine::Error::SnapshotNotFound(format!("{what}{with}{hint}")).into()
        }
        e => e.into(),
    })
}

/// Resolves SNAPSHOT for commands without selection flags, by the same rules as [`find`].
pub fn find_any(repo: &Repository, spec: &str) -> Result<(SnapshotId, Snapshot)> {
    find(repo, spec, &SnapshotFilter::default(), |_| true)
}

/// The tags a new snapshot gets from `--tag` values: `a,b` and a repeated `--tag` both add each
/// name once, in the order given.
pub fn new_tags(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tag_lists(values).into_iter().flatten() {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}
