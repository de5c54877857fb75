//! Object lock and versioned buckets on SeaweedFS: `init --object-lock-days N` records the retention
//! in the repository, every object a backup writes (but leases) carries it, the store refuses to
//! destroy a locked version, and `repair undelete` undoes plain deletes of the whole repository
//! (the agent's attack with the S3 keys) and the delete markers a prune leaves.

use crate::seaweed::{s3cb, Seaweed, ACCESS_KEY, SECRET_KEY};
use crate::support::*;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::Client;
use std::path::Path;

/// A plain SDK client on the test server, as an agent holding the keys would use it: no clawback
/// in between.
struct Raw {
    rt: tokio::runtime::Runtime,
    client: Client,
    bucket: String,
}

impl Raw {
    fn new(sw: &Seaweed, bucket: &str) -> Raw {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .endpoint_url(&sw.endpoint)
            .force_path_style(true)
            .build();
        Raw { rt, client: Client::from_conf(conf), bucket: bucket.into() }
    }

    /// Every current object's key under `prefix`.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let r = self
                .rt
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.take())
                        .send(),
                )
                .unwrap();
            out.extend(r.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match r.next_continuation_token() {
                Some(t) if r.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort();
        out
    }

    /// (key, version id, is a delete marker) of every version under `prefix`.
    fn versions(&self, prefix: &str) -> Vec<(String, String, bool)> {
        let r =
            self.rt.block_on(self.client.list_object_versions().bucket(&self.bucket).prefix(prefix).send()).unwrap();
        assert!(!r.is_truncated().unwrap_or(false), "more versions than one listing holds");
        let mut out: Vec<_> = r
            .versions()
            .iter()
            .map(|v| (v.key().unwrap().to_string(), v.version_id().unwrap_or("null").to_string(), false))
            .chain(
                r.delete_markers()
                    .iter()
                    .map(|m| (m.key().unwrap().to_string(), m.version_id().unwrap_or("null").to_string(), true)),
            )
            .collect();
        out.sort();
        out
    }

    /// The retention HeadObject reports: (mode, seconds from now until it ends).
    fn retention(&self, key: &str, version: Option<&str>) -> Option<(String, i64)> {
        let h = self
            .rt
            .block_on(
                self.client.head_object().bucket(&self.bucket).key(key).set_version_id(version.map(Into::into)).send(),
            )
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
        let mode = h.object_lock_mode()?.as_str().to_string();
        let until = h.object_lock_retain_until_date().unwrap_or_else(|| panic!("{key}: a mode but no date"));
        Some((mode, until.secs() - chrono::Utc::now().timestamp()))
    }

    /// A plain DELETE (no version): on a versioned bucket it adds a delete marker.
    fn delete(&self, key: &str) {
        self.rt.block_on(self.client.delete_object().bucket(&self.bucket).key(key).send()).unwrap();
    }

    /// DELETE of one version: the error code the store answers with, None when it deleted.
    fn delete_version(&self, key: &str, version: &str) -> Option<String> {
        match self.rt.block_on(self.client.delete_object().bucket(&self.bucket).key(key).version_id(version).send()) {
            Ok(_) => None,
            Err(e) => Some(aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or("no code").to_string()),
        }
    }

    fn read(&self, key: &str) -> Vec<u8> {
        let o = self.rt.block_on(self.client.get_object().bucket(&self.bucket).key(key).send()).unwrap();
        self.rt.block_on(o.body.collect()).unwrap().into_bytes().to_vec()
    }
}

fn make_tree(src: &Path, seed: u64) {
    write(&src.join("big.bin"), &random_bytes(seed, 400_000));
    write(&src.join("notes/today.md"), format!("note {seed}\n").repeat(400).as_bytes());
}

/// A copy of `src` as it is now (`cp -a` keeps the times), to compare a restore with later.
fn keep_copy(src: &Path, to: &Path) {
    let st = std::process::Command::new("cp").arg("-a").arg(src).arg(to).status().unwrap();
    assert!(st.success());
}

