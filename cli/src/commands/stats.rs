//! `clawback stats`: raw and stored sizes, dedup and compression ratios, counts.

use crate::context::Ctx;
use crate::ui::human_bytes;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(ctx: &Ctx, _a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let repo = ctx.open()?;
    let s = clawback_engine::commands::stats::stats(&repo)?;
    if g.json {
        crate::ui::print_json(&serde_json::to_value(&s)?);
        return Ok(0);
    }
    let rows: Vec<(&str, String)> = vec![
        ("Snapshots", s.snapshots.to_string()),
        ("Files (all snapshots)", s.files.to_string()),
        ("Raw size (all snapshots)", human_bytes(s.raw_bytes)),
        ("Unique content", human_bytes(s.unique_bytes)),
        ("Stored size", human_bytes(s.stored_bytes)),
        ("  packs", format!("{} in {} packs", human_bytes(s.pack_bytes), s.packs)),
        ("  index and snapshots", human_bytes(s.index_bytes + s.snapshot_bytes)),
        ("Blobs", s.blobs.to_string()),
        ("Dedup ratio", format!("{:.2}x", s.dedup_ratio)),
        ("Compression ratio", format!("{:.2}x", s.compression_ratio)),
    ];
    for (k, v) in rows {
        println!("{k:<26} {v}");
    }
    Ok(0)
}
