//! The throughput ceiling: how fast could a first backup of DIR possibly go on this machine?
//!
//! Runs the bare primitives of clawback's write path over every file under a directory, with no
//! repository, no index and no I/O besides reading: FastCDC v2020 chunking, keyed BLAKE3 chunk ids,
//! zstd compression (kept only when it shrinks the chunk), AES-256-GCM-SIV with a random nonce.
//! The output is discarded. Duplicate chunks (same id seen earlier in the run) skip compression and
//! encryption, as a real first backup does (`--no-dedup` turns that off).
//!
//! Two modes: one thread, and rayon over all cores (parallel over files, and over the chunks of a
//! window within a file). Prints MB/s per stage (stage input bytes / time spent in that stage,
//! summed over threads) and the total (input bytes / wall time). `--json` prints one object.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aes_gcm_siv::aead::{Aead, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use clap::{Parser, ValueEnum};
use clawback_benches::mb_per_s as mbps;
use rand::RngCore;
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "Throughput ceiling of chunk + hash + compress + encrypt (no repository)")]
struct Args {
    /// Directory whose files are read (recursively; symlinks are not followed).
    dir: PathBuf,
    /// Minimum chunk size in bytes (the defaults are clawback's, `ChunkParams::default`).
    #[arg(long, default_value_t = clawback_benches::DEFAULT_CHUNK_MIN)]
    min: usize,
    /// Average chunk size in bytes.
    #[arg(long, default_value_t = clawback_benches::DEFAULT_CHUNK_AVG)]
    avg: usize,
    /// Maximum chunk size in bytes.
    #[arg(long, default_value_t = clawback_benches::DEFAULT_CHUNK_MAX)]
    max: usize,
    /// zstd level; 0 disables compression.
    #[arg(long, default_value_t = 3)]
    level: i32,
    /// Which runs to do.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Threads for the parallel run (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Compress and encrypt every chunk, even one already seen in this run.
    #[arg(long)]
    no_dedup: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Single,
    Parallel,
    Both,
}

/// Bytes read from each file at a time; chunks never span more than one window's carry-over.
const WINDOW: usize = 8 * 1024 * 1024;

/// What one run measured. Times are summed over threads.
#[derive(Default, Clone, Debug)]
struct Stats {
    files: u64,
    unreadable: u64,
    bytes: u64,
    chunks: u64,
    unique_chunks: u64,
    unique_bytes: u64,
    compressed_chunks: u64,
    stored_bytes: u64,
    read: Duration,
    chunk: Duration,
    hash: Duration,
    compress: Duration,
    encrypt: Duration,
}

impl Stats {
    fn add(mut self, o: Stats) -> Stats {
        self.files += o.files;
        self.unreadable += o.unreadable;
        self.bytes += o.bytes;
        self.chunks += o.chunks;
        self.unique_chunks += o.unique_chunks;
        self.unique_bytes += o.unique_bytes;
        self.compressed_chunks += o.compressed_chunks;
        self.stored_bytes += o.stored_bytes;
        self.read += o.read;
        self.chunk += o.chunk;
        self.hash += o.hash;
        self.compress += o.compress;
        self.encrypt += o.encrypt;
        self
    }
}

/// Chunk ids seen so far, sharded so that parallel inserts rarely contend.
struct SeenSet {
    shards: Vec<Mutex<HashSet<[u8; 32]>>>,
    enabled: bool,
}

impl SeenSet {
    fn new(enabled: bool) -> Self {
        SeenSet { shards: (0..256).map(|_| Mutex::new(HashSet::new())).collect(), enabled }
    }
    /// True when the id was not seen before (or dedup is off).
    fn insert(&self, id: [u8; 32]) -> bool {
        if !self.enabled {
            return true;
        }
        self.shards[id[0] as usize].lock().unwrap().insert(id)
    }
}

/// The fixed inputs of one run: keys and parameters.
struct Pipeline {
    min: usize,
    avg: usize,
    max: usize,
    level: i32,
    id_key: [u8; 32],
    cipher: Aes256GcmSiv,
    seen: SeenSet,
}

