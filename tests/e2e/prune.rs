//! `prune` and `forget --prune`: space comes back, kept snapshots restore byte for byte, a dry run
//! changes nothing, `--max-unused` repacks, the prune lease (live: exit 12; expired or left by a
//! dead process: taken over), and a prune killed after each of its phases leaves a repository that
//! checks clean and restores, which the next prune finishes cleaning.

use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

/// A source folder whose content changes between backups; remembers each version's files.
struct History {
    src: PathBuf,
    /// snapshot id → (file name → content)
    versions: Vec<(String, BTreeMap<String, Vec<u8>>)>,
}

impl History {
    fn new(sb: &Sandbox) -> History {
        let src = sb.path("src");
        fs::create_dir_all(&src).unwrap();
        History { src, versions: Vec::new() }
    }

    fn set(&self, name: &str, data: &[u8]) {
        write(&self.src.join(name), data);
    }

    fn remove(&self, name: &str) {
        fs::remove_file(self.src.join(name)).unwrap();
    }

    fn backup(&mut self, sb: &Sandbox, time: &str) -> String {
        let r = sb.cb().args(["backup", "--json", "--time", time]).arg(&self.src).run().ok();
        let id = r.json()["snapshot_id"].as_str().unwrap().to_string();
        let mut files = BTreeMap::new();
        for e in fs::read_dir(&self.src).unwrap() {
            let e = e.unwrap();
            files.insert(e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap());
        }
        self.versions.push((id.clone(), files));
        id
    }

    /// Restores every snapshot still in the repository and compares it with what was backed up.
    #[track_caller]
    fn assert_restores(&self, sb: &Sandbox, tag: &str) {
        let live: Vec<String> = sb.snapshots().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        assert!(!live.is_empty());
        for id in &live {
            let (_, files) = self.versions.iter().find(|(v, _)| v == id).expect("a snapshot this test made");
            let t = sb.path(&format!("restore-{tag}-{}", &id[..8]));
            sb.restore(id, &t);
            let got = restored(&t, &self.src);
            let mut names: Vec<String> =
                fs::read_dir(&got).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            assert_eq!(names, files.keys().cloned().collect::<Vec<_>>(), "snapshot {id}");
            for (n, data) in files {
                assert!(fs::read(got.join(n)).unwrap() == *data, "{n} of snapshot {id} differs after restore");
            }
            fs::remove_dir_all(&t).unwrap();
        }
    }
}

fn check_clean(sb: &Sandbox) {
    let v = sb.cb().args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(v["ok"], true, "{v}");
}

