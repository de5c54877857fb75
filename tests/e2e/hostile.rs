//! Hostile repositories and targets: damaged packs, trees crafted to escape the target, and
//! symlinks waiting in the target. Restore must fail loudly, name what it could not restore, leave
//! no partial file, and never write outside the target.

use crate::support::*;
use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::id::{DataId, PackId, TreeId};
use clawback_engine::format::index::{IndexFile, IndexPack};
use clawback_engine::format::pack::PackWriter;
use clawback_engine::format::snapshot::{Snapshot, Summary};
use clawback_engine::format::tree::{Node, NodeKind, Tree};
use clawback_engine::repo::Repository;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Every file in a snapshot, by absolute path, with its content blob ids.
fn snapshot_files(repo: &Repository, snap: &Snapshot) -> BTreeMap<PathBuf, Vec<DataId>> {
    fn walk(repo: &Repository, id: &TreeId, at: &Path, out: &mut BTreeMap<PathBuf, Vec<DataId>>) {
        for n in repo.load_tree(id).unwrap().nodes {
            let p = at.join(os(&n.name));
            match n.kind {
                NodeKind::Dir => walk(repo, &n.subtree.unwrap(), &p, out),
                NodeKind::File => {
                    out.insert(p, n.content.clone());
                }
                NodeKind::Symlink => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(repo, &snap.tree, Path::new("/"), &mut out);
    out
}

fn flip_byte(path: &Path, offset: u64) {
    let mut f = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
}

fn pack_path(sb: &Sandbox, id: &PackId) -> PathBuf {
    let hex = id.to_hex();
    sb.repo.join("data").join(&hex[..2]).join(&hex)
}

#[test]
fn a_damaged_pack_names_the_lost_files_and_restores_the_rest() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = sb.path("src");
    for i in 0..6 {
        write(&src.join(format!("big/f{i}.bin")), &random_bytes(300 + i, 1_500_000));
    }
    for i in 0..10 {
        write(&src.join(format!("small/s{i}.txt")), format!("small {i}\n").as_bytes());
    }
    // f2 has a hard link and a copy: all three lose the same data.
    fs::hard_link(src.join("big/f2.bin"), src.join("small/link-to-f2.bin")).unwrap();
    fs::copy(src.join("big/f2.bin"), src.join("small/copy-of-f2.bin")).unwrap();
    sb.backup(&[&src]);

    // Damage one blob in the middle of big/f2.bin, inside its pack.
    let repo = open_repo(&sb);
    let (_, snap) = repo.find_snapshot("latest", |_| true).unwrap();
    let files = snapshot_files(&repo, &snap);
    let f2 = &files[&src.join("big/f2.bin")];
    let victim = f2[f2.len() / 2];
    let loc = repo.index().get(&victim.blob()).unwrap();
    let pack = repo.index().pack_id(loc.pack);
    let expect_lost: BTreeSet<PathBuf> =
        files.iter().filter(|(_, blobs)| blobs.contains(&victim)).map(|(p, _)| p.clone()).collect();
    assert_eq!(
        expect_lost,
        ["big/f2.bin", "small/link-to-f2.bin", "small/copy-of-f2.bin"]
            .iter()
            .map(|p| src.join(p))
            .collect::<BTreeSet<_>>()
    );
    // Other files with blobs in the same pack must still come back.
    let same_pack_survivors = files
        .iter()
        .filter(|(p, blobs)| {
            !expect_lost.contains(*p)
                && blobs.iter().any(|b| repo.index().get(&b.blob()).is_some_and(|l| l.pack == loc.pack))
        })
        .count();
    eprintln!("note: {same_pack_survivors} intact files share the damaged pack");
    drop(repo);
    flip_byte(&pack_path(&sb, &pack), loc.offset as u64 + loc.length as u64 / 2);

    for json in [false, true] {
        let t = sb.path(if json { "t-json" } else { "t" });
        let mut c = sb.cb().args(["restore", "latest", "--target"]).arg(&t);
        if json {
            c = c.arg("--json");
        }
        let r = c.run().code(1);
        if json {
            let v = r.json();
            let named: BTreeSet<PathBuf> =
                v["errors"].as_array().unwrap().iter().map(|e| PathBuf::from(e["path"].as_str().unwrap())).collect();
            assert_eq!(named, expect_lost, "restore --json errors: {v}");
        } else {
            for p in &expect_lost {
                assert!(r.stderr.contains(p.to_str().unwrap()), "stderr does not name {}:\n{}", p.display(), r.stderr);
            }
            assert!(!r.stdout.contains("restored") || r.stderr.contains("could not"));
        }
        // Lost files are absent (no truncated or zero-filled stand-ins); the rest is exact.
        for p in files.keys() {
            let out = restored(&t, p);
            if expect_lost.contains(p) {
                assert!(
                    fs::symlink_metadata(&out).is_err(),
                    "{} was left behind although its data is damaged",
                    out.display()
                );
            } else {
                assert!(same_content(p, &out), "{} was not restored intact", out.display());
            }
        }
    }
}

#[test]
fn a_damaged_tree_pack_fails_the_restore() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a/b/c.txt"), b"c");
    write(&src.join("d.txt"), b"d");
    sb.backup(&[&src]);

    let repo = open_repo(&sb);
    let tree_blobs: Vec<_> = repo.index().blobs().filter(|(_, l)| l.ty == BlobType::Tree).map(|(_, l)| l).collect();
    let loc = tree_blobs[0];
    let pack = repo.index().pack_id(loc.pack);
    drop(repo);
    // Every tree blob of this small backup is in one pack: damage them all.
    for l in &tree_blobs {
        assert_eq!(l.pack, loc.pack);
        flip_byte(&pack_path(&sb, &pack), l.offset as u64 + l.length as u64 / 2);
    }
    let t = sb.path("t");
    let r = sb.cb().args(["--no-cache", "restore", "latest", "--target"]).arg(&t).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains("damaged"), "{line}");
    assert!(!files_under(&t).iter().any(|_| true), "files were written from a damaged snapshot");
    sb.cb().args(["--no-cache", "ls", "latest"]).run().code(1);
}

