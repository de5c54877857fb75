//! Maintenance commands: `forget` with retention policies, `check` finding damage and naming what
//! it affects, and `stats`.

use crate::support::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn ids(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array().expect("array of ids").iter().map(|i| i.as_str().unwrap().to_string()).collect()
}

/// `backup --time T --json` of `src`; returns the snapshot id.
fn backup_at(sb: &Sandbox, src: &Path, time: &str, extra: &[&str]) -> String {
    let r = sb.cb().args(["backup", "--json", "--time", time]).args(extra).arg(src).run().ok();
    r.json()["snapshot_id"].as_str().expect("snapshot_id").to_string()
}

fn snapshot_ids(sb: &Sandbox) -> BTreeSet<String> {
    sb.snapshots().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn forget_applies_the_policy_and_kept_snapshots_still_restore() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("big.bin"), &random_bytes(1, 300_000));
    // Hand-checked (TZ=UTC): newest first, --keep-daily 2 --keep-monthly 2 keeps
    // 5 (Feb 21: daily, monthly), 3 (Feb 20: daily), 0 (January: monthly); removes 4, 2, 1.
    let times = [
        "2026-01-10T10:00:00Z",
        "2026-02-15T10:00:00Z",
        "2026-02-20T08:00:00Z",
        "2026-02-20T09:00:00Z",
        "2026-02-21T07:00:00Z",
        "2026-02-21T12:00:00Z",
    ];
    let mut snaps = Vec::new();
    for (i, t) in times.iter().enumerate() {
        write(&src.join("n.txt"), format!("version {i}\n").as_bytes());
        snaps.push(backup_at(&sb, &src, t, &[]));
    }
    let want_keep: BTreeSet<String> = [0, 3, 5].iter().map(|&i| snaps[i].clone()).collect();
    let want_remove: BTreeSet<String> = [1, 2, 4].iter().map(|&i| snaps[i].clone()).collect();

    // No policy anywhere: a usage error that says so.
    let r = sb.cb().args(["forget"]).run().code(2);
    assert!(r.one_error_line().contains("no retention policy"), "{}", r.stderr);

    let policy = ["--keep-daily", "2", "--keep-monthly", "2"];
    let dry = sb.cb().args(["forget", "--json", "--dry-run"]).args(policy).run().ok().json();
    assert_eq!(ids(&dry["keep"]), want_keep, "{dry}");
    assert_eq!(ids(&dry["remove"]), want_remove, "{dry}");
    assert_eq!(snapshot_ids(&sb).len(), 6, "a dry run removes nothing");
    assert_eq!(dry["reasons"][&snaps[5]], serde_json::json!(["daily snapshot", "monthly snapshot"]), "{dry}");
    assert_eq!(dry["reasons"][&snaps[3]], serde_json::json!(["daily snapshot"]), "{dry}");
    assert_eq!(dry["reasons"][&snaps[0]], serde_json::json!(["monthly snapshot"]), "{dry}");

    let v = sb.cb().args(["forget", "--json"]).args(policy).run().ok().json();
    assert_eq!(ids(&v["keep"]), want_keep, "{v}");
    assert_eq!(ids(&v["remove"]), want_remove, "{v}");
    assert_eq!(snapshot_ids(&sb), want_keep);
    // Another machine (a fresh cache) sees the same.
    let other = sb.path("other-cache");
    let listed = sb.cb_cache(&other).args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 3);

    for i in [0usize, 3, 5] {
        let t = sb.path(&format!("t{i}"));
        sb.restore(&snaps[i], &t);
        let r = restored(&t, &src);
        assert_eq!(fs::read(r.join("n.txt")).unwrap(), format!("version {i}\n").as_bytes());
        assert!(same_content(&r.join("big.bin"), &src.join("big.bin")));
    }
    // Forgetting again with the same policy removes nothing more.
    let again = sb.cb().args(["forget", "--json"]).args(policy).run().ok().json();
    assert!(ids(&again["remove"]).is_empty(), "{again}");
    sb.cb().args(["check"]).run().ok();
}

