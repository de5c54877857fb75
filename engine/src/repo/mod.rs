//! The repository layer. [`Repository`] is the one home of every repository-level read and
//! lookup: creating and opening (config, key files), the blob index (through the local cache),
//! index files, pack headers, objects found by id prefix, blobs and trees, and snapshots
//! (`snapshots.rs`: listed, read, selected by filter). Beside it: the one blob-writing session
//! ([`writer`], on [`packer`]), leases and condemned records, the local cache and the blob table on
//! disk ([`blobtable`]), read-ahead, and this machine's identity ([`host`]).

pub mod append_only;
pub mod blobtable;
pub mod cache;
pub mod condemned;
pub mod dicts;
pub mod host;
pub mod lease;
pub mod location;
pub mod packer;
pub mod prefetch;
mod snapshots;
pub mod writer;

pub use cache::default_cache_base;
pub use dicts::DICT_VERSION;
pub use host::{home_dir, hostname, username};

use crate::backend::retention::ObjectLock;
use crate::backend::{Backend, Kind, ObjectName, Stored};
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::chunker::ChunkParams;
use crate::format::codec;
use crate::format::crypto::{KdfParams, KeyFile, Keys, MasterKey, AAD_CONFIG};
use crate::format::id::{BlobId, DataId, IndexId, KeyId, PackId, TreeId};
use crate::format::index::{Index, IndexFile};
use crate::format::pack::{self, FinishedPack, PackEntry};
use crate::format::tree::Tree;
use crate::repo::blobtable::BlobTable;
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
    /// Present when the repository is append-only (`init --append-only`): nothing is deleted
    /// without the maintenance key. Absent in repositories made before it existed, which are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_only: Option<append_only::AppendOnly>,
    /// Object-lock retention every new object but a lease carries (`init --object-lock-days`), on
    /// any host that opens the repository. Absent: none (unless the clawback config file asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
}

