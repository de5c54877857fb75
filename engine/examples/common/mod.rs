//! Helpers shared by the measuring examples (`mod common;` in each).

use std::path::{Path, PathBuf};

/// Every regular file under `root`, recursively, appended to `out` (unreadable folders and
/// entries are skipped; symlinks are not followed).
pub fn files(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else { return };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            files(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}
