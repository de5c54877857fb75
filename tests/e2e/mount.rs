//! `mount` through the kernel (FUSE, as root with /dev/fuse: the tests fail, not skip, without it):
//! several snapshots read back byte for byte with their sizes, modes, mtimes, owners, symlinks and
//! hard-link counts while a backup and a prune run; `latest` links; a new snapshot showing up while
//! mounted; SIGTERM unmounting; a mount of an S3 repository; a missing mount point.

use crate::seaweed::{s3cb, Seaweed};
use crate::support::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `clawback mount`; dropped, it is stopped and the mount point cleared whatever happened.
struct Mounted {
    child: Option<Child>,
    at: PathBuf,
}

fn is_mounted(at: &Path) -> bool {
    let want = fs::canonicalize(at).unwrap_or_else(|_| at.to_path_buf());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4).map(Path::new) == Some(want.as_path()))
}

impl Mounted {
    #[track_caller]
    fn start(mut c: Command, at: &Path) -> Mounted {
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the mount tests need FUSE (run as root where /dev/fuse exists)"
        );
        fs::create_dir_all(at).unwrap();
        let child = c.arg("mount").arg(at).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
        let mut m = Mounted { child: Some(child.expect("start clawback mount")), at: at.to_path_buf() };
        let t = Instant::now();
        while !at.join("snapshots").exists() {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(m.child.as_mut().unwrap().stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("clawback mount exited {st:?} before mounting:\n{err}");
            }
            assert!(t.elapsed() < Duration::from_secs(30), "the mount did not come up in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// Sends `sig` and waits for the process; returns its exit code and stderr.
    fn stop(&mut self, sig: i32) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = wait_or_kill(&mut child, Duration::from_secs(30), || "clawback mount did not stop".into());
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (st.code(), err)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop(libc::SIGKILL);
        }
        if is_mounted(&self.at) {
            let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        }
    }
}

/// Source state `v`: content that changes between versions, a file over several chunks, modes,
/// an exact mtime, a symlink and a hard link.
fn make_state(src: &Path, v: u64) {
    write(&src.join("notes.md"), format!("notes, version {v}\n").as_bytes());
    write(&src.join("data/big.bin"), &random_bytes(v, 3_000_000 + v as usize * 1000));
    write(&src.join("data/same.bin"), &random_bytes(99, 400_000));
    write(&src.join("empty"), b"");
    chmod(&src.join("notes.md"), 0o640);
    chmod(&src.join("data/same.bin"), 0o600);
    set_mtime(&src.join("empty"), 1_600_000_000 + v as i64, 123_456_789);
    let link = src.join("link");
    if fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("data/big.bin", &link).unwrap();
    }
    let twin = src.join("twin.md");
    let _ = fs::remove_file(&twin);
    fs::hard_link(src.join("notes.md"), &twin).unwrap();
}

/// Asserts the mounted `got` shows exactly `want`: the same entries, kinds, sizes, modes, mtimes,
/// owners, symlink targets and bytes, and each file's link count.
#[track_caller]
fn assert_shows(want: &Path, got: &Path) {
    let (a, b) = (scan(want), scan(got));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{} lists other entries", got.display());
    for (p, ea) in &a {
        let eb = &b[p];
        let what = got.join(p);
        assert_eq!(
            (ea.kind, ea.size, ea.mtime, ea.uid, ea.gid, &ea.target),
            (eb.kind, eb.size, eb.mtime, eb.uid, eb.gid, &eb.target),
            "{}",
            what.display()
        );
        if ea.kind != "symlink" {
            assert_eq!(ea.mode, eb.mode, "mode of {}", what.display());
        }
        if ea.kind == "file" {
            let nl = |q: &Path| fs::metadata(q).unwrap().nlink();
            assert_eq!(nl(&want.join(p)), nl(&what), "link count of {}", what.display());
            assert!(fs::read(want.join(p)).unwrap() == fs::read(&what).unwrap(), "bytes of {}", what.display());
        }
    }
}

fn read_link(p: &Path) -> String {
    fs::read_link(p).unwrap().to_string_lossy().into_owned()
}

fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

