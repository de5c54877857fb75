//! Exact round trips: everything a file system can hold that clawback promises to keep.

use crate::support::*;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

const MIB: usize = 1 << 20;
const SPARSE_LEN: u64 = 64 << 20;

/// 2001-09-09T01:46:40.123456789Z
const T2001: (i64, u32) = (1_000_000_000, 123_456_789);

/// Builds the tree of awkward things under `root` (which must not exist).
pub fn build_zoo(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let f = |rel: &str| root.join(rel);

    // Sizes.
    write(&f("empty"), b"");
    write(&f("one-byte"), b"x");
    write(&f("random.bin"), &random_bytes(1, 20 * MIB + 12345));
    let line = b"2026-01-01T00:00:00Z INFO gateway: heartbeat ok, 0 sessions, all quiet\n";
    write(&f("repetitive.log"), &line.repeat(20 * MIB / line.len()));
    {
        // Sparse: data at the start, a 64 MiB hole, data at the end.
        use std::os::unix::fs::FileExt;
        let p = f("sparse.img");
        let file = fs::File::create(&p).unwrap();
        file.write_all_at(&random_bytes(2, 4096), 0).unwrap();
        file.write_all_at(&random_bytes(3, 4096), SPARSE_LEN - 4096).unwrap();
    }
    // Duplicates: the same content under three names, and two copies of the big file.
    let dup = random_bytes(4, 300_000);
    for n in ["dup/a.bin", "dup/b.bin", "dup/deeper/c.bin"] {
        write(&f(n), &dup);
    }
    fs::copy(f("random.bin"), f("dup/random-copy.bin")).unwrap();

    // Deep nesting: 50 levels.
    let mut deep = f("deep");
    for i in 0..50 {
        deep.push(format!("level-{i:02}"));
    }
    write(&deep.join("bottom.txt"), b"fifty levels down\n");

    // Names: unicode (NFC and NFD spellings are different names), non-UTF-8 bytes, and
    // characters shells and parsers trip over.
    let names = f("names");
    fs::create_dir_all(&names).unwrap();
    let byte_names: &[&[u8]] = &[
        "héllo wörld ✓ 日本語.txt".as_bytes(),
        "🦀 crab".as_bytes(),
        "caf\u{e9}".as_bytes(),
        "cafe\u{301}".as_bytes(),
        b"latin1-\xe9t\xe9",
        b"\xff\xfe\xfd",
        b"invalid-\xc3(-utf8",
        b"it's \"quoted\" `back`",
        b"with space  and\ttab",
        b"line\nbreak",
        b"back\\slash",
        b" leading space",
        b"trailing space ",
        b"-dash-first",
        b"*glob?[x]{a,b}",
        b"#hash !bang $dollar",
        b"..dots",
        b"...",
        b".hidden",
    ];
    for (i, n) in byte_names.iter().enumerate() {
        write(&names.join(os(n)), format!("name {i}\n").as_bytes());
    }
    let weird_dir = names.join(os(b"dir \xff\n\"x\""));
    write(&weird_dir.join(os(b"inner \xfe")), b"inside a weird folder\n");

    // Symlinks: relative, dangling, absolute, to a folder, a loop, a non-UTF-8 target.
    let links = f("links");
    fs::create_dir_all(&links).unwrap();
    symlink("../one-byte", links.join("relative")).unwrap();
    symlink("does/not/exist", links.join("dangling")).unwrap();
    symlink("/nonexistent/absolute/target", links.join("absolute-dangling")).unwrap();
    symlink("/etc", links.join("absolute")).unwrap();
    symlink("../deep", links.join("to-dir")).unwrap();
    symlink("loop", links.join("loop")).unwrap();
    symlink(os(b"\xff-target"), links.join("bytes-target")).unwrap();
    set_mtime(&links.join("relative"), T2001.0, T2001.1);

    // Hard links: a group of three across folders, and a group of two.
    let hard = f("hard");
    write(&hard.join("h1"), b"one inode, three names\n");
    fs::create_dir_all(hard.join("sub")).unwrap();
    fs::hard_link(hard.join("h1"), hard.join("h2")).unwrap();
    fs::hard_link(hard.join("h1"), hard.join("sub/h3")).unwrap();
    write(&hard.join("g1"), &random_bytes(5, 70_000));
    fs::hard_link(hard.join("g1"), hard.join("sub/g2")).unwrap();

    // Modes.
    let modes = f("modes");
    for (n, m) in [
        ("f0600", 0o600),
        ("f0755", 0o755),
        ("f0444", 0o444),
        ("f0640", 0o640),
        ("f4755-setuid", 0o4755),
        ("f2755-setgid", 0o2755),
    ] {
        write(&modes.join(n), n.as_bytes());
        chmod(&modes.join(n), m);
    }
    if is_root() {
        // Root reads it anyway; as another user this would be an unreadable file (exit 3).
        write(&modes.join("f0000"), b"no permissions at all");
        chmod(&modes.join("f0000"), 0o000);
        let owned = modes.join("owned-1234-5678");
        write(&owned, b"someone else's");
        std::os::unix::fs::lchown(&owned, Some(1234), Some(5678)).unwrap();
    }
    for (n, m) in [("d2775-setgid", 0o2775), ("d1777-sticky", 0o1777), ("d0700", 0o700), ("d0555", 0o555)] {
        let d = modes.join(n);
        write(&d.join("inside"), n.as_bytes());
        chmod(&d, m);
    }

    // Empty folders, nested and not.
    fs::create_dir_all(f("empty-dirs/a/b/c")).unwrap();
    fs::create_dir_all(f("empty-dirs/lonely")).unwrap();
    chmod(&f("empty-dirs/lonely"), 0o700);

    // Old, future and pre-1970 mtimes with nanoseconds; applied to folders last.
    let times = f("times");
    for (n, s, ns) in [
        ("y2001", T2001.0, T2001.1),
        ("y1969", -86_400 * 200, 5u32),
        ("y2100", 4_102_444_800, 999_999_999),
        ("epoch", 0, 0),
    ] {
        write(&times.join(n), n.as_bytes());
        set_mtime(&times.join(n), s, ns);
    }
    set_mtime(&f("empty-dirs/lonely"), T2001.0, 1);
    set_mtime(&f("empty-dirs/a/b/c"), T2001.0, 2);
    set_mtime(&times, T2001.0, 3);
    set_mtime(&f("modes/d0555"), T2001.0, 4);
}

