//! More hostile repositories (beyond hostile.rs): objects swapped for one another, a rolled-back
//! snapshot list, crafted length fields, and trees nested absurdly deep or expanding
//! exponentially. Each is detected (one clear error, nothing wrong written) or, for the rollback,
//! behaves as format-spec/README.md ("What tampering is detected") documents.

use crate::support::*;
use clawback_engine::backend::{Kind, ObjectName};
use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::id::TreeId;
use clawback_engine::format::index::{IndexFile, IndexPack};
use clawback_engine::format::pack::PackWriter;
use clawback_engine::format::snapshot::Snapshot;
use clawback_engine::format::tree::{Node, NodeKind, Tree};
use clawback_engine::repo::Repository;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn object_path(sb: &Sandbox, kind: Kind, name: &str) -> PathBuf {
    match kind {
        Kind::Pack => sb.repo.join("data").join(&name[..2]).join(name),
        k => sb.repo.join(k.dir()).join(name),
    }
}

/// A fresh cache, so nothing verified earlier stands in for what is in the repository now.
fn fresh(sb: &Sandbox, tag: &str) -> Cmd {
    sb.cb_cache(&sb.path(&format!("cache-{tag}")))
}

#[test]
fn a_blob_swapped_for_another_in_the_index_is_detected() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a.txt"), b"the real content of a\n");
    write(&src.join("b.txt"), b"what b holds, which must never be restored as a\n");
    sb.backup(&[&src]);

    // Rewrite the index so that a's id points at b's stored bytes (same pack), as someone with
    // write access to the bucket and the key could, or a bug.
    let repo = open_repo(&sb);
    let (_, snap) = repo.find_snapshot("latest", |_| true).unwrap();
    let root = repo.load_tree(&snap.tree).unwrap();
    let mut t = root; // down the folders of the source path to the one holding the files
    while t.nodes.len() == 1 && t.nodes[0].kind == NodeKind::Dir {
        t = repo.load_tree(&t.nodes[0].subtree.unwrap()).unwrap();
    }
    let a = t.find(b"a.txt").unwrap().content[0];
    let b = t.find(b"b.txt").unwrap().content[0];
    let names: Vec<ObjectName> = repo.backend().list(Kind::Index).unwrap().into_iter().map(|(n, _)| n).collect();
    let mut files = Vec::new();
    for n in &names {
        files.push(IndexFile::decode(repo.keys(), n.as_str(), &repo.backend().read(n).unwrap()).unwrap());
    }
    let bloc = files.iter().flat_map(|f| &f.packs).flat_map(|p| &p.blobs).find(|e| e.id == b.blob()).copied().unwrap();
    for f in &mut files {
        for p in &mut f.packs {
            for e in &mut p.blobs {
                if e.id == a.blob() {
                    let id = e.id;
                    *e = bloc;
                    e.id = id;
                }
            }
        }
    }
    for n in &names {
        repo.backend().delete(n).unwrap();
    }
    for f in &files {
        repo.save_index(f).unwrap();
    }
    drop(repo);

    let out = sb.path("out");
    let r = fresh(&sb, "restore").args(["restore", "latest", "--target"]).arg(&out).run().code(1);
    // Refused by whichever check sees it first: the lengths, or the authentication of a's bytes.
    assert!(r.stderr.contains("a.txt"), "the swapped file is named: {}", r.stderr);
    let ra = restored(&out, &src.join("a.txt"));
    assert!(fs::read(&ra).ok().is_none_or(|d| d == b"the real content of a\n"), "b's bytes restored as a");
    let c = fresh(&sb, "check").args(["check", "--read-data", "--json"]).run().code(1);
    assert!(!c.json()["errors"].as_array().unwrap().is_empty());
}

#[test]
fn a_snapshot_swapped_for_another_is_detected_and_a_rollback_is_as_documented() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("f.txt"), b"one");
    let s1 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    write(&src.join("f.txt"), b"two");
    let s2 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();

    // s2's bytes served under s1's name: the name is the hash of the bytes, so it is noticed.
    let (p1, p2) = (object_path(&sb, Kind::Snapshot, &s1), object_path(&sb, Kind::Snapshot, &s2));
    let genuine = fs::read(&p1).unwrap();
    fs::write(&p1, fs::read(&p2).unwrap()).unwrap();
    let r = fresh(&sb, "swap").args(["snapshots"]).run().code(1);
    assert!(r.one_error_line().contains("does not match its name"), "{}", r.stderr);
    // The cache holds the copy verified when it was first read, so a known machine keeps using
    // the genuine snapshot.
    let v = sb.cb().args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    fs::write(&p1, &genuine).unwrap();

    // A rollback (the newest snapshot withdrawn, an old list served again) cannot be told from a
    // `forget`: clawback lists what is there, as documented.
    let hidden = fs::read(&p2).unwrap();
    fs::remove_file(&p2).unwrap();
    let v = fresh(&sb, "rollback").args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    fs::write(&p2, hidden).unwrap();
    assert_eq!(fresh(&sb, "back").args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len(), 2);
}

