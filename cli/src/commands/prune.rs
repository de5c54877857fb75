//! `clawback prune`: delete the data no snapshot references and repack partly used packs, without
//! blocking backups (packs a running backup might still reuse are condemned first and deleted by
//! a later prune). Prints what each phase did and how long it took.

use crate::context::Ctx;
use crate::ui::{human_bytes, usage};
use anyhow::Result;
use clawback_engine::commands::prune::{self, PruneOptions, PruneReport};
use clawback_engine::progress::Progress;
use clawback_engine::repo::Repository;
use clawback_engine::run::sizelog::SizeEvent;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only show what would be deleted and repacked
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Repack partly used packs while unused space exceeds P% of the repository ("unlimited": never)
    #[arg(long, value_name = "P%", default_value = "5%")]
    pub max_unused: String,
}

/// `5%`, `5` or `unlimited` → a fraction.
pub fn parse_max_unused(s: &str) -> Result<f64> {
    let t = s.trim();
    if t == "unlimited" {
        return Ok(f64::INFINITY);
    }
    let v: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| usage(format!("--max-unused {s:?}: give a percentage like 5% (or unlimited)")))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(usage(format!("--max-unused {s:?}: the percentage must be between 0 and 100")));
    }
    Ok(v / 100.0)
}

/// Runs prune on an open repository. `CLAWBACK_FAILPOINT=prune:after-<phase>` kills the process
/// after that phase (crash-consistency tests).
pub fn run_on(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    run_with_progress(repo, opts, &Progress::default())
}

/// `run_on`, counting its phases in `progress` for a bar. Every prune (`prune`, `forget --prune`,
/// the daemon's, the one retention starts) comes here, and records the size it left.
pub fn run_with_progress(repo: &Repository, opts: &PruneOptions, progress: &Progress) -> Result<PruneReport> {
    let mut hook = |phase: &str| {
        clawback_engine::failpoint::hit(&format!("prune:after-{phase}"));
        Ok(())
    };
    let r = prune::prune_with_progress(repo, opts, &mut hook, progress)?;
    if !opts.dry_run {
        crate::runs::record_size(&crate::runs::clawback_dir(), repo, SizeEvent::Prune, None, None);
    }
    Ok(r)
}

pub fn json(r: &PruneReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("prune report");
    let secs: serde_json::Map<String, serde_json::Value> =
        r.phases.iter().map(|p| (p.phase.to_string(), serde_json::json!(p.seconds))).collect();
    v["phase_seconds"] = serde_json::Value::Object(secs);
    v
}

pub fn print(r: &PruneReport) {
    let secs = |name: &str| r.phases.iter().find(|p| p.phase == name).map(|p| p.seconds).unwrap_or(0.0);
    let line = |phase: &str, text: String| println!("{:<8} {:>8.2} s  {}", phase, secs(phase), text);
    line(
        "load",
        format!(
            "{} snapshots, {} index files, {} packs ({})",
            r.snapshots,
            r.index_files,
            r.packs,
            human_bytes(r.pack_bytes)
        ),
    );
    line(
        "mark",
        format!(
            "{} blobs in use, {} used, {} unused",
            r.blobs_used,
            human_bytes(r.used_bytes),
            human_bytes(r.unused_bytes)
        ),
    );
    let verb = if r.dry_run { "would" } else { "will" };
    line(
        "plan",
        format!(
            "{} packs unused, {} to repack, {} not indexed: {verb} free about {}; {} unused left after",
            r.packs_unused,
            r.packs_repacked,
            r.packs_unindexed,
            human_bytes(if r.dry_run { r.bytes_freed } else { r.unused_bytes.saturating_sub(r.unused_bytes_after) }),
            human_bytes(r.unused_bytes_after)
        ),
    );
    if r.packs_missing > 0 {
        println!("warning: {} indexed packs are missing from the repository; run `clawback check`", r.packs_missing);
    }
    if r.dry_run {
        println!("dry run: nothing changed");
        return;
    }
    line("repack", format!("{} packs written ({} copied)", r.packs_written, human_bytes(r.bytes_repacked)));
    line("index", format!("{} index files written, {} removed", r.index_files_written, r.index_files_deleted));
    line("condemn", format!("{} packs condemned", r.packs_condemned));
    line(
        "delete",
        format!(
            "{} packs deleted ({} freed), {} resurrected",
            r.packs_deleted,
            human_bytes(r.bytes_freed),
            r.packs_resurrected
        ),
    );
    if r.packs_waiting > 0 {
        println!(
            "{} condemned packs are kept until {} running backup(s) finish; the next prune deletes them",
            r.packs_waiting,
            r.waiting_on.len()
        );
    }
    let total: f64 = r.phases.iter().map(|p| p.seconds).sum();
    println!("prune done in {total:.2} s: {} freed", human_bytes(r.bytes_freed));
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let max_unused = parse_max_unused(&a.max_unused)?;
    let repo = ctx.open()?;
    let progress = Arc::new(Progress::default());
    let bar = crate::ui::Bar::start(g.quiet || g.json, progress.clone(), "prune");
    let r = run_with_progress(&repo, &PruneOptions { dry_run: a.dry_run, max_unused }, &progress)?;
    bar.finish();
    if g.json {
        crate::ui::print_json(&json(&r));
    } else if !g.quiet {
        print(&r);
    }
    Ok(0)
}