thread_local! {
    // One zstd context per thread, created on first use: creating one per chunk would be measured too.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

impl Pipeline {
    fn new(args: &Args, seen: SeenSet) -> Self {
        let mut rng = rand::rng();
        let mut id_key = [0u8; 32];
        let mut enc_key = [0u8; 32];
        rng.fill_bytes(&mut id_key);
        rng.fill_bytes(&mut enc_key);
        Pipeline {
            min: args.min,
            avg: args.avg,
            max: args.max,
            level: args.level,
            id_key,
            cipher: Aes256GcmSiv::new_from_slice(&enc_key).expect("32-byte key"),
            seen,
        }
    }

    /// Hash, then (if new) compress and encrypt one chunk; the result is thrown away.
    fn process_chunk(&self, data: &[u8]) -> Stats {
        let mut s = Stats { chunks: 1, ..Stats::default() };
        let t = Instant::now();
        let id = *blake3::keyed_hash(&self.id_key, data).as_bytes();
        s.hash = t.elapsed();
        if !self.seen.insert(id) {
            return s;
        }
        s.unique_chunks = 1;
        s.unique_bytes = data.len() as u64;

        let t = Instant::now();
        let compressed = if self.level > 0 {
            COMPRESSOR.with(|c| {
                let mut c = c.borrow_mut();
                if c.as_ref().map(|(l, _)| *l) != Some(self.level) {
                    *c = Some((self.level, zstd::bulk::Compressor::new(self.level).expect("zstd context")));
                }
                let out = c.as_mut().unwrap().1.compress(data).expect("zstd compress");
                (out.len() < data.len()).then_some(out)
            })
        } else {
            None
        };
        s.compress = t.elapsed();
        let plain: &[u8] = match &compressed {
            Some(c) => {
                s.compressed_chunks = 1;
                c
            }
            None => data,
        };

        let t = Instant::now();
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed =
            self.cipher.encrypt(&Nonce::try_from(&nonce[..]).expect("a 12-byte nonce"), plain).expect("encrypt");
        s.encrypt = t.elapsed();
        s.stored_bytes = (nonce.len() + sealed.len()) as u64;
        std::hint::black_box(&sealed);
        s
    }

    /// Read a file window by window, cut it into chunks and process them (in parallel when asked).
    fn process_file(&self, path: &Path, parallel_chunks: bool) -> Stats {
        let mut s = Stats::default();
        match self.try_process_file(path, parallel_chunks, &mut s) {
            Ok(()) => s.files = 1,
            Err(e) => {
                eprintln!("ceiling: skipping {}: {e}", path.display());
                s.unreadable = 1;
            }
        }
        s
    }

    fn try_process_file(&self, path: &Path, parallel_chunks: bool, s: &mut Stats) -> io::Result<()> {
        let t = Instant::now();
        let mut f = File::open(path)?;
        s.read += t.elapsed();
        let len = f.metadata()?.len() as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(len.min(WINDOW) + 1);
        let mut eof = false;
        loop {
            // Fill the window (read_to_end grows the buffer without zeroing it first).
            let t = Instant::now();
            if !eof && buf.len() < WINDOW {
                let want = WINDOW - buf.len();
                let n = (&mut f).take(want as u64).read_to_end(&mut buf)?;
                eof = n < want;
            }
            s.read += t.elapsed();
            if buf.is_empty() {
                return Ok(());
            }

            // Cut. Unless at end of file, the last chunk of the window is carried over: its end is
            // where the window stopped, not a content-defined boundary.
            let t = Instant::now();
            let mut chunks: Vec<(usize, usize)> = fastcdc::v2020::FastCDC::new(&buf, self.min, self.avg, self.max)
                .map(|c| (c.offset, c.length))
                .collect();
            if !eof && chunks.len() > 1 {
                chunks.pop();
            }
            s.chunk += t.elapsed();
            let consumed = if eof { buf.len() } else { chunks.last().map(|&(o, l)| o + l).unwrap_or(buf.len()) };
            s.bytes += consumed as u64;

            let window_stats = if parallel_chunks {
                chunks.par_iter().map(|&(o, l)| self.process_chunk(&buf[o..o + l])).reduce(Stats::default, Stats::add)
            } else {
                chunks.iter().fold(Stats::default(), |acc, &(o, l)| acc.add(self.process_chunk(&buf[o..o + l])))
            };
            *s = std::mem::take(s).add(window_stats);

            buf.drain(..consumed);
            if eof && buf.is_empty() {
                return Ok(());
            }
        }
    }
}

fn list_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| match e {
            Ok(e) => Some(e),
            Err(err) => {
                eprintln!("ceiling: {err}");
                None
            }
        })
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

