//! Opening and creating repositories: the config object, key files, the blob index (through the
//! local cache), and reading and writing the repository's objects.

pub mod cache;
pub mod condemned;
pub mod host;
pub mod lease;
pub mod packer;
pub mod prefetch;
pub mod writer;

pub use cache::default_cache_base;
pub use host::{home_dir, hostname, username};

use crate::backend::{Backend, Kind};
use crate::error::{Error, Result};
use crate::format::blob::{self, BlobType};
use crate::format::chunker::ChunkParams;
use crate::format::codec;
use crate::format::crypto::{KdfParams, KeyFile, Keys, MasterKey, AAD_CONFIG};
use crate::format::id::{BlobId, DataId, IndexId, KeyId, PackId, SnapshotId, TreeId};
use crate::format::index::{Index, IndexFile};
use crate::format::pack::{self, FinishedPack, PackEntry};
use crate::format::snapshot::{Filter, Snapshot, PRE_RESTORE_TAG};
use crate::format::tree::Tree;
use crate::repo::cache::Cache;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// The repository's `config` object (sealed JSON).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RepoConfig {
    pub version: u32,
    /// Random 32-byte id, hex; names the local cache folder.
    pub id: String,
    pub chunker: ChunkParams,
    /// Target pack size in bytes.
    pub pack_size: u64,
    /// zstd level for data blobs (0: store raw).
    pub compression: i32,
}

impl RepoConfig {
    /// Parses and validates the decrypted `config` object.
    pub fn from_json(plain: &[u8]) -> Result<RepoConfig> {
        let config: RepoConfig = serde_json::from_slice(plain).map_err(|e| Error::corrupt("config", "config", e))?;
        if config.version != 1 {
            return Err(Error::corrupt(
                "config",
                "config",
                format!("unsupported repository version {}", config.version),
            ));
        }
        config.chunker.validate().map_err(|e| Error::corrupt("config", "config", e))?;
        if config.id.len() != 64 || !config.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::corrupt("config", "config", "bad repository id"));
        }
        Ok(config)
    }
}

pub const DEFAULT_PACK_SIZE: u64 = 16 << 20;
pub const DEFAULT_COMPRESSION: i32 = 3;

/// A passphrase, kept out of Debug output.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// What `init` may set.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub kdf: KdfParams,
    pub chunker: ChunkParams,
    pub pack_size: u64,
    pub compression: i32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            chunker: ChunkParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
            compression: DEFAULT_COMPRESSION,
        }
    }
}

/// Where the local cache lives, or that there is none.
#[derive(Clone, Debug, Default)]
pub struct CacheOptions {
    /// Base folder; the cache is `<base>/<repo id>/`. `None`: `$XDG_CACHE_HOME/clawback`.
    pub dir: Option<PathBuf>,
    pub disabled: bool,
}

/// The local file naming the key file that last opened the repository at `backend`'s location
/// (`<cache base>/keys/<hash of the location>`): a hint, checked by opening the key file.
fn key_hint_file(cache: &CacheOptions, backend: &dyn Backend) -> PathBuf {
    let base = cache.dir.clone().unwrap_or_else(default_cache_base);
    base.join("keys").join(hex::encode(blake3::hash(backend.location().as_bytes()).as_bytes()))
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    keys: Keys,
    config: RepoConfig,
    cache: Option<Cache>,
    index: RwLock<Index>,
    key_id: String,
    /// Whether the index was loaded ([`Repository::open_unloaded`] leaves it to `refresh_index`).
    index_loaded: std::sync::atomic::AtomicBool,
}