/// Writes blobs, trees and a snapshot straight into a repository, the way a malicious or buggy
/// writer could.
struct Forge<'a> {
    repo: &'a Repository,
    data: PackWriter,
    trees: PackWriter,
}

impl<'a> Forge<'a> {
    fn new(repo: &'a Repository) -> Self {
        Forge { repo, data: PackWriter::new(BlobType::Data, 0), trees: PackWriter::new(BlobType::Tree, 0) }
    }

    fn data(&mut self, bytes: &[u8]) -> DataId {
        let keys = self.repo.keys();
        let id = keys.data_id(bytes);
        self.data.add(id.blob(), &blob::encode(keys, BlobType::Data, &id.blob(), bytes, 0), bytes.len());
        id
    }

    /// Stores a tree exactly as given (no validation, no sorting).
    fn tree(&mut self, nodes: Vec<Node>) -> TreeId {
        let keys = self.repo.keys();
        let bytes = Tree { version: 1, nodes }.encode();
        let id = keys.tree_id(&bytes);
        self.trees.add(id.blob(), &blob::encode(keys, BlobType::Tree, &id.blob(), &bytes, 0), bytes.len());
        id
    }

    fn snapshot(self, root: TreeId) -> String {
        let keys = self.repo.keys();
        let mut packs = Vec::new();
        for w in [self.data, self.trees] {
            if w.is_empty() {
                continue;
            }
            let p = w.finish(keys);
            self.repo.save_pack(&p).unwrap();
            packs.push(IndexPack { id: p.id, size: p.bytes.len() as u64, blobs: p.entries });
        }
        self.repo.save_index(&IndexFile { version: 1, supersedes: vec![], packs }).unwrap();
        // Through JSON, so fields added to snapshots later (with defaults) need no change here.
        let json = serde_json::json!({
            "version": 1,
            "time": "2026-01-01T00:00:00Z",
            "hostname": "evil",
            "username": "mallory",
            "paths": ["/evil"],
            "tags": [],
            "parent": null,
            "tree": root.to_hex(),
            "summary": Summary::default(),
            "program_version": "forged",
        });
        let snap = Snapshot::from_json("forged", json.to_string().as_bytes()).unwrap();
        self.repo.save_snapshot(&snap).unwrap().to_hex()
    }
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime_ns: 1_000_000_000_000_000_000,
        ctime_ns: 0,
        dev: 1,
        ino: 0,
        nlink: 1,
        size: 0,
        content: vec![],
        subtree: None,
        target: vec![],
    }
}

fn file(name: &[u8], content: DataId, size: usize) -> Node {
    Node { content: vec![content], size: size as u64, ..node(name, NodeKind::File) }
}

fn dir(name: &[u8], subtree: TreeId) -> Node {
    Node { subtree: Some(subtree), mode: 0o755, ..node(name, NodeKind::Dir) }
}