fn report(name: &str, threads: usize, s: &Stats, wall: Duration) -> serde_json::Value {
    serde_json::json!({
        "mode": name,
        "threads": threads,
        "files": s.files,
        "unreadable_files": s.unreadable,
        "bytes": s.bytes,
        "chunks": s.chunks,
        "unique_chunks": s.unique_chunks,
        "unique_bytes": s.unique_bytes,
        "compressed_chunks": s.compressed_chunks,
        "stored_bytes": s.stored_bytes,
        "wall_s": wall.as_secs_f64(),
        "total_mb_s": mbps(s.bytes, wall),
        // Per stage: that stage's input bytes over the time spent in it (summed over threads),
        // i.e. the throughput of one core doing only that stage.
        "stage_mb_s": {
            "read": mbps(s.bytes, s.read),
            "chunk": mbps(s.bytes, s.chunk),
            "hash": mbps(s.bytes, s.hash),
            "compress": mbps(s.unique_bytes, s.compress),
            "encrypt": mbps(s.stored_bytes, s.encrypt),
        },
        "stage_s": {
            "read": s.read.as_secs_f64(),
            "chunk": s.chunk.as_secs_f64(),
            "hash": s.hash.as_secs_f64(),
            "compress": s.compress.as_secs_f64(),
            "encrypt": s.encrypt.as_secs_f64(),
        },
    })
}

fn print_text(v: &serde_json::Value) {
    let st = &v["stage_mb_s"];
    let f = |x: &serde_json::Value| x.as_f64().unwrap_or(0.0);
    println!(
        "{:<8} threads={} files={} bytes={:.1} MB chunks={} unique={} ({:.1} MB) compressed={} stored={:.1} MB wall={:.2}s",
        v["mode"].as_str().unwrap_or(""),
        v["threads"],
        v["files"],
        f(&v["bytes"]) / 1e6,
        v["chunks"],
        v["unique_chunks"],
        f(&v["unique_bytes"]) / 1e6,
        v["compressed_chunks"],
        f(&v["stored_bytes"]) / 1e6,
        f(&v["wall_s"]),
    );
    println!(
        "         MB/s per core: read {:.0}  chunk {:.0}  hash {:.0}  compress {:.0}  encrypt {:.0}   TOTAL {:.1} MB/s",
        f(&st["read"]),
        f(&st["chunk"]),
        f(&st["hash"]),
        f(&st["compress"]),
        f(&st["encrypt"]),
        f(&v["total_mb_s"]),
    );
}

fn main() {
    let args = Args::parse();
    if !(args.min <= args.avg && args.avg <= args.max && args.max <= WINDOW) {
        eprintln!("ceiling: need min <= avg <= max <= {WINDOW} (got {}/{}/{})", args.min, args.avg, args.max);
        std::process::exit(2);
    }
    if !args.dir.is_dir() {
        eprintln!("ceiling: {} is not a directory", args.dir.display());
        std::process::exit(2);
    }
    let files = list_files(&args.dir);
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let mut runs = Vec::new();

    if matches!(args.mode, Mode::Single | Mode::Both) {
        let p = Pipeline::new(&args, SeenSet::new(!args.no_dedup));
        let t = Instant::now();
        let s = files.iter().fold(Stats::default(), |acc, f| acc.add(p.process_file(f, false)));
        runs.push(report("single", 1, &s, t.elapsed()));
    }
    if matches!(args.mode, Mode::Parallel | Mode::Both) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        let p = Pipeline::new(&args, SeenSet::new(!args.no_dedup));
        let t = Instant::now();
        let s = pool.install(|| files.par_iter().map(|f| p.process_file(f, true)).reduce(Stats::default, Stats::add));
        runs.push(report("parallel", threads, &s, t.elapsed()));
    }

    if args.json {
        let out = serde_json::json!({
            "dir": args.dir,
            "params": {"min": args.min, "avg": args.avg, "max": args.max, "zstd_level": args.level, "dedup": !args.no_dedup},
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    } else {
        println!(
            "ceiling over {} ({} files): fastcdc v2020 {}/{}/{}, keyed BLAKE3, zstd {}, AES-256-GCM-SIV, dedup {}",
            args.dir.display(),
            files.len(),
            args.min,
            args.avg,
            args.max,
            args.level,
            if args.no_dedup { "off" } else { "on" }
        );
        for r in &runs {
            print_text(r);
        }
    }
}
