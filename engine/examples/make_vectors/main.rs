//! Writes the format test vectors (`format-spec/vectors/`): a small repository the engine makes from
//! `source/` with a known passphrase; `vectors.json`, everything a reader must find in it (keys,
//! config, every pack, index file and tree, the snapshot); and `invalid/`, one object per way a
//! reader must refuse one, with `invalid/manifest.json` naming the expected outcome of each.
//! Run by hand when the format changes and commit the output; `engine/tests/vectors/` checks an
//! independent decoder and the engine against it ever after. `--invalid-only` keeps the committed
//! repository and `vectors.json` and writes `invalid/` again from them (the negative vectors are
//! sealed with nonces derived from their content, so unchanged ones come out byte for byte the same).
//!
//!     cargo run -p clawback-engine --example make_vectors [-- --invalid-only]

mod invalid;

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::format::blob::BlobType;
use clawback_engine::format::chunker::ChunkParams;
use clawback_engine::format::crypto::{derive_wrapping_key, KdfParams, KeyFile, Subkeys, AAD_BLOB};
use clawback_engine::format::dict;
use clawback_engine::format::id::PackId;
use clawback_engine::format::index::IndexFile;
use clawback_engine::format::pack::{self, PackEntry};
use clawback_engine::format::snapshot::{OpenclawMeta, VersionSource};
use clawback_engine::format::tree::Node;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const PASSPHRASE: &str = "correct horse battery staple";
/// Where `source/` is copied before the backup, so that the snapshot names the same path whoever
/// generates the vectors (never the path of a checkout).
const BACKED_UP: &str = "/var/home/clawback-vectors/source";
/// 2026-01-01T00:00:00Z: the snapshot's time and every copied file's mtime.
const EPOCH_2026: i64 = 1_767_225_600;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors");
    match std::env::args().nth(1).as_deref() {
        None => generate(&root),
        Some("--invalid-only") => {}
        Some(a) => panic!("unknown argument {a}: give none, or --invalid-only"),
    }
    let n = write_invalid(&root);
    println!("wrote {} ({n} invalid vectors)", root.display());
}

