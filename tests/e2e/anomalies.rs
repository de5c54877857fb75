//! Anomaly warnings that mean something: compared like with like (the parent snapshot of the same
//! paths, the recent runs of the same group), "changed" meaning new content. Re-reads (`--force`),
//! other path sets, first runs, runs after prune and a big but ordinary tick are quiet; most files
//! replaced by random bytes, most files deleted and a 10× jump in new data are flagged.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A workspace of `n` small files (session transcripts, notes).
fn workspace(sb: &Sandbox, name: &str, n: u64) -> PathBuf {
    let ws = sb.path(name);
    for i in 0..n {
        write(&ws.join(format!("sessions/s{i:03}.jsonl")), format!("{{\"turn\":{i}}}\n").repeat(40).as_bytes());
    }
    ws
}

/// `backup --json` of `paths` (plus `extra` flags); returns the anomaly kinds and the JSON.
#[track_caller]
fn backup(sb: &Sandbox, paths: &[&Path], extra: &[&str]) -> (Vec<String>, serde_json::Value) {
    let v = sb.cb().args(["backup", "--json"]).args(extra).args(paths).run().ok().json();
    let kinds = v["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap().to_string()).collect();
    (kinds, v)
}

fn none() -> Vec<String> {
    Vec::new()
}

/// A small ordinary change: one transcript appended.
fn tick(ws: &Path, i: u64) {
    append(&ws.join(format!("sessions/s{:03}.jsonl", i % 100)), format!("{{\"tick\":{i}}}\n").as_bytes());
}

#[test]
fn force_re_reads_are_not_changes() {
    let sb = Sandbox::with_repo();
    let ws = workspace(&sb, "ws", 120);
    assert_eq!(backup(&sb, &[&ws], &[]).0, none(), "first run");
    tick(&ws, 1);
    backup(&sb, &[&ws], &[]);
    // Every file re-read, none with new content (today: "120 of 120 files changed ... ransomware").
    let (kinds, v) = backup(&sb, &[&ws], &["--force"]);
    assert_eq!(kinds, none(), "{v}");
    assert_eq!(v["files_changed"], 120, "--force re-reads every file: {v}");
    assert_eq!(v["files_content_changed"], 0, "{v}");
    // Touched (new mtime), same content: not a change either.
    for f in files_under(&ws) {
        set_mtime(&f, 1_900_000_000, 0);
    }
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert_eq!(kinds, none(), "{v}");
    assert_eq!(v["files_content_changed"], 0, "{v}");
}

#[test]
fn other_paths_first_runs_and_path_set_changes_are_not_compared() {
    let sb = Sandbox::with_repo();
    let ws = workspace(&sb, "ws", 120);
    let small = sb.path("small");
    write(&small.join("a"), b"a");
    write(&small.join("b"), b"b");
    backup(&sb, &[&ws], &[]);
    // First run of another path set, then its second: nothing to flag.
    assert_eq!(backup(&sb, &[&small], &[]).0, none());
    assert_eq!(backup(&sb, &[&small], &[]).0, none());
    // 55 of the workspace's 120 files appended (46%): compared with the 2 files of the other
    // path set's run, this was "55 of 2 files changed (2750%)".
    for i in 0..55 {
        tick(&ws, i);
    }
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert_eq!(kinds, none(), "{v}");
    assert_eq!(v["files_content_changed"], 55);
    // A new path set (workspace plus another folder) is a first run of its group.
    let (kinds, v) = backup(&sb, &[&ws, &small], &[]);
    assert_eq!(kinds, none(), "{v}");
    assert!(v["parent_id"].is_null());
    // The run log records each run's group.
    let log = fs::read_to_string(sb.home.join(".openclaw/clawback/runs.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    let mut want = vec![ws.to_str().unwrap(), small.to_str().unwrap()];
    want.sort();
    assert_eq!(last["paths"], serde_json::json!(want));
}

#[test]
fn a_big_ordinary_tick_and_a_run_after_prune_are_quiet() {
    let sb = Sandbox::with_repo();
    let ws = workspace(&sb, "ws", 120);
    backup(&sb, &[&ws], &[]);
    for i in 0..4 {
        tick(&ws, i);
        write(&ws.join(format!("sessions/new{i}.jsonl")), &random_bytes(i, 100_000));
        assert_eq!(backup(&sb, &[&ws], &[]).0, none(), "tick {i}");
    }
    // A busy hour: five new long transcripts (6 MiB in all) and twenty appended ones.
    for i in 0..5 {
        write(&ws.join(format!("sessions/long{i}.jsonl")), &random_bytes(50 + i, 1_200_000));
    }
    for i in 10..30 {
        tick(&ws, i);
    }
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert_eq!(kinds, none(), "{v}");
    // After forget and prune, the next run still compares with its parent.
    sb.cb().args(["forget", "--keep-last", "1", "--prune"]).run().ok();
    tick(&ws, 99);
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert_eq!(kinds, none(), "{v}");
    assert!(v["parent_id"].is_string());
}

#[test]
fn mass_encryption_mass_deletion_and_a_10x_jump_in_new_data_are_flagged() {
    let sb = Sandbox::with_repo();
    let ws = workspace(&sb, "ws", 120);
    backup(&sb, &[&ws], &[]);
    for i in 0..4 {
        tick(&ws, i);
        write(&ws.join(format!("notes/n{i}.md")), &random_bytes(i, 200_000));
        assert_eq!(backup(&sb, &[&ws], &[]).0, none(), "tick {i}");
    }
    // 20 MiB of new data, against a median of about 0.2 MiB.
    write(&ws.join("notes/dump.bin"), &random_bytes(9, 20 << 20));
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert_eq!(kinds, vec!["bytes_added"], "{v}");

    // Ransomware: 100 of the 120 transcripts replaced by random bytes of the same size.
    let sessions: Vec<PathBuf> = files_under(&ws.join("sessions"));
    for (i, f) in sessions.iter().take(100).enumerate() {
        let len = fs::metadata(f).unwrap().len() as usize;
        write(f, &random_bytes(1000 + i as u64, len));
    }
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert!(kinds.contains(&"mass_change".to_string()), "{v}");
    let msg = v["anomalies"][0]["message"].as_str().unwrap();
    assert!(msg.contains("100 of 125 files"), "{msg}");

    // Mass deletion: the transcripts gone.
    fs::remove_dir_all(ws.join("sessions")).unwrap();
    let (kinds, v) = backup(&sb, &[&ws], &[]);
    assert_eq!(kinds, vec!["mass_deletion"], "{v}");
    let status = sb.cb().args(["status", "--json"]).run().json();
    assert_eq!(status["anomalies"][0]["kind"], "mass_deletion", "{status}");
}
