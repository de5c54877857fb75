//! What is left out of a backup and why: clawback's own folders, the exclude patterns (gitignore
//! syntax on absolute paths), and the ignore files met on the way down: under
//! [`super::BackupOptions::gitignore_roots`] every `.gitignore` applies to its folder's subtree as
//! in git (deeper files win, `!` re-includes); `.clawbackignore` files do the same anywhere.
//! Neither can bring back what the patterns leave out.

use super::Ctx;
use crate::error::{Error, Result};
use crate::repo::host::absolute_clean;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What applies below a folder: the ignore files met on the way down, and which backed-up path
/// the folder belongs to (for the dry-run report). Cloning is cheap.
#[derive(Clone, Default)]
pub(super) struct Scope {
    pub(super) ignores: Option<Arc<IgnoreLayer>>,
    pub(super) root: usize,
}

/// One `.gitignore` or `.clawbackignore`, and the layers above it.
pub(super) struct IgnoreLayer {
    pub(super) parent: Option<Arc<IgnoreLayer>>,
    pub(super) matcher: Gitignore,
    pub(super) file: &'static str,
    pub(super) dir: PathBuf,
}

pub(super) const GITIGNORE: &str = ".gitignore";
pub(super) const CLAWBACKIGNORE: &str = ".clawbackignore";

/// Why an entry is left out.
pub(super) enum Exclusion<'a> {
    /// The repository, the cache, or clawback's own temporary folder.
    Own,
    Pattern(&'a str),
    IgnoreFile(&'a IgnoreLayer, &'a str),
}

pub fn build_excludes(patterns: &[String]) -> Result<Gitignore> {
    let mut b = GitignoreBuilder::new("/");
    for p in patterns {
        b.add_line(None, p).map_err(|e| Error::Usage(format!("bad exclude pattern {p:?}: {e}")))?;
    }
    b.build().map_err(|e| Error::Usage(format!("bad exclude patterns: {e}")))
}

/// Why an entry is left out, if it is: one of `skip`, an `excludes` pattern, or an ignore file of
/// the folders above it.
pub(super) fn exclusion<'s>(
    skip: &HashSet<PathBuf>,
    excludes: &'s Gitignore,
    child: &Path,
    is_dir: bool,
    scope: &'s Scope,
) -> Option<Exclusion<'s>> {
    if skip.contains(child) {
        return Some(Exclusion::Own);
    }
    if let Match::Ignore(g) = excludes.matched(child, is_dir) {
        return Some(Exclusion::Pattern(g.original()));
    }
    let mut layer = scope.ignores.as_deref();
    while let Some(l) = layer {
        match l.matcher.matched(child, is_dir) {
            Match::Ignore(g) => return Some(Exclusion::IgnoreFile(l, g.original())),
            Match::Whitelist(_) => return None,
            Match::None => layer = l.parent.as_deref(),
        }
    }
    None
}

/// What a backup leaves out before any ignore file is read: its own folders, the exclude
/// patterns, and the folders under which `.gitignore` files count. The walk, the read-ahead thread
/// and the dictionary sampler ([`super::sample`]) apply the same rules.
#[derive(Clone)]
pub(super) struct Rules {
    pub(super) excludes: Gitignore,
    pub(super) skip: HashSet<PathBuf>,
    pub(super) gitignore_roots: Vec<PathBuf>,
}

impl Rules {
    /// The rules of `opts` (paths made absolute and clean; `skip` also leaves out `extra_skip`).
    pub(super) fn of(opts: &super::BackupOptions, extra_skip: Option<&Path>) -> Result<Rules> {
        let mut gitignore_roots = Vec::new();
        for r in &opts.gitignore_roots {
            gitignore_roots.push(absolute_clean(r)?);
        }
        let skip = opts
            .skip_paths
            .iter()
            .map(PathBuf::as_path)
            .chain(extra_skip)
            .filter_map(|p| absolute_clean(p).ok())
            .collect();
        Ok(Rules { excludes: build_excludes(&opts.excludes)?, skip, gitignore_roots })
    }

    /// The scope below `dir`: `scope` plus the folder's `.gitignore` (under a gitignore root) and
    /// `.clawbackignore`. `listed`: whether each of the two is in the folder's listing (`None`:
    /// look). `warn` is told of a `.clawbackignore` it cannot use, wholly or in part.
    pub(super) fn scope_below(
        &self,
        dir: &Path,
        scope: &Scope,
        listed: Option<(bool, bool)>,
        warn: &dyn Fn(&Path, String),
    ) -> Scope {
        let (git, claw) = listed.unwrap_or_else(|| {
            let is = |f: &str| std::fs::symlink_metadata(dir.join(f)).is_ok_and(|m| m.is_file());
            (is(GITIGNORE), is(CLAWBACKIGNORE))
        });
        let git = git && self.gitignore_roots.iter().any(|r| dir.starts_with(r));
        if !git && !claw {
            return scope.clone();
        }
        let mut s = scope.clone();
        for (file, on) in [(GITIGNORE, git), (CLAWBACKIGNORE, claw)] {
            if !on {
                continue;
            }
            let mut b = GitignoreBuilder::new(dir);
            let f = dir.join(file);
            if let Some(e) = b.add(&f) {
                // git skips a line it cannot parse; so does this, and says so for our own file.
                if file == CLAWBACKIGNORE {
                    warn(&f, format!("some lines were not used: {e}"));
                }
            }
            match b.build() {
                Ok(matcher) if !matcher.is_empty() => {
                    s.ignores =
                        Some(Arc::new(IgnoreLayer { parent: s.ignores.take(), matcher, file, dir: dir.to_path_buf() }));
                }
                Ok(_) => {}
                Err(e) => {
                    if file == CLAWBACKIGNORE {
                        warn(&f, format!("not used: {e}"));
                    }
                }
            }
        }
        s
    }

    /// Why `child` is left out, if it is: clawback's own folders, then the exclude patterns, then
    /// the ignore files from the deepest up (the first that decides wins, as in git).
    pub(super) fn exclusion<'s>(&'s self, child: &Path, is_dir: bool, scope: &'s Scope) -> Option<Exclusion<'s>> {
        exclusion(&self.skip, &self.excludes, child, is_dir, scope)
    }
}

impl Ctx<'_> {
    /// The scope below `dir` ([`Rules::scope_below`]), reporting a `.clawbackignore` it cannot use.
    pub(super) fn enter_dir(&self, dir: &Path, scope: &Scope, listed: Option<(bool, bool)>) -> Scope {
        self.rules.scope_below(dir, scope, listed, &|f, e| self.issue(&self.warnings, f, e))
    }

    pub(super) fn exclusion<'s>(&'s self, child: &Path, is_dir: bool, scope: &'s Scope) -> Option<Exclusion<'s>> {
        self.rules.exclusion(child, is_dir, scope)
    }
}