/// Makes the vector repository (`repo/`) and writes `vectors.json`.
fn generate(root: &Path) {
    let repo_dir = root.join("repo");
    let _ = std::fs::remove_dir_all(&repo_dir);
    let src = Path::new(BACKED_UP);
    let scratch = src.parent().unwrap();
    let _ = std::fs::remove_dir_all(scratch);
    copy_dir(&root.join("source"), src);
    stamp(src);

    let pw = Secret(PASSPHRASE.as_bytes().to_vec());
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&repo_dir));
    let opts = InitOptions {
        kdf: KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 },
        // Small chunks, so that random.bin is cut in several.
        chunker: ChunkParams { min: 4096, avg: 16384, max: 65536 },
        pack_size: 1 << 20,
        compression: 3,
        ..Default::default()
    };
    Repository::init(be.clone(), &pw, &opts).unwrap();
    let repo = Repository::open(be.clone(), &pw, &CacheOptions { dir: None, disabled: true }).unwrap();
    // A dictionary (format-spec §16), trained on transcript-like lines, so that the backup
    // compresses the text chunks with it (payload flag 2).
    let lines = sample_lines();
    let pieces: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let dict = repo.save_dictionary(&dict::train(&pieces, 2048).expect("a dictionary")).unwrap();
    let bo = BackupOptions {
        paths: vec![src.to_path_buf()],
        host: Some("vectors".into()),
        time: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        tags: vec!["vectors".into()],
        group: Some("vectors-fleet".into()),
        openclaw: Some(OpenclawMeta {
            state_dir: BACKED_UP.into(),
            config_path: None,
            config_files: vec![],
            workspaces: vec![format!("{BACKED_UP}/memory")],
            agents: vec![],
            openclaw_version: Some("2026.9.6".into()),
            openclaw_version_source: Some(VersionSource::Config),
        }),
        ..Default::default()
    };
    let r = backup(&repo, &bo, &Progress::default()).unwrap();
    let snapshot_id = r.snapshot_id.unwrap();

    // Keys, re-derived the long way.
    let (kname, _) = be.list(Kind::Key).unwrap().remove(0);
    let kbytes = be.read(&kname).unwrap();
    let kf = KeyFile::parse(&kbytes).unwrap();
    let master = kf.open(&pw.0).unwrap().unwrap();
    use base64::Engine;
    let salt = base64::engine::general_purpose::STANDARD.decode(&kf.salt).unwrap();
    let wk = derive_wrapping_key(&pw.0, &salt, &kf.params).unwrap();
    let sk = Subkeys::derive(&master);
    let keys = repo.keys();
    let hello = std::fs::read(src.join("hello.txt")).unwrap();
    let hello_id = keys.blob_id(&hello);

    // Every pack, its header and the form (raw or zstd) of every blob in it.
    let mut packs = Vec::new();
    for (object, size) in be.list(Kind::Pack).unwrap() {
        let bytes = be.read(&object).unwrap();
        let name = object.to_string();
        let entries = pack::parse(keys, &PackId::from_hex(&name).unwrap(), &bytes).unwrap();
        let header_length = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        let mut blobs = Vec::new();
        for e in &entries {
            let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let payload = keys.open(&[AAD_BLOB, &[e.ty as u8], &e.id.0], stored).unwrap();
            let mut b = entry_json(e);
            b["flag"] = json!(payload[0]);
            blobs.push(b);
        }
        packs.push(json!({ "id": name, "size": size, "header_length": header_length, "blobs": blobs }));
    }

    let mut index_files = Vec::new();
    for (object, _) in be.list(Kind::Index).unwrap() {
        let bytes = be.read(&object).unwrap();
        let name = object.to_string();
        let f = IndexFile::decode(keys, &name, &bytes).unwrap();
        let packs: Vec<Value> = f
            .packs
            .iter()
            .map(|p| json!({ "id": p.id.to_hex(), "size": p.size, "blobs": p.blobs.iter().map(entry_json).collect::<Vec<_>>() }))
            .collect();
        let supersedes: Vec<String> = f.supersedes.iter().map(|i| i.to_hex()).collect();
        index_files.push(json!({ "id": name, "version": f.version, "supersedes": supersedes, "packs": packs }));
    }

    // Every tree of the snapshot, walked from the root.
    let snap_name = snapshot_id.to_hex();
    let snap = repo.find_snapshot(&snap_name, |_| true).unwrap().1;
    let mut trees = BTreeMap::new();
    let mut todo = vec![snap.tree];
    while let Some(id) = todo.pop() {
        let t = repo.load_tree(&id).unwrap();
        todo.extend(t.nodes.iter().filter_map(|n| n.subtree));
        let nodes: Vec<Value> = t.nodes.iter().map(node_json).collect();
        trees.insert(id.to_hex(), json!({ "version": t.version, "nodes": nodes }));
    }
    let snapshot_json = serde_json::to_value(&snap).unwrap();

    let v = json!({
        "about": "The repository in repo/ and what a reader must find in it; see format-spec/README.md. \
                  Regenerate with `cargo run -p clawback-engine --example make_vectors`.",
        "passphrase": PASSPHRASE,
        "key_file": kname.to_string(),
        "argon2id": { "m_cost_kib": kf.params.m_cost, "t_cost": kf.params.t_cost, "p_cost": kf.params.p_cost, "salt_b64": kf.salt },
        "wrapping_key": hex::encode(wk),
        "master_key": hex::encode(master.0),
        "chunk_id_key": hex::encode(sk.chunk_id_key),
        "data_key": hex::encode(sk.data_key),
        "chunker_seed": sk.chunker_seed.to_string(),
        "blob_id_of_hello_txt": hello_id.to_hex(),
        "config": serde_json::to_value(repo.config()).unwrap(),
        "dictionaries": [{ "id": dict.name, "zstd_id": dict.zstd_id, "length": dict.bytes().len() }],
        "packs": packs,
        "index_files": index_files,
        "trees": trees,
        "snapshot_id": snap_name,
        "snapshot": snapshot_json,
        "source_dir": "source",
        "files": ["hello.txt", "empty", "random.bin", "repeat.txt", "memory/2026-01-01.md", "memory/2026-01-02.jsonl"],
        "symlinks": { "link": "hello.txt" },
    });
    std::fs::write(root.join("vectors.json"), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    std::fs::remove_dir_all(scratch).unwrap();
}

