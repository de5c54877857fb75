//! Checks the code against the committed format vectors (format-spec/vectors): re-derives the keys
//! from the known passphrase, decrypts objects by hand as the spec describes them, and restores
//! the vector snapshot, comparing it with the source files.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind};
use clawback_engine::commands::restore::{restore, RestoreOptions};
use clawback_engine::format::blob::BlobType;
use clawback_engine::format::crypto::{derive_wrapping_key, KeyFile, Subkeys};
use clawback_engine::format::id::{IndexId, KeyId, PackId, SnapshotId};
use clawback_engine::format::index::IndexFile;
use clawback_engine::format::pack;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, Repository, Secret};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn vectors() -> (PathBuf, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors");
    let v = serde_json::from_slice(&std::fs::read(root.join("vectors.json")).unwrap()).unwrap();
    (root, v)
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("vectors.json lacks {k}"))
}

/// Opens a sealed object by hand: nonce(12) ‖ ciphertext ‖ tag(16), AES-256-GCM-SIV.
fn open_by_hand(data_key: &[u8], aad: &[u8], sealed: &[u8]) -> Vec<u8> {
    let c = Aes256GcmSiv::new_from_slice(data_key).unwrap();
    c.decrypt(Nonce::from_slice(&sealed[..12]), Payload { msg: &sealed[12..], aad }).expect("decrypts as the spec says")
}

#[test]
fn keys_rederive_from_the_passphrase() {
    let (root, v) = vectors();
    let kname = s(&v, "key_file");
    let bytes = std::fs::read(root.join("repo/keys").join(kname)).unwrap();
    assert_eq!(KeyId::of_bytes(&bytes).to_hex(), kname, "key file named by its BLAKE3");
    let kf = KeyFile::parse(&bytes).unwrap();
    let pw = s(&v, "passphrase").as_bytes();
    use base64::Engine;
    let salt = base64::engine::general_purpose::STANDARD.decode(&kf.salt).unwrap();
    assert_eq!(hex::encode(derive_wrapping_key(pw, &salt, &kf.params).unwrap()), s(&v, "wrapping_key"));
    let master = kf.open(pw).unwrap().expect("passphrase opens the key");
    assert_eq!(hex::encode(master.0), s(&v, "master_key"));
    assert!(kf.open(b"wrong").unwrap().is_none());
    let sk = Subkeys::derive(&master);
    assert_eq!(hex::encode(sk.chunk_id_key), s(&v, "chunk_id_key"));
    assert_eq!(hex::encode(sk.data_key), s(&v, "data_key"));
    assert_eq!(sk.chunker_seed.to_string(), s(&v, "chunker_seed"));
    // Blob ids are keyed BLAKE3 of the plaintext.
    let hello = std::fs::read(root.join("source/hello.txt")).unwrap();
    assert_eq!(blake3::keyed_hash(&sk.chunk_id_key, &hello).to_hex().as_str(), s(&v, "blob_id_of_hello_txt"));
}

