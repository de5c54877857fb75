//! The repository's compression dictionaries (`dicts/`, format-spec §16): read when a blob first
//! names one (listed again when a blob names one not seen yet), stored by the writer that trains
//! one, and chosen for a writing session. Each one read or stored is kept, sealed as in the
//! repository, in the local cache's folder, so a backup finds it without a request. Repositories
//! of version 1 have none.

use super::Repository;
use crate::backend::{Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::blob::{self, BlobType, DictSource};
use crate::format::dict::{Dict, Family, Samples};
use crate::format::id::BlobId;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The first repository version whose writers compress with dictionaries.
pub const DICT_VERSION: u32 = 2;

/// Dictionaries read so far, by object name.
#[derive(Default)]
pub struct Dicts {
    by_name: Mutex<BTreeMap<String, Arc<Dict>>>,
}

impl Dicts {
    fn with_id(&self, zstd_id: u32) -> Vec<Arc<Dict>> {
        self.by_name.lock().values().filter(|d| d.zstd_id == zstd_id).cloned().collect()
    }
}

impl Repository {
    /// The cache's folder of dictionaries, when there is a local cache.
    fn dict_cache(&self) -> Option<std::path::PathBuf> {
        self.cache.as_ref().map(|c| c.dir().join("dicts"))
    }

    /// Keeps a sealed dictionary in the local cache (best effort: the cache is rebuildable).
    fn cache_dictionary(&self, name: &str, sealed: &[u8]) {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let Some(dir) = self.dict_cache() else { return };
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir);
        let tmp = dir.join(format!(".tmp-{name}"));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, sealed));
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(name));
        }
    }

    /// The dictionaries the local cache holds, in name order (each checked as if read from the
    /// repository; one that does not open is ignored).
    pub fn cached_dictionaries(&self) -> Vec<Arc<Dict>> {
        let Some(dir) = self.dict_cache() else { return Vec::new() };
        let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut names: Vec<String> =
            rd.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| !n.starts_with('.')).collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if let Some(d) = self.dicts.by_name.lock().get(&name) {
                out.push(d.clone());
                continue;
            }
            let Ok(sealed) = std::fs::read(dir.join(&name)) else { continue };
            if let Ok(d) = Dict::open(&self.keys, &name, &sealed) {
                let d = Arc::new(d);
                self.dicts.by_name.lock().insert(name, d.clone());
                out.push(d);
            }
        }
        out
    }

    /// Every dictionary in `dicts/`, in name order, reading those not read before.
    pub fn dictionaries(&self) -> Result<Vec<Arc<Dict>>> {
        let listed = self.backend.list(Kind::Dict).map_err(Error::backend_err("list", "dicts"))?;
        let mut out = Vec::with_capacity(listed.len());
        for (object, _) in listed {
            let name = object.to_string();
            if let Some(d) = self.dicts.by_name.lock().get(&name) {
                out.push(d.clone());
                continue;
            }
            let sealed = self.backend.read(&object).map_err(Error::backend_err("read", &object))?;
            let d = Arc::new(Dict::open(&self.keys, &name, &sealed)?);
            self.cache_dictionary(&name, &sealed);
            self.dicts.by_name.lock().insert(name, d.clone());
            out.push(d);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Stores a trained dictionary (a zstd dictionary's bytes) as a new object, unless one with
    /// its zstd ID is there already (then that one is returned). Written before any blob uses it.
    pub fn save_dictionary(&self, bytes: &[u8]) -> Result<Arc<Dict>> {
        self.save_dictionary_among(bytes, &self.dictionaries()?)
    }

    /// [`Repository::save_dictionary`], with `dicts/` as the caller has just listed it.
    fn save_dictionary_among(&self, bytes: &[u8], listed: &[Arc<Dict>]) -> Result<Arc<Dict>> {
        let (id, sealed) = Dict::seal(&self.keys, bytes);
        let name = id.to_hex();
        let d = Arc::new(Dict::from_bytes(name.clone(), bytes.to_vec()).map_err(Error::Other)?);
        if let Some(same) = listed.iter().find(|x| x.zstd_id == d.zstd_id) {
            return Ok(same.clone());
        }
        let object = ObjectName::of(&id);
        self.backend.write(&object, &sealed).map_err(Error::backend_err("write", &object))?;
        self.cache_dictionary(&name, &sealed);
        self.dicts.by_name.lock().insert(name, d.clone());
        Ok(d)
    }

    /// Whether writers of this repository compress with dictionaries (version 2 and later).
    pub fn uses_dictionaries(&self) -> bool {
        self.config.version >= DICT_VERSION
    }

    /// Decrypts one blob read from a pack, with the dictionary it names, and checks it.
    pub fn decode_blob(&self, ty: BlobType, id: &BlobId, stored: &[u8], raw_len: usize) -> Result<Vec<u8>> {
        blob::decode_with(&self.keys, self, ty, id, stored, raw_len)
    }
}

impl DictSource for Repository {
    fn dicts_for(&self, zstd_id: u32) -> Result<Vec<Arc<Dict>>> {
        let known = self.dicts.with_id(zstd_id);
        if !known.is_empty() {
            return Ok(known);
        }
        self.cached_dictionaries();
        let known = self.dicts.with_id(zstd_id);
        if !known.is_empty() {
            return Ok(known);
        }
        // Not read yet (or stored since): list again.
        self.dictionaries()?;
        Ok(self.dicts.with_id(zstd_id))
    }
}

/// Plaintext a writing session samples before it trains a dictionary, in pieces of at most
/// [`SAMPLE_PIECE`] bytes, one per compressible data blob (measured with
/// `engine/examples/dict_gain.rs`: 2 MiB trains in about 0.2 s of CPU and gets nearly all of
/// what 8 MiB gets).
const SAMPLE_BUDGET: usize = 2 << 20;
pub const SAMPLE_PIECE: usize = 8 << 10;

/// The dictionaries a writing session compresses data blobs with, one per [`Family`]: for each
/// family the first dictionary (in name order) tagged with it, else the first untagged one (what
/// older writers trained), else the one tagged `Other`. They come from the local cache, else from
/// `dicts/`. A session that finds none either trains one per family before it writes (a backup,
/// on samples spread over what it backs up: [`SessionDict::wanted`], [`SessionDict::adopt`]) or
/// trains one untagged dictionary on the first compressible data blobs it writes; each is stored
/// before any blob uses it. With a local cache, `dicts/` is listed only when the cache holds none.
#[derive(Default)]
pub struct SessionDict {
    start: std::sync::OnceLock<()>,
    ready: parking_lot::RwLock<Chosen>,
    /// `Some` while sampling; taken by the thread that trains.
    sampling: Mutex<Option<Samples>>,
}

#[derive(Default, Clone)]
struct Chosen {
    by_family: [Option<Arc<Dict>>; Family::ALL.len()],
}

impl Chosen {
    /// The choice among `list` (in name order).
    fn of(list: &[Arc<Dict>]) -> Chosen {
        let untagged = list.iter().find(|d| d.family().is_none());
        let tagged = |f: Family| list.iter().find(|d| d.family() == Some(f));
        let fallback = untagged.or_else(|| tagged(Family::Other));
        Chosen { by_family: Family::ALL.map(|f| tagged(f).or(fallback).cloned()) }
    }

    fn any(&self) -> bool {
        self.by_family.iter().any(|d| d.is_some())
    }
}

impl SessionDict {
    /// The dictionary to compress the next data blob of `family` with, if any. `dry`: never train
    /// (nothing may be written).
    pub fn current(&self, repo: &Repository, dry: bool, family: Family) -> Option<Arc<Dict>> {
        self.start.get_or_init(|| {
            if !repo.uses_dictionaries() {
                return;
            }
            let cached = repo.cached_dictionaries();
            if !cached.is_empty() {
                *self.ready.write() = Chosen::of(&cached);
                return;
            }
            if repo.cache().is_some() {
                if !dry {
                    *self.sampling.lock() = Some(Samples::default());
                }
                return;
            }
            match repo.dictionaries() {
                Ok(list) if !list.is_empty() => *self.ready.write() = Chosen::of(&list),
                // Listing failed: compress without one (the session fails on its own writes if
                // the repository is unreachable).
                Ok(_) if !dry => *self.sampling.lock() = Some(Samples::default()),
                _ => {}
            }
        });
        self.ready.read().by_family[family as usize].clone()
    }

    /// Whether this session should train its own dictionaries, one per family, on samples of its
    /// own: the repository uses them and holds none (`dicts/` is listed when the local cache has
    /// none; a listing that fails counts as none). Once asked, the session no longer samples its
    /// first blobs for an untagged one.
    pub fn wanted(&self, repo: &Repository, dry: bool) -> bool {
        self.current(repo, dry, Family::Other);
        if dry || !repo.uses_dictionaries() || self.ready.read().any() {
            return false;
        }
        let found = repo.dictionaries().ok().filter(|l| !l.is_empty());
        // Either way, no untagged dictionary is trained on this session's first blobs.
        *self.sampling.lock() = None;
        match found {
            Some(list) => {
                *self.ready.write() = Chosen::of(&list);
                false
            }
            None => true,
        }
    }

    /// Stores dictionaries trained for families, each tagged with its family, unless `dicts/`
    /// holds one for the family already (another writer's: that one is used instead), and uses
    /// what `dicts/` holds from now on. Stored before any blob uses them. `dicts/` is listed once
    /// for all of them (it was listed twice per family: ten round trips before a first backup's
    /// first blob). While a session trains its own, it samples no blobs for an untagged one (see
    /// [`SessionDict::wanted`]).
    pub fn adopt(&self, repo: &Repository, trained: Vec<(Family, Vec<u8>)>) {
        let Ok(mut have) = repo.dictionaries() else { return };
        let mut new: Vec<Vec<u8>> = Vec::new();
        let mut ids: Vec<u32> = have.iter().map(|d| d.zstd_id).collect();
        for (family, mut bytes) in trained {
            if have.iter().any(|d| d.family() == Some(family)) {
                continue;
            }
            let mut salt: u16 = rand::random();
            // A tagged id that no dictionary of the repository has.
            let mut id = crate::format::dict::family_id(family, salt);
            while ids.contains(&id) {
                salt = salt.wrapping_add(1);
                id = crate::format::dict::family_id(family, salt);
            }
            ids.push(id);
            crate::format::dict::set_id(&mut bytes, id);
            new.push(bytes);
        }
        // All stored at once: one round trip to the store before the first blob, not one per
        // family (a first backup waits for them). A dictionary that cannot be stored only costs
        // compression: go on without.
        let stored: Vec<Arc<Dict>> = std::thread::scope(|s| {
            let listed = &have;
            let saving: Vec<_> =
                new.iter().map(|bytes| s.spawn(move || repo.save_dictionary_among(bytes, listed))).collect();
            saving.into_iter().filter_map(|h| h.join().ok()?.ok()).collect()
        });
        have.extend(stored);
        have.sort_by(|a, b| a.name.cmp(&b.name));
        if !have.is_empty() {
            *self.ready.write() = Chosen::of(&have);
        }
    }

    /// Offers the plaintext of a data blob that compressed without a dictionary as a sample; the
    /// call that completes the sample trains the dictionary and stores it.
    pub fn offer(&self, repo: &Repository, plain: &[u8]) {
        let full = {
            let mut g = self.sampling.lock();
            let Some(s) = g.as_mut() else { return };
            s.push(&plain[..plain.len().min(SAMPLE_PIECE)]);
            if s.len() < SAMPLE_BUDGET {
                return;
            }
            g.take().expect("sampling")
        };
        // Another writer may have stored one since this session began: use it.
        if let Ok(list) = repo.dictionaries() {
            if !list.is_empty() {
                *self.ready.write() = Chosen::of(&list);
                return;
            }
        }
        // A dictionary that cannot be trained or stored only costs compression: go on without.
        if let Some(bytes) = full.train(crate::format::dict::TRAINED_SIZE) {
            if let Ok(d) = repo.save_dictionary(&bytes) {
                *self.ready.write() = Chosen::of(&[d]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::backend::Backend;
    use crate::format::crypto::KdfParams;
    use crate::repo::writer::{Writer, WriterOptions};
    use crate::repo::{CacheOptions, InitOptions, Secret};

    fn repo(dir: &std::path::Path, version: u32) -> Repository {
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.join("repo")));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, version, ..Default::default() };
        Repository::init(be.clone(), &Secret(b"pw".to_vec()), &opts).unwrap();
        Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
    }

    /// Distinct, compressible 8 KiB chunks: enough for a session to train a dictionary.
    fn chunks(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut s = String::new();
                let mut k = i;
                while s.len() < 8192 {
                    k = k.wrapping_mul(2654435761) % 1_000_003;
                    s.push_str(&format!(
                        "{{\"turn\":{k},\"role\":\"user\",\"text\":\"line {} of note {i}\"}}\n",
                        k % 97
                    ));
                }
                s.into_bytes()
            })
            .collect()
    }

    fn store_all(r: &Repository, data: &[Vec<u8>]) -> Vec<BlobId> {
        let w = Writer::new(r, WriterOptions::default());
        let ids: Vec<BlobId> = data.iter().map(|c| r.keys().blob_id(c)).collect();
        for (c, id) in data.iter().zip(&ids) {
            w.store(BlobType::Data, *id, c, 3).unwrap();
        }
        w.finish().unwrap();
        ids
    }

    #[test]
    fn a_session_trains_stores_and_uses_one_dictionary_and_readers_find_it() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path(), DICT_VERSION);
        let data = chunks(400);
        let ids = store_all(&r, &data);
        let dicts = r.dictionaries().unwrap();
        assert_eq!(dicts.len(), 1, "one dictionary, trained once");
        // A second session uses it and trains no other.
        let more = chunks(420).split_off(400);
        store_all(&r, &more);
        assert_eq!(r.backend().list(Kind::Dict).unwrap().len(), 1);
        // A reader that never saw the dictionary finds it when a blob names it.
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("repo")));
        let fresh = Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap();
        let mut with_dict = 0;
        for (c, id) in data
            .iter()
            .chain(&more)
            .zip(ids.iter().chain(&more.iter().map(|c| r.keys().blob_id(c)).collect::<Vec<_>>()))
        {
            assert_eq!(&fresh.read_blob(BlobType::Data, id).unwrap(), c);
            let loc = fresh.index().get(id).unwrap();
            let pack = ObjectName::of(&fresh.index().pack_id(loc.pack));
            let stored = fresh.backend().read_range(&pack, loc.offset as u64, loc.length as u64).unwrap();
            if blob::decode(fresh.keys(), BlobType::Data, id, &stored, c.len()).is_err() {
                with_dict += 1;
            }
        }
        assert!(with_dict >= 150, "blobs after the sample use the dictionary: {with_dict}");
    }

    #[test]
    fn each_family_uses_its_tagged_dictionary_else_an_untagged_one_else_others() {
        use crate::format::dict::{family_id, set_id, train};
        let s = crate::format::dict::tests::samples();
        let refs: Vec<&[u8]> = s.iter().map(|v| v.as_slice()).collect();
        let base = train(&refs, 4096).unwrap();
        let mk = |name: &str, id: Option<u32>| {
            let mut b = base.clone();
            if let Some(id) = id {
                set_id(&mut b, id);
            }
            Arc::new(Dict::from_bytes(name.into(), b).unwrap())
        };
        let old = mk("a", None);
        let json = mk("b", Some(family_id(Family::Json, 1)));
        let json2 = mk("c", Some(family_id(Family::Json, 2)));
        let other = mk("d", Some(family_id(Family::Other, 3)));
        let name = |c: &Chosen, f: Family| c.by_family[f as usize].as_ref().map(|d| d.name.clone());
        let c = Chosen::of(&[old.clone(), json.clone(), json2.clone(), other.clone()]);
        assert_eq!(name(&c, Family::Json).as_deref(), Some("b"), "the first tagged, in name order");
        assert_eq!(name(&c, Family::Other).as_deref(), Some("d"));
        assert_eq!(name(&c, Family::Prose).as_deref(), Some("a"), "an older writer's untagged one");
        let c = Chosen::of(&[json.clone(), other.clone()]);
        assert_eq!(name(&c, Family::Code).as_deref(), Some("d"), "else the one for other content");
        let c = Chosen::of(&[json]);
        assert_eq!(name(&c, Family::Code), None);
        assert!(c.any() && !Chosen::of(&[]).any());
    }

    /// Counts the listings of `dicts/` and the dictionaries written, and how many writes were in
    /// flight at once: with `gather` set, a write waits (up to 2 s) for that many in flight.
    #[derive(Default)]
    struct Counting {
        lists: std::sync::atomic::AtomicU32,
        writes: std::sync::atomic::AtomicU32,
        in_flight: std::sync::atomic::AtomicU32,
        most_in_flight: std::sync::atomic::AtomicU32,
        gather: std::sync::atomic::AtomicU32,
    }

    impl Counting {
        fn counts(&self) -> (u32, u32) {
            use std::sync::atomic::Ordering::Relaxed;
            (self.lists.load(Relaxed), self.writes.load(Relaxed))
        }
    }

    impl crate::backend::watched::Hooks for Counting {
        fn before_write(&self, name: &ObjectName, _: &[u8]) {
            use std::sync::atomic::Ordering::SeqCst;
            if name.kind() == Kind::Dict {
                self.writes.fetch_add(1, SeqCst);
                let now = self.in_flight.fetch_add(1, SeqCst) + 1;
                self.most_in_flight.fetch_max(now, SeqCst);
                let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while self.in_flight.load(SeqCst) < self.gather.load(SeqCst) && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                self.most_in_flight.fetch_max(self.in_flight.load(SeqCst), SeqCst);
            }
        }
        fn after_write(&self, name: &ObjectName) {
            if name.kind() == Kind::Dict {
                self.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn on_list(&self, kind: Kind) {
            if kind == Kind::Dict {
                self.lists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// ... and written at the same time, each in a thread of its own: one round trip, not one per
    /// family.
    #[test]
    fn the_dictionaries_of_several_families_are_stored_after_one_listing() {
        let d = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("repo")));
        let be = Arc::new(crate::backend::watched::Watched { inner, hooks: Counting::default() });
        let dyn_be: Arc<dyn Backend> = be.clone();
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(dyn_be.clone(), &Secret(b"pw".to_vec()), &opts).unwrap();
        let r = Repository::open(dyn_be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap();
        let s = crate::format::dict::tests::samples();
        let refs: Vec<&[u8]> = s.iter().map(|v| v.as_slice()).collect();
        let trained = crate::format::dict::train(&refs, 4096).unwrap();
        let (lists, writes) = be.hooks.counts();
        let w = Writer::new(&r, WriterOptions::default());
        let three = [Family::Json, Family::Prose, Family::Code].map(|f| (f, trained.clone()));
        be.hooks.gather.store(3, std::sync::atomic::Ordering::SeqCst);
        w.adopt_dictionaries(three.to_vec());
        be.hooks.gather.store(0, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(be.hooks.counts(), (lists + 1, writes + 3), "one listing, then one write per family");
        assert_eq!(be.hooks.most_in_flight.load(std::sync::atomic::Ordering::SeqCst), 3, "written one after another");
        w.finish().unwrap();
        let families: Vec<_> = r.dictionaries().unwrap().iter().map(|d| d.family()).collect();
        assert_eq!(families.len(), 3);
        for f in [Family::Json, Family::Prose, Family::Code] {
            assert!(families.contains(&Some(f)), "{f:?}: {families:?}");
        }
        // A second session finds them: a family that has one gets no other.
        let (lists, writes) = be.hooks.counts();
        let w = Writer::new(&r, WriterOptions::default());
        w.adopt_dictionaries(vec![(Family::Json, trained.clone()), (Family::Other, trained)]);
        assert_eq!(be.hooks.counts(), (lists + 1, writes + 1), "only the family without one is stored");
        w.finish().unwrap();
    }

    #[test]
    fn a_version_1_repository_gets_no_dictionary() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path(), 1);
        let data = chunks(400);
        let ids = store_all(&r, &data);
        assert!(r.backend().list(Kind::Dict).unwrap().is_empty());
        for (c, id) in data.iter().zip(&ids) {
            assert_eq!(&r.read_blob(BlobType::Data, id).unwrap(), c);
        }
    }
}
