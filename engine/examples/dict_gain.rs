//! Measures what zstd dictionaries, compression levels and chunk sizes save on real data: chunks
//! every file under DIR (SQLite databases in fixed 32 KiB pieces, as backup cuts their images),
//! keeps each distinct chunk once, and compresses every chunk on one core the way `codec` does,
//! without and with a dictionary trained on a sample of the chunks, reporting bytes and CPU time.
//!
//!     cargo run --release -p clawback-engine --example dict_gain -- DIR [DIR...]
//!
//! CLAWBACK_CHUNK=min/avg/max (KiB) changes the chunker; CLAWBACK_DICT=size (KiB, default 112)
//! CLAWBACK_SAMPLE=MiB (default 8), CLAWBACK_PIECE=bytes per chunk (default 8192) and
//! CLAWBACK_SAMPLE_FIRST=1 (sample the first chunks, as a streaming writer does) the dictionary;
//! CLAWBACK_LEVEL=n the level (default 3), CLAWBACK_ATTACH=1 attaches the dictionary as `codec` does. CLAWBACK_FAMILIES=1 trains one dictionary per family
//! (`Family::of_name`) and compresses each chunk with its file's. CLAWBACK_GENS=a,b,... (MiB)
//! also reports a session that retrains from a reservoir of samples each time the compressible
//! chunks seen pass a mark, each chunk compressed with the newest dictionary.
//!
//! On the 1.9 GB mixed home of format-spec §16 (level 3 alone: 591.3 MB): the first 2 MiB, one
//! dictionary, 582.0 MB; the first 2 MiB of each family 578.5 MB; 2 MiB spread over the chunks,
//! one dictionary, 573.7 MB; spread, one per family, 568.0 MB; retrained at 1, 4, 16, 64 and
//! 256 MiB, 578.5 MB.

mod common;

use clawback_engine::format::chunker::{ChunkParams, Chunker};
use clawback_engine::format::codec;
use clawback_engine::format::dict::Family;
use std::collections::HashSet;
use std::path::Path;

fn cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A compressor with `dict`; with CLAWBACK_ATTACH=1 the dictionary is attached (its tables read
/// where they are) at every chunk size, as `codec` does, instead of copied above 16 KiB.
fn compressor(level: i32, dict: &[u8]) -> zstd::bulk::Compressor<'static> {
    let mut c = zstd::bulk::Compressor::with_dictionary(level, dict).unwrap();
    if env("CLAWBACK_ATTACH", 0u8) == 1 {
        use zstd::zstd_safe::{CParameter, DictAttachPref};
        c.set_parameter(CParameter::ForceAttachDict(DictAttachPref::ForceAttach)).unwrap();
    }
    // CLAWBACK_ZPARAMS=hashlog,chainlog,minmatch: zstd's match finder tuned by hand.
    if let Ok(v) = std::env::var("CLAWBACK_ZPARAMS") {
        use zstd::zstd_safe::CParameter;
        let p: Vec<u32> = v.split(',').map(|x| x.parse().unwrap()).collect();
        c.set_parameter(CParameter::HashLog(p[0])).unwrap();
        c.set_parameter(CParameter::ChainLog(p[1])).unwrap();
        c.set_parameter(CParameter::MinMatch(p[2])).unwrap();
    }
    c
}

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// Size class of a chunk, for the breakdown.
fn class(n: usize) -> usize {
    match n {
        0..=4095 => 0,
        4096..=16383 => 1,
        16384..=65535 => 2,
        65536..=262143 => 3,
        _ => 4,
    }
}
const CLASSES: [&str; 5] = ["<4K", "4-16K", "16-64K", "64-256K", ">=256K"];

struct Chunk {
    data: Vec<u8>,
    sqlite: bool,
    family: usize,
}

