//! Measures what each zstd level costs and saves on real data, to choose the default level and the
//! incompressibility probe: chunks every file under DIR with the default chunker, keeps each distinct
//! chunk once, then for every level compresses every chunk on one core the way `codec` does and
//! reports MB/s and stored bytes, with and without the sampled probe (`codec::worth_compressing`).
//!
//!     cargo run --release -p clawback-engine --example zstd_levels -- DIR

mod common;

use clawback_engine::format::chunker::{ChunkParams, Chunker};
use clawback_engine::format::codec;
use std::collections::HashSet;
use std::path::Path;

/// CPU time of this thread, so a loaded machine does not skew the rates.
fn cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: zstd_levels DIR");
        std::process::exit(2);
    });
    let mut list = Vec::new();
    common::files(Path::new(&dir), &mut list);
    let chunker = Chunker::new(ChunkParams::default(), 0x5eed);
    // CLAWBACK_FIXED=N: cut SQLite databases (found by their header) into fixed N-byte pieces, as
    // backup cuts database images, instead of by content.
    let fixed: Option<usize> = std::env::var("CLAWBACK_FIXED").ok().and_then(|v| v.parse().ok());
    // CLAWBACK_ONLY_SQLITE=1: measure the databases alone.
    let only_sqlite = std::env::var_os("CLAWBACK_ONLY_SQLITE").is_some();
    let mut seen = HashSet::new();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for f in list {
        let Ok(data) = std::fs::read(&f) else { continue };
        if only_sqlite && !data.starts_with(b"SQLite format 3\0") {
            continue;
        }
        let ranges: Vec<std::ops::Range<usize>> = match fixed {
            Some(n) if data.starts_with(b"SQLite format 3\0") => {
                (0..data.len()).step_by(n).map(|a| a..(a + n).min(data.len())).collect()
            }
            _ => chunker.chunks(&data),
        };
        for r in ranges {
            if seen.insert(*blake3::hash(&data[r.clone()]).as_bytes()) {
                chunks.push(data[r].to_vec());
            }
        }
    }
    let raw: usize = chunks.iter().map(|c| c.len()).sum();
    println!("{} distinct chunks, {:.1} MB", chunks.len(), raw as f64 / 1e6);
    let skipped: Vec<&Vec<u8>> = chunks.iter().filter(|c| !codec::worth_compressing(c)).collect();
    println!(
        "probe says incompressible: {} chunks, {:.1} MB",
        skipped.len(),
        skipped.iter().map(|c| c.len()).sum::<usize>() as f64 / 1e6
    );
    println!("| level | probe | MB/s (1 core, CPU time) | stored MB | stored/raw | chunks kept raw | MB kept raw |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut out = Vec::with_capacity(1 << 20);
    for level in [1, 2, 3, 4, 6, 9] {
        for probe in [false, true] {
            let t = cpu_s();
            let (mut stored, mut kept_raw, mut raw_bytes) = (0usize, 0usize, 0usize);
            for c in &chunks {
                out.clear();
                if probe {
                    codec::encode_payload(c, level, &mut out);
                } else if !codec::try_compress(c, level, &mut out) {
                    out.push(codec::FLAG_RAW);
                    out.extend_from_slice(c);
                }
                stored += out.len();
                if out[0] == codec::FLAG_RAW {
                    kept_raw += 1;
                    raw_bytes += c.len();
                }
            }
            let s = cpu_s() - t;
            println!(
                "| {level} | {} | {:.0} | {:.1} | {:.4} | {kept_raw} | {:.1} |",
                if probe { "yes" } else { "no" },
                raw as f64 / 1e6 / s,
                stored as f64 / 1e6,
                stored as f64 / raw as f64,
                raw_bytes as f64 / 1e6
            );
        }
    }
}
