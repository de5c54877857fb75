//! `status` (healthy, stale, failing; exit codes; JSON shape; Prometheus metrics file) and the run
//! log every backup appends to.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn run_log(sb: &Sandbox) -> Vec<serde_json::Value> {
    let p = sb.home.join(".openclaw/clawback/runs.jsonl");
    fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn config(sb: &Sandbox, text: &str) -> std::path::PathBuf {
    let p = sb.path("clawback.json");
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn status_is_healthy_after_a_recent_backup_and_stale_after_an_old_one() {
    let sb = Sandbox::with_repo();
    let cfg = config(&sb, r#"{ schedule: "1h" }"#);
    let data = sb.path("data");
    write(&data.join("a.txt"), b"hello");
    let old = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    sb.cb().arg("--config").arg(&cfg).args(["backup", "-q", "--time", &old]).arg(&data).run().ok();

    // Newest snapshot 2 h old, schedule 1 h: stale past 1.5 h.
    let r = sb.cb().arg("--config").arg(&cfg).args(["status", "--json"]).run().code(1);
    let v = r.json();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["state"], "stale");
    assert!(v["age_s"].as_i64().unwrap() >= 7_190, "{v}");
    assert_eq!(v["schedule"], "1h");
    assert_eq!(v["max_age_s"], 5_400);
    let human = sb.cb().arg("--config").arg(&cfg).arg("status").run().code(1);
    assert!(human.stdout.contains("STALE"), "{}", human.stdout);

    write(&data.join("b.txt"), b"more");
    sb.cb().arg("--config").arg(&cfg).args(["backup", "-q"]).arg(&data).run().ok();
    let r = sb.cb().arg("--config").arg(&cfg).args(["status", "--json"]).run().ok();
    let v = r.json();
    for k in [
        "healthy",
        "last_snapshot",
        "age_s",
        "next_due",
        "repo_bytes",
        "schedule",
        "last_run",
        "failing",
        "anomalies",
        "encryption",
    ] {
        assert!(v.get(k).is_some(), "status --json lacks {k}: {v}");
    }
    assert_eq!(v["healthy"], true);
    assert_eq!(v["state"], "healthy");
    assert!(v["age_s"].as_i64().unwrap() < 120);
    assert_eq!(v["last_snapshot"]["id"], sb.snapshots().last().unwrap()["id"]);
    assert!(v["repo_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["snapshots"], 2);
    assert_eq!(v["last_run"]["status"], "ok");
    let due = chrono::DateTime::parse_from_rfc3339(v["next_due"].as_str().unwrap()).unwrap();
    let left = due.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3_000..=3_600).contains(&left), "next due in {left}s");
    let human = sb.cb().arg("--config").arg(&cfg).arg("status").run().ok();
    assert!(human.stdout.starts_with("status:        healthy"), "{}", human.stdout);
}

#[test]
fn a_failed_run_makes_status_failing_and_is_logged_without_secrets() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a.txt"), b"hello");
    sb.cb().args(["backup", "-q"]).arg(&data).run().ok();
    sb.cb().arg("status").run().ok();

    let wrong = "not-the-password-9f8e7d";
    sb.cb().env("CLAWBACK_PASSWORD", wrong).args(["backup", "-q"]).arg(&data).run().code(11);
    let runs = run_log(&sb);
    assert_eq!(runs.len(), 2);
    let last = &runs[1];
    assert_eq!(last["status"], "failed");
    assert_eq!(last["exit_code"], 11);
    assert!(last["error"].as_str().unwrap().contains("wrong password"), "{last}");
    let text = fs::read_to_string(sb.home.join(".openclaw/clawback/runs.jsonl")).unwrap();
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "a password reached the run log");

    let r = sb.cb().args(["status", "--json"]).run().code(1);
    let v = r.json();
    assert_eq!(
        (v["healthy"].as_bool(), v["failing"].as_bool(), v["state"].as_str()),
        (Some(false), Some(true), Some("failing"))
    );
    assert_eq!(v["last_run"]["status"], "failed");
    assert_eq!(v["consecutive_failures"], 1);

    // A good run again: healthy.
    sb.cb().args(["backup", "-q"]).arg(&data).run().ok();
    sb.cb().arg("status").run().ok();
}