#[test]
fn forget_uses_the_configs_max_backups_and_keeps_pre_restore_snapshots() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("f.txt"), b"hello\n");
    let now = chrono::Utc::now();
    let at = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Ages 40, 20, 10 days, one `pre-restore` safety snapshot 2 days old, and 1 day.
    let old40 = backup_at(&sb, &src, &at(40), &[]);
    let old20 = backup_at(&sb, &src, &at(20), &[]);
    let old10 = backup_at(&sb, &src, &at(10), &[]);
    let safety = backup_at(&sb, &src, &at(2), &["--tag", "pre-restore"]);
    let new1 = backup_at(&sb, &src, &at(1), &[]);
    let cfg = sb.path("clawback.json");
    // maxAgeDays 30 drops the 40-day one, then maxBackups 2 keeps the newest two (new1, safety).
    write(&cfg, br#"{ retention: { maxBackups: 2, maxAgeDays: 30 } }"#);
    let v = sb.cb().arg("--config").arg(&cfg).args(["forget", "--json", "--dry-run"]).run().ok().json();
    assert_eq!(ids(&v["keep"]), [new1.clone(), safety.clone()].into_iter().collect(), "{v}");
    assert_eq!(ids(&v["remove"]), [old40.clone(), old20.clone(), old10.clone()].into_iter().collect(), "{v}");

    // A policy that would drop the safety snapshot keeps it anyway.
    let v = sb.cb().args(["forget", "--json", "--keep-last", "1"]).run().ok().json();
    assert_eq!(ids(&v["keep"]), [new1.clone(), safety.clone()].into_iter().collect(), "{v}");
    assert_eq!(v["reasons"][&safety], serde_json::json!(["pre-restore safety (7 days)"]), "{v}");
    assert_eq!(snapshot_ids(&sb), [new1, safety].into_iter().collect());
}

/// A repository with one snapshot of a few files, and the snapshot's id.
fn damaged_fixture() -> (Sandbox, PathBuf, String) {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a.bin"), &random_bytes(1, 200_000));
    write(&src.join("sub/b.bin"), &random_bytes(2, 150_000));
    write(&src.join("sub/c.txt"), b"a small text file\n");
    let id = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    let clean = sb.cb().args(["check", "--read-data", "--json"]).run().ok().json();
    assert_eq!(clean["ok"], true, "{clean}");
    assert!(clean["errors"].as_array().unwrap().is_empty());
    assert!(u(&clean, "packs_checked") >= 2, "{clean}");
    assert!(u(&clean, "blobs_checked") >= 5, "{clean}");
    (sb, src, id)
}

/// The data pack: the largest file under `data/`.
fn data_pack(sb: &Sandbox) -> (PathBuf, String) {
    let p = files_under(&sb.repo.join("data")).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    (p, name)
}

/// Runs `check --read-data --json`, expects exit 1 and an error about `pack` that names
/// `snapshot` and files under `src`; returns the report and those files.
#[track_caller]
fn expect_damage(sb: &Sandbox, args: &[&str], pack: &str, snapshot: &str, src: &Path) -> BTreeSet<String> {
    let r = sb.cb().args(["check", "--json"]).args(args).run().code(1);
    let v = r.json();
    assert_eq!(v["ok"], false, "{v}");
    let errors = v["errors"].as_array().unwrap();
    let mut files = BTreeSet::new();
    let mut named = false;
    for e in errors.iter().filter(|e| e["pack"] == pack) {
        assert!(e["message"].as_str().unwrap().contains(pack), "{e}");
        if let Some(f) = e["files"].as_array() {
            named = true;
            assert!(ids(&e["snapshots"]).contains(snapshot), "{e}");
            for f in f {
                let f = f.as_str().unwrap();
                assert!(Path::new(f).starts_with(src), "{f} is not a backed-up file");
                files.insert(f.to_string());
            }
        }
    }
    assert!(named, "no error names pack {pack} with the files it affects: {v}");
    // The human form names them too, and exits 1.
    let h = sb.cb().args(["check"]).args(args).run().code(1);
    assert!(h.stdout.contains(pack), "{}", h.stdout);
    files
}

fn src_files(src: &Path) -> BTreeSet<String> {
    ["a.bin", "sub/b.bin", "sub/c.txt"].iter().map(|f| src.join(f).to_string_lossy().into_owned()).collect()
}

