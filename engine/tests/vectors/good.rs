//! The good vectors, decoded with the independent reader and compared with `vectors.json`: keys
//! from the passphrase, the config, every pack header and blob, every tree, every index file and the
//! snapshot; then the snapshot's files reassembled from their chunks and compared with `source/`,
//! and their chunk boundaries recomputed with FastCDC and the chunker seed.

use crate::spec::{self, Entry, Node, Outcome};
use crate::{hex32, keys, root, s, vectors};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn entry_json(e: &Entry) -> Value {
    json!({ "type": e.ty, "id": hex::encode(e.id), "offset": e.offset, "length": e.length, "raw_length": e.raw_length })
}

fn node_json(n: &Node) -> Value {
    json!({
        "name": String::from_utf8(n.name.clone()).unwrap(),
        "kind": n.kind,
        "mode": n.mode, "uid": n.uid, "gid": n.gid,
        "mtime_ns": n.mtime_ns, "ctime_ns": n.ctime_ns,
        "dev": n.dev, "ino": n.ino, "nlink": n.nlink, "size": n.size,
        "content": n.content.iter().map(hex::encode).collect::<Vec<_>>(),
        "subtree": n.subtree.map(hex::encode),
        "target": String::from_utf8(n.target.clone()).unwrap(),
    })
}

/// Every file under `repo/<folder>`, as (name, bytes); packs from their `<first 2 hex>` folders.
fn objects(folder: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let dir = root().join("repo").join(folder);
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            for f in std::fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap();
                let n = f.file_name().into_string().unwrap();
                assert!(n.starts_with(&name) && name.len() == 2, "pack {n} in folder {name}");
                out.insert(n, std::fs::read(f.path()).unwrap());
            }
        } else {
            out.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// The repository's dictionaries, read independently and compared with vectors.json.
fn dictionaries(v: &Value) -> Vec<(u32, Vec<u8>)> {
    let k = keys(v);
    let dir = root().join("repo/dicts");
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for e in std::fs::read_dir(&dir).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        let name = e.file_name().into_string().unwrap();
        let (id, d) =
            spec::dict(&k, &name, &std::fs::read(e.path()).unwrap()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        listed.push(json!({ "id": name, "zstd_id": id, "length": d.len() }));
        out.push((id, d));
    }
    listed.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(json!(listed), v["dictionaries"], "the dictionaries as vectors.json records them");
    out
}

/// What the independent reader found in the vector repository.
struct Decoded {
    /// Blob id → (type, plaintext).
    blobs: BTreeMap<[u8; 32], (u8, Vec<u8>)>,
    /// Pack id → (size, entries).
    packs: BTreeMap<[u8; 32], (u64, Vec<Entry>)>,
}

/// Decodes every pack and every blob in it, comparing with vectors.json's `packs` and `trees`.
fn decode_packs(v: &Value) -> Decoded {
    let k = keys(v);
    let expected: BTreeMap<&str, &Value> = v["packs"].as_array().unwrap().iter().map(|p| (s(p, "id"), p)).collect();
    let on_disk = objects("data");
    assert_eq!(on_disk.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected.keys().copied().collect());
    let mut d = Decoded { blobs: BTreeMap::new(), packs: BTreeMap::new() };
    let dicts = dictionaries(v);
    let mut flags = BTreeSet::new();
    for (name, bytes) in &on_disk {
        let p = spec::pack(&k, name, bytes).unwrap_or_else(|e| panic!("pack {name}: {e:?}"));
        let want = expected[name.as_str()];
        assert_eq!(want["size"], bytes.len(), "pack {name}");
        assert_eq!(want["header_length"], p.header_length, "pack {name}");
        let mut blobs = Vec::new();
        for e in &p.entries {
            let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let (plain, flag) = spec::blob(&k, &dicts, e.ty, &e.id, e.raw_length as u64, stored)
                .unwrap_or_else(|err| panic!("blob {} of pack {name}: {err:?}", hex::encode(e.id)));
            let mut b = entry_json(e);
            b["flag"] = json!(flag);
            blobs.push(b);
            d.blobs.insert(e.id, (e.ty, plain));
        }
        assert_eq!(want["blobs"], json!(blobs), "pack {name}: the header as vectors.json records it");
        flags.extend(blobs.iter().map(|b| b["flag"].as_u64().unwrap()));
        d.packs.insert(hex32(name), (bytes.len() as u64, p.entries));
    }
    assert_eq!(flags, BTreeSet::from([0, 1, 2]), "blobs stored raw, compressed, and with the dictionary");
    d
}

#[test]
fn keys_rederive_from_the_passphrase() {
    let v = vectors();
    let name = s(&v, "key_file");
    let bytes = std::fs::read(root().join("repo/keys").join(name)).unwrap();
    spec::check_name(name, &bytes).unwrap();
    let master = spec::unwrap_key(&bytes, s(&v, "passphrase").as_bytes()).unwrap();
    assert_eq!(hex::encode(master), s(&v, "master_key"));
    assert_eq!(spec::unwrap_key(&bytes, b"wrong").unwrap_err().kind, Outcome::Authentication);
    let k = spec::subkeys(&master);
    assert_eq!(hex::encode(k.chunk_id_key), s(&v, "chunk_id_key"));
    assert_eq!(hex::encode(k.data_key), s(&v, "data_key"));
    assert_eq!(k.chunker_seed.to_string(), s(&v, "chunker_seed"));
    let hello = std::fs::read(root().join("source/hello.txt")).unwrap();
    assert_eq!(hex::encode(spec::blob_id(&k, &hello)), s(&v, "blob_id_of_hello_txt"));
    let kf: Value = serde_json::from_slice(&bytes).unwrap();
    let a = &v["argon2id"];
    assert_eq!((&kf["m_cost"], &kf["t_cost"], &kf["p_cost"]), (&a["m_cost_kib"], &a["t_cost"], &a["p_cost"]));
    assert_eq!(kf["salt"], a["salt_b64"]);
}

#[test]
fn config_decodes() {
    let v = vectors();
    let cfg = spec::config(&keys(&v), &std::fs::read(root().join("repo/config")).unwrap()).unwrap();
    assert_eq!(cfg, v["config"]);
}

#[test]
fn every_pack_blob_and_tree_decodes_as_recorded() {
    let v = vectors();
    let d = decode_packs(&v);
    let trees = v["trees"].as_object().unwrap();
    let mut seen = 0;
    for (id, (ty, plain)) in &d.blobs {
        if *ty == 1 {
            let nodes = spec::tree(plain).unwrap_or_else(|e| panic!("tree {}: {e:?}", hex::encode(id)));
            let want = &trees[&hex::encode(id)];
            assert_eq!(want["version"], 1);
            assert_eq!(
                want["nodes"],
                json!(nodes.iter().map(node_json).collect::<Vec<_>>()),
                "tree {}",
                hex::encode(id)
            );
            seen += 1;
        }
    }
    assert_eq!(seen, trees.len(), "every tree of vectors.json is in a pack");
    let data = d.blobs.values().filter(|(t, _)| *t == 0).count();
    assert!(data >= 8 && seen >= 5, "the vector repository has data ({data}) and tree ({seen}) blobs");
    eprintln!(
        "vectors: {} packs, {} blobs ({data} data, {seen} trees) decoded independently",
        d.packs.len(),
        d.blobs.len()
    );
}

#[test]
fn every_index_file_decodes_as_recorded_and_lists_every_pack() {
    let v = vectors();
    let k = keys(&v);
    let d = decode_packs(&v);
    let expected: BTreeMap<&str, &Value> =
        v["index_files"].as_array().unwrap().iter().map(|i| (s(i, "id"), i)).collect();
    let on_disk = objects("index");
    assert_eq!(on_disk.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected.keys().copied().collect());
    let mut listed = BTreeMap::new();
    for (name, bytes) in &on_disk {
        let f = spec::index(&k, name, bytes).unwrap_or_else(|e| panic!("index {name}: {e:?}"));
        let packs: Vec<Value> = f
            .packs
            .iter()
            .map(|(id, size, blobs)| json!({ "id": hex::encode(id), "size": size, "blobs": blobs.iter().map(entry_json).collect::<Vec<_>>() }))
            .collect();
        let want = expected[name.as_str()];
        assert_eq!(want["version"], 1);
        assert_eq!(want["supersedes"], json!(f.supersedes.iter().map(hex::encode).collect::<Vec<_>>()));
        assert_eq!(want["packs"], json!(packs), "index {name}");
        for (id, size, blobs) in f.packs {
            listed.insert(id, (size, blobs));
        }
    }
    assert_eq!(listed, d.packs, "the index lists every pack with its size and header");
}

/// Follows `path` (components) from the tree `id`; returns the last node.
fn walk(d: &Decoded, mut id: [u8; 32], path: &str) -> Node {
    let mut found = None;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        let nodes = spec::tree(&d.blobs[&id].1).unwrap();
        let n = nodes.into_iter().find(|n| n.name == c.as_bytes()).unwrap_or_else(|| panic!("no {c} in {path}"));
        if let Some(s) = n.subtree {
            id = s;
        }
        found = Some(n);
    }
    found.unwrap()
}

