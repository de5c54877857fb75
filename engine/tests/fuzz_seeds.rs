//! The fuzzers' seed corpus (`fuzz/corpus/`): one valid object of each kind a fuzz target decodes,
//! built here and checked to decode, so the fuzzers start from inputs that reach deep into each
//! decoder. `CLAWBACK_WRITE_FUZZ_SEEDS=1 cargo test -p clawback-engine --test fuzz_seeds` rewrites
//! the committed seeds (when the formats change); otherwise they are built in a scratch folder.

use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::chunker::ChunkParams;
use clawback_engine::format::codec;
use clawback_engine::format::crypto::{KdfParams, KeyFile, Keys, MasterKey, AAD_BLOB};
use clawback_engine::format::id::{BlobId, DataId, IndexId, PackId, TreeId};
use clawback_engine::format::index::{IndexFile, IndexPack};
use clawback_engine::format::pack::{PackEntry, PackWriter};
use clawback_engine::format::snapshot::{Snapshot, Summary};
use clawback_engine::format::tree::{Node, NodeKind, Tree};
use clawback_engine::repo::RepoConfig;
use std::path::{Path, PathBuf};

/// The fuzz targets' fixed key (fuzz/fuzz_targets/common.rs).
fn keys() -> Keys {
    Keys::derive(&MasterKey([7; 32]))
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtime_ns: 1_773_000_000_000_000_000,
        ctime_ns: 1_773_000_000_000_000_000,
        dev: 2049,
        ino: 77,
        nlink: 1,
        size: 5,
        content: vec![DataId([3; 32])],
        subtree: if kind == NodeKind::Dir { Some(TreeId([4; 32])) } else { None },
        target: if kind == NodeKind::Symlink { b"../x".to_vec() } else { vec![] },
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        version: 1,
        time: "2026-03-09T08:00:00.000000000Z".into(),
        hostname: "host".into(),
        username: "user".into(),
        paths: vec!["/var/home/user/.openclaw".into()],
        tags: vec!["daily".into()],
        parent: None,
        tree: TreeId([1; 32]),
        summary: Summary { files_new: 3, total_files: 3, ..Summary::default() },
        program_version: "clawback 0.1.0".into(),
        errors: vec![],
        skipped: vec![],
        warnings: vec![],
        changed: vec![],
        openclaw: None,
        group: None,
        original: None,
    }
}

fn entry(i: u8, offset: u32) -> PackEntry {
    PackEntry { ty: BlobType::Data, id: BlobId([i; 32]), offset, length: 100, raw_length: 150 }
}