#[test]
fn a_malicious_tree_cannot_escape_the_target() {
    let sb = Sandbox::with_repo();
    let outside = sb.path("outside");
    fs::create_dir(&outside).unwrap();
    let target = sb.path("target");
    let payload = b"written outside the target!\n";

    let repo = open_repo(&sb);
    let mut evil = Vec::new();
    let abs_name = outside.join("escaped-absolute");
    type Case<'a> = (&'a str, Box<dyn Fn(&mut Forge) -> TreeId + 'a>);
    let cases: Vec<Case<'_>> = vec![
        (
            "a name with a slash",
            Box::new(|f| {
                let c = f.data(payload);
                f.tree(vec![file(b"../outside/escaped-slash", c, payload.len())])
            }),
        ),
        (
            "an absolute name",
            Box::new(|f| {
                let c = f.data(payload);
                f.tree(vec![file(abs_name.to_str().unwrap().as_bytes(), c, payload.len())])
            }),
        ),
        (
            "a folder named ..",
            Box::new(|f| {
                let c = f.data(payload);
                let inner = f.tree(vec![file(b"escaped-dotdot", c, payload.len())]);
                let outer = f.tree(vec![dir(b"outside", inner)]);
                f.tree(vec![dir(b"..", outer)])
            }),
        ),
        (
            "a .. deep inside",
            Box::new(|f| {
                let c = f.data(payload);
                let leaf = f.tree(vec![file(b"escaped-deep", c, payload.len())]);
                let out = f.tree(vec![dir(b"outside", leaf)]);
                let up2 = f.tree(vec![dir(b"..", out)]);
                let up1 = f.tree(vec![dir(b"..", up2)]);
                let a = f.tree(vec![dir(b"a", up1)]);
                f.tree(vec![dir(b"ok", a)])
            }),
        ),
        (
            "a file named .",
            Box::new(|f| {
                let c = f.data(payload);
                f.tree(vec![file(b".", c, payload.len())])
            }),
        ),
        (
            "an empty name",
            Box::new(|f| {
                let c = f.data(payload);
                f.tree(vec![file(b"", c, payload.len())])
            }),
        ),
        (
            "a NUL in a name",
            Box::new(|f| {
                let c = f.data(payload);
                f.tree(vec![file(b"x\0y", c, payload.len())])
            }),
        ),
        (
            "the same name twice (a symlink out, then a folder through it)",
            Box::new(|f| {
                let c = f.data(payload);
                let inner = f.tree(vec![file(b"escaped-through-link", c, payload.len())]);
                let mut link = node(b"d", NodeKind::Symlink);
                link.target = b"../outside".to_vec();
                f.tree(vec![link, dir(b"d", inner)])
            }),
        ),
    ];
    for (what, build) in &cases {
        let mut f = Forge::new(&repo);
        let root = build(&mut f);
        evil.push((*what, f.snapshot(root)));
    }
    drop(repo);

    let before_outside = listing(&outside);
    let before_root: BTreeSet<_> = fs::read_dir(&sb.root).unwrap().map(|e| e.unwrap().file_name()).collect();
    for (what, id) in &evil {
        let r = sb.cb().args(["restore", id, "--target"]).arg(&target).run();
        assert_ne!(r.code, 0, "restore of a tree with {what} succeeded");
        assert_ne!(r.code, 3);
        let line = r.one_error_line();
        assert!(line.contains("unsafe") || line.contains("damaged"), "{what}: {line}");
        assert_eq!(listing(&outside), before_outside, "{what}: wrote outside");
        assert!(files_under(&target).is_empty(), "{what}: files were written from a malicious tree");
        let r = sb.cb().args(["ls", id]).run();
        assert_ne!(r.code, 0, "ls of a tree with {what} succeeded");
    }
    let after_root: BTreeSet<_> = fs::read_dir(&sb.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "target" && n != "cache")
        .collect();
    assert_eq!(after_root, before_root);
    assert!(!abs_name.exists());
}

