//! `clawback mount`'s filesystem, without FUSE: the inode table, the virtual folders over the
//! snapshot list (`snapshots/`, `hosts/`, `tags/`, `ids/`, `latest` links), folders read from
//! trees, and file reads through the index with a small cache of verified chunks.
//! The FUSE adapter ([`fuse`]) only translates kernel requests into calls on [`Browse`].

#[cfg(feature = "fuse")]
pub mod fuse;

use crate::error::Error;
use crate::format::id::{DataId, SnapshotId, TreeId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::Repository;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The root folder's inode number (FUSE's convention).
pub const ROOT: u64 = 1;
/// Default cap on the decrypted chunks kept in memory.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;
/// How often the snapshot list is read again while folders at the top are looked at.
pub const REFRESH: Duration = Duration::from_secs(1);
/// Decoded trees kept; a tree is a folder's listing, small next to the chunk cache.
const TREES_KEPT: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// What `stat` says of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits (`& 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub nlink: u32,
}

/// Why a filesystem call failed; the adapter turns each into an errno.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such entry")]
    NotFound,
    #[error("not a folder")]
    NotDir,
    #[error("is a folder")]
    IsDir,
    #[error("not a symlink")]
    NotLink,
    /// Reading the repository failed (missing pack, corrupt blob, backend error): EIO.
    #[error("{0}")]
    Io(String),
}

pub type FsResult<T> = std::result::Result<T, FsError>;

/// A virtual folder's entries (name and what it points at) and the snapshot list they came from.
type VirtualChildren = (Vec<(String, Target)>, Arc<Vec<Listed>>);

/// A folder's listing: its parent's inode, and each entry's attributes and name.
pub type Listing = (u64, Vec<(Attr, Vec<u8>)>);

/// The folders that are not in any snapshot: they list snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Virtual {
    Root,
    Snapshots,
    Hosts,
    Host(String),
    Tags,
    Tag(String),
    Ids,
}

/// A file's chunks, and where each ends (from the index, on first read).
#[derive(Debug)]
struct FileContent {
    ids: Vec<DataId>,
    size: u64,
    ends: OnceLock<Vec<u64>>,
}

#[derive(Clone, Debug)]
enum Content {
    Virtual(Virtual),
    Tree(TreeId),
    File(Arc<FileContent>),
    Link(Arc<Vec<u8>>),
}

impl Content {
    /// Whether `self` and `o` show the same thing (so a file keeps its chunk offsets).
    fn same(&self, o: &Content) -> bool {
        match (self, o) {
            (Content::Virtual(a), Content::Virtual(b)) => a == b,
            (Content::Tree(a), Content::Tree(b)) => a == b,
            (Content::File(a), Content::File(b)) => a.ids == b.ids && a.size == b.size,
            (Content::Link(a), Content::Link(b)) => a == b,
            _ => false,
        }
    }
}

struct Inode {
    parent: u64,
    attr: Attr,
    content: Content,
}

/// Inodes are numbered in the order they are first seen, one per (parent, name), so a path keeps
/// its number for the life of the mount. The table grows with what is looked at, not with the
/// repository.
#[derive(Default)]
struct Table {
    inodes: Vec<Inode>,
    by_name: HashMap<(u64, Vec<u8>), u64>,
}

/// One snapshot as the top folders show it.
struct Listed {
    snap: Snapshot,
    /// Its time, as restic names it (`2026-12-05T04:37:05Z`), with `-1`, `-2`... when two share a
    /// second.
    name: String,
    /// The shortest prefix of its id (8 hex digits at least) no other snapshot shares.
    short: String,
}

#[derive(Default)]
struct Snaps {
    list: Arc<Vec<Listed>>,
    at: Option<Instant>,
}

/// Decrypted, verified chunks, least recently used dropped first once they pass a byte cap.
struct ChunkCache {
    cap: u64,
    bytes: u64,
    tick: u64,
    map: HashMap<DataId, (Arc<Vec<u8>>, u64)>,
    order: BTreeMap<u64, DataId>,
}