#[test]
fn run_log_records_every_run_with_counters_in_private_files() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a.bin"), &random_bytes(1, 100_000));
    let b = sb.backup(&[&data]);
    // Dry runs are not runs.
    sb.cb().args(["backup", "--dry-run", "-q"]).arg(&data).run().ok();
    let runs = run_log(&sb);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["status"], "ok");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["snapshot_id"], b["snapshot_id"]);
    assert_eq!(r["counters"]["bytes_added"], b["bytes_added"]);
    assert_eq!(r["counters"]["files_new"], 1);
    assert_eq!(r["repo"], sb.repo.display().to_string());
    assert!(r["duration_s"].as_f64().unwrap() > 0.0);
    let dir = sb.home.join(".openclaw/clawback");
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(dir.join("runs.jsonl")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(b["anomalies"], serde_json::json!([]));
}

#[test]
fn metrics_file_holds_prometheus_gauges() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a.bin"), &random_bytes(2, 50_000));
    let b = sb.backup(&[&data]);
    let metrics = sb.path("textfile/clawback.prom");
    fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    sb.cb().args(["status", "-q", "--metrics-file"]).arg(&metrics).run().ok();
    let text = fs::read_to_string(&metrics).unwrap();
    let value = |name: &str| -> f64 {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("clawback_healthy"), 1.0);
    assert!((value("clawback_last_success_timestamp_seconds") - chrono::Utc::now().timestamp() as f64).abs() < 120.0);
    assert!(value("clawback_backup_age_seconds") < 120.0);
    assert!(value("clawback_repo_bytes") > 50_000.0);
    assert_eq!(value("clawback_snapshots"), 1.0);
    assert_eq!(value("clawback_last_run_exit_code"), 0.0);
    assert!(value("clawback_last_run_duration_seconds") > 0.0);
    assert_eq!(value("clawback_last_run_bytes_added"), b["bytes_added"].as_f64().unwrap());
    assert!(text.contains("clawback_last_run_status{status=\"ok\"} 1"));
    assert!(text.contains("# TYPE clawback_healthy gauge"));
    // Written by rename: no temporary file left beside it.
    assert_eq!(fs::read_dir(metrics.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn status_without_any_backup_is_unhealthy() {
    let sb = Sandbox::with_repo();
    let v = sb.cb().args(["status", "--json"]).run().code(1).json();
    assert_eq!(v["state"], "no_backup");
    assert_eq!(v["last_snapshot"], serde_json::Value::Null);
}

#[test]
fn ctrl_c_during_a_backup_says_what_was_kept_exits_130_and_is_logged() {
    // Small packs and a slow upload: the backup is still writing when the signal comes.
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let data = sb.path("big");
    for i in 0..24 {
        write(&data.join(format!("f{i:02}.bin")), &random_bytes(300 + i, 1 << 20));
    }
    let err = sb.path("backup.err");
    let mut child = sb
        .cb_command()
        .args(["--limit-upload", "1024", "backup"])
        .arg(&data)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // Interrupt once a few packs are in the repository.
    let packs = || crate::support::files_under(&sb.repo.join("data")).len();
    let t = std::time::Instant::now();
    while packs() < 3 {
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "no pack written");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_or_kill(&mut child, std::time::Duration::from_secs(60), || "backup ignored SIGINT".into());
    let stderr = fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let line = stderr.lines().last().unwrap();
    assert!(
        line.contains("interrupted by SIGINT: no snapshot was written;")
            && line.contains("MiB of new data is in the repository and will be reused by the next backup"),
        "{stderr}"
    );
    let runs = run_log(&sb);
    let last = runs.last().unwrap();
    assert_eq!((last["status"].as_str(), last["exit_code"].as_i64()), (Some("failed"), Some(130)), "{last}");
    assert!(last["error"].as_str().unwrap().contains("interrupted by SIGINT"), "{last}");
    assert!(sb.snapshots().is_empty());
    assert_eq!(sb.cb().args(["check", "--json"]).run().ok().json()["ok"], true);
    // The next backup reuses what the interrupted one stored.
    let b = sb.backup(&[&data]);
    assert!(b["bytes_added"].as_u64().unwrap() < 24 << 20, "nothing was reused: {b}");
    let v = sb.cb().args(["status", "--json"]).run().ok().json();
    assert_eq!(v["last_run"]["status"], "ok");
}
