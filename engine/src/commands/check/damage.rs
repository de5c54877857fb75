//! What the damage found costs: the snapshots and files that use blobs with no healthy copy (a
//! folder when a whole tree is lost), found by walking the snapshots' trees again, only into
//! trees that contain damage.

use super::Checker;
use crate::format::id::{BlobId, IdMap, IdSet, SnapshotId, TreeId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use std::collections::BTreeSet;

impl Checker<'_> {
    /// Fills in the snapshots and files each problem affects.
    pub(super) fn map_damage(&mut self, snaps: &[(SnapshotId, Snapshot)]) {
        // A blob is damaged when no indexed copy is healthy (or it has none).
        let mut damaged: IdSet<BlobId> = IdSet::default();
        for p in self.report.errors.iter() {
            for b in &p.blobs {
                let healthy = self.blobs.get(b).is_some_and(|copies| {
                    copies
                        .iter()
                        .any(|(pid, _)| self.stored.contains_key(pid) && !self.bad_copies.contains(&(*b, *pid)))
                });
                if !healthy {
                    damaged.insert(*b);
                }
            }
        }
        // Trees that could not be loaded are damaged too.
        for (id, t) in &self.trees {
            if t.is_none() {
                damaged.insert(id.blob());
            }
        }
        if damaged.is_empty() {
            return;
        }
        let mut affected: IdMap<BlobId, BTreeSet<(usize, String)>> = IdMap::default();
        let mut memo: IdMap<TreeId, bool> = IdMap::default();
        for (si, (_, s)) in snaps.iter().enumerate() {
            if damaged.contains(&s.tree.blob()) {
                affected.entry(s.tree.blob()).or_default().insert((si, "/".into()));
            }
            self.visit(&s.tree, "", si, &damaged, &mut memo, &mut affected, 0);
        }
        for p in self.report.errors.iter_mut() {
            let mut snap_set = BTreeSet::new();
            let mut files = BTreeSet::new();
            for b in p.blobs.iter().filter(|b| damaged.contains(*b)) {
                for (si, path) in affected.get(b).into_iter().flatten() {
                    snap_set.insert(*si);
                    files.insert(path.clone());
                }
            }
            for si in snap_set {
                let id = snaps[si].0.to_hex();
                if !p.snapshots.contains(&id) {
                    p.snapshots.push(id);
                }
            }
            p.files.extend(files);
        }
    }

    /// Whether the tree `id` (loaded) contains a damaged blob anywhere below it.
    pub(super) fn has_damage(
        &self,
        id: &TreeId,
        damaged: &IdSet<BlobId>,
        memo: &mut IdMap<TreeId, bool>,
        depth: usize,
    ) -> bool {
        if let Some(&m) = memo.get(id) {
            return m;
        }
        if damaged.contains(&id.blob()) {
            return true;
        }
        let Some(Some(t)) = self.trees.get(id) else {
            return true;
        };
        let mut any = false;
        if depth < crate::format::tree::MAX_DEPTH {
            for n in &t.nodes {
                let hit = match n.kind {
                    NodeKind::File => n.content.iter().any(|b| damaged.contains(&b.blob())),
                    NodeKind::Dir => n
                        .subtree
                        .as_ref()
                        .is_some_and(|s| damaged.contains(&s.blob()) || self.has_damage(s, damaged, memo, depth + 1)),
                    NodeKind::Symlink => false,
                };
                if hit {
                    any = true;
                    break;
                }
            }
        }
        memo.insert(*id, any);
        any
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn visit(
        &self,
        id: &TreeId,
        at: &str,
        si: usize,
        damaged: &IdSet<BlobId>,
        memo: &mut IdMap<TreeId, bool>,
        affected: &mut IdMap<BlobId, BTreeSet<(usize, String)>>,
        depth: usize,
    ) {
        if depth > 4096 || !self.has_damage(id, damaged, memo, depth) {
            return;
        }
        let Some(Some(t)) = self.trees.get(id) else {
            return;
        };
        for n in &t.nodes {
            let path = format!("{at}/{}", n.name_lossy());
            match n.kind {
                NodeKind::File => {
                    for b in n.content.iter().filter(|b| damaged.contains(&b.blob())) {
                        affected.entry(b.blob()).or_default().insert((si, path.clone()));
                    }
                }
                NodeKind::Dir => {
                    // A damaged tree that could still be read (from an unindexed pack) is walked
                    // too, to name the files under it.
                    let sub = n.subtree.unwrap();
                    if damaged.contains(&sub.blob()) {
                        affected.entry(sub.blob()).or_default().insert((si, path.clone()));
                    }
                    self.visit(&sub, &path, si, damaged, memo, affected, depth + 1);
                }
                NodeKind::Symlink => {}
            }
        }
    }
}
