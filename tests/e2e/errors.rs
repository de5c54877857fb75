//! Bad input: wrong or missing passwords, missing repositories, unknown snapshots, usage errors,
//! unreadable and special files, files vanishing during the walk. Each gets its documented exit
//! code and one clear line on stderr.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

fn some_tree(sb: &Sandbox) -> PathBuf {
    let src = sb.path("src");
    write(&src.join("a.txt"), b"a");
    write(&src.join("d/b.txt"), b"b");
    src
}

#[test]
fn wrong_password_exits_11_with_one_line() {
    let sb = Sandbox::with_repo();
    let src = some_tree(&sb);
    sb.backup(&[&src]);
    let t = sb.path("t");
    let commands: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["snapshots".into()],
        vec!["backup".into(), src.clone().into()],
        vec!["ls".into(), "latest".into()],
        vec!["restore".into(), "latest".into(), "--target".into(), t.clone().into()],
    ];
    for args in &commands {
        let r = sb.cb().env("CLAWBACK_PASSWORD", "not the password").args(args).run().code(11);
        let line = r.one_error_line();
        assert!(line.to_lowercase().contains("password"), "{line}");
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(!r.stderr.contains(PASSWORD));
    }
    assert!(!t.exists(), "a failed restore created its target");
    assert_eq!(sb.snapshots().len(), 1, "a failed backup wrote a snapshot");

    // The same through --password-file (which beats the environment).
    let pf = sb.path("pw");
    fs::write(&pf, "also wrong\n").unwrap();
    sb.cb().arg("--password-file").arg(&pf).arg("snapshots").run().code(11).one_error_line();
    fs::write(&pf, format!("{PASSWORD}\n")).unwrap();
    sb.cb().env("CLAWBACK_PASSWORD", "wrong").arg("--password-file").arg(&pf).arg("snapshots").run().ok();

    // No password at all, and no terminal to ask on.
    let r = sb.cb().env_remove("CLAWBACK_PASSWORD").arg("snapshots").run().code(11);
    r.one_error_line();
}

#[test]
fn missing_repository_exits_10_and_creates_nothing() {
    let sb = Sandbox::new();
    let src = some_tree(&sb);
    let t = sb.path("t");
    let empty = sb.path("empty-dir");
    fs::create_dir(&empty).unwrap();
    for repo in [sb.path("no-such-repo"), empty.clone()] {
        for args in [
            vec!["snapshots"],
            vec!["ls", "latest"],
            vec!["restore", "latest", "--target", t.to_str().unwrap()],
            vec!["backup", src.to_str().unwrap()],
        ] {
            let r = sb.bare().env("CLAWBACK_PASSWORD", PASSWORD).arg("--repo").arg(&repo).args(&args).run().code(10);
            let line = r.one_error_line();
            assert!(line.contains("does not exist") || line.contains("init"), "{line}");
        }
    }
    assert!(!sb.path("no-such-repo").exists(), "a named repository was created");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    assert!(!t.exists());
}

#[test]
fn init_twice_fails_and_keeps_the_first_key() {
    let sb = Sandbox::with_repo();
    let keys_before = files_under(&sb.repo.join("keys"));
    let r = sb
        .cb()
        .env("CLAWBACK_PASSWORD", "a different password")
        .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .run();
    assert_ne!(r.code, 0, "second init succeeded");
    assert_ne!(r.code, 3);
    let line = r.one_error_line();
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(files_under(&sb.repo.join("keys")), keys_before);
    sb.cb().arg("snapshots").run().ok();
    sb.cb().env("CLAWBACK_PASSWORD", "a different password").arg("snapshots").run().code(11);
}

