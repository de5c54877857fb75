//! Scheduled runs get what they need: `setup` and `schedule install` write the variables the
//! config refers to, the password source and PATH into clawback's 0600 environment file, and the
//! command each scheduler was given (systemd's ExecStart= and Environment=, the crontab line,
//! the argv and variables of OpenClaw's command job) succeeds when run under `env -i` with only
//! what that scheduler sets, against SeaweedFS and a local repository. A job that would fail is refused at install time,
//! and `test` says so, with the one-line fix.

use crate::seaweed::{Seaweed, ACCESS_KEY, SECRET_KEY};
use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Systemd,
    Cron,
    Openclaw,
}

/// The user's shell: the sandbox's HOME and XDG folders, PATH (with the fakes first), USER, and
/// the SeaweedFS keys under names of the user's choosing.
fn shell(sb: &Sandbox) -> Cmd {
    sb.bare()
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", sb.path("fakebin").display()))
        .env("SEAWEED_KEY_ID", ACCESS_KEY)
        .env("SEAWEED_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// Fake `systemctl` (logs its calls), `crontab` (keeps the crontab in a file) and `openclaw`
/// (keeps the arguments of `cron add`) in `fakebin/`.
fn fakes(sb: &Sandbox) {
    let bin = sb.path("fakebin");
    fs::create_dir_all(&bin).unwrap();
    let put = |name: &str, text: String| {
        let p = bin.join(name);
        write_executable(&p, &text);
    };
    put("systemctl", format!("#!/bin/sh\necho \"$@\" >> {}\n", sb.path("systemctl.log").display()));
    put(
        "crontab",
        format!(
            "#!/bin/sh\nF={}\nif [ \"$1\" = -l ]; then [ -f \"$F\" ] && exec cat \"$F\"; echo 'no crontab for e2e' >&2; exit 1; fi\ncat > \"$F\"\n",
            sb.path("crontab.txt").display()
        ),
    );
    // `openclaw cron add --help` lists the flags a command job needs; `cron add ...` keeps its
    // arguments, one a line, and answers as OpenClaw does; `cron list` finds no gateway (so the job
    // is read from the store on disk, which `store_openclaw_job` writes).
    put(
        "openclaw",
        format!(
            r#"#!/bin/sh
S={jobs}
if [ "$1 $2" = "cron add" ]; then
  case "$3" in --help) echo "  --command-argv <json>  --declaration-key <key>"; exit 0;; esac
  mkdir -p "$(dirname "$S")"; shift 2; printf '%s\n' "$@" > "$S.args"
  echo '{{"created": true, "job": {{"id": "fake-1"}}}}'
  exit 0
fi
if [ "$1 $2" = "cron list" ]; then echo "Gateway not reachable" >&2; exit 1; fi
exit 0
"#,
            jobs = sb.home.join(".openclaw/cron/jobs.json").display()
        ),
    );
}

/// An OpenClaw state dir with something to back up.
fn openclaw_state(sb: &Sandbox) {
    write(&sb.home.join(".openclaw/workspace/MEMORY.md"), b"remember the scheduled run\n");
    write(&sb.home.join(".openclaw/openclaw.json"), b"{}\n");
}

/// Writes the OpenClaw job store (`cron/jobs.json`) with the command job the fake was given, as
/// OpenClaw stores it; returns the job's argv, variables and folder.
fn store_openclaw_job(sb: &Sandbox) -> (Vec<String>, Vec<String>, String) {
    let args = fs::read_to_string(sb.home.join(".openclaw/cron/jobs.json.args")).expect("openclaw cron add was called");
    let args: Vec<&str> = args.lines().collect();
    let after = |flag: &str| args.iter().position(|a| *a == flag).map(|i| args[i + 1].to_string());
    let argv: Vec<String> = serde_json::from_str(&after("--command-argv").expect("--command-argv")).unwrap();
    let env: Vec<String> = args.windows(2).filter(|w| w[0] == "--command-env").map(|w| w[1].to_string()).collect();
    let cwd = after("--command-cwd").expect("--command-cwd");
    assert_eq!(after("--declaration-key").as_deref(), Some("clawback-backup"), "{args:?}");
    let vars: serde_json::Map<String, serde_json::Value> =
        env.iter().map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
    let jobs = serde_json::json!({ "jobs": [{
        "id": "fake-1", "name": "clawback-backup", "declarationKey": "clawback-backup", "enabled": true,
        "payload": { "kind": "command", "argv": argv, "env": vars, "cwd": cwd },
    }] });
    fs::write(sb.home.join(".openclaw/cron/jobs.json"), jobs.to_string()).unwrap();
    (argv, env, cwd)
}

/// Splits a systemd ExecStart=/Environment= value into words ("..." quoting, \ escapes).
fn systemd_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut has) = (false, false);
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            '\\' if quoted => cur.push(it.next().unwrap()),
            c if c.is_whitespace() && !quoted => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out.into_iter().map(|w| w.replace("%%", "%").replace("$$", "$")).collect()
}

