//! `stats`: how much the snapshots hold and how little the repository stores for it, and, with
//! a breakdown, where the stored bytes go: file content by kind and size, the per-blob envelope,
//! trees, pack headers, index files, snapshots and compression dictionaries.

use crate::backend::Kind;
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::crypto::OVERHEAD;
use crate::format::id::{DataId, IdMap, TreeId};
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
    /// Bytes the repository occupies: every pack in `data/`, every index file, snapshot object and
    /// dictionary (not `config` or the key files, which are a few hundred bytes).
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
    /// Compression dictionaries (`dicts/`, format-spec §16).
    pub dict_bytes: u64,
    /// Where the bytes go (`stats --breakdown`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

/// Blobs of one kind: how many, their plaintext, and what they occupy in packs. `envelope` is
/// the part of `stored_bytes` that is not payload: nonce, tag and flag byte of each blob.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Part {
    pub blobs: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub envelope_bytes: u64,
}

impl Part {
    fn add(&mut self, raw: u32, stored: u32) {
        self.blobs += 1;
        self.raw_bytes += raw as u64;
        self.stored_bytes += stored as u64;
        self.envelope_bytes += ENVELOPE as u64;
    }
}

/// Bytes of every stored blob that are not its payload: nonce and tag (`crypto::OVERHEAD`) and
/// the payload's flag byte (format-spec §5, §6).
const ENVELOPE: usize = OVERHEAD + 1;

/// Where a repository's bytes go.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Breakdown {
    /// Content of SQLite databases (files named `*.sqlite`, `*.sqlite3`, `*.db`) that compressed.
    pub data_database: Part,
    /// Other file content that compressed (text, code, JSON, most binaries).
    pub data_compressed: Part,
    /// File content stored raw: it did not compress (media, archives, encrypted data).
    pub data_raw: Part,
    /// Referenced file content by plaintext size: below 4 KiB, 4-16, 16-64, 64-256 KiB, larger.
    pub data_by_size: [Part; 5],
    /// Directory listings the snapshots reference.
    pub trees: Part,
    /// Indexed blobs no snapshot references (what prune would remove or repack).
    pub unreferenced: Part,
    /// Pack bytes that are not blobs: each pack's sealed header and its 4-byte length.
    pub pack_header_bytes: u64,
    /// Compression dictionaries (`dicts/`; their bytes are [`Stats::dict_bytes`]).
    pub dicts: u64,
}

/// What a file's content is, for the breakdown.
#[derive(Clone, Copy, PartialEq)]
enum Content {
    Database,
    Other,
}

fn content_kind(name: &[u8]) -> Content {
    let lower = name.to_ascii_lowercase();
    if [&b".sqlite"[..], b".sqlite3", b".db"].iter().any(|e| lower.ends_with(e)) {
        Content::Database
    } else {
        Content::Other
    }
}

fn size_class(raw: u32) -> usize {
    match raw {
        0..4096 => 0,
        4096..16384 => 1,
        16384..65536 => 2,
        65536..262144 => 3,
        _ => 4,
    }
}

/// What `stats` computes beyond the totals.
#[derive(Clone, Debug, Default)]
pub struct StatsOptions {
    /// Fill [`Stats::breakdown`].
    pub breakdown: bool,
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
pub fn stats(repo: &Repository, opts: &StatsOptions) -> Result<Stats> {
    let be = repo.backend();
    let list = |k: Kind, what: &'static str| {
        be.list(k).map_err(|source| Error::Backend { op: "list", name: what.into(), source })
    };
    let packs = list(Kind::Pack, "data")?;
    let indexes = list(Kind::Index, "index")?;
    let snap_objs = list(Kind::Snapshot, "snapshots")?;
    let dicts = list(Kind::Dict, "dicts")?;
    let mut st = Stats {
        packs: packs.len() as u64,
        pack_bytes: packs.iter().map(|(_, s)| s).sum(),
        index_bytes: indexes.iter().map(|(_, s)| s).sum(),
        snapshot_bytes: snap_objs.iter().map(|(_, s)| s).sum(),
        dict_bytes: dicts.iter().map(|(_, s)| s).sum(),
        blobs: repo.index().blob_count() as u64,
        ..Default::default()
    };
    st.stored_bytes = st.pack_bytes + st.index_bytes + st.snapshot_bytes + st.dict_bytes;

    let snaps = repo.snapshots()?;
    st.snapshots = snaps.len() as u64;
    // Per tree: (files, bytes) below it.
    let mut totals: IdMap<TreeId, (u64, u64)> = IdMap::default();
    let mut data: IdMap<DataId, Content> = IdMap::default();
    for (_, s) in &snaps {
        let (f, b) = tree_totals(repo, &s.tree, &mut totals, &mut data, 0)?;
        st.files += f;
        st.raw_bytes += b;
    }
    st.referenced_tree_blobs = totals.len() as u64;
    st.referenced_data_blobs = data.len() as u64;
    let idx = repo.index();
    for id in data.keys() {
        if let Some(loc) = idx.get(&id.blob()) {
            st.unique_bytes += loc.raw_length as u64;
            st.unique_stored_bytes += loc.length as u64;
        }
    }
    st.dedup_ratio = ratio(st.raw_bytes, st.unique_bytes);
    st.compression_ratio = ratio(st.unique_bytes, st.unique_stored_bytes);
    if opts.breakdown {
        let mut b = Breakdown::default();
        let mut in_packs = vec![0u64; idx.pack_count()];
        for (id, loc) in idx.blobs() {
            if let Some(n) = in_packs.get_mut(loc.pack as usize) {
                *n += loc.length as u64;
            }
            let (raw, stored) = (loc.raw_length, loc.length);
            let part = match loc.ty {
                BlobType::Tree if totals.contains_key(&TreeId(id.0)) => &mut b.trees,
                BlobType::Data => match data.get(&DataId(id.0)) {
                    Some(kind) => {
                        b.data_by_size[size_class(raw)].add(raw, stored);
                        // A blob stored raw is its plaintext plus the envelope (§6: compression is
                        // kept only when it saves at least 1/32, so no compressed blob is as long).
                        if stored as usize == raw as usize + ENVELOPE {
                            &mut b.data_raw
                        } else if *kind == Content::Database {
                            &mut b.data_database
                        } else {
                            &mut b.data_compressed
                        }
                    }
                    None => &mut b.unreferenced,
                },
                _ => &mut b.unreferenced,
            };
            part.add(raw, stored);
        }
        b.pack_header_bytes = idx.packs().map(|(p, _, size)| size.saturating_sub(in_packs[p as usize])).sum();
        b.dicts = dicts.len() as u64;
        st.breakdown = Some(b);
    }
    Ok(st)
}

fn tree_totals(
    repo: &Repository,
    id: &TreeId,
    totals: &mut IdMap<TreeId, (u64, u64)>,
    data: &mut IdMap<DataId, Content>,
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
                let kind = content_kind(&n.name);
                for c in &n.content {
                    data.entry(*c).or_insert(kind);
                }
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