fn objects(sb: &Sandbox, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = files_under(&sb.repo.join(dir))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Three snapshots over 1 MiB packs: `old.bin` only in the first, `keep.bin` in all, `new.bin`
/// from the second on, and small files half of which go after the first.
fn three_snapshots(sb: &Sandbox) -> History {
    let mut h = History::new(sb);
    h.set("keep.bin", &random_bytes(1, 1_200_000));
    h.set("old.bin", &random_bytes(2, 1_500_000));
    for i in 0..24 {
        h.set(&format!("small{i:02}"), &random_bytes(100 + i, 60_000));
    }
    h.backup(sb, "2026-03-01T10:00:00Z");
    h.remove("old.bin");
    for i in (0..24).step_by(2) {
        h.remove(&format!("small{i:02}"));
    }
    h.set("new.bin", &random_bytes(3, 900_000));
    h.backup(sb, "2026-03-02T10:00:00Z");
    h.set("note.txt", b"third\n");
    h.backup(sb, "2026-03-03T10:00:00Z");
    h
}

#[test]
fn prune_after_forget_gives_back_the_space_and_kept_snapshots_restore() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let h = three_snapshots(&sb);
    let before = du(&sb.repo);
    // Nothing forgotten yet: prune finds nothing unused worth deleting.
    let idle = sb.cb().args(["prune", "--json"]).run().ok().json();
    assert_eq!(idle["packs_deleted"], 0, "{idle}");
    sb.cb().args(["forget", "--keep-last", "2"]).run().ok();
    let v = sb.cb().args(["prune", "--json"]).run().ok().json();
    for phase in ["load", "mark", "plan", "repack", "index", "condemn", "delete"] {
        assert!(v["phase_seconds"][phase].as_f64().is_some(), "no time for {phase}: {v}");
    }
    assert!(v["packs_deleted"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["packs_waiting"], 0, "{v}");
    let after = du(&sb.repo);
    // old.bin (1.5 MB) and twelve 60 kB files belonged to the forgotten snapshot only.
    assert!(before - after > 1_800_000, "repository went from {before} to {after} bytes: {v}");
    assert!(objects(&sb, "condemned").is_empty(), "no record left behind");
    assert!(objects(&sb, "locks").is_empty(), "the prune lease is released");
    check_clean(&sb);
    h.assert_restores(&sb, "a");
    // Once more: nothing left to do.
    let again = sb.cb().args(["prune", "--json"]).run().ok().json();
    assert_eq!(again["packs_deleted"], 0, "{again}");
    assert_eq!(again["packs_condemned"], 0, "{again}");
}

#[test]
fn forget_with_prune_frees_the_space_at_once() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let h = three_snapshots(&sb);
    let before = du(&sb.repo);
    let v = sb.cb().args(["forget", "--keep-last", "1", "--prune", "--json"]).run().ok().json();
    assert_eq!(v["remove"].as_array().unwrap().len(), 2, "{v}");
    let freed = v["prune"]["bytes_freed"].as_u64().unwrap();
    assert!(freed > 1_500_000, "{v}");
    assert!(before - du(&sb.repo) > 1_800_000);
    check_clean(&sb);
    h.assert_restores(&sb, "f");
    // Human output names the phases.
    let out = sb.cb().args(["forget", "--keep-last", "1", "--prune"]).run().ok().stdout;
    assert!(out.contains("prune done in"), "{out}");
}

