//! `clawback repair index|snapshots|undelete`: rebuild the index from the pack headers; rewrite
//! snapshots that lost data so everything undamaged stays restorable; bring back objects deleted
//! from a versioned bucket. Each says what it changed.

use crate::context::Ctx;
use anyhow::Result;
use clawback_engine::commands::repair;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Rebuild the index from the headers of the packs in the repository (after lost or damaged
    /// index files); replaces every index file
    Index(Opts),
    /// Rewrite snapshots that need lost data: drop files whose content is lost, empty folders whose
    /// tree is lost; the new snapshot is tagged `repaired` and replaces the damaged one
    Snapshots(Opts),
    /// S3 with versioning (or object lock): bring back every repository object that was deleted
    /// (its delete marker removed), snapshots, index, packs, keys and config; no password needed
    Undelete(Opts),
}

#[derive(clap::Args, Debug)]
pub struct Opts {
    /// Only show what would change
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    match &a.what {
        What::Index(o) => {
            let repo = ctx.open()?;
            let r = repair::repair_index(&repo, o.dry_run)?;
            if g.json {
                crate::ui::print_json(&serde_json::to_value(&r)?);
            } else if !g.quiet {
                for d in &r.index_files_damaged {
                    println!("index file {} is damaged: {}", &d.id[..8.min(d.id.len())], d.error);
                }
                for d in &r.packs_damaged {
                    println!("pack {} has an unreadable header, left out of the index: {}", &d.id[..8], d.error);
                }
                for p in &r.packs_added {
                    println!("pack {} added (no index listed it)", &p[..8]);
                }
                for p in &r.packs_removed {
                    println!("pack {} removed from the index (missing or unreadable)", &p[..8]);
                }
                let verb = if o.dry_run { "would be" } else { "were" };
                println!(
                    "read {} index files and {} pack headers; {} packs added, {} removed; blobs indexed: {} before, {} after; {} index files {verb} replaced",
                    r.index_files_read,
                    r.packs_read,
                    r.packs_added.len(),
                    r.packs_removed.len(),
                    r.blobs_before,
                    r.blobs_after,
                    if o.dry_run { r.index_files_read } else { r.index_files_deleted },
                );
            }
            Ok(0)
        }
        What::Undelete(o) => undelete(ctx, o),
        What::Snapshots(o) => {
            let repo = ctx.open()?;
            let r = repair::repair_snapshots(&repo, o.dry_run)?;
            if g.json {
                crate::ui::print_json(&serde_json::to_value(&r)?);
            } else if !g.quiet {
                for s in &r.snapshots_repaired {
                    match &s.new_snapshot {
                        Some(n) => println!("snapshot {} replaced by {} (tag repaired):", &s.snapshot[..8], &n[..8]),
                        None => println!("snapshot {} would be replaced:", &s.snapshot[..8]),
                    }
                    for c in &s.changes {
                        println!("  {} {}: {}", c.action, c.path, c.reason);
                    }
                }
                println!(
                    "{} snapshots checked, {} {}",
                    r.snapshots_checked,
                    r.snapshots_repaired.len(),
                    if o.dry_run { "would be repaired (dry run)" } else { "repaired" }
                );
                if r.indexed_packs_missing > 0 {
                    println!(
                        "note: the index lists {} packs that are missing; run `clawback repair index` so `check` passes",
                        r.indexed_packs_missing
                    );
                }
            }
            Ok(0)
        }
    }
}

/// `repair undelete`: on the storage alone, since the config and key files may be deleted too.
fn undelete(ctx: &Ctx, o: &Opts) -> Result<i32> {
    let g = &ctx.g;
    let s = crate::context::Settings::load(g)?;
    let res = crate::context::resolve(g, &s)?;
    let be = ctx.backend(&res.location)?;
    let r = repair::repair_undelete(be.as_ref(), o.dry_run)?;
    if g.json {
        crate::ui::print_json(&serde_json::to_value(&r)?);
    } else if !g.quiet {
        for ob in &r.objects {
            println!(
                "{} {}/{} ({} bytes)",
                if o.dry_run { "would bring back" } else { "brought back" },
                ob.kind,
                ob.name,
                ob.size
            );
        }
        println!(
            "{} objects ({} bytes) {}; {} deleted leases and condemned records left deleted",
            r.objects.len(),
            r.bytes,
            if o.dry_run { "would come back (dry run)" } else { "brought back" },
            r.skipped
        );
        if !o.dry_run && !r.objects.is_empty() {
            println!("next: `clawback check --read-data`; run `clawback repair index` if it reports unindexed packs");
        }
    }
    Ok(0)
}
