//! clawback with the real OpenClaw's config and scheduler (2026.9.6):
//! - a `backup` section in openclaw.json, as an older README suggested, is rejected by OpenClaw
//!   (`config validate` fails, the gateway exits 78); `backup`, `status` and `test` say so with the
//!   fix, and `setup --migrate-config` moves it into clawback's own file, after which OpenClaw
//!   accepts its config and the gateway starts;
//! - `schedule install --openclaw` makes one command job with a declaration key (a second install
//!   updates it, an older job made by name is replaced), the job really runs clawback when OpenClaw
//!   runs it, `test` finds it through `openclaw cron list` and, with no gateway, in OpenClaw's
//!   SQLite store, and `schedule remove --openclaw` removes it by id, leaving other jobs alone.

use crate::real_openclaw::{
    config_valid, free_port, gateway_command, openclaw_json, parse_last_json, set_gateway_port, Gateway, RealHome,
    CRON_JOB,
};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A literal secret in the section: it must never be printed.
const SECRET: &str = "T0000/B0000/oc-config-secret-6f1d";

/// Runs `openclaw gateway run` on `home` expecting it to refuse to start: returns its exit code
/// and log. Fails the test if the gateway gets ready instead (it is then stopped).
fn gateway_refuses(home: &Path) -> (Option<i32>, String) {
    let port = free_port();
    set_gateway_port(home, port);
    let mut child = gateway_command(home, port)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openclaw gateway run");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("openclaw gateway run neither started nor refused within 90 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!log.contains("[gateway] ready"), "the gateway started:\n{log}");
    (status.code(), log)
}

/// The section as the old README had users write it, plus a literal secret.
fn legacy_section() -> Value {
    json!({
        "enabled": true,
        "schedule": "2h",
        "retention": { "keepLast": 7, "maxAgeDays": 30 },
        "notify": { "webhook": format!("https://hooks.slack.com/services/{SECRET}") },
    })
}

fn stderr_lines_with<'a>(stderr: &'a str, what: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(what)).collect()
}