#[test]
fn symlinks_waiting_in_the_target_are_not_followed() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("f.txt"), b"snapshot content");
    write(&src.join("sub/g.txt"), b"g");
    sb.backup(&[&src]);

    // 1. The first folder of the restored path is a symlink to somewhere else.
    let outside = sb.path("outside");
    fs::create_dir(&outside).unwrap();
    let t1 = sb.path("t1");
    fs::create_dir(&t1).unwrap();
    let first = src.components().nth(1).unwrap().as_os_str().to_owned(); // "tmp"
    symlink(&outside, t1.join(&first)).unwrap();
    let r = sb.cb().args(["restore", "latest", "--target"]).arg(&t1).run();
    assert_eq!(r.code, 1, "restore through a symlinked folder: {r:?}");
    r.one_error_line();
    assert!(listing(&outside).len() == 1, "restore wrote through the symlink");

    // 2. A symlink deeper down, where a folder of the snapshot goes.
    let t2 = sb.path("t2");
    fs::create_dir_all(restored(&t2, &src)).unwrap();
    symlink(&outside, restored(&t2, &src).join("sub")).unwrap();
    let r = sb.cb().args(["restore", "latest", "--target"]).arg(&t2).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(listing(&outside).len() == 1, "restore wrote through the symlink");

    // 3. A symlink where a file of the snapshot goes: replaced or refused, never followed.
    let victim = outside.join("victim");
    fs::write(&victim, b"precious").unwrap();
    let t3 = sb.path("t3");
    fs::create_dir_all(restored(&t3, &src)).unwrap();
    let f = restored(&t3, &src).join("f.txt");
    symlink(&victim, &f).unwrap();
    let r = sb.cb().args(["restore", "latest", "--target"]).arg(&t3).run();
    assert_eq!(fs::read(&victim).unwrap(), b"precious", "restore wrote through a symlink");
    eprintln!("note: file-level symlink in the target: exit {}, {}", r.code, r.stderr.trim());
    if r.code == 0 {
        assert!(fs::symlink_metadata(&f).unwrap().is_file());
        assert_eq!(fs::read(&f).unwrap(), b"snapshot content");
    } else {
        assert!(r.stderr.contains("f.txt"), "{}", r.stderr);
    }
}

#[test]
fn restoring_two_snapshots_into_one_target_does_not_follow_the_first_ones_symlinks() {
    // Snapshot 1 has `d` as a symlink out and `f` as a symlink to a file outside; snapshot 2 has
    // a folder `d` and a file `f`. Restoring 1 then 2 into the same target must not write
    // through the links restore itself made.
    let sb = Sandbox::with_repo();
    let outside = sb.path("outside");
    fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    fs::write(&victim, b"precious").unwrap();
    let src = sb.path("src");
    fs::create_dir(&src).unwrap();
    symlink(&outside, src.join("d")).unwrap();
    symlink(&victim, src.join("f")).unwrap();
    let s1 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    fs::remove_file(src.join("d")).unwrap();
    fs::remove_file(src.join("f")).unwrap();
    write(&src.join("d/inner.txt"), b"inner");
    write(&src.join("f"), b"new f");
    let s2 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();

    let t = sb.path("t");
    sb.restore(&s1, &t);
    let r = sb.cb().args(["restore", &s2, "--target"]).arg(&t).run();
    assert_eq!(fs::read(&victim).unwrap(), b"precious", "wrote through f");
    assert!(!outside.join("inner.txt").exists(), "wrote through d");
    assert_eq!(listing(&outside).len(), 2);
    eprintln!("note: second restore over the first: exit {}, {}", r.code, r.stderr.trim());
    if r.code == 0 {
        assert_same_tree(&src, &restored(&t, &src));
    } else {
        r.one_error_line();
    }
}

#[test]
fn a_missing_pack_names_every_file_it_held() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = sb.path("src");
    for i in 0..5 {
        write(&src.join(format!("f{i}.bin")), &random_bytes(500 + i, 1_200_000));
    }
    write(&src.join("small.txt"), b"small");
    sb.backup(&[&src]);

    let repo = open_repo(&sb);
    let (_, snap) = repo.find_snapshot("latest", |_| true).unwrap();
    let files = snapshot_files(&repo, &snap);
    let gone = repo.index().get(&files[&src.join("f3.bin")][0].blob()).unwrap().pack;
    let expect_lost: BTreeSet<PathBuf> = files
        .iter()
        .filter(|(_, blobs)| blobs.iter().any(|b| repo.index().get(&b.blob()).unwrap().pack == gone))
        .map(|(p, _)| p.clone())
        .collect();
    fs::remove_file(pack_path(&sb, &repo.index().pack_id(gone))).unwrap();
    drop(repo);

    let t = sb.path("t");
    let r = sb.cb().args(["restore", "latest", "--json", "--target"]).arg(&t).run().code(1);
    let v = r.json();
    let named: BTreeSet<PathBuf> =
        v["errors"].as_array().unwrap().iter().map(|e| PathBuf::from(e["path"].as_str().unwrap())).collect();
    assert_eq!(named, expect_lost, "{v}");
    for p in files.keys() {
        let out = restored(&t, p);
        if expect_lost.contains(p) {
            assert!(fs::symlink_metadata(&out).is_err(), "{} left behind", out.display());
        } else {
            assert!(same_content(p, &out), "{} not restored intact", out.display());
        }
    }
}
