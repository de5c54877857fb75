//! `setup` (by flags and through a pseudo-terminal), `test`/`doctor`, and the OpenClaw skill.

use crate::support::*;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The checks of `test --json` by name.
fn checks(r: &Run) -> std::collections::BTreeMap<String, serde_json::Value> {
    r.json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

#[test]
fn test_passes_on_a_healthy_sandbox() {
    let sb = Sandbox::with_repo();
    let r = sb.cb().args(["test", "--json"]).run().ok();
    let c = checks(&r);
    for name in ["config", "storage", "key", "round trip", "schedule", "recent runs"] {
        assert_eq!(c[name]["ok"], true, "{name}: {}", c[name]);
    }
    assert!(c["storage"]["detail"].as_str().unwrap().contains("wrote, read back and deleted"));
    assert_eq!(c["schedule"]["warning"], true, "no schedule configured is a warning");
    assert!(fs::read_dir(sb.repo.join("locks")).map(|d| d.count()).unwrap_or(0) == 0, "probe object left behind");
    // The human form: a ✓ line each, `doctor` the same command.
    let r = sb.cb().arg("doctor").run().ok();
    assert!(r.stdout.lines().filter(|l| l.starts_with("✓ ")).count() >= 5, "{}", r.stdout);
}

#[test]
fn test_reports_each_broken_piece() {
    let sb = Sandbox::with_repo();
    // Wrong password.
    let r = sb.cb().env("CLAWBACK_PASSWORD", "not the password").args(["test", "--json"]).run().code(1);
    let c = checks(&r);
    assert_eq!(c["key"]["ok"], false);
    assert!(c["key"]["fix"].as_str().unwrap().contains("CLAWBACK_PASSWORD"));
    assert_eq!(c["storage"]["ok"], true);
    let human = sb.cb().env("CLAWBACK_PASSWORD", "not the password").arg("test").run().code(1);
    assert!(human.stdout.contains("✗ key:") && human.stdout.contains("fix:"), "{}", human.stdout);

    // Missing repository.
    let r = sb
        .bare()
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .arg("--repo")
        .arg(sb.path("nowhere"))
        .args(["test", "--json"])
        .run()
        .code(1);
    let c = checks(&r);
    assert_eq!(c["storage"]["ok"], false);
    assert!(c["storage"]["fix"].as_str().unwrap().contains("clawback init"), "{}", c["storage"]);

    // Unreachable storage: the repository path is a file.
    fs::write(sb.path("afile"), b"x").unwrap();
    let r = sb
        .bare()
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .arg("--repo")
        .arg(sb.path("afile/repo"))
        .args(["test", "--json"])
        .run()
        .code(1);
    assert_eq!(checks(&r)["storage"]["ok"], false);

    // Broken config file.
    let cfg = sb.path("broken.json");
    fs::write(&cfg, "{ schedule: \"2h\", storage: { provider: 42 ").unwrap();
    let r = sb.cb().arg("--config").arg(&cfg).args(["test", "--json"]).run().code(1);
    let c = checks(&r);
    assert_eq!(c["config"]["ok"], false);
    assert!(c["config"]["detail"].as_str().unwrap().contains("broken.json"), "{}", c["config"]);

    // A configured schedule that is not installed.
    let cfg = sb.path("sched.json");
    fs::write(&cfg, "{ schedule: \"2h\" }").unwrap();
    let r = sb.cb().arg("--config").arg(&cfg).args(["test", "--json"]).run().code(1);
    let c = checks(&r);
    assert_eq!(c["schedule"]["ok"], false);
    assert!(c["schedule"]["fix"].as_str().unwrap().contains("schedule install"));
}

#[test]
fn setup_by_flags_writes_references_not_secrets() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.home.join(".openclaw")).unwrap();
    let cfg = sb.path("cfg/clawback.json");
    let pwfile = sb.path("secret/password");
    let repo = sb.path("repo-setup");
    let r = sb
        .bare()
        .arg("--config")
        .arg(&cfg)
        .arg("--password-file")
        .arg(&pwfile)
        .args(["setup", "--yes", "--storage", "local", "--path"])
        .arg(&repo)
        .args(["--generate-password", "--schedule", "2h", "--keep-daily", "7", "--keep-last", "3"])
        .args(["--install-schedule", "none"])
        .run()
        .ok();
    assert!(r.stdout.contains("wrote"), "{}", r.stdout);
    let text = fs::read_to_string(&cfg).unwrap();
    let pw = fs::read_to_string(&pwfile).unwrap();
    assert!(pw.len() >= 32);
    assert!(!text.contains(pw.trim()), "the config holds the literal password");
    assert_eq!(fs::metadata(&pwfile).unwrap().permissions().mode() & 0o777, 0o600);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["encryption"]["keyFile"], pwfile.to_str().unwrap());
    assert_eq!(v["storage"]["path"], repo.to_str().unwrap());
    assert_eq!(v["retention"], serde_json::json!({ "keepDaily": 7, "keepLast": 3 }));
    assert!(repo.join("config").is_file(), "setup ran init");

    // The config alone is enough to back up, and test passes on it (warning: schedule not installed → ✗).
    let src = sb.path("src");
    write(&src.join("a.txt"), b"hello");
    sb.bare().arg("--config").arg(&cfg).arg("backup").arg(&src).run().ok();

    // Refuses to overwrite without --force.
    let r = sb.bare().arg("--config").arg(&cfg).args(["setup", "--yes", "--storage", "local"]).run().code(2);
    assert!(r.one_error_line().contains("--force"));

    // S3-type storage: credentials and passphrase as ${VAR} references only.
    let cfg2 = sb.path("cfg/r2.json");
    sb.bare()
        .env("MY_BACKUP_PW", "hunter2-literal-secret")
        .env("AWS_SECRET_ACCESS_KEY", "aws-literal-secret")
        .arg("--config")
        .arg(&cfg2)
        .args(["setup", "--yes", "--no-test", "--storage", "r2", "--endpoint", "https://acct.r2.cloudflarestorage.com"])
        .args(["--bucket", "backups", "--password-env", "MY_BACKUP_PW", "--access-key-env", "R2_KEY_ID"])
        .run()
        .ok();
    let text = fs::read_to_string(&cfg2).unwrap();
    assert!(!text.contains("literal-secret"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["storage"]["provider"], "s3");
    assert_eq!(v["storage"]["accessKeyId"], "${R2_KEY_ID}");
    assert_eq!(v["storage"]["secretAccessKey"], "${AWS_SECRET_ACCESS_KEY}");
    assert_eq!(v["storage"]["region"], "auto");
    assert_eq!(v["encryption"]["passphrase"], "${MY_BACKUP_PW}");
    assert_eq!(v["schedule"], "2h");
    assert_eq!(v["retention"]["keepHourly"], 24);
}