const DAY: i64 = 86_400;

#[track_caller]
fn assert_about_days(what: &str, got: Option<(String, i64)>, mode: &str, days: i64) {
    let (m, secs) = got.unwrap_or_else(|| panic!("{what} carries no retention"));
    assert_eq!(m, mode, "{what}");
    assert!(
        (days * DAY - 600..=days * DAY + 60).contains(&secs),
        "{what}: retained for {secs} s, not about {days} days"
    );
}

#[test]
fn object_lock_retention_on_every_object_and_a_locked_version_cannot_be_deleted() {
    let sw = Seaweed::start();
    let sb = Sandbox::new();
    let url = sw.url("lockbkt/repo");
    let r = s3cb(&sb, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1", "--object-lock-days", "1"])
        .arg("--json")
        .run()
        .ok();
    assert_eq!(r.json()["object_lock"], serde_json::json!({ "mode": "COMPLIANCE", "days": 1 }));
    let src = sb.path("src");
    make_tree(&src, 1);
    // Backups from the same host need no flag: the retention is the repository's.
    s3cb(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok();
    write(&src.join("notes/second.md"), b"second run");
    s3cb(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok();

    let raw = Raw::new(&sw, "lockbkt");
    let keys = raw.keys("repo/");
    for dir in ["repo/config", "repo/keys/", "repo/data/", "repo/index/", "repo/snapshots/"] {
        assert!(keys.iter().any(|k| k.starts_with(dir)), "nothing under {dir}: {keys:?}");
    }
    for k in &keys {
        assert!(!k.starts_with("repo/locks/"), "a lease outlived its run: {k}");
        assert_about_days(k, raw.retention(k, None), "COMPLIANCE", 1);
    }
    // The leases the runs took and removed were not locked (they stay as old versions only).
    let leases: Vec<_> = raw.versions("repo/locks/").into_iter().filter(|v| !v.2).collect();
    assert!(!leases.is_empty(), "the backups left no trace of a lease");
    for (k, v, _) in &leases {
        assert_eq!(raw.retention(k, Some(v)), None, "lease {k} carries retention");
    }

    // The agent's strongest delete, of the locked version itself, is refused and the pack still reads.
    let pack = keys.iter().find(|k| k.starts_with("repo/data/")).unwrap().clone();
    let before = raw.read(&pack);
    let (_, version, _) = raw.versions(&pack).into_iter().find(|v| !v.2).unwrap();
    assert_eq!(raw.delete_version(&pack, &version).as_deref(), Some("AccessDenied"), "{pack}");
    assert_eq!(raw.read(&pack), before);
    s3cb(&sb, &url).args(["check", "--read-data"]).run().ok();

    // A plain delete "succeeds" with a delete marker: check sees the pack gone, `repair undelete`
    // brings it back (a dry run first, which changes nothing).
    raw.delete(&pack);
    s3cb(&sb, &url).args(["check", "--read-data"]).run().code(1);
    let name = pack.rsplit('/').next().unwrap();
    let r = s3cb(&sb, &url).args(["repair", "undelete", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(r["objects"], serde_json::json!([{ "kind": "data", "name": name, "size": before.len() }]), "{r}");
    assert!(!raw.keys("repo/").contains(&pack), "the dry run brought the pack back");
    let r = s3cb(&sb, &url).args(["repair", "undelete"]).run().ok();
    assert!(r.stdout.contains("1 objects") && r.stdout.contains("brought back"), "{}", r.stdout);
    assert_eq!(raw.read(&pack), before);
    s3cb(&sb, &url).args(["check", "--read-data"]).run().ok();
    // Nothing left to bring back.
    let r = s3cb(&sb, &url).args(["repair", "undelete", "--json"]).run().ok().json();
    assert_eq!(r["objects"], serde_json::json!([]), "{r}");
}

/// The agent's attack: with the S3 keys it deletes every object of the repository. The bucket's
/// versions keep them; `repair undelete` (no password needed) brings everything back, `check
/// --read-data` is clean and every snapshot restores exactly what was on disk.
#[test]
fn every_object_deleted_with_the_s3_keys_comes_back_with_repair_undelete() {
    let sw = Seaweed::start();
    let sb = Sandbox::new();
    let url = sw.url("attacked/team/host1");
    s3cb(&sb, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .args(["--object-lock-days", "2", "--object-lock-mode", "governance"])
        .run()
        .ok();
    let src = sb.path("src");
    make_tree(&src, 7);
    let mut taken = Vec::new();
    for i in 0..3 {
        if i > 0 {
            write(&src.join(format!("notes/{i}.md")), format!("run {i}").as_bytes());
            write(&src.join("big.bin"), &random_bytes(100 + i, 200_000));
        }
        let id = s3cb(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok().json()["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        let copy = sb.path(&format!("taken{i}"));
        keep_copy(&src, &copy);
        taken.push((id, copy));
    }
    let raw = Raw::new(&sw, "attacked");
    let keys = raw.keys("team/host1/");
    assert_about_days(&keys[0], raw.retention(&keys[0], None), "GOVERNANCE", 2);
    for k in &keys {
        raw.delete(k);
    }
    assert!(raw.keys("team/host1/").is_empty());
    let r = s3cb(&sb, &url).args(["snapshots"]).run().code(10);
    assert!(r.one_error_line().contains("does not exist"), "{}", r.stderr);

    let dry = s3cb(&sb, &url).args(["repair", "undelete", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(dry["objects"].as_array().unwrap().len(), keys.len(), "{dry}");
    assert!(raw.keys("team/host1/").is_empty(), "the dry run changed the bucket");
    // No password: the key files are among what comes back.
    let r = s3cb(&sb, &url).env_remove("CLAWBACK_PASSWORD").args(["repair", "undelete", "--json"]).run().ok().json();
    assert_eq!(r["objects"], dry["objects"]);
    assert_eq!(raw.keys("team/host1/"), keys);
    s3cb(&sb, &url).args(["check", "--read-data"]).run().ok();
    let snaps = s3cb(&sb, &url).args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 3);
    for (i, (id, copy)) in taken.iter().enumerate() {
        let target = sb.path(&format!("restored{i}"));
        s3cb(&sb, &url).args(["restore", &id[..8], "--target"]).arg(&target).run().ok();
        assert_same_tree(copy, &restored(&target, &src));
    }
}

/// Forget and prune under object lock: the deletes succeed as delete markers, the repository stays
/// consistent, the bucket keeps every byte until the retention ends, and `repair undelete` can
/// bring back what forget and prune removed.
#[test]
fn prune_under_object_lock_leaves_delete_markers_that_undelete_reverses() {
    let sw = Seaweed::start();
    let sb = Sandbox::new();
    let url = sw.url("pruned/repo");
    s3cb(&sb, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1", "--object-lock-days", "1"])
        .run()
        .ok();
    let src = sb.path("src");
    make_tree(&src, 11);
    let first = s3cb(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok().json()["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let first_copy = sb.path("first");
    keep_copy(&src, &first_copy);
    write(&src.join("big.bin"), &random_bytes(12, 400_000));
    s3cb(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok();
    let raw = Raw::new(&sw, "pruned");
    let before = raw.keys("repo/");

    s3cb(&sb, &url).args(["forget", "--keep-last", "1"]).run().ok();
    let r = s3cb(&sb, &url).args(["prune", "--json"]).run().ok().json();
    assert!(u(&r, "packs_deleted") > 0, "{r}");
    s3cb(&sb, &url).args(["check", "--read-data"]).run().ok();
    assert_eq!(s3cb(&sb, &url).args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len(), 1);
    // Every object that was there before still has its bytes in the bucket, under a delete marker.
    let now = raw.keys("repo/");
    let versions = raw.versions("repo/");
    let gone: Vec<_> = before.iter().filter(|k| !now.contains(k)).collect();
    assert!(gone.iter().any(|k| k.starts_with("repo/data/")), "prune deleted no pack: {gone:?}");
    for k in &gone {
        assert!(versions.iter().any(|v| &v.0 == *k && !v.2), "{k}: its bytes are gone before the retention ended");
        assert!(versions.iter().any(|v| &v.0 == *k && v.2), "{k}: no delete marker");
    }

    let r = s3cb(&sb, &url).args(["repair", "undelete", "--json"]).run().ok().json();
    // What forget and prune removed comes back (and objects the prune wrote and removed itself).
    let back: Vec<&str> = r["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    for k in &gone {
        assert!(back.contains(&k.rsplit('/').next().unwrap()), "{k} did not come back: {r}");
    }
    s3cb(&sb, &url).args(["repair", "index"]).run().ok();
    s3cb(&sb, &url).args(["check", "--read-data"]).run().ok();
    let target = sb.path("restored");
    s3cb(&sb, &url).args(["restore", &first[..8], "--target"]).arg(&target).run().ok();
    assert_same_tree(&first_copy, &restored(&target, &src));
}

/// Object lock is an S3 feature: a local repository refuses the flag with one line and exit 2,
/// and an existing bucket without object lock is refused before anything is written.
#[test]
fn object_lock_needs_an_s3_bucket_that_has_it() {
    let sb = Sandbox::new();
    let r = sb.cb().args(["init", "--object-lock-days", "3"]).run().code(2);
    assert!(r.one_error_line().contains("--object-lock-days needs an S3 repository"), "{}", r.stderr);
    assert!(!sb.repo.join("config").exists());
    let r = sb.cb().args(["init", "--object-lock-mode", "governance"]).run().code(2);
    assert!(r.stderr.contains("--object-lock-days"), "{}", r.stderr);
    let r = sb.cb().args(["repair", "undelete"]).run().code(2);
    assert!(r.one_error_line().contains("repair undelete needs an S3 repository"), "{}", r.stderr);

    let sw = Seaweed::start();
    let url = sw.url("plainbkt/repo");
    s3cb(&sb, &url).args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();
    let url2 = sw.url("plainbkt/other");
    let r = s3cb(&sb, &url2).args(["init", "--object-lock-days", "1"]).run().code(1);
    assert!(r.one_error_line().contains("bucket plainbkt has no object lock"), "{}", r.stderr);
    assert!(Raw::new(&sw, "plainbkt").keys("other/").is_empty());
}

/// Packs above the multipart threshold go up in parts: the retention is set on those too.
#[test]
fn a_multipart_upload_carries_the_retention() {
    use clawback_engine::backend::retention::ObjectLock;
    use clawback_engine::backend::s3::S3Backend;
    use clawback_engine::backend::{Backend, ObjectName};
    use clawback_engine::format::id::PackId;
    let sw = Seaweed::start();
    let mut o = sw.options("multibkt", "repo");
    o.create_bucket = true;
    o.object_lock = Some(ObjectLock::new("compliance", 3).unwrap());
    o.multipart_threshold = 5 << 20;
    o.part_size = 5 << 20;
    let be = S3Backend::new(o).unwrap();
    be.create().unwrap();
    let data = random_bytes(5, 11 << 20);
    let name = "ab".repeat(32);
    be.write(&ObjectName::of(&PackId([0xab; 32])), &data).unwrap();
    assert_eq!(be.requests().iter().find(|r| r.0 == "multipart").map(|r| r.1), Some(5), "{:?}", be.requests());
    let raw = Raw::new(&sw, "multibkt");
    let key = format!("repo/data/ab/{name}");
    assert_about_days(&key, raw.retention(&key, None), "COMPLIANCE", 3);
    assert_eq!(raw.read(&key), data);
}
