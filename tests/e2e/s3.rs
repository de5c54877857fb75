//! The S3 backend against a real S3-compatible server (SeaweedFS, see `seaweed.rs`): init with
//! `--create-bucket`, backup, restore, `check --read-data`, forget, prune; the errors people hit (wrong
//! keys, missing bucket, unreachable endpoint); the server killed in the middle of a backup; the
//! number of requests an incremental backup makes; the backend contract itself (no overwrite,
//! ranged reads, multipart, paginated listing). Also the fault-injecting decorator
//! (`CLAWBACK_FAULTS`) over a local repository: transient faults are ridden through, damaged
//! reads never pass for good data.

use crate::seaweed::{s3cb, Seaweed, ACCESS_KEY, SECRET_KEY};
use crate::support::*;
use clawback_engine::backend::s3::S3Backend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::format::id::{IndexId, PackId, SnapshotId};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// The snapshot id whose hex is `i` written in 64 digits.
fn numbered(i: u32) -> SnapshotId {
    SnapshotId::from_hex(&format!("{i:064x}")).unwrap()
}

fn s3_init(sb: &Sandbox, url: &str, extra: &[&str]) {
    s3cb(sb, url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .args(extra)
        .run()
        .ok();
}

/// A small tree: text, a few hundred KiB of random data, an empty file, a nested folder.
fn make_tree(root: &Path, seed: u64) {
    write(&root.join("notes.txt"), format!("notes {seed}\n").as_bytes());
    write(&root.join("blob.bin"), &random_bytes(seed, 700_000));
    write(&root.join("empty"), b"");
    write(&root.join("a/b/deep.txt"), b"deep\n");
    write(&root.join("a/c.bin"), &random_bytes(seed + 100, 120_000));
}

fn backup_json(cmd: Cmd, src: &Path) -> serde_json::Value {
    let v = cmd.args(["backup", "--json"]).arg(src).run().ok().json();
    assert!(v["errors"].as_array().is_some_and(|e| e.is_empty()), "backup reported errors: {v}");
    v
}

fn sid(v: &serde_json::Value) -> String {
    v["snapshot_id"].as_str().expect("snapshot_id").to_string()
}

fn total_requests(v: &serde_json::Value) -> u64 {
    v["requests"].as_object().expect("requests object").values().map(|n| n.as_u64().unwrap()).sum()
}

#[test]
fn s3_init_backup_restore_check_forget() {
    let srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("roundtrip/team/host-a");
    s3_init(&sb, &url, &["--pack-size", "1"]);
    // A second init finds the repository.
    let r = s3cb(&sb, &url).args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().code(1);
    assert!(r.one_error_line().contains("already exists"), "{}", r.stderr);

    let src = sb.path("src");
    make_tree(&src, 1);
    // Only in the first snapshot: its packs are what prune gives back.
    write(&src.join("old.bin"), &random_bytes(77, 1_500_000));
    let first = sid(&backup_json(s3cb(&sb, &url), &src));
    fs::remove_file(src.join("old.bin")).unwrap();
    let v1 = src.join("notes.txt");
    let kept_v1 = fs::read(&v1).unwrap();
    write(&v1, b"changed\n");
    write(&src.join("new.bin"), &random_bytes(9, 300_000));
    let second = sid(&backup_json(s3cb(&sb, &url), &src));

    let t = sb.path("t-latest");
    s3cb(&sb, &url).args(["restore", "latest", "--verify", "--target"]).arg(&t).run().ok();
    assert_same_tree(&src, &restored(&t, &src));
    let t1 = sb.path("t-first");
    s3cb(&sb, &url).args(["restore", &first, "--verify", "--target"]).arg(&t1).run().ok();
    assert_eq!(fs::read(restored(&t1, &src).join("notes.txt")).unwrap(), kept_v1);
    assert!(!restored(&t1, &src).join("new.bin").exists());

    // Another machine (no cache) reads the same repository.
    let other = s3cb(&sb, &url).arg("--no-cache").args(["snapshots", "--json"]).run();
    assert_eq!(other.ok().json().as_array().unwrap().len(), 2);

    let c = s3cb(&sb, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["packs_checked"].as_u64().unwrap() >= 2, "{c}");

    let f = s3cb(&sb, &url).args(["forget", "--keep-last", "1", "--json"]).run().ok().json();
    assert_eq!(f["remove"], serde_json::json!([first]), "{f}");
    assert_eq!(f["keep"], serde_json::json!([second]), "{f}");
    let snaps = s3cb(&sb, &url).args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    s3cb(&sb, &url).args(["check"]).run().ok();
    let packs_before = S3Backend::new(srv.options("roundtrip", "team/host-a")).unwrap().list(Kind::Pack).unwrap().len();
    let p = s3cb(&sb, &url).args(["prune", "--json"]).run().ok().json();
    assert!(p["packs_deleted"].as_u64().unwrap() >= 1, "{p}");
    assert_eq!(p["packs_waiting"], 0, "{p}");
    let c = s3cb(&sb, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
    let t2 = sb.path("t-after-prune");
    s3cb(&sb, &url).args(["restore", "latest", "--verify", "--target"]).arg(&t2).run().ok();
    assert_same_tree(&src, &restored(&t2, &src));

    // The objects sit where the format spec says: <prefix>/config, <prefix>/data/<id>, ...
    let be = S3Backend::new(srv.options("roundtrip", "team/host-a")).unwrap();
    assert_eq!(be.list(Kind::Config).unwrap().len(), 1);
    assert!(be.list(Kind::Pack).unwrap().len() < packs_before, "prune deleted packs in the bucket");
    assert!(be.list(Kind::Lock).unwrap().is_empty(), "leases released");
    assert!(be.list(Kind::Condemned).unwrap().is_empty(), "no condemned record left");
    assert_eq!(be.list(Kind::Snapshot).unwrap().len(), 1);
    assert!(!be.list(Kind::Pack).unwrap().is_empty());
    assert!(!be.list(Kind::Index).unwrap().is_empty());
    assert_eq!(be.list(Kind::Key).unwrap().len(), 1);
    // Nothing outside the prefix.
    let root = S3Backend::new(srv.options("roundtrip", "")).unwrap();
    assert!(root.list(Kind::Pack).unwrap().is_empty());
}

#[test]
fn s3_repository_from_the_config_storage_section() {
    let srv = Seaweed::start();
    let sb = Sandbox::new();
    let cfg = sb.path("clawback.json5");
    write(
        &cfg,
        format!(
            r#"{{ storage: {{ provider: "s3", endpoint: "{}", bucket: "from-config", prefix: "agents/one",
                 region: "auto", accessKeyId: "${{MY_S3_KEY}}", secretAccessKey: "${{MY_S3_SECRET}}",
                 storageClass: "STANDARD_IA" }} }}"#,
            srv.endpoint
        )
        .as_bytes(),
    );
    let cb = || {
        sb.bare()
            .arg("--config")
            .arg(&cfg)
            .arg("--cache-dir")
            .arg(&sb.cache)
            .env("CLAWBACK_PASSWORD", PASSWORD)
            .env("MY_S3_KEY", ACCESS_KEY)
            .env("MY_S3_SECRET", SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
    };
    // Before init: the bucket is missing, and the hint says how to make it.
    let r = cb().args(["snapshots"]).run().code(10);
    assert!(r.one_error_line().contains("init --create-bucket"), "{}", r.stderr);
    cb().args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();
    let src = sb.path("src");
    make_tree(&src, 2);
    backup_json(cb(), &src);
    let t = sb.path("t");
    cb().args(["restore", "latest", "--verify", "--target"]).arg(&t).run().ok();
    assert_same_tree(&src, &restored(&t, &src));
    // The secrets never show, even with -v.
    let r = cb().args(["-v", "snapshots"]).run().ok();
    assert!(!r.stderr.contains(SECRET_KEY) && !r.stdout.contains(SECRET_KEY));
    assert!(r.stderr.contains("requests to s3:"), "{}", r.stderr);
}

