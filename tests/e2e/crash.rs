//! Crash consistency: backups and in-place restores killed with SIGKILL at deterministic moments
//! (the engine's failure points, `CLAWBACK_FAILPOINT`, see engine/src/failpoint.rs). After every
//! kill the repository must pass `check`, every earlier snapshot must restore exactly, and the next
//! run must succeed; an in-place restore killed mid-way leaves each file either untouched or fully
//! restored, never a truncated file under its final name.

use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// `check` passes: exit 0 and no errors in its report (leftovers are at most warnings).
#[track_caller]
fn check_passes(sb: &Sandbox, after: &str) {
    let r = sb.cb().args(["check", "--json"]).run();
    assert_eq!(r.code, 0, "check failed after a kill at {after}\n{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert!(v["errors"].as_array().is_none_or(|e| e.is_empty()), "check reported errors after a kill at {after}: {v}");
}

/// A new incompressible file, several packs' worth at `--pack-size 1`.
fn add_data(src: &Path, round: u64) {
    write(&src.join(format!("data-{round:02}.bin")), &random_bytes(1000 + round, 2_500_000 + round as usize * 977));
    write(&src.join("notes.md"), format!("round {round}\n").repeat(100 + round as usize).as_bytes());
    fs::create_dir_all(src.join(format!("dir-{round:02}"))).unwrap();
    write(&src.join(format!("dir-{round:02}/small.txt")), format!("small file of round {round}").as_bytes());
}

/// The moments a backup is killed at: every kind of object write (packs, index, snapshot, the
/// lease), half-way through a write, between the temporary file and its final name, and between
/// the phases of the backup.
const BACKUP_KILL_POINTS: &[&str] = &[
    "local:mid-write@1",
    "local:mid-write@2",
    "local:mid-write@4",
    "local:before-link@1",
    "local:before-link@2",
    "local:before-link@3",
    "local:before-link@5",
    "packer:after-pack@1",
    "packer:after-pack@2",
    "packer:after-index@1",
    "backup:after-packer@1",
    "backup:before-snapshot@1",
    "backup:after-snapshot@1",
];

#[test]
fn a_backup_killed_at_any_moment_leaves_a_sound_repository() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    add_data(&src, 0);
    // Every snapshot made so far, with a reference restore of it taken when it was made.
    let mut made: Vec<(String, PathBuf)> = Vec::new();
    let remember = |made: &mut Vec<(String, PathBuf)>, id: String, n: usize| {
        let reference = sb.path(&format!("ref-{n:02}"));
        sb.restore(&id, &reference);
        assert_same_tree(&src, &restored(&reference, &src));
        made.push((id, reference));
    };
    let first = sb.backup(&[&src]);
    remember(&mut made, first["snapshot_id"].as_str().unwrap().to_string(), 0);

    for (i, point) in BACKUP_KILL_POINTS.iter().enumerate() {
        let round = i as u64 + 1;
        add_data(&src, round);
        let before = sb.snapshots().len();
        run_killed(&sb, point, &["backup"], &[&src]);
        let after = sb.snapshots().len();
        if *point == "backup:after-snapshot@1" {
            assert_eq!(after, before + 1, "the snapshot was written before the kill");
        } else {
            assert_eq!(after, before, "a backup killed at {point} left a snapshot");
        }
        check_passes(&sb, point);
        for (n, (id, reference)) in made.iter().enumerate() {
            let t = sb.path(&format!("again-{round:02}-{n:02}"));
            sb.restore(id, &t);
            assert_same_tree(&restored(reference, &src), &restored(&t, &src));
            fs::remove_dir_all(&t).unwrap();
        }
        let next = sb.backup(&[&src]);
        remember(&mut made, next["snapshot_id"].as_str().unwrap().to_string(), i + 1);
        check_passes(&sb, &format!("the backup after {point}"));
    }

    // A full read of every pack agrees with the indexes, leftovers and all.
    let r = sb.cb().args(["check", "--read-data", "--json"]).run().ok();
    assert!(r.json()["errors"].as_array().is_none_or(|e| e.is_empty()), "{}", r.stdout);
    // Prune removes what the killed backups left (packs no snapshot uses, indexed or not), and
    // the repository is still whole afterwards.
    let r = sb.cb().args(["check", "--json"]).run().ok();
    let leftovers = r.json()["warnings"].as_array().map_or(0, |w| w.len());
    sb.cb().args(["prune"]).run().ok();
    let r = sb.cb().args(["check", "--read-data", "--json"]).run().ok();
    let v = r.json();
    assert!(v["errors"].as_array().is_none_or(|e| e.is_empty()), "{v}");
    assert!(v["warnings"].as_array().is_none_or(|w| w.is_empty()), "prune left leftovers: {v}");
    eprintln!("check warned of {leftovers} leftover packs before prune, none after");
    for (n, (id, reference)) in made.iter().enumerate() {
        let t = sb.path(&format!("after-prune-{n:02}"));
        sb.restore(id, &t);
        assert_same_tree(&restored(reference, &src), &restored(&t, &src));
    }
    // Killed writes leave at most temporary files, which are never taken for objects.
    let temps: Vec<PathBuf> = files_under(&sb.repo)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-")))
        .collect();
    eprintln!("{} temporary files left by killed writes", temps.len());
}