/// Runs what the scheduler of `kind` was given, in an empty environment but for what that
/// scheduler sets, from HOME; returns (exit code, output).
fn run_as_scheduled(sb: &Sandbox, kind: Kind) -> (i32, String) {
    let home = sb.home.to_str().unwrap();
    let mut c = Command::new("env");
    c.arg("-i").current_dir(&sb.home);
    match kind {
        Kind::Systemd => {
            let unit = fs::read_to_string(sb.path("xdg/config/systemd/user/clawback.service")).unwrap();
            let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart=");
            c.args([format!("HOME={home}"), "USER=e2e".into(), "LOGNAME=e2e".into()])
                .arg("PATH=/usr/local/bin:/usr/bin:/bin");
            for l in unit.lines().filter_map(|l| l.strip_prefix("Environment=")) {
                c.args(systemd_words(l));
            }
            c.args(systemd_words(exec));
        }
        Kind::Cron => {
            let tab = fs::read_to_string(sb.path("crontab.txt")).unwrap();
            let line = tab.lines().find(|l| l.contains("daemon --once")).expect("the clawback crontab line");
            // What cron hands to /bin/sh: the line after its five time fields.
            let cmd = line.splitn(6, ' ').nth(5).unwrap();
            c.args([format!("HOME={home}"), "LOGNAME=e2e".into(), "SHELL=/bin/sh".into(), "PATH=/usr/bin:/bin".into()])
                .args(["/bin/sh", "-c", cmd]);
        }
        Kind::Openclaw => {
            // The gateway runs the argv itself (no shell) with its service environment plus the
            // job's variables, in the job's folder.
            let (argv, env, cwd) = store_openclaw_job(sb);
            c.args([format!("HOME={home}"), "USER=e2e".into(), "LOGNAME=e2e".into()])
                .arg("PATH=/usr/local/bin:/usr/bin:/bin")
                .args(env)
                .args(argv)
                .current_dir(cwd);
        }
    }
    let out = c.output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if kind == Kind::Cron {
        text.push_str(&fs::read_to_string(sb.home.join(".openclaw/clawback/cron.log")).unwrap_or_default());
    }
    (out.status.code().unwrap_or(-1), text)
}

/// The snapshots, opened the way the user would from the shell (the config in the state dir).
fn snapshot_count(sb: &Sandbox) -> usize {
    shell(sb).args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len()
}

fn env_file(sb: &Sandbox) -> PathBuf {
    sb.path("xdg/config/clawback/env")
}

