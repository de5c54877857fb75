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

use super::exclude::{Scope, CLAWBACKIGNORE, GITIGNORE};
use super::file::incompressible_name;
use super::Ctx;
use crate::format::dict::{Family, Samples};
use crate::openclaw::sqlite;
use crate::repo::dicts::SAMPLE_PIECE;
use parking_lot::Mutex;
use rayon::prelude::*;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Files picked per family; their heads are read until [`SAMPLE_BUDGET`] bytes are sampled.
const FILES_PER_FAMILY: usize = 1024;
/// Bytes sampled per family. Measured with `engine/examples/dict_gain.rs` on a 1.9 GB mixed home,
/// one dictionary per family on samples spread over it: 2 MiB stored 568.0 MB, 1 MiB 569.9 MB,
/// and trains in half the time (0.36 s of CPU for five families instead of 0.64 s).
const SAMPLE_BUDGET: usize = 1 << 20;
/// Files shorter than this are not worth a sample.
const MIN_FILE: u64 = 64;

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
    let z = zstd::bulk::compress(&head, 1).ok()?;
    (z.len() < head.len() - head.len() / 32).then_some(head)
}

impl Ctx<'_> {
    /// Samples for one dictionary per family, from the files under `paths` the walk would read
    /// (families with nothing to sample are left out).
    pub(super) fn dictionary_samples(&self, paths: &[PathBuf]) -> Vec<(Family, Samples)> {
        let picks: Mutex<Picks> = Mutex::new(Default::default());
        for p in paths {
            // The ignore files of the folders above a backed-up path apply to it, as in the walk.
            let mut scope = Scope::default();
            let ancestors: Vec<&Path> = p.ancestors().skip(1).collect();
            for a in ancestors.into_iter().rev() {
                scope = self.scope_below(a, &scope, None, false);
            }
            let Ok(md) = std::fs::symlink_metadata(p) else { continue };
            if self.exclusion(p, md.is_dir(), &scope).is_some() {
                continue;
            }
            let root = p.parent().unwrap_or(p);
            if md.is_dir() {
                self.sample_dir(root, p, &scope, &picks);
            } else if md.is_file() && md.len() >= MIN_FILE {
                self.consider(root, p, &mut picks.lock());
            }
        }
        let mut out = Vec::new();
        for (family, heap) in Family::ALL.into_iter().zip(picks.into_inner()) {
            let mut files = heap.into_vec();
            files.sort();
            let mut samples = Samples::default();
            // In batches read in parallel, until the budget is sampled.
            for batch in files.chunks(64) {
                if samples.len() >= SAMPLE_BUDGET || self.progress.stopped() {
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

    fn consider(&self, root: &Path, path: &Path, picks: &mut Picks) {
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        if incompressible_name(path) || sqlite::sidecar_base(name).is_some() || may_hold_secrets(root, path) {
            return;
        }
        pick(picks, Family::of_name(name), key_of(path), path.to_path_buf());
    }

    fn sample_dir(&self, root: &Path, dir: &Path, scope: &Scope, picks: &Mutex<Picks>) {
        if self.progress.stopped() {
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
        let scope = self.scope_below(dir, scope, Some((git, claw)), false);
        let mut dirs = Vec::new();
        let mut local: Vec<PathBuf> = Vec::new();
        for (path, ft) in entries {
            if self.exclusion(&path, ft.is_dir(), &scope).is_some() {
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
                self.consider(root, &p, &mut g);
            }
        }
        dirs.par_iter().for_each(|d| self.sample_dir(root, d, &scope, picks));
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
