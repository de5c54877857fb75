//! Incremental backups read only what changed and store only the delta.

use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

#[test]
fn second_backup_reads_only_changed_files_and_stores_only_the_delta() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("big.bin"), &random_bytes(10, 20 * MIB as usize));
    for i in 0..10 {
        write(&src.join(format!("notes/n{i}.md")), &random_bytes(100 + i, 10_000));
    }
    write(&src.join("config.json"), b"{\"a\": 1}\n");
    let files_before = 12u64;

    let b1 = sb.backup(&[&src]);
    assert_eq!(u(&b1, "files_new"), files_before, "{b1}");
    assert_eq!(u(&b1, "files_changed"), 0);
    assert_eq!(u(&b1, "files_unmodified"), 0);
    assert_eq!(u(&b1, "bytes_read"), 20 * MIB + 100_000 + 9);
    assert!(b1["parent_id"].is_null());
    let repo_1 = du(&sb.repo);

    // Two hours later: 1 KB appended to the big file, one note rewritten in place (same size),
    // one rewritten by a tool that puts the old mtime back (same size, same mtime: only the
    // ctime tells), one new file, one file deleted; eight files untouched.
    append(&src.join("big.bin"), &random_bytes(11, 1024));
    write(&src.join("notes/n3.md"), &random_bytes(999, 10_000));
    let n5 = src.join("notes/n5.md");
    let md5 = fs::metadata(&n5).unwrap();
    write(&n5, &random_bytes(998, 10_000));
    set_mtime(&n5, md5.mtime(), md5.mtime_nsec() as u32);
    write(&src.join("notes/new.md"), &random_bytes(12, 5_000));
    fs::remove_file(src.join("notes/n9.md")).unwrap();

    let b2 = sb.backup(&[&src]);
    assert_eq!(b2["parent_id"], b1["snapshot_id"], "{b2}");
    assert_eq!(u(&b2, "files_changed"), 3, "{b2}");
    assert_eq!(u(&b2, "files_new"), 1, "{b2}");
    assert_eq!(u(&b2, "files_unmodified"), files_before - 4, "{b2}");
    assert_eq!(
        u(&b2, "bytes_read"),
        (20 * MIB + 1024) + 10_000 + 10_000 + 5_000,
        "only the changed and new files are read: {b2}"
    );
    let added = u(&b2, "bytes_added");
    assert!(
        (1024 + 25_000..2 * MIB).contains(&added),
        "bytes_added {added} should be about the delta, not the 20 MB file: {b2}"
    );
    let growth = du(&sb.repo) - repo_1;
    assert!(growth < 2 * MIB + MIB / 2, "the repository grew by {growth} bytes");
    assert_eq!(growth, u(&b2, "bytes_stored"), "bytes_stored should be what was written to the repository");

    // Nothing changed: nothing read, every file unmodified, next to nothing stored.
    let b3 = sb.backup(&[&src]);
    assert_eq!(b3["parent_id"], b2["snapshot_id"]);
    assert_eq!(u(&b3, "bytes_read"), 0, "{b3}");
    assert_eq!(u(&b3, "files_unmodified"), files_before - 1 + 1, "{b3}");
    assert_eq!(u(&b3, "files_new") + u(&b3, "files_changed"), 0, "{b3}");
    // Only the folders above the backed-up path (whose mtimes other tests change) may differ.
    assert!(u(&b3, "bytes_added") < 64 << 10, "{b3}");

    // Both versions are still there.
    let ls1 =
        sb.cb().args(["ls", "--json", b1["snapshot_id"].as_str().unwrap()]).arg(src.join("big.bin")).run().ok().json();
    assert_eq!(ls1[0]["size"].as_u64(), Some(20 * MIB), "{ls1}");
    let t = sb.path("t");
    sb.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));
    let t1 = sb.path("t1");
    sb.restore(b1["snapshot_id"].as_str().unwrap(), &t1);
    let old = restored(&t1, &src);
    assert_eq!(fs::metadata(old.join("big.bin")).unwrap().len(), 20 * MIB);
    assert!(old.join("notes/n9.md").exists());
    assert!(!old.join("notes/new.md").exists());
}

/// What change detection keys on, per regular file.
fn stat_files(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, u64)> {
    scan(root)
        .into_iter()
        .filter(|(_, e)| e.kind == "file")
        .map(|(p, _)| {
            let md = fs::symlink_metadata(root.join(&p)).unwrap();
            let key = (
                md.len(),
                md.mtime() * 1_000_000_000 + md.mtime_nsec(),
                md.ctime() * 1_000_000_000 + md.ctime_nsec(),
                md.ino(),
            );
            (p, key)
        })
        .collect()
}

#[test]
fn openclaw_home_after_two_hours_of_activity() {
    let sb = Sandbox::with_repo();
    let home = sb.path("oc-home");
    let mut opts = clawback_corpus::Options::new(&home, 30_000_000);
    opts.seed = 7;
    let gen = clawback_corpus::generate(&opts).expect("generate corpus");
    let state = gen.state_dir.clone();

    let b1 = sb.backup(&[&state]);
    let before = stat_files(&state);
    assert_eq!(u(&b1, "files_new"), before.len() as u64, "{b1}");

    let ts = clawback_corpus::tick(&home, 1).expect("tick");
    let after = stat_files(&state);
    let mut new = 0u64;
    let mut changed = 0u64;
    let mut unchanged = 0u64;
    let mut read = 0u64;
    for (p, k) in &after {
        match before.get(p) {
            None => {
                new += 1;
                read += k.0;
            }
            Some(old) if old != k => {
                changed += 1;
                read += k.0;
            }
            Some(_) => unchanged += 1,
        }
    }
    assert!(new + changed > 0, "the tick changed nothing; the test proves nothing");

    let b2 = sb.backup(&[&state]);
    assert_eq!(u(&b2, "files_new"), new, "{b2}");
    assert_eq!(u(&b2, "files_changed"), changed, "{b2}");
    assert_eq!(u(&b2, "files_unmodified"), unchanged, "{b2}");
    assert_eq!(u(&b2, "bytes_read"), read, "{b2}");
    assert!(u(&b2, "bytes_added") <= read + (256 << 10), "{b2}");
    assert!(
        u(&b2, "bytes_added") < ts.bytes_added + (3 << 20),
        "bytes_added should be about what the tick wrote ({} bytes): {b2}",
        ts.bytes_added
    );
    assert!(
        u(&b2, "bytes_added") < u(&b1, "bytes_added") / 2,
        "a tick should cost much less than the first backup: {b2}"
    );

    eprintln!(
        "note: tick changed {} files, added {} files, grew by {} bytes; backup added {} bytes",
        ts.files_changed,
        ts.files_added,
        ts.bytes_added,
        u(&b2, "bytes_added")
    );

    let t = sb.path("t");
    sb.restore("latest", &t);
    assert_same_tree(&state, &restored(&t, &state));
}