#[test]
fn a_backup_section_in_openclaw_json_is_moved_into_clawbacks_file() {
    let h = RealHome::new();
    let oc_path = h.state().join("openclaw.json");
    let mut cfg: Value = serde_json::from_str(&fs::read_to_string(&oc_path).unwrap()).unwrap();
    cfg["backup"] = legacy_section();
    fs::write(&oc_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();

    // OpenClaw itself refuses it.
    let v = config_valid(h.home());
    assert_ne!(v.code, 0, "openclaw config validate accepted a `backup` key:\n{}", v.stdout);
    let verdict = parse_last_json(&v.stdout).expect("validate --json printed JSON");
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert!(verdict["issues"].to_string().contains("Unrecognized key: \\\"backup\\\""), "{verdict}");
    let (code, log) = gateway_refuses(h.home());
    assert_eq!(code, Some(78), "the gateway with a `backup` key:\n{log}");

    // clawback says so, once per command, naming the fix; the settings are still read.
    let fix = "clawback setup --migrate-config";
    let r = h.cb().args(["status", "--json"]).run();
    let st = r.json();
    let field = &st["openclaw_backup_section"];
    assert_eq!(field["openclaw_rejects"], true, "{st}");
    assert_eq!(field["fix"], fix);
    assert!(field["openclaw_says"].as_str().unwrap().contains("Unrecognized key"), "{field}");
    assert_eq!(stderr_lines_with(&r.stderr, fix).len(), 1, "{}", r.stderr);
    assert_eq!(st["schedule"], "2h", "the section is still read");
    let r = h.cb().args(["test", "--json"]).run().code(1);
    let checks = r.json();
    let check =
        checks.as_array().unwrap().iter().find(|c| c["name"] == "openclaw.json").expect("an openclaw.json check");
    assert_eq!((check["ok"].clone(), check["fix"].clone()), (json!(false), json!(fix)), "{check}");
    assert!(check["detail"].as_str().unwrap().contains("rejects"), "{check}");
    let r = h.cb().args(["backup"]).run().ok();
    let warned = stderr_lines_with(&r.stderr, fix);
    assert!(warned.len() == 1 && warned[0].starts_with("clawback: warning: "), "{}", r.stderr);
    let all_output = |r: &crate::support::Run| format!("{}{}", r.stdout, r.stderr);
    assert!(!all_output(&r).contains(SECRET));

    // The move.
    let original = fs::read_to_string(&oc_path).unwrap();
    let mode = fs::metadata(&oc_path).unwrap().permissions().mode() & 0o777;
    let r = h.cb().args(["setup", "--migrate-config", "--json"]).run().ok();
    assert!(!all_output(&r).contains(SECRET), "a secret was printed:\n{}", all_output(&r));
    let m = r.json();
    assert_eq!(m["migrated"], true, "{m}");
    assert_eq!(m["openclaw_valid"], true, "OpenClaw confirms: {m}");
    assert_eq!(m["settings_unchanged"], true, "{m}");
    assert_eq!(m["created"], true, "{m}");
    let copy = Path::new(m["openclaw_config_copy"].as_str().unwrap());
    assert!(copy.file_name().unwrap().to_string_lossy().starts_with("openclaw.json.pre-clawback-"), "{m}");
    assert_eq!(fs::read_to_string(copy).unwrap(), original, "the copy is the original");
    assert_eq!(fs::metadata(copy).unwrap().permissions().mode() & 0o777, mode);
    assert_eq!(fs::metadata(&oc_path).unwrap().permissions().mode() & 0o777, mode);
    // openclaw.json is the original without the key; clawback's file has the settings.
    let now: Value = serde_json::from_str(&fs::read_to_string(&oc_path).unwrap()).unwrap();
    let mut want: Value = serde_json::from_str(&original).unwrap();
    want.as_object_mut().unwrap().remove("backup");
    // OpenClaw's own validate may stamp its metadata; everything else is as it was.
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("meta");
        v
    };
    assert_eq!(strip(now), strip(want));
    let cb_path = h.state().join("clawback.json");
    assert_eq!(m["clawback_config"], json!(cb_path));
    let cb: Value = serde_json::from_str(&fs::read_to_string(&cb_path).unwrap()).unwrap();
    assert_eq!(cb, legacy_section(), "clawback's file holds the section");
    assert_eq!(fs::metadata(&cb_path).unwrap().permissions().mode() & 0o777, 0o600);

    // OpenClaw accepts its config and the gateway starts; clawback reads the same settings and
    // says nothing more.
    let v = config_valid(h.home());
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let gw = Gateway::start(h.home());
    drop(gw);
    let r = h.cb().args(["status", "--json"]).run();
    let st = r.json();
    assert_eq!((st["schedule"].clone(), st["openclaw_backup_section"].clone()), (json!("2h"), Value::Null), "{st}");
    assert!(stderr_lines_with(&r.stderr, fix).is_empty(), "{}", r.stderr);

    // Again: nothing to migrate.
    let r = h.cb().args(["setup", "--migrate-config"]).run().ok();
    assert!(r.stdout.contains("nothing to migrate"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&cb_path).unwrap(), serde_json::to_string_pretty(&cb).unwrap() + "\n");
}

/// `openclaw cron list --all --json`'s jobs.
fn cron_jobs(home: &Path) -> Vec<Value> {
    openclaw_json(home, &["cron", "list", "--all"])["jobs"].as_array().cloned().unwrap_or_default()
}

fn clawback_jobs(home: &Path) -> Vec<Value> {
    cron_jobs(home).into_iter().filter(|j| j["name"] == "clawback-backup").collect()
}