#[test]
fn the_snapshot_decodes_and_its_files_reassemble_by_hand() {
    let v = vectors();
    let k = keys(&v);
    let name = s(&v, "snapshot_id");
    let bytes = std::fs::read(root().join("repo/snapshots").join(name)).unwrap();
    let snap = spec::snapshot(&k, name, &bytes).unwrap();
    assert_eq!(snap, v["snapshot"]);
    let d = decode_packs(&v);
    let base = snap["paths"][0].as_str().unwrap();
    let top = hex32(snap["tree"].as_str().unwrap());
    let cfg = &v["config"]["chunker"];
    let (min, avg, max) = (cfg["min"].as_u64().unwrap(), cfg["avg"].as_u64().unwrap(), cfg["max"].as_u64().unwrap());
    let src = root().join(s(&v, "source_dir"));
    for f in v["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        let n = walk(&d, top, &format!("{base}/{f}"));
        assert_eq!(n.kind, 0, "{f} is a file");
        let content: Vec<u8> = n.content.iter().flat_map(|c| d.blobs[c].1.clone()).collect();
        let want = std::fs::read(src.join(f)).unwrap();
        assert_eq!(content, want, "{f}");
        assert_eq!(n.size, want.len() as u64);
        // §2, §12: FastCDC 2020, normalization level 1, seeded with the chunker seed.
        let cuts: Vec<usize> = fastcdc::v2020::FastCDC::with_level_and_seed(
            &want,
            min as usize,
            avg as usize,
            max as usize,
            fastcdc::v2020::Normalization::Level1,
            k.chunker_seed,
        )
        .map(|c| c.length)
        .collect();
        let lengths: Vec<usize> = n.content.iter().map(|c| d.blobs[c].1.len()).collect();
        assert_eq!(lengths, cuts, "{f}: chunk boundaries");
    }
    for (l, t) in v["symlinks"].as_object().unwrap() {
        let n = walk(&d, top, &format!("{base}/{l}"));
        assert_eq!((n.kind, n.target.as_slice()), (2, t.as_str().unwrap().as_bytes()), "{l}");
    }
}