impl RepoConfig {
    /// Parses and validates the decrypted `config` object.
    pub fn from_json(plain: &[u8]) -> Result<RepoConfig> {
        let config: RepoConfig =
            crate::format::canonical::json(plain).map_err(|e| Error::corrupt("config", "config", e))?;
        if !(1..=DICT_VERSION).contains(&config.version) {
            return Err(Error::corrupt(
                "config",
                "config",
                format!("unsupported repository version {}", config.version),
            ));
        }
        config.chunker.validate().map_err(|e| Error::corrupt("config", "config", e))?;
        if config.id.len() != 64 || !config.id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::corrupt("config", "config", "bad repository id (not 64 lowercase hex digits)"));
        }
        if let Some(a) = &config.append_only {
            a.validate().map_err(|e| Error::corrupt("config", "config", e))?;
        }
        if let Some(l) = &config.object_lock {
            l.validate().map_err(|e| Error::corrupt("config", "config", e))?;
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
    /// The repository format version: [`DICT_VERSION`] (the default) or 1, which clawback before
    /// dictionaries reads and writes too.
    pub version: u32,
    /// Make the repository append-only, liftable by the maintenance key this records
    /// ([`append_only::new_maintenance_key`]).
    pub append_only: Option<append_only::AppendOnly>,
    /// Object-lock retention for every object but leases, recorded in the config (S3 only).
    pub object_lock: Option<ObjectLock>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            chunker: ChunkParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
            compression: DEFAULT_COMPRESSION,
            version: DICT_VERSION,
            append_only: None,
            object_lock: None,
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

/// Whether this machine is about to open the repository at `backend` for the first time: its
/// cache remembers no key that opened it (`false` with the cache disabled, which remembers none).
pub fn first_open_here(cache: &CacheOptions, backend: &dyn Backend) -> bool {
    !cache.disabled && !key_hint_file(cache, backend).exists()
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    keys: Keys,
    config: RepoConfig,
    cache: Option<Cache>,
    index: RwLock<Index>,
    key_id: KeyId,
    /// Whether the index was loaded ([`Repository::open_unloaded`] leaves it to `refresh_index`).
    index_loaded: std::sync::atomic::AtomicBool,
    /// Compression dictionaries read so far.
    dicts: dicts::Dicts,
    /// Set when the maintenance key lifted the append-only mode for this run (the guard reads it).
    lifted: Arc<std::sync::atomic::AtomicBool>,
    /// Set by [`Repository::refresh_index_lazily`] while index files the blob table does not cover
    /// are left out of the index; the first lookup takes them in ([`Repository::absorb_pending`]).
    absorb: std::sync::atomic::AtomicBool,
    /// Held while they are taken in, so it happens once.
    absorbing: parking_lot::Mutex<()>,
    /// The index files the lazy load listed (it found no condemned record), taken in by the first
    /// lookup without listing the store again.
    listed: parking_lot::Mutex<Option<Vec<ObjectName>>>,
    /// The index files this process wrote, added to the cache's blob table as they were written
    /// ([`BlobTable::add_written`]): a later absorb counts them as listed.
    written: parking_lot::Mutex<Vec<ObjectName>>,
}

impl Repository {
    /// Creates a new repository with one key file for `password`.
    pub fn init(backend: Arc<dyn Backend>, password: &Secret, opts: &InitOptions) -> Result<()> {
        opts.chunker.validate().map_err(Error::Usage)?;
        if !(1..=DICT_VERSION).contains(&opts.version) {
            return Err(Error::Usage(format!("unknown repository version {} (1 or {DICT_VERSION})", opts.version)));
        }
        match backend.read(&ObjectName::config()) {
            Ok(_) => return Err(Error::RepoExists(backend.location())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Backend { op: "read", name: "config".into(), source: e }),
        }
        if let Some(lock) = &opts.object_lock {
            lock.validate().map_err(Error::Usage)?;
            let Some(v) = backend.versioned() else {
                return Err(Error::Usage(format!(
                    "--object-lock-days needs an S3 repository (object lock is a bucket feature); {} is not one",
                    backend.location()
                )));
            };
            // Before the bucket is made (with object lock enabled) and the key file written.
            v.set_object_lock(Some(lock.clone()));
        }
        backend.create().map_err(Error::backend_err("create", &backend.location()))?;
        let master = MasterKey::random();
        let keys = Keys::derive(&master);
        let config = RepoConfig {
            version: opts.version,
            id: hex::encode(rand::random::<[u8; 32]>()),
            chunker: opts.chunker,
            pack_size: opts.pack_size.clamp(1 << 20, 1 << 30),
            compression: opts.compression.clamp(0, 19),
            append_only: opts.append_only.clone(),
            object_lock: opts.object_lock.clone(),
        };
        let kf = KeyFile::create(&master, &password.0, opts.kdf, &hostname(), &username())?;
        let kbytes = serde_json::to_vec_pretty(&kf).expect("serialize key file");
        let kid = ObjectName::of(&KeyId::of_bytes(&kbytes));
        backend.write(&kid, &kbytes).map_err(Error::backend_err("write", &kid))?;
        // The config goes last: a repository without one is not a repository, so a failed init
        // can simply be retried.
        let cbytes = codec::seal_object(&keys, &[AAD_CONFIG], &serde_json::to_vec(&config).unwrap(), 0);
        backend.write(&ObjectName::config(), &cbytes).map_err(Error::backend_err("write", "config"))?;
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
            if hint.as_deref().map(str::trim) != Some(key_id.to_hex().as_str()) {
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
                    .and_then(|mut w| w.write_all(key_id.to_hex().as_bytes()));
            }
        }
        let keys = Keys::derive(&master);
        let sealed = backend.read(&ObjectName::config()).map_err(Error::backend_err("read", "config"))?;
        let plain = codec::open_object(&keys, &[AAD_CONFIG], &sealed, "config", "config", 1 << 20)?;
        let config = RepoConfig::from_json(&plain)?;
        // The repository's retention binds every host; a store without versions (a copy of the
        // repository in a folder) has nothing to set.
        if let (Some(lock), Some(v)) = (&config.object_lock, backend.versioned()) {
            v.set_object_lock(Some(lock.clone()));
        }
        let lifted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Defence in depth: whatever a command does, the backend of an append-only repository
        // refuses deletions until the maintenance key lifts the mode.
        let backend: Arc<dyn Backend> = if config.append_only.is_some() {
            Arc::new(append_only::Guard::new(backend, lifted.clone()))
        } else {
            backend
        };
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
            dicts: Default::default(),
            lifted,
            absorb: Default::default(),
            absorbing: Default::default(),
            listed: Default::default(),
            written: Default::default(),
        })
    }

    /// Tries the key file named by `hint` (the one that opened this repository last time, from the
    /// local cache) without listing the key files; lists them when it is gone or does not open.
    fn unlock_hinted(backend: &dyn Backend, password: &Secret, hint: Option<&str>) -> Result<(MasterKey, KeyId)> {
        if let Some((name, id)) = hint.and_then(|h| Some((h, KeyId::from_name(h)?))) {
            if let Some(bytes) = backend.read(&ObjectName::of(&id)).ok().filter(|b| KeyFile::is_named(name, b)) {
                if let Ok(kf) = KeyFile::parse(&bytes) {
                    if let Ok(Some(m)) = kf.open(&password.0) {
                        return Ok((m, id));
                    }
                }
            }
        }
        Self::unlock(backend, password)
    }

    /// Finds the key file that `password` opens.
    pub fn unlock(backend: &dyn Backend, password: &Secret) -> Result<(MasterKey, KeyId)> {
        let keys = match backend.list(Kind::Key) {
            Ok(k) => k,
            Err(e) => return Err(Error::Backend { op: "list", name: "keys".into(), source: e }),
        };
        if keys.is_empty() {
            return match backend.read(&ObjectName::config()) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::RepoNotFound(backend.location())),
                _ => Err(Error::corrupt("repository", backend.location(), "no key files")),
            };
        }
        let mut misnamed = Vec::new();
        for (name, _) in &keys {
            let bytes = backend.read(name).map_err(Error::backend_err("read", name))?;
            let name = name.as_str();
            // Named by its hash, so its name is a key id.
            let Some(id) = KeyId::from_name(name).filter(|_| KeyFile::is_named(name, &bytes)) else {
                misnamed.push((name, bytes));
                continue;
            };
            let kf = match KeyFile::parse(&bytes) {
                Ok(kf) => kf,
                Err(_) => continue,
            };
            if let Some(m) = kf.open(&password.0)? {
                return Ok((m, id));
            }
        }
        for (name, bytes) in misnamed {
            KeyFile::refuse_misnamed(name, &bytes, &password.0)?;
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
    /// Whether the repository is append-only and the maintenance key has not lifted it.
    pub fn append_only(&self) -> bool {
        self.config.append_only.is_some() && !self.lifted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lifts the append-only mode for this run when `key` is the repository's maintenance key.
    /// On a repository that is not append-only the key is not needed, and accepted.
    pub fn lift_append_only(&self, key: &Secret) -> Result<()> {
        match &self.config.append_only {
            None => Ok(()),
            Some(a) if a.accepts(&key.0) => {
                self.lifted.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Some(_) => Err(Error::AppendOnly(
                "the maintenance key given is not this repository's; give the file `init --append-only` wrote".into(),
            )),
        }
    }

    /// Refuses `what`, an operation that deletes, before it writes anything: when the repository
    /// is append-only, or when the store does not let these credentials delete (a probe).
    pub fn require_deletes(&self, what: &str) -> Result<()> {
        if self.append_only() {
            return Err(append_only::refused(what));
        }
        append_only::require_delete_rights(self.backend.as_ref(), what)
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// The index, whole: index files left out by a lazy load are taken in first. (A failure to
    /// take them in shows in the explicit [`Repository::absorb_pending`] that precedes lookups.)
    pub fn index(&self) -> parking_lot::RwLockReadGuard<'_, Index> {
        let _ = self.absorb_pending();
        self.index.read()
    }
    /// Whether the index holds the blob: what it holds already answers first; a miss takes in the
    /// index files a lazy load left out and looks again (so a run that only finds what it knew,
    /// an unchanged one, never reads the files other hosts added). A failure to take them in
    /// counts as a miss here and shows in [`Repository::absorb_pending`].
    pub fn holds_blob(&self, id: &crate::format::id::BlobId) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        if self.index.read().contains(id) {
            return true;
        }
        self.absorb.load(SeqCst) && self.index().contains(id)
    }
    /// Whether a lazy load left index files out that no lookup has taken in yet.
    pub fn absorb_is_pending(&self) -> bool {
        self.absorb.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Whether the index, as it is now (without the files a lazy load left out), holds the blob.
    pub fn holds_blob_now(&self, id: &crate::format::id::BlobId) -> bool {
        self.index.read().contains(id)
    }
    pub fn index_mut(&self) -> parking_lot::RwLockWriteGuard<'_, Index> {
        let _ = self.absorb_pending();
        self.index.write()
    }

    /// Whether a backup of the set `key` must look up the blobs it reuses from its parent (see
    /// [`Index::reuse_needs_check`]); it takes in no index file a lazy load left out.
    pub fn reuse_needs_check(&self, key: &str) -> bool {
        self.index.read().reuse_needs_check(key)
    }
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// Reads every index file not yet in the cache and rebuilds the in-memory index, with the packs
    /// of condemned records marked (readable, but not reused for dedup).
    pub fn reload_index(&self) -> Result<()> {
        self.reload(false)
    }

    fn reload(&self, lazy: bool) -> Result<()> {
        // A prune running elsewhere may delete index files it has just consolidated between our
        // listing and our reading them: its consolidated file is written before, so listing again
        // finds everything.
        let mut attempt = 0;
        loop {
            match self.load_index_once(lazy) {
                Err(Error::Backend { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < 8 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 << attempt.min(4)));
                }
                r => return r,
            }
        }
    }

    /// Loads the index. `lazy`: when the cache's blob table is sound and no pack is condemned, the
    /// index files it does not cover yet are left for the first lookup ([`Repository::absorb_pending`]).
    fn load_index_once(&self, lazy: bool) -> Result<()> {
        // Condemned records are listed before the index files: a prune removes a pack from the index
        // files before it removes the record that condemns it (format-spec, "Prune").
        let condemned = condemned::list_condemned(self.backend.as_ref())?;
        let objects: Vec<ObjectName> = self
            .backend
            .list(Kind::Index)
            .map_err(Error::backend_err("list", "index"))?
            .into_iter()
            .map(|x| x.0)
            .collect();
        let names: Vec<String> = objects.iter().map(ObjectName::to_string).collect();
        if let Some(cache) = &self.cache {
            // Cached index files gone from the repository (after a prune) are forgotten.
            let remote: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
            let stale: Vec<String> =
                cache.index_names()?.into_iter().filter(|n| !remote.contains(n.as_str())).collect();
            cache.forget_indexes(&stale)?;
        }
        // The blob table reads only the index files it lacks (all of them with no cache, or a new
        // cache): from the cache's copies, else from the repository, a few at a time.
        let dir = self.cache.as_ref().map(|c| blobtable::table_dir(c.dir()));
        if let Some(d) = dir.as_deref().filter(|_| lazy && condemned.is_empty()) {
            if let Some((table, packs, new)) = BlobTable::open_kept(d, &names)? {
                let mut index = Index::with_table(table, packs);
                index.set_source(names);
                let _held = self.absorbing.lock();
                *self.listed.lock() = Some(objects);
                *self.index.write() = index;
                self.absorb.store(!new.is_empty(), std::sync::atomic::Ordering::SeqCst);
                self.index_loaded.store(true, std::sync::atomic::Ordering::SeqCst);
                return Ok(());
            }
        }
        let mut fetch =
            |want: &[&str], each: &mut dyn FnMut(IndexFile) -> Result<()>| self.fetch_named(&objects, want, each);
        let (table, packs) = BlobTable::load(dir.as_deref(), &names, &mut fetch)?;
        let mut index = Index::with_table(table, packs);
        let packs: crate::format::id::IdSet<crate::format::id::PackId> =
            condemned.iter().flat_map(|(r, _)| r.packs.clone()).collect();
        index.set_condemned(&packs);
        let record_names = condemned.into_iter().flat_map(|(_, names)| names).map(|n| n.to_string());
        index.set_source(names.into_iter().chain(record_names).collect());
        let _held = self.absorbing.lock();
        *self.index.write() = index;
        self.absorb.store(false, std::sync::atomic::Ordering::SeqCst);
        self.index_loaded.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Takes into the index the index files a lazy load left out (nothing when there are none),
    /// from the lazy load's own listing (no second listing in a run, as with an eager load; listed
    /// again only when a file has gone since, after a prune), keeping this process's own additions. Every path that looks a blob up calls it (or [`Repository::index`]) first.
    pub fn absorb_pending(&self) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.absorb.load(SeqCst) {
            return Ok(());
        }
        let _held = self.absorbing.lock();
        if !self.absorb.load(SeqCst) {
            return Ok(());
        }
        let dir = self.cache.as_ref().map(|c| blobtable::table_dir(c.dir()));
        // As in `reload_index`: a prune may remove index files it consolidated between our listing
        // and our reading them; listing again finds the consolidated one.
        let mut attempt = 0;
        loop {
            let r = (|| {
                let (condemned, mut objects) = match self.listed.lock().take() {
                    // The lazy load listed no condemned record.
                    Some(objects) => (Vec::new(), objects),
                    None => (condemned::list_condemned(self.backend.as_ref())?, self.index_names()?),
                };
                // What this process wrote since the listing is in the blob table already.
                for w in self.written.lock().iter() {
                    if !objects.contains(w) {
                        objects.push(w.clone());
                    }
                }
                let names: Vec<String> = objects.iter().map(ObjectName::to_string).collect();
                let mut fetch = |want: &[&str], each: &mut dyn FnMut(IndexFile) -> Result<()>| {
                    self.fetch_named(&objects, want, each)
                };
                let (table, packs) = BlobTable::load(dir.as_deref(), &names, &mut fetch)?;
                let mut index = self.index.write();
                index.absorb(table, packs);
                let packs: crate::format::id::IdSet<crate::format::id::PackId> =
                    condemned.iter().flat_map(|(r, _)| r.packs.clone()).collect();
                index.set_condemned(&packs);
                let record_names = condemned.into_iter().flat_map(|(_, names)| names).map(|n| n.to_string());
                index.set_source(names.into_iter().chain(record_names).collect());
                Ok(())
            })();
            match r {
                Err(Error::Backend { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < 8 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 << attempt.min(4)));
                }
                r => {
                    if r.is_ok() {
                        self.absorb.store(false, SeqCst);
                    }
                    return r;
                }
            }
        }
    }

    /// The index files the blob table asks for by name (`want`), fetched as the listed `objects`
    /// they are; a name that was not listed is an error.
    fn fetch_named(
        &self,
        objects: &[ObjectName],
        want: &[&str],
        each: &mut dyn FnMut(IndexFile) -> Result<()>,
    ) -> Result<()> {
        let by_name: std::collections::HashMap<&str, &ObjectName> = objects.iter().map(|o| (o.as_str(), o)).collect();
        let want = want
            .iter()
            .map(|w| by_name.get(w).copied().ok_or_else(|| Error::Other(format!("index file {w} was not listed"))))
            .collect::<Result<Vec<&ObjectName>>>()?;
        self.fetch_index_files(&want, each)
    }

    /// Calls `each` with the index files `names`: cached copies, then the others read from the
    /// repository (and cached), a few at a time so memory holds a few files, not the index.
    fn fetch_index_files(&self, names: &[&ObjectName], each: &mut dyn FnMut(IndexFile) -> Result<()>) -> Result<()> {
        let mut missing = Vec::new();
        for n in names {
            match &self.cache {
                Some(c) => match c.index_file(n.as_str())? {
                    Some(f) => each(f)?,
                    None => missing.push(*n),
                },
                None => missing.push(*n),
            }
        }
        let batch = 2 * self.backend.connections().clamp(1, 8);
        for chunk in missing.chunks(batch) {
            for (name, f) in chunk.iter().zip(self.read_index_files(chunk)?) {
                if let Some(c) = &self.cache {
                    c.add_index(name.as_str(), &f)?;
                }
                each(f)?;
            }
        }
        Ok(())
    }

    /// Notes that a backup of the set `key` looked up every blob it reused from its parent (see
    /// [`Index::reuse_needs_check`]), so the next ones need not.
    pub fn reuse_checked(&self, key: &str) -> Result<()> {
        // About the table as it was opened: it needs none of the files a lazy load left out.
        self.index.read().reuse_checked(key)
    }

    /// Reloads the index if index files or condemned records came or went since it was loaded. A
    /// writer calls it after taking its backup lease (format-spec, "Prune").
    pub fn refresh_index(&self) -> Result<()> {
        self.refresh(false)
    }

    /// Like [`Repository::refresh_index`] for a run that may look no blob up (an unchanged backup
    /// reuses its parent's blobs): index files the cache's blob table does not cover yet (other
    /// hosts' new ones) are read only when the first lookup comes, so such a run does not pay for
    /// what others wrote.
    pub fn refresh_index_lazily(&self) -> Result<()> {
        self.refresh(true)
    }

    fn refresh(&self, lazy: bool) -> Result<()> {
        if !self.index_loaded.load(std::sync::atomic::Ordering::SeqCst) {
            return self.reload(lazy);
        }
        let mut now: Vec<String> = self.index_names()?.iter().map(ObjectName::to_string).collect();
        now.extend(
            self.backend
                .list(Kind::Condemned)
                .map_err(Error::backend_err("list", "condemned"))?
                .into_iter()
                .map(|x| x.0.to_string()),
        );
        let mut was = self.index.read().source().to_vec();
        was.sort();
        now.sort();
        if was == now {
            return Ok(());
        }
        self.reload(lazy)
    }

    /// Reads and decodes index files, checking each one's name against its content.
    pub fn read_index_files<N: std::borrow::Borrow<ObjectName> + Sync>(&self, names: &[N]) -> Result<Vec<IndexFile>> {
        use rayon::prelude::*;
        names.par_iter().map(|name| self.read_index_file(name.borrow())).collect()
    }

    /// Reads and decodes one index file, checking its name against its content.
    pub fn read_index_file(&self, name: &ObjectName) -> Result<IndexFile> {
        let bytes = self.backend.read(name).map_err(Error::backend_err("read", name))?;
        if name.kind() != Kind::Index || IndexId::of_bytes(&bytes).to_hex() != name.as_str() {
            return Err(Error::corrupt("index", name, "content does not match its name; run `clawback repair index`"));
        }
        IndexFile::decode(&self.keys, name.as_str(), &bytes)
    }

    /// The names of the index files in the repository, sorted.
    /// Foreign names are kept: reading one fails as damage, and `repair index` removes them.
    pub fn index_names(&self) -> Result<Vec<ObjectName>> {
        let mut names: Vec<ObjectName> = self
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
        Ok(self.backend.list_of::<PackId>().map_err(Error::backend_err("list", "data"))?.ids)
    }

    /// Of `indexed` packs missing from a listing of `data/`, those the store serves when asked by
    /// name, with their sizes. A store can lose the folder entry above objects it still holds
    /// (SeaweedFS, when a folder it took for empty is removed as an object lands in it): such a
    /// pack is readable, so it is not missing, only left out of listings.
    pub fn unlisted_packs(&self, indexed: impl IntoIterator<Item = PackId>) -> Result<Vec<(PackId, u64)>> {
        let mut out = Vec::new();
        for id in indexed {
            let name = ObjectName::of(&id);
            match self.backend.size(&name) {
                Ok(size) => out.push((id, size)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::backend_err("read the size of", &name)(e)),
            }
        }
        Ok(out)
    }

    /// What the repository holds, in bytes: config, keys, packs, index and snapshot files as the
    /// backend lists them (what `status` reports and the web console plots over time).
    pub fn stored_bytes(&self) -> Result<u64> {
        let mut bytes = 0u64;
        for k in [Kind::Config, Kind::Key, Kind::Pack, Kind::Index, Kind::Snapshot] {
            let list = self.backend.list(k).map_err(Error::backend_err("list", k.dir()))?;
            bytes += list.iter().map(|(_, n)| n).sum::<u64>();
        }
        Ok(bytes)
    }

    /// Reads a pack's header alone (two range reads from its tail): its blobs' places.
    pub fn read_pack_header(&self, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
        let name = ObjectName::of(id);
        if size < 4 {
            return Err(Error::corrupt("pack", &name, "too short"));
        }
        let tail = self.backend.read_range(&name, size - 4, 4).map_err(Error::backend_err("read pack", &name))?;
        let tail: [u8; 4] = tail.as_slice().try_into().map_err(|_| Error::corrupt("pack", &name, "short read"))?;
        let (start, len) =
            pack::header_range(size, &tail).map_err(|_| Error::corrupt("pack", &name, "bad header length"))?;
        let sealed = self.backend.read_range(&name, start, len).map_err(Error::backend_err("read pack", &name))?;
        pack::decode_header(&self.keys, id, &sealed, start)
    }

    /// The one object of `kind` whose name starts with the hex `prefix` (any case).
    pub fn find_object(&self, kind: Kind, prefix: &str) -> Result<ObjectName> {
        let prefix = prefix.to_ascii_lowercase();
        let names: Vec<ObjectName> = self
            .backend
            .list(kind)
            .map_err(Error::backend_err("list", kind.dir()))?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        match unique_by_prefix(names, &prefix, |n| n.to_string()) {
            Ok(name) => Ok(name),
            Err(0) => Err(Error::Missing { what: "object", id: prefix }),
            Err(_) => Err(Error::Usage(format!("{prefix} is ambiguous; give more hex digits"))),
        }
    }

    /// Stores a finished pack; succeeds if an identical pack is already there.
    pub fn save_pack(&self, p: &FinishedPack) -> Result<()> {
        let name = ObjectName::of(&p.id);
        match self.backend.write(&name, &p.bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map_err(Error::backend_err("write pack", &name)),
        }
    }

    /// Stores an index file and adds it to the cache and the in-memory index.
    pub fn save_index(&self, f: &IndexFile) -> Result<IndexId> {
        let plain = f.plain();
        let bytes = IndexFile::seal(&self.keys, &plain);
        let id = IndexId::of_bytes(&bytes);
        let name = ObjectName::of(&id);
        match self.backend.write(&name, &bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            r => r.map_err(Error::backend_err("write index", &name))?,
        }
        drop(bytes);
        if let Some(c) = &self.cache {
            c.add_index_plain(name.as_str(), f, &plain)?;
            drop(plain);
            // Best effort, like the cache: a table that misses it reads it at its next load.
            if BlobTable::add_written(&blobtable::table_dir(c.dir()), name.as_str(), f).is_ok() {
                self.written.lock().push(name);
            }
        }
        self.index.write().add_file(f);
        Ok(id)
    }
    /// Reads and verifies one blob.
    pub fn read_blob(&self, ty: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        // Found where the index knows it now, else after taking in what a lazy load left out;
        // the pack is named from the same index the location came from.
        let find = |i: &Index| i.get(id).map(|l| (l, i.pack_id(l.pack)));
        let found = find(&self.index.read());
        let (loc, pack) = match found {
            Some(x) => x,
            None => find(&self.index()).ok_or_else(|| Error::Missing { what: "blob", id: id.to_hex() })?,
        };
        if loc.ty != ty {
            return Err(Error::corrupt("blob", id, "indexed with another type"));
        }
        let pack = ObjectName::of(&pack);
        let stored = self
            .backend
            .read_range(&pack, loc.offset as u64, loc.length as u64)
            .map_err(|e| Error::Backend { op: "read pack", name: pack.to_string(), source: e })?;
        self.decode_blob(ty, id, &stored, loc.raw_length as usize)
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
pub(super) fn unique_by_prefix<T>(
    items: Vec<T>,
    prefix: &str,
    name: impl Fn(&T) -> String,
) -> std::result::Result<T, usize> {
    let mut m: Vec<T> = items.into_iter().filter(|x| name(x).starts_with(prefix)).collect();
    match m.len() {
        1 => Ok(m.pop().expect("one match")),
        n => Err(n),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    pub(super) fn repo(dir: &std::path::Path) -> Repository {
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.join("repo")));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(be.clone(), &Secret(b"pw".to_vec()), &opts).unwrap();
        Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
    }
    /// A first open from this machine is known before the key is derived; the open ends it.
    #[test]
    fn a_first_open_here_is_known_until_the_repository_is_opened() {
        let d = tempfile::tempdir().unwrap();
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("repo")));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(be.clone(), &Secret(b"pw".to_vec()), &opts).unwrap();
        let cache = CacheOptions { dir: Some(d.path().join("cache")), disabled: false };
        assert!(first_open_here(&cache, be.as_ref()));
        Repository::open_unloaded(be.clone(), &Secret(b"pw".to_vec()), &cache).unwrap();
        assert!(!first_open_here(&cache, be.as_ref()), "opened once");
        let other: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("other")));
        assert!(first_open_here(&cache, other.as_ref()), "another repository");
        assert!(!first_open_here(&CacheOptions { dir: None, disabled: true }, be.as_ref()), "no cache remembers");
    }

    #[test]
    fn index_files_and_pack_headers_are_read_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path());
        let mut w = crate::format::pack::PackWriter::new(BlobType::Data, 0);
        let id = r.keys().blob_id(b"hello");
        w.add(id, &crate::format::blob::encode(r.keys(), BlobType::Data, &id, b"hello", 0), 5);
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
        let ix = ObjectName::of(&r.save_index(&f).unwrap());
        assert_eq!(r.index_names().unwrap(), vec![ix.clone()]);
        assert_eq!(r.read_index_files(std::slice::from_ref(&ix)).unwrap().len(), 1);
        // An index file under another name is refused.
        let bytes = r.backend().read(&ix).unwrap();
        let wrong = ObjectName::of(&IndexId([0; 32]));
        r.backend().write(&wrong, &bytes).unwrap();
        let e = r.read_index_file(&wrong).unwrap_err().to_string();
        assert!(e.contains("content does not match its name; run `clawback repair index`"), "{e}");
    }

    fn config_json(id: &str) -> Vec<u8> {
        let c = RepoConfig {
            version: 1,
            id: id.into(),
            chunker: ChunkParams::default(),
            pack_size: 1 << 24,
            compression: 3,
            append_only: None,
            object_lock: None,
        };
        serde_json::to_vec(&c).unwrap()
    }

    #[test]
    fn config_ids_are_64_lowercase_hex_digits_and_keys_appear_once() {
        assert!(RepoConfig::from_json(&config_json(&"ab".repeat(32))).is_ok());
        for bad in ["AB".repeat(32), "ab".repeat(31), "xy".repeat(32)] {
            let e = RepoConfig::from_json(&config_json(&bad)).unwrap_err().to_string();
            assert!(e.contains("bad repository id"), "{bad}: {e}");
        }
        let mut twice = config_json(&"ab".repeat(32));
        twice.splice(1..1, br#""later":1,"later":1,"#.iter().copied());
        assert!(RepoConfig::from_json(&twice).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn a_key_file_not_named_by_its_hash_is_never_used() {
        let tmp = tempfile::tempdir().unwrap();
        let be: Arc<dyn Backend> = Arc::new(crate::backend::local::LocalBackend::new(tmp.path()));
        let fast = KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 };
        let pw = Secret(b"pw".to_vec());
        Repository::init(be.clone(), &pw, &InitOptions { kdf: fast, ..Default::default() }).unwrap();
        let (name, _) = be.list(Kind::Key).unwrap().remove(0);
        let good = be.read(&name).unwrap();
        let (master, opened) = Repository::unlock(be.as_ref(), &pw).unwrap();
        assert_eq!(ObjectName::of(&opened), name);

        // The same key file with its host changed still unwraps; under its old name it is refused,
        // and the error names it rather than the passphrase.
        let changed = String::from_utf8(good.clone()).unwrap().replace("\"hostname\":", "\"hostname\": \"x\", \"h\":");
        assert!(KeyFile::parse(changed.as_bytes()).unwrap().open(b"pw").unwrap().is_some());
        be.delete(&name).unwrap();
        be.write(&name, changed.as_bytes()).unwrap();
        let e = Repository::unlock(be.as_ref(), &pw).unwrap_err();
        assert!(matches!(&e, Error::Corrupt { what: "key file", id, .. } if id == name.as_str()), "{e}");
        assert!(e.to_string().contains("does not match its name"), "{e}");
        assert!(matches!(Repository::unlock(be.as_ref(), &Secret(b"other".to_vec())), Err(Error::WrongPassword)));
        let no_cache = CacheOptions { dir: None, disabled: true };
        assert!(matches!(Repository::open(be.clone(), &pw, &no_cache), Err(Error::Corrupt { .. })));

        // Another, intact key file for the same passphrase opens the repository.
        let kf = KeyFile::create(&master, b"pw", fast, "h", "u").unwrap();
        let bytes = serde_json::to_vec_pretty(&kf).unwrap();
        let other = KeyId::of_bytes(&bytes);
        be.write(&ObjectName::of(&other), &bytes).unwrap();
        assert_eq!(Repository::unlock(be.as_ref(), &pw).unwrap().1, other);
        assert!(Repository::open(be.clone(), &pw, &no_cache).is_ok());
    }
}
