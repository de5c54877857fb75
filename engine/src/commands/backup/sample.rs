//! Samples for a repository's first dictionaries (format-spec §16). A backup into a repository
//! that has no dictionary first lists what it is about to back up (with the same exclusions as the
//! walk), picks files of each [`Family`] spread evenly over the whole tree, and reads the head of
//! each: a dictionary trained on the first blobs of a backup knows only the first folders it
//! read, one trained on samples from everywhere compresses all of it (on a 1.9 GB mixed home the
//! dictionaries then saved 3.6% of the compressed content instead of 1.6%).
//!
//! Files are picked by a hash of their path (the lowest hashes of each family), so the choice
//! does not depend on the order in which the parallel listing meets them. Files that may hold
//! secrets are never sampled: a dictionary outlives every snapshot (prune never deletes one).

use super::exclude::{Rules, Scope, CLAWBACKIGNORE, GITIGNORE};
use super::file::incompressible_name;
use super::walk::{in_pool, lister_pool};
use super::BackupOptions;
use crate::backend::{Backend, Kind};
use crate::format::dict::{self, Family, Samples};
use crate::openclaw::sqlite;
use crate::repo::dicts::SAMPLE_PIECE;
use parking_lot::Mutex;
use rayon::prelude::*;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Files picked per family; their heads are read until [`SAMPLE_BUDGET`] bytes are sampled.
const FILES_PER_FAMILY: usize = 1024;
/// Bytes sampled per family. Measured with `engine/examples/dict_gain.rs` on a 1.9 GB mixed home,
/// one dictionary per family on samples spread over it: 2 MiB stored 568.0 MB, 1 MiB 569.9 MB,
/// and trains in half the time (0.36 s of CPU for five families instead of 0.64 s).
const SAMPLE_BUDGET: usize = 1 << 20;
/// Files shorter than this are not worth a sample.
const MIN_FILE: u64 = 64;

/// Samples for each family's dictionary.
pub(super) type FamilySamples = Vec<(Family, Samples)>;

/// The lowest-keyed files met so far, per family (a max-heap of at most [`FILES_PER_FAMILY`]).
type Picks = [BinaryHeap<(u64, PathBuf)>; Family::ALL.len()];

/// Whether a file's name or a folder below the backed-up `root` says it may hold secrets (keys,
/// tokens, credentials, the OpenClaw config with its API keys).
fn may_hold_secrets(root: &Path, path: &Path) -> bool {
    let path = path.strip_prefix(root).unwrap_or(path);
    const WORDS: &[&str] = &[
        "secret",
        "credential",
        "token",
        "auth",
        "passw",
        "key",
        ".env",
        "openclaw.json",
        "id_rsa",
        "id_ed25519",
        ".netrc",
        ".npmrc",
        ".pypirc",
        "cookie",
        "session-store",
    ];
    path.components().any(|c| {
        let s = c.as_os_str().to_string_lossy().to_ascii_lowercase();
        WORDS.iter().any(|w| s.contains(w)) || s == ".ssh" || s == ".gnupg" || s == ".aws"
    })
}

fn key_of(path: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.as_os_str().as_bytes().hash(&mut h);
    h.finish()
}

fn pick(picks: &mut Picks, family: Family, key: u64, path: PathBuf) {
    let heap = &mut picks[family as usize];
    if heap.len() < FILES_PER_FAMILY {
        heap.push((key, path));
    } else if heap.peek().is_some_and(|(top, _)| key < *top) {
        heap.pop();
        heap.push((key, path));
    }
}

/// The head of a file, if it is a sample worth having: long enough, not a database, and text
/// that zstd shrinks. A file that says it is empty (as those of `/proc` do) is not read.
fn read_head(path: &Path) -> Option<Vec<u8>> {
    let f = crate::repo::prefetch::open_to_read(path, 0).ok()?;
    if f.metadata().ok()?.len() < MIN_FILE {
        return None;
    }
    let mut head = Vec::new();
    f.take(SAMPLE_PIECE as u64).read_to_end(&mut head).ok()?;
    if (head.len() as u64) < MIN_FILE || head.starts_with(sqlite::HEADER) {
        return None;
    }
    thread_local! {
        // One context per listing thread, not one per head (each new one cost about 0.1 ms).
        static Z: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let z = Z.with(|z| {
        let mut z = z.borrow_mut();
        if z.is_none() {
            *z = zstd::bulk::Compressor::new(1).ok();
        }
        z.as_mut()?.compress(&head).ok()
    })?;
    (z.len() < head.len() - head.len() / 32).then_some(head)
}

/// Lists what a backup is about to read and reads the heads of the files it picks.
pub(super) struct Sampler<'a> {
    pub(super) rules: &'a Rules,
    /// Whether to stop early (an interrupted backup, a presample not needed).
    pub(super) stop: &'a (dyn Fn() -> bool + Sync),
}

