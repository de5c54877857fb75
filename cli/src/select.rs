//! Picking snapshots on the command line, as restic does: the `--host`, `--tag`, `--path` and
//! `--group` flags, turned into the engine's `Filter` (`--tag a,b`: both a and b; a repeated
//! `--tag`: either list), so the flags mean the same for every command that takes a SNAPSHOT or
//! lists snapshots. What `latest`, an id or a prefix picks is the engine's rule
//! (`Repository::select_snapshot`).

use anyhow::Result;
use clawback_engine::format::id::SnapshotId;
use clawback_engine::format::snapshot::{tag_lists, Filter, Snapshot};
use clawback_engine::repo::host::absolute_clean;
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
}

/// Resolves SNAPSHOT (`latest`, an id or a prefix) among the snapshots the filter and `also` let
/// through, by the engine's rules ([`Repository::select_snapshot`]).
pub fn find(
    repo: &Repository,
    spec: &str,
    f: &SnapshotFilter,
    also: impl Fn(&Snapshot) -> bool,
) -> Result<(SnapshotId, Snapshot)> {
    Ok(repo.select_snapshot(spec, &f.filter()?, also)?)
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