#[test]
fn s3_wrong_keys_missing_bucket_and_bad_urls_are_clear() {
    let srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("keys-test");
    s3_init(&sb, &url, &[]);

    let r = s3cb(&sb, &url).env("AWS_SECRET_ACCESS_KEY", "not-the-secret").args(["snapshots"]).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains("secret access key is wrong") && line.contains("AWS_SECRET_ACCESS_KEY"), "{line}");
    assert!(!line.contains("not-the-secret"));

    let r = s3cb(&sb, &url).env("AWS_ACCESS_KEY_ID", "NOSUCHKEY").args(["snapshots"]).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains("access key id is not known") && line.contains("AWS_ACCESS_KEY_ID"), "{line}");

    // A bucket that does not exist: exit 10 (no repository) and the way to make it.
    let missing = srv.url("no-such-bucket/x");
    let r = s3cb(&sb, &missing).args(["snapshots"]).run().code(10);
    let line = r.one_error_line();
    assert!(line.contains("no-such-bucket") && line.contains("clawback init --create-bucket"), "{line}");
    let r = s3cb(&sb, &missing).args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).run();
    assert_ne!(r.code, 0);
    assert!(r.one_error_line().contains("--create-bucket"), "{}", r.stderr);
    // A bucket that exists but holds no repository: exit 10 too.
    let r = s3cb(&sb, &srv.url("keys-test/elsewhere")).args(["snapshots"]).run().code(10);
    assert!(r.one_error_line().contains("does not exist"), "{}", r.stderr);

    // Malformed locations are usage errors.
    for bad in ["s3:ftp://127.0.0.1/b", "s3:http://127.0.0.1:9/", "s3://", "s3:http://127.0.0.1:9/Bad_Bucket!"] {
        let r = s3cb(&sb, bad).args(["snapshots"]).run().code(2);
        assert!(r.one_error_line().contains("s3:"), "{bad}: {}", r.stderr);
    }
    // --create-bucket means nothing for a folder.
    let r = sb.cb().args(["init", "--create-bucket"]).run().code(2);
    assert!(r.one_error_line().contains("S3"), "{}", r.stderr);
}