#[test]
fn exact_round_trip_of_everything_a_tree_can_hold() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    build_zoo(&src);

    let b = sb.backup(&[&src]);
    assert!(b["snapshot_id"].is_string(), "{b}");
    assert_eq!(b["skipped"].as_array().map(|a| a.len()), Some(0), "{b}");
    // Deduplication inside one backup: three copies of the 300 KB file, two of the 20 MB file,
    // and the 64 MiB of zeros in the sparse file cost almost nothing.
    let read = u(&b, "bytes_read");
    let added = u(&b, "bytes_added");
    assert!(read > 125 * MIB as u64, "bytes_read {read}");
    assert!(added < 45 * MIB as u64, "bytes_added {added}: duplicates and zeros should be stored once");

    let target = sb.path("target");
    let r = sb.restore("latest", &target);
    assert!(r.stderr.is_empty(), "restore printed on stderr: {}", r.stderr);
    let out = restored(&target, &src);
    assert_same_tree(&src, &out);

    // The hole stayed a hole.
    let md_src = fs::metadata(src.join("sparse.img")).unwrap();
    let md = fs::metadata(out.join("sparse.img")).unwrap();
    assert_eq!(md.len(), SPARSE_LEN);
    if md_src.blocks() * 512 < SPARSE_LEN / 2 {
        assert!(
            md.blocks() * 512 <= 4 << 20,
            "restored sparse file allocates {} bytes of {SPARSE_LEN}",
            md.blocks() * 512
        );
    } else {
        eprintln!("note: this file system does not keep holes; sparse allocation not checked");
    }

    // Hard links are links again, not copies.
    let h1 = fs::metadata(out.join("hard/h1")).unwrap();
    assert_eq!(h1.nlink(), 3);
    assert_eq!(h1.ino(), fs::metadata(out.join("hard/sub/h3")).unwrap().ino());
    // Duplicates (different inodes in the source) stay separate files.
    assert_ne!(fs::metadata(out.join("dup/a.bin")).unwrap().ino(), fs::metadata(out.join("dup/b.bin")).unwrap().ino());
    // Spot checks that cannot hide behind the generic comparison.
    assert_eq!(fs::read_link(out.join("links/bytes-target")).unwrap().as_os_str().as_bytes(), b"\xff-target");
    assert_eq!(fs::read(out.join("names").join(os(b"line\nbreak"))).unwrap(), b"name 9\n");
    let y1969 = fs::symlink_metadata(out.join("times/y1969")).unwrap();
    assert_eq!((y1969.mtime(), y1969.mtime_nsec()), (-86_400 * 200, 5));

    // Restoring again into the same target overwrites cleanly and still matches.
    sb.restore("latest", &target);
    assert_same_tree(&src, &out);
}