/// Writes `invalid/` from the objects of the vector repository as committed.
fn write_invalid(root: &Path) -> usize {
    let pw = Secret(PASSPHRASE.as_bytes().to_vec());
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(root.join("repo")));
    let repo = Repository::open(be.clone(), &pw, &CacheOptions { dir: None, disabled: true }).unwrap();
    let keys = repo.keys();
    let (key_object, _) = be.list(Kind::Key).unwrap().remove(0);
    let key_bytes = be.read(&key_object).unwrap();
    let key_name = key_object.to_string();
    let kf = KeyFile::parse(&key_bytes).unwrap();
    let master = kf.open(&pw.0).unwrap().unwrap();
    use base64::Engine;
    let salt = base64::engine::general_purpose::STANDARD.decode(&kf.salt).unwrap();
    let wrapping_key = derive_wrapping_key(&pw.0, &salt, &kf.params).unwrap();
    let hello_id = keys.blob_id(&std::fs::read(root.join("source/hello.txt")).unwrap());

    let mut packs = be.list(Kind::Pack).unwrap();
    packs.sort();
    let mut tree_pack = None;
    let mut hello = None;
    for (object, _) in packs {
        let bytes = be.read(&object).unwrap();
        let name = object.to_string();
        let entries = pack::parse(keys, &PackId::from_hex(&name).unwrap(), &bytes).unwrap();
        if let Some(e) = entries.iter().find(|e| e.id == hello_id) {
            hello = Some((hello_id, bytes[e.offset as usize..(e.offset + e.length) as usize].to_vec()));
        }
        if entries.iter().all(|e| e.ty == BlobType::Tree) {
            tree_pack.get_or_insert((name, bytes));
        }
    }
    let mut indexes = be.list(Kind::Index).unwrap();
    indexes.sort();
    let index_object = indexes.remove(0).0;
    let index_bytes = be.read(&index_object).unwrap();
    let index_name = index_object.to_string();
    let (snap_id, snap) = repo.find_snapshot("latest", |_| true).unwrap();
    let snap_name = snap_id.to_hex();
    let snap_bytes = be.read(&ObjectName::of(&snap_id)).unwrap();
    invalid::write(
        &root.join("invalid"),
        &invalid::Base {
            keys,
            data_key: Subkeys::derive(&master).data_key,
            tree_pack: tree_pack.expect("a pack of trees"),
            hello: hello.expect("hello.txt's blob"),
            index: (index_name, index_bytes),
            snapshot: (snap_name, snap_bytes),
            snapshot_json: serde_json::to_value(&snap).unwrap(),
            config: serde_json::to_value(repo.config()).unwrap(),
            key_file: (key_name, key_bytes),
            wrapping_key,
            dict: {
                let (object, _) = be.list(Kind::Dict).unwrap().remove(0);
                let sealed = be.read(&object).unwrap();
                let name = object.to_string();
                let d = dict::Dict::open(keys, &name, &sealed).unwrap();
                (name, sealed, d.bytes().to_vec())
            },
        },
    )
}

/// Lines like those of an agent's transcript, to train the vector dictionary on (deterministic).
fn sample_lines() -> Vec<String> {
    let topics = ["the garden", "a trip to Lisbon", "the quarterly report", "bread baking", "the cat's vet visit"];
    (0..400)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            let say = if i % 2 == 0 { "please keep this in mind." } else { "noted, will remember that." };
            format!(
                "{{\"type\":\"message\",\"turn\":{},\"role\":\"{role}\",\"content\":\"Turn {} about {}: {say}\"}}\n",
                i * 7 % 101,
                i * 13 % 97,
                topics[i * 3 % 5]
            )
        })
        .collect()
}

fn entry_json(e: &PackEntry) -> Value {
    json!({ "type": e.ty as u8, "id": e.id.to_hex(), "offset": e.offset, "length": e.length, "raw_length": e.raw_length })
}

fn node_json(n: &Node) -> Value {
    json!({
        "name": std::str::from_utf8(&n.name).expect("vector names are UTF-8"),
        "kind": n.kind as u8,
        "mode": n.mode, "uid": n.uid, "gid": n.gid,
        "mtime_ns": n.mtime_ns, "ctime_ns": n.ctime_ns,
        "dev": n.dev, "ino": n.ino, "nlink": n.nlink, "size": n.size,
        "content": n.content.iter().map(|c| c.to_hex()).collect::<Vec<_>>(),
        "subtree": n.subtree.map(|s| s.to_hex()),
        "target": std::str::from_utf8(&n.target).expect("vector link targets are UTF-8"),
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = to.join(e.file_name());
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_dir(&e.path(), &p);
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &p).unwrap();
        } else {
            std::fs::copy(e.path(), &p).unwrap();
        }
    }
}

/// Gives every copied entry the same mtime (folders after their content), so the trees differ
/// between generations only by what the machine decides (inode numbers, ctime, owner).
fn stamp(dir: &Path) {
    let t = filetime::FileTime::from_unix_time(EPOCH_2026, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.symlink_metadata().unwrap().is_dir() {
            stamp(&p);
        }
        filetime::set_symlink_file_times(&p, t, t).unwrap();
    }
    filetime::set_symlink_file_times(dir, t, t).unwrap();
}