#[test]
fn unknown_snapshots_and_usage_errors() {
    let sb = Sandbox::with_repo();
    let t = sb.path("t");
    // Empty repository: there is no latest.
    let r = sb.cb().args(["restore", "latest", "--target"]).arg(&t).run();
    assert_ne!(r.code, 0);
    r.one_error_line();

    let src = some_tree(&sb);
    sb.backup(&[&src]);
    for spec in ["deadbeef", "0000000000000000000000000000000000000000000000000000000000000000"] {
        let r = sb.cb().args(["restore", spec, "--target"]).arg(&t).run();
        assert_ne!(r.code, 0, "restore of unknown snapshot {spec} succeeded");
        let line = r.one_error_line();
        assert!(line.contains(spec) && line.contains("not found"), "{line}");
        let r = sb.cb().args(["ls", spec]).run();
        assert_ne!(r.code, 0);
        r.one_error_line();
    }
    assert!(!t.exists(), "restore of an unknown snapshot created the target");

    // Usage errors: exit 2.
    sb.cb().args(["restore", "--target"]).arg(&t).run().code(2);
    sb.cb().args(["restore", "xyz!", "--target"]).arg(&t).run().code(2);
    sb.cb().args(["backup", "--no-such-flag"]).run().code(2);
    sb.cb().args(["backup", "--time", "yesterday"]).arg(&src).run().code(2);
    sb.cb().args(["frobnicate"]).run().code(2);
    // Backing up something that does not exist is a failure, not a snapshot.
    let r = sb.cb().arg("backup").arg(sb.path("nope")).run();
    assert_ne!(r.code, 0);
    assert_ne!(r.code, 3);
    assert_eq!(sb.snapshots().len(), 1);
}