/// Runs `clawback ARGS` on a pseudo-terminal (util-linux `script`), answering each prompt when it
/// appears. Returns everything the terminal showed and the exit code.
fn on_pty(sb: &Sandbox, args: &str, answers: &[(&str, &str)]) -> (String, i32) {
    on_pty_env(sb, args, &[], answers)
}

/// Like `on_pty`, with more environment variables.
fn on_pty_env(sb: &Sandbox, args: &str, env: &[(&str, &str)], answers: &[(&str, &str)]) -> (String, i32) {
    let cmdline = format!("{} {}", bin().display(), args);
    let mut c = Command::new("script");
    sb.clean_env(&mut c);
    c.envs(env.iter().copied());
    c.args(["-qfec", &cmdline, "/dev/null"])
        .env("OPENCLAW_STATE_DIR", sb.root.join("state"))
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let s2 = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            s2.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut from = 0;
    for (prompt, answer) in answers {
        let start = Instant::now();
        loop {
            let s = seen.lock().unwrap().clone();
            if let Some(i) = s[from..].find(prompt) {
                from += i + prompt.len();
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("prompt {prompt:?} never appeared; the terminal showed:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        stdin.write_all(format!("{answer}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = wait_or_kill(&mut child, Duration::from_secs(120), || {
        format!("setup did not finish:\n{}", seen.lock().unwrap())
    });
    drop(stdin);
    reader.join().unwrap();
    let text = seen.lock().unwrap().clone();
    (text, status.code().unwrap_or(-1))
}

#[test]
fn setup_wizard_on_a_terminal_ends_with_a_working_repository() {
    let sb = Sandbox::new();
    let repo = sb.path("wizard-repo");
    let pwfile = sb.path("wizard/password");
    let cfg = sb.root.join("state/clawback.json");
    let (text, code) = on_pty(
        &sb,
        "setup",
        &[
            ("Where should backups go?", "1"),
            ("Repository folder", repo.to_str().unwrap()),
            ("How should the repository passphrase be kept?", "2"),
            ("Passphrase file", pwfile.to_str().unwrap()),
            ("How often to back up", "4h"),
            ("Snapshots to keep", "last=5 daily=7"),
            ("Passphrase (empty: generate a random one): ", "typed wizard passphrase"),
            ("Passphrase again: ", "typed wizard passphrase"),
            ("Install the schedule now?", "none"),
            ("Run a first backup now", "n"),
        ],
    );
    assert_eq!(code, 0, "the wizard failed:\n{text}");
    assert!(!text.contains("typed wizard passphrase"), "the passphrase was echoed:\n{text}");
    let conf = fs::read_to_string(&cfg).unwrap();
    assert!(!conf.contains("typed wizard passphrase"));
    let v: serde_json::Value = serde_json::from_str(&conf).unwrap();
    assert_eq!(v["schedule"], "4h");
    assert_eq!(v["retention"], serde_json::json!({ "keepLast": 5, "keepDaily": 7 }));
    assert_eq!(fs::read_to_string(&pwfile).unwrap(), "typed wizard passphrase");
    assert!(text.contains("✓ key:"), "setup ran test:\n{text}");

    // The repository works with the config alone (found in the state dir).
    let src = sb.path("src");
    write(&src.join("MEMORY.md"), b"remember");
    let run = |args: &[&str]| sb.bare().env("OPENCLAW_STATE_DIR", sb.root.join("state")).args(args).run();
    run(&["backup", src.to_str().unwrap()]).ok();
    let snaps = run(&["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert!(repo.join("config").is_file());
}

// ---- the OpenClaw skill ----

/// Splits SKILL.md as OpenClaw reads it: YAML frontmatter between the first two `---` lines, one
/// `key: value` per line; `metadata` is a single-line JSON object.
fn frontmatter(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("---"), "SKILL.md must start with a --- line");
    let mut out = std::collections::BTreeMap::new();
    for l in lines.by_ref() {
        if l == "---" {
            return out;
        }
        let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("frontmatter line without a key: {l:?}"));
        assert!(!k.starts_with(' '), "frontmatter keys are single-line and top-level: {l:?}");
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    panic!("frontmatter not closed by ---");
}

#[test]
fn skill_parses_as_openclaw_frontmatter_and_installs() {
    let sb = Sandbox::new();
    let shown = sb.bare().args(["skill", "show"]).run().ok().stdout;
    let repo_file = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../skill/SKILL.md")).unwrap();
    assert_eq!(shown, repo_file, "the binary embeds skill/SKILL.md");
    let fm = frontmatter(&shown);
    assert_eq!(fm["name"], "clawback");
    assert!(fm["description"].len() > 40);
    let meta: serde_json::Value = serde_json::from_str(&fm["metadata"]).expect("metadata is single-line JSON");
    assert_eq!(meta["openclaw"]["requires"]["bins"], serde_json::json!(["clawback"]));
    assert!(meta["openclaw"]["emoji"].as_str().is_some_and(|e| !e.is_empty()));
    for cmd in ["clawback backup", "clawback snapshots", "clawback status", "clawback restore", "to undo", "gateway"] {
        assert!(shown.contains(cmd), "the skill does not mention {cmd:?}");
    }

    let state = sb.path("state");
    fs::create_dir_all(&state).unwrap();
    let cb = || sb.bare().env("OPENCLAW_STATE_DIR", &state);
    let r = cb().args(["skill", "install"]).run().ok();
    let installed = state.join("skills/clawback/SKILL.md");
    assert!(r.stdout.contains("skill installed"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&installed).unwrap(), repo_file);
    assert!(cb().args(["skill", "install"]).run().ok().stdout.contains("unchanged"));
    // A modified file is not overwritten without --force.
    fs::write(&installed, "my own notes").unwrap();
    let r = cb().args(["skill", "install"]).run().code(2);
    assert!(r.one_error_line().contains("--force"));
    assert_eq!(fs::read_to_string(&installed).unwrap(), "my own notes");
    cb().args(["skill", "install", "--force"]).run().ok();
    assert_eq!(fs::read_to_string(&installed).unwrap(), repo_file);
}

// ---- re-running setup never locks anyone out ----

/// Every snapshot in `ids` still opens with what is on disk now (the config alone, as a scheduled
/// run sees it): listed by `snapshots` and restored, file for file.
#[track_caller]
fn all_still_open(cb: &dyn Fn() -> Cmd, ids: &[String], src: &Path, scratch: &Path) {
    let listed = cb().args(["snapshots", "--json"]).run().ok().json();
    let have: Vec<&str> = listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    for id in ids {
        assert!(have.contains(&id.as_str()), "snapshot {id} is gone: {have:?}");
        let target = scratch.join(format!("restore-{}", &id[..8]));
        cb().args(["restore", id, "--target"]).arg(&target).run().ok();
        assert!(restored(&target, src).join("MEMORY.md").is_file(), "restore of {id} is empty");
    }
}

fn backup_id(cb: Cmd, src: &Path) -> String {
    cb.args(["backup", "--json"]).arg(src).run().ok().json()["snapshot_id"].as_str().unwrap().to_string()
}

/// The issue's case and every other way to re-run setup by flags, on a local repository: the
/// password file that opens it is never replaced, a generated password is refused with the fix,
/// and every earlier snapshot still opens after each re-run.
#[test]
fn setup_run_again_by_flags_keeps_the_repository_open() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.home.join(".openclaw")).unwrap();
    let repo = sb.path("repo-local");
    let src = sb.path("src");
    write(&src.join("MEMORY.md"), b"do not lose me");
    let pwfile = sb.path("xdg/config/clawback/password");
    let cb = || sb.bare();
    cb().args(["setup", "--yes", "--storage", "local", "--path"])
        .arg(&repo)
        .args(["--schedule", "1d", "--install-schedule", "none"])
        .run()
        .ok();
    let original = fs::read(&pwfile).unwrap();
    let mut ids = vec![backup_id(cb(), &src)];

    // The issue's command: it used to write a new generated password over the file.
    let r = cb()
        .args(["setup", "--yes", "--force", "--storage", "local", "--path"])
        .arg(&repo)
        .args(["--schedule", "1d", "--install-schedule", "none"])
        .run()
        .ok();
    assert!(r.stdout.contains("exists") && r.stdout.contains("opens it"), "{}", r.stdout);
    assert_eq!(fs::read(&pwfile).unwrap(), original, "the password file was replaced");
    all_still_open(&cb, &ids, &src, &sb.path("r1"));
    ids.push(backup_id(cb(), &src));

    // --generate-password on an existing repository: refused, with `key add` as the way.
    let r = cb()
        .args(["setup", "--yes", "--force", "--generate-password", "--storage", "local", "--path"])
        .arg(&repo)
        .run()
        .code(2);
    assert!(r.one_error_line().contains("key add"), "{}", r.stderr);
    assert_eq!(fs::read(&pwfile).unwrap(), original);

    // A password file that does not open it, given by flag, next to the one that does: the one
    // that opens it is used, and neither file is touched.
    let wrong = sb.path("wrong-password");
    fs::write(&wrong, "not it").unwrap();
    cb().arg("--password-file")
        .arg(&wrong)
        .args(["setup", "--yes", "--force", "--storage", "local", "--path"])
        .arg(&repo)
        .args(["--install-schedule", "none"])
        .run()
        .ok();
    assert_eq!(fs::read(&wrong).unwrap(), b"not it");
    assert_eq!(fs::read(&pwfile).unwrap(), original);
    all_still_open(&cb, &ids, &src, &sb.path("r2"));

    // Nothing that opens it at all (another user's config folder, no terminal): exit 11, the
    // fix in one line, nothing written.
    let other_cfg = sb.path("other/clawback.json");
    let r = cb()
        .env("XDG_CONFIG_HOME", sb.path("other-xdg"))
        .arg("--config")
        .arg(&other_cfg)
        .args(["setup", "--yes", "--storage", "local", "--path"])
        .arg(&repo)
        .run()
        .code(11);
    let line = r.one_error_line();
    assert!(line.contains("--password-file") && line.contains("key add"), "{line}");
    assert!(!other_cfg.exists() && !sb.path("other-xdg/clawback/password").exists());

    // The right password by --password-env: used as ${VAR}, nothing written to a file.
    let cfg3 = sb.path("third/clawback.json");
    cb().env("XDG_CONFIG_HOME", sb.path("other-xdg"))
        .env("REPO_PW", String::from_utf8(original.clone()).unwrap())
        .arg("--config")
        .arg(&cfg3)
        .args(["setup", "--yes", "--storage", "local", "--password-env", "REPO_PW", "--path"])
        .arg(&repo)
        .args(["--install-schedule", "none"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&cfg3).unwrap()).unwrap();
    assert_eq!(v["encryption"]["passphrase"], "${REPO_PW}");
    all_still_open(&cb, &ids, &src, &sb.path("r3"));
    assert_eq!(fs::read(&pwfile).unwrap(), original);

    // With --yes a first backup runs only when asked for (--backup-now): of the OpenClaw state.
    write(&sb.home.join(".openclaw/workspace/MEMORY.md"), b"the agent's memory");
    let before = cb().args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().len();
    cb().args(["setup", "--yes", "--force", "--storage", "local", "--backup-now", "--path"])
        .arg(&repo)
        .args(["--install-schedule", "none"])
        .run()
        .ok();
    let after = cb().args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(after.as_array().unwrap().len(), before + 1, "--backup-now ran no backup");
    all_still_open(&cb, &ids, &src, &sb.path("r4"));
}

/// Pressing Enter through the wizard on an existing repository (the embedded default location),
/// with --force: it finds the password that opens it, asks nothing about passwords, and every
/// snapshot still opens; a wrong typed password is asked again, never saved.
#[test]
fn setup_wizard_enter_through_on_an_existing_repository_keeps_it_open() {
    let sb = Sandbox::new();
    let state = sb.root.join("state");
    write(&state.join("workspace/MEMORY.md"), b"the workspace");
    let src = sb.path("src");
    write(&src.join("MEMORY.md"), b"do not lose me");
    let pwfile = sb.path("xdg/config/clawback/password");
    let cb = || sb.bare().env("OPENCLAW_STATE_DIR", &state);
    cb().args(["setup", "--yes", "--storage", "local", "--schedule", "2h", "--install-schedule", "none"]).run().ok();
    let original = fs::read(&pwfile).unwrap();
    let ids = vec![backup_id(cb(), &src)];

    let (text, code) = on_pty(
        &sb,
        "setup --force",
        &[
            ("Where should backups go?", ""),
            ("Repository folder", ""),
            ("How often to back up", ""),
            ("Snapshots to keep", ""),
            ("Install the schedule now?", ""),
            ("Run a first backup now", "n"),
        ],
    );
    assert_eq!(code, 0, "the wizard failed:\n{text}");
    assert!(text.contains("opens it"), "{text}");
    assert!(!text.contains("Passphrase"), "asked for a new passphrase:\n{text}");
    assert!(text.contains("schedule:"), "the final check shows the schedule:\n{text}");
    assert_eq!(fs::read(&pwfile).unwrap(), original, "the password file was replaced");
    all_still_open(&cb, &ids, &src, &sb.path("r1"));

    // No password it can find: asked for, a wrong one asked again, the right one kept in a new
    // file (the existing one is never written over).
    let moved = sb.path("kept-elsewhere");
    fs::rename(&pwfile, &moved).unwrap();
    let (text, code) = on_pty(
        &sb,
        "setup --force",
        &[
            ("Where should backups go?", "9"),
            ("choose", "local"),
            ("Repository folder", ""),
            ("Password of the existing repository: ", "wrong password"),
            ("Password of the existing repository: ", std::str::from_utf8(&original).unwrap()),
            ("Keep it in which file", ""),
            ("How often to back up", "every tuesday"),
            ("try again", "4h"),
            ("Snapshots to keep", ""),
            ("Install the schedule now?", ""),
            ("Run a first backup now", "n"),
        ],
    );
    assert_eq!(code, 0, "the wizard failed:\n{text}");
    assert!(text.contains("please answer 1 to 5"), "an invalid choice is asked again:\n{text}");
    assert!(text.contains("does not open"), "a wrong password is said to be wrong:\n{text}");
    assert!(!text.contains("wrong password"), "the typed password was echoed:\n{text}");
    assert_eq!(fs::read(&pwfile).unwrap(), original, "the typed password was kept");
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(state.join("clawback.json")).unwrap()).unwrap();
    assert_eq!(v["schedule"], "4h");
    all_still_open(&cb, &ids, &src, &sb.path("r2"));
}

/// The same on S3 (SeaweedFS): the bucket is created when asked, setup run again with --force
/// keeps the password, --generate-password is refused, and the snapshots open.
#[test]
fn setup_run_again_on_s3_keeps_the_repository_open() {
    let weed = crate::seaweed::Seaweed::start();
    let sb = Sandbox::new();
    fs::create_dir_all(sb.home.join(".openclaw")).unwrap();
    let src = sb.path("src");
    write(&src.join("MEMORY.md"), b"do not lose me");
    let pwfile = sb.path("xdg/config/clawback/password");
    let cb = || {
        sb.bare()
            .env("SEAWEED_KEY_ID", crate::seaweed::ACCESS_KEY)
            .env("SEAWEED_KEY", crate::seaweed::SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
    };
    let s3 = |c: Cmd| {
        c.args(["--storage", "minio", "--endpoint", &weed.endpoint, "--bucket", "setup-again", "--prefix", "p"])
            .args(["--access-key-env", "SEAWEED_KEY_ID", "--secret-key-env", "SEAWEED_KEY"])
            .args(["--install-schedule", "none", "--schedule", "1d"])
    };
    // A missing bucket without --create-bucket: stopped, nothing written.
    let r = s3(cb().args(["setup", "--yes"])).run().code(10);
    assert!(r.one_error_line().contains("--create-bucket"), "{}", r.stderr);
    assert!(!sb.home.join(".openclaw/clawback.json").exists());
    s3(cb().args(["setup", "--yes", "--create-bucket"])).run().ok();
    let original = fs::read(&pwfile).unwrap();
    let ids = vec![backup_id(cb(), &src)];
    s3(cb().args(["setup", "--yes", "--force"])).run().ok();
    assert_eq!(fs::read(&pwfile).unwrap(), original);
    let r = s3(cb().args(["setup", "--yes", "--force", "--generate-password"])).run().code(2);
    assert!(r.one_error_line().contains("key add"));
    assert_eq!(fs::read(&pwfile).unwrap(), original);
    all_still_open(&cb, &ids, &src, &sb.path("r1"));

    // The wizard on a terminal, Enter wherever there is a default, for the same bucket.
    fs::create_dir_all(sb.root.join("state")).unwrap();
    let (text, code) = on_pty_env(
        &sb,
        "setup",
        &[
            ("SEAWEED_KEY_ID", crate::seaweed::ACCESS_KEY),
            ("SEAWEED_KEY", crate::seaweed::SECRET_KEY),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &[
            ("Where should backups go?", "minio"),
            ("Region", ""),
            ("Endpoint", "not a url"),
            ("try again", &weed.endpoint),
            ("Bucket", "setup-again"),
            ("Folder inside the bucket", "p"),
            ("holding the access key id", "SEAWEED_KEY_ID"),
            ("holding the secret access key", "SEAWEED_KEY"),
            ("How often to back up", ""),
            ("Snapshots to keep", ""),
            ("Install the schedule now?", ""),
            ("Run a first backup now", "n"),
        ],
    );
    assert_eq!(code, 0, "the wizard failed:\n{text}");
    assert!(text.contains("opens it") && !text.contains("Passphrase"), "{text}");
    assert_eq!(fs::read(&pwfile).unwrap(), original);
    all_still_open(&cb, &ids, &src, &sb.path("r2"));
    // The config the wizard wrote opens them too.
    let wizard = || cb().env("OPENCLAW_STATE_DIR", sb.root.join("state"));
    all_still_open(&wizard, &ids, &src, &sb.path("r3"));
}

/// `test` gives the fix for what failed: a wrong secret and a server that is down are not
/// permission problems, and a wrong password is a password problem.
#[test]
fn test_suggests_the_fix_for_what_actually_failed() {
    let mut weed = crate::seaweed::Seaweed::start();
    let sb = Sandbox::new();
    let url = weed.url("fixes/repo");
    crate::seaweed::s3cb(&sb, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .run()
        .ok();
    let storage = |c: Cmd| {
        let r = c.args(["test", "--json"]).run().code(1);
        let v = r.json();
        v.as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap().clone()
    };
    let key = |c: Cmd| {
        let r = c.args(["test", "--json"]).run().code(1);
        let v = r.json();
        v.as_array().unwrap().iter().find(|c| c["name"] == "key").unwrap().clone()
    };
    // A wrong secret.
    let s = storage(crate::seaweed::s3cb(&sb, &url).env("AWS_SECRET_ACCESS_KEY", "not-the-secret-0000000000"));
    assert_eq!(s["ok"], false, "{s}");
    let fix = s["fix"].as_str().unwrap();
    assert!(fix.contains("access key id or secret") && !fix.contains("rights"), "{s}");
    // A wrong password.
    let k = key(crate::seaweed::s3cb(&sb, &url).env("CLAWBACK_PASSWORD", "not the password"));
    assert!(k["fix"].as_str().unwrap().contains("password") && !k["fix"].as_str().unwrap().contains("rights"), "{k}");
    // The server is down.
    weed.kill();
    let s = storage(crate::seaweed::s3cb(&sb, &url));
    let fix = s["fix"].as_str().unwrap();
    assert!(fix.contains("endpoint") && !fix.contains("rights") && !fix.contains("access key"), "{s}");
}

/// CLAWBACK_PASSWORD in the environment file (as `schedule install` writes it) is what every
/// command opens repositories with, so a new repository made by setup uses it rather than a
/// generated password that would never be the one in use.
#[test]
fn setup_uses_clawback_password_from_the_environment_file_for_a_new_repository() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.home.join(".openclaw")).unwrap();
    let envf = sb.path("xdg/config/clawback/env");
    write(&envf, format!("CLAWBACK_PASSWORD={PASSWORD}\n").as_bytes());
    chmod(&envf, 0o600);
    let repo = sb.path("new-repo");
    let r = sb
        .bare()
        .args(["setup", "--yes", "--generate-password", "--storage", "local", "--path"])
        .arg(&repo)
        .run()
        .code(2);
    assert!(r.one_error_line().contains("CLAWBACK_PASSWORD is set"), "{}", r.stderr);
    assert!(!repo.exists() && !sb.path("xdg/config/clawback/password").exists());
    sb.bare()
        .args(["setup", "--yes", "--storage", "local", "--install-schedule", "none", "--path"])
        .arg(&repo)
        .run()
        .ok();
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.home.join(".openclaw/clawback.json")).unwrap()).unwrap();
    assert_eq!(v["encryption"]["passphrase"], "${CLAWBACK_PASSWORD}");
    // The repository opens with that password, given directly.
    sb.bare().env("CLAWBACK_PASSWORD", PASSWORD).arg("--repo").arg(&repo).args(["snapshots"]).run().ok();
}
