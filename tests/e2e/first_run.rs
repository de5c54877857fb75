//! A first hour that works: with no OpenClaw state dir `now` exits 2 and creates nothing, an empty
//! backup set is an error (never an empty snapshot), and an interactive first run asks for the new
//! password twice, keeps it 0600 where unattended runs look, and says where (driven on a pty).

use crate::support::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every file and folder under `p`.
fn everything_under(p: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for e in fs::read_dir(p).unwrap().flatten() {
        out.insert(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(everything_under(&e.path()));
        }
    }
    out
}

#[test]
fn no_state_dir_exits_2_and_creates_nothing_however_often_it_is_run() {
    let sb = Sandbox::new();
    let before = everything_under(&sb.root);
    for _ in 0..2 {
        let r = sb.bare().arg("now").run().code(2);
        assert!(r.one_error_line().contains("no OpenClaw state dir"), "{}", r.stderr);
    }
    assert_eq!(everything_under(&sb.root), before, "a failed first run left files behind");

    // A state dir holding only clawback's own run log (left by an older version) is no OpenClaw.
    write(&sb.home.join(".openclaw/clawback/runs.jsonl"), b"");
    let r = sb.bare().env("CLAWBACK_PASSWORD", PASSWORD).arg("now").run().code(2);
    assert!(r.one_error_line().contains("no OpenClaw state dir"), "{}", r.stderr);
    assert!(!sb.path("xdg/data/clawback").exists(), "no repository is created for nothing");
}

#[test]
fn an_empty_backup_set_is_an_error_not_an_empty_snapshot() {
    let sb = Sandbox::with_repo();
    let empty = sb.path("empty");
    fs::create_dir_all(empty.join("only/folders")).unwrap();
    let r = sb.cb().arg("backup").arg(&empty).run().code(2);
    assert!(r.one_error_line().contains("nothing to back up"), "{}", r.stderr);
    // Everything excluded is empty too.
    write(&empty.join("cache.tmp"), b"x");
    let r = sb.cb().args(["backup", "--exclude", "*.tmp"]).arg(&empty).run().code(2);
    assert!(r.one_error_line().contains("nothing to back up"), "{}", r.stderr);
    assert!(sb.snapshots().is_empty());
    assert_eq!(sb.cb().args(["check", "--json"]).run().ok().json()["ok"], true);
}

/// Output of a process on a pty, collected by a thread.
struct Pty {
    child: std::process::Child,
    out: Arc<Mutex<String>>,
}

impl Pty {
    /// Runs `cmd` (a shell command line) on a new pty with `script`, in the sandbox's environment.
    fn start(sb: &Sandbox, cmd: &str) -> Pty {
        let mut c = Command::new("script");
        sb.clean_env(&mut c).env("USER", "e2e").env("TZ", "UTC").env("SHELL", "/bin/sh");
        c.args(["-qfec", cmd, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("script (util-linux) runs");
        let out = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let o = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty { child, out }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits until the output holds `text` `n` times.
    fn wait_for(&self, text: &str, n: usize) {
        let t = Instant::now();
        while self.output().matches(text).count() < n {
            assert!(t.elapsed() < Duration::from_secs(60), "no {text:?} (x{n}) on the terminal:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) -> (i32, String) {
        let out = self.out.clone();
        let status = wait_or_kill(&mut self.child, Duration::from_secs(120), || {
            format!("the command on the pty did not finish (asked again?):\n{}", out.lock().unwrap())
        });
        drop(self.child.stdin.take());
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.output())
    }
}

#[test]
fn an_interactive_first_run_asks_twice_and_keeps_the_password_for_scheduled_runs() {
    let sb = Sandbox::new();
    write(&sb.home.join(".openclaw/workspace/notes.md"), b"first hour\n");
    write(&sb.home.join(".openclaw/openclaw.json"), b"{}\n");
    let cmd = format!("'{}' now", bin().display());
    let mut pty = Pty::start(&sb, &cmd);
    pty.wait_for("password", 1);
    pty.type_line("correct horse battery");
    pty.wait_for("again", 1);
    pty.type_line("correct horse battery");
    let (code, out) = pty.finish();
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("enter ") && l.contains("password")).count(), 2, "asked twice: {out}");
    let file = sb.path("xdg/config/clawback/default-repo.password");
    assert!(out.contains("saved the password in"), "{out}");
    assert!(out.replace("\r\n", "").contains(file.to_str().unwrap()), "says where: {out}");
    assert!(out.contains("snapshot"), "{out}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "correct horse battery");
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // What cron runs next: no terminal, no password in the environment.
    write(&sb.home.join(".openclaw/workspace/more.md"), b"an hour later\n");
    sb.bare().args(["now", "-q"]).env("CLAWBACK_TRIGGER", "cron").run().ok();
    let snaps = sb.bare().args(["snapshots", "--json"]).run().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");

    // Mistyped confirmation: nothing kept, nothing created.
    let sb = Sandbox::new();
    write(&sb.home.join(".openclaw/workspace/notes.md"), b"first hour\n");
    let mut pty = Pty::start(&sb, &cmd);
    pty.wait_for("password", 1);
    pty.type_line("one");
    pty.wait_for("again", 1);
    pty.type_line("another");
    let (code, out) = pty.finish();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("do not match"), "{out}");
    assert!(!sb.path("xdg/config/clawback/default-repo.password").exists());
    assert!(!sb.path("xdg/data/clawback/repo/config").exists());
}