impl ChunkCache {
    fn new(cap: u64) -> Self {
        ChunkCache { cap, bytes: 0, tick: 0, map: HashMap::new(), order: BTreeMap::new() }
    }

    fn get(&mut self, id: &DataId) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let tick = self.tick;
        let (data, t) = self.map.get_mut(id)?;
        self.order.remove(t);
        *t = tick;
        self.order.insert(tick, *id);
        Some(data.clone())
    }

    fn put(&mut self, id: DataId, data: Arc<Vec<u8>>) {
        if self.map.contains_key(&id) {
            return;
        }
        self.tick += 1;
        self.bytes += data.len() as u64;
        self.order.insert(self.tick, id);
        self.map.insert(id, (data, self.tick));
        while self.bytes > self.cap {
            let Some((_, old)) = self.order.pop_first() else { break };
            if let Some((d, _)) = self.map.remove(&old) {
                self.bytes -= d.len() as u64;
            }
        }
    }
}

/// A read-only view of a repository as folders and files.
pub struct Browse {
    repo: Repository,
    table: Mutex<Table>,
    snaps: Mutex<Snaps>,
    chunks: Mutex<ChunkCache>,
    trees: Mutex<HashMap<TreeId, Arc<Tree>>>,
    /// Serialises index reloads after a missing blob, so a burst of failed reads reloads once.
    reload: Mutex<Instant>,
}

/// Where a top-folder entry leads.
enum Target {
    Dir(Virtual),
    Snap(usize),
    Link(String),
}

fn io(e: Error) -> FsError {
    FsError::Io(e.to_string())
}

