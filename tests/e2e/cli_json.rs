//! Machine output (`--json`) has the shapes docs/CONTRACT.md gives; `--quiet` is quiet; aliases work.

use crate::support::*;
use serde_json::Value;
use std::path::Path;

const BACKUP_KEYS: [&str; 11] = [
    "snapshot_id",
    "parent_id",
    "files_new",
    "files_changed",
    "files_unmodified",
    "dirs",
    "bytes_read",
    "bytes_added",
    "bytes_stored",
    "duration_s",
    "errors",
];
const COUNTERS: [&str; 8] = [
    "files_new",
    "files_changed",
    "files_unmodified",
    "dirs",
    "bytes_read",
    "bytes_added",
    "bytes_stored",
    "duration_s",
];

fn tree(src: &Path) {
    write(&src.join("a.txt"), b"hello\n");
    write(&src.join("dir/b.bin"), &random_bytes(1, 5000));
    chmod(&src.join("dir/b.bin"), 0o640);
    set_mtime(&src.join("dir/b.bin"), 1_000_000_000, 500_000_000);
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
}

fn is_hex64(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn backup_json_has_every_contract_key() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree(&src);
    let r = sb.cb().args(["backup", "--json"]).arg(&src).run().ok();
    assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
    let v = r.json();
    for k in BACKUP_KEYS {
        assert!(v.get(k).is_some(), "backup --json lacks {k}: {v}");
    }
    assert!(is_hex64(&v["snapshot_id"]), "{v}");
    assert!(v["parent_id"].is_null());
    for k in &BACKUP_KEYS[2..10] {
        assert!(v[k].is_number(), "{k} is not a number: {v}");
    }
    assert!(v["errors"].is_array());
    assert_eq!(u(&v, "files_new"), 2);
    assert_eq!(u(&v, "dirs"), 2, "src and src/dir: {v}");
    assert_eq!(u(&v, "bytes_read"), 6 + 5000);
    assert!(u(&v, "bytes_stored") > 5000);

    let r = sb.cb().args(["backup", "--json"]).arg(&src).run().ok();
    let v2 = r.json();
    assert_eq!(v2["parent_id"], v["snapshot_id"]);
}

#[test]
fn snapshots_json_items_have_every_contract_key() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree(&src);
    let b1 = sb
        .cb()
        .args(["backup", "--json", "--tag", "daily", "--tag", "pre-upgrade"])
        .args(["--host", "claw-host", "--time", "2001-02-03T04:05:06Z"])
        .arg(&src)
        .run()
        .ok()
        .json();
    let b2 = sb.cb().args(["backup", "--json", "--host", "claw-host"]).arg(&src).run().ok().json();
    let list = sb.snapshots();
    assert_eq!(list.len(), 2);
    for s in &list {
        for k in ["id", "short_id", "time", "hostname", "username", "paths", "tags", "parent_id", "summary"] {
            assert!(s.get(k).is_some(), "snapshot lacks {k}: {s}");
        }
        for k in COUNTERS {
            assert!(s["summary"][k].is_number(), "summary lacks {k}: {s}");
        }
        assert!(is_hex64(&s["id"]));
        assert!(s["id"].as_str().unwrap().starts_with(s["short_id"].as_str().unwrap()));
        assert_eq!(s["hostname"], "claw-host");
        assert_eq!(s["username"], "e2e");
        assert_eq!(s["paths"], serde_json::json!([src.to_str().unwrap()]));
    }
    // Oldest first: the --time 2001 snapshot.
    let (s1, s2) = (&list[0], &list[1]);
    assert_eq!(s1["id"], b1["snapshot_id"]);
    assert_eq!(s2["id"], b2["snapshot_id"]);
    assert_eq!(s1["tags"], serde_json::json!(["daily", "pre-upgrade"]));
    assert_eq!(s2["tags"], serde_json::json!([]));
    assert!(s1["parent_id"].is_null());
    assert_eq!(s2["parent_id"], s1["id"]);
    assert!(s1["time"].as_str().unwrap().starts_with("2001-02-03T04:05:06"), "{s1}");
    for k in ["files_new", "bytes_read", "bytes_added", "dirs"] {
        assert_eq!(s1["summary"][k], b1[k], "summary.{k}");
    }

    // Filters.
    let r = sb.cb().args(["snapshots", "--json", "--tag", "daily"]).run().ok();
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = sb.cb().args(["snapshots", "--json", "--latest", "1"]).run().ok();
    assert_eq!(r.json()[0]["id"], b2["snapshot_id"]);
    let r = sb.cb().args(["snapshots", "--json", "--host", "other"]).run().ok();
    assert_eq!(r.json(), serde_json::json!([]));
    // The `list` alias and a short-id prefix.
    sb.cb().args(["list"]).run().ok();
    let short = s1["short_id"].as_str().unwrap();
    let r = sb.cb().args(["ls", "--json", short]).run().ok();
    assert!(r.json().as_array().unwrap().len() >= 4);
}

