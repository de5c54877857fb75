//! `clawback restore SNAPSHOT --target DIR`: restore all or part of a snapshot.

use crate::context;
use crate::ui::{self, usage};
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::commands::restore::{restore, RestoreOptions};
use clawback_engine::progress::Progress;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id, prefix, or `latest`
    pub snapshot: String,
    /// Folder to restore into (created if missing)
    #[arg(long, short = 't', value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Restore only paths matching this gitignore-style pattern (repeatable)
    #[arg(long = "include", short = 'i', value_name = "PAT")]
    pub includes: Vec<String>,
    /// Leave out paths matching this pattern (repeatable)
    #[arg(long = "exclude", short = 'e', value_name = "PAT")]
    pub excludes: Vec<String>,
    /// Re-read and re-hash every restored file
    #[arg(long)]
    pub verify: bool,
    /// Show what would be restored; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// With `latest`: of this host
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    let Some(target) = &a.target else {
        return Err(usage("restore needs --target DIR (restoring in place to the original paths is not available yet)"));
    };
    let repo = context::open(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, |s| {
        a.host.as_ref().is_none_or(|h| &s.hostname == h)
    })?;
    let opts = RestoreOptions {
        target: target.clone(),
        includes: a.includes.clone(),
        excludes: a.excludes.clone(),
        verify: a.verify,
        dry_run: a.dry_run,
    };
    let progress = Arc::new(Progress::default());
    let bar = ui::Bar::start(g.quiet, progress.clone(), "restore");
    let r = restore(&repo, &snap, &opts, &progress);
    bar.finish();
    let r = r?;
    if g.json {
        ui::print_json(&serde_json::json!({
            "snapshot_id": id.to_hex(),
            "target": target.to_string_lossy(),
            "files": r.files, "dirs": r.dirs, "symlinks": r.symlinks, "hardlinks": r.hardlinks,
            "bytes": r.bytes, "dry_run": a.dry_run, "errors": r.errors,
        }));
    } else if !g.quiet {
        let verb = if a.dry_run {
            "would restore"
        } else {
            "restored"
        };
        println!(
            "{verb} {} files ({}), {} folders, {} symlinks from snapshot {} to {}",
            r.files,
            ui::human_bytes(r.bytes),
            r.dirs,
            r.symlinks,
            id.short(),
            target.display()
        );
    }
    if !r.errors.is_empty() {
        for e in &r.errors {
            eprintln!("clawback: not restored: {}: {}", e.path, e.error);
        }
        eprintln!(
            "clawback: {} files could not be restored (damaged or missing data)",
            r.errors.len()
        );
        return Ok(1);
    }
    Ok(0)
}
