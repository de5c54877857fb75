//! `stats`: how much the snapshots hold and how little the repository stores for it.

use crate::backend::Kind;
use crate::error::{Error, Result};
use crate::format::id::{DataId, IdMap, IdSet, TreeId};
use crate::format::tree::NodeKind;
use crate::repo::Repository;
use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    pub snapshots: u64,
    /// Files over all snapshots (a file in three snapshots counts three times), as restic's
    /// restore-size mode counts them.
    pub files: u64,
    /// Sum over all snapshots of their files' sizes: what restoring every snapshot would write.
    pub raw_bytes: u64,
    /// Bytes the repository occupies: every pack in `data/`, every index file and every snapshot
    /// object (not `config` or the key files, which are a few hundred bytes).
    pub stored_bytes: u64,
    /// `raw_bytes` / `unique_bytes`: how many times, on average, each stored byte of file content
    /// is used.
    pub dedup_ratio: f64,
    /// `unique_bytes` / `unique_stored_bytes`: how much zstd (after encryption overhead) saves.
    pub compression_ratio: f64,
    /// Packs in `data/`.
    pub packs: u64,
    /// Blobs in the index (data and trees, referenced or not).
    pub blobs: u64,
    /// Plaintext bytes of the distinct data blobs the snapshots reference.
    pub unique_bytes: u64,
    /// Stored (compressed, encrypted) bytes of those blobs.
    pub unique_stored_bytes: u64,
    /// Distinct data blobs the snapshots reference.
    pub referenced_data_blobs: u64,
    /// Distinct trees the snapshots reference.
    pub referenced_tree_blobs: u64,
    pub pack_bytes: u64,
    pub index_bytes: u64,
    pub snapshot_bytes: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Counts every snapshot's files (trees memoized, so a shared subtree is walked once) and the
/// distinct blobs they reference.
pub fn stats(repo: &Repository) -> Result<Stats> {
    let be = repo.backend();
    let list = |k: Kind, what: &'static str| {
        be.list(k).map_err(|source| Error::Backend { op: "list", name: what.into(), source })
    };
    let packs = list(Kind::Pack, "data")?;
    let indexes = list(Kind::Index, "index")?;
    let snap_objs = list(Kind::Snapshot, "snapshots")?;
    let mut st = Stats {
        packs: packs.len() as u64,
        pack_bytes: packs.iter().map(|(_, s)| s).sum(),
        index_bytes: indexes.iter().map(|(_, s)| s).sum(),
        snapshot_bytes: snap_objs.iter().map(|(_, s)| s).sum(),
        blobs: repo.index().blob_count() as u64,
        ..Default::default()
    };
    st.stored_bytes = st.pack_bytes + st.index_bytes + st.snapshot_bytes;

    let snaps = repo.snapshots()?;
    st.snapshots = snaps.len() as u64;
    // Per tree: (files, bytes) below it.
    let mut totals: IdMap<TreeId, (u64, u64)> = IdMap::default();
    let mut data: IdSet<DataId> = IdSet::default();
    for (_, s) in &snaps {
        let (f, b) = tree_totals(repo, &s.tree, &mut totals, &mut data, 0)?;
        st.files += f;
        st.raw_bytes += b;
    }
    st.referenced_tree_blobs = totals.len() as u64;
    st.referenced_data_blobs = data.len() as u64;
    let idx = repo.index();
    for id in &data {
        if let Some(loc) = idx.get(&id.blob()) {
            st.unique_bytes += loc.raw_length as u64;
            st.unique_stored_bytes += loc.length as u64;
        }
    }
    st.dedup_ratio = ratio(st.raw_bytes, st.unique_bytes);
    st.compression_ratio = ratio(st.unique_bytes, st.unique_stored_bytes);
    Ok(st)
}

fn tree_totals(
    repo: &Repository,
    id: &TreeId,
    totals: &mut IdMap<TreeId, (u64, u64)>,
    data: &mut IdSet<DataId>,
    depth: usize,
) -> Result<(u64, u64)> {
    if let Some(t) = totals.get(id) {
        return Ok(*t);
    }
    crate::format::tree::check_depth(depth)?;
    let tree = repo.load_tree(id)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    for n in &tree.nodes {
        match n.kind {
            NodeKind::File => {
                files += 1;
                bytes += n.size;
                data.extend(n.content.iter().copied());
            }
            NodeKind::Dir => {
                let (f, b) = tree_totals(repo, n.subtree.as_ref().unwrap(), totals, data, depth + 1)?;
                files += f;
                bytes += b;
            }
            NodeKind::Symlink => {}
        }
    }
    totals.insert(*id, (files, bytes));
    Ok((files, bytes))
}
