//! Loading a snapshot's trees ahead of a restore's walk. The walk is depth first and needs one tree
//! at a time; with no local cache each is a ranged read of a pack (one request on S3), so a few
//! threads load the folders the walk will enter next while it works on the current one.
//!
//! Wanted trees go on a stack (the last wanted, the first loaded: the order of a depth-first walk);
//! the loaded ones wait, at most [`AHEAD_BYTES`] of them, until the walk takes them. The walk never
//! waits for a tree no thread has started: it loads that one itself, so a full window cannot stall it.

use crate::error::Result;
use crate::format::id::TreeId;
use crate::format::tree::Tree;
use crate::repo::Repository;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Loaded trees (their encoded size, roughly) that may wait for the walk.
const AHEAD_BYTES: usize = 16 << 20;

#[derive(Default)]
struct State {
    /// Wanted and not started, the next on top; an id no longer in `queued` was taken by the walk.
    stack: Vec<TreeId>,
    /// How many times each tree is wanted and not yet taken (the same folder may appear twice).
    queued: HashMap<TreeId, usize>,
    loading: HashSet<TreeId>,
    /// Loaded, waiting for the walk (with how many takes are left), and their size. A tree that
    /// failed to load is `None`: the walk loads it again itself, and fails with the real error.
    loaded: HashMap<TreeId, (Option<Arc<Tree>>, usize)>,
    loaded_bytes: usize,
    stop: bool,
}

/// Trees loaded ahead by `threads` threads; [`TreesAhead::run`] starts and stops them.
pub(super) struct TreesAhead<'a> {
    repo: &'a Repository,
    state: Mutex<State>,
    /// Signals the loaders (work or room) and the walk (a tree loaded).
    cv: Condvar,
}

fn weight(t: &Tree) -> usize {
    t.nodes.iter().map(|n| 96 + n.name.len() + n.target.len() + n.content.len() * 32).sum::<usize>() + 64
}

impl<'a> TreesAhead<'a> {
    /// Runs `walk` with `threads` loaders beside it (none: every tree is loaded when taken).
    pub(super) fn run<R>(repo: &'a Repository, threads: usize, walk: impl FnOnce(&TreesAhead<'a>) -> R) -> R {
        let ahead = TreesAhead { repo, state: Mutex::new(State::default()), cv: Condvar::new() };
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| ahead.loader());
            }
            let r = walk(&ahead);
            ahead.state.lock().stop = true;
            ahead.cv.notify_all();
            r
        })
    }

    /// Asks for these trees, the first to be taken first.
    pub(super) fn want<'t>(&self, ids: impl DoubleEndedIterator<Item = &'t TreeId>) {
        let mut st = self.state.lock();
        let mut any = false;
        for id in ids.rev() {
            *st.queued.entry(*id).or_default() += 1;
            st.stack.push(*id);
            any = true;
        }
        if any {
            self.cv.notify_all();
        }
    }

    /// The tree `id`: loaded ahead, or being loaded (waits for it), or loaded now.
    pub(super) fn take(&self, id: &TreeId) -> Result<Arc<Tree>> {
        let mut st = self.state.lock();
        if let Some(n) = st.queued.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                st.queued.remove(id);
            }
        }
        loop {
            if let Some((tree, left)) = st.loaded.get_mut(id) {
                let tree = tree.clone();
                if *left <= 1 {
                    st.loaded.remove(id);
                    st.loaded_bytes -= tree.as_deref().map_or(0, weight);
                    self.cv.notify_all();
                } else {
                    *left -= 1;
                }
                match tree {
                    Some(t) => return Ok(t),
                    None => break,
                }
            }
            if !st.loading.contains(id) {
                break;
            }
            self.cv.wait(&mut st);
        }
        drop(st);
        // Not started by a loader: the walk does not wait behind the window, it loads it.
        self.repo.load_tree(id).map(Arc::new)
    }

    fn loader(&self) {
        let mut st = self.state.lock();
        loop {
            if st.stop {
                return;
            }
            let Some(id) = (st.loaded_bytes < AHEAD_BYTES).then(|| st.stack.pop()).flatten() else {
                self.cv.wait(&mut st);
                continue;
            };
            // Taken by the walk already, or being loaded or loaded for an earlier want of it.
            if !st.queued.contains_key(&id) || st.loading.contains(&id) || st.loaded.contains_key(&id) {
                continue;
            }
            st.loading.insert(id);
            drop(st);
            let tree = self.repo.load_tree(&id).ok().map(Arc::new);
            st = self.state.lock();
            st.loading.remove(&id);
            // Every want not taken yet; one if the walk took it while it loaded (and waits).
            let wants = st.queued.get(&id).copied().unwrap_or(0).max(1);
            st.loaded_bytes += tree.as_deref().map_or(0, weight);
            st.loaded.insert(id, (tree, wants));
            self.cv.notify_all();
        }
    }
}
