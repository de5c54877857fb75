//! `clawback stats`: raw and stored sizes, dedup and compression ratios, counts; `--breakdown`
//! adds where the stored bytes go.

use crate::context::Ctx;
use crate::ui::human_bytes;
use anyhow::Result;
use clawback_engine::commands::stats::{Part, StatsOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also show where the stored bytes go: file content by kind and by size, the per-blob
    /// envelope, trees, pack headers, index files, snapshots and dictionaries
    #[arg(long)]
    pub breakdown: bool,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let repo = ctx.open()?;
    let s = clawback_engine::commands::stats::stats(&repo, &StatsOptions { breakdown: a.breakdown })?;
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
    if let Some(b) = &s.breakdown {
        println!();
        println!(
            "{:<30} {:>8} {:>12} {:>12} {:>7} {:>12}",
            "Where the bytes go", "blobs", "raw", "stored", "stored%", "envelope"
        );
        let part = |name: &str, p: &Part| {
            let pct = if p.raw_bytes == 0 { 0.0 } else { 100.0 * p.stored_bytes as f64 / p.raw_bytes as f64 };
            println!(
                "{name:<30} {:>8} {:>12} {:>12} {pct:>6.1}% {:>12}",
                p.blobs,
                human_bytes(p.raw_bytes),
                human_bytes(p.stored_bytes),
                human_bytes(p.envelope_bytes)
            );
        };
        part("content: databases", &b.data_database);
        part("content: other, compressed", &b.data_compressed);
        part("content: stored raw", &b.data_raw);
        for (name, p) in ["  below 4 KiB", "  4-16 KiB", "  16-64 KiB", "  64-256 KiB", "  256 KiB and more"]
            .iter()
            .zip(&b.data_by_size)
        {
            part(name, p);
        }
        part("trees", &b.trees);
        part("unreferenced blobs", &b.unreferenced);
        let other = |name: &str, n: u64| println!("{name:<30} {:>8} {:>12} {:>12}", "", "", human_bytes(n));
        other("pack headers", b.pack_header_bytes);
        other("index files", s.index_bytes);
        other("snapshots", s.snapshot_bytes);
        other(&format!("dictionaries ({})", b.dicts), s.dict_bytes);
    }
    Ok(0)
}
