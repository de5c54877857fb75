//! `repair index` and `repair snapshots`: an index rebuilt from the pack headers alone after every
//! index file is gone, and snapshots rewritten after a pack is lost so that every undamaged file
//! restores and `check` passes.

use crate::support::*;
use std::fs;

fn files(sb: &Sandbox, n: u64, size: usize) -> std::path::PathBuf {
    let src = sb.path("src");
    for i in 0..n {
        let sub = src.join(format!("d{}", i % 3));
        write(&sub.join(format!("f{i:02}.bin")), &random_bytes(700 + i, size));
    }
    src
}

#[test]
fn repair_index_after_deleting_every_index_file_restores_full_function() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let src = files(&sb, 12, 200_000);
    let first = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    write(&src.join("d0/extra.txt"), b"second snapshot\n");
    let second = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    let packs = files_under(&sb.repo.join("data")).len();
    for f in files_under(&sb.repo.join("index")) {
        fs::remove_file(f).unwrap();
    }
    // Without an index (on a machine with no cache) nothing restores and check fails.
    let fresh = sb.path("fresh-cache");
    sb.cb_cache(&fresh).args(["check"]).run().code(1);

    let dry = sb.cb_cache(&fresh).args(["repair", "index", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(dry["packs_added"].as_array().unwrap().len(), packs, "{dry}");
    assert!(files_under(&sb.repo.join("index")).is_empty(), "a dry run writes nothing");

    let v = sb.cb_cache(&fresh).args(["repair", "index", "--json"]).run().ok().json();
    assert_eq!(v["packs_added"].as_array().unwrap().len(), packs, "{v}");
    assert_eq!(v["blobs_before"], 0, "{v}");
    assert!(v["blobs_after"].as_u64().unwrap() > 12, "{v}");
    assert_eq!(files_under(&sb.repo.join("index")).len(), 1, "one consolidated index");
    let human = sb.cb_cache(&fresh).args(["repair", "index"]).run().ok().stdout;
    assert!(human.contains("0 packs added, 0 removed"), "{human}");

    for cache in [&fresh, &sb.cache] {
        let v = sb.cb_cache(cache).args(["check", "--read-data", "--json"]).run().ok().json();
        assert_eq!(v["ok"], true, "{v}");
    }
    for id in [&first, &second] {
        let t = sb.path(&format!("t-{}", &id[..8]));
        sb.cb_cache(&fresh).args(["restore", id, "--verify", "--target"]).arg(&t).run().ok();
        let r = restored(&t, &src);
        for i in 0..12u64 {
            let p = format!("d{}/f{i:02}.bin", i % 3);
            assert!(same_content(&r.join(&p), &src.join(&p)), "{p}");
        }
    }
    // Backups work again and deduplicate against the rebuilt index.
    let b = sb.backup(&[&src]);
    assert!(b["bytes_added"].as_u64().unwrap() < 100_000, "{b}");
}

#[test]
fn repair_snapshots_after_losing_a_pack_keeps_every_undamaged_file() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let n = 30u64;
    let src = files(&sb, n, 90_000);
    let snap = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    // Lose the biggest pack (a data pack: tree packs are small here).
    let mut packs = files_under(&sb.repo.join("data"));
    packs.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let lost = packs.pop().unwrap();
    fs::remove_file(&lost).unwrap();
    let c = sb.cb().args(["check", "--json"]).run().code(1).json();
    assert_eq!(c["ok"], false);

    let dry = sb.cb().args(["repair", "snapshots", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(dry["snapshots_repaired"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(sb.snapshots()[0]["id"], snap.as_str(), "a dry run keeps the snapshot");

    sb.cb().args(["repair", "index"]).run().ok();
    let v = sb.cb().args(["repair", "snapshots", "--json"]).run().ok().json();
    let rep = &v["snapshots_repaired"][0];
    assert_eq!(rep["snapshot"], snap.as_str(), "{v}");
    let dropped: Vec<String> = rep["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["action"], "dropped file", "{c}");
            c["path"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(!dropped.is_empty() && dropped.len() < n as usize, "{v}");

    let snaps = sb.snapshots();
    assert_eq!(snaps.len(), 1, "the damaged snapshot is replaced");
    let new = snaps[0]["id"].as_str().unwrap().to_string();
    assert_eq!(rep["new_snapshot"], new.as_str());
    assert!(snaps[0]["tags"].as_array().unwrap().iter().any(|t| t == "repaired"), "{}", snaps[0]);
    assert_eq!(snaps[0]["original"], snap.as_str(), "{}", snaps[0]);

    let v = sb.cb().args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(v["ok"], true, "{v}");
    let t = sb.path("t");
    sb.restore(&new, &t);
    let r = restored(&t, &src);
    let mut restored_files = 0;
    for i in 0..n {
        let p = format!("d{}/f{i:02}.bin", i % 3);
        let was_dropped = dropped.iter().any(|d| d.ends_with(&p));
        assert_eq!(r.join(&p).exists(), !was_dropped, "{p}");
        if !was_dropped {
            assert!(same_content(&r.join(&p), &src.join(&p)), "{p}");
            restored_files += 1;
        }
    }
    assert_eq!(restored_files + dropped.len(), n as usize);
    // Nothing more to repair.
    let again = sb.cb().args(["repair", "snapshots", "--json"]).run().ok().json();
    assert!(again["snapshots_repaired"].as_array().unwrap().is_empty(), "{again}");
}