/// Setup by flags for `repo` ("local" or a SeaweedFS endpoint), with the password generated.
fn setup(sb: &Sandbox, s3: Option<&Seaweed>) {
    let mut c =
        shell(sb).args(["setup", "--yes", "--generate-password", "--schedule", "2h", "--install-schedule", "none"]);
    c = match s3 {
        Some(w) => c
            .args(["--storage", "minio", "--endpoint", &w.endpoint, "--bucket", "sched", "--prefix", "claw"])
            .args(["--access-key-env", "SEAWEED_KEY_ID", "--secret-key-env", "SEAWEED_KEY", "--create-bucket"]),
        None => c.args(["--storage", "local", "--path"]).arg(&sb.repo),
    };
    let r = c.run();
    assert_eq!(r.code, 0, "setup failed:\n{}\n{}", r.stdout, r.stderr);
    let text = fs::read_to_string(sb.home.join(".openclaw/clawback.json")).unwrap();
    if s3.is_some() {
        assert!(text.contains("${SEAWEED_KEY}") && !text.contains(SECRET_KEY), "{text}");
        // The environment file holds what the config refers to, privately; no value was shown.
        let env = fs::read_to_string(env_file(sb)).unwrap();
        assert!(env.contains(&format!("SEAWEED_KEY={SECRET_KEY}")) && env.contains("SEAWEED_KEY_ID="), "{env}");
        assert!(!r.stdout.contains(SECRET_KEY) && !r.stderr.contains(SECRET_KEY));
    }
    let env = fs::read_to_string(env_file(sb)).unwrap();
    assert!(env.lines().any(|l| l.starts_with("PATH=") && l.contains("fakebin")), "{env}");
    assert_eq!(fs::metadata(env_file(sb)).unwrap().permissions().mode() & 0o777, 0o600);
}

fn install_then_run(kind: Kind, s3: bool) {
    let sb = Sandbox::new();
    fakes(&sb);
    openclaw_state(&sb);
    let weed = s3.then(Seaweed::start);
    setup(&sb, weed.as_ref());
    let flag = match kind {
        Kind::Systemd => "--systemd",
        Kind::Cron => "--cron",
        Kind::Openclaw => "--openclaw",
    };
    let r = shell(&sb).args(["schedule", "install", flag]).run().ok();
    assert!(r.stdout.contains("checked the job as"), "{}", r.stdout);
    let before = snapshot_count(&sb);
    let (code, out) = run_as_scheduled(&sb, kind);
    assert_eq!(code, 0, "the {kind:?} job failed as its scheduler runs it:\n{out}");
    assert_eq!(snapshot_count(&sb), before + 1, "the {kind:?} job wrote no snapshot:\n{out}");
    // `test` from the shell checks the installed job the same way.
    let t = shell(&sb).args(["test", "--json"]).run();
    let checks = t.json();
    let run = checks.as_array().unwrap().iter().find(|c| c["name"] == "scheduled run").unwrap().clone();
    assert_eq!(run["ok"], true, "{run}");
}

#[test]
fn systemd_job_runs_under_an_empty_environment_local() {
    install_then_run(Kind::Systemd, false);
}

#[test]
fn systemd_job_runs_under_an_empty_environment_s3() {
    install_then_run(Kind::Systemd, true);
}

#[test]
fn cron_job_runs_under_an_empty_environment_local() {
    install_then_run(Kind::Cron, false);
}

#[test]
fn cron_job_runs_under_an_empty_environment_s3() {
    install_then_run(Kind::Cron, true);
}

#[test]
fn openclaw_job_runs_under_an_empty_environment_local() {
    install_then_run(Kind::Openclaw, false);
}

#[test]
fn openclaw_job_runs_under_an_empty_environment_s3() {
    install_then_run(Kind::Openclaw, true);
}