#[test]
fn check_read_data_finds_a_flipped_bit() {
    let (sb, src, snap) = damaged_fixture();
    let (p, name) = data_pack(&sb);
    let mut bytes = fs::read(&p).unwrap();
    bytes[100] ^= 0x10;
    chmod(&p, 0o600);
    fs::write(&p, &bytes).unwrap();
    // The structure is intact: only reading the data finds it.
    sb.cb().args(["check"]).run().ok();
    let files = expect_damage(&sb, &["--read-data"], &name, &snap, &src);
    assert_eq!(files.len(), 1, "one blob, one file: {files:?}");
    assert!(files.is_subset(&src_files(&src)));
    // The subset that holds the pack finds it too; n/m groups are by the id's first byte.
    let first = u8::from_str_radix(&name[..2], 16).unwrap() as u32;
    let n = first % 4 + 1;
    expect_damage(&sb, &["--read-data-subset", &format!("{n}/4")], &name, &snap, &src);
    let other = first % 4 + 1;
    let other = if other == 4 { 1 } else { other + 1 };
    let v = sb.cb().args(["check", "--json", "--read-data-subset", &format!("{other}/4")]).run().json();
    assert!(v["errors"].as_array().unwrap().iter().all(|e| e["pack"] != name.as_str()), "{v}");
}

#[test]
fn check_finds_a_truncated_pack() {
    let (sb, src, snap) = damaged_fixture();
    let (p, name) = data_pack(&sb);
    let len = fs::metadata(&p).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len / 2).unwrap();
    let files = expect_damage(&sb, &[], &name, &snap, &src);
    assert!(!files.is_empty());
    let files = expect_damage(&sb, &["--read-data"], &name, &snap, &src);
    assert!(files.is_subset(&src_files(&src)));
}

#[test]
fn check_finds_a_missing_pack() {
    let (sb, src, snap) = damaged_fixture();
    let (p, name) = data_pack(&sb);
    fs::remove_file(&p).unwrap();
    let files = expect_damage(&sb, &[], &name, &snap, &src);
    assert!(files.contains(&src.join("a.bin").to_string_lossy().into_owned()), "{files:?}");
    assert!(files.contains(&src.join("sub/b.bin").to_string_lossy().into_owned()), "{files:?}");
    expect_damage(&sb, &["--read-data"], &name, &snap, &src);
}

#[test]
fn check_finds_a_missing_index_file() {
    let (sb, src, snap) = damaged_fixture();
    let (_, name) = data_pack(&sb);
    for f in files_under(&sb.repo.join("index")) {
        fs::remove_file(f).unwrap();
    }
    let files = expect_damage(&sb, &["--read-data"], &name, &snap, &src);
    assert_eq!(files, src_files(&src), "every file's data is in the unindexed pack");
    expect_damage(&sb, &[], &name, &snap, &src);
}

#[test]
fn stats_reports_sizes_and_ratios() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a.bin"), &random_bytes(5, 400_000));
    write(&src.join("notes.md"), "some notes that compress well\n".repeat(2000).as_bytes());
    sb.backup(&[&src]);
    sb.backup(&[&src]);
    let v = sb.cb().args(["stats", "--json"]).run().ok().json();
    for k in ["snapshots", "files", "raw_bytes", "stored_bytes", "dedup_ratio", "compression_ratio", "packs", "blobs"] {
        assert!(v.get(k).is_some(), "stats --json lacks {k}: {v}");
    }
    let notes = 2000 * "some notes that compress well\n".len() as u64;
    assert_eq!(u(&v, "snapshots"), 2);
    assert_eq!(u(&v, "files"), 4, "{v}");
    assert_eq!(u(&v, "raw_bytes"), 2 * (400_000 + notes), "{v}");
    let dedup = v["dedup_ratio"].as_f64().unwrap();
    assert!((1.9..=2.01).contains(&dedup), "two identical snapshots: dedup about 2, got {v}");
    assert!(v["compression_ratio"].as_f64().unwrap() > 1.0, "{v}");
    assert!(u(&v, "stored_bytes") <= du(&sb.repo), "{v}");
    assert!(u(&v, "stored_bytes") > 400_000, "{v}");
    assert!(u(&v, "packs") >= 2 && u(&v, "blobs") >= 3, "{v}");
    let h = sb.cb().args(["stats"]).run().ok();
    assert!(h.stdout.contains("Dedup ratio"), "{}", h.stdout);
}

#[test]
fn check_reports_a_damaged_index_file() {
    let (sb, _src, _snap) = damaged_fixture();
    let idx = files_under(&sb.repo.join("index")).pop().unwrap();
    let name = idx.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = fs::read(&idx).unwrap();
    bytes[20] ^= 1;
    chmod(&idx, 0o600);
    fs::write(&idx, &bytes).unwrap();
    // A fresh cache has to read the index file, and finds it damaged.
    let fresh = sb.path("fresh-cache");
    let r = sb.cb_cache(&fresh).args(["check", "--json"]).run().code(1);
    let v = r.json();
    assert_eq!(v["ok"], false);
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["index"] == name.as_str()), "{v}");
    r.one_error_line();
}
