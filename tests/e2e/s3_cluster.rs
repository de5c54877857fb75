//! clawback on a SeaweedFS cluster (`seaweed_cluster.rs`: master, three volume servers, filer, S3
//! gateway, replication 001) with a volume server killed mid-backup and another mid-restore: each
//! run completes, or fails with one clear line and the next one completes; every snapshot restores
//! byte for byte, also while a volume server is down; `check --read-data` is clean.

use crate::seaweed::{audit_objects, with_s3_keys, INIT_SMALL};
use crate::seaweed_cluster::SeaweedCluster;
use crate::support::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn cb(sb: &Sandbox, url: &str) -> Cmd {
    with_s3_keys(sb.bare().arg("--repo").arg(url).arg("--cache-dir").arg(&sb.cache).env("CLAWBACK_PASSWORD", PASSWORD))
}

fn sid(r: &Run) -> String {
    r.json()["snapshot_id"].as_str().expect("snapshot_id").to_string()
}

/// A run with a fault in the middle: it succeeded, or failed with one documented line.
#[track_caller]
fn ok_or_clean_failure(r: &Run, what: &str) -> bool {
    if r.code == 0 {
        return true;
    }
    assert_eq!(r.code, 1, "{what}: exit {} is not a clean failure\n{}", r.code, r.stderr);
    eprintln!("{what}: failed cleanly: {}", crate::s3_kill_rounds::clean_failure(r));
    false
}

fn restore_same(sb: &Sandbox, url: &str, id: &str, src: &Path, target: &str) {
    let t = sb.path(target);
    cb(sb, url).args(["restore", id, "--verify", "--target"]).arg(&t).run().ok();
    assert_same_tree(src, &restored(&t, src));
}

#[test]
fn s3_cluster_survives_a_volume_server_killed_mid_backup_and_mid_restore() {
    let t0 = Instant::now();
    let mut cl = SeaweedCluster::start();
    eprintln!("cluster up in {:?}", t0.elapsed());
    let sb = Sandbox::new();
    let url = cl.url("fleet/host-a");
    cb(&sb, &url).args(INIT_SMALL).run().ok();
    let small = sb.path("small");
    write(&small.join("notes.txt"), b"before the faults\n");
    write(&small.join("a/b.bin"), &random_bytes(3, 400_000));
    let first = sid(&cb(&sb, &url).args(["backup", "--json"]).arg(&small).run().ok());

    // A volume server dies while a throttled backup is uploading.
    let big = sb.path("big");
    for i in 0..12 {
        write(&big.join(format!("f{i}.bin")), &random_bytes(100 + i, 1_000_000));
    }
    let cmd = cb(&sb, &url).args(["--limit-upload", "3072", "backup", "--json"]).arg(&big);
    let h = std::thread::spawn(move || cmd.run());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!h.is_finished(), "the backup ended before the volume server was killed");
    cl.kill_volume(0);
    let r = h.join().unwrap();
    eprintln!("backup with volume server 0 killed after 1.5 s: exit {}", r.code);
    let second = if ok_or_clean_failure(&r, "backup with volume server 0 killed") {
        sid(&r)
    } else {
        // The next one completes, with the server still down.
        sid(&cb(&sb, &url).args(["backup", "--json"]).arg(&big).run().ok())
    };
    // With one of three servers down every object still has a live copy.
    restore_same(&sb, &url, &first, &small, "t-first-degraded");
    restore_same(&sb, &url, &second, &big, "t-second-degraded");
    let c = cb(&sb, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "check with volume server 0 down: {c}");
    cl.restart_volume(0);

    // Another volume server dies while a throttled restore is downloading.
    let t = sb.path("t-mid-restore");
    let cmd = cb(&sb, &url).args(["--limit-download", "3072", "restore", &second, "--verify", "--target"]).arg(&t);
    let h = std::thread::spawn(move || cmd.run());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!h.is_finished(), "the restore ended before the volume server was killed");
    cl.kill_volume(1);
    let r = h.join().unwrap();
    eprintln!("restore with volume server 1 killed after 1.5 s: exit {}", r.code);
    if ok_or_clean_failure(&r, "restore with volume server 1 killed") {
        assert_same_tree(&big, &restored(&t, &big));
    } else {
        restore_same(&sb, &url, &second, &big, "t-after-failed-restore");
    }
    cl.restart_volume(1);

    // All servers back: nothing half-written, everything checks and restores.
    let c = cb(&sb, &url).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
    let objects = audit_objects(&cl.endpoint, "fleet", "host-a");
    restore_same(&sb, &url, &first, &small, "t-first");
    restore_same(&sb, &url, &second, &big, "t-second");
    eprintln!("{objects} objects hash to their names; whole test {:?}", t0.elapsed());
}