impl Sampler<'_> {
    /// Samples for one dictionary per family, from the files under `paths` the walk would read
    /// (families with nothing to sample are left out). Run it in a pool of many threads: cold
    /// folder reads wait on the disk.
    pub(super) fn samples(&self, paths: &[PathBuf]) -> FamilySamples {
        let picks: Mutex<Picks> = Mutex::new(Default::default());
        let quiet = |_: &Path, _: String| {};
        for p in paths {
            // The ignore files of the folders above a backed-up path apply to it, as in the walk.
            let mut scope = Scope::default();
            let ancestors: Vec<&Path> = p.ancestors().skip(1).collect();
            for a in ancestors.into_iter().rev() {
                scope = self.rules.scope_below(a, &scope, None, &quiet);
            }
            let Ok(md) = std::fs::symlink_metadata(p) else { continue };
            if self.rules.exclusion(p, md.is_dir(), &scope).is_some() {
                continue;
            }
            let root = p.parent().unwrap_or(p);
            if md.is_dir() {
                self.sample_dir(root, p, &scope, &picks);
            } else if md.is_file() && md.len() >= MIN_FILE {
                consider(root, p, &mut picks.lock());
            }
        }
        let mut out = Vec::new();
        for (family, heap) in Family::ALL.into_iter().zip(picks.into_inner()) {
            let mut files = heap.into_vec();
            files.sort();
            let mut samples = Samples::default();
            // In batches read in parallel, until the budget is sampled.
            for batch in files.chunks(64) {
                if samples.len() >= SAMPLE_BUDGET || (self.stop)() {
                    break;
                }
                let heads: Vec<Vec<u8>> = batch.par_iter().filter_map(|(_, p)| read_head(p)).collect();
                for h in &heads {
                    if samples.len() < SAMPLE_BUDGET {
                        samples.push(h);
                    }
                }
            }
            if !samples.is_empty() {
                out.push((family, samples));
            }
        }
        out
    }

    fn sample_dir(&self, root: &Path, dir: &Path, scope: &Scope, picks: &Mutex<Picks>) {
        if (self.stop)() {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut entries = Vec::new();
        let (mut git, mut claw) = (false, false);
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name();
            git |= ft.is_file() && name == GITIGNORE;
            claw |= ft.is_file() && name == CLAWBACKIGNORE;
            entries.push((dir.join(&name), ft));
        }
        // (The walk reports an ignore file it cannot use; a second pass over it does not.)
        let scope = self.rules.scope_below(dir, scope, Some((git, claw)), &|_, _| {});
        let mut dirs = Vec::new();
        let mut local: Vec<PathBuf> = Vec::new();
        for (path, ft) in entries {
            if self.rules.exclusion(&path, ft.is_dir(), &scope).is_some() {
                continue;
            }
            if ft.is_dir() {
                dirs.push(path);
            } else if ft.is_file() {
                local.push(path);
            }
        }
        if !local.is_empty() {
            let mut g = picks.lock();
            for p in local {
                consider(root, &p, &mut g);
            }
        }
        dirs.par_iter().for_each(|d| self.sample_dir(root, d, &scope, picks));
    }
}

fn consider(root: &Path, path: &Path, picks: &mut Picks) {
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if incompressible_name(path) || sqlite::sidecar_base(name).is_some() || may_hold_secrets(root, path) {
        return;
    }
    pick(picks, Family::of_name(name), key_of(path), path.to_path_buf());
}

/// Trains each family's dictionary, in parallel (in the pool this runs in): each trainer holds
/// about 6 MiB, and all five took about 0.1 s of CPU.
pub(super) fn train(samples: FamilySamples) -> Vec<(Family, Vec<u8>)> {
    samples.into_par_iter().filter_map(|(f, s)| Some((f, s.train(dict::TRAINED_SIZE)?))).collect()
}

/// The samples for a first backup's dictionaries, taken in a thread of their own while the
/// repository is opened: deriving the key from the password takes about 0.1 s of one core, and
/// listing a tree cold waits on the disk, so each fills the other's idle time (the walk of a
/// 500 MB home began 0.39-0.47 s after the start instead of 0.52-0.62 s). The backup trains the
/// dictionaries itself, in its walker threads: trained here, at the same time as the key's
/// 32 MiB, or in threads whose freed memory the walk does not reuse, they raised its peak by up
/// to 8 MiB. Started only where a first backup is likely (this machine never opened the
/// repository), the thread goes on only when the repository lists no snapshot and no
/// dictionary. The backup takes the samples if it wants dictionaries ([`Presample::take`]), and
/// samples itself if the thread did not.
pub struct Presample {
    stop: Arc<AtomicBool>,
    /// Whether the backup took samples from it.
    used: AtomicBool,
    thread: Mutex<Option<JoinHandle<Option<FamilySamples>>>>,
}

impl std::fmt::Debug for Presample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presample")
    }
}

