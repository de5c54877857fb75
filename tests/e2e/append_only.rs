//! Backups the agent cannot destroy: a repository made with `init --append-only` (local, and on
//! SeaweedFS with a backup host whose identity may read, write and list) takes backups and serves
//! reads, while forget, prune, repair and key removal refuse (exit 1, one line, nothing written)
//! until the maintenance key lifts the mode for one run. `status` says what can delete from here.

use crate::seaweed::{s3cb, Seaweed};
use crate::support::*;
use std::path::{Path, PathBuf};

/// Every file under `dir` with its bytes, to prove a refused command wrote nothing.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn make_tree(src: &Path, seed: u64) {
    write(&src.join("big.bin"), &random_bytes(seed, 300_000));
    write(&src.join("notes/today.md"), format!("note {seed}\n").repeat(500).as_bytes());
}

#[test]
fn local_append_only_refuses_deletes_until_the_maintenance_key_lifts_it() {
    let sb = Sandbox::new();
    let key = sb.path("maintenance.key");
    let r = sb
        .cb()
        .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1", "--append-only", "--json"])
        .arg("--maintenance-key-out")
        .arg(&key)
        .run()
        .ok();
    assert_eq!(r.json()["append_only"], true);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("clawback-maintenance-") && text.trim().len() == 21 + 64, "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!r.stdout.contains(text.trim()), "init must not print the maintenance key");
    // Never over an existing file.
    let sb2 = Sandbox::new();
    let r = sb2.cb().args(["init", "--append-only", "--maintenance-key-out"]).arg(&key).run().code(2);
    assert!(r.one_error_line().contains("does not exist"), "{}", r.stderr);
    assert!(!sb2.repo.join("config").exists());
    // --append-only without a place for the key is a usage error.
    sb2.cb().args(["init", "--append-only"]).run().code(2);

    // Backups and every read work.
    let src = sb.path("src");
    make_tree(&src, 1);
    let first = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    write(&src.join("notes/later.md"), b"added later");
    sb.backup(&[&src]);
    assert_eq!(sb.snapshots().len(), 2);
    sb.restore(&first[..8], &sb.path("restored"));
    assert_eq!(std::fs::read(restored(&sb.path("restored"), &src).join("big.bin")).unwrap(), random_bytes(1, 300_000));
    sb.cb().args(["check", "--read-data"]).run().ok();
    sb.cb().args(["ls", &first[..8]]).run().ok();
    sb.cb().args(["stats"]).run().ok();
    sb.cb().args(["diff", &first[..8], "latest"]).run().ok();
    let to = copy_target(&sb);
    sb.cb().args(["copy", "--to"]).arg(&to).env("CLAWBACK_TO_PASSWORD", "target pw").run().ok();

    // Deleting verbs: one line, exit 1, nothing written.
    let before = tree(&sb.repo);
    let keys: Vec<String> = sb
        .cb()
        .args(["key", "list", "--json"])
        .run()
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    for args in [
        vec!["forget", "--keep-last", "1"],
        vec!["prune"],
        vec!["repair", "index"],
        vec!["repair", "snapshots"],
        vec!["key", "remove", &keys[0][..8]],
    ] {
        let r = sb.cb().args(&args).run().code(1);
        let line = r.one_error_line();
        assert!(line.contains("append-only") && line.contains("--maintenance-key-file"), "{args:?}: {line}");
        assert_eq!(tree(&sb.repo), before, "{args:?} changed the repository");
    }
    assert_eq!(sb.snapshots().len(), 2);

    // status says clawback will not delete, and that this user still could remove the files.
    let st = sb.cb().args(["status", "--json"]).run().json();
    assert_eq!(st["append_only"], true);
    assert_eq!(st["can_delete"], true);
    assert!(st["delete_warning"].as_str().unwrap().contains("without delete rights"), "{st}");

    // A wrong key is refused as such; the right one (file or environment) lifts the mode for one run.
    let wrong = sb.path("wrong.key");
    write(&wrong, b"clawback-maintenance-0000000000000000000000000000000000000000000000000000000000000000\n");
    let r = sb.cb().args(["forget", "--keep-last", "1", "--maintenance-key-file"]).arg(&wrong).run().code(1);
    assert!(r.one_error_line().contains("not this repository's"), "{}", r.stderr);
    sb.cb().args(["forget", "--keep-last", "1", "--maintenance-key-file"]).arg(&key).run().ok();
    assert_eq!(sb.snapshots().len(), 1);
    sb.cb().args(["prune"]).env("CLAWBACK_MAINTENANCE_KEY_FILE", &key).run().ok();
    // Lifted for that run only.
    sb.cb().args(["prune"]).run().code(1);
    sb.cb().args(["check", "--read-data"]).run().ok();
    sb.restore("latest", &sb.path("restored2"));
}

#[test]
fn status_warns_when_an_ordinary_repository_can_be_deleted_from_here() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    make_tree(&src, 2);
    sb.backup(&[&src]);
    let st = sb.cb().args(["status", "--json"]).run().json();
    assert_eq!(st["append_only"], false);
    assert_eq!(st["can_delete"], true);
    assert!(st["delete_warning"].as_str().unwrap().contains("--append-only"), "{st}");
    let text = sb.cb().args(["status"]).run().stdout;
    assert!(text.contains("warning:") && text.contains("can delete snapshots"), "{text}");
    // The probe leaves no lease behind.
    assert_eq!(std::fs::read_dir(sb.repo.join("locks")).unwrap().count(), 0);
}

const ADD_ONLY_KEY: &str = "clawbackaddonly";
const ADD_ONLY_SECRET: &str = "clawback-add-only-secret-0123456789";