/// Whether `e` says a blob or pack was not found (a prune may have moved it: reload the index).
fn is_missing(e: &Error) -> bool {
    match e {
        Error::Missing { .. } => true,
        Error::Backend { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

fn snap_ns(s: &Snapshot) -> i64 {
    s.time().timestamp_nanos_opt().unwrap_or(0)
}

fn dir_attr(perm: u32, mtime_ns: i64) -> Attr {
    Attr { ino: 0, kind: EntryKind::Dir, size: 0, perm, uid: 0, gid: 0, mtime_ns, ctime_ns: mtime_ns, nlink: 2 }
}

/// An entry of a snapshot's tree as `stat` shows it (size of a symlink: its target's length).
fn node_attr(n: &Node) -> (Attr, Content) {
    let (kind, size, content) = match n.kind {
        // A decoded tree gives every folder a subtree; none would read as a missing blob (EIO).
        NodeKind::Dir => (EntryKind::Dir, 0, Content::Tree(n.subtree.unwrap_or_default())),
        NodeKind::File => (
            EntryKind::File,
            n.size,
            Content::File(Arc::new(FileContent { ids: n.content.clone(), size: n.size, ends: OnceLock::new() })),
        ),
        NodeKind::Symlink => (EntryKind::Symlink, n.target.len() as u64, Content::Link(Arc::new(n.target.clone()))),
    };
    let attr = Attr {
        ino: 0,
        kind,
        size,
        perm: n.mode & 0o7777,
        uid: n.uid,
        gid: n.gid,
        mtime_ns: n.mtime_ns,
        ctime_ns: n.ctime_ns,
        nlink: n.nlink.clamp(1, u32::MAX as u64) as u32,
    };
    (attr, content)
}

/// Names the snapshots (oldest first) by time and by short id, both unique.
fn list(all: Vec<(SnapshotId, Snapshot)>) -> Vec<Listed> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let hexes: Vec<String> = all.iter().map(|(id, _)| id.to_hex()).collect();
    let mut len = 8;
    while len < 64 {
        let mut prefixes: Vec<&str> = hexes.iter().map(|h| &h[..len]).collect();
        prefixes.sort_unstable();
        if prefixes.windows(2).all(|w| w[0] != w[1]) {
            break;
        }
        len += 1;
    }
    all.into_iter()
        .zip(hexes)
        .map(|((_, snap), hex)| {
            let base = snap.time().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let n = seen.entry(base.clone()).or_insert(0);
            let name = if *n == 0 { base } else { format!("{base}-{n}") };
            *n += 1;
            Listed { snap, name, short: hex[..len].to_string() }
        })
        .collect()
}

impl Browse {
    /// A view of `repo`, keeping at most `cache_bytes` of decrypted chunks.
    pub fn new(repo: Repository, cache_bytes: u64) -> Browse {
        let root = Inode {
            parent: ROOT,
            attr: Attr { ino: ROOT, ..dir_attr(0o555, 0) },
            content: Content::Virtual(Virtual::Root),
        };
        Browse {
            repo,
            table: Mutex::new(Table { inodes: vec![root], by_name: HashMap::new() }),
            snaps: Mutex::new(Snaps::default()),
            chunks: Mutex::new(ChunkCache::new(cache_bytes)),
            trees: Mutex::new(HashMap::new()),
            reload: Mutex::new(Instant::now()),
        }
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The snapshot list, read again when older than [`REFRESH`] (new snapshots appear, forgotten
    /// ones go).
    fn snapshots(&self) -> FsResult<Arc<Vec<Listed>>> {
        let mut s = self.snaps.lock();
        if s.at.is_none_or(|t| t.elapsed() >= REFRESH) {
            s.list = Arc::new(list(self.repo.snapshots().map_err(io)?));
            s.at = Some(Instant::now());
        }
        Ok(s.list.clone())
    }

    fn node(&self, ino: u64) -> FsResult<(u64, Attr, Content)> {
        let t = self.table.lock();
        let i = t.inodes.get((ino as usize).wrapping_sub(1)).ok_or(FsError::NotFound)?;
        Ok((i.parent, i.attr.clone(), i.content.clone()))
    }

    /// The inode for `name` under `parent`, made or brought up to date.
    fn ensure(&self, parent: u64, name: &[u8], mut attr: Attr, content: Content) -> Attr {
        let mut t = self.table.lock();
        if let Some(&ino) = t.by_name.get(&(parent, name.to_vec())) {
            let i = &mut t.inodes[ino as usize - 1];
            attr.ino = ino;
            i.attr = attr.clone();
            if !i.content.same(&content) {
                i.content = content;
            }
            return attr;
        }
        let ino = t.inodes.len() as u64 + 1;
        attr.ino = ino;
        t.inodes.push(Inode { parent, attr: attr.clone(), content });
        t.by_name.insert((parent, name.to_vec()), ino);
        attr
    }

    fn tree(&self, id: &TreeId) -> FsResult<Arc<Tree>> {
        if let Some(t) = self.trees.lock().get(id) {
            return Ok(t.clone());
        }
        let t = Arc::new(self.with_reload(|| self.repo.load_tree(id))?);
        let mut trees = self.trees.lock();
        if trees.len() >= TREES_KEPT {
            trees.clear();
        }
        trees.insert(*id, t.clone());
        Ok(t)
    }

    /// Runs `f`; when it fails because a blob or pack is gone (a prune repacked it), reloads the
    /// index once and runs it again. Anything else, or a second failure, is an I/O error.
    fn with_reload<T>(&self, f: impl Fn() -> crate::Result<T>) -> FsResult<T> {
        match f() {
            Ok(v) => Ok(v),
            Err(e) if is_missing(&e) => {
                let before = Instant::now();
                {
                    let mut last = self.reload.lock();
                    // Another thread reloaded while this one waited: no need to do it again.
                    if *last < before {
                        self.repo.reload_index().map_err(io)?;
                        *last = Instant::now();
                    }
                }
                f().map_err(io)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The entries of a top folder, with where each leads.
    fn virtual_children(&self, v: &Virtual) -> FsResult<VirtualChildren> {
        let snaps = self.snapshots()?;
        let group = |pick: &dyn Fn(&Snapshot) -> bool| -> Vec<(String, Target)> {
            let mut out: Vec<(String, Target)> = Vec::new();
            let mut last = None;
            for (i, l) in snaps.iter().enumerate().filter(|(_, l)| pick(&l.snap)) {
                out.push((l.name.clone(), Target::Snap(i)));
                last = Some(l.name.clone());
            }
            if let Some(name) = last {
                out.push(("latest".into(), Target::Link(name)));
            }
            out
        };
        let distinct = |each: &dyn Fn(&Snapshot) -> Vec<String>| -> Vec<String> {
            let mut v: Vec<String> = snaps.iter().flat_map(|l| each(&l.snap)).collect();
            v.sort();
            v.dedup();
            v
        };
        let out = match v {
            Virtual::Root => ["hosts", "ids", "snapshots", "tags"]
                .into_iter()
                .map(|n| {
                    let d = match n {
                        "hosts" => Virtual::Hosts,
                        "ids" => Virtual::Ids,
                        "snapshots" => Virtual::Snapshots,
                        _ => Virtual::Tags,
                    };
                    (n.to_string(), Target::Dir(d))
                })
                .collect(),
            Virtual::Snapshots => group(&|_| true),
            Virtual::Host(h) => group(&|s| &s.hostname == h),
            Virtual::Tag(t) => group(&|s| s.tags.contains(t)),
            Virtual::Hosts => distinct(&|s| vec![s.hostname.clone()])
                .into_iter()
                .filter(|h| is_name(h))
                .map(|h| (h.clone(), Target::Dir(Virtual::Host(h))))
                .collect(),
            Virtual::Tags => distinct(&|s| s.tags.clone())
                .into_iter()
                .filter(|t| is_name(t))
                .map(|t| (t.clone(), Target::Dir(Virtual::Tag(t))))
                .collect(),
            Virtual::Ids => snaps.iter().enumerate().map(|(i, l)| (l.short.clone(), Target::Snap(i))).collect(),
        };
        Ok((out, snaps))
    }

    /// The inode for a top-folder entry.
    fn ensure_target(&self, parent: u64, name: &str, target: Target, snaps: &[Listed]) -> Attr {
        let newest = snaps.last().map(|l| snap_ns(&l.snap)).unwrap_or(0);
        let (attr, content) = match target {
            Target::Dir(v) => (dir_attr(0o555, newest), Content::Virtual(v)),
            Target::Snap(i) => {
                let l = &snaps[i];
                (dir_attr(0o755, snap_ns(&l.snap)), Content::Tree(l.snap.tree))
            }
            Target::Link(to) => {
                let at = snaps.iter().find(|l| l.name == to).map(|l| snap_ns(&l.snap)).unwrap_or(newest);
                let a = Attr {
                    kind: EntryKind::Symlink,
                    size: to.len() as u64,
                    perm: 0o777,
                    nlink: 1,
                    ..dir_attr(0o777, at)
                };
                (a, Content::Link(Arc::new(to.into_bytes())))
            }
        };
        self.ensure(parent, name.as_bytes(), attr, content)
    }

    /// `stat` of an inode already looked up.
    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        Ok(self.node(ino)?.1)
    }

    /// The entry `name` in the folder `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> FsResult<Attr> {
        let (_, _, content) = self.node(parent)?;
        match content {
            Content::Virtual(v) => {
                let (children, snaps) = self.virtual_children(&v)?;
                let (n, target) = children.into_iter().find(|(n, _)| n.as_bytes() == name).ok_or(FsError::NotFound)?;
                Ok(self.ensure_target(parent, &n, target, &snaps))
            }
            Content::Tree(id) => {
                let tree = self.tree(&id)?;
                let node = tree.find(name).ok_or(FsError::NotFound)?;
                let (attr, content) = node_attr(node);
                Ok(self.ensure(parent, name, attr, content))
            }
            _ => Err(FsError::NotDir),
        }
    }

    /// The folder's entries (without `.` and `..`), in a stable order, and its parent's inode.
    pub fn readdir(&self, ino: u64) -> FsResult<Listing> {
        let (parent, _, content) = self.node(ino)?;
        let out = match content {
            Content::Virtual(v) => {
                let (children, snaps) = self.virtual_children(&v)?;
                children
                    .into_iter()
                    .map(|(n, t)| {
                        let a = self.ensure_target(ino, &n, t, &snaps);
                        (a, n.into_bytes())
                    })
                    .collect()
            }
            Content::Tree(id) => {
                let tree = self.tree(&id)?;
                tree.nodes
                    .iter()
                    .map(|n| {
                        let (attr, content) = node_attr(n);
                        (self.ensure(ino, &n.name, attr, content), n.name.clone())
                    })
                    .collect()
            }
            _ => return Err(FsError::NotDir),
        };
        Ok((parent, out))
    }

    /// A symlink's target.
    pub fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        match self.node(ino)?.2 {
            Content::Link(t) => Ok(t.as_ref().clone()),
            _ => Err(FsError::NotLink),
        }
    }

    /// Checks `ino` is a file that can be opened (its chunks are all in the index).
    pub fn open(&self, ino: u64) -> FsResult<()> {
        match self.node(ino)?.2 {
            Content::File(f) => self.ends(&f).map(|_| ()),
            Content::Tree(_) | Content::Virtual(_) => Err(FsError::IsDir),
            Content::Link(_) => Err(FsError::NotFound),
        }
    }

    /// Where each chunk of `f` ends, from the index's plaintext lengths; they must add up to the
    /// size the tree records.
    fn ends<'a>(&self, f: &'a FileContent) -> FsResult<&'a [u64]> {
        if let Some(e) = f.ends.get() {
            return Ok(e);
        }
        let ends = self.with_reload(|| {
            let index = self.repo.index();
            let mut at = 0u64;
            let mut ends = Vec::with_capacity(f.ids.len());
            for id in &f.ids {
                let loc = index.get(&id.blob()).ok_or_else(|| Error::Missing { what: "blob", id: id.to_hex() })?;
                at += loc.raw_length as u64;
                ends.push(at);
            }
            Ok(ends)
        })?;
        if ends.last().copied().unwrap_or(0) != f.size {
            return Err(FsError::Io(format!(
                "its chunks hold {} bytes, its tree entry says {}",
                ends.last().copied().unwrap_or(0),
                f.size
            )));
        }
        Ok(f.ends.get_or_init(|| ends))
    }

    /// One chunk, decrypted and checked against its id (a content hash), from the cache or the
    /// repository.
    fn chunk(&self, id: &DataId) -> FsResult<Arc<Vec<u8>>> {
        if let Some(c) = self.chunks.lock().get(id) {
            return Ok(c);
        }
        let data = Arc::new(self.with_reload(|| self.repo.read_data(id))?);
        self.chunks.lock().put(*id, data.clone());
        Ok(data)
    }

    /// Up to `size` bytes of the file `ino` from `offset` (fewer at its end).
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let f = match self.node(ino)?.2 {
            Content::File(f) => f,
            Content::Tree(_) | Content::Virtual(_) => return Err(FsError::IsDir),
            Content::Link(_) => return Err(FsError::NotFound),
        };
        let end = (offset.saturating_add(size as u64)).min(f.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let ends = self.ends(&f)?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        // The first chunk that ends after `offset`.
        let mut i = ends.partition_point(|&e| e <= offset);
        let mut at = offset;
        while at < end {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            let data = self.chunk(&f.ids[i])?;
            if data.len() as u64 != ends[i] - start {
                return Err(FsError::Io(format!(
                    "chunk {} holds {} bytes, the index says {}",
                    f.ids[i].short(),
                    data.len(),
                    ends[i] - start
                )));
            }
            let from = (at - start) as usize;
            let to = (end.min(ends[i]) - start) as usize;
            out.extend_from_slice(&data[from..to]);
            at = start + to as u64;
            i += 1;
        }
        Ok(out)
    }
}

/// Whether a host or tag can name a folder (one path component).
fn is_name(s: &str) -> bool {
    Node::check_name(s.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests;