#[test]
fn prune_dry_run_changes_nothing() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let h = three_snapshots(&sb);
    sb.cb().args(["forget", "--keep-last", "1"]).run().ok();
    let listing = |sb: &Sandbox| {
        let mut v: Vec<(PathBuf, u64)> =
            files_under(&sb.repo).into_iter().map(|p| (p.clone(), fs::metadata(&p).unwrap().len())).collect();
        v.sort();
        v
    };
    let before = listing(&sb);
    let v = sb.cb().args(["prune", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(v["dry_run"], true);
    assert!(v["packs_condemned"].as_u64().unwrap() >= 1, "the plan finds work: {v}");
    assert!(v["bytes_freed"].as_u64().unwrap() > 1_500_000, "{v}");
    assert_eq!(listing(&sb), before, "a dry run wrote or deleted something");
    let human = sb.cb().args(["prune", "--dry-run"]).run().ok().stdout;
    assert!(human.contains("dry run: nothing changed"), "{human}");
    // The real prune then frees what the plan said.
    let real = sb.cb().args(["prune", "--json"]).run().ok().json();
    assert!(real["packs_deleted"].as_u64().unwrap() >= 1, "{real}");
    h.assert_restores(&sb, "d");
}

#[test]
fn max_unused_decides_whether_partly_used_packs_are_repacked() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let mut h = History::new(&sb);
    for i in 0..40 {
        h.set(&format!("f{i:02}"), &random_bytes(500 + i, 50_000));
    }
    h.backup(&sb, "2026-04-01T10:00:00Z");
    for i in (0..40).step_by(2) {
        h.remove(&format!("f{i:02}"));
    }
    h.backup(&sb, "2026-04-02T10:00:00Z");
    sb.cb().args(["forget", "--keep-last", "1"]).run().ok();
    // Every data pack is about half used: no pack is wholly unused, so without repacking nothing
    // can be freed.
    let lazy = sb.cb().args(["prune", "--json", "--max-unused", "unlimited"]).run().ok().json();
    assert_eq!(lazy["packs_repacked"], 0, "{lazy}");
    assert!(lazy["unused_bytes"].as_u64().unwrap() > 900_000, "{lazy}");
    let mid = du(&sb.repo);
    let v = sb.cb().args(["prune", "--json", "--max-unused", "0%"]).run().ok().json();
    assert!(v["packs_repacked"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["packs_written"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["unused_bytes_after"], 0, "{v}");
    assert!(mid - du(&sb.repo) > 800_000, "repacking freed too little: {mid} → {}", du(&sb.repo));
    check_clean(&sb);
    h.assert_restores(&sb, "m");
    // Bad values are usage errors.
    let r = sb.cb().args(["prune", "--max-unused", "150%"]).run().code(2);
    assert!(r.one_error_line().contains("--max-unused"), "{}", r.stderr);
}

fn lease_json(host: &str, pid: u32, expires: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({
        "version": 1, "kind": "prune", "id": "0123456789abcdef", "hostname": host, "pid": pid,
        "created": (expires - chrono::Duration::minutes(15)).to_rfc3339(), "expires": expires.to_rfc3339(),
    })
    .to_string()
}

#[test]
fn a_live_prune_lease_refuses_a_second_prune_and_an_expired_one_is_taken_over() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let mut h = three_snapshots(&sb);
    sb.cb().args(["forget", "--keep-last", "2"]).run().ok();
    let lease = sb.repo.join("locks/prune-0123456789abcdef-4");
    let until = chrono::Utc::now() + chrono::Duration::minutes(10);
    fs::write(&lease, lease_json("other-host", 4242, until)).unwrap();
    let r = sb.cb().args(["prune"]).run().code(12);
    let line = r.one_error_line();
    assert!(line.contains("other-host") && line.contains("4242") && line.contains("until"), "{line}");
    assert!(lease.exists(), "a live lease is not touched");
    // Backups neither wait for nor fail on the prune lease.
    h.set("during.txt", b"backed up while a prune runs elsewhere\n");
    h.backup(&sb, "2026-03-04T10:00:00Z");
    // Expired: the next prune removes it and runs.
    fs::write(&lease, lease_json("other-host", 4242, chrono::Utc::now() - chrono::Duration::minutes(1))).unwrap();
    let v = sb.cb().args(["prune", "--json"]).run().ok().json();
    assert!(v["packs_deleted"].as_u64().unwrap() >= 1, "{v}");
    assert!(objects(&sb, "locks").is_empty(), "{:?}", objects(&sb, "locks"));
    check_clean(&sb);
    h.assert_restores(&sb, "l");
}

/// Runs `clawback prune` with `CLAWBACK_FAILPOINT=point` and asserts it died there of SIGKILL.
#[track_caller]
fn prune_killed(sb: &Sandbox, point: &str) {
    run_killed(sb, point, &["prune", "--max-unused", "0%"], &[]);
}

#[test]
fn a_prune_killed_after_any_phase_leaves_a_repository_that_checks_and_restores() {
    for phase in [
        "load",
        "mark",
        "plan",
        "repack",
        "index",
        "condemn-pending",
        "condemn",
        "delete-index",
        "delete-packs",
        "delete",
    ] {
        let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
        let h = three_snapshots(&sb);
        sb.cb().args(["forget", "--keep-last", "2"]).run().ok();
        let full = du(&sb.repo);
        prune_killed(&sb, &format!("prune:after-{phase}"));
        check_clean(&sb);
        h.assert_restores(&sb, phase);
        // The next prune (its lease left by a dead process of this host is taken over) finishes.
        let v = sb.cb().args(["prune", "--json", "--max-unused", "0%"]).run().ok().json();
        assert_eq!(v["packs_waiting"], 0, "after {phase}: {v}");
        assert!(objects(&sb, "condemned").is_empty(), "after {phase}: {:?}", objects(&sb, "condemned"));
        assert!(full - du(&sb.repo) > 1_500_000, "after {phase}: the space did not come back");
        check_clean(&sb);
        h.assert_restores(&sb, &format!("{phase}-2"));
    }
}
