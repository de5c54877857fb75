//! clawback against SeaweedFS through the tests' loopback proxy (`proxy.rs`): latency and a
//! bandwidth cap, connections reset mid-transfer, and stalls (accepted, then silence) at the start
//! and in the middle of a run. Retries must hold, a stalled run must end within the bound its
//! settings give (`CLAWBACK_S3_TIMEOUT` per request, `CLAWBACK_RETRY_SECONDS` for retrying),
//! and every run that reports success must have stored everything: after each, `check
//! --read-data` and a restore straight from the server (no proxy) prove it.

use crate::proxy::{seaweed_behind_proxy, Faults};
use crate::s3_kill_rounds::Rng;
use crate::seaweed::{audit_objects, s3cb, INIT_SMALL};
use crate::support::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn cb(sb: &Sandbox, endpoint: &str) -> Cmd {
    s3cb(sb, &format!("s3:{endpoint}/proxied/repo"))
}

/// Round `n`'s tree: a few files, one of them new and incompressible.
fn tree(sb: &Sandbox, n: u64, size: usize) -> std::path::PathBuf {
    let src = sb.path(&format!("src{n}"));
    write(&src.join("notes.txt"), format!("round {n}\n").as_bytes());
    write(&src.join("data/a.bin"), &random_bytes(n * 7 + 1, size));
    write(&src.join("data/b.bin"), &random_bytes(n * 7 + 2, size / 3));
    src
}

/// After a run that said it succeeded: the server itself (no proxy) holds a repository that checks
/// clean and whose snapshot `id` restores `src` exactly.
fn proven(sb: &Sandbox, direct: &str, id: &str, src: &Path) {
    let c = cb(sb, direct).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
    let t = sb.path(&format!("t-{}", &id[..8]));
    cb(sb, direct).arg("--no-cache").args(["restore", id, "--verify", "--target"]).arg(&t).run().ok();
    assert_same_tree(src, &restored(&t, src));
    std::fs::remove_dir_all(&t).unwrap();
}

/// A backup through the proxy: its snapshot id if it succeeded, after proving it; otherwise the
/// failure must be one documented line.
fn backup(sb: &Sandbox, via: &str, direct: &str, src: &Path, env: &[(&str, &str)], what: &str) -> Option<String> {
    let mut c = cb(sb, via).args(["backup", "--json"]).arg(src);
    for (k, v) in env {
        c = c.env(k, v);
    }
    let t = Instant::now();
    let r = c.run();
    eprintln!("{what}: exit {} in {:?}", r.code, t.elapsed());
    if r.code != 0 {
        assert_eq!(r.code, 1, "{what}: {r:?}");
        eprintln!("{what}: failed cleanly: {}", r.one_error_line());
        return None;
    }
    let id = r.json()["snapshot_id"].as_str().unwrap().to_string();
    proven(sb, direct, &id, src);
    Some(id)
}