#[test]
fn crafted_length_fields_are_refused_without_allocating() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("f.bin"), &random_bytes(9, 200_000));
    sb.backup(&[&src]);
    let repo = open_repo(&sb);
    let packs = repo.backend().list(Kind::Pack).unwrap();
    drop(repo);

    // A pack whose trailing header length claims 4 GiB.
    for (name, _) in &packs {
        let p = object_path(&sb, Kind::Pack, name.as_str());
        let mut bytes = fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&p, bytes).unwrap();
    }
    let start = Instant::now();
    let r = fresh(&sb, "len").args(["check", "--read-data", "--json"]).run().code(1);
    assert!(!r.json()["errors"].as_array().unwrap().is_empty());
    assert!(start.elapsed() < Duration::from_secs(30));

    // An index that places a blob 4 GiB long past the end of its pack.
    let sb = Sandbox::with_repo();
    write(&src.join("f.bin"), &random_bytes(10, 200_000));
    sb.backup(&[&src]);
    let repo = open_repo(&sb);
    let names: Vec<ObjectName> = repo.backend().list(Kind::Index).unwrap().into_iter().map(|(n, _)| n).collect();
    let mut files = Vec::new();
    for n in &names {
        files.push(IndexFile::decode(repo.keys(), n.as_str(), &repo.backend().read(n).unwrap()).unwrap());
        repo.backend().delete(n).unwrap();
    }
    for f in &mut files {
        for p in &mut f.packs {
            for e in &mut p.blobs {
                e.length = u32::MAX;
                e.raw_length = u32::MAX;
            }
        }
        repo.save_index(f).unwrap();
    }
    drop(repo);
    let r = fresh(&sb, "idx").args(["restore", "latest", "--target"]).arg(sb.path("out")).run().code(1);
    assert!(!r.stderr.is_empty());
    fresh(&sb, "idx-check").args(["check", "--read-data"]).run().code(1);
}

fn dir_node(name: &[u8], subtree: TreeId) -> Node {
    Node {
        name: name.to_vec(),
        kind: NodeKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        dev: 1,
        ino: 0,
        nlink: 1,
        size: 0,
        content: vec![],
        subtree: Some(subtree),
        target: vec![],
    }
}

/// Encodes a tree of `nodes`, adds it to `trees` (for `forge`) and returns its id.
fn push_tree(repo: &Repository, trees: &mut Vec<(TreeId, Vec<u8>)>, nodes: Vec<Node>) -> TreeId {
    let bytes = Tree::new(nodes).encode();
    let id = repo.keys().tree_id(&bytes);
    trees.push((id, bytes));
    id
}

/// Stores trees and a snapshot naming `root`, straight through the library.
fn forge(repo: &Repository, trees: &[(TreeId, Vec<u8>)], root: TreeId) -> String {
    let keys = repo.keys();
    let mut w = PackWriter::new(BlobType::Tree, 0);
    for (id, bytes) in trees {
        w.add(id.blob(), &blob::encode(keys, BlobType::Tree, &id.blob(), bytes, 0), bytes.len());
    }
    let p = w.finish(keys);
    repo.save_pack(&p).unwrap();
    repo.save_index(&IndexFile {
        version: 1,
        supersedes: vec![],
        packs: vec![IndexPack { id: p.id, size: p.bytes.len() as u64, blobs: p.entries }],
    })
    .unwrap();
    let json = serde_json::json!({
        "version": 1, "time": "2026-01-02T00:00:00Z", "hostname": "evil", "username": "mallory",
        "paths": ["/evil"], "tags": [], "parent": null, "tree": root.to_hex(),
        "summary": clawback_engine::format::snapshot::Summary::default(), "program_version": "forged",
    });
    repo.save_snapshot(&Snapshot::from_json("forged", json.to_string().as_bytes()).unwrap()).unwrap().to_hex()
}

#[test]
fn a_tree_nested_too_deep_is_refused_not_followed() {
    // A cycle cannot be built (a tree's id is the hash of its bytes, which would have to contain
    // it), so the nearest thing is a chain deeper than any real folder: every walker stops.
    let sb = Sandbox::with_repo();
    let repo = open_repo(&sb);
    let mut trees = Vec::new();
    let mut cur = push_tree(&repo, &mut trees, vec![]);
    for _ in 0..5000 {
        cur = push_tree(&repo, &mut trees, vec![dir_node(b"d", cur)]);
    }
    let snap = forge(&repo, &trees, cur);
    drop(repo);
    let start = Instant::now();
    let r = sb.cb().args(["ls", snap.as_str()]).run().code(1);
    assert!(r.stderr.contains("nested too deeply"), "{}", r.stderr);
    // `check` walks trees without recursion, each once, and reports the chain restore refuses.
    let r = sb.cb().args(["check"]).run().code(1);
    assert!(r.stdout.contains("nested deeper") || r.stderr.contains("nested deeper"), "{}\n{}", r.stdout, r.stderr);
    let r = sb.cb().args(["restore", &snap, "--target"]).arg(sb.path("out")).run();
    assert_ne!(r.code, 0);
    assert!(start.elapsed() < Duration::from_secs(60), "deep trees took {:?}", start.elapsed());
}

#[test]
fn an_exponential_tree_is_checked_in_linear_time() {
    // 40 levels, each folder holding the level below twice: 2^40 paths from 41 trees. `check`
    // visits every tree once, so it finishes at once.
    let sb = Sandbox::with_repo();
    let repo = open_repo(&sb);
    let mut trees = Vec::new();
    let mut cur = push_tree(&repo, &mut trees, vec![]);
    for _ in 0..40 {
        cur = push_tree(&repo, &mut trees, vec![dir_node(b"a", cur), dir_node(b"b", cur)]);
    }
    forge(&repo, &trees, cur);
    drop(repo);
    let start = Instant::now();
    sb.cb().args(["check", "--read-data"]).run().ok();
    assert!(start.elapsed() < Duration::from_secs(30), "check took {:?}", start.elapsed());
}