#[test]
fn s3_unreachable_endpoint_fails_fast_and_clearly() {
    let sb = Sandbox::new();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("s3:http://127.0.0.1:{port}/bucket");
    let start = Instant::now();
    let r = s3cb(&sb, &url).args(["snapshots"]).run().code(1);
    let took = start.elapsed();
    let line = r.one_error_line();
    assert!(line.contains("cannot reach the S3 endpoint") && line.contains(&port.to_string()), "{line}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn s3_incremental_backup_makes_few_requests() {
    let srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("requests");
    s3_init(&sb, &url, &[]);
    let src = sb.path("src");
    make_tree(&src, 3);
    let first = backup_json(s3cb(&sb, &url), &src);
    assert!(total_requests(&first) > 0, "{first}");
    // One file changes: one new data pack, one tree pack, one index, one snapshot, plus the
    // backup lease (written, deleted), condemned records and index files listed once under it,
    // and the open: config, the key file the cache remembers (no key listing), snapshot listing.
    // The parent's trees come from the cache the first backup filled: no pack reads. 11 in all
    // (14 before the index was loaded only under the lease and the key file was remembered).
    write(&src.join("notes.txt"), b"one change\n");
    let inc = backup_json(s3cb(&sb, &url), &src);
    let n = total_requests(&inc);
    eprintln!("requests for an incremental backup: {n} {}", inc["requests"]);
    assert!(n <= 11, "an incremental backup made {n} requests: {}", inc["requests"]);
    assert!(inc["requests"]["list"].as_u64().unwrap() <= 3, "keys listed or index listed twice: {}", inc["requests"]);
    assert!(inc["requests"]["put"].as_u64().unwrap() <= 6, "{}", inc["requests"]);
    assert!(inc["requests"]["get"].as_u64().unwrap() <= 2, "parent trees read from the store: {}", inc["requests"]);
    assert!(inc["requests"].get("head").is_none(), "{}", inc["requests"]);
    // -v reports them on stderr.
    let r = s3cb(&sb, &url).args(["-v", "snapshots"]).run().ok();
    assert!(r.stderr.contains("requests to s3:") && r.stderr.contains("list"), "{}", r.stderr);
}

/// A host's two-hourly run costs what it changed, not what the fleet added: after another host
/// joined the bucket, an unchanged run and one with a small change read none of its index files;
/// new data past 8 MiB takes them in, so a big file the other host stored already is stored again
/// only up to about that much.
#[test]
fn s3_a_hosts_ordinary_run_reads_no_index_file_another_host_added() {
    let srv = Seaweed::start();
    let url = srv.url("joined");
    let (a, b) = (Sandbox::new(), Sandbox::new());
    s3_init(&a, &url, &[]);
    let run = |sb: &Sandbox, host: &str, src: &Path| {
        let v = s3cb(sb, &url).args(["backup", "--json", "--host", host]).arg(src).run().ok().json();
        assert!(v["errors"].as_array().is_some_and(|e| e.is_empty()), "backup reported errors: {v}");
        v
    };
    let gets = |v: &serde_json::Value| v["requests"]["get"].as_u64().unwrap_or(0);
    let (src_a, src_b) = (a.path("src"), b.path("src"));
    make_tree(&src_a, 1);
    run(&a, "a", &src_a);
    let unchanged_alone = gets(&run(&a, "a", &src_a));
    write(&src_a.join("notes.txt"), b"a change\n");
    let changed_alone = gets(&run(&a, "a", &src_a));
    // b joins with its own files and a 24 MiB file: one snapshot, an index file of its own.
    make_tree(&src_b, 2);
    let big = random_bytes(77, 24 << 20);
    write(&src_b.join("model.bin"), &big);
    run(&b, "b", &src_b);
    // a's unchanged run reads b's snapshot (to know it is not a's), not b's index file.
    let v = run(&a, "a", &src_a);
    assert_eq!(gets(&v), unchanged_alone + 1, "unchanged run after b joined: {}", v["requests"]);
    write(&src_a.join("notes.txt"), b"a second change\n");
    let v = run(&a, "a", &src_a);
    assert_eq!(gets(&v), changed_alone, "run with a small change after b joined: {}", v["requests"]);
    // New data: after 8 MiB of it, b's index file is read and the rest is found there.
    write(&src_a.join("model.bin"), &big);
    let v = run(&a, "a", &src_a);
    let stored = v["bytes_stored"].as_u64().unwrap();
    assert!(gets(&v) > changed_alone, "b's index file was not read: {}", v["requests"]);
    assert!(stored < 12 << 20, "{stored} bytes stored of a 24 MiB file b had stored: {v}");
    let c = s3cb(&a, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
    let t = a.path("restored");
    s3cb(&a, &url).args(["restore", "latest", "--host", "a", "--target"]).arg(&t).run().ok();
    assert_eq!(std::fs::read(t.join(src_a.strip_prefix("/").unwrap()).join("model.bin")).unwrap(), big);
}

#[test]
fn s3_server_killed_mid_backup_then_restarted() {
    let mut srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("crash");
    // Small packs, so the backup is many uploads; a rate limit, so it is still running when the
    // server dies.
    s3_init(&sb, &url, &["--pack-size", "1"]);
    let src = sb.path("src");
    make_tree(&src, 4);
    let first = sid(&backup_json(s3cb(&sb, &url), &src));
    let big = sb.path("big");
    for i in 0..12 {
        write(&big.join(format!("f{i}.bin")), &random_bytes(50 + i, 1_000_000));
    }
    let cmd = s3cb(&sb, &url).args(["--limit-upload", "2048", "backup", "--json"]).arg(&big);
    let h = std::thread::spawn(move || cmd.run());
    std::thread::sleep(Duration::from_millis(2500));
    srv.kill();
    std::thread::sleep(Duration::from_millis(1500));
    srv.restart();
    let r = h.join().unwrap();
    eprintln!("backup across the server restart: exit {}, {}", r.code, r.stderr.trim());
    // Ridden through by retries, or a clean failure: never a crash, never a half-written snapshot.
    if r.code != 0 {
        assert_eq!(r.code, 1, "{r:?}");
        r.one_error_line();
    }
    let c = s3cb(&sb, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
    // The next backup succeeds, and every snapshot restores exactly.
    let last = sid(&backup_json(s3cb(&sb, &url), &big));
    let t = sb.path("t-big");
    s3cb(&sb, &url).args(["restore", &last, "--verify", "--target"]).arg(&t).run().ok();
    assert_same_tree(&big, &restored(&t, &big));
    let t1 = sb.path("t-first");
    s3cb(&sb, &url).args(["restore", &first, "--verify", "--target"]).arg(&t1).run().ok();
    assert_same_tree(&src, &restored(&t1, &src));
}

#[test]
fn s3_backend_contract() {
    let srv = Seaweed::start();
    let mut o = srv.options("contract", "p");
    o.create_bucket = true;
    // Small parts, so a 12 MB object goes up in three.
    o.multipart_threshold = 5 << 20;
    o.part_size = 5 << 20;
    let be = S3Backend::new(o).unwrap();
    be.create().unwrap();

    let big = random_bytes(7, 12 << 20);
    let name = ObjectName::of(&PackId([0xab; 32]));
    be.write(&name, &big).unwrap();
    assert_eq!(be.read(&name).unwrap(), big);
    let (off, len) = ((5 << 20) - 100, 300u64);
    assert_eq!(be.read_range(&name, off, len).unwrap(), &big[off as usize..(off + len) as usize]);
    assert_eq!(be.size(&name).unwrap(), big.len() as u64);
    assert!(be.requests().iter().any(|(k, n)| *k == "multipart" && *n >= 4), "{:?}", be.requests());
    // Never overwritten: a second write of the name is refused (config too, which is checked
    // first with a HEAD).
    let e = be.write(&name, b"other").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert_eq!(be.read(&name).unwrap(), big);
    be.write(&ObjectName::config(), b"c1").unwrap();
    assert_eq!(be.write(&ObjectName::config(), b"c2").unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    let small = ObjectName::of(&IndexId([0xcd; 32]));
    be.write(&small, b"index").unwrap();
    assert_eq!(be.write(&small, b"index").unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    assert!(be.read_range(&name, big.len() as u64 - 10, 20).is_err());
    assert_eq!(be.read(&ObjectName::of(&SnapshotId([0xef; 32]))).unwrap_err().kind(), std::io::ErrorKind::NotFound);

    // Listings page through more than 1000 objects.
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let be = &be;
            s.spawn(move || {
                for i in (t..1010).step_by(8) {
                    be.write(&ObjectName::of(&numbered(i)), b"s").unwrap();
                }
            });
        }
    });
    let listed = be.list(Kind::Snapshot).unwrap();
    assert_eq!(listed.len(), 1010);
    assert!(listed.iter().all(|(_, n)| *n == 1));
    assert!(be.requests().iter().any(|(k, n)| *k == "list" && *n >= 2), "{:?}", be.requests());
    be.delete(&ObjectName::of(&numbered(5))).unwrap();
    assert_eq!(be.list(Kind::Snapshot).unwrap().len(), 1009);
}

/// A local repository with the fault injector on: `CLAWBACK_FAULTS` in every command.
fn faulty(sb: &Sandbox, faults: &str) -> Cmd {
    sb.cb().env("CLAWBACK_FAULTS", faults)
}

#[test]
fn faults_transient_errors_are_ridden_through() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = sb.path("src");
    make_tree(&src, 5);
    for i in 0..6 {
        write(&src.join(format!("more/{i}.bin")), &random_bytes(200 + i, 400_000));
    }
    for seed in 1..=3 {
        let faults = format!("seed={seed},transient=0.1,timeout=0.05");
        if seed > 1 {
            write(&src.join("notes.txt"), format!("round {seed}\n").as_bytes());
        }
        let v = faulty(&sb, &faults).args(["backup", "--json"]).arg(&src).run().ok().json();
        let id = sid(&v);
        let t = sb.path(&format!("t{seed}"));
        faulty(&sb, &faults).args(["restore", &id, "--verify", "--target"]).arg(&t).run().ok();
        assert_same_tree(&src, &restored(&t, &src));
        let c = faulty(&sb, &faults).args(["check", "--read-data", "--json"]).run().ok().json();
        assert_eq!(c["ok"], true, "{c}");
    }
    // Without faults, the repository is whole.
    sb.cb().args(["check", "--read-data"]).run().ok();
    // A malformed setting is a usage error.
    let r = faulty(&sb, "transient=lots").args(["snapshots"]).run().code(2);
    assert!(r.one_error_line().contains("CLAWBACK_FAULTS"), "{}", r.stderr);
}

#[test]
fn faults_damaged_reads_never_pass_for_good_data() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = sb.path("src");
    make_tree(&src, 6);
    for i in 0..4 {
        write(&src.join(format!("more/{i}.bin")), &random_bytes(300 + i, 500_000));
    }
    let id = sid(&backup_json(sb.cb(), &src));
    let mut failures = 0;
    for seed in 1..=6 {
        let faults = format!("seed={seed},flip=0.2,short=0.1");
        let t = sb.path(&format!("t{seed}"));
        let r = faulty(&sb, &faults).args(["restore", &id, "--verify", "--target"]).arg(&t).run();
        if r.code == 0 {
            // Success is only ever reported with exactly the right data.
            assert_same_tree(&src, &restored(&t, &src));
        } else {
            failures += 1;
            assert!(r.code == 1 || r.code == 3, "{r:?}");
        }
        let c = faulty(&sb, &faults).args(["check", "--read-data", "--json"]).run();
        if c.code == 0 {
            assert_eq!(c.json()["ok"], true);
        } else {
            failures += 1;
        }
    }
    assert!(failures > 0, "with this many flipped bits something must have been caught");
    // The damage was in transit only: the repository itself is whole.
    sb.cb().args(["check", "--read-data"]).run().ok();
    let t = sb.path("t-clean");
    sb.restore(&id, &t);
    assert_same_tree(&src, &restored(&t, &src));
}