#[test]
fn fifos_and_sockets_are_skipped_and_noted_without_hanging() {
    let sb = Sandbox::with_repo();
    let src = some_tree(&sb);
    let fifo = src.join("a-fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let sock = src.join("a-socket");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();

    let r = sb.cb().args(["backup", "--json"]).arg(&src).run().ok();
    let v = r.json();
    assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{v}");
    let skipped = v["skipped"].to_string();
    assert!(skipped.contains("a-fifo") && skipped.contains("a-socket"), "{v}");
    let ls = sb.cb().args(["ls", "latest"]).run().ok();
    assert!(ls.stdout.contains("a.txt"));
    assert!(!ls.stdout.contains("a-fifo"));
}

/// Runs a command as user `nobody`, with setpriv or runuser; `None` when neither works here.
fn as_nobody(sb: &Sandbox, home: &Path, args: &[&std::ffi::OsStr]) -> Option<Run> {
    let tools: [(&str, Vec<&str>); 2] = [
        ("setpriv", vec!["--reuid=65534", "--regid=65534", "--clear-groups", "--"]),
        ("runuser", vec!["-u", "nobody", "--"]),
    ];
    for (tool, pre) in tools {
        let probe = std::process::Command::new(tool).args(&pre).arg("true").output();
        if !matches!(probe, Ok(ref o) if o.status.success()) {
            continue;
        }
        let mut c = std::process::Command::new(tool);
        c.args(&pre)
            .arg(bin())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("CLAWBACK_PASSWORD", PASSWORD);
        let _ = sb;
        return Some(run_command(c));
    }
    None
}

#[test]
fn unreadable_files_exit_3_and_the_snapshot_lists_them() {
    let sb = Sandbox::new();
    if !is_root() {
        eprintln!("note: not root; using chmod 000 directly");
    }
    // Everything the unprivileged user needs must be reachable by it.
    chmod(&sb.root, 0o755);
    let nobody_home = sb.path("nobody");
    fs::create_dir(&nobody_home).unwrap();
    let tree = sb.path("tree");
    write(&tree.join("ok.txt"), b"readable");
    write(&tree.join("sub/fine.txt"), b"fine");
    write(&tree.join("secret.txt"), b"root only");
    chmod(&tree.join("secret.txt"), 0o000);
    write(&tree.join("locked/inner.txt"), b"inside a folder nobody may list");
    chmod(&tree.join("locked"), 0o000);
    let repo = nobody_home.join("repo");
    let repo_s = repo.clone().into_os_string();

    let run = |args: &[&str]| -> Option<Run> {
        let mut a: Vec<&std::ffi::OsStr> = vec!["--repo".as_ref(), repo_s.as_os_str()];
        a.extend(args.iter().map(|s| std::ffi::OsStr::new(*s)));
        if is_root() {
            as_nobody(&sb, &nobody_home, &a)
        } else {
            let mut c = std::process::Command::new(bin());
            c.args(&a)
                .env("HOME", &nobody_home)
                .env("XDG_CACHE_HOME", nobody_home.join(".cache"))
                .env("CLAWBACK_PASSWORD", PASSWORD);
            Some(run_command(c))
        }
    };
    if is_root() {
        std::os::unix::fs::chown(&nobody_home, Some(65534), Some(65534)).unwrap();
    }
    let Some(r) = run(&["init", "--kdf-memory", "1", "--kdf-iterations", "1"]) else {
        eprintln!("note: neither setpriv nor runuser can drop privileges here; unreadable-file check skipped");
        return;
    };
    r.ok();

    let tree_s = tree.to_str().unwrap();
    let r = run(&["backup", "--json", tree_s]).unwrap().code(3);
    let v = r.json();
    assert!(v["snapshot_id"].is_string(), "no snapshot written: {v}");
    let errors = v["errors"].as_array().unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    let secret = tree.join("secret.txt");
    let locked = tree.join("locked");
    assert!(paths.contains(&secret.to_str().unwrap()), "{v}");
    assert!(paths.contains(&locked.to_str().unwrap()), "{v}");
    assert_eq!(errors.len(), 2, "{v}");
    assert!(errors.iter().all(|e| e["error"].as_str().is_some_and(|s| !s.is_empty())));

    // The snapshot is there, lists the problems, and holds everything else.
    let snaps = run(&["snapshots", "--json"]).unwrap().ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert!(snaps[0]["errors"].to_string().contains("secret.txt"), "{snaps}");
    let ls = run(&["ls", "latest", tree_s]).unwrap().ok();
    assert!(ls.stdout.contains("ok.txt") && ls.stdout.contains("fine.txt"), "{}", ls.stdout);
    assert!(!ls.stdout.contains("secret.txt"), "{}", ls.stdout);

    // Without --json: still exit 3, and stderr names the file.
    let r = run(&["backup", tree_s]).unwrap().code(3);
    assert!(r.stderr.contains("secret.txt"), "{}", r.stderr);
    assert!(r.stdout.contains("snapshot"), "{}", r.stdout);
    chmod(&tree.join("locked"), 0o700); // so the sandbox can be removed when not root
}

#[test]
fn files_vanishing_during_the_walk_are_noted_not_fatal() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    for i in 0..300 {
        write(&src.join(format!("stable/{i}.txt")), &random_bytes(i, 2000));
    }
    let churn = src.join("churn");
    fs::create_dir_all(&churn).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let c2 = churn.clone();
    let churner = std::thread::spawn(move || {
        let mut i = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = fs::write(c2.join(format!("f{i}")), random_bytes(i, 3000));
            let _ = fs::create_dir(c2.join(format!("d{i}")));
            let _ = fs::write(c2.join(format!("d{i}/x")), b"x");
            if i >= 8 {
                let _ = fs::remove_file(c2.join(format!("f{}", i - 8)));
                let _ = fs::remove_dir_all(c2.join(format!("d{}", i - 8)));
            }
            i += 1;
        }
    });
    let mut noted = 0;
    for _ in 0..4 {
        let r = sb.cb().args(["backup", "--json"]).arg(&src).run();
        let v = r.json();
        assert_eq!(r.code, 0, "vanishing files are not read errors: {v}");
        noted += v["skipped"].as_array().unwrap().len();
        assert!(v["snapshot_id"].is_string());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churner.join().unwrap();
    eprintln!("note: {noted} vanished entries noted over 4 backups");
    assert_eq!(sb.snapshots().len(), 4);
}