#[test]
fn s3_through_a_proxy_with_latency_bandwidth_caps_and_resets() {
    let mut rng = Rng::from_env("proxy faults");
    let (_srv, proxy, via, direct) = seaweed_behind_proxy(rng.next_u64());
    let sb = Sandbox::new();
    cb(&sb, &direct).args(INIT_SMALL).run().ok();

    // Latency on every chunk and a 1.5 MB/s cap: slow, and complete.
    proxy.set(Faults { latency: Duration::from_millis(15), bandwidth: Some(1_500_000), ..Faults::default() });
    let src = tree(&sb, 1, 1_500_000);
    let t = Instant::now();
    backup(&sb, &via, &direct, &src, &[], "latency 15 ms, 1.5 MB/s").expect("a slow link is no failure");
    let slow = t.elapsed();
    assert!(slow > Duration::from_millis(1000), "the cap did not slow the backup ({slow:?})");
    cb(&sb, &via).args(["restore", "latest", "--verify", "--target"]).arg(sb.path("t-slow")).run().ok();
    assert_same_tree(&src, &restored(&sb.path("t-slow"), &src));

    // A share of connections reset after a random number of bytes, in both directions: retries
    // ride through, or the run fails cleanly; never a success with data missing.
    let mut ok = 0;
    for n in 2..8u64 {
        let chance = [0.2, 0.4, 0.6][rng.below(3) as usize];
        proxy.set(Faults { reset_chance: chance, reset_within: 400_000, ..Faults::default() });
        let before = proxy.resets();
        let src = tree(&sb, n, 500_000 + rng.below(1_000_000) as usize);
        if backup(&sb, &via, &direct, &src, &[], &format!("resets {chance}")).is_some() {
            ok += 1;
        }
        // Restores through the same faults: all or a clean failure.
        let t = sb.path(&format!("t-reset-{n}"));
        let r = cb(&sb, &via).args(["restore", "latest", "--verify", "--target"]).arg(&t).run();
        if r.code == 0 {
            let snaps = cb(&sb, &direct).args(["snapshots", "--json"]).run().ok().json();
            let latest = snaps.as_array().unwrap().last().unwrap().clone();
            let p = Path::new(latest["paths"][0].as_str().unwrap());
            assert_same_tree(p, &restored(&t, p));
        } else {
            assert_eq!(r.code, 1, "{r:?}");
            crate::s3_kill_rounds::clean_failure(&r);
        }
        eprintln!("round {n}: {} connections reset", proxy.resets() - before);
    }
    assert!(ok >= 3, "only {ok} of 6 backups got through resets that retries should ride out");

    // Every open connection reset again and again while a backup uploads.
    proxy.set(Faults { bandwidth: Some(2_000_000), ..Faults::default() });
    let src = tree(&sb, 20, 3_000_000);
    let c = cb(&sb, &via).args(["backup", "--json"]).arg(&src);
    let h = std::thread::spawn(move || c.run());
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300 + rng.below(300)));
        proxy.reset_all();
    }
    let r = h.join().unwrap();
    if r.code == 0 {
        proven(&sb, &direct, r.json()["snapshot_id"].as_str().unwrap(), &src);
    } else {
        assert_eq!(r.code, 1, "{r:?}");
        r.one_error_line();
    }
    proxy.set(Faults::default());
    let objects = audit_objects(&direct, "proxied", "repo");
    eprintln!(
        "{} connections through the proxy, {} resets, {objects} objects hash to their names",
        proxy.accepted(),
        proxy.resets()
    );
}

/// A body damaged on the way to the store is refused and sent again, whichever checksum the
/// uploads carry: CRC32C once the store has answered with it (SeaweedFS does), Content-MD5 when
/// its answers never show it (the proxy hides the header, as from a store that ignores the
/// checksum). Every run that succeeds must have stored exactly what was sent.
#[test]
fn s3_a_body_damaged_on_the_way_is_refused_whichever_checksum_the_store_checks() {
    let (_srv, proxy, via, direct) = seaweed_behind_proxy(11);
    let sb = Sandbox::new();
    cb(&sb, &direct).args(INIT_SMALL).run().ok();
    for (n, hide) in [(1u64, false), (2, true)] {
        let what = if hide { "answers without checksums" } else { "checksums answered" };
        let (damaged, (md5_0, crc_0)) = (proxy.damaged(), proxy.puts_with_checksums());
        proxy.set(Faults { damage_bodies: damaged + 2, hide_checksums: hide, ..Faults::default() });
        let src = tree(&sb, n, 3_000_000);
        backup(&sb, &via, &direct, &src, &[], what).expect("a refused body is sent again");
        let (md5, crc) = proxy.puts_with_checksums();
        let (md5, crc) = (md5 - md5_0, crc - crc_0);
        eprintln!(
            "{what}: {} bodies damaged, {md5} PUTs with Content-MD5, {crc} with CRC32C",
            proxy.damaged() - damaged
        );
        assert_eq!(proxy.damaged(), damaged + 2, "{what}: no body was damaged on the way");
        // The first upload (the lease) carries both, to learn which the store checks.
        if hide {
            assert!(proxy.hidden() > 0, "{what}: no checksum header was hidden");
            assert_eq!(crc, 1, "{what}: only the first upload may carry CRC32C");
            assert!(md5 >= 6, "{what}: uploads went without Content-MD5 ({md5})");
        } else {
            assert_eq!(md5, 1, "{what}: only the first upload needs Content-MD5");
            assert!(crc >= 6, "{what}: uploads went without CRC32C ({crc})");
        }
    }
    proxy.set(Faults::default());
    let objects = audit_objects(&direct, "proxied", "repo");
    eprintln!("{objects} objects hash to their names");
}