/// A gzip'd `openclaw backup` archive: root folder, manifest first, a payload file and folder.
fn archive() -> Vec<u8> {
    let manifest = serde_json::json!({
        "schemaVersion": 1, "createdAt": "2026-03-09T08:00:00.000Z", "archiveRoot": "oc-backup",
        "runtimeVersion": "2026.3.8", "platform": "linux",
        "paths": { "stateDir": "/s", "configPath": "/s/openclaw.json", "workspaceDirs": ["/s/workspace"] },
        "assets": [{ "kind": "state", "sourcePath": "/s", "archivePath": "oc-backup/payload/posix/s" }],
        "skipped": [],
    });
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut add = |name: &str, data: &[u8], ty: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(if ty == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_mtime(1_773_043_200);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("oc-backup/manifest.json", &serde_json::to_vec(&manifest).unwrap(), tar::EntryType::Regular);
    add("oc-backup/payload/posix/s/", b"", tar::EntryType::Directory);
    add("oc-backup/payload/posix/s/openclaw.json", b"{ agents: {} }\n", tar::EntryType::Regular);
    add("oc-backup/payload/posix/s/workspace/MEMORY.md", b"# Memory\n", tar::EntryType::Regular);
    b.into_inner().unwrap().finish().unwrap()
}

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

/// Builds the seed corpus and checks that the valid seeds decode (so the fuzzers start from inputs
/// that reach deep into each decoder). With CLAWBACK_WRITE_FUZZ_SEEDS=1 the seeds are written to
/// fuzz/corpus (run by hand when the formats change); otherwise into a scratch folder.
#[test]
fn seed_corpus_builds_and_its_valid_seeds_decode() {
    let scratch = tempfile::tempdir().unwrap();
    let dir: PathBuf = if std::env::var_os("CLAWBACK_WRITE_FUZZ_SEEDS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
    } else {
        scratch.path().to_path_buf()
    };
    write_seed_corpus(&dir);
    let k = keys();
    let read = |t: &str, n: &str| std::fs::read(dir.join(t).join(n)).unwrap();
    assert!(KeyFile::parse(&read("key_file", "valid.json")).is_ok());
    assert!(RepoConfig::from_json(&read("repo_config", "valid.json")).is_ok());
    for n in ["three-kinds", "empty"] {
        let bytes = read("tree", n);
        let id = k.tree_id(&bytes);
        assert!(Tree::decode(&id, &bytes).is_ok(), "tree seed {n}");
    }
    let idx: IndexFile = postcard::from_bytes(&read("index_file", "one-pack")).unwrap();
    assert_eq!(idx.packs.len(), 1);
    assert!(IndexFile::decode(&k, "seed", &read("sealed_envelope", "index")).is_ok());
    assert!(Snapshot::decode(&k, "seed", &read("sealed_envelope", "snapshot")).is_ok());
    let text = b"the agent remembered the user's birthday. ".repeat(40);
    for n in ["zstd", "raw"] {
        let seed = read("blob_payload", n);
        assert_eq!(codec::decode_payload(&seed[4..], text.len()).unwrap(), text, "payload seed {n}");
    }
}

fn write_seed_corpus(dir: &Path) {
    let dir = dir.to_path_buf();
    let k = keys();

    let kf = KeyFile::create(
        &MasterKey([7; 32]),
        b"fuzz passphrase",
        KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 },
        "h",
        "u",
    )
    .unwrap();
    put(&dir, "key_file", "valid.json", &serde_json::to_vec_pretty(&kf).unwrap());

    let cfg = RepoConfig {
        version: 1,
        id: "ab".repeat(32),
        chunker: ChunkParams::default(),
        pack_size: 16 << 20,
        compression: 3,
        append_only: None,
        object_lock: None,
    };
    put(&dir, "repo_config", "valid.json", &serde_json::to_vec(&cfg).unwrap());

    let tree =
        Tree::new(vec![node(b"a.txt", NodeKind::File), node(b"dir", NodeKind::Dir), node(b"link", NodeKind::Symlink)]);
    put(&dir, "tree", "three-kinds", &tree.encode());
    put(&dir, "tree", "empty", &Tree::new(vec![]).encode());

    // Pack header seeds: 2 bytes of blob-area length, then the header plaintext (postcard).
    let mut w = PackWriter::new(BlobType::Data, 0);
    for i in 0..3u8 {
        let plain = vec![i; 200 + i as usize];
        let id = k.blob_id(&plain);
        w.add(id, &blob::encode(&k, BlobType::Data, &id, &plain, 0), plain.len());
    }
    let p = w.finish(&k);
    let blobs_len: u32 = p.entries.iter().map(|e| e.length).sum();
    let header = postcard::to_allocvec(&(1u8, p.entries.clone())).unwrap();
    let mut seed = (blobs_len as u16).to_le_bytes().to_vec();
    seed.extend_from_slice(&header);
    put(&dir, "pack_header", "three-blobs", &seed);
    put(&dir, "sealed_envelope", "pack", &p.bytes);

    let idx = IndexFile {
        version: 1,
        supersedes: vec![IndexId([9; 32])],
        packs: vec![IndexPack { id: PackId([8; 32]), size: 400, blobs: vec![entry(1, 0), entry(2, 100)] }],
    };
    put(&dir, "index_file", "one-pack", &postcard::to_allocvec(&idx).unwrap());
    put(&dir, "sealed_envelope", "index", &idx.encode(&k));

    let snap = snapshot();
    put(&dir, "snapshot", "valid.json", &serde_json::to_vec(&snap).unwrap());
    put(&dir, "sealed_envelope", "snapshot", &snap.encode(&k));

    // Blob payload seeds: 4 bytes of the length the index claims, then the codec payload.
    let text = b"the agent remembered the user's birthday. ".repeat(40);
    for (name, level) in [("zstd", 3), ("raw", 0)] {
        let mut seed = (text.len() as u32).to_le_bytes().to_vec();
        codec::encode_payload(&text, level, &mut seed);
        put(&dir, "blob_payload", name, &seed);
    }
    let id = k.blob_id(&text);
    let mut sealed = vec![0u8; 12];
    codec::encode_payload(&text, 3, &mut sealed);
    k.seal_in_place(&[AAD_BLOB, &[0], &id.0], &mut sealed);
    put(&dir, "sealed_envelope", "blob", &sealed);

    // Config loader seeds: the first byte picks clawback's file (odd) or openclaw.json (even).
    let own = br#"{
  // clawback's own file
  schedule: "2h",
  include: { stateDir: true, workspace: true, extraPaths: ["~/notes", "./rel"] },
  storage: { provider: "local", path: "./repo" },
  retention: { keepDaily: 7, keepWeekly: 4 },
  exclude: ["*.tmp", "cache/"],
  notify: { onFailure: true, webhook: "${HOOK}", telegram: { botToken: "${TOKEN}", chatId: 42 } },
  hooks: { before: ["echo hi"] },
  "$include": "c.json5",
}"#;
    let oc = br#"{ agents: { list: [{ id: "main" }] }, backup: { enabled: true, storage: { provider: "s3",
  bucket: "b", accessKeyId: "${AWS_ACCESS_KEY_ID}", secretAccessKey: "${AWS_SECRET_ACCESS_KEY}" },
  "$include": ["a.json5"] } }"#;
    put(&dir, "config_loader", "own", &[&[1u8][..], own].concat());
    put(&dir, "config_loader", "openclaw", &[&[0u8][..], oc].concat());
    put(&dir, "config_loader", "include-list", &[&[1u8][..], br#"{ "$include": "list.json5" }"#].concat());

    put(&dir, "archive_import", "minimal.tar.gz", &archive());
}
