//! Disk full: a local repository on a small tmpfs filled by a backup, and a restore into a full
//! tmpfs. Either must fail with one clear line (exit 1), leave no partial snapshot and no truncated
//! file under its final name, delete nothing that was there, and work again once there is space.
//! Needs root (to mount); skipped with a note otherwise.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs { dir: dir.to_path_buf() })
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
    let Some(disk) = Tmpfs::mount(&sb.path("disk"), "8m") else {
        eprintln!("note: cannot mount a tmpfs (not root, or no permission): disk-full test skipped");
        return;
    };
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
    let Some(small) = Tmpfs::mount(&sb.path("small-target"), "4m") else { return };
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
