//! Retention after every backup, as the OpenClaw Backup docs promise: `backup`/`now` forget what
//! the configured policy drops from the new snapshot's group (same host, same paths), prune starts
//! in the background at most once per `retention.pruneEvery`, and `enabled: false` stops
//! scheduled runs but not a backup asked for by hand.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn config(sb: &Sandbox, text: &str) -> PathBuf {
    let p = sb.path("clawback.json");
    fs::write(&p, text).unwrap();
    p
}

fn clawback_dir(sb: &Sandbox) -> PathBuf {
    sb.home.join(".openclaw/clawback")
}

fn run_log(sb: &Sandbox) -> Vec<serde_json::Value> {
    let p = clawback_dir(sb).join("runs.jsonl");
    fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `now --json` of `paths` with the config, expecting success.
#[track_caller]
fn now(sb: &Sandbox, cfg: &Path, paths: &[&Path], extra: &[&str]) -> serde_json::Value {
    sb.cb().arg("--config").arg(cfg).args(["now", "--json"]).args(extra).args(paths).run().ok().json()
}

fn count_in_group(sb: &Sandbox, path: &Path) -> usize {
    let p = path.to_str().unwrap();
    sb.snapshots().iter().filter(|s| s["paths"] == serde_json::json!([p])).count()
}

/// Waits until `n` prunes started after backups have finished (their `--json` object, or an
/// error line, in the prune log) and returns the log.
fn wait_for_prunes(sb: &Sandbox, n: usize) -> String {
    let log = clawback_dir(sb).join("prune.log");
    let t = Instant::now();
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let ended = text.lines().filter(|l| l.starts_with('{') || l.starts_with("clawback:")).count();
        if ended >= n {
            return text;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "{n} prunes did not finish:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn nine_backups_with_max_backups_7_leave_7_of_that_group_and_prune_once() {
    let sb = Sandbox::with_repo();
    let cfg = config(&sb, r#"{ retention: { maxBackups: 7 } }"#);
    let (a, b) = (sb.path("a"), sb.path("b"));
    write(&b.join("other.txt"), b"another path set");
    for i in 0..3 {
        write(&b.join(format!("b{i}")), &random_bytes(100 + i, 1000));
        now(&sb, &cfg, &[&b], &[]);
    }
    let mut removed = Vec::new();
    for i in 0..9 {
        write(&a.join(format!("f{i}")), &random_bytes(i, 20_000));
        let v = now(&sb, &cfg, &[&a], &[]);
        let rt = &v["retention"];
        removed.push(rt["removed"].as_array().unwrap().len());
        assert_eq!(rt["kept"], (i + 1).min(7), "run {i}: {v}");
    }
    assert_eq!(removed, vec![0, 0, 0, 0, 0, 0, 0, 1, 1]);
    assert_eq!(count_in_group(&sb, &a), 7, "maxBackups 7 after 9 backups");
    assert_eq!(count_in_group(&sb, &b), 3, "another path set is not thinned by this group's policy");
    // The run log says what each run forgot.
    let log = run_log(&sb);
    let last = log.last().unwrap();
    assert_eq!(last["retention"]["removed"].as_array().unwrap().len(), 1, "{last}");
    assert_eq!(last["paths"], serde_json::json!([a.to_str().unwrap()]));
    // The first run that forgot something started prune; the next one, within a day, did not.
    let prunes: Vec<_> = log.iter().filter_map(|r| r["retention"]["prune"].as_str()).collect();
    assert_eq!(prunes, vec!["started", "not_due"], "{log:?}");
    let out = wait_for_prunes(&sb, 1);
    assert!(out.contains("\"packs_deleted\"") || out.lines().any(|l| l.starts_with('{')), "{out}");
    assert!(!out.contains("clawback:"), "prune failed: {out}");
    assert_eq!(sb.cb().args(["check", "--json"]).run().ok().json()["ok"], true);
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(clawback_dir(&sb).join("daemon.json")).unwrap()).unwrap();
    assert_eq!(state["last_prune_by"], "backup", "{state}");
    assert_eq!(state["forgotten"], 1, "one snapshot forgotten since prune started: {state}");
}

#[test]
fn keep_rules_apply_after_each_backup() {
    let sb = Sandbox::with_repo();
    let cfg = config(&sb, r#"{ retention: { keepLast: 2, keepDaily: 3 } }"#);
    let data = sb.path("data");
    let times = [
        "2026-03-01T10:00:00Z",
        "2026-03-01T12:00:00Z",
        "2026-03-02T10:00:00Z",
        "2026-03-03T10:00:00Z",
        "2026-03-04T10:00:00Z",
        "2026-03-04T11:00:00Z",
    ];
    for (i, t) in times.iter().enumerate() {
        write(&data.join(format!("f{i}")), &random_bytes(i as u64, 5000));
        now(&sb, &cfg, &[&data], &["--time", t]);
    }
    let mut left: Vec<String> = sb.snapshots().iter().map(|s| s["time"].as_str().unwrap()[..13].to_string()).collect();
    left.sort();
    // keepLast 2: both of the 4th; keepDaily 3: the newest of the 4th, 3rd and 2nd.
    assert_eq!(left, vec!["2026-03-02T10", "2026-03-03T10", "2026-03-04T10", "2026-03-04T11"]);
}

#[test]
fn prune_runs_at_most_once_per_prune_every() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    let tick = |i: u64| write(&data.join("f"), &random_bytes(i, 300_000));
    let cfg = config(&sb, r#"{ retention: { keepLast: 1, pruneEvery: "1d" } }"#);
    tick(0);
    let v = now(&sb, &cfg, &[&data], &[]);
    assert!(v["retention"].get("prune").is_none(), "nothing forgotten, nothing to prune: {v}");
    tick(1);
    let v = now(&sb, &cfg, &[&data], &[]);
    assert_eq!(v["retention"]["prune"], "started", "{v}");
    wait_for_prunes(&sb, 1);
    tick(2);
    let v = now(&sb, &cfg, &[&data], &[]);
    assert_eq!(v["retention"]["prune"], "not_due", "pruned less than a day ago: {v}");
    let next = chrono::DateTime::parse_from_rfc3339(v["retention"]["next_prune"].as_str().unwrap()).unwrap();
    let hours = (next.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((22..=24).contains(&hours), "next prune in {hours} h");
    assert_eq!(run_log(&sb).last().unwrap()["retention"]["prune"], "not_due");

    // A short period: due again once it has passed.
    let cfg = config(&sb, r#"{ retention: { keepLast: 1, pruneEvery: "2s" } }"#);
    std::thread::sleep(Duration::from_millis(2_100));
    tick(3);
    let v = now(&sb, &cfg, &[&data], &[]);
    assert_eq!(v["retention"]["prune"], "started", "{v}");
    let out = wait_for_prunes(&sb, 2);
    assert!(!out.contains("clawback:"), "prune failed: {out}");
    assert_eq!(sb.snapshots().len(), 1);
    assert_eq!(sb.cb().args(["check", "--json"]).run().ok().json()["ok"], true);

    // A bad period is a config error naming the key.
    let bad = config(&sb, r#"{ retention: { keepLast: 1, pruneEvery: "often" } }"#);
    let r = sb.cb().arg("--config").arg(&bad).args(["now"]).arg(&data).run();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("retention.pruneEvery"), "{}", r.stderr);
}

#[test]
fn enabled_false_stops_scheduled_runs_not_a_manual_one() {
    let sb = Sandbox::with_repo();
    write(&sb.home.join(".openclaw/workspace/notes.md"), b"notes\n");
    let cfg = config(&sb, r#"{ enabled: false, schedule: "1h" }"#);
    for args in [vec!["daemon", "--once"], vec!["daemon"]] {
        let r = sb.cb().arg("--config").arg(&cfg).args(&args).run().ok();
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("backups are disabled in the config (enabled: false)"), "{}", r.stderr);
    }
    // What the installed cron line or systemd unit runs.
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup"]).env("CLAWBACK_TRIGGER", "cron").run().ok();
    assert!(r.stderr.contains("backups are disabled in the config (enabled: false)"), "{}", r.stderr);
    assert_eq!(sb.snapshots().len(), 0, "no scheduled backup ran");
    // By hand: it runs, and says the config disables the schedule.
    let r = sb.cb().arg("--config").arg(&cfg).args(["now"]).run().ok();
    assert!(r.stderr.contains("backups are disabled in the config"), "{}", r.stderr);
    assert_eq!(sb.snapshots().len(), 1);
}
