//! `daemon` (schedule, no overlap, catch-up, one per state dir, SIGTERM), `--low-priority`, and
//! `schedule install/remove` for cron and systemd, against the real binary and real repositories.

use crate::support::*;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon in the background, like `sb.cb()` but not waited for; output to files.
fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    let out = fs::File::create(sb.path("daemon.out")).unwrap();
    let err = fs::File::create(sb.path("daemon.err")).unwrap();
    sb.cb_command()
        .env_remove("USER")
        .arg("daemon")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap()
}

fn stop(sb: &Sandbox, mut child: Child, within: Duration) -> i32 {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or_else(|| panic!("daemon died by a signal: {}", daemon_err(sb)));
        }
        if t.elapsed() > within {
            let _ = child.kill();
            panic!("daemon did not stop within {within:?} of SIGTERM: {}", daemon_err(sb));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn daemon_err(sb: &Sandbox) -> String {
    fs::read_to_string(sb.path("daemon.err")).unwrap_or_default()
}

fn state_dir(sb: &Sandbox) -> PathBuf {
    sb.home.join(".openclaw")
}

pub fn run_log(sb: &Sandbox) -> Vec<serde_json::Value> {
    let p = state_dir(sb).join("clawback/runs.jsonl");
    fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().into()
}

/// An OpenClaw state dir with a workspace file, what a backup without paths reads.
fn openclaw_state(sb: &Sandbox) {
    write(&state_dir(sb).join("workspace/notes.md"), b"remember the milk\n");
    write(&state_dir(sb).join("workspace/data.bin"), &random_bytes(7, 200_000));
}

#[test]
fn daemon_runs_on_schedule_never_overlaps_and_stops_on_sigterm() {
    let sb = Sandbox::with_repo();
    openclaw_state(&sb);
    let child = spawn(&sb, &["--every", "2s", "--jitter", "0", "--no-prune"]);
    let daemon_pid = child.id();
    std::thread::sleep(Duration::from_millis(7_000));
    assert_eq!(stop(&sb, child, Duration::from_secs(30)), 0, "{}", daemon_err(&sb));

    let runs = run_log(&sb);
    // Due at 0 s (no run yet: catch up at once), 2, 4 and 6 s.
    assert!((3..=5).contains(&runs.len()), "{} runs in 7 s: {runs:?}\n{}", runs.len(), daemon_err(&sb));
    for w in runs.windows(2) {
        assert!(time(&w[1]["start"]) >= time(&w[0]["end"]), "runs overlap: {w:?}");
        let gap = (time(&w[1]["start"]) - time(&w[0]["start"])).num_milliseconds();
        assert!(gap >= 1_900, "runs closer than the 2 s schedule: {gap} ms");
    }
    for r in &runs {
        assert_eq!(r["trigger"], "daemon");
        // Every cycle ran in the daemon's own process: no child clawback per cycle.
        assert_eq!(r["pid"], daemon_pid, "a cycle ran in another process: {r}");
    }
    let ok: Vec<_> = runs.iter().filter(|r| r["status"] == "ok").collect();
    // A run cut short by SIGTERM is recorded as failed (exit 130) and wrote no snapshot.
    for r in runs.iter().filter(|r| r["status"] != "ok") {
        assert_eq!(r["exit_code"], 130, "{r}");
    }
    assert_eq!(sb.snapshots().len(), ok.len());
    let check = sb.cb().args(["check", "--json"]).run().ok();
    assert_eq!(check.json()["ok"], true);
}

#[test]
fn sigterm_during_a_backup_is_passed_on_and_the_daemon_exits_cleanly() {
    let sb = Sandbox::with_repo();
    openclaw_state(&sb);
    sb.cb().args(["backup", "-q"]).run().ok();
    // A password command that takes long keeps the backup child busy when SIGTERM arrives.
    let mut cmd = Command::new(bin());
    let marker = sb.path("child-started");
    sb.clean_env(&mut cmd)
        .env_remove("XDG_CACHE_HOME")
        .env("TZ", "UTC")
        .arg("--repo")
        .arg(&sb.repo)
        .arg("--cache-dir")
        .arg(&sb.cache)
        .arg("--password-command")
        .arg(format!("touch {}; sleep 20; echo '{PASSWORD}'", marker.display()))
        .args(["daemon", "--once"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(sb.path("daemon.out")).unwrap())
        .stderr(fs::File::create(sb.path("daemon.err")).unwrap());
    let child = cmd.spawn().unwrap();
    let daemon_pid = child.id();
    let t = Instant::now();
    while !marker.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "backup child never started: {}", daemon_err(&sb));
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    assert_eq!(stop(&sb, child, Duration::from_secs(10)), 0, "{}", daemon_err(&sb));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(daemon_err(&sb).contains("SIGTERM"), "{}", daemon_err(&sb));
    let runs = run_log(&sb);
    let last = runs.last().unwrap();
    assert_eq!(last["pid"], daemon_pid, "the interrupted cycle ran in the daemon's process: {last}");
    assert_eq!((last["status"].as_str(), last["exit_code"].as_i64()), (Some("failed"), Some(130)), "{last}");
    assert!(last["error"].as_str().unwrap().contains("SIGTERM"));
    assert_eq!(sb.snapshots().len(), 1, "no partial snapshot");
    assert_eq!(sb.cb().args(["check", "--json"]).run().ok().json()["ok"], true);
}

#[test]
fn daemon_once_runs_backup_retention_and_prune_at_most_daily() {
    let sb = Sandbox::with_repo();
    openclaw_state(&sb);
    for i in 0..3 {
        write(&state_dir(&sb).join(format!("workspace/f{i}")), &random_bytes(i, 50_000));
        sb.cb().args(["backup", "-q"]).run().ok();
    }
    let cfg = sb.path("clawback.json");
    fs::write(&cfg, r#"{ schedule: "1h", retention: { keepLast: 2 } }"#).unwrap();
    // The backup child applies retention (once: the daemon does not forget again) and leaves
    // prune to the daemon, which runs it when due.
    let r = sb.cb().arg("--config").arg(&cfg).args(["daemon", "--once", "--json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["backup_exit"], 0, "{v}");
    assert_eq!(v["retention"]["removed"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["retention"]["prune"], "daemon", "{v}");
    assert!(v.get("forget_exit").is_none(), "the daemon does not forget a second time: {v}");
    assert_eq!(v["prune_exit"], 0, "{v}\n{}", r.stderr);
    assert_eq!(sb.snapshots().len(), 2, "retention keepLast 2 applied");
    assert!(!state_dir(&sb).join("clawback/prune.log").exists(), "no second prune from the backup child");
    // Every stdout line is the daemon's own JSON.
    for l in r.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    // Pruned less than a day ago: not again.
    let r = sb.cb().arg("--config").arg(&cfg).args(["daemon", "--once", "--json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert!(v.get("prune_exit").is_none(), "{v}");
    let state = fs::read_to_string(state_dir(&sb).join("clawback/daemon.json")).unwrap();
    assert!(state.contains("\"last_prune_by\": \"daemon\""), "{state}");
    assert_eq!(sb.cb().args(["check", "--json"]).run().ok().json()["ok"], true);
}

#[test]
fn catches_up_once_after_downtime_and_a_second_daemon_refuses() {
    let sb = Sandbox::with_repo();
    openclaw_state(&sb);
    sb.cb().args(["backup", "-q"]).run().ok();
    // Make the last good run three hours old, as after a weekend with the laptop shut.
    let log = state_dir(&sb).join("clawback/runs.jsonl");
    let mut rec = run_log(&sb)[0].clone();
    let old = chrono::Utc::now() - chrono::Duration::hours(3);
    rec["start"] = serde_json::json!(old);
    rec["end"] = serde_json::json!(old);
    fs::write(&log, format!("{rec}\n")).unwrap();

    let child = spawn(&sb, &["--every", "1h", "--jitter", "0"]);
    let t = Instant::now();
    while run_log(&sb).len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(60), "no catch-up run: {}", daemon_err(&sb));
        std::thread::sleep(Duration::from_millis(50));
    }
    // One catch-up run, not one per missed slot.
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(run_log(&sb).len(), 2, "{}", daemon_err(&sb));

    let second = sb.cb().args(["daemon", "--once"]).run().code(12);
    assert!(second.one_error_line().contains("another clawback daemon"), "{}", second.stderr);
    assert_eq!(stop(&sb, child, Duration::from_secs(10)), 0);
    assert!(daemon_err(&sb).contains("backing up now"), "{}", daemon_err(&sb));
}

#[test]
fn daemon_without_a_schedule_is_a_usage_error() {
    let sb = Sandbox::with_repo();
    let r = sb.cb().arg("daemon").run().code(2);
    assert!(r.one_error_line().contains("no schedule"));
}

#[test]
fn low_priority_runs_nice_and_idle_for_the_backup_and_its_children() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a"), b"a");
    let probe = sb.path("prio");
    let cmd = format!(
        "awk '{{print $19}}' /proc/self/stat > {p}; (ionice -p $$ || echo no-ionice) >> {p} 2>&1; echo '{PASSWORD}'",
        p = probe.display()
    );
    sb.bare()
        .arg("--repo")
        .arg(&sb.repo)
        .arg("--password-command")
        .arg(&cmd)
        .args(["backup", "--low-priority", "-q"])
        .arg(&data)
        .run()
        .ok();
    let got = fs::read_to_string(&probe).unwrap();
    let mut lines = got.lines();
    assert_eq!(lines.next(), Some("10"), "nice: {got}");
    let io = lines.next().unwrap_or("");
    assert!(io == "idle" || io == "no-ionice", "I/O class: {got}");
}

fn fake_crontab(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let store = sb.path("crontab.txt");
    let script = sb.path("fake-crontab");
    write_executable(
        &script,
        &format!(
            "#!/bin/sh\nF={}\nif [ \"$1\" = -l ]; then [ -f \"$F\" ] && exec cat \"$F\"; echo 'no crontab for e2e' >&2; exit 1; fi\ncat > \"$F\"\n",
            store.display()
        ),
    );
    (script, store)
}

#[test]
fn schedule_install_cron_writes_one_tagged_block_and_remove_deletes_it() {
    let sb = Sandbox::with_repo();
    // `schedule install` checks the job would find the OpenClaw state dir.
    fs::create_dir_all(state_dir(&sb)).unwrap();
    let (script, store) = fake_crontab(&sb);
    fs::write(&store, "MAILTO=me\n15 4 * * * /usr/bin/true\n").unwrap();
    let pwfile = sb.path("pw");
    fs::write(&pwfile, PASSWORD).unwrap();
    let cron = |args: &[&str]| {
        sb.bare()
            .env("CLAWBACK_CRONTAB_CMD", &script)
            .env("OPENCLAW_STATE_DIR", sb.home.join(".openclaw"))
            .arg("--repo")
            .arg(&sb.repo)
            .arg("--password-file")
            .arg(&pwfile)
            .args(args)
            .run()
            .ok()
    };
    let r = cron(&["schedule", "install", "--cron", "--every", "2h"]);
    assert!(r.stdout.contains("crontab -l"), "{}", r.stdout);
    let text = fs::read_to_string(&store).unwrap();
    assert!(text.starts_with("MAILTO=me\n15 4 * * * /usr/bin/true\n"), "{text}");
    let job: Vec<&str> = text.lines().filter(|l| l.contains("daemon --once")).collect();
    assert_eq!(job.len(), 1, "{text}");
    let line = job[0];
    assert!(line.starts_with("0 */2 * * * "), "{line}");
    assert!(
        line.contains(&format!("{} --repo {}", bin().canonicalize().unwrap().display(), sb.repo.display())),
        "{line}"
    );
    assert!(line.contains(&format!("--password-file {}", pwfile.display())), "{line}");
    assert!(line.contains("daemon --once --low-priority"), "{line}");
    assert!(line.contains("CLAWBACK_TRIGGER=cron") && line.contains("OPENCLAW_STATE_DIR="), "{line}");
    assert!(!text.contains(PASSWORD), "no secret in the crontab");

    // Re-installing replaces the block; a cron expression with a zone keeps its CRON_TZ.
    cron(&["schedule", "install", "--cron", "--schedule", "CRON_TZ=Europe/Berlin 30 3 * * *"]);
    let text = fs::read_to_string(&store).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("daemon --once")).count(), 1, "{text}");
    assert!(text.contains("CRON_TZ=Europe/Berlin\n30 3 * * * "), "{text}");

    cron(&["schedule", "remove", "--cron"]);
    assert_eq!(fs::read_to_string(&store).unwrap(), "MAILTO=me\n15 4 * * * /usr/bin/true\n");
    // An interval cron cannot express is refused with the reason.
    let r = sb
        .bare()
        .env("CLAWBACK_CRONTAB_CMD", &script)
        .args(["schedule", "install", "--cron", "--every", "90m"])
        .run()
        .code(2);
    assert!(r.one_error_line().contains("cron cannot run every 90m"));
}

fn unit_dir(sb: &Sandbox) -> PathBuf {
    sb.root.join("xdg/config/systemd/user")
}

#[test]
fn schedule_install_systemd_writes_units_and_enables_the_timer() {
    let sb = Sandbox::with_repo();
    // `schedule install` checks the job would find the OpenClaw state dir.
    fs::create_dir_all(state_dir(&sb)).unwrap();
    let log = sb.path("systemctl.log");
    let fake = sb.path("fake-systemctl");
    write_executable(&fake, &format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()));
    let r = sb
        .cb()
        .env("CLAWBACK_SYSTEMCTL_CMD", &fake)
        .args(["schedule", "install", "--systemd", "--every", "2h", "--memory-max", "1G"])
        .run()
        .ok();
    assert!(r.stdout.contains("systemctl --user list-timers"), "{}", r.stdout);
    assert!(r.stderr.contains("CLAWBACK_PASSWORD is set"), "warns the job will not see it: {}", r.stderr);
    let service = fs::read_to_string(unit_dir(&sb).join("clawback.service")).unwrap();
    let timer = fs::read_to_string(unit_dir(&sb).join("clawback.timer")).unwrap();
    let exec = service.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.starts_with(&format!("ExecStart={} ", bin().canonicalize().unwrap().display())), "{exec}");
    assert!(exec.ends_with("daemon --once --low-priority"), "{exec}");
    for d in
        ["Type=oneshot", "Nice=10", "IOSchedulingClass=idle", "MemoryMax=1G", "Environment=CLAWBACK_TRIGGER=systemd"]
    {
        assert!(service.lines().any(|l| l == d), "{d} missing:\n{service}");
    }
    for d in ["OnUnitActiveSec=7200s", "Persistent=true", "WantedBy=timers.target", "Unit=clawback.service"] {
        assert!(timer.lines().any(|l| l == d), "{d} missing:\n{timer}");
    }
    assert!(!service.contains(PASSWORD));
    let calls = fs::read_to_string(&log).unwrap();
    assert!(calls.contains("--user daemon-reload") && calls.contains("--user enable --now clawback.timer"), "{calls}");

    // A cron schedule becomes OnCalendar, time zone included.
    sb.cb()
        .env("CLAWBACK_SYSTEMCTL_CMD", &fake)
        .args(["schedule", "install", "--systemd", "--schedule", "CRON_TZ=Europe/Berlin 0 */6 * * *"])
        .run()
        .ok();
    let timer = fs::read_to_string(unit_dir(&sb).join("clawback.timer")).unwrap();
    assert!(timer.contains("OnCalendar=*-*-* 00,06,12,18:00:00 Europe/Berlin"), "{timer}");

    sb.cb().env("CLAWBACK_SYSTEMCTL_CMD", &fake).args(["schedule", "remove"]).run().ok();
    assert!(!unit_dir(&sb).join("clawback.service").exists() && !unit_dir(&sb).join("clawback.timer").exists());
    assert!(fs::read_to_string(&log).unwrap().contains("--user disable --now clawback.timer"));
}

#[test]
fn schedule_install_openclaw_prints_the_command_without_openclaw() {
    let sb = Sandbox::with_repo();
    // `schedule install` checks the job would find the OpenClaw state dir.
    fs::create_dir_all(state_dir(&sb)).unwrap();
    let r =
        sb.cb().env("PATH", "/usr/bin:/bin").args(["schedule", "install", "--openclaw", "--every", "2h"]).run().ok();
    assert!(
        r.stdout.contains("openclaw cron add --name clawback-backup --declaration-key clawback-backup")
            && r.stdout.contains("--every 2h --command-argv"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("openclaw cron list"));
}
