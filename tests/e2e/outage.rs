//! A store that goes down and stays down costs a run one retry bound (`CLAWBACK_RETRY_SECONDS`),
//! not one per file or per request: SeaweedFS is killed, and not restarted, in the middle of a
//! restore of many files and of a backup, and each run ends with exit 1 and one line within about
//! twice the bound.

use crate::proxy::{seaweed_behind_proxy, Faults};
use crate::seaweed::{s3cb, Seaweed, INIT_SMALL};
use crate::support::*;
use std::time::{Duration, Instant};

const BOUND: u64 = 5;

fn cb(sb: &Sandbox, endpoint: &str) -> Cmd {
    s3cb(sb, &format!("s3:{endpoint}/outage/repo")).env("CLAWBACK_RETRY_SECONDS", BOUND.to_string())
}

/// Runs `c` in a thread, kills the server once `started` says the run is under way, and returns
/// the run and how long it took after the kill.
fn killed_under(srv: &mut Seaweed, c: Cmd, started: impl Fn() -> bool) -> (Run, Duration) {
    let h = std::thread::spawn(move || c.run());
    let t = Instant::now();
    while !started() {
        assert!(t.elapsed() < Duration::from_secs(60) && !h.is_finished(), "the run never got under way");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.kill();
    let killed = Instant::now();
    let r = h.join().expect("the run's thread");
    (r, killed.elapsed())
}

#[test]
fn a_store_that_stays_down_costs_one_retry_bound_not_one_per_file() {
    // Downloads slowed (per connection), so the kill lands with most files still to come.
    let (mut srv, proxy, via, direct) = seaweed_behind_proxy(3);
    let sb = Sandbox::new();
    cb(&sb, &direct).args(INIT_SMALL).run().ok();
    let src = sb.path("src");
    let files = 400;
    for i in 0..files {
        write(&src.join(format!("d{}/f{i}.bin", i % 20)), &random_bytes(i, 60_000));
    }
    let id = cb(&sb, &direct).args(["backup", "--json"]).arg(&src).run().ok().json()["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();

    proxy.set(Faults { bandwidth: Some(400_000), ..Faults::default() });
    let target = sb.path("target");
    // One request in flight (and the restore's few reader threads): the ranges still to read are
    // many times the readers, so a bound per request would add up to many bounds.
    let c = cb(&sb, &via).args(["--connections", "1", "restore", &id, "--target"]).arg(&target);
    let first_file = || files_under(&target).iter().any(|p| p.is_file());
    let (r, took) = killed_under(&mut srv, c, first_file);
    let done = files_under(&target)
        .iter()
        .filter(|p| p.is_file() && !p.to_string_lossy().contains(".clawback-restore-"))
        .count();
    eprintln!(
        "restore: exit {} {took:?} after the kill, {done} of {files} files restored: {}",
        r.code,
        r.stderr.trim()
    );
    assert_eq!(r.code, 1, "{r:?}");
    r.one_error_line();
    assert!((done as u64) < files / 2, "the kill came too late to mean anything ({done} files restored)");
    assert!(
        took < Duration::from_secs(2 * BOUND + 3),
        "a store down for good held the restore {took:?}, more than twice the {BOUND} s bound"
    );

    // A backup too: the server comes back for the start, then goes for good.
    srv.restart();
    for i in 0..files {
        write(&src.join(format!("d{}/g{i}.bin", i % 20)), &random_bytes(1000 + i, 60_000));
    }
    proxy.set(Faults { bandwidth: Some(200_000), ..Faults::default() });
    let c = cb(&sb, &via).args(["backup", "--json"]).arg(&src);
    let base = proxy.bytes();
    let uploading = || proxy.bytes() > base + 2_000_000;
    let (r, took) = killed_under(&mut srv, c, uploading);
    eprintln!("backup: exit {} {took:?} after the kill: {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    r.one_error_line();
    assert!(took < Duration::from_secs(2 * BOUND + 3), "a store down for good held the backup {took:?}");
}
