//! The engine's side: it restores the vector snapshot, and each negative vector is given to the
//! engine's own reader of that object (through the repository where the check lives there), whose
//! error is sorted into the manifest's outcome kinds. The only module of this test that uses the
//! engine besides `drift`.

use crate::{hex32, root, s, vectors};
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::Backend;
use clawback_engine::commands::restore::{restore, RestoreOptions};
use clawback_engine::format::blob::BlobType;
use clawback_engine::format::crypto::{KeyFile, Keys, MasterKey};
use clawback_engine::format::dict::Dict;
use clawback_engine::format::id::{BlobId, PackId, TreeId};
use clawback_engine::format::pack;
use clawback_engine::format::tree::Tree;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, Repository, Secret};
use clawback_engine::Error;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &p);
        } else {
            std::fs::copy(e.path(), &p).unwrap();
        }
    }
}

fn open(dir: &Path, v: &Value) -> clawback_engine::Result<Repository> {
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir));
    let no_cache = CacheOptions { dir: None, disabled: true };
    Repository::open(be, &Secret(s(v, "passphrase").as_bytes().to_vec()), &no_cache)
}

#[test]
fn the_engine_restores_the_vector_snapshot_to_the_source_files() {
    let v = vectors();
    // Work on a copy so that nothing is ever written into the committed vectors.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("repo");
    copy_dir(&root().join("repo"), &copy);
    let repo = open(&copy, &v).unwrap();
    let (id, snap) = repo.find_snapshot("latest", |_| true).unwrap();
    assert_eq!(id.to_hex(), s(&v, "snapshot_id"));
    assert_eq!(serde_json::to_value(&snap).unwrap(), v["snapshot"]);
    let target = tmp.path().join("out");
    let opts = RestoreOptions { target: target.clone(), verify: true, ..Default::default() };
    let r = restore(&repo, &snap, &opts, &Progress::default()).unwrap();
    assert!(r.errors.is_empty());
    let restored = target.join(snap.paths[0].trim_start_matches('/'));
    let src = root().join(s(&v, "source_dir"));
    for f in v["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        assert_eq!(std::fs::read(restored.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
    for (l, t) in v["symlinks"].as_object().unwrap() {
        assert_eq!(std::fs::read_link(restored.join(l)).unwrap(), Path::new(t.as_str().unwrap()));
    }
}

/// The outcome kind of an engine error, by what its message says (an error this table does not
/// know fails the test, so that a new message is sorted here rather than miscounted).
pub fn classify(e: &Error) -> &'static str {
    let m = e.to_string();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["does not match its name"]) {
        "name"
    } else if has(&["authentication failed"]) {
        "authentication"
    } else if has(&["unsupported version", "unsupported repository version", "unsupported version or KDF"]) {
        "version"
    } else if has(&["unsafe path"]) {
        "unsafe-name"
    } else if has(&["not sorted or duplicated"]) {
        "order"
    } else if has(&["inconsistent kind"]) {
        "kind-mismatch"
    } else if has(&["not contiguous", "do not fill the pack"]) {
        "layout"
    } else if has(&["content does not match its id"]) {
        "id"
    } else if has(&["which the repository does not hold"]) {
        "dictionary"
    } else if has(&["Argon2 parameters", "invalid chunk sizes", "bad repository id"]) {
        "range"
    } else if has(&[
        "larger than the 2 GiB",
        "header length",
        "too short",
        "exceeds the limit",
        "longer than allowed",
        "differs from the index",
        "differs from the declared length",
        "wrong length",
    ]) {
        "length"
    } else if has(&[
        // postcard
        "end of buffer",
        "varint",
        "Option discriminant",
        "variant index",
        "Serde Deserialization Error",
        "bytes after the encoded value",
        "not in canonical form",
        // the payload envelope
        "unknown compression flag",
        "truncated compressed payload",
        "zstd:",
        "not exactly one zstd frame",
        "names no dictionary",
        "only blobs may be",
        "not a zstd dictionary",
        "dictionary ID 0",
        // serde_json
        "expected value",
        "missing field",
        "duplicate field",
        "invalid type",
        "twice in one object",
        "is not an RFC 3339 time",
        // base64
        "Invalid",
    ]) {
        "encoding"
    } else {
        panic!("engine error not sorted into a kind: {m}")
    }
}

/// A copy of the vector repository into which negative vectors are put one at a time (index files,
/// snapshots and the config are checked where the repository reads them).
pub struct Scratch {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        copy_dir(&root().join("repo"), &dir);
        Scratch { _tmp: tmp, dir }
    }

    /// Runs `f` on the repository with `bytes` at `rel`, then puts back what was there.
    fn with<T>(&self, rel: &str, bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
        let path = self.dir.join(rel);
        let before = std::fs::read(&path).ok();
        std::fs::write(&path, bytes).unwrap();
        let r = f(&self.dir);
        match before {
            Some(b) => std::fs::write(&path, b).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        r
    }
}

/// Gives one negative vector to the engine: `None` when it accepts the object, else the kind.
pub fn outcome(vector: &Value, bytes: &[u8], v: &Value, scratch: &Scratch) -> Option<&'static str> {
    let keys = Keys::derive(&MasterKey(hex32(s(v, "master_key"))));
    let name = || vector["name"].as_str().unwrap().to_string();
    let r: clawback_engine::Result<()> = match s(vector, "object") {
        "pack" => pack::parse(&keys, &PackId::from_hex(&name()).unwrap(), bytes).map(drop),
        "blob" => {
            let ty = BlobType::from_u8(vector["type"].as_u64().unwrap() as u8).unwrap();
            let id = BlobId(hex32(s(vector, "id")));
            // Through the repository, which finds the dictionary a blob names in `dicts/`.
            let raw_length = vector["raw_length"].as_u64().unwrap() as usize;
            open(&scratch.dir, v).and_then(|repo| repo.decode_blob(ty, &id, bytes, raw_length)).map(drop)
        }
        "tree" => Tree::decode(&TreeId::default(), bytes).map(drop),
        "dict" => Dict::open(&keys, &name(), bytes).map(drop),
        // A key file stored under a name, in place of the good one: the repository opens it.
        "key" if vector.get("name").is_some() => {
            scratch.with(&format!("keys/{}", name()), bytes, |dir| open(dir, v).map(drop))
        }
        "key" => match KeyFile::parse(bytes).and_then(|kf| kf.open(s(v, "passphrase").as_bytes())) {
            Ok(Some(_)) => Ok(()),
            // The engine cannot tell a tampered key file from a wrong passphrase: both fail
            // authentication, and it tries the next key file.
            Ok(None) => return Some("authentication"),
            Err(e) => Err(e),
        },
        object => {
            let rel = match object {
                "index" => format!("index/{}", name()),
                "snapshot" => format!("snapshots/{}", name()),
                "config" => "config".to_string(),
                o => panic!("object {o}"),
            };
            scratch.with(&rel, bytes, |dir| open(dir, v).and_then(|repo| repo.snapshots()).map(drop))
        }
    };
    r.err().map(|e| classify(&e))
}
