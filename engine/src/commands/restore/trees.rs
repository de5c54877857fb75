//! Loading a snapshot's trees ahead of a restore's walk. The walk is depth first and needs one tree
//! at a time; with no local cache each is a ranged read of a pack (one request on S3), so a few
//! threads load the folders the walk will enter next while it works on the current one.
//!
//! With a local cache and a tree not in it (a new machine), the whole tree pack it lies in is read,
//! in a few long ranges, and every tree in it goes to the cache: one request per few MiB of trees
//! instead of one per folder, as restic's cache of tree packs does.
//!
//! Wanted trees go on a stack (the last wanted, the first loaded: the order of a depth-first walk);
//! the loaded ones wait, at most [`AHEAD_BYTES`] of them, until the walk takes them. The walk never
//! waits for a tree no thread has started: it loads that one itself, so a full window cannot stall it.

use crate::backend::ObjectName;
use crate::error::{Error, Result};
use crate::format::blob::{self, BlobType};
use crate::format::id::{PackId, TreeId};
use crate::format::tree::Tree;
use crate::repo::Repository;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Loaded trees (their encoded size, roughly) that may wait for the walk.
const AHEAD_BYTES: usize = 4 << 20;

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

/// Tree packs read into the cache: longest range read at once.
const PACK_RANGE: u64 = 1 << 20;

/// Trees loaded ahead by `threads` threads; [`TreesAhead::run`] starts and stops them.
pub(super) struct TreesAhead<'a> {
    repo: &'a Repository,
    state: Mutex<State>,
    /// Signals the loaders (work or room) and the walk (a tree loaded).
    cv: Condvar,
    /// Tree packs read into the cache (`true`) or being read (`false`).
    packs: Mutex<HashMap<u32, bool>>,
    packs_cv: Condvar,
}

fn weight(t: &Tree) -> usize {
    t.nodes.iter().map(|n| 96 + n.name.len() + n.target.len() + n.content.len() * 32).sum::<usize>() + 64
}

impl<'a> TreesAhead<'a> {
    /// Runs `walk` with `threads` loaders beside it (none: every tree is loaded when taken).
    pub(super) fn run<R>(repo: &'a Repository, threads: usize, walk: impl FnOnce(&TreesAhead<'a>) -> R) -> R {
        let ahead = TreesAhead {
            repo,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            packs: Mutex::new(HashMap::new()),
            packs_cv: Condvar::new(),
        };
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
        self.load(id).map(Arc::new)
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
            let tree = self.load(&id).ok().map(Arc::new);
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

impl TreesAhead<'_> {
    /// Loads a tree: from the cache; else, with a cache, after reading its whole pack into it.
    fn load(&self, id: &TreeId) -> Result<Tree> {
        let Some(cache) = self.repo.cache() else { return self.repo.load_tree(id) };
        if let Some(bytes) = cache.get_tree(id)? {
            if let Ok(t) = Tree::decode(id, &bytes) {
                return Ok(t);
            }
        }
        let Some(loc) = self.repo.index().get(&id.blob()) else { return self.repo.load_tree(id) };
        let mut packs = self.packs.lock();
        loop {
            match packs.get(&loc.pack) {
                Some(true) => break,
                Some(false) => self.packs_cv.wait(&mut packs),
                None => {
                    packs.insert(loc.pack, false);
                    drop(packs);
                    // A pack that cannot be read whole is read tree by tree (with the real error).
                    let _ = self.cache_pack(loc.pack);
                    packs = self.packs.lock();
                    packs.insert(loc.pack, true);
                    self.packs_cv.notify_all();
                    break;
                }
            }
        }
        drop(packs);
        self.repo.load_tree(id)
    }

    /// Reads every tree of pack `p` into the cache, in ranges of at most [`PACK_RANGE`]. Each is
    /// checked against its id as it is decrypted, as any blob read.
    fn cache_pack(&self, p: u32) -> Result<()> {
        let cache = self.repo.cache().expect("called with a cache");
        let id: PackId = self.repo.index().pack_id(p);
        let name = ObjectName::of(&id);
        let size = self.repo.backend().size(&name).map_err(Error::backend_err("read pack", &name))?;
        let mut trees: Vec<_> =
            self.repo.read_pack_header(&id, size)?.into_iter().filter(|e| e.ty == BlobType::Tree).collect();
        trees.sort_by_key(|e| e.offset);
        let mut rest = &trees[..];
        while let Some(first) = rest.first() {
            let start = first.offset as u64;
            let n = rest
                .iter()
                .position(|e| e.offset as u64 + e.length as u64 - start > PACK_RANGE)
                .unwrap_or(rest.len())
                .max(1);
            let last = &rest[n - 1];
            let len = last.offset as u64 + last.length as u64 - start;
            let data =
                self.repo.backend().read_range(&name, start, len).map_err(Error::backend_err("read pack", &name))?;
            for e in &rest[..n] {
                let s = (e.offset as u64 - start) as usize;
                let Some(stored) = data.get(s..s + e.length as usize) else { continue };
                if let Ok(plain) = blob::decode(self.repo.keys(), BlobType::Tree, &e.id, stored, e.raw_length as usize)
                {
                    cache.put_tree(&TreeId(e.id.0), &plain)?;
                }
            }
            rest = &rest[n..];
        }
        cache.flush_trees()
    }
}