/// Every regular file under `dir`, relative, with its content.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn an_in_place_restore_killed_mid_way_never_leaves_a_truncated_file() {
    let sb = Sandbox::with_repo();
    let src = sb.path("live");
    fs::create_dir_all(src.join("sub")).unwrap();
    let names: Vec<String> =
        (0..6).map(|i| if i % 2 == 0 { format!("f{i}.bin") } else { format!("sub/f{i}.bin") }).collect();
    for (i, n) in names.iter().enumerate() {
        // Several chunks each, so a kill can land between two chunks of one file.
        write(&src.join(n), &random_bytes(50 + i as u64, 700_000 + i * 1234));
    }
    let snap = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    let old = contents(&src);

    for (k, point) in [
        "restore:after-chunk@1",
        "restore:after-chunk@5",
        "restore:before-rename@1",
        "restore:before-rename@3",
        "restore:after-rename@2",
    ]
    .iter()
    .enumerate()
    {
        // The live files move on: same names, new content (and one new file the snapshot lacks).
        for (i, n) in names.iter().enumerate() {
            write(&src.join(n), &random_bytes(900 + (k * 10 + i) as u64, 300_000 + i * 99));
        }
        let newer = contents(&src);
        run_killed(&sb, point, &["restore", &snap, "--force"], &[]);
        let now = contents(&src);
        let mut restored_files = 0;
        for (rel, data) in &now {
            let name = rel.file_name().unwrap().to_string_lossy();
            if name.starts_with(".clawback-restore-") && name.ends_with(".tmp") {
                continue; // a temporary name: never taken for the file
            }
            let (o, n) = (&old[rel], &newer[rel]);
            assert!(
                data == o || data == n,
                "after a kill at {point}, {rel:?} is neither the snapshot's nor the previous content ({} bytes)",
                data.len()
            );
            restored_files += (data == o) as usize;
        }
        for rel in newer.keys() {
            assert!(now.contains_key(rel), "after a kill at {point}, {rel:?} disappeared");
        }
        eprintln!("{point}: {restored_files} of {} files already restored", names.len());
        // Running the restore again finishes the job and clears the temporary files it owns.
        sb.cb().args(["restore", &snap, "--force"]).run().ok();
        let back = contents(&src);
        for (rel, data) in &old {
            assert!(back.get(rel) == Some(data), "after the second restore, {rel:?} differs from the snapshot");
        }
        // Leftover temporary names of the killed run are removed so the next round starts clean.
        for p in files_under(&src) {
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".clawback-restore-")) {
                fs::remove_file(p).unwrap();
            }
        }
    }
    check_passes(&sb, "the in-place restores");
}
