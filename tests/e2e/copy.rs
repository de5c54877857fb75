//! `copy --to`: snapshots into a second repository with its own keys; restoring from the copy gives
//! the original tree; copying again writes nothing; a later copy sends only what is new.

use crate::support::*;
use std::path::{Path, PathBuf};

const TO_PASSWORD: &str = "the target's own passphrase";

fn target(sb: &Sandbox) -> PathBuf {
    sb.path("target-repo")
}

/// The binary pointed at the target repository (its own cache folder, its own password).
fn tcb(sb: &Sandbox) -> Cmd {
    sb.bare()
        .arg("--repo")
        .arg(target(sb))
        .arg("--cache-dir")
        .arg(sb.path("target-cache"))
        .env("CLAWBACK_PASSWORD", TO_PASSWORD)
}

fn init_target(sb: &Sandbox) {
    tcb(sb).args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();
}

/// `copy --json --to TARGET EXTRA...` with the target password in the environment.
fn copy(sb: &Sandbox, extra: &[&str]) -> serde_json::Value {
    sb.cb()
        .args(["copy", "--json", "--to"])
        .arg(target(sb))
        .args(extra)
        .env("CLAWBACK_TO_PASSWORD", TO_PASSWORD)
        .run()
        .ok()
        .json()
}

fn target_snapshots(sb: &Sandbox) -> Vec<serde_json::Value> {
    tcb(sb).args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().clone()
}

fn make_tree(src: &Path) {
    write(&src.join("big.bin"), &random_bytes(1, 600_000));
    write(&src.join("notes/today.md"), "the same line again\n".repeat(4000).as_bytes());
    write(&src.join("notes/empty"), b"");
    write(&src.join("deep/a/b/c/leaf.txt"), b"leaf");
    std::os::unix::fs::symlink("../big.bin", src.join("notes/link")).unwrap();
    chmod(&src.join("notes/today.md"), 0o600);
}

#[test]
fn copy_restores_identical_and_copies_again_only_what_is_new() {
    let sb = Sandbox::with_repo();
    init_target(&sb);
    let src = sb.path("src");
    make_tree(&src);
    let b1 = sb.backup(&[&src]);
    let s1 = b1["snapshot_id"].as_str().unwrap().to_string();

    let c = copy(&sb, &[]);
    assert_eq!(c["snapshots_copied"], 1, "{c}");
    assert_eq!(c["snapshots_skipped"], 0, "{c}");
    assert!(u(&c, "blobs_copied") > 5, "{c}");
    assert!(u(&c, "bytes_copied") >= 600_000 + 80_000, "{c}");
    assert!(u(&c, "bytes_stored") > 0, "{c}");
    assert_eq!(c["copied"][0]["source"], s1.as_str());

    // The copy keeps the snapshot's metadata and names its source; its tree has another id,
    // because the target hashes with its own key.
    let src_snaps = sb.snapshots();
    let ts = target_snapshots(&sb);
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0]["original"], s1.as_str());
    for k in ["time", "hostname", "username", "paths", "tags"] {
        assert_eq!(ts[0][k], src_snaps[0][k], "{k}");
    }
    assert_ne!(ts[0]["tree"], src_snaps[0]["tree"], "blob ids are keyed per repository");

    let out = sb.path("out1");
    tcb(&sb).args(["restore", "latest", "--verify", "--target"]).arg(&out).run().ok();
    assert_same_tree(&src, &restored(&out, &src));
    let chk = tcb(&sb).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(chk["ok"], true, "{chk}");

    // Again: nothing new, nothing written.
    let before = files_under(&target(&sb));
    let c = copy(&sb, &[]);
    assert_eq!(c["snapshots_copied"], 0, "{c}");
    assert_eq!(c["snapshots_skipped"], 1, "{c}");
    assert_eq!(c["blobs_copied"], 0, "{c}");
    assert_eq!(c["bytes_stored"], 0, "{c}");
    assert_eq!(files_under(&target(&sb)), before, "a second copy must not write");

    // One more backup with a little new data: the copy sends that, not the big file again.
    write(&src.join("notes/new.bin"), &random_bytes(2, 200_000));
    append(&src.join("deep/a/b/c/leaf.txt"), b" grows");
    let b2 = sb.backup(&[&src]);
    let s2 = b2["snapshot_id"].as_str().unwrap().to_string();
    let c = copy(&sb, &[]);
    assert_eq!(c["snapshots_copied"], 1, "{c}");
    assert_eq!(c["snapshots_skipped"], 1, "{c}");
    assert_eq!(c["copied"][0]["source"], s2.as_str());
    let copied = u(&c, "bytes_copied");
    assert!((200_000..300_000).contains(&copied), "only the new data is copied, got {copied}: {c}");

    let ts = target_snapshots(&sb);
    assert_eq!(ts.len(), 2);
    let newest = ts.iter().find(|t| t["original"] == s2.as_str()).expect("the second copy");
    let first = ts.iter().find(|t| t["original"] == s1.as_str()).expect("the first copy");
    assert_eq!(newest["parent_id"], first["id"], "the parent points at the copy of the source's parent");
    let out = sb.path("out2");
    tcb(&sb).args(["restore", "latest", "--verify", "--target"]).arg(&out).run().ok();
    assert_same_tree(&src, &restored(&out, &src));
    let chk = tcb(&sb).args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(chk["ok"], true, "{chk}");
}

