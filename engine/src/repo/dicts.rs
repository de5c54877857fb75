//! The repository's compression dictionaries (`dicts/`, format-spec §16): read when a blob first
//! names one (listed again when a blob names one not seen yet), stored by the writer that trains
//! one, and chosen for a writing session. Each one read or stored is kept, sealed as in the
//! repository, in the local cache's folder, so a backup finds it without a request. Repositories
//! of version 1 have none.

use super::Repository;
use crate::backend::{Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::blob::{self, BlobType, DictSource};
use crate::format::dict::Dict;
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
        let (id, sealed) = Dict::seal(&self.keys, bytes);
        let name = id.to_hex();
        let d = Arc::new(Dict::from_bytes(name.clone(), bytes.to_vec()).map_err(Error::Other)?);
        if let Some(same) = self.dictionaries()?.into_iter().find(|x| x.zstd_id == d.zstd_id) {
            return Ok(same);
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
const SAMPLE_PIECE: usize = 8 << 10;

/// The dictionary a writing session compresses data blobs with: the first one (in name order) the
/// local cache holds; else the repository's first one; else one trained on the first
/// compressible data blobs of this session and stored before any blob uses it. With a local
/// cache, `dicts/` is listed only once the sample is complete (a small backup makes no request
/// for dictionaries); without one, at the first data blob.
#[derive(Default)]
pub struct SessionDict {
    start: std::sync::OnceLock<()>,
    ready: parking_lot::RwLock<Option<Arc<Dict>>>,
    /// `Some` while sampling; taken by the thread that trains.
    sampling: Mutex<Option<Samples>>,
}

#[derive(Default)]
struct Samples {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
}

impl SessionDict {
    /// The dictionary to compress the next data blob with, if any. `dry`: never train (nothing
    /// may be written).
    pub fn current(&self, repo: &Repository, dry: bool) -> Option<Arc<Dict>> {
        self.start.get_or_init(|| {
            if !repo.uses_dictionaries() {
                return;
            }
            if let Some(d) = repo.cached_dictionaries().into_iter().next() {
                *self.ready.write() = Some(d);
                return;
            }
            if repo.cache().is_some() {
                if !dry {
                    *self.sampling.lock() = Some(Samples::default());
                }
                return;
            }
            match repo.dictionaries() {
                Ok(list) if !list.is_empty() => *self.ready.write() = list.into_iter().next(),
                // Listing failed: compress without one (the session fails on its own writes if
                // the repository is unreachable).
                Ok(_) if !dry => *self.sampling.lock() = Some(Samples::default()),
                _ => {}
            }
        });
        self.ready.read().clone()
    }

    /// Offers the plaintext of a data blob that compressed without a dictionary as a sample; the
    /// call that completes the sample trains the dictionary and stores it.
    pub fn offer(&self, repo: &Repository, plain: &[u8]) {
        let full = {
            let mut g = self.sampling.lock();
            let Some(s) = g.as_mut() else { return };
            let n = plain.len().min(SAMPLE_PIECE);
            s.bytes.extend_from_slice(&plain[..n]);
            s.sizes.push(n);
            if s.bytes.len() < SAMPLE_BUDGET {
                return;
            }
            g.take().expect("sampling")
        };
        let mut pieces = Vec::with_capacity(full.sizes.len());
        let mut at = 0;
        for n in &full.sizes {
            pieces.push(&full.bytes[at..at + n]);
            at += n;
        }
        // Another writer may have stored one since this session began: use it.
        if let Ok(Some(d)) = repo.dictionaries().map(|l| l.into_iter().next()) {
            *self.ready.write() = Some(d);
            return;
        }
        // A dictionary that cannot be trained or stored only costs compression: go on without.
        if let Some(bytes) = crate::format::dict::train(&pieces, crate::format::dict::TRAINED_SIZE) {
            if let Ok(d) = repo.save_dictionary(&bytes) {
                *self.ready.write() = Some(d);
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