#[test]
fn ls_json_items_have_every_contract_key() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree(&src);
    sb.backup(&[&src]);
    let v = sb.cb().args(["ls", "--json", "latest"]).run().ok().json();
    let items = v.as_array().expect("array");
    for it in items {
        for k in ["path", "type", "size", "mode", "mtime"] {
            assert!(it.get(k).is_some(), "ls item lacks {k}: {it}");
        }
    }
    let find = |p: &Path| -> &Value {
        items
            .iter()
            .find(|i| i["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not listed in {v}", p.display()))
    };
    let b = find(&src.join("dir/b.bin"));
    assert_eq!(b["type"], "file");
    assert_eq!(b["size"], 5000);
    assert_eq!(b["mode"], 0o640);
    assert!(b["mtime"].as_str().unwrap().starts_with("2001-09-09T01:46:40.5"), "{b}");
    assert_eq!(find(&src.join("dir"))["type"], "dir");
    assert_eq!(find(&src.join("link"))["type"], "symlink");
    assert_eq!(find(&src)["type"], "dir");

    // Under a path: only that subtree.
    let v = sb.cb().args(["ls", "--json", "latest"]).arg(src.join("dir")).run().ok().json();
    let paths: Vec<&str> = v.as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec![src.join("dir/b.bin").to_str().unwrap()]);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    tree(&src);
    let quiet = |args: &[&str], extra: Option<&Path>| {
        let mut c = sb.cb().arg("--quiet").args(args);
        if let Some(p) = extra {
            c = c.arg(p);
        }
        let r = c.run().ok();
        assert_eq!(r.stdout, "", "{args:?} printed on stdout");
        assert_eq!(r.stderr, "", "{args:?} printed on stderr");
    };
    quiet(&["init", "--kdf-memory", "1", "--kdf-iterations", "1"], None);
    quiet(&["backup"], Some(&src));
    quiet(&["now"], Some(&src)); // the alias
    let t = sb.path("t");
    quiet(&["restore", "latest", "--target"], Some(&t));
    assert_same_tree(&src, &restored(&t, &src));
    assert_eq!(sb.snapshots().len(), 2);

    // Without --quiet and without --json, a human summary on stdout.
    let r = sb.cb().arg("backup").arg(&src).run().ok();
    assert!(r.stdout.contains("snapshot"), "{}", r.stdout);
    // init --json and restore --json are JSON too.
    let r = sb.cb().args(["restore", "latest", "--json", "--target"]).arg(sb.path("t2")).run().ok();
    assert_eq!(r.json()["files"], 2);
}

#[test]
fn dry_run_backup_stores_nothing() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree(&src);
    let before = files_under(&sb.repo);
    let v = sb.cb().args(["backup", "--json", "--dry-run"]).arg(&src).run().ok().json();
    assert!(v["snapshot_id"].is_null(), "{v}");
    assert_eq!(u(&v, "files_new"), 2, "{v}");
    assert_eq!(u(&v, "bytes_read"), 5006, "{v}");
    assert_eq!(files_under(&sb.repo), before, "--dry-run wrote to the repository");
    assert!(sb.snapshots().is_empty());
    // A real backup afterwards stores everything (the dry run did not mark blobs as stored).
    let v = sb.backup(&[&src]);
    let t = sb.path("t");
    sb.restore(v["snapshot_id"].as_str().unwrap(), &t);
    assert_same_tree(&src, &restored(&t, &src));
}

#[test]
fn the_repository_can_come_from_the_environment() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree(&src);
    sb.backup(&[&src]);
    let r = sb
        .bare()
        .env("CLAWBACK_REPO", &sb.repo)
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .args(["snapshots", "--json"])
        .run()
        .ok();
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // local: prefix, and the flag beating the environment.
    let r = sb
        .bare()
        .env("CLAWBACK_REPO", sb.path("nowhere"))
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .arg("--repo")
        .arg(format!("local:{}", sb.repo.display()))
        .args(["snapshots", "--json"])
        .run()
        .ok();
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}
