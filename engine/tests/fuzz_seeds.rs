//! The fuzzers' seed corpus (`fuzz/corpus/`): one valid object of each kind a fuzz target decodes,
//! built here and checked to decode, so the fuzzers start from inputs that reach deep into each
//! decoder. `CLAWBACK_WRITE_FUZZ_SEEDS=1 cargo test -p clawback-engine --test fuzz_seeds` rewrites
//! the committed seeds (when the formats change); otherwise they are built in a scratch folder.

use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::chunker::ChunkParams;
use clawback_engine::format::codec;
use clawback_engine::format::crypto::{KdfParams, KeyFile, Keys, MasterKey, AAD_BLOB};
use clawback_engine::format::dict::{self, Dict};
use clawback_engine::format::id::{BlobId, DataId, IndexId, PackId, TreeId};
use clawback_engine::format::index::{IndexFile, IndexPack};
use clawback_engine::format::pack::{PackEntry, PackWriter};
use clawback_engine::format::snapshot::{Snapshot, Summary};
use clawback_engine::format::tree::{Node, NodeKind, Tree};
use clawback_engine::repo::append_only::AppendOnly;
use clawback_engine::repo::blobtable::BlobTable;
use clawback_engine::repo::{location, RepoConfig};
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
    let manifest = manifest();
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
    let c = RepoConfig::from_json(&read("repo_config", "append-only.json")).unwrap();
    assert!(c.append_only.is_some());
    for i in 0..6 {
        let url = String::from_utf8(read("repo_location", &format!("url-{i}"))).unwrap();
        assert!(location::parse(&url).is_ok(), "{url}");
    }
    let d = fixed_dict();
    assert!(Dict::from_bytes("seed".into(), read("dict", "dictionary")[1..].to_vec()).is_ok());
    let payload = read("dict", "payload");
    assert_eq!(codec::dict_frame(&payload[1..], 1 << 20).unwrap().0, d.zstd_id, "the payload uses the dictionary");
    assert_eq!(codec::decode_dict_payload(&payload[1..], 1 << 20, &d).unwrap(), dict_plain());
    assert!(read("archive_manifest", "minimal.json").starts_with(b"{"));
    assert!(read("blob_table", "one-run").len() > 100);
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
    put(&dir, "archive_manifest", "minimal.json", &serde_json::to_vec_pretty(&manifest()).unwrap());

    let append_only = RepoConfig { append_only: Some(AppendOnly { maintenance: "cd".repeat(32) }), version: 2, ..cfg };
    put(&dir, "repo_config", "append-only.json", &serde_json::to_vec(&append_only).unwrap());

    for (i, url) in [
        "local:/srv/backups/claw",
        "/var/backups/claw",
        "relative/repo",
        "s3:http://127.0.0.1:8333/bucket/prefix/deeper",
        "s3://bucket/prefix",
        "s3:https://s3.eu-west-1.amazonaws.com/bucket",
    ]
    .iter()
    .enumerate()
    {
        put(&dir, "repo_location", &format!("url-{i}"), url.as_bytes());
    }

    // Dictionary seeds: the first byte picks a dictionary plaintext (even) or a payload compressed
    // with the target's fixed dictionary (odd).
    let d = fixed_dict();
    put(&dir, "dict", "dictionary", &[&[0u8][..], d.bytes()].concat());
    let mut payload = vec![1u8];
    codec::encode_payload_with(&dict_plain(), 3, Some(&d), &mut payload);
    put(&dir, "dict", "payload", &payload);

    put(&dir, "blob_table", "one-run", &blob_table_seed());
}

/// The `openclaw backup` manifest the archive seeds carry.
fn manifest() -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 1, "createdAt": "2026-03-09T08:00:00.000Z", "archiveRoot": "oc-backup",
        "runtimeVersion": "2026.3.8", "platform": "linux",
        "paths": { "stateDir": "/s", "configPath": "/s/openclaw.json", "workspaceDirs": ["/s/workspace"] },
        "assets": [{ "kind": "state", "sourcePath": "/s", "archivePath": "oc-backup/payload/posix/s" }],
        "skipped": [],
    })
}

/// The `dict` target's fixed dictionary: trained on the samples `fuzz/fuzz_targets/common.rs`
/// (`dict_samples`) makes, the same ones.
fn fixed_dict() -> Dict {
    let samples: Vec<Vec<u8>> = (0..400u32)
        .map(|i| {
            format!(
                "{{\"role\":\"{}\",\"turn\":{i},\"text\":\"the agent read file notes-{}.md and replied {}\"}}\n",
                ["user", "assistant", "tool"][i as usize % 3],
                i % 17,
                i * 7919 % 1000
            )
            .repeat(1 + i as usize % 5)
            .into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = samples.iter().map(|s| s.as_slice()).collect();
    Dict::from_bytes("fixed".into(), dict::train(&refs, 4096).expect("trains")).unwrap()
}

fn dict_plain() -> Vec<u8> {
    b"{\"role\":\"tool\",\"turn\":5,\"text\":\"the agent read file notes-5.md and replied 595\"}\n".repeat(3)
}

/// The name of the index file the `blob_table` target's table covers (`TABLE_INDEX_NAME` there).
const TABLE_INDEX_NAME: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A blob table built from the target's fixed index file (one pack, three blobs), as the target
/// takes it: 2 bytes of manifest length, the manifest without its checksum, the run file, renamed
/// `run-fuzzzz` (the name the target writes it under).
fn blob_table_seed() -> Vec<u8> {
    let blobs = (1..=3u8)
        .map(|i| PackEntry {
            ty: BlobType::Data,
            id: BlobId([i; 32]),
            offset: 100 * (i as u32 - 1),
            length: 100,
            raw_length: 150,
        })
        .collect();
    let idx =
        IndexFile { version: 1, supersedes: vec![], packs: vec![IndexPack { id: PackId([8; 32]), size: 400, blobs }] };
    let d = tempfile::tempdir().unwrap();
    let mut fetch =
        |_: &[&str], each: &mut dyn FnMut(IndexFile) -> clawback_engine::error::Result<()>| each(idx.clone());
    let (table, _) = BlobTable::load(Some(d.path()), &[TABLE_INDEX_NAME.to_string()], &mut fetch).unwrap();
    assert_eq!(table.records(), 3);
    drop(table);
    let run = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("run-"))
        .expect("a run file");
    let run_name = run.file_name().to_string_lossy().into_owned();
    assert_eq!(run_name.len(), "run-fuzzzz".len(), "run files are named run- and six characters");
    let manifest = std::fs::read(d.path().join("manifest")).unwrap();
    let body = &manifest[..manifest.len() - 32];
    let at = body.windows(run_name.len()).position(|w| w == run_name.as_bytes()).expect("the manifest names the run");
    let mut body = body.to_vec();
    body[at..at + run_name.len()].copy_from_slice(b"run-fuzzzz");
    let mut seed = (body.len() as u16).to_le_bytes().to_vec();
    seed.extend_from_slice(&body);
    seed.extend_from_slice(&std::fs::read(run.path()).unwrap());
    seed
}
