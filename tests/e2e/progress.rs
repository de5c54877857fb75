//! Progress on everything long, on a terminal only: every long command (backup, check with and
//! without --read-data, prune, copy, export, import, restore) draws its bar when stderr is a
//! terminal (a pseudo-terminal from util-linux `script`); the backup bar shows the bytes uploaded,
//! not only those read; nothing of it appears with --quiet or --json, or when stderr is a pipe.

use crate::support::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

const TO_PASSWORD: &str = "the copy target's passphrase";

fn quote(s: &OsStr) -> String {
    format!("'{}'", String::from_utf8_lossy(s.as_bytes()).replace('\'', r"'\''"))
}

/// `clawback ARGS` against the sandbox's repository with its stdin, stdout and stderr on a
/// pseudo-terminal; the returned `stdout` is everything the terminal showed.
fn on_tty(sb: &Sandbox, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Run {
    on_tty_at(sb, sb.repo.as_os_str(), args, env)
}

/// `on_tty` against the repository at `repo`.
fn on_tty_at(sb: &Sandbox, repo: &OsStr, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Run {
    let mut line = quote(bin().as_os_str());
    for a in [OsStr::new("--repo"), repo, OsStr::new("--cache-dir"), sb.cache.as_os_str()]
        .into_iter()
        .chain(args.iter().copied())
    {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut c = Command::new("script");
    sb.clean_env(&mut c)
        .env("USER", "e2e")
        .env("TZ", "UTC")
        .env("SHELL", "/bin/sh")
        // A terminal has a TERM; without one (or with "dumb") nothing draws, as under cron.
        .env("TERM", "xterm")
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .env("CLAWBACK_TO_PASSWORD", TO_PASSWORD);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["-qfec", &line, "/dev/null"]);
    run_command(c)
}

/// Asserts the terminal showed `verb`'s bar (its name and elapsed time, as the bar draws them).
#[track_caller]
fn assert_bar(r: &Run, verb: &str) {
    let shown = &r.stdout;
    assert!(
        (shown.contains(&format!("{verb} [")) || shown.contains(&format!("{verb}: "))) && shown.contains("[00:00:"),
        "`{}`: no {verb} progress bar on the terminal:\n{shown:?}",
        r.desc
    );
}

#[track_caller]
fn assert_no_bar(r: &Run) {
    for s in [&r.stdout, &r.stderr] {
        assert!(!s.contains("[00:00:") && !s.contains('\u{1b}'), "`{}` drew a bar: {s:?}", r.desc);
    }
}

fn a(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// An OpenClaw state folder (export and import need one) with 3 MiB that does not compress.
fn state_dir(sb: &Sandbox) -> std::path::PathBuf {
    let mut opts = clawback_corpus::Options::new(sb.path("oc-home"), 300_000);
    opts.seed = 13;
    let state = clawback_corpus::generate(&opts).expect("generate corpus").state_dir;
    write(&state.join("media/big.bin"), &random_bytes(13, 3 << 20));
    state
}

#[test]
fn long_commands_show_progress_on_a_terminal_only() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let state = state_dir(&sb);
    let st = [("OPENCLAW_STATE_DIR", state.as_os_str())];

    // backup at 1 MiB/s: the bar counts the upload, not only the reading.
    let r = on_tty(&sb, &[a("--limit-upload"), a("1024"), a("backup"), state.as_os_str()], &st).ok();
    assert_bar(&r, "backup");
    assert!(r.stdout.contains("uploaded "), "the backup bar does not show the upload:\n{:?}", r.stdout);

    // check, structure only and reading every pack (slowed so the read-data step is seen).
    assert_bar(&on_tty(&sb, &[a("check")], &[]).ok(), "check");
    let r = on_tty(&sb, &[a("--limit-download"), a("1024"), a("check"), a("--read-data")], &[]).ok();
    assert_bar(&r, "check");
    assert!(r.stdout.contains("check: read data"), "no read-data step shown:\n{:?}", r.stdout);

    assert_bar(&on_tty(&sb, &[a("prune")], &[]).ok(), "prune");

    let target = copy_target(&sb);
    assert_bar(&on_tty(&sb, &[a("copy"), a("--to"), target.as_os_str()], &[]).ok(), "copy");

    let archive = sb.path("export.tar.gz");
    assert_bar(&on_tty(&sb, &[a("export"), a("latest"), a("-o"), archive.as_os_str()], &st).ok(), "export");
    assert_bar(&on_tty(&sb, &[a("import"), archive.as_os_str()], &[]).ok(), "import");

    let out = sb.path("restored");
    assert_bar(&on_tty(&sb, &[a("restore"), a("latest"), a("--target"), out.as_os_str()], &[]).ok(), "restore");

    // --quiet and --json keep the terminal free of bars.
    write(&state.join("media/more.bin"), &random_bytes(14, 1 << 20));
    assert_no_bar(&on_tty(&sb, &[a("--json"), a("backup"), state.as_os_str()], &st).ok());
    assert_no_bar(&on_tty(&sb, &[a("--quiet"), a("check"), a("--read-data")], &[]).ok());
    assert_no_bar(&on_tty(&sb, &[a("--json"), a("check"), a("--read-data")], &[]).ok());
}

#[test]
fn no_terminal_no_progress() {
    let sb = Sandbox::with_repo_args(&["--pack-size", "1"]);
    let state = state_dir(&sb);
    let piped = |extra: &[&OsStr]| {
        let r = sb.cb().env("OPENCLAW_STATE_DIR", &state).env("CLAWBACK_TO_PASSWORD", TO_PASSWORD).args(extra).run();
        let r = r.ok();
        assert_no_bar(&r);
        assert!(!r.stderr.contains('\r'), "`{}` wrote a bar to a pipe: {:?}", r.desc, r.stderr);
        r
    };
    piped(&[a("--limit-upload"), a("4096"), a("backup"), state.as_os_str()]);
    piped(&[a("check"), a("--read-data")]);
    piped(&[a("prune")]);
    let target = copy_target(&sb);
    piped(&[a("copy"), a("--to"), target.as_os_str()]);
    let archive = sb.path("export.tar.gz");
    piped(&[a("export"), a("latest"), a("-o"), archive.as_os_str()]);
    piped(&[a("import"), archive.as_os_str()]);
    let out = sb.path("restored");
    let r = piped(&[a("restore"), a("latest"), a("--target"), out.as_os_str()]);
    assert!(Path::new(&out).join(state.strip_prefix("/").unwrap()).join("media/big.bin").is_file(), "{r:?}");
}

#[test]
fn s3_check_read_data_shows_progress() {
    use crate::seaweed::{Seaweed, ACCESS_KEY, SECRET_KEY};
    let s3 = Seaweed::start();
    let sb = Sandbox::new();
    let url = s3.url("progress/repo");
    let keys = [
        ("AWS_ACCESS_KEY_ID", OsStr::new(ACCESS_KEY)),
        ("AWS_SECRET_ACCESS_KEY", OsStr::new(SECRET_KEY)),
        ("AWS_EC2_METADATA_DISABLED", OsStr::new("true")),
    ];
    crate::seaweed::s3cb(&sb, &url)
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1", "--pack-size", "1"])
        .run()
        .ok();
    let data = sb.path("data");
    write(&data.join("big.bin"), &random_bytes(15, 3 << 20));
    crate::seaweed::s3cb(&sb, &url).arg("backup").arg(&data).run().ok();
    // Reading every pack back from the bucket (slowed to 1 MiB/s): the read-data step is shown.
    let r =
        on_tty_at(&sb, OsStr::new(&url), &[a("--limit-download"), a("1024"), a("check"), a("--read-data")], &keys).ok();
    assert_bar(&r, "check");
    assert!(r.stdout.contains("check: read data"), "no read-data step shown:\n{:?}", r.stdout);
}

/// A second repository for `copy --to`, with the target password.
fn copy_target(sb: &Sandbox) -> std::path::PathBuf {
    let target = sb.path("target");
    sb.bare()
        .arg("--repo")
        .arg(&target)
        .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .env("CLAWBACK_PASSWORD", TO_PASSWORD)
        .run()
        .ok();
    target
}