/// `clawback --repo URL` with the add-only identity's keys.
fn add_only(sb: &Sandbox, url: &str) -> Cmd {
    s3cb(sb, url).env("AWS_ACCESS_KEY_ID", ADD_ONLY_KEY).env("AWS_SECRET_ACCESS_KEY", ADD_ONLY_SECRET)
}

/// SeaweedFS (4.48) has no identity action for "write but not delete": its `Write` action covers
/// DeleteObject, which this test checks so the README's statement stays true. The backup host
/// therefore gets a Read/Write/List identity and an append-only repository: clawback refuses the
/// deletes, `status` warns that the store would not, and the maintenance host with the key and a
/// full identity forgets and prunes.
#[test]
fn s3_backup_host_with_an_append_only_repository_and_a_maintenance_host() {
    let sw = Seaweed::start_with_identities(vec![serde_json::json!({
        "name": "backup-host",
        "credentials": [{ "accessKey": ADD_ONLY_KEY, "secretKey": ADD_ONLY_SECRET }],
        "actions": ["Read", "Write", "List"]
    })]);
    let sb = Sandbox::new();
    let url = sw.url("append-only/repo");
    let key = sb.path("maintenance.key");
    // The maintenance host (full rights) creates the bucket and the repository, and keeps the key.
    s3cb(&sb, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1", "--append-only"])
        .arg("--maintenance-key-out")
        .arg(&key)
        .run()
        .ok();

    let src = sb.path("src");
    make_tree(&src, 3);
    let r = add_only(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok();
    let first = r.json()["snapshot_id"].as_str().unwrap().to_string();
    write(&src.join("notes/second.md"), b"second run");
    add_only(&sb, &url).args(["backup", "--json"]).arg(&src).run().ok();
    let snaps = add_only(&sb, &url).args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    add_only(&sb, &url).args(["check", "--read-data"]).run().ok();
    let target = sb.path("restored");
    add_only(&sb, &url).args(["restore", &first[..8], "--verify", "--target"]).arg(&target).run().ok();
    assert_eq!(std::fs::read(restored(&target, &src).join("big.bin")).unwrap(), random_bytes(3, 300_000));
    let to = copy_target(&sb);
    add_only(&sb, &url).args(["copy", "--to"]).arg(&to).env("CLAWBACK_TO_PASSWORD", "target pw").run().ok();

    // SeaweedFS lets a `Write` identity delete; status says so honestly.
    let st = add_only(&sb, &url).args(["status", "--json"]).run().json();
    assert_eq!(st["append_only"], true, "{st}");
    assert_eq!(st["can_delete"], true, "SeaweedFS now refuses deletes to a Write identity: update the README");
    assert!(st["delete_warning"].as_str().unwrap().contains("without delete rights"), "{st}");

    for args in [vec!["forget", "--keep-last", "1"], vec!["prune"]] {
        let r = add_only(&sb, &url).args(&args).run().code(1);
        let line = r.one_error_line();
        assert!(line.contains("append-only") && line.contains("--maintenance-key-file"), "{args:?}: {line}");
    }
    assert_eq!(add_only(&sb, &url).args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len(), 2);

    // The maintenance host forgets and prunes; the kept snapshot restores and check is clean.
    let maint = || s3cb(&sb, &url).arg("--maintenance-key-file").arg(&key);
    maint().args(["forget", "--keep-last", "1"]).run().ok();
    maint().args(["prune"]).run().ok();
    add_only(&sb, &url).args(["check", "--read-data"]).run().ok();
    let t2 = sb.path("restored2");
    add_only(&sb, &url).args(["restore", "latest", "--verify", "--target"]).arg(&t2).run().ok();
    assert_eq!(std::fs::read(restored(&t2, &src).join("notes/second.md")).unwrap(), b"second run");
    assert_eq!(add_only(&sb, &url).args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len(), 1);
}

/// The skill's commands are only the safe verbs, it tells the agent which it must never run, and
/// `skill install` writes the skill file and nothing else (no password, no key) under the state dir.
#[test]
fn the_skill_gives_the_agent_only_safe_verbs_and_no_secrets() {
    let sb = Sandbox::new();
    let skill = sb.bare().args(["skill", "show"]).run().ok().stdout;
    let mut in_block = false;
    let mut commands = 0;
    for line in skill.lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if in_block && !line.trim().is_empty() {
            let verb = line.split_whitespace().nth(1).unwrap_or_default();
            assert!(line.starts_with("clawback "), "a skill command that is not clawback: {line}");
            assert!(
                ["backup", "snapshots", "status", "restore", "ls", "diff", "dump", "test"].contains(&verb),
                "the skill gives the agent `{line}`"
            );
            commands += 1;
        }
    }
    assert!(commands >= 5, "the skill's sh blocks were not found");
    for verb in ["`forget`", "`prune`", "`key`", "`init`", "`repair`"] {
        assert!(skill.contains(verb), "the skill does not forbid {verb}");
    }

    let state = sb.path("state");
    std::fs::create_dir_all(&state).unwrap();
    sb.bare()
        .env("OPENCLAW_STATE_DIR", &state)
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .args(["skill", "install"])
        .run()
        .ok();
    let written = tree(&state);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].0.ends_with("skills/clawback/SKILL.md"));
    let body = String::from_utf8_lossy(&written[0].1);
    assert!(!body.contains(PASSWORD) && !body.contains("clawback-maintenance-"));
}

/// A second, ordinary repository (password "target pw") for `copy --to`.
fn copy_target(sb: &Sandbox) -> PathBuf {
    let to = sb.path("copy-target");
    sb.bare()
        .arg("--repo")
        .arg(&to)
        .env("CLAWBACK_PASSWORD", "target pw")
        .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .run()
        .ok();
    to
}
