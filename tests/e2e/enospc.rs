//! Disk full: a local repository on a small tmpfs filled by a backup, a restore into a full tmpfs,
//! and a cache folder on a tmpfs too small for it. Each must fail with one clear line (exit 1) or,
//! for the cache, carry on without it; leave no partial snapshot and no truncated file under its
//! final name, delete nothing that was there, and work again once there is space. Needs root (to
//! mount, as in CI): without it the tests fail, naming the cause.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    #[track_caller]
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run mount to make a {size} tmpfs ({e}): the disk-full tests need mount(8)")
            });
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs at {}: {} — the disk-full tests need root (run them as root, as CI does)",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir: dir.to_path_buf() }
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.dir).status().unwrap();
        assert!(st.success(), "remount {} with size {size}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn snapshot_count(sb: &Sandbox) -> usize {
    sb.snapshots().len()
}

#[test]
fn a_full_disk_fails_cleanly_and_the_next_run_succeeds() {
    let mut sb = Sandbox::new();
    let disk = Tmpfs::mount(&sb.path("disk"), "8m");
    sb.repo = disk.dir.join("repo");
    sb.init(&["--pack-size", "1"]);

    // A first snapshot that fits.
    let src = sb.path("src");
    write(&src.join("small/a.txt"), b"a small file that fits\n");
    write(&src.join("small/b.bin"), &random_bytes(1, 1_000_000));
    let first = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    let before = sb.path("before");
    sb.restore(&first, &before);

    // Then far more than the disk holds.
    for i in 0..6 {
        write(&src.join(format!("big/{i}.bin")), &random_bytes(100 + i, 2_000_000));
    }
    let r = sb.cb().args(["backup"]).arg(&src).run().code(1);
    let line = r.one_error_line().to_string();
    assert!(
        line.to_ascii_lowercase().contains("no space left") || line.to_ascii_lowercase().contains("disk is full"),
        "the error says the disk is full: {line}"
    );
    eprintln!("backup on a full disk: {line}");
    assert_eq!(snapshot_count(&sb), 1, "no partial snapshot");
    let c = sb.cb().args(["check", "--read-data", "--json"]).run().ok();
    assert!(c.json()["errors"].as_array().is_none_or(|e| e.is_empty()), "{}", c.stdout);
    let again = sb.path("again");
    sb.restore(&first, &again);
    assert_same_tree(&restored(&before, &src), &restored(&again, &src));

    // Space comes back: the next backup succeeds and restores exactly.
    disk.resize("64m");
    let second = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    sb.cb().args(["check", "--read-data"]).run().ok();
    let out = sb.path("out");
    sb.restore(&second, &out);
    assert_same_tree(&src, &restored(&out, &src));

    // Restoring into a disk too small: a clear error, and every file under its final name complete.
    let small = Tmpfs::mount(&sb.path("small-target"), "4m");
    let r = sb.cb().args(["restore", &second, "--target"]).arg(&small.dir).run().code(1);
    assert!(r.stderr.contains("No space left on device"), "the restore error says the disk is full: {}", r.stderr);
    eprintln!("restore onto a full disk: {}", r.stderr.trim());
    let mut complete = 0;
    for f in files_under(&small.dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".clawback-restore-") {
            continue;
        }
        let rel = f.strip_prefix(restored(&small.dir, &src)).expect("restored under the source path");
        assert_eq!(
            fs::read(&f).unwrap(),
            fs::read(src.join(rel)).unwrap(),
            "{rel:?} is incomplete under its final name"
        );
        complete += 1;
    }
    let temps = files_under(&small.dir)
        .iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(".clawback-restore-"))
        .count();
    eprintln!("{complete} complete files restored before the disk filled, {temps} temporary files left");
    assert_eq!(temps, 0, "a failed restore removes its temporary files");
    drop(small);
    drop(disk);
}

/// A source of many small files and some data: index files, trees and the blob table that fill a
/// small cache.
fn many_files(src: &Path, round: u64) {
    for i in 0..1500u64 {
        write(&src.join(format!("notes/{}/n{i}.md", i % 40)), format!("note {i} of round {round}\n").as_bytes());
    }
    write(&src.join(format!("data-{round}.bin")), &random_bytes(round, 3_000_000));
}

#[test]
fn a_full_cache_disk_never_half_commits_and_the_next_run_works() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let cache = Tmpfs::mount(&sb.path("cache-disk"), "128k");
    let src = sb.path("src");
    many_files(&src, 1);
    let cb =
        || sb.bare().arg("--repo").arg(&sb.repo).arg("--cache-dir").arg(&cache.dir).env("CLAWBACK_PASSWORD", PASSWORD);

    let r = cb().args(["backup", "--json"]).arg(&src).run();
    let snaps = sb.snapshots().len();
    match r.code {
        // Carried on without the cache: the snapshot is whole.
        0 => {
            assert_eq!(snaps, 1, "{}", r.stdout);
            eprintln!("backup with a full cache disk carried on: {}", r.stderr.trim());
        }
        1 => {
            let line = r.one_error_line().to_ascii_lowercase();
            assert!(line.contains("no space left") || line.contains("full"), "the error says the disk is full: {line}");
            assert!(line.contains("cache"), "the error names the cache: {line}");
            assert_eq!(snaps, 0, "a failed backup left a snapshot");
            eprintln!("backup with a full cache disk: {}", r.stderr.trim());
        }
        c => panic!("backup with a full cache disk exited {c}\n{}", r.stderr),
    }
    let v = sb.cb().args(["check", "--read-data", "--json"]).run().ok().json();
    assert!(v["errors"].as_array().is_none_or(|e| e.is_empty()), "{v}");

    // Space comes back: the same cache folder works, and what it holds is right.
    cache.resize("64m");
    many_files(&src, 2);
    let id = cb().args(["backup", "--json"]).arg(&src).run().ok().json()["snapshot_id"].as_str().unwrap().to_string();
    let out = sb.path("out");
    cb().args(["restore", &id, "--verify", "--target"]).arg(&out).run().ok();
    assert_same_tree(&src, &restored(&out, &src));
    // An incremental run through the cache that filled: still exact.
    write(&src.join("notes/0/n0.md"), b"changed after the disk filled\n");
    let id = cb().args(["backup", "--json"]).arg(&src).run().ok().json()["snapshot_id"].as_str().unwrap().to_string();
    let out2 = sb.path("out2");
    cb().args(["restore", &id, "--verify", "--target"]).arg(&out2).run().ok();
    assert_same_tree(&src, &restored(&out2, &src));
    let v = cb().args(["check", "--read-data", "--json"]).run().ok().json();
    assert!(v["errors"].as_array().is_none_or(|e| e.is_empty()), "{v}");
    drop(cache);
}
