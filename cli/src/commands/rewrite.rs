//! `clawback rewrite --exclude PATTERN [SNAPSHOT...]`: new snapshots without the matching entries,
//! the originals forgotten; `prune` then frees what only they held.

use crate::context::Ctx;
use crate::ui::{human_bytes, usage};
use anyhow::Result;
use clawback_engine::commands::rewrite::rewrite;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshots: ids, prefixes, or `latest`; none: every snapshot the filter selects (all)
    pub snapshots: Vec<String>,
    /// Remove entries matching this pattern (gitignore syntax on absolute paths, as `backup
    /// --exclude`; repeatable)
    #[arg(long, short = 'e', value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Read exclude patterns from this file, one a line (# comments)
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Only show what would be removed
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Which snapshots (with `latest`, or with no SNAPSHOT)
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let mut patterns = a.exclude.clone();
    for f in &a.exclude_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| usage(format!("--exclude-file {}: {e}; give a readable file of patterns", f.display())))?;
        patterns.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    if patterns.is_empty() {
        return Err(usage("rewrite needs what to remove: give --exclude PATTERN or --exclude-file FILE"));
    }
    let repo = ctx.open()?;
    let snaps = if a.snapshots.is_empty() {
        repo.snapshots_matching(&a.filter.filter()?)?
    } else {
        super::tag::selected(&repo, &a.snapshots, &a.filter, "rewrite")?
    };
    let r = rewrite(&repo, &snaps, &patterns, a.dry_run)?;
    if g.json {
        let rewritten: Vec<_> = r
            .rewritten
            .iter()
            .map(|w| {
                serde_json::json!({
                    "snapshot": w.snapshot.to_hex(),
                    "time": w.time,
                    "new_snapshot": w.new_snapshot.map(|i| i.to_hex()),
                    "removed": w.removed,
                })
            })
            .collect();
        crate::ui::print_json(&serde_json::json!({
            "rewritten": rewritten,
            "unchanged": r.unchanged.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            "trees_written": r.trees_written,
            "dry_run": r.dry_run,
        }));
        return Ok(0);
    }
    if g.quiet {
        return Ok(0);
    }
    for w in &r.rewritten {
        let new = w.new_snapshot.map(|i| format!(" -> {}", i.short())).unwrap_or_default();
        println!("snapshot {} ({}){new}:", w.snapshot.short(), w.time);
        for x in &w.removed {
            println!("  - {}  ({}, {} files, {})", x.path, x.kind, x.files, human_bytes(x.bytes));
        }
    }
    if a.dry_run {
        println!("{} snapshots would be rewritten, {} unchanged (dry run)", r.rewritten.len(), r.unchanged.len());
    } else {
        println!(
            "{} snapshots rewritten and their originals forgotten, {} unchanged; run `clawback prune` to free the space",
            r.rewritten.len(),
            r.unchanged.len()
        );
    }
    Ok(0)
}