#[test]
fn the_openclaw_job_is_one_command_job_that_runs_clawback_and_is_removed_by_id() {
    let h = RealHome::new();
    let mut gw = Gateway::start(h.home());
    let exe = env!("CARGO_BIN_EXE_clawback");
    // A job an earlier clawback added by name, without a declaration key.
    openclaw_json(
        h.home(),
        &[
            "cron",
            "add",
            "--name",
            "clawback-backup",
            "--every",
            "2h",
            "--command",
            &format!("env CLAWBACK_TRIGGER=openclaw {exe} daemon --once --low-priority"),
            "--no-deliver",
        ],
    );
    assert_eq!(clawback_jobs(h.home()).len(), 1);

    // Installed twice: one job, updated in place; the older one replaced.
    let first = h.cb().args(["schedule", "install", "--openclaw", "--every", "2h", "--json"]).run().ok().json();
    assert_eq!(first["created"], true, "{first}");
    assert_eq!(first["removed_older"].as_array().unwrap().len(), 1, "{first}");
    let second = h.cb().args(["schedule", "install", "--openclaw", "--every", "3h", "--json"]).run().ok().json();
    assert_eq!((second["created"].clone(), second["id"].clone()), (json!(false), first["id"].clone()), "{second}");
    let ours = clawback_jobs(h.home());
    assert_eq!(ours.len(), 1, "{ours:?}");
    let job = &ours[0];
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(json!(id), first["id"]);
    assert_eq!(job["declarationKey"], "clawback-backup");
    assert_eq!(job["schedule"]["everyMs"], 3 * 3600 * 1000, "{job}");
    let p = &job["payload"];
    assert_eq!(p["kind"], "command", "{job}");
    let argv: Vec<&str> = p["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(&argv[argv.len() - 3..], ["daemon", "--once", "--low-priority"], "{job}");
    assert!(argv[0].ends_with("/clawback") && Path::new(argv[0]).is_absolute(), "{job}");
    assert_eq!(p["env"]["CLAWBACK_TRIGGER"], "openclaw", "{job}");
    assert_eq!(p["timeoutSeconds"], 86400, "OpenClaw's 10-minute default would kill a long backup: {job}");
    assert!(cron_jobs(h.home()).iter().any(|j| j["name"] == CRON_JOB), "other jobs stay");

    // OpenClaw runs it: a snapshot.
    let before = h.sb.snapshots().len();
    openclaw_json(h.home(), &["cron", "run", &id]);
    let start = Instant::now();
    let run = loop {
        let runs = openclaw_json(h.home(), &["cron", "runs", "--id", &id]);
        if let Some(r) = runs["entries"].as_array().and_then(|e| e.iter().find(|r| r["action"] == "finished")) {
            break r.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the job did not finish: {runs}");
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(h.sb.snapshots().len(), before + 1, "the job wrote a snapshot: {run}");

    // `test` finds it through the gateway.
    let checks = h.cb().args(["test", "--json"]).run().json();
    let by = |c: &Value, n: &str| c.as_array().unwrap().iter().find(|x| x["name"] == n).unwrap().clone();
    let sched = by(&checks, "scheduled run");
    assert_eq!(sched["ok"], true, "{sched}");
    let d = sched["detail"].as_str().unwrap();
    assert!(d.contains(&id) && d.contains("`openclaw cron list`"), "{sched}");

    // And without a gateway, in OpenClaw's store.
    gw.stop();
    let checks = h.cb().args(["test", "--json"]).run().json();
    let sched = by(&checks, "scheduled run");
    assert_eq!(sched["ok"], true, "{sched}");
    assert!(sched["detail"].as_str().unwrap().contains("state/openclaw.sqlite"), "{sched}");
    // Removal needs the gateway: it says so.
    let r = h.cb().args(["schedule", "remove", "--openclaw"]).run().code(1);
    assert!(r.one_error_line().contains("openclaw gateway"), "{}", r.stderr);

    // Removed by id; the other jobs stay; a second removal has nothing to do.
    let _gw = Gateway::start(h.home());
    let r = h.cb().args(["schedule", "remove", "--openclaw", "--json"]).run().ok().json();
    assert_eq!(r["removed"], json!(["openclaw"]), "{r}");
    assert!(clawback_jobs(h.home()).is_empty());
    assert!(cron_jobs(h.home()).iter().any(|j| j["name"] == CRON_JOB), "other jobs stay");
    let r = h.cb().args(["schedule", "remove", "--openclaw"]).run().ok();
    assert!(r.stdout.contains("no clawback job"), "{}", r.stdout);
}
