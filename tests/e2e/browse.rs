//! Finding and rewinding through the built binary: `find` and `history` (with `--patch` and
//! `diff A:PATH B:PATH`) over a week of two-hourly snapshots of a generated OpenClaw home;
//! `rewrite` taking a credentials file out of every snapshot, after which `prune` leaves none of
//! its bytes in any blob; `tag`, `forget ID` and `unlock`; and find/history/rewrite on SeaweedFS.

use crate::seaweed::{s3cb, Seaweed};
use crate::support::*;
use clawback_engine::format::blob::BlobType;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn at(i: usize) -> String {
    (chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap() + chrono::Duration::hours(2 * i as i64))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn hash(p: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(fs::read(p).unwrap()).to_vec()
}

fn rows(db: &Path) -> BTreeMap<String, u64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names
        .into_iter()
        .filter_map(|t| {
            let n: i64 = c.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0)).ok()?;
            Some((t, n as u64))
        })
        .collect()
}

/// Every blob of every pack in the repository, decrypted through the engine.
fn every_blob(repo: &clawback_engine::repo::Repository) -> Vec<(BlobType, Vec<u8>)> {
    let mut out = Vec::new();
    for (pack, size) in repo.stored_packs().unwrap() {
        for e in repo.read_pack_header(&pack, size).unwrap() {
            out.push((e.ty, repo.read_blob(e.ty, &e.id).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn find_and_history_over_a_week_of_two_hourly_snapshots() {
    let sb = Sandbox::with_repo();
    let home = sb.path("oc");
    let mut opts = clawback_corpus::Options::new(&home, 1_500_000);
    opts.seed = 21;
    let gen = clawback_corpus::generate(&opts).expect("generate corpus");
    let state = gen.state_dir.clone();
    let memory = gen.workspaces[0].join("MEMORY.md");
    let db = gen.databases[0].clone();
    let cmd = || sb.cb().env("OPENCLAW_STATE_DIR", &state);
    let mut ids = Vec::new();
    let mut memory_hashes = Vec::new();
    let mut db_rows = Vec::new();
    let mut sessions: Vec<BTreeMap<PathBuf, u64>> = Vec::new();
    let n = 7 * 12;
    for i in 0..n {
        if i > 0 {
            clawback_corpus::tick(&home, 100 + i as u64).expect("tick");
        }
        let b = cmd().args(["backup", "--json", "--time", &at(i)]).arg(&state).run().ok().json();
        ids.push(s(&b["snapshot_id"]).to_string());
        memory_hashes.push(hash(&memory));
        db_rows.push(rows(&db));
        let mut lines = BTreeMap::new();
        for f in files_under(&state) {
            if f.extension().is_some_and(|e| e == "jsonl") {
                lines.insert(f.clone(), fs::read(&f).unwrap().iter().filter(|&&c| c == b'\n').count() as u64);
            }
        }
        sessions.push(lines);
    }

    // find by name: every snapshot holds MEMORY.md, and the unchanged subtrees are read once.
    let f = cmd().args(["find", "--json", "MEMORY.md"]).run().ok().json();
    assert_eq!(u(&f, "snapshots_searched"), n as u64);
    let snaps = f["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), n, "{f}");
    let mem = memory.to_str().unwrap();
    for sn in snaps {
        assert!(sn["matches"].as_array().unwrap().iter().any(|m| m["path"] == mem), "{sn}");
        assert!(sn["matches"].as_array().unwrap().iter().all(|m| s(&m["path"]).ends_with("/MEMORY.md")));
    }
    let last = &snaps[n - 1]["matches"].as_array().unwrap().iter().find(|m| m["path"] == mem).unwrap().clone();
    assert_eq!(u(last, "size"), fs::metadata(&memory).unwrap().len());
    assert!(
        u(&f, "trees_reused") > u(&f, "trees_loaded"),
        "identical subtrees should come from the memo: {} loaded, {} reused",
        f["trees_loaded"],
        f["trees_reused"]
    );

    // --path and --newer agree with the disk.
    let f = cmd().args(["find", "--json", "--path", "**/credentials/*.json"]).run().ok().json();
    let creds = state.join("credentials/oauth.json");
    assert!(f["snapshots"][0]["matches"].as_array().unwrap().iter().any(|m| m["path"] == creds.to_str().unwrap()));
    let cutoff = at(n - 12);
    let cut_ns = chrono::DateTime::parse_from_rfc3339(&cutoff).unwrap().timestamp();
    let want: BTreeSet<String> = sessions[n - 1]
        .keys()
        // clawback's own run log is written after the snapshot, and left out of it.
        .filter(|p| !p.to_string_lossy().contains("/.openclaw/clawback/"))
        .filter(|p| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(p).unwrap().mtime() >= cut_ns
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let f = cmd().args(["find", "--json", "*.jsonl", "--newer", &cutoff, "--host"]).arg(hostname()).run().ok().json();
    let got: BTreeSet<String> = f["snapshots"]
        .as_array()
        .unwrap()
        .last()
        .map(|sn| sn["matches"].as_array().unwrap().iter().map(|m| s(&m["path"]).to_string()).collect())
        .unwrap_or_default();
    assert!(!want.is_empty());
    assert_eq!(got, want, "jsonl files modified after {cutoff} in the last snapshot");
    // Human output groups per snapshot.
    let out = cmd().args(["find", "oauth.json"]).run().ok();
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("snapshot ")).count(), n, "{}", out.stdout);

    // --blob and --tree.
    let repo = open_repo(&sb);
    let (_, snap0) = repo.find_snapshot(&ids[0], |_| true).unwrap();
    let node = match clawback_engine::commands::dump::find(&repo, &snap0, &creds).unwrap() {
        clawback_engine::commands::dump::Found::Node(n) => n,
        _ => unreachable!(),
    };
    let blob = node.content[0].to_hex();
    let f = cmd().args(["find", "--json", "--blob", &blob[..12]]).run().ok().json();
    assert!(f["snapshots"].as_array().unwrap().iter().any(|sn| sn["snapshot"] == ids[0].as_str()), "{f}");
    assert!(f["snapshots"][0]["matches"].as_array().unwrap().iter().any(|m| m["blob"] == blob.as_str()));
    let tree = snap0.tree.to_hex();
    let f = cmd().args(["find", "--json", "--tree", &tree[..16]]).run().ok().json();
    assert_eq!(f["snapshots"][0]["snapshot"], ids[0].as_str(), "{f}");
    assert_eq!(f["snapshots"][0]["matches"][0]["path"], "/");
    cmd().args(["find", "--blob"]).run().code(2);
    cmd().args(["find"]).run().code(2);
    cmd().args(["find", "--newer", "last tuesday", "x"]).run().code(2);

    // history: one version per distinct content, first and last snapshots as on disk.
    let h = cmd().args(["history", "--json"]).arg(&memory).run().ok().json();
    let versions = h["versions"].as_array().unwrap();
    let mut distinct: Vec<&Vec<u8>> = Vec::new();
    for x in &memory_hashes {
        if !distinct.contains(&x) {
            distinct.push(x);
        }
    }
    assert_eq!(versions.len(), distinct.len(), "{h}");
    assert!(versions.len() > 10, "MEMORY.md changes through the week: {}", versions.len());
    assert_eq!(u(&h, "snapshots_holding"), n as u64);
    assert_eq!(versions.iter().map(|v| u(v, "snapshots")).sum::<u64>(), n as u64);
    for (v, want) in versions.iter().zip(&distinct) {
        let first = memory_hashes.iter().position(|x| x == *want).unwrap();
        let lastp = memory_hashes.iter().rposition(|x| x == *want).unwrap();
        assert_eq!(v["first_snapshot"], ids[first].as_str());
        assert_eq!(v["last_snapshot"], ids[lastp].as_str());
        assert_eq!(v["first_time"].as_str().map(|t| t.starts_with(&at(first)[..19])), Some(true), "{v}");
    }
    // --patch: a unified diff between consecutive versions.
    let h = cmd().args(["history", "--json", "--patch"]).arg(&memory).run().ok().json();
    let c = &h["versions"][1]["changes"];
    assert_eq!(c["kind"], "text", "{c}");
    assert!(s(&c["patch"]).contains("@@"), "{c}");
    assert!(h["versions"][0]["changes"].is_null());
    let out = cmd().args(["history", "--patch"]).arg(&memory).run().ok();
    assert!(out.stdout.contains(&format!("{}: {} versions", mem, distinct.len())), "{}", out.stdout);
    cmd().args(["history"]).arg(state.join("no-such-file")).run().code(2);

    // diff A:PATH B:PATH for a transcript: lines appended, as on disk.
    let grown = sessions[1]
        .iter()
        .find(|(p, l)| sessions[0].get(*p).is_some_and(|b| *l > b))
        .map(|(p, _)| p.clone())
        .expect("a transcript grew in the first tick");
    let d = cmd()
        .args(["diff", "--json", &format!("{}:{}", ids[0], grown.display()), &format!("{}:", ids[1])])
        .run()
        .ok()
        .json();
    assert_eq!(d["changes"]["kind"], "jsonl", "{d}");
    assert_eq!(d["changes"]["earlier_changed"], false);
    assert_eq!(u(&d["changes"], "lines_appended"), sessions[1][&grown] - sessions[0][&grown], "{d}");
    // ...and a database: rows per table of both versions, as the live database had them.
    let d = cmd()
        .args(["diff", "--json", &format!("{}:{}", ids[0], db.display()), &format!("{}:{}", ids[n - 1], db.display())])
        .run()
        .ok()
        .json();
    assert_eq!(d["changes"]["kind"], "sqlite", "{d}");
    for t in d["changes"]["tables"].as_array().unwrap() {
        let name = s(&t["table"]);
        assert_eq!(t["rows_before"].as_u64(), db_rows[0].get(name).copied(), "{name}: {d}");
        assert_eq!(t["rows_after"].as_u64(), db_rows[n - 1].get(name).copied(), "{name}: {d}");
    }
    assert_ne!(db_rows[0], db_rows[n - 1], "the database took rows during the week");
    let out = cmd().args(["diff", &format!("latest~1:{}", memory.display()), "latest"]).run().ok();
    assert!(out.stdout.contains("--- ") || out.stdout.contains("same content"), "{}", out.stdout);
    // The two-snapshot diff still works.
    cmd().args(["diff", "--json", &ids[0], &ids[1]]).run().ok().json()["summary"]["files_modified"]
        .as_u64()
        .expect("files_modified");
}

fn hostname() -> String {
    clawback_engine::repo::hostname()
}

#[test]
fn rewrite_takes_a_credential_out_of_every_snapshot_and_prune_frees_its_bytes() {
    let sb = Sandbox::with_repo();
    let home = sb.path("oc");
    let mut opts = clawback_corpus::Options::new(&home, 800_000);
    opts.seed = 5;
    let gen = clawback_corpus::generate(&opts).expect("generate corpus");
    let state = gen.state_dir.clone();
    let creds = state.join("credentials/oauth.json");
    let secrets = ["sk-LEAKED-0f3c9a71d2e84b56a0e1", "sk-LEAKED-SECOND-7d2291cc40ab3e55"];
    let cmd = || sb.cb().env("OPENCLAW_STATE_DIR", &state);
    let mut before = Vec::new();
    for i in 0..6 {
        if i > 0 {
            clawback_corpus::tick(&home, 40 + i as u64).expect("tick");
        }
        let secret = secrets[usize::from(i >= 3)];
        write(
            &creds,
            format!("{{\"access_token\": \"{secret}\", \"padding\": \"{}\"}}\n", "x".repeat(3000)).as_bytes(),
        );
        let b = cmd().args(["backup", "--json", "--tag", "hourly", "--time", &at(i)]).arg(&state).run().ok().json();
        before.push(s(&b["snapshot_id"]).to_string());
    }
    let repo = open_repo(&sb);
    let leaked = |repo: &clawback_engine::repo::Repository| {
        every_blob(repo).iter().filter(|(_, b)| secrets.iter().any(|s| contains(b, s.as_bytes()))).count()
    };
    assert!(leaked(&repo) >= 2, "both secrets are stored before the rewrite");
    let old: BTreeMap<String, serde_json::Value> =
        sb.snapshots().into_iter().map(|v| (s(&v["id"]).to_string(), v)).collect();

    // Dry run: says what, changes nothing.
    let pattern = "**/credentials/oauth.json";
    let r = cmd().args(["rewrite", "--json", "--dry-run", "--exclude", pattern]).run().ok().json();
    assert_eq!(r["rewritten"].as_array().unwrap().len(), 6, "{r}");
    assert!(r["rewritten"][0]["new_snapshot"].is_null());
    assert_eq!(r["rewritten"][0]["removed"][0]["path"], creds.to_str().unwrap());
    let ids_now: BTreeSet<String> = sb.snapshots().iter().map(|v| s(&v["id"]).to_string()).collect();
    assert_eq!(ids_now, old.keys().cloned().collect());
    cmd().args(["rewrite"]).run().code(2);

    // The patterns from a file, as --exclude-file.
    let pf = sb.path("patterns.txt");
    fs::write(&pf, format!("# the leaked token\n{pattern}\n")).unwrap();
    let r = cmd().args(["rewrite", "--json", "--exclude-file"]).arg(&pf).run().ok().json();
    let rewritten = r["rewritten"].as_array().unwrap();
    assert_eq!(rewritten.len(), 6, "{r}");
    let after = sb.snapshots();
    assert_eq!(after.len(), 6);
    for v in &after {
        let orig = s(&v["original"]);
        let o = &old[orig];
        assert!(!old.contains_key(s(&v["id"])), "the original {orig} is forgotten");
        for k in ["time", "hostname", "paths", "tags", "username"] {
            assert_eq!(v[k], o[k], "{k} kept");
        }
        assert_eq!(u(&v["summary"], "total_files"), u(&o["summary"], "total_files") - 1);
    }
    let f = cmd().args(["find", "--json", "oauth.json"]).run().ok().json();
    assert!(f["snapshots"].as_array().unwrap().is_empty(), "{f}");
    // Rewriting again finds nothing to do.
    let r = cmd().args(["rewrite", "--json", "--exclude", pattern]).run().ok().json();
    assert_eq!(r["unchanged"].as_array().unwrap().len(), 6, "{r}");

    // prune frees it; the repository checks out; no blob holds either secret, and no tree names
    // the file.
    cmd().args(["prune", "--max-unused", "0%"]).run().ok();
    cmd().args(["check", "--read-data"]).run().ok();
    let repo = open_repo(&sb);
    assert_eq!(leaked(&repo), 0, "a secret is still in the repository after prune");
    let trees = every_blob(&repo).into_iter().filter(|(t, b)| *t == BlobType::Tree && contains(b, b"oauth.json"));
    assert_eq!(trees.count(), 0, "a tree still names the file");
    // The rest restores: the file is gone, its neighbours and the workspace are as backed up.
    let t = sb.path("t");
    sb.restore("latest", &t);
    let back = restored(&t, &state);
    assert!(!back.join("credentials/oauth.json").exists());
    for f in ["credentials/telegram-pairing.json", "openclaw.json"] {
        assert_eq!(fs::read(back.join(f)).unwrap(), fs::read(state.join(f)).unwrap(), "{f}");
    }
}

fn lease(sb: &Sandbox, kind: &str, id: &str, host: &str, pid: u32, expires: &str) {
    let body = serde_json::json!({
        "version": 1, "kind": kind, "id": id, "hostname": host, "pid": pid,
        "created": "2026-01-01T00:00:00Z", "expires": expires,
    });
    write(&sb.repo.join(format!("locks/{kind}-{id}-1")), body.to_string().as_bytes());
}

#[test]
fn tag_forget_by_id_and_unlock() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    let mut ids = Vec::new();
    for i in 0..3 {
        write(&src.join("f.txt"), format!("version {i}\n").as_bytes());
        let b = sb.cb().args(["backup", "--json", "--time", &at(i)]).arg(&src).run().ok().json();
        ids.push(s(&b["snapshot_id"]).to_string());
    }
    let snap = |id: &str| sb.snapshots().into_iter().find(|v| v["id"] == id);

    // --add writes a new snapshot recording the original and removes the old one.
    let t = sb.cb().args(["tag", "--json", "--add", "keep,audit", &ids[0][..8]]).run().ok().json();
    let new0 = s(&t["changed"][0]["new_snapshot"]).to_string();
    assert!(snap(&ids[0]).is_none(), "the old object is gone");
    let v = snap(&new0).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["keep", "audit"]));
    assert_eq!(v["original"], ids[0].as_str());
    assert!(s(&v["time"]).starts_with(&at(0)[..19]), "time kept: {v}");
    // --remove, then --set on the new one: `original` stays the first.
    let t = sb.cb().args(["tag", "--json", "--remove", "audit", &new0]).run().ok().json();
    let new1 = s(&t["changed"][0]["new_snapshot"]).to_string();
    assert_eq!(snap(&new1).unwrap()["tags"], serde_json::json!(["keep"]));
    assert_eq!(snap(&new1).unwrap()["original"], ids[0].as_str());
    let t = sb.cb().args(["tag", "--json", "--set", "x", "--host"]).arg(hostname()).run().ok().json();
    assert_eq!(t["changed"].as_array().unwrap().len(), 3, "{t}");
    assert!(sb.snapshots().iter().all(|v| v["tags"] == serde_json::json!(["x"])));
    // Already as asked: nothing written.
    let t = sb.cb().args(["tag", "--json", "--add", "x", "latest"]).run().ok().json();
    assert_eq!(t["unchanged"].as_array().unwrap().len(), 1);
    sb.cb().args(["tag", "latest"]).run().code(2);
    sb.cb().args(["tag", "--add", "y"]).run().code(2);
    sb.cb().args(["tag", "--add", "y", "--set", "z", "latest"]).run().code(2);
    // The tagged snapshots still restore.
    sb.cb().args(["check", "--read-data"]).run().ok();

    // forget ID: exactly those.
    let all: Vec<String> = sb.snapshots().iter().map(|v| s(&v["id"]).to_string()).collect();
    let f = sb.cb().args(["forget", "--json", &all[1][..10]]).run().ok().json();
    assert_eq!(f["remove"], serde_json::json!([all[1]]));
    let left: Vec<String> = sb.snapshots().iter().map(|v| s(&v["id"]).to_string()).collect();
    assert_eq!(left, vec![all[0].clone(), all[2].clone()]);
    sb.cb().args(["forget", "--keep-last", "1", &all[0]]).run().code(2);
    sb.cb().args(["forget", "latest"]).run().code(2);
    sb.cb().args(["forget", "ffffffff"]).run().code(2);
    let f = sb.cb().args(["forget", "--json", "--prune", &all[0]]).run().ok().json();
    assert!(f["prune"].is_object(), "{f}");
    assert_eq!(sb.snapshots().len(), 1);

    // unlock: a dead lease of this host, an expired one, an unreadable one go; a live one of
    // another host stays, unless --remove-all.
    let host = hostname();
    lease(&sb, "prune", "00000000000000a1", &host, 9_999_999, "2999-01-01T00:00:00Z");
    lease(&sb, "backup", "00000000000000a2", "elsewhere", 1, "2001-01-01T00:00:00Z");
    write(&sb.repo.join("locks/backup-00000000000000a3-1"), b"not json");
    lease(&sb, "backup", "00000000000000a4", "elsewhere", 1, "2999-01-01T00:00:00Z");
    // The dead prune lease of this host blocks nothing, but prune still runs with it there.
    let u1 = sb.cb().args(["unlock", "--json"]).run().ok().json();
    assert_eq!(u1["removed"].as_array().unwrap().len(), 3, "{u1}");
    assert_eq!(u1["kept"][0]["name"], "backup-00000000000000a4-1");
    assert_eq!(fs::read_dir(sb.repo.join("locks")).unwrap().count(), 1);
    let r = sb.cb().args(["unlock", "--remove-all"]).run().ok();
    assert!(r.stderr.contains("warning: --remove-all"), "{}", r.stderr);
    assert_eq!(fs::read_dir(sb.repo.join("locks")).unwrap().count(), 0);
}

#[test]
fn s3_find_history_and_rewrite() {
    let srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("browse/repo");
    s3cb(&sb, &url).args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();
    let src = sb.path("src");
    let secret = "AKIA-LEAKED-S3-93f1c0";
    write(&src.join("keep/notes.md"), b"first\n");
    write(&src.join("keep/big.bin"), &random_bytes(3, 300_000));
    write(&src.join(".env"), format!("TOKEN={secret}\n").as_bytes());
    let mut ids = Vec::new();
    for i in 0..3 {
        append(&src.join("keep/notes.md"), format!("line {i}\n").as_bytes());
        let b = s3cb(&sb, &url).args(["backup", "--json", "--time", &at(i)]).arg(&src).run().ok().json();
        ids.push(s(&b["snapshot_id"]).to_string());
    }
    let f = s3cb(&sb, &url).args(["find", "--json", ".env"]).run().ok().json();
    assert_eq!(f["snapshots"].as_array().unwrap().len(), 3, "{f}");
    let notes = src.join("keep/notes.md");
    let h = s3cb(&sb, &url).args(["history", "--json", "--patch"]).arg(&notes).run().ok().json();
    assert_eq!(h["versions"].as_array().unwrap().len(), 3, "{h}");
    assert_eq!(u(&h["versions"][2]["changes"], "lines_added"), 1, "{h}");
    let r = s3cb(&sb, &url).args(["rewrite", "--json", "--exclude", "/**/.env"]).run().ok().json();
    assert_eq!(r["rewritten"].as_array().unwrap().len(), 3, "{r}");
    s3cb(&sb, &url).args(["prune", "--max-unused", "0%"]).run().ok();
    s3cb(&sb, &url).args(["check", "--read-data"]).run().ok();
    let f = s3cb(&sb, &url).args(["find", "--json", ".env"]).run().ok().json();
    assert!(f["snapshots"].as_array().unwrap().is_empty(), "{f}");
    // No blob in the bucket holds the secret any more.
    let be = std::sync::Arc::new(
        clawback_engine::backend::s3::S3Backend::new(srv.options("browse", "repo")).expect("S3 backend"),
    );
    let repo = clawback_engine::repo::Repository::open(
        be,
        &clawback_engine::repo::Secret(PASSWORD.as_bytes().to_vec()),
        &clawback_engine::repo::CacheOptions { dir: None, disabled: true },
    )
    .unwrap();
    assert!(every_blob(&repo).iter().all(|(_, b)| !contains(b, secret.as_bytes())));
    let t = sb.path("t");
    s3cb(&sb, &url).args(["restore", "latest", "--target"]).arg(&t).run().ok();
    assert!(!restored(&t, &src).join(".env").exists());
    assert_eq!(fs::read(restored(&t, &src).join("keep/notes.md")).unwrap(), fs::read(&notes).unwrap());
}

#[test]
fn find_newer_and_older_take_a_duration_back_from_now() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("fresh.md"), b"today\n");
    write(&src.join("old.md"), b"three days ago\n");
    let three_days = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
    filetime::set_file_mtime(src.join("old.md"), filetime::FileTime::from_system_time(three_days)).unwrap();
    sb.backup(&[&src]);
    let names = |flag: &str, v: &str| -> BTreeSet<String> {
        let f = sb.cb().args(["find", "--json", "*.md", flag, v]).run().ok().json();
        f["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|sn| {
                sn["matches"].as_array().unwrap().iter().map(|m| s(&m["path"]).rsplit('/').next().unwrap().to_string())
            })
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(names("--newer", "2d"), set(&["fresh.md"]));
    assert_eq!(names("--older", "2d"), set(&["old.md"]));
    assert_eq!(names("--newer", "3d12h"), set(&["fresh.md", "old.md"]));
    assert_eq!(names("--older", "1h"), set(&["old.md"]));
    assert!(names("--newer", "1h").contains("fresh.md"));
    let bad = sb.cb().args(["find", "--newer", "2w", "x"]).run().code(2);
    assert!(bad.stderr.contains("duration back from now"), "{}", bad.stderr);
}