impl Presample {
    /// Starts sampling what `opts` would back up (its paths, excludes, skipped paths and gitignore
    /// roots) into the repository at `backend`.
    pub fn start(backend: Arc<dyn Backend>, opts: &BackupOptions) -> Arc<Presample> {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, opts) = (stop.clone(), opts.clone());
        let thread = std::thread::Builder::new()
            .name("clawback-sample".into())
            .spawn(move || {
                // A repository with a snapshot has a parent to offer or dictionaries of its own;
                // one with a dictionary needs none trained.
                let none = |k: Kind| backend.list(k).is_ok_and(|l| l.is_empty());
                if !none(Kind::Snapshot) || !none(Kind::Dict) {
                    return None;
                }
                let rules = Rules::of(&opts, None).ok()?;
                let paths = super::backup_paths(&opts).ok()?;
                let stop = || flag.load(Relaxed);
                let sampler = Sampler { rules: &rules, stop: &stop };
                let samples = in_pool(&lister_pool(), || sampler.samples(&paths));
                (!stop()).then_some(samples)
            })
            .ok();
        Arc::new(Presample { stop, used: AtomicBool::new(false), thread: Mutex::new(thread) })
    }

    /// Waits for the thread: the samples it took, or `None` if it did not sample.
    pub(super) fn take(&self) -> Option<FamilySamples> {
        let samples = self.thread.lock().take()?.join().ok().flatten();
        self.used.store(samples.is_some(), Relaxed);
        samples
    }

    /// Whether the backup's dictionaries were trained on this thread's samples.
    pub fn used(&self) -> bool {
        self.used.load(Relaxed)
    }

    /// Tells the thread to stop early: its samples are not needed.
    pub(super) fn cancel(&self) {
        self.stop.store(true, Relaxed);
    }
}

impl Drop for Presample {
    fn drop(&mut self) {
        self.cancel();
        if let Some(t) = self.thread.get_mut().take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_by_name_and_folder() {
        let root = Path::new("/home/keys");
        for p in ["openclaw.json", "credentials/x.json", "p/.env.local", "API_KEYS.md", "a/.ssh/config"] {
            assert!(may_hold_secrets(root, &root.join(p)), "{p}");
        }
        for p in ["agents/main/sessions/s1.jsonl", "ws/MEMORY.md", "ws/src/main.rs"] {
            assert!(!may_hold_secrets(root, &root.join(p)), "{p} (the folders above the root do not count)");
        }
    }

    /// The thread samples only for a repository that lists no snapshot and no dictionary, and
    /// then what the walk would read (the excludes and skipped paths apply).
    #[test]
    fn a_presample_samples_only_a_repository_with_no_snapshot_and_no_dictionary() {
        use crate::backend::local::LocalBackend;
        use crate::backend::ObjectName;
        use crate::format::id::{DictId, SnapshotId};
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        for i in 0..40 {
            let text = format!("{{\"turn\":{i},\"text\":\"a note about the garden and the weather\"}}\n").repeat(20);
            for sub in ["kept", "excluded", "skipped"] {
                std::fs::create_dir_all(src.join(sub)).unwrap();
                std::fs::write(src.join(sub).join(format!("{i}.jsonl")), &text).unwrap();
            }
        }
        let opts = BackupOptions {
            paths: vec![src.clone()],
            excludes: vec![format!("{}/excluded/", src.display())],
            skip_paths: vec![src.join("skipped")],
            ..Default::default()
        };
        let sampled = |be: &Arc<LocalBackend>| Presample::start(be.clone(), &opts).take();
        let repo = |name: &str| {
            let be = Arc::new(LocalBackend::new(dir.path().join(name)));
            let kdf = crate::format::crypto::KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 };
            let init = crate::repo::InitOptions { kdf, ..Default::default() };
            crate::repo::Repository::init(be.clone(), &crate::repo::Secret(b"pw".to_vec()), &init).unwrap();
            be
        };
        let be = repo("repo");
        let samples = sampled(&be).expect("an empty repository is sampled");
        assert_eq!(samples.len(), 1, "one family");
        assert_eq!(samples[0].0, Family::Json);
        // 40 heads of the kept folder only.
        assert_eq!(samples[0].1.count(), 40);

        be.write(&ObjectName::of(&DictId::of_bytes(b"d")), b"d").unwrap();
        assert!(sampled(&be).is_none(), "a repository with a dictionary");
        let be = repo("repo2");
        be.write(&ObjectName::of(&SnapshotId::of_bytes(b"s")), b"s").unwrap();
        assert!(sampled(&be).is_none(), "a repository with a snapshot");
    }

    #[test]
    fn the_lowest_keys_are_kept_whatever_the_order() {
        let paths: Vec<PathBuf> = (0..3000).map(|i| PathBuf::from(format!("/d/{i}.md"))).collect();
        let mut a: Picks = Default::default();
        let mut b: Picks = Default::default();
        for p in &paths {
            pick(&mut a, Family::Prose, key_of(p), p.clone());
        }
        for p in paths.iter().rev() {
            pick(&mut b, Family::Prose, key_of(p), p.clone());
        }
        let (mut a, mut b) = (a[2].clone().into_vec(), b[2].clone().into_vec());
        a.sort();
        b.sort();
        assert_eq!(a.len(), FILES_PER_FAMILY);
        assert_eq!(a, b);
    }
}