#[test]
fn copy_selects_snapshots_and_creates_the_target() {
    let sb = Sandbox::with_repo();
    let (a, b) = (sb.path("a"), sb.path("b"));
    write(&a.join("one.txt"), b"host one's data");
    write(&b.join("two.txt"), &random_bytes(3, 50_000));
    sb.cb().args(["backup", "--host", "h1", "--json"]).arg(&a).run().ok();
    sb.cb().args(["backup", "--host", "h2", "--json"]).arg(&b).run().ok();

    // Missing target without --to-init: exit 10.
    let r = sb.cb().args(["copy", "--to"]).arg(target(&sb)).env("CLAWBACK_TO_PASSWORD", TO_PASSWORD).run().code(10);
    assert!(r.one_error_line().contains("--to-init"), "{}", r.stderr);

    // --to-init creates it; only h1's latest is copied.
    let c = copy(&sb, &["--to-init", "latest", "--host", "h1"]);
    assert_eq!(c["snapshots_copied"], 1, "{c}");
    let ts = target_snapshots(&sb);
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0]["hostname"], "h1");
    // The rest by filter: h2 now, h1 skipped.
    let c = copy(&sb, &[]);
    assert_eq!((c["snapshots_copied"].as_u64(), c["snapshots_skipped"].as_u64()), (Some(1), Some(1)), "{c}");
    let out = sb.path("out");
    tcb(&sb).args(["restore", "latest", "--host", "h2", "--target"]).arg(&out).run().ok();
    assert_same_tree(&b, &restored(&out, &b));
}

#[test]
fn copy_with_a_wrong_target_password_exits_11() {
    let sb = Sandbox::with_repo();
    init_target(&sb);
    let src = sb.path("src");
    write(&src.join("f"), b"data");
    sb.backup(&[&src]);
    let wrong = "not the target's passphrase";
    let r = sb.cb().args(["copy", "--to"]).arg(target(&sb)).env("CLAWBACK_TO_PASSWORD", wrong).run().code(11);
    let line = r.one_error_line();
    assert!(line.contains("target") && line.contains("password"), "{line}");
    assert!(!r.stderr.contains(wrong) && !r.stdout.contains(wrong), "the password must never be printed");
    // The same through a file.
    let f = sb.path("to-pw");
    write(&f, format!("{wrong}\n").as_bytes());
    sb.cb().args(["copy", "--to"]).arg(target(&sb)).arg("--to-password-file").arg(&f).run().code(11);
    // Nothing was copied.
    assert!(target_snapshots(&sb).is_empty());
}
