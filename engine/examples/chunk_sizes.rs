//! Measures what a change costs in new bytes for several chunk-size choices: chunks every file
//! under BEFORE and AFTER (two copies of a home, e.g. before and after `clawback-corpus tick`) and
//! reports, per (min, avg, max), the bytes and chunks of AFTER that BEFORE does not have, and the
//! number of chunks overall (index entries). Used to pick the default chunk sizes.
//!
//!     cargo run --release -p clawback-engine --example chunk_sizes -- BEFORE AFTER

mod common;

use clawback_engine::format::chunker::{ChunkParams, Chunker};
use std::collections::HashSet;
use std::path::Path;

fn chunk_all(c: &Chunker, root: &Path) -> Vec<([u8; 32], usize, String)> {
    let mut list = Vec::new();
    common::files(root, &mut list);
    let mut out = Vec::new();
    for f in list {
        let Ok(data) = std::fs::read(&f) else { continue };
        let ext = f.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
        for r in c.chunks(&data) {
            out.push((*blake3::hash(&data[r.clone()]).as_bytes(), r.len(), ext.clone()));
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: chunk_sizes BEFORE AFTER");
        std::process::exit(2);
    }
    let (before, after) = (Path::new(&args[1]), Path::new(&args[2]));
    println!(
        "| min/avg/max (KiB) | chunks (after) | new chunks | new bytes | new bytes in .jsonl | in .sqlite | other |"
    );
    println!("|---|---|---|---|---|---|---|");
    for avg_k in [16u32, 32, 64, 128, 256, 512, 1024] {
        let avg = avg_k * 1024;
        let p = ChunkParams { min: avg / 4, avg, max: avg * 4 };
        let c = Chunker::new(p, 0x5eed);
        let old: HashSet<[u8; 32]> = chunk_all(&c, before).into_iter().map(|(h, _, _)| h).collect();
        let new = chunk_all(&c, after);
        let mut seen = HashSet::new();
        let (mut nb, mut nc, mut js, mut sq, mut ot) = (0usize, 0usize, 0usize, 0usize, 0usize);
        for (h, len, ext) in &new {
            if !old.contains(h) && seen.insert(*h) {
                nb += len;
                nc += 1;
                match ext.as_str() {
                    "jsonl" => js += len,
                    "sqlite" | "db" => sq += len,
                    _ => ot += len,
                }
            }
        }
        println!(
            "| {}/{}/{} | {} | {} | {:.2} MiB | {:.2} MiB | {:.2} MiB | {:.2} MiB |",
            avg_k / 4,
            avg_k,
            avg_k * 4,
            new.len(),
            nc,
            nb as f64 / 1048576.0,
            js as f64 / 1048576.0,
            sq as f64 / 1048576.0,
            ot as f64 / 1048576.0
        );
    }
}
