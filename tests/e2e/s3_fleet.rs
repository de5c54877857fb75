//! A fleet on one S3 bucket (SeaweedFS, see `seaweed.rs`): three hosts with their own HOME and
//! cache, one group, trees that share a few MB (a skills folder) plus their own files, backing up
//! at the same moment round after round while a fourth process runs `forget --keep-last 1 --prune`
//! and `prune` over and over. Afterwards the repository checks, every host's latest snapshot
//! restores exactly, the group lists its members and the shared part is stored once. Also `copy`
//! from a local repository to S3 and on to another local repository.

use crate::seaweed::{s3cb, with_s3_keys, Seaweed};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const GROUP: &str = "fleet-s3";
const SHARED_FILES: u64 = 6;
const SHARED_FILE_SIZE: usize = 512 * 1024;
const ROUNDS: u64 = 3;

/// The shared skills folder (the same bytes on every host) and the host's own files.
fn make_host_tree(root: &Path, host: u64) {
    for i in 0..SHARED_FILES {
        write(&root.join(format!("skills/skill-{i}/data.bin")), &random_bytes(1000 + i, SHARED_FILE_SIZE));
        write(&root.join(format!("skills/skill-{i}/SKILL.md")), format!("# skill {i}\nshared by all\n").as_bytes());
    }
    write(&root.join("own/identity.md"), format!("host {host}\n").repeat(200).as_bytes());
    write(&root.join("own/memory.bin"), &random_bytes(2000 + host, 150_000));
}

/// Between rounds: a changed note, a new file, a removed file (each host its own).
fn change_host_tree(root: &Path, host: u64, round: u64) {
    write(&root.join("own/identity.md"), format!("host {host} round {round}\n").repeat(300).as_bytes());
    write(&root.join(format!("own/round-{round}.bin")), &random_bytes(3000 + host * 10 + round, 60_000));
    if round > 1 {
        let _ = std::fs::remove_file(root.join(format!("own/round-{}.bin", round - 1)));
    }
}

