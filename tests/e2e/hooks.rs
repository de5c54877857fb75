//! The config's `hooks.before` / `hooks.after` around `backup`: order, environment, output on
//! stderr only, a failing before hook aborting, and a hanging hook killed at the timeout.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes a config with `hooks` (a JSON object) and returns its path.
fn config(sb: &Sandbox, hooks: serde_json::Value) -> PathBuf {
    let p = sb.path("clawback.json");
    fs::write(&p, serde_json::to_string_pretty(&serde_json::json!({ "hooks": hooks })).unwrap()).unwrap();
    p
}

fn log_lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect()
}

#[test]
fn before_and_after_hooks_run_in_order_with_the_outcome() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a.txt"), b"hello");
    let log = sb.path("hooks.log");
    let l = log.display();
    let cfg = config(
        &sb,
        serde_json::json!({
            "before": [format!("echo before1 $CLAWBACK_HOOK >> {l}"), format!("echo before2 >> {l}; echo said-on-stdout")],
            "after": [format!("echo \"after $CLAWBACK_STATUS $CLAWBACK_SNAPSHOT_ID $CLAWBACK_EXIT_CODE\" >> {l}")],
        }),
    );
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&src).run().ok();
    let v = r.json(); // hook output did not reach stdout
    assert!(r.stderr.contains("said-on-stdout"), "hook output goes to stderr: {}", r.stderr);
    let id = v["snapshot_id"].as_str().unwrap();
    assert_eq!(log_lines(&log), vec!["before1 before".to_string(), "before2".into(), format!("after ok {id} 0")]);

    // A partial backup (an unreadable file) tells the after hooks so.
    if !is_root() {
        let bad = src.join("secret.txt");
        write(&bad, b"x");
        chmod(&bad, 0o000);
        fs::remove_file(&log).unwrap();
        let r = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&src).run().code(3);
        let id = r.json()["snapshot_id"].as_str().unwrap().to_string();
        assert_eq!(log_lines(&log).last().unwrap(), &format!("after partial {id} 3"));
    }
}

#[test]
fn failing_before_hook_aborts_and_after_hooks_still_run() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a.txt"), b"hello");
    let log = sb.path("hooks.log");
    let cfg = config(
        &sb,
        serde_json::json!({
            "before": ["exit 4", format!("echo never >> {}", log.display())],
            "after": [format!("echo \"after $CLAWBACK_STATUS [$CLAWBACK_SNAPSHOT_ID] $CLAWBACK_EXIT_CODE\" >> {}", log.display())],
        }),
    );
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&src).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains("before hook \"exit 4\" exited with status 4"), "{line}");
    assert!(r.stdout.is_empty());
    assert!(sb.snapshots().is_empty(), "no snapshot after a failed before hook");
    assert_eq!(log_lines(&log), vec!["after failed [] 1".to_string()]);

    // abortOnFailure: false backs up anyway, with a warning.
    let cfg = config(&sb, serde_json::json!({ "before": ["exit 4"], "abortOnFailure": false }));
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&src).run().ok();
    assert!(r.json()["snapshot_id"].is_string());
    assert!(r.stderr.contains("backing up anyway"), "{}", r.stderr);
}

#[test]
fn hanging_hook_is_killed_at_the_timeout() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("a.txt"), b"hello");
    let marker = sb.path("child-survived");
    // The hook's own child must die with it (the whole process group is killed).
    let cfg = config(
        &sb,
        serde_json::json!({
            "before": [format!("(sleep 3; touch {}) & sleep 60", marker.display())],
            "timeout": 1,
        }),
    );
    let start = Instant::now();
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup"]).arg(&src).run().code(1);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(r.one_error_line().contains("did not finish within 1s"), "{}", r.stderr);
    std::thread::sleep(Duration::from_secs(4));
    assert!(!marker.exists(), "the hook's background child outlived the timeout");
    assert!(sb.snapshots().is_empty());
}