fn small_tree(root: &Path) {
    write(&root.join("keep/a.txt"), b"a");
    write(&root.join("keep/sub/b.txt"), b"bb");
    write(&root.join("keep/sub/skip.tmp"), b"tmp");
    write(&root.join("other/c.txt"), b"ccc");
    write(&root.join("top.txt"), b"top");
}

#[test]
fn selective_restore_and_dry_run() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    small_tree(&src);
    sb.backup(&[&src]);
    let abs = |rel: &str| src.join(rel).to_string_lossy().into_owned();

    // --include one folder, --exclude a pattern inside it.
    let t = sb.path("t-include");
    sb.cb()
        .args(["restore", "latest", "--include", &abs("keep"), "--exclude", "*.tmp"])
        .arg("--target")
        .arg(&t)
        .run()
        .ok();
    let out = restored(&t, &src);
    let got: Vec<PathBuf> = listing(&out).into_iter().collect();
    let want: Vec<PathBuf> =
        ["", "keep", "keep/a.txt", "keep/sub", "keep/sub/b.txt"].iter().map(PathBuf::from).collect();
    assert_eq!(got, want);
    assert_eq!(fs::read(out.join("keep/sub/b.txt")).unwrap(), b"bb");

    // --dry-run writes nothing, not even the target folder.
    let t = sb.path("t-dry");
    sb.cb().args(["restore", "latest", "--dry-run", "--target"]).arg(&t).run().ok();
    assert!(!t.exists(), "--dry-run created {}", t.display());

    // A single file backed up on its own comes back on its own.
    let one = src.join("other/c.txt");
    let b = sb.backup(&[&one]);
    let id = b["snapshot_id"].as_str().unwrap().to_string();
    let t = sb.path("t-one");
    sb.restore(&id, &t);
    let back = restored(&t, &one);
    assert_eq!(fs::read(&back).unwrap(), b"ccc");
    assert_eq!(listing(&restored(&t, one.parent().unwrap())), ["", "c.txt"].iter().map(PathBuf::from).collect());
}

#[test]
fn relative_paths_several_paths_and_excludes() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    small_tree(&src);
    write(&src.join("keep/skip-this-dir/dep/index.js"), b"module");
    write(&src.join("other/old.bak"), b"backup copy");
    let second = sb.path("second");
    write(&second.join("x.txt"), b"x");
    let exfile = sb.path("excludes.txt");
    fs::write(&exfile, "# comment\n\n*.bak\n").unwrap();

    // Relative paths, resolved against the working folder; `..` cleaned lexically.
    let r = sb
        .cb()
        .current_dir(&src)
        .args(["backup", "--json", ".", "../second/"])
        .args(["--exclude", "skip-this-dir", "--exclude", "*.tmp", "--exclude-file"])
        .arg(&exfile)
        .run()
        .ok();
    let v = r.json();
    let snaps = sb.snapshots();
    assert_eq!(snaps[0]["id"], v["snapshot_id"]);
    let mut want_paths = vec![src.to_str().unwrap().to_string(), second.to_str().unwrap().to_string()];
    want_paths.sort();
    assert_eq!(snaps[0]["paths"], serde_json::json!(want_paths));

    let t = sb.path("t");
    sb.restore("latest", &t);
    let got: Vec<PathBuf> = listing(&restored(&t, &src)).into_iter().collect();
    let want: Vec<PathBuf> =
        ["", "keep", "keep/a.txt", "keep/sub", "keep/sub/b.txt", "other", "other/c.txt", "top.txt"]
            .iter()
            .map(PathBuf::from)
            .collect();
    assert_eq!(got, want, "excluded entries were backed up");
    assert_eq!(fs::read(restored(&t, &second).join("x.txt")).unwrap(), b"x");
}