impl Repository {
    /// Creates a new repository with one key file for `password`.
    pub fn init(backend: Arc<dyn Backend>, password: &Secret, opts: &InitOptions) -> Result<()> {
        opts.chunker.validate().map_err(Error::Usage)?;
        match backend.read(Kind::Config, "config") {
            Ok(_) => return Err(Error::RepoExists(backend.location())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Backend { op: "read", name: "config".into(), source: e }),
        }
        backend.create().map_err(Error::backend_err("create", &backend.location()))?;
        let master = MasterKey::random();
        let keys = Keys::derive(&master);
        let config = RepoConfig {
            version: 1,
            id: hex::encode(rand::random::<[u8; 32]>()),
            chunker: opts.chunker,
            pack_size: opts.pack_size.clamp(1 << 20, 1 << 30),
            compression: opts.compression.clamp(0, 19),
        };
        let kf = KeyFile::create(&master, &password.0, opts.kdf, &hostname(), &username())?;
        let kbytes = serde_json::to_vec_pretty(&kf).expect("serialize key file");
        let kid = KeyId::of_bytes(&kbytes).to_hex();
        backend.write(Kind::Key, &kid, &kbytes).map_err(Error::backend_err("write", &kid))?;
        // The config goes last: a repository without one is not a repository, so a failed init
        // can simply be retried.
        let cbytes = codec::seal_object(&keys, &[AAD_CONFIG], &serde_json::to_vec(&config).unwrap(), 0);
        backend.write(Kind::Config, "config", &cbytes).map_err(Error::backend_err("write", "config"))?;
        Ok(())
    }

    /// Opens a repository: finds a key file the password opens, reads the config, and brings the
    /// cache and the in-memory index up to date.
    pub fn open(backend: Arc<dyn Backend>, password: &Secret, cache: &CacheOptions) -> Result<Repository> {
        let repo = Self::open_unloaded(backend, password, cache)?;
        repo.reload_index()?;
        Ok(repo)
    }

