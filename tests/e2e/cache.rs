//! The local cache is only a cache: deleting it, damaging it, not using it, or using one that is out
//! of date loses nothing and changes no result.

use crate::support::*;
use std::fs;
use std::path::Path;

fn tree_v1(src: &Path) {
    write(&src.join("data/big.bin"), &random_bytes(20, 3 << 20));
    write(&src.join("data/small.txt"), b"small\n");
    write(&src.join("notes/today.md"), b"# today\n");
    fs::create_dir_all(src.join("empty")).unwrap();
    std::os::unix::fs::symlink("../data/small.txt", src.join("notes/link")).unwrap();
}

fn ids(list: &[serde_json::Value]) -> Vec<String> {
    list.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn deleting_the_cache_loses_nothing() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree_v1(&src);
    sb.backup(&[&src]);
    write(&src.join("notes/today.md"), b"# today\nmore\n");
    sb.backup(&[&src]);
    let before = ids(&sb.snapshots());
    assert_eq!(before.len(), 2);
    assert!(files_under(&sb.cache).iter().any(|p| p.ends_with("cache.db")), "the cache was not where --cache-dir says");

    fs::remove_dir_all(&sb.cache).unwrap();
    assert_eq!(ids(&sb.snapshots()), before, "snapshots after deleting the cache");
    let t = sb.path("t");
    sb.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));
    assert!(sb.cache.exists(), "the cache should be rebuilt on use");

    // Without any cache: the same list, the same files, and no cache folder made.
    fs::remove_dir_all(&sb.cache).unwrap();
    let r = sb.cb().args(["--no-cache", "snapshots", "--json"]).run().ok();
    assert_eq!(ids(r.json().as_array().unwrap()), before);
    let t2 = sb.path("t2");
    sb.cb().args(["--no-cache", "restore", "latest", "--verify", "--target"]).arg(&t2).run().ok();
    assert_same_tree(&src, &restored(&t2, &src));
    assert!(!sb.cache.exists(), "--no-cache wrote a cache");

    // The older snapshot too.
    let t3 = sb.path("t3");
    sb.cb().args(["--no-cache", "restore", &before[0], "--target"]).arg(&t3).run().ok();
    assert_eq!(fs::read(restored(&t3, &src).join("notes/today.md")).unwrap(), b"# today\n");
}

#[test]
fn backup_without_cache_still_deduplicates_and_skips_unchanged_files() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree_v1(&src);
    let b1 = sb.backup(&[&src]);
    let files = u(&b1, "files_new");

    fs::remove_dir_all(&sb.cache).unwrap();
    let b2 = sb.backup(&[&src]);
    assert_eq!(b2["parent_id"], b1["snapshot_id"]);
    assert_eq!(u(&b2, "files_unmodified"), files, "{b2}");
    assert_eq!(u(&b2, "bytes_read"), 0, "{b2}");
    assert!(u(&b2, "bytes_added") < 64 << 10, "{b2}");

    let r = sb.cb().args(["--no-cache", "backup", "--json", "--force"]).arg(&src).run().ok();
    let b3 = r.json();
    // --force reads everything again, but every chunk is already in the repository.
    assert!(u(&b3, "bytes_read") >= 3 << 20, "{b3}");
    assert!(u(&b3, "bytes_added") < 64 << 10, "{b3}");
}

#[test]
fn an_out_of_date_cache_sees_what_other_machines_wrote() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree_v1(&src);
    sb.backup(&[&src]); // fills cache A (the sandbox's)
    let cache_b = sb.path("cache-b");

    // "Another machine" (cache B) backs up a changed tree into the same repository.
    write(&src.join("data/second.bin"), &random_bytes(21, 1 << 20));
    let r = sb.cb_cache(&cache_b).args(["backup", "--json"]).arg(&src).run().ok();
    let b2 = r.json();

    // Cache A has never seen that snapshot, its index or its trees.
    let list = sb.snapshots();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["id"], b2["snapshot_id"]);
    let t = sb.path("t");
    sb.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));
    let b3 = sb.backup(&[&src]);
    assert_eq!(b3["parent_id"], b2["snapshot_id"]);
    assert_eq!(u(&b3, "bytes_read"), 0, "{b3}");
}

#[test]
fn a_damaged_cache_is_thrown_away_and_rebuilt() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree_v1(&src);
    sb.backup(&[&src]);
    let dbs: Vec<_> = files_under(&sb.cache).into_iter().filter(|p| p.to_string_lossy().contains("cache.db")).collect();
    assert!(!dbs.is_empty());
    for db in &dbs {
        fs::write(db, b"this is not a SQLite database, not even close......").unwrap();
    }
    assert_eq!(sb.snapshots().len(), 1);
    let t = sb.path("t");
    sb.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));
}

#[test]
fn the_cache_folder_can_come_from_the_environment() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    tree_v1(&src);
    let env_cache = sb.path("env-cache");
    sb.bare()
        .arg("--repo")
        .arg(&sb.repo)
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .env("CLAWBACK_CACHE_DIR", &env_cache)
        .arg("backup")
        .arg(&src)
        .run()
        .ok();
    assert!(files_under(&env_cache).iter().any(|p| p.ends_with("cache.db")), "CLAWBACK_CACHE_DIR was not used");
    assert!(
        files_under(&sb.path("xdg/cache")).is_empty(),
        "the default cache was used although CLAWBACK_CACHE_DIR was set"
    );
}
