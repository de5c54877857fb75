//! Generates realistic OpenClaw homes for clawback's end-to-end tests and benchmarks.
//!
//! A generated home is a fake `$HOME` holding the state dir `.openclaw/` (config with `${VAR}`
//! secrets, credentials, agent session transcripts, SQLite databases in WAL mode, logs, media,
//! cron runs) and agent workspaces (Markdown memory, skills, a real git project), plus the
//! caches a backup should skip (`node_modules`, browser profiles, `tmp/`, pid and lock files).
//!
//! Generation is deterministic: the same [`Options`] give byte-identical files, except for the
//! parts SQLite and git write themselves (WAL salts, the git index). Every path, size and seed
//! is planned first (module `layout`), then files are written in parallel, each from its own seed.
//! [`tick`] then simulates two hours of use, for incremental-backup benchmarks.

mod content;
mod git;
mod layout;
mod rng;
mod sqlite;
mod text;
mod tick;
mod time;

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};

pub use tick::{tick, TickSummary};

/// Which generation of OpenClaw's on-disk state to imitate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Era {
    /// File era: `sessions.json`, `memory/<agent>.sqlite`, `cron/jobs.json` and run logs.
    File,
    /// SQLite era: `state/openclaw.sqlite` and `agents/<id>/agent/openclaw-agent.sqlite`.
    Sqlite,
    /// Both sets, as in a home migrated from one to the other.
    #[default]
    Both,
}

impl FromStr for Era {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Era> {
        match s.to_ascii_lowercase().as_str() {
            "file" => Ok(Era::File),
            "sqlite" => Ok(Era::Sqlite),
            "both" => Ok(Era::Both),
            _ => bail!("unknown era {s:?}: expected file, sqlite or both"),
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// The fake home; the state dir is `<root>/.openclaw`.
    pub root: PathBuf,
    /// Total bytes to write (met within a few percent).
    pub total_bytes: u64,
    /// Approximate number of files; by default derived from the size (20k at 500 MB, 100k at
    /// 3 GB; one per 2 KB with `small_files`).
    pub files: Option<u64>,
    pub seed: u64,
    pub era: Era,
    /// Most files tiny (200 B - 4 KB): big `node_modules` trees in workspace projects, many
    /// small notes and sessions.
    pub small_files: bool,
    /// Number of agents: `main`, then `research` (`.openclaw/workspace-research`), then `ops`
    /// whose workspace is outside the state dir (`~/projects/agent-ws`), then more.
    pub agents: usize,
}

impl Options {
    pub fn new(root: impl Into<PathBuf>, total_bytes: u64) -> Options {
        Options { root: root.into(), total_bytes, files: None, seed: 0, era: Era::Both, small_files: false, agents: 2 }
    }
}

/// What [`generate`] made.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Regular files under the root, counted after generation.
    pub files: u64,
    pub bytes: u64,
    pub state_dir: PathBuf,
    /// Every agent workspace, in agent order (the first is `main`'s).
    pub workspaces: Vec<PathBuf>,
    /// The SQLite database files (without their `-wal`/`-shm` sidecars).
    pub databases: Vec<PathBuf>,
    /// The git project in the main workspace, unless git was unavailable.
    pub git_project: Option<PathBuf>,
    /// Things skipped, for the caller to report (e.g. no `git` on PATH).
    pub warnings: Vec<String>,
}

/// Generates an OpenClaw home at `opts.root`, which must not already contain `.openclaw`.
pub fn generate(opts: &Options) -> Result<Summary> {
    if opts.total_bytes < 256 * 1024 {
        bail!("size {} is too small: generate at least 256K", opts.total_bytes);
    }
    if opts.agents == 0 || opts.agents > 64 {
        bail!("agents must be between 1 and 64, got {}", opts.agents);
    }
    let root = &opts.root;
    let state_dir = root.join(layout::STATE);
    if state_dir.exists() {
        bail!("{} already exists: generate into an empty directory", state_dir.display());
    }
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;

    let mut plan = layout::plan(opts);
    let mut warnings = Vec::new();
    if plan.git.is_some() && !git::available() {
        warnings.push("git not found on PATH: the workspace git project was skipped".to_string());
        plan.git = None;
    }
    let dirs = plan.dirs();
    for d in &dirs {
        let p = root.join(d);
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    }

    enum Job<'a> {
        Db(&'a sqlite::DbSpec),
        Git(&'a git::GitSpec),
        File(&'a content::FileSpec),
    }
    // Slow jobs first so they overlap with the many small ones.
    let mut jobs: Vec<Job> = Vec::with_capacity(plan.files.len() + plan.dbs.len() + 1);
    let mut dbs: Vec<&sqlite::DbSpec> = plan.dbs.iter().collect();
    dbs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.rel.cmp(&b.rel)));
    jobs.extend(dbs.into_iter().map(Job::Db));
    jobs.extend(plan.git.iter().map(Job::Git));
    jobs.extend(plan.files.iter().map(Job::File));

    // Threads claim runs of neighbouring files, so they seldom create files in the same
    // directory at once (they would serialise on its lock).
    let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, job) in jobs.iter().enumerate() {
        let heavy = !matches!(job, Job::File(_));
        if let Job::File(f) = job {
            bytes += f.size;
        }
        if heavy || i + 1 - start >= 64 || bytes >= 16 << 20 {
            batches.push(start..i + 1);
            start = i + 1;
            bytes = 0;
        }
    }
    if start < jobs.len() {
        batches.push(start..jobs.len());
    }

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 4);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut buf = Vec::with_capacity(2 << 20);
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= batches.len() || failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        for job in &jobs[batches[b].clone()] {
                            let r = match job {
                                Job::Db(d) => sqlite::create(root, d),
                                Job::Git(g) => git::create(root, g),
                                Job::File(f) => content::write_file(root, f, &mut buf)
                                    .with_context(|| format!("writing {}", root.join(&f.rel).display())),
                            };
                            if r.is_err() {
                                failed.store(true, Ordering::Relaxed);
                                return r;
                            }
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("generator thread panicked"))))
            .collect()
    });
    for r in results {
        r?;
    }

    // Directory mtimes last, deepest first, so writing children does not disturb them.
    for d in dirs.iter().rev() {
        if let Ok(f) = fs::File::open(root.join(d)) {
            let _ = f.set_modified(content::mtime(time::END - 3_600));
        }
    }

    let (files, bytes) = walk(root)?;
    Ok(Summary {
        files,
        bytes,
        state_dir,
        workspaces: plan.agents.iter().map(|a| root.join(&a.workspace)).collect(),
        databases: plan.dbs.iter().map(|d| root.join(&d.rel)).collect(),
        git_project: plan.git.as_ref().map(|g| root.join(&g.rel)),
        warnings,
    })
}

/// Counts regular files and their bytes under `dir` (symlinks are not followed).
fn walk(dir: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files += 1;
                bytes += e.metadata()?.len();
            }
        }
    }
    Ok((files, bytes))
}

/// Parses a size: plain bytes, or a number with a unit. `K`, `M`, `G`, `T` (with or without a
/// trailing `B`) are decimal (`500M` is 500,000,000 bytes); `KiB`, `MiB`, `GiB`, `TiB` binary.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().with_context(|| format!("invalid size {s:?}: expected e.g. 20M, 1.5G or 4096"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        u => bail!("invalid size {s:?}: unknown unit {u:?} (use K, M, G, T or KiB, MiB, GiB, TiB)"),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || !(0.0..=1e15).contains(&bytes) {
        bail!("invalid size {s:?}");
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests;