    /// Like [`Repository::open`] without reading the index: for a writer that takes its backup
    /// lease first and then calls [`Repository::refresh_index`], which loads it, so condemned
    /// records and index files are listed once, after the lease (format-spec, "Prune"). Nothing
    /// may use the index before that.
    pub fn open_unloaded(backend: Arc<dyn Backend>, password: &Secret, cache: &CacheOptions) -> Result<Repository> {
        let hint_file = (!cache.disabled).then(|| key_hint_file(cache, backend.as_ref()));
        let hint = hint_file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
        let (master, key_id) = Self::unlock_hinted(backend.as_ref(), password, hint.as_deref().map(str::trim))?;
        if let Some(f) = &hint_file {
            if hint.as_deref().map(str::trim) != Some(key_id.as_str()) {
                // Best effort: without it the next open lists the key files again.
                // Private like the rest of the cache: folders 0700, the file 0600.
                use std::io::Write;
                use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
                if let Some(d) = f.parent() {
                    let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(d);
                }
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(f)
                    .and_then(|mut w| w.write_all(key_id.as_bytes()));
            }
        }
        let keys = Keys::derive(&master);
        let sealed = backend.read(Kind::Config, "config").map_err(Error::backend_err("read", "config"))?;
        let plain = codec::open_object(&keys, &[AAD_CONFIG], &sealed, "config", "config", 1 << 20)?;
        let config = RepoConfig::from_json(&plain)?;
        let cache = if cache.disabled {
            None
        } else {
            let base = cache.dir.clone().unwrap_or_else(default_cache_base);
            Some(Cache::open(&base.join(&config.id))?)
        };
        Ok(Repository {
            backend,
            keys,
            config,
            cache,
            index: RwLock::new(Index::default()),
            key_id,
            index_loaded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Tries the key file named by `hint` (the one that opened this repository last time, from the
    /// local cache) without listing the key files; lists them when it is gone or does not open.
    fn unlock_hinted(backend: &dyn Backend, password: &Secret, hint: Option<&str>) -> Result<(MasterKey, String)> {
        if let Some(name) = hint.filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())) {
            if let Ok(bytes) = backend.read(Kind::Key, name) {
                if let Ok(kf) = KeyFile::parse(&bytes) {
                    if let Ok(Some(m)) = kf.open(&password.0) {
                        return Ok((m, name.to_string()));
                    }
                }
            }
        }
        Self::unlock(backend, password)
    }

    /// Finds the key file that `password` opens.
    pub fn unlock(backend: &dyn Backend, password: &Secret) -> Result<(MasterKey, String)> {
        let keys = match backend.list(Kind::Key) {
            Ok(k) => k,
            Err(e) => return Err(Error::Backend { op: "list", name: "keys".into(), source: e }),
        };
        if keys.is_empty() {
            return match backend.read(Kind::Config, "config") {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::RepoNotFound(backend.location())),
                _ => Err(Error::corrupt("repository", backend.location(), "no key files")),
            };
        }
        for (name, _) in &keys {
            let bytes = backend.read(Kind::Key, name).map_err(Error::backend_err("read", name))?;
            let kf = match KeyFile::parse(&bytes) {
                Ok(kf) => kf,
                Err(_) => continue,
            };
            if let Some(m) = kf.open(&password.0)? {
                return Ok((m, name.clone()));
            }
        }
        Err(Error::WrongPassword)
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    pub fn index(&self) -> parking_lot::RwLockReadGuard<'_, Index> {
        self.index.read()
    }
    pub fn index_mut(&self) -> parking_lot::RwLockWriteGuard<'_, Index> {
        self.index.write()
    }
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// Reads every index file not yet in the cache and rebuilds the in-memory index, with the packs
    /// of condemned records marked (readable, but not reused for dedup).
    pub fn reload_index(&self) -> Result<()> {
        // A prune running elsewhere may delete index files it has just consolidated between our
        // listing and our reading them: its consolidated file is written before, so listing again
        // finds everything.
        let mut attempt = 0;
        loop {
            match self.load_index_once() {
                Err(Error::Backend { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < 8 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 << attempt.min(4)));
                }
                r => return r,
            }
        }
    }

    fn load_index_once(&self) -> Result<()> {
        // Condemned records are listed before the index files: a prune removes a pack from the index
        // files before it removes the record that condemns it (format-spec, "Prune").
        let condemned = condemned::list_condemned(self.backend.as_ref())?;
        let remote = self.backend.list(Kind::Index).map_err(Error::backend_err("list", "index"))?;
        let mut index = match &self.cache {
            Some(cache) => {
                // Cached index files still in the repository are used as they are; the others are
                // forgotten, and the repository's files the cache lacks are read and cached.
                let remote_ids: std::collections::HashSet<&str> = remote.iter().map(|(n, _)| n.as_str()).collect();
                let mut idx = Index::default();
                // Sized once: growing by doubling would hold the old table and the new at once.
                idx.reserve(cache.index_blobs()? as usize);
                let mut have = std::collections::HashSet::new();
                let mut stale = Vec::new();
                cache.for_each_index_file(|id, f| match f {
                    Some(f) if remote_ids.contains(id.as_str()) => {
                        idx.add_file(&f);
                        have.insert(id);
                    }
                    _ => stale.push(id),
                })?;
                cache.forget_indexes(&stale)?;
                let missing: Vec<&String> = remote.iter().map(|(n, _)| n).filter(|n| !have.contains(*n)).collect();
                let files = self.read_index_files(&missing)?;
                for (name, f) in missing.iter().zip(&files) {
                    cache.add_index(name, f)?;
                    idx.add_file(f);
                }
                idx
            }
            None => {
                let names: Vec<&String> = remote.iter().map(|(n, _)| n).collect();
                let mut idx = Index::default();
                for f in self.read_index_files(&names)? {
                    idx.add_file(&f);
                }
                idx
            }
        };
        let packs: crate::format::id::IdSet<crate::format::id::PackId> =
            condemned.iter().flat_map(|(r, _)| r.packs.clone()).collect();
        index.set_condemned(&packs);
        let record_names = condemned.into_iter().flat_map(|(_, names)| names);
        index.set_source(remote.into_iter().map(|(n, _)| n).chain(record_names).collect());
        *self.index.write() = index;
        self.index_loaded.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Reloads the index if index files or condemned records came or went since it was loaded. A
    /// writer calls it after taking its backup lease (format-spec, "Prune").
    pub fn refresh_index(&self) -> Result<()> {
        if !self.index_loaded.load(std::sync::atomic::Ordering::SeqCst) {
            return self.reload_index();
        }
        let mut names: Vec<String> = self
            .backend
            .list(Kind::Condemned)
            .map_err(Error::backend_err("list", "condemned"))?
            .into_iter()
            .map(|x| x.0)
            .collect();
        names.sort();
        let mut now: Vec<String> = self
            .backend
            .list(Kind::Index)
            .map_err(Error::backend_err("list", "index"))?
            .into_iter()
            .map(|x| x.0)
            .collect();
        now.extend(names);
        let mut was = self.index().source().to_vec();
        was.sort();
        now.sort();
        if was == now {
            return Ok(());
        }
        self.reload_index()
    }

    /// Reads and decodes index files, checking each one's name against its content.
    pub fn read_index_files<S: AsRef<str> + Sync>(&self, names: &[S]) -> Result<Vec<IndexFile>> {
        use rayon::prelude::*;
        names.par_iter().map(|name| self.read_index_file(name.as_ref())).collect()
    }

    /// Reads and decodes one index file, checking its name against its content.
    pub fn read_index_file(&self, name: &str) -> Result<IndexFile> {
        let bytes = self.backend.read(Kind::Index, name).map_err(Error::backend_err("read", name))?;
        if IndexId::of_bytes(&bytes).to_hex() != name {
            return Err(Error::corrupt("index", name, "content does not match its name; run `clawback repair index`"));
        }
        IndexFile::decode(&self.keys, name, &bytes)
    }

    /// The names of the index files in the repository, sorted.
    pub fn index_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .backend
            .list(Kind::Index)
            .map_err(Error::backend_err("list", "index"))?
            .into_iter()
            .map(|x| x.0)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The packs in `data/` with their sizes (objects not named like a pack are left out).
    pub fn stored_packs(&self) -> Result<Vec<(PackId, u64)>> {
        Ok(self
            .backend
            .list(Kind::Pack)
            .map_err(Error::backend_err("list", "data"))?
            .into_iter()
            .filter_map(|(n, s)| PackId::from_hex(&n).map(|id| (id, s)))
            .collect())
    }

    /// Reads a pack's header alone (two range reads from its tail): its blobs' places.
    pub fn read_pack_header(&self, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
        let name = id.to_hex();
        if size < 4 {
            return Err(Error::corrupt("pack", &name, "too short"));
        }
        let tail =
            self.backend.read_range(Kind::Pack, &name, size - 4, 4).map_err(Error::backend_err("read pack", &name))?;
        let tail: [u8; 4] = tail.as_slice().try_into().map_err(|_| Error::corrupt("pack", &name, "short read"))?;
        let (start, len) =
            pack::header_range(size, &tail).map_err(|_| Error::corrupt("pack", &name, "bad header length"))?;
        let sealed =
            self.backend.read_range(Kind::Pack, &name, start, len).map_err(Error::backend_err("read pack", &name))?;
        pack::decode_header(&self.keys, id, &sealed, start)
    }

    /// The one object of `kind` whose name starts with the hex `prefix` (any case).
    pub fn find_object(&self, kind: Kind, prefix: &str) -> Result<String> {
        let prefix = prefix.to_ascii_lowercase();
        let names: Vec<String> = self
            .backend
            .list(kind)
            .map_err(Error::backend_err("list", kind.dir()))?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        match unique_by_prefix(names, &prefix, |n| n.clone()) {
            Ok(name) => Ok(name),
            Err(0) => Err(Error::Missing { what: "object", id: prefix }),
            Err(_) => Err(Error::Usage(format!("{prefix} is ambiguous; give more hex digits"))),
        }
    }

    /// Stores a finished pack; succeeds if an identical pack is already there.
    pub fn save_pack(&self, p: &FinishedPack) -> Result<()> {
        let name = p.id.to_hex();
        match self.backend.write(Kind::Pack, &name, &p.bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map_err(Error::backend_err("write pack", &name)),
        }
    }

    /// Stores an index file and adds it to the cache and the in-memory index.
    pub fn save_index(&self, f: &IndexFile) -> Result<IndexId> {
        let bytes = f.encode(&self.keys);
        let id = IndexId::of_bytes(&bytes);
        let name = id.to_hex();
        match self.backend.write(Kind::Index, &name, &bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            r => r.map_err(Error::backend_err("write index", &name))?,
        }
        if let Some(c) = &self.cache {
            c.add_index(&name, f)?;
        }
        self.index.write().add_file(f);
        Ok(id)
    }

    pub fn save_snapshot(&self, s: &Snapshot) -> Result<SnapshotId> {
        self.store_snapshot(s, s.encode(&self.keys))
    }

    fn store_snapshot(&self, s: &Snapshot, bytes: Vec<u8>) -> Result<SnapshotId> {
        let id = SnapshotId::of_bytes(&bytes);
        let name = id.to_hex();
        self.backend.write(Kind::Snapshot, &name, &bytes).map_err(Error::backend_err("write snapshot", &name))?;
        if let Some(c) = &self.cache {
            c.put_snapshot(&name, &serde_json::to_vec(s).unwrap())?;
        }
        Ok(id)
    }

    /// Saves a snapshot whose `summary.bytes_stored` also counts the snapshot object itself. The
    /// encoded length moves with the digits of the number it holds, so iterate to the fixed point.
    /// Compressed, the length need not move monotonically and may have no fixed point; stored raw
    /// it grows with the digits only, so the second pass always settles.
    pub fn save_snapshot_counting_itself(&self, s: &mut Snapshot) -> Result<SnapshotId> {
        let base = s.summary.bytes_stored;
        for level in [codec::METADATA_LEVEL, 0] {
            let mut own = 0u64;
            for _ in 0..8 {
                s.summary.bytes_stored = base + own;
                let bytes = s.encode_level(&self.keys, level);
                if bytes.len() as u64 == own {
                    return self.store_snapshot(s, bytes);
                }
                own = bytes.len() as u64;
            }
        }
        self.save_snapshot(s)
    }

    /// Every snapshot, oldest first (ties broken by id).
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let remote = self.backend.list(Kind::Snapshot).map_err(Error::backend_err("list", "snapshots"))?;
        let mut cached: std::collections::HashMap<String, Vec<u8>> = match &self.cache {
            Some(c) => c.snapshots()?.into_iter().collect(),
            None => Default::default(),
        };
        let remote_names: std::collections::HashSet<&String> = remote.iter().map(|(n, _)| n).collect();
        if let Some(c) = &self.cache {
            for k in cached.keys().filter(|k| !remote_names.contains(k)) {
                c.remove_snapshot(k)?;
            }
        }
        let mut out = Vec::with_capacity(remote.len());
        for (name, _) in &remote {
            let Some(id) = SnapshotId::from_hex(name) else {
                continue;
            };
            let snap = match cached.remove(name) {
                Some(json) => Snapshot::from_json(name, &json)?,
                None => {
                    let s = match self.read_snapshot(name) {
                        // Forgotten by another process since the listing: it is not a snapshot any more.
                        Err(Error::Backend { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
                        r => r?,
                    };
                    if let Some(c) = &self.cache {
                        c.put_snapshot(name, &serde_json::to_vec(&s).unwrap())?;
                    }
                    s
                }
            };
            out.push((id, snap));
        }
        out.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Reads and decodes the snapshot object `name`, checking its name against its content.
    pub fn read_snapshot(&self, name: &str) -> Result<Snapshot> {
        let bytes = self.backend.read(Kind::Snapshot, name).map_err(Error::backend_err("read", name))?;
        if SnapshotId::from_hex(name) != Some(SnapshotId::of_bytes(&bytes)) {
            return Err(Error::corrupt("snapshot", name, "content does not match its name"));
        }
        Snapshot::decode(&self.keys, name, &bytes)
    }

    /// Resolves `latest` (`latest~N`: the N-th before it, as rustic writes it), a full id or a
    /// unique prefix of at least 4 hex digits, among snapshots that pass `filter`.
    pub fn find_snapshot(&self, spec: &str, filter: impl Fn(&Snapshot) -> bool) -> Result<(SnapshotId, Snapshot)> {
        let all = self.snapshots()?;
        if let Some(rest) = spec.strip_prefix("latest") {
            let back: usize = match rest.strip_prefix('~') {
                None if rest.is_empty() => 0,
                Some(n) => n.parse().map_err(|_| {
                    Error::Usage(format!("invalid snapshot {spec:?}: write latest~N with N a whole number"))
                })?,
                None => {
                    return Err(Error::Usage(format!(
                        "invalid snapshot {spec:?}: give `latest`, `latest~N`, an id or at least 4 hex digits"
                    )))
                }
            };
            return all
                .into_iter()
                .rev()
                .filter(|(_, s)| filter(s))
                .nth(back)
                .ok_or_else(|| Error::SnapshotNotFound(spec.into()));
        }
        if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Usage(format!(
                "invalid snapshot {spec:?}: give `latest`, an id or at least 4 hex digits"
            )));
        }
        match unique_by_prefix(all, &spec.to_ascii_lowercase(), |(id, _)| id.to_hex()) {
            Ok(found) => Ok(found),
            Err(0) => Err(Error::SnapshotNotFound(spec.into())),
            Err(_) => Err(Error::AmbiguousSnapshot(spec.into())),
        }
    }

    /// The snapshots `filter` selects, oldest first.
    pub fn snapshots_matching(&self, filter: &Filter) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(self.snapshots()?.into_iter().filter(|(_, s)| filter.matches(s)).collect())
    }

    /// Resolves SNAPSHOT (`latest`, `latest~N`, an id or a prefix) among the snapshots `filter`
    /// and `also` let through, as every command that takes a SNAPSHOT does. `latest` is the latest
    /// backup: the safety snapshots in-place restores take (tag `pre-restore`) are passed over
    /// unless the filter's tags name them; an id or prefix names any snapshot. When `latest`
    /// matches nothing, the error names the filter, and says when only safety snapshots match.
    pub fn select_snapshot(
        &self,
        spec: &str,
        filter: &Filter,
        also: impl Fn(&Snapshot) -> bool,
    ) -> Result<(SnapshotId, Snapshot)> {
        let safety_too = filter.names_pre_restore();
        let pick = |s: &Snapshot| filter.matches(s) && also(s);
        self.find_snapshot(spec, |s| pick(s) && (safety_too || !s.is_pre_restore())).map_err(|e| match e {
            Error::SnapshotNotFound(what) => {
                let with = if filter.is_empty() { String::new() } else { format!(" with {}", describe(filter)) };
                let only_safety = spec.starts_with("latest")
                    && !safety_too
                    && self.snapshots().is_ok_and(|all| {
                        let mut picked = all.iter().filter(|(_, s)| pick(s));
                        picked.clone().next().is_some() && picked.all(|(_, s)| s.is_pre_restore())
                    });
                let hint = if only_safety {
                    format!(
                        " (only {PRE_RESTORE_TAG} safety snapshots match, which `latest` passes over; \
                         give one's id or add --tag {PRE_RESTORE_TAG})"
                    )
                } else {
                    String::new()
                };
                Error::SnapshotNotFound(format!("{what}{with}{hint}"))
            }
            e => e,
        })
    }

    /// Reads and verifies one blob.
    pub fn read_blob(&self, ty: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.index().get(id).ok_or_else(|| Error::Missing { what: "blob", id: id.to_hex() })?;
        if loc.ty != ty {
            return Err(Error::corrupt("blob", id, "indexed with another type"));
        }
        let pack = self.index().pack_id(loc.pack).to_hex();
        let stored = self
            .backend
            .read_range(Kind::Pack, &pack, loc.offset as u64, loc.length as u64)
            .map_err(|e| Error::Backend { op: "read pack", name: pack.clone(), source: e })?;
        blob::decode(&self.keys, ty, id, &stored, loc.raw_length as usize)
            .map_err(|e| Error::corrupt("pack", &pack, format!("blob {}: {}", id.short(), e)))
    }

    /// Reads and verifies one chunk of file content.
    pub fn read_data(&self, id: &DataId) -> Result<Vec<u8>> {
        self.read_blob(BlobType::Data, &id.blob())
    }

    /// Loads a tree, from the cache when it is there.
    pub fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        if let Some(c) = &self.cache {
            if let Some(bytes) = c.get_tree(id)? {
                if let Ok(t) = Tree::decode(id, &bytes) {
                    return Ok(t);
                }
            }
        }
        let bytes = self.read_blob(BlobType::Tree, &id.blob())?;
        let t = Tree::decode(id, &bytes)?;
        if let Some(c) = &self.cache {
            c.put_tree(id, &bytes)?;
        }
        Ok(t)
    }
}