#[test]
fn s3_fleet_concurrent_backups_with_prune_running() {
    let srv = Seaweed::start();
    let url = srv.url("fleet/shared-repo");
    let admin = Sandbox::new();
    s3cb(&admin, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1", "--pack-size", "1"])
        .run()
        .ok();
    let hosts: Vec<Sandbox> = (1..=3).map(|_| Sandbox::new()).collect();
    let trees: Vec<PathBuf> = hosts.iter().map(|sb| sb.path("openclaw")).collect();
    for (i, t) in trees.iter().enumerate() {
        make_host_tree(t, i as u64 + 1);
    }

    let running = Arc::new(AtomicBool::new(true));
    let pruner = {
        let running = running.clone();
        let url = url.clone();
        std::thread::spawn(move || {
            let sb = Sandbox::new();
            let mut runs = 0u32;
            while running.load(Ordering::SeqCst) {
                let r = if runs.is_multiple_of(2) {
                    s3cb(&sb, &url).args(["forget", "--keep-last", "1", "--prune", "--json"]).run()
                } else {
                    s3cb(&sb, &url).args(["prune", "--json"]).run()
                };
                assert_eq!(r.code, 0, "prune beside the backups failed: {r:?}");
                runs += 1;
            }
            runs
        })
    };

    for round in 1..=ROUNDS {
        if round > 1 {
            for (i, t) in trees.iter().enumerate() {
                change_host_tree(t, i as u64 + 1, round);
            }
        }
        let handles: Vec<_> = hosts
            .iter()
            .zip(&trees)
            .enumerate()
            .map(|(i, (sb, t))| {
                let host = format!("h{}", i + 1);
                let cmd = s3cb(sb, &url).args(["backup", "--json", "--host", &host, "--group", GROUP]).arg(t);
                std::thread::spawn(move || cmd.run())
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap().ok();
            let v = r.json();
            assert!(v["errors"].as_array().is_some_and(|e| e.is_empty()), "round {round}: {v}");
        }
    }
    running.store(false, Ordering::SeqCst);
    let prune_runs = pruner.join().unwrap();
    assert!(prune_runs >= 1, "the pruner never ran");
    eprintln!("fleet: {ROUNDS} rounds of 3 concurrent backups beside {prune_runs} forget/prune runs");

    // Settle: the last forget and prune with nothing running, so what is condemned goes.
    s3cb(&admin, &url).args(["forget", "--keep-last", "1", "--prune", "--json"]).run().ok();
    let p = s3cb(&admin, &url).args(["prune", "--json"]).run().ok().json();
    assert_eq!(p["packs_waiting"], 0, "{p}");

    let c = s3cb(&admin, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");

    for (i, (sb, t)) in hosts.iter().zip(&trees).enumerate() {
        let host = format!("h{}", i + 1);
        let out = sb.path("restored");
        s3cb(sb, &url).args(["restore", "latest", "--host", &host, "--verify", "--target"]).arg(&out).run().ok();
        assert_same_tree(t, &restored(&out, t));
    }

    let members = s3cb(&admin, &url).args(["snapshots", "--json", "--group", GROUP]).run().ok().json();
    let members = members.as_array().unwrap();
    let mut names: Vec<&str> = members.iter().map(|m| m["hostname"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["h1", "h2", "h3"], "{members:?}");
    assert!(members.iter().all(|m| m["group"] == GROUP));

    // The shared skills (3 MiB, random so they do not compress) are stored once: everything kept is
    // the shared part once, each host's own files (about 0.3 MB) and metadata, well under twice the
    // shared part, let alone three times.
    let shared = SHARED_FILES * SHARED_FILE_SIZE as u64;
    let st = s3cb(&admin, &url).args(["stats", "--json"]).run().ok().json();
    let stored = u(&st, "stored_bytes");
    eprintln!("fleet: shared {shared} bytes, repository stores {stored} bytes: {st}");
    assert!(stored >= shared, "{st}");
    assert!(stored < shared + 2 * 1024 * 1024, "shared data stored more than once: {stored} bytes for {shared}: {st}");
}

const TO_PASSWORD: &str = "the target's own passphrase";

#[test]
fn s3_copy_local_to_s3_and_back_restores_identical() {
    let srv = Seaweed::start();
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("big.bin"), &random_bytes(41, 1_500_000));
    write(&src.join("notes/today.md"), "the same line again\n".repeat(4000).as_bytes());
    write(&src.join("notes/empty"), b"");
    write(&src.join("deep/a/b/leaf.txt"), b"leaf");
    std::os::unix::fs::symlink("../big.bin", src.join("notes/link")).unwrap();
    chmod(&src.join("notes/today.md"), 0o600);
    sb.backup(&[&src]);
    write(&src.join("notes/later.md"), b"written after the first snapshot\n");
    let second = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();

    // The S3 repository, with its own password (its bucket made by init).
    let url = srv.url("copies/of-host-a");
    let s3_side = Sandbox::new();
    s3cb(&s3_side, &url)
        .env("CLAWBACK_PASSWORD", TO_PASSWORD)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .run()
        .ok();
    let copy_to_s3 =
        || with_s3_keys(sb.cb().args(["copy", "--json", "--to", &url]).env("CLAWBACK_TO_PASSWORD", TO_PASSWORD));
    let to_s3 = copy_to_s3().run().ok().json();
    assert_eq!(to_s3["snapshots_copied"], 2, "{to_s3}");
    assert!(to_s3["target"].as_str().unwrap().starts_with("s3:"), "{to_s3}");
    // Copying again sends nothing.
    let again = copy_to_s3().run().ok().json();
    assert_eq!(again["snapshots_copied"], 0, "{again}");
    assert_eq!(again["blobs_copied"], 0, "{again}");
    s3cb(&s3_side, &url).env("CLAWBACK_PASSWORD", TO_PASSWORD).args(["check", "--read-data"]).run().ok();

    // From S3 to a second local repository, created by copy (--to-init).
    let back = s3_side.path("back-repo");
    let b = s3cb(&s3_side, &url)
        .env("CLAWBACK_PASSWORD", TO_PASSWORD)
        .args(["copy", "--json", "--to-init", "--to"])
        .arg(&back)
        .env("CLAWBACK_TO_PASSWORD", "third password")
        .run()
        .ok()
        .json();
    assert_eq!(b["snapshots_copied"], 2, "{b}");
    let local2 = |c: Cmd| c.env("CLAWBACK_PASSWORD", "third password");
    let lcb = || local2(s3_side.bare().arg("--repo").arg(&back).arg("--cache-dir").arg(s3_side.path("back-cache")));
    lcb().args(["check", "--read-data"]).run().ok();
    let snaps = lcb().args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");

    // The latest restores identical to the source tree; the first lacks the later file.
    let t = s3_side.path("t-latest");
    lcb().args(["restore", "latest", "--verify", "--target"]).arg(&t).run().ok();
    assert_same_tree(&src, &restored(&t, &src));
    let orig = sb.path("t-orig");
    sb.restore(&second, &orig);
    assert_same_tree(&restored(&orig, &src), &restored(&t, &src));
    let t1 = s3_side.path("t-first");
    let first_in_back =
        snaps.as_array().unwrap().iter().min_by_key(|s| s["time"].as_str().unwrap().to_string()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    lcb().args(["restore", &first_in_back, "--verify", "--target"]).arg(&t1).run().ok();
    assert!(!restored(&t1, &src).join("notes/later.md").exists());
    assert_eq!(
        std::fs::read(restored(&t1, &src).join("big.bin")).unwrap(),
        std::fs::read(src.join("big.bin")).unwrap()
    );
}