#[test]
fn mount_shows_snapshots_byte_for_byte_while_a_backup_and_a_prune_run() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = sb.path("src");
    let mut states = Vec::new();
    for v in 0..3u64 {
        make_state(&src, v);
        let host = if v == 1 { "other" } else { "alpha" };
        let time = format!("2026-03-0{}T10:00:00Z", v + 1);
        sb.cb().args(["backup", "--host", host, "--tag", &format!("t{v}"), "--time", &time]).arg(&src).run().ok();
        let keep = sb.path(&format!("state{v}"));
        let st = Command::new("cp").arg("-a").arg(&src).arg(&keep).status().unwrap();
        assert!(st.success());
        states.push(keep);
    }
    let mnt = sb.path("mnt");
    let mut m = Mounted::start(sb.cb_command(), &mnt);
    let rel = src.strip_prefix("/").unwrap();
    let times = ["2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z"];

    assert_eq!(names(&mnt), ["hosts", "ids", "snapshots", "tags"]);
    assert_eq!(names(&mnt.join("snapshots")), [times[0], times[1], times[2], "latest"]);
    assert_eq!(read_link(&mnt.join("snapshots/latest")), times[2]);
    assert_eq!(names(&mnt.join("hosts")), ["alpha", "other"]);
    assert_eq!(read_link(&mnt.join("hosts/alpha/latest")), times[2]);
    assert_eq!(read_link(&mnt.join("hosts/other/latest")), times[1]);
    assert_eq!(names(&mnt.join("tags")), ["t0", "t1", "t2"]);
    assert_eq!(read_link(&mnt.join("tags/t0/latest")), times[0]);
    let ids: Vec<String> = sb.snapshots().iter().map(|s| s["id"].as_str().unwrap()[..8].to_string()).collect();
    let mut want_ids = ids.clone();
    want_ids.sort();
    assert_eq!(names(&mnt.join("ids")), want_ids);
    // Followed through the `latest` link, the way a user would.
    assert_shows(&states[2], &mnt.join("snapshots/latest").join(rel));
    assert_shows(&states[1], &mnt.join("hosts/other").join(times[1]).join(rel));
    assert_shows(&states[0], &mnt.join("ids").join(&ids[0]).join(rel));
    let root_mtime = fs::metadata(mnt.join("snapshots").join(times[0])).unwrap().mtime();
    assert_eq!(root_mtime, 1_772_359_200, "a snapshot's folder has the snapshot's time");

    // A backup and a forget+prune run while every snapshot is read again and again: snapshots
    // the prune keeps read back exactly; the forgotten one reads back exactly or fails (EIO),
    // never with other bytes.
    let sb2 = &sb;
    let src2 = &src;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            make_state(src2, 3);
            sb2.cb().args(["backup", "--host", "alpha", "--time", "2026-03-04T10:00:00Z"]).arg(src2).run().ok();
            // Host alpha has snapshots 0, 2 and 3: keeping its last two forgets snapshot 0.
            sb2.cb().args(["forget", "--host", "alpha", "--keep-last", "2"]).run().ok();
            sb2.cb().args(["prune", "--max-unused", "0%"]).run().ok();
        });
        let mut rounds = 0;
        while !writer.is_finished() || rounds < 2 {
            assert_shows(&states[2], &mnt.join("snapshots").join(times[2]).join(rel));
            assert_shows(&states[1], &mnt.join("snapshots").join(times[1]).join(rel));
            let big = mnt.join("snapshots").join(times[0]).join(rel).join("data/big.bin");
            if let Ok(b) = fs::read(&big) {
                assert!(
                    b == fs::read(states[0].join("data/big.bin")).unwrap(),
                    "a forgotten snapshot read wrong bytes"
                );
            }
            rounds += 1;
        }
        writer.join().unwrap();
    });

    // The new snapshot shows up, and `latest` moves to it.
    let t = Instant::now();
    while read_link(&mnt.join("snapshots/latest")) != "2026-03-04T10:00:00Z" {
        assert!(t.elapsed() < Duration::from_secs(10), "the new snapshot did not appear while mounted");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_shows(&src, &mnt.join("snapshots/latest").join(rel));
    assert_shows(&states[2], &mnt.join("snapshots").join(times[2]).join(rel));

    // SIGTERM unmounts and exits 0; the mount point is an empty folder again.
    let (code, err) = m.stop(libc::SIGTERM);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("unmounted"), "{err}");
    assert!(!is_mounted(&mnt));
    assert!(names(&mnt).is_empty());
}

#[test]
fn mount_serves_an_s3_repository() {
    let sw = Seaweed::start();
    let sb = Sandbox::new();
    let url = sw.url("mount/repo");
    s3cb(&sb, &url).args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();
    let src = sb.path("src");
    make_state(&src, 1);
    s3cb(&sb, &url).args(["backup", "--time", "2026-04-01T00:00:00Z"]).arg(&src).run().ok();
    let mnt = sb.path("mnt");
    let mut c = Command::new(bin());
    sb.clean_env(&mut c)
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .env("AWS_ACCESS_KEY_ID", crate::seaweed::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", crate::seaweed::SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("--repo")
        .arg(&url)
        .arg("--cache-dir")
        .arg(&sb.cache);
    let mut m = Mounted::start(c, &mnt);
    let got = mnt.join("snapshots/2026-04-01T00:00:00Z").join(src.strip_prefix("/").unwrap());
    assert!(fs::read(got.join("data/big.bin")).unwrap() == fs::read(src.join("data/big.bin")).unwrap());
    assert_shows(&src, &got);
    let (code, err) = m.stop(libc::SIGINT);
    assert_eq!(code, Some(0), "{err}");
    assert!(!is_mounted(&mnt));
}

#[test]
fn mount_refuses_a_missing_mount_point() {
    let sb = Sandbox::with_repo();
    let r = sb.cb().arg("mount").arg(sb.path("nope")).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains("nope") && line.contains("mkdir"), "{line}");
}