#[test]
fn s3_stalled_connections_end_within_the_configured_bound() {
    let (_srv, proxy, via, direct) = seaweed_behind_proxy(7);
    let sb = Sandbox::new();
    cb(&sb, &direct).args(INIT_SMALL).run().ok();
    let bounds = [("CLAWBACK_S3_TIMEOUT", "2"), ("CLAWBACK_RETRY_SECONDS", "6")];

    // Stalled from the first byte: the store never answered, so it fails fast with one line.
    proxy.set(Faults { stall: true, ..Faults::default() });
    let t = Instant::now();
    let mut c = cb(&sb, &via).arg("snapshots");
    for (k, v) in bounds {
        c = c.env(k, v);
    }
    let r = c.run().code(1);
    let line = r.one_error_line().to_string();
    let took = t.elapsed();
    eprintln!("stalled from the start: {took:?}: {line}");
    assert!(took < Duration::from_secs(15), "a stalled store held `snapshots` for {took:?}");
    assert!(line.contains("no answer in time"), "{line}");

    // Stalled in the middle of a backup, and never lifted: the run ends within its bound (each
    // request 2 s, no retry begun after 6 s) with one line, and commits no snapshot.
    proxy.set(Faults { bandwidth: Some(1_000_000), ..Faults::default() });
    let src = tree(&sb, 1, 4_000_000);
    let mut c = cb(&sb, &via).args(["backup", "--json"]).arg(&src);
    for (k, v) in bounds {
        c = c.env(k, v);
    }
    let h = std::thread::spawn(move || c.run());
    std::thread::sleep(Duration::from_millis(1500));
    proxy.set(Faults { stall: true, ..Faults::default() });
    let t = Instant::now();
    let r = h.join().unwrap();
    let took = t.elapsed();
    eprintln!("stalled mid-backup: exit {} {took:?} after the stall: {}", r.code, r.stderr.trim());
    assert!(took < Duration::from_secs(30), "a stalled store held the backup for {took:?} past the stall");
    assert_eq!(r.code, 1, "{r:?}");
    r.one_error_line();
    proxy.set(Faults::default());
    let snaps = cb(&sb, &direct).args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 0, "a failed backup committed a snapshot: {snaps}");

    // A stall that is lifted within the bound is ridden through; the result is complete.
    let c = cb(&sb, &via).args(["backup", "--json"]).arg(&src).env("CLAWBACK_S3_TIMEOUT", "3");
    let h = std::thread::spawn(move || c.run());
    std::thread::sleep(Duration::from_millis(700));
    proxy.set(Faults { stall: true, ..Faults::default() });
    std::thread::sleep(Duration::from_millis(2000));
    proxy.set(Faults::default());
    let r = h.join().unwrap().ok();
    let id = r.json()["snapshot_id"].as_str().unwrap().to_string();
    proven(&sb, &direct, &id, &src);

    // Stalled in the middle of a restore (downloads this time), never lifted: within the bound
    // too, and a failure, never a success with files missing.
    // The cap is per connection and a restore reads over several at once: 150 kB/s each keeps
    // the download of ~5 MB going for seconds, so the stall lands in the middle of it.
    proxy.set(Faults { bandwidth: Some(150_000), ..Faults::default() });
    let t = sb.path("t-stalled");
    let mut c = cb(&sb, &via).arg("--no-cache").args(["restore", &id, "--verify", "--target"]).arg(&t);
    for (k, v) in bounds {
        c = c.env(k, v);
    }
    let h = std::thread::spawn(move || c.run());
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!h.is_finished(), "the restore ended before the stall");
    proxy.set(Faults { stall: true, ..Faults::default() });
    let t0 = Instant::now();
    let r = h.join().unwrap();
    let took = t0.elapsed();
    eprintln!("stalled mid-restore: exit {} {took:?} after the stall: {}", r.code, r.stderr.trim());
    assert!(took < Duration::from_secs(30), "a stalled store held the restore for {took:?} past the stall");
    assert_eq!(r.code, 1, "{r:?}");
    crate::s3_kill_rounds::clean_failure(&r);
    proxy.set(Faults::default());
    let c = cb(&sb, &direct).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(c["ok"], true, "{c}");
}