#[test]
fn objects_decode_by_hand_as_specified() {
    let (root, v) = vectors();
    let data_key = hex::decode(s(&v, "data_key")).unwrap();
    let repo = root.join("repo");
    // config: flag byte then JSON.
    let cfg = open_by_hand(&data_key, b"clawback/v1/config", &std::fs::read(repo.join("config")).unwrap());
    assert_eq!(cfg[0], 0, "config stored uncompressed");
    let cfg: serde_json::Value = serde_json::from_slice(&cfg[1..]).unwrap();
    assert_eq!(cfg["version"], 1);
    assert_eq!(cfg["chunker"]["avg"], 16384);

    let be = LocalBackend::new(&repo);
    let mut blobs_seen = 0;
    for (name, size) in be.list(Kind::Pack).unwrap() {
        let bytes = be.read(Kind::Pack, &name).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(PackId::of_bytes(&bytes).to_hex(), name, "pack named by BLAKE3 of its bytes");
        // Trailer: u32 LE header length; header: sealed postcard.
        let hlen = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()) as usize;
        let hstart = bytes.len() - 4 - hlen;
        let hdr = open_by_hand(&data_key, b"clawback/v1/pack-header", &bytes[hstart..bytes.len() - 4]);
        assert!(hdr[0] == 0 || hdr[0] == 1);
        // Every blob decrypts by hand with AAD "clawback/v1/blob" ‖ type ‖ id.
        let entries = pack::parse(
            &clawback_engine::format::crypto::Keys::derive(&clawback_engine::format::crypto::MasterKey(
                hex::decode(s(&v, "master_key")).unwrap().try_into().unwrap(),
            )),
            &PackId::from_hex(&name).unwrap(),
            &bytes,
        )
        .unwrap();
        for e in entries {
            let mut aad = b"clawback/v1/blob".to_vec();
            aad.push(e.ty as u8);
            aad.extend_from_slice(&e.id.0);
            let payload = open_by_hand(&data_key, &aad, &bytes[e.offset as usize..(e.offset + e.length) as usize]);
            let plain = match payload[0] {
                0 => payload[1..].to_vec(),
                1 => {
                    let n = u64::from_le_bytes(payload[1..9].try_into().unwrap()) as usize;
                    zstd::bulk::decompress(&payload[9..], n).unwrap()
                }
                f => panic!("flag {f}"),
            };
            assert_eq!(plain.len(), e.raw_length as usize);
            let idk: [u8; 32] = hex::decode(s(&v, "chunk_id_key")).unwrap().try_into().unwrap();
            assert_eq!(blake3::keyed_hash(&idk, &plain).as_bytes(), &e.id.0);
            if e.ty == BlobType::Tree {
                assert_eq!(plain[0], 1, "tree version byte first");
            }
            blobs_seen += 1;
        }
        assert_eq!(hstart as u64, bytes[..hstart].len() as u64);
    }
    assert!(blobs_seen >= 8, "vector repository has data and tree blobs ({blobs_seen})");
    for (name, _) in be.list(Kind::Index).unwrap() {
        let bytes = be.read(Kind::Index, &name).unwrap();
        assert_eq!(IndexId::of_bytes(&bytes).to_hex(), name);
        open_by_hand(&data_key, b"clawback/v1/index", &bytes);
    }
    let snap = s(&v, "snapshot_id");
    let sb = std::fs::read(repo.join("snapshots").join(snap)).unwrap();
    assert_eq!(SnapshotId::of_bytes(&sb).to_hex(), snap);
    let p = open_by_hand(&data_key, b"clawback/v1/snapshot", &sb);
    let json: serde_json::Value = serde_json::from_slice(&match p[0] {
        0 => p[1..].to_vec(),
        _ => zstd::bulk::decompress(&p[9..], u64::from_le_bytes(p[1..9].try_into().unwrap()) as usize).unwrap(),
    })
    .unwrap();
    assert_eq!(json["hostname"], "vectors");
    assert_eq!(json["time"], "2026-01-01T00:00:00.000000000Z");
}

#[test]
fn vector_snapshot_restores_to_the_source_files() {
    let (root, v) = vectors();
    // Work on a copy so nothing is ever written into the committed vectors.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("repo");
    copy_dir(&root.join("repo"), &copy);
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&copy));
    let repo = Repository::open(
        be,
        &Secret(s(&v, "passphrase").as_bytes().to_vec()),
        &CacheOptions { dir: Some(tmp.path().join("cache")), disabled: false },
    )
    .unwrap();
    let (id, snap) = repo.find_snapshot("latest", |_| true).unwrap();
    assert_eq!(id.to_hex(), s(&v, "snapshot_id"));
    let idx = IndexFile::decode(
        repo.keys(),
        "x",
        &repo.backend().read(Kind::Index, &repo.backend().list(Kind::Index).unwrap()[0].0).unwrap(),
    )
    .unwrap();
    assert!(!idx.packs.is_empty());
    let target = tmp.path().join("out");
    let r = restore(
        &repo,
        &snap,
        &RestoreOptions { target: target.clone(), verify: true, ..Default::default() },
        &Progress::default(),
    )
    .unwrap();
    assert!(r.errors.is_empty());
    let src = Path::new(s(&v, "source_path"));
    let restored = target.join(src.strip_prefix("/").unwrap());
    for f in v["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        assert_eq!(
            std::fs::read(restored.join(f)).unwrap(),
            std::fs::read(root.join("source").join(f)).unwrap(),
            "{f}"
        );
    }
    for (l, t) in v["symlinks"].as_object().unwrap() {
        assert_eq!(std::fs::read_link(restored.join(l)).unwrap(), Path::new(t.as_str().unwrap()));
    }
}

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