/// The family of a file (`clawback_engine::format::dict::Family`) when families are measured.
fn family_of(path: &Path, families: bool) -> usize {
    let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
    if families {
        Family::of_name(name) as usize
    } else {
        0
    }
}

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: dict_gain DIR [DIR...]");
        std::process::exit(2);
    }
    let mut list = Vec::new();
    for d in &dirs {
        common::files(Path::new(d), &mut list);
    }
    let params = match std::env::var("CLAWBACK_CHUNK") {
        Ok(v) => {
            let p: Vec<u32> = v.split('/').map(|x| x.parse::<u32>().unwrap() * 1024).collect();
            ChunkParams { min: p[0], avg: p[1], max: p[2] }
        }
        Err(_) => ChunkParams::default(),
    };
    let level: i32 = env("CLAWBACK_LEVEL", 3);
    let dict_size: usize = env::<usize>("CLAWBACK_DICT", 112) * 1024;
    let sample_mb: usize = env("CLAWBACK_SAMPLE", 8);
    let chunker = Chunker::new(params, 0x5eed);
    let families = std::env::var_os("CLAWBACK_FAMILIES").is_some();
    let mut seen = HashSet::new();
    let mut chunks: Vec<Chunk> = Vec::new();
    for f in list {
        let Ok(data) = std::fs::read(&f) else { continue };
        let sqlite = data.starts_with(b"SQLite format 3\0");
        let ranges: Vec<std::ops::Range<usize>> = if sqlite && std::env::var_os("CLAWBACK_SQLITE_CDC").is_none() {
            (0..data.len()).step_by(32768).map(|a| a..(a + 32768).min(data.len())).collect()
        } else {
            chunker.chunks(&data)
        };
        for r in ranges {
            if seen.insert(*blake3::hash(&data[r.clone()]).as_bytes()) {
                chunks.push(Chunk { data: data[r].to_vec(), sqlite, family: family_of(&f, families) });
            }
        }
    }
    let raw: usize = chunks.iter().map(|c| c.data.len()).sum();
    println!("{} distinct chunks, {:.1} MB, chunker {:?}", chunks.len(), raw as f64 / 1e6, params);

    // Baseline: each chunk alone.
    let t = cpu_s();
    let mut base = vec![0usize; chunks.len()];
    let mut base_t = vec![0f64; chunks.len()];
    for (i, c) in chunks.iter().enumerate() {
        let t0 = cpu_s();
        let mut out = Vec::new();
        codec::encode_payload(&c.data, level, &mut out);
        base[i] = out.len();
        base_t[i] = cpu_s() - t0;
    }
    let base_cpu = cpu_s() - t;

    // Samples for the dictionary: compressible, non-SQLite chunks, whole if small, else 16 KiB
    // pieces, taken evenly over the chunk list up to the sample budget.
    let t = cpu_s();
    let budget = sample_mb << 20;
    let piece: usize = env("CLAWBACK_PIECE", 8192);
    let first = std::env::var_os("CLAWBACK_SAMPLE_FIRST").is_some();
    let mut dicts: std::collections::BTreeMap<usize, Vec<u8>> = Default::default();
    for fam in 0..Family::ALL.len() {
        let comp: Vec<usize> = (0..chunks.len())
            .filter(|&i| base[i] < chunks[i].data.len() + 1 && !chunks[i].sqlite && chunks[i].family == fam)
            .collect();
        let mut samples: Vec<&[u8]> = Vec::new();
        let pieces: usize = comp.iter().map(|&i| chunks[i].data.len().min(piece)).sum();
        if pieces < 64 << 10 {
            continue;
        }
        let every = (pieces as f64 / budget as f64).max(1.0);
        let mut next = 0.0f64;
        let mut at = 0usize;
        for &i in &comp {
            let d = &chunks[i].data;
            let n = d.len().min(piece);
            if (first && at < budget) || (!first && at as f64 >= next) {
                samples.push(&d[..n]);
                next += every * n as f64;
            }
            at += n;
        }
        let sample_bytes: usize = samples.iter().map(|s| s.len()).sum();
        let Ok(dict) = zstd::dict::from_samples(&samples, dict_size) else { continue };
        println!(
            "family {fam} dictionary: {} KiB from {} samples, {:.1} MB of {:.1} MB",
            dict.len() / 1024,
            samples.len(),
            sample_bytes as f64 / 1e6,
            pieces as f64 / 1e6
        );
        dicts.insert(fam, dict);
    }
    let train_cpu = cpu_s() - t;
    println!("training: {train_cpu:.2} s CPU");

    let t = cpu_s();
    let mut comps: std::collections::BTreeMap<usize, zstd::bulk::Compressor> =
        dicts.iter().map(|(f, d)| (*f, compressor(level, d))).collect();
    let mut withd = vec![0usize; chunks.len()];
    let mut dict_t = vec![0f64; chunks.len()];
    for (i, c) in chunks.iter().enumerate() {
        let t0 = cpu_s();
        let n = match comps.get_mut(&c.family) {
            Some(comp_d) if codec::worth_compressing(&c.data) => {
                comp_d.compress(&c.data).map(|v| v.len() + 9).unwrap_or(usize::MAX)
            }
            _ => usize::MAX,
        };
        withd[i] = n.min(base[i]);
        dict_t[i] = cpu_s() - t0;
    }
    let dict_cpu = cpu_s() - t;

    // Generations: the chunks in order, each compressed with the newest dictionary trained before
    // it; a dictionary is trained from a uniform reservoir of pieces each time the compressible
    // pieces seen pass the next threshold (MiB).
    if let Ok(gens) = std::env::var("CLAWBACK_GENS") {
        let marks: Vec<usize> = gens.split(',').map(|x| (x.parse::<f64>().unwrap() * 1048576.0) as usize).collect();
        let mut reservoir: Vec<Vec<u8>> = Vec::new();
        let mut res_bytes = 0usize;
        let mut seen_pieces = 0u64;
        let mut seen_bytes = 0usize;
        let mut next_mark = 0usize;
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut cur: Option<zstd::bulk::Compressor> = None;
        let mut total = 0usize;
        let mut last_dict = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let n = match cur.as_mut() {
                Some(cd) if codec::worth_compressing(&c.data) => {
                    cd.compress(&c.data).map(|v| v.len() + 9).unwrap_or(usize::MAX)
                }
                _ => usize::MAX,
            };
            total += n.min(base[i]);
            if c.sqlite || base[i] > c.data.len() {
                continue;
            }
            let piece_b = &c.data[..c.data.len().min(piece)];
            seen_pieces += 1;
            seen_bytes += piece_b.len();
            if res_bytes < budget {
                reservoir.push(piece_b.to_vec());
                res_bytes += piece_b.len();
            } else {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let j = (rng % seen_pieces) as usize;
                if j < reservoir.len() {
                    res_bytes -= reservoir[j].len();
                    res_bytes += piece_b.len();
                    reservoir[j] = piece_b.to_vec();
                }
            }
            if next_mark < marks.len() && seen_bytes >= marks[next_mark] {
                next_mark += 1;
                let refs: Vec<&[u8]> = reservoir.iter().map(|v| v.as_slice()).collect();
                if let Ok(d) = zstd::dict::from_samples(&refs, dict_size) {
                    cur = Some(zstd::bulk::Compressor::with_dictionary(level, &d).unwrap());
                    last_dict = d;
                    println!("generation {next_mark} at chunk {i}, {:.1} MB of pieces seen", seen_bytes as f64 / 1e6);
                }
            }
        }
        println!("generations: {:.2} MB in this session", total as f64 / 1e6);
        if !last_dict.is_empty() {
            let mut cd = zstd::bulk::Compressor::with_dictionary(level, &last_dict).unwrap();
            let t2: usize = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let n = if codec::worth_compressing(&c.data) {
                        cd.compress(&c.data).map(|v| v.len() + 9).unwrap_or(usize::MAX)
                    } else {
                        usize::MAX
                    };
                    n.min(base[i])
                })
                .sum();
            println!("generations: {:.2} MB with the last dictionary throughout", t2 as f64 / 1e6);
        }
    }

    // Breakdown by kind and size class.
    println!(
        "{:<8} {:<8} {:>7} {:>10} {:>10} {:>10} {:>6}",
        "kind", "size", "chunks", "raw MB", "z MB", "zdict MB", "gain%"
    );
    for kind in ["sqlite", "text", "binary"] {
        for (cl, class_name) in CLASSES.iter().enumerate() {
            let sel: Vec<usize> = (0..chunks.len())
                .filter(|&i| {
                    let c = &chunks[i];
                    let k = if c.sqlite {
                        "sqlite"
                    } else if base[i] <= c.data.len() {
                        "text"
                    } else {
                        "binary"
                    };
                    k == kind && class(c.data.len()) == cl
                })
                .collect();
            if sel.is_empty() {
                continue;
            }
            let r: usize = sel.iter().map(|&i| chunks[i].data.len()).sum();
            let b: usize = sel.iter().map(|&i| base[i]).sum();
            let d: usize = sel.iter().map(|&i| withd[i]).sum();
            let bt: f64 = sel.iter().map(|&i| base_t[i]).sum();
            let dt: f64 = sel.iter().map(|&i| dict_t[i]).sum();
            println!(
                "{:<8} {:<8} {:>7} {:>10.2} {:>10.2} {:>10.2} {:>6.1} {:>7.2} {:>7.2}",
                kind,
                class_name,
                sel.len(),
                r as f64 / 1e6,
                b as f64 / 1e6,
                d as f64 / 1e6,
                100.0 * (b as f64 - d as f64) / b as f64,
                bt,
                dt
            );
        }
    }
    let b: usize = base.iter().sum();
    let d: usize = withd.iter().sum();
    println!(
        "total: raw {:.1} MB, level {level} {:.2} MB ({:.2} s CPU), with dictionary {:.2} MB ({:.2} s CPU), saves {:.2} MB ({:.1}%)",
        raw as f64 / 1e6,
        b as f64 / 1e6,
        base_cpu,
        d as f64 / 1e6,
        dict_cpu,
        (b - d) as f64 / 1e6,
        100.0 * (b - d) as f64 / b as f64
    );
}