#[test]
fn the_repository_and_the_cache_are_not_backed_up_into_themselves() {
    // Backing up a folder that holds the repository and the cache (e.g. all of HOME): neither
    // may end up in the snapshot, whether the cache is named or the default one.
    let sb = Sandbox::with_repo();
    write(&sb.path("data/file.txt"), b"data");
    for named_cache in [true, false] {
        let mut c = if named_cache {
            sb.cb()
        } else {
            sb.bare().arg("--repo").arg(&sb.repo).env("CLAWBACK_PASSWORD", PASSWORD)
        };
        c = c.args(["backup", "--json"]).arg(&sb.root);
        let v = c.run().ok().json();
        assert_eq!(v["errors"], serde_json::json!([]), "{v}");
        let ls = sb.cb().args(["ls", "latest"]).arg(&sb.root).run().ok();
        assert!(ls.stdout.contains("data/file.txt"), "{}", ls.stdout);
        let repo = sb.repo.to_str().unwrap();
        let cache = sb.cache.to_str().unwrap();
        let xdg_cache = sb.path("xdg/cache/clawback");
        for line in ls.stdout.lines() {
            assert!(!line.starts_with(&format!("{repo}/")), "the repository was backed up: {line}");
            assert!(!(named_cache && line.starts_with(&format!("{cache}/"))), "the named cache was backed up: {line}");
            assert!(!line.starts_with(&format!("{}/", xdg_cache.display())), "the default cache was backed up: {line}");
        }
    }
}

/// The comparison every round trip relies on must itself catch each kind of difference.
#[test]
fn the_tree_comparison_catches_every_kind_of_difference() {
    fn build(root: &Path) {
        write(&root.join("d/a.txt"), b"aaaa");
        write(&root.join("h1"), b"linked");
        fs::hard_link(root.join("h1"), root.join("d/h2")).unwrap();
        symlink("d/a.txt", root.join("l")).unwrap();
        fs::create_dir(root.join("e")).unwrap();
        settle(root);
    }
    fn settle(root: &Path) {
        for (i, p) in ["d/a.txt", "h1", "l", "e", "d", ""].iter().enumerate() {
            if fs::symlink_metadata(root.join(p)).is_ok() {
                set_mtime(&root.join(p), T2001.0, i as u32);
            }
        }
    }
    type Mutation = fn(&Path);
    let mutations: Vec<(&str, Mutation)> = vec![
        ("content", |r| fs::write(r.join("d/a.txt"), b"aaab").unwrap()),
        ("mode", |r| chmod(&r.join("d/a.txt"), 0o600)),
        ("mtime ns", |r| set_mtime(&r.join("d/a.txt"), T2001.0, 77)),
        ("symlink target", |r| {
            fs::remove_file(r.join("l")).unwrap();
            symlink("d/h2", r.join("l")).unwrap();
        }),
        ("hard link", |r| {
            fs::remove_file(r.join("d/h2")).unwrap();
            fs::write(r.join("d/h2"), b"linked").unwrap();
        }),
        ("missing empty dir", |r| fs::remove_dir(r.join("e")).unwrap()),
        ("extra file", |r| fs::write(r.join("e/new"), b"").unwrap()),
        ("kind", |r| {
            fs::remove_dir(r.join("e")).unwrap();
            fs::write(r.join("e"), b"").unwrap();
        }),
    ];
    let sb = Sandbox::new();
    let a = sb.path("a");
    build(&a);
    let same = sb.path("same");
    build(&same);
    assert_same_tree(&a, &same);
    for (i, (what, m)) in mutations.iter().enumerate() {
        let b = sb.path(&format!("b{i}"));
        build(&b);
        m(&b);
        settle(&b);
        if *what == "mtime ns" {
            m(&b); // settling reset it
        }
        let r = std::panic::catch_unwind(|| assert_same_tree(&a, &b));
        assert!(r.is_err(), "a difference in {what} went unnoticed");
    }
}
