//! The dry-run report: what each backed-up path would hold, what is left out and why (with the
//! size of each left-out subtree), and the largest files, gathered while the walk runs.

use super::exclude::Exclusion;
use super::exclude::Scope;
use super::Ctx;
use parking_lot::Mutex;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What a backup would read and leave out (filled on a dry run).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DryRunReport {
    /// Per backed-up path: the files and bytes the snapshot would hold (read, or reused from the
    /// parent when unchanged; a database counts with its image's size).
    pub roots: Vec<RootUsage>,
    /// Everything left out, largest first; a left-out folder is one entry with its whole subtree.
    pub excluded: Vec<ExcludedEntry>,
    /// The largest files included, largest first (at most [`LARGEST_FILES`]).
    pub largest: Vec<FileUsage>,
    pub included_files: u64,
    pub included_bytes: u64,
    pub excluded_files: u64,
    pub excluded_bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RootUsage {
    pub path: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ExcludedEntry {
    pub path: String,
    /// A folder (its size is its subtree's).
    pub dir: bool,
    pub files: u64,
    pub bytes: u64,
    /// Why: the pattern's reason from `exclude_reasons`, `matches --exclude PAT`,
    /// `.gitignore in DIR`, `.clawbackignore in DIR`, or a SQLite sidecar.
    pub reason: String,
    /// The pattern that matched, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FileUsage {
    pub path: String,
    pub bytes: u64,
}

/// How many of the largest included files a dry run lists.
pub const LARGEST_FILES: usize = 20;

/// The dry-run report as it is being gathered.
pub(super) struct ReportAcc {
    /// The backed-up paths (sorted) with their file and byte counts.
    pub(super) roots: Vec<(PathBuf, AtomicU64, AtomicU64)>,
    pub(super) excluded: Mutex<Vec<ExcludedEntry>>,
    pub(super) largest: Mutex<BinaryHeap<Reverse<(u64, PathBuf)>>>,
}

impl ReportAcc {
    pub(super) fn finish(self) -> DryRunReport {
        let mut r = DryRunReport::default();
        // A path inside another backed-up path is counted with it.
        let all: Vec<PathBuf> = self.roots.iter().map(|(p, ..)| p.clone()).collect();
        for (p, files, bytes) in self.roots {
            if all.iter().any(|a| a != &p && p.starts_with(a)) {
                continue;
            }
            let (files, bytes) = (files.into_inner(), bytes.into_inner());
            r.included_files += files;
            r.included_bytes += bytes;
            r.roots.push(RootUsage { path: p.to_string_lossy().into_owned(), files, bytes });
        }
        r.excluded = self.excluded.into_inner();
        r.excluded.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
        r.excluded_files = r.excluded.iter().map(|e| e.files).sum();
        r.excluded_bytes = r.excluded.iter().map(|e| e.bytes).sum();
        r.largest = self
            .largest
            .into_inner()
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((bytes, p))| FileUsage { path: p.to_string_lossy().into_owned(), bytes })
            .collect();
        r
    }
}

/// Files and bytes under `p` (itself if a file), by metadata alone, without following links.
pub(super) fn subtree_size(p: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack = vec![p.to_path_buf()];
    while let Some(q) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&q) else {
            continue;
        };
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&q) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            files += 1;
            if md.is_file() {
                bytes += md.len();
            }
        }
    }
    (files, bytes)
}

impl Ctx<'_> {
    /// Which backed-up path `p` is (for the dry-run report).
    pub(super) fn root_index(&self, p: &Path) -> usize {
        match &self.report {
            Some(r) => r.roots.binary_search_by(|(q, ..)| q.as_path().cmp(p)).unwrap_or(0),
            None => 0,
        }
    }

    /// Records a left-out entry in the dry-run report, with its subtree's size.
    pub(super) fn note_excluded(&self, child: &Path, is_dir: bool, why: Exclusion<'_>) {
        let Some(r) = &self.report else { return };
        let (reason, pattern) = match why {
            Exclusion::Own => ("clawback's own repository, cache or temporary files".to_string(), None),
            Exclusion::Pattern(p) => {
                (self.reasons.get(p).cloned().unwrap_or_else(|| format!("matches --exclude {p}")), Some(p.to_string()))
            }
            Exclusion::IgnoreFile(l, p) => (format!("{} in {}", l.file, l.dir.display()), Some(p.to_string())),
        };
        let (files, bytes) = subtree_size(child);
        r.excluded.lock().push(ExcludedEntry {
            path: child.to_string_lossy().into_owned(),
            dir: is_dir,
            files,
            bytes,
            reason,
            pattern,
        });
    }

    /// A database's sidecar, not stored because the database is stored as an image.
    pub(super) fn skip_sidecar(&self, path: &Path, base: &[u8], suffix: &str) {
        let base = String::from_utf8_lossy(base);
        let reason = format!("SQLite {suffix} file of {base}: the database is stored as a consistent image instead");
        if let Some(r) = &self.report {
            let bytes = std::fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0);
            r.excluded.lock().push(ExcludedEntry {
                path: path.to_string_lossy().into_owned(),
                dir: false,
                files: 1,
                bytes,
                reason: reason.clone(),
                pattern: None,
            });
        }
        self.issue(&self.skipped, path, reason);
    }

    /// Counts an included file in the dry-run report.
    pub(super) fn account(&self, scope: &Scope, path: &Path, size: u64) {
        let Some(r) = &self.report else { return };
        if let Some((_, files, bytes)) = r.roots.get(scope.root) {
            files.fetch_add(1, Relaxed);
            bytes.fetch_add(size, Relaxed);
        }
        let mut h = r.largest.lock();
        if h.len() < LARGEST_FILES || h.peek().is_some_and(|Reverse((s, _))| *s < size) {
            h.push(Reverse((size, path.to_path_buf())));
            if h.len() > LARGEST_FILES {
                h.pop();
            }
        }
    }
}