/// A config whose `${VAR}`s the job will not have: `schedule install` refuses (nothing installed)
/// and `test` shows the ✗ with the fix, before any scheduled run; and when the environment file
/// loses a variable the shell still has, `test` from that shell says the job lacks it.
#[test]
fn a_missing_variable_is_caught_before_any_scheduled_run() {
    let sb = Sandbox::new();
    fakes(&sb);
    openclaw_state(&sb);
    let weed = Seaweed::start();
    let no_keys = || shell(&sb).env_remove("SEAWEED_KEY_ID").env_remove("SEAWEED_KEY");
    // The config, written by setup from a shell that had the keys (S3 on SeaweedFS).
    setup(&sb, Some(&weed));
    let units = sb.path("xdg/config/systemd/user");

    // Installing from a shell without them, after the environment file lost them.
    let env = fs::read_to_string(env_file(&sb)).unwrap();
    let kept: Vec<&str> = env.lines().filter(|l| !l.starts_with("SEAWEED_KEY")).collect();
    fs::write(env_file(&sb), kept.join("\n") + "\n").unwrap();
    for flag in ["--systemd", "--cron", "--openclaw"] {
        let r = no_keys().args(["schedule", "install", flag]).run().code(1);
        let line = r.one_error_line();
        assert!(
            line.contains("is referenced by the config but the scheduled job will not have it")
                && line.contains("SEAWEED_KEY")
                && line.contains("clawback setup")
                && line.contains("clawback/env"),
            "{flag}: {line}"
        );
    }
    assert!(!units.join("clawback.service").exists(), "a failing job was installed");
    assert!(!sb.path("crontab.txt").exists(), "a failing crontab line was installed");
    assert!(!sb.home.join(".openclaw/cron/jobs.json.args").exists(), "a failing OpenClaw job was installed");

    // `test` from the shell that has the keys: the storage works here, the scheduled run would not.
    let r = shell(&sb).args(["test", "--json"]).run().code(1);
    let checks = r.json();
    let by = |n: &str| checks.as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by("storage")["ok"], true, "{}", by("storage"));
    let run = by("scheduled run");
    assert_eq!(run["ok"], false, "{run}");
    assert!(run["detail"].as_str().unwrap().contains("SEAWEED_KEY"), "{run}");
    assert!(run["fix"].as_str().unwrap().contains("clawback setup"), "{run}");

    // Running setup again from the shell with the keys puts them back; then install works.
    shell(&sb)
        .args(["setup", "--yes", "--force", "--schedule", "2h", "--install-schedule", "systemd"])
        .args(["--storage", "minio", "--endpoint", &weed.endpoint, "--bucket", "sched", "--prefix", "claw"])
        .args(["--access-key-env", "SEAWEED_KEY_ID", "--secret-key-env", "SEAWEED_KEY"])
        .run()
        .ok();
    assert!(units.join("clawback.service").exists());
    let (code, out) = run_as_scheduled(&sb, Kind::Systemd);
    assert_eq!(code, 0, "{out}");
}

/// The environment file holds secrets: readable by others, it is refused with the fix, as ssh
/// refuses a private key others can read; variables already set in the process win.
#[test]
fn the_environment_file_must_be_private_and_the_process_wins() {
    let sb = Sandbox::with_repo();
    let f = env_file(&sb);
    write(&f, format!("CLAWBACK_PASSWORD={PASSWORD}\nCLAWBACK_REPO={}\n", sb.repo.display()).as_bytes());
    chmod(&f, 0o644);
    let r = sb.bare().args(["snapshots", "--json"]).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains("chmod 600") && line.contains("clawback/env"), "{line}");
    chmod(&f, 0o600);
    // Loaded before the flags are read: CLAWBACK_REPO and the password come from the file.
    assert_eq!(sb.bare().args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len(), 0);
    // A variable the process has wins over the file.
    let r = sb.bare().env("CLAWBACK_PASSWORD", "not the password").args(["snapshots"]).run().code(11);
    r.one_error_line();
    // The config's envFile names another file.
    let other = sb.path("elsewhere.env");
    fs::rename(&f, &other).unwrap();
    let cfg = sb.path("cfg.json");
    fs::write(&cfg, format!("{{ envFile: {:?} }}", other.to_str().unwrap())).unwrap();
    sb.bare().arg("--config").arg(&cfg).args(["snapshots", "--json"]).run().ok();
    let _ = Path::new("");
}
