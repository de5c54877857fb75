//! `clawback backup [PATH...]` (alias `now`): snapshot paths, by default the OpenClaw state.

use crate::context::{self, Location};
use crate::ui::{self, usage};
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::openclaw;
use clawback_engine::progress::Progress;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files and folders to back up (default: the OpenClaw state dir and workspaces)
    pub paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's)
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
    /// Leave out paths matching this gitignore-style pattern (repeatable)
    #[arg(long = "exclude", short = 'e', value_name = "PAT")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (repeatable)
    #[arg(long = "exclude-file", value_name = "F")]
    pub exclude_files: Vec<PathBuf>,
    /// Snapshot time, RFC 3339 (for imports and tests)
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
    /// Read and count everything, store nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Read every file, even those whose metadata is unchanged
    #[arg(long)]
    pub force: bool,
    /// Compare against this snapshot instead of the latest one of this host and paths
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
}

/// The default paths: the OpenClaw state dir, and the workspace when it lives elsewhere.
fn default_paths() -> Result<Vec<PathBuf>> {
    let env = openclaw::Env::from_process();
    let state = openclaw::state_dir(&env);
    let mut out = Vec::new();
    if state.is_dir() {
        out.push(state.clone());
    }
    if let Some(ws) = env.get("OPENCLAW_WORKSPACE_DIR") {
        let ws = env.expand(ws);
        if ws.is_dir() && !ws.starts_with(&state) {
            out.push(ws);
        }
    }
    if out.is_empty() {
        return Err(usage(format!(
            "no OpenClaw state dir at {} (set OPENCLAW_STATE_DIR, or give the paths to back up)",
            state.display()
        )));
    }
    Ok(out)
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    let res = context::resolve(g)?;
    let be = context::backend(&res.location);
    let exists = !matches!(be.read(clawback_engine::backend::Kind::Config, "config"), Err(ref e) if e.kind() == std::io::ErrorKind::NotFound);
    if !exists {
        if !res.is_default {
            return Err(clawback_engine::Error::RepoNotFound(be.location()).into());
        }
        crate::commands::init::create(g, &res, &clawback_engine::repo::InitOptions::default())?;
        if !g.quiet {
            eprintln!("clawback: created the default repository at {}", be.location());
        }
    }
    let repo = context::open(g)?;

    let paths = if a.paths.is_empty() { default_paths()? } else { a.paths.clone() };
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read exclude file {}", f.display()))?;
        excludes.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    let time = match &a.time {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| usage(format!("--time {t:?}: {e} (expected RFC 3339, e.g. 2026-01-31T12:00:00Z)")))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let parent = match &a.parent {
        Some(p) => Some(repo.find_snapshot(p, |_| true)?.0),
        None => None,
    };
    let mut skip_paths = Vec::new();
    let Location::Local(root) = &res.location;
    skip_paths.push(root.clone());
    // The cache in use (named or the default one) is never backed up: it changes during the
    // backup and holds only copies of what the repository has.
    skip_paths.push(g.cache_dir.clone().unwrap_or_else(clawback_engine::repo::default_cache_base));
    let opts = BackupOptions {
        paths,
        excludes,
        skip_paths,
        tags: a.tags.clone(),
        host: a.host.clone(),
        time,
        dry_run: a.dry_run,
        parent,
        force: a.force,
        scan_totals: !g.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        openclaw: None,
        gitignore_roots: Vec::new(),
        exclude_reasons: Vec::new(),
    };
    let progress = Arc::new(Progress::default());
    let bar = ui::Bar::start(g.quiet, progress.clone(), "backup");
    let r = backup(&repo, &opts, &progress);
    bar.finish();
    let r = r?;
    let s = &r.summary;
    if g.json {
        ui::print_json(&serde_json::json!({
            "snapshot_id": r.snapshot_id.map(|i| i.to_hex()),
            "parent_id": r.parent_id.map(|i| i.to_hex()),
            "files_new": s.files_new,
            "files_changed": s.files_changed,
            "files_unmodified": s.files_unmodified,
            "dirs": s.dirs,
            "bytes_read": s.bytes_read,
            "bytes_added": s.bytes_added,
            "bytes_stored": s.bytes_stored,
            "duration_s": s.duration_s,
            "total_files": s.total_files,
            "total_bytes": s.total_bytes,
            "dry_run": a.dry_run,
            "errors": r.errors,
            "skipped": r.skipped,
        }));
    } else if !g.quiet {
        for e in &r.errors {
            eprintln!("clawback: could not read {}: {}", e.path, e.error);
        }
        if g.verbose > 0 {
            for e in &r.skipped {
                eprintln!("clawback: skipped {}: {}", e.path, e.error);
            }
        }
        println!(
            "files: {} new, {} changed, {} unmodified; {} folders",
            s.files_new, s.files_changed, s.files_unmodified, s.dirs
        );
        println!(
            "read {}, added {}, stored {} in {:.2}s",
            ui::human_bytes(s.bytes_read),
            ui::human_bytes(s.bytes_added),
            ui::human_bytes(s.bytes_stored),
            s.duration_s
        );
        match r.snapshot_id {
            Some(id) => println!("snapshot {} saved", id.short()),
            None => println!("dry run: nothing stored"),
        }
    }
    if !r.errors.is_empty() {
        if !g.json {
            eprintln!("clawback: {} files could not be read; the snapshot lists them (exit 3)", r.errors.len());
        }
        return Ok(3);
    }
    Ok(0)
}