/// The one item whose name (`name`) starts with `prefix`; else how many do (0, or more than 1).
fn unique_by_prefix<T>(items: Vec<T>, prefix: &str, name: impl Fn(&T) -> String) -> std::result::Result<T, usize> {
    let mut m: Vec<T> = items.into_iter().filter(|x| name(x).starts_with(prefix)).collect();
    match m.len() {
        1 => Ok(m.pop().expect("one match")),
        n => Err(n),
    }
}

/// A filter as the command-line flags that make it (`--host h --tag a,b`), for messages.
fn describe(f: &Filter) -> String {
    let mut v = Vec::new();
    v.extend(f.hosts.iter().map(|h| format!("--host {h}")));
    v.extend(f.tags.iter().map(|t| format!("--tag {}", t.join(","))));
    v.extend(f.paths.iter().map(|p| format!("--path {p}")));
    v.extend(f.group.iter().map(|g| format!("--group {g}")));
    v.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    fn repo(dir: &std::path::Path) -> Repository {
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.join("repo")));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(be.clone(), &Secret(b"pw".to_vec()), &opts).unwrap();
        Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
    }

    fn snap(host: &str, day: u32, tags: &[&str]) -> Snapshot {
        let mut s = Snapshot::for_test(host, &["/p"], &format!("2026-01-{day:02}T10:00:00Z"));
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s
    }

    #[test]
    fn latest_passes_over_safety_snapshots_unless_asked() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path());
        let backup = r.save_snapshot(&snap("a", 1, &[])).unwrap();
        let safety = r.save_snapshot(&snap("a", 2, &[PRE_RESTORE_TAG])).unwrap();
        let other = r.save_snapshot(&snap("b", 3, &[])).unwrap();
        let all = Filter::default();
        assert_eq!(r.select_snapshot("latest", &all, |_| true).unwrap().0, other);
        let host_a = Filter { hosts: vec!["a".into()], ..Default::default() };
        assert_eq!(
            r.select_snapshot("latest", &host_a, |_| true).unwrap().0,
            backup,
            "the safety snapshot is passed over"
        );
        let asked = Filter { tags: vec![vec![PRE_RESTORE_TAG.into()]], ..host_a.clone() };
        assert_eq!(r.select_snapshot("latest", &asked, |_| true).unwrap().0, safety);
        // An id names any snapshot, the safety snapshot included.
        assert_eq!(r.select_snapshot(&safety.to_hex()[..8], &host_a, |_| true).unwrap().0, safety);
        assert_eq!(r.snapshots_matching(&host_a).unwrap().len(), 2);

        // Nothing matches: the error names the filter.
        let none = Filter { hosts: vec!["c".into()], tags: vec![vec!["x".into(), "y".into()]], ..Default::default() };
        let e = r.select_snapshot("latest", &none, |_| true).unwrap_err().to_string();
        assert_eq!(e, "snapshot latest with --host c --tag x,y not found");
        // Only safety snapshots match: the error says how to pick one.
        let e = r.select_snapshot("latest", &host_a, |s| s.time().format("%d").to_string() == "02").unwrap_err();
        assert!(e.to_string().contains("only pre-restore safety snapshots match"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn objects_and_snapshots_are_found_by_unique_prefix() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path());
        let ids: Vec<SnapshotId> = (1..=20).map(|day| r.save_snapshot(&snap("a", day, &[])).unwrap()).collect();
        let id = ids[0].to_hex();
        assert_eq!(r.find_object(Kind::Snapshot, &id[..10].to_ascii_uppercase()).unwrap(), id);
        assert!(matches!(r.find_object(Kind::Snapshot, "zz"), Err(Error::Missing { .. })));
        assert_eq!(r.find_object(Kind::Snapshot, "").unwrap_err().exit_code(), 2, "every name matches");
        assert_eq!(r.find_snapshot(&id[..6], |_| true).unwrap().0, ids[0]);
        let first = |i: &SnapshotId| i.to_hex()[..1].to_string();
        // 20 ids, 16 first digits: two share one.
        let shared = ids.iter().find(|a| ids.iter().filter(|b| first(b) == first(a)).count() > 1).map(first).unwrap();
        assert!(matches!(r.find_object(Kind::Snapshot, &shared), Err(Error::Usage(_))));
        assert!(matches!(r.find_snapshot("abc", |_| true), Err(Error::Usage(_))), "fewer than 4 digits");
        assert_eq!(r.read_snapshot(&id).unwrap().time, "2026-01-01T10:00:00Z");
    }

    #[test]
    fn index_files_and_pack_headers_are_read_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path());
        let mut w = crate::format::pack::PackWriter::new(BlobType::Data, 0);
        let id = r.keys().blob_id(b"hello");
        w.add(id, &blob::encode(r.keys(), BlobType::Data, &id, b"hello", 0), 5);
        let p = w.finish(r.keys());
        r.save_pack(&p).unwrap();
        let size = p.bytes.len() as u64;
        let entries = r.read_pack_header(&p.id, size).unwrap();
        assert_eq!(entries, p.entries);
        assert_eq!(r.stored_packs().unwrap(), vec![(p.id, size)]);
        assert!(r.read_pack_header(&p.id, 3).is_err(), "too short");
        let f = IndexFile {
            version: 1,
            supersedes: vec![],
            packs: vec![crate::format::index::IndexPack { id: p.id, size, blobs: entries }],
        };
        let ix = r.save_index(&f).unwrap().to_hex();
        assert_eq!(r.index_names().unwrap(), vec![ix.clone()]);
        assert_eq!(r.read_index_files(std::slice::from_ref(&ix)).unwrap().len(), 1);
        // An index file under another name is refused.
        let bytes = r.backend().read(Kind::Index, &ix).unwrap();
        let wrong = "00".repeat(32);
        r.backend().write(Kind::Index, &wrong, &bytes).unwrap();
        let e = r.read_index_file(&wrong).unwrap_err().to_string();
        assert!(e.contains("content does not match its name; run `clawback repair index`"), "{e}");
    }
}
