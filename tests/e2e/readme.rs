//! The README is a promise: its Quick start block runs as written, in order, with `bash -e`, on an
//! OpenClaw home made by the corpus generator, and the commands the OpenClaw Backup docs give
//! (`now --force`, `list`, `restore <id> --target`, `status`) work as written. The block is read
//! from README.md itself, so an edit that breaks it fails here.

use crate::support::*;
use clawback_corpus::{generate, Era, Options};
use std::path::Path;
use std::process::Command;

/// The first ```sh block after the `## Quick start` heading.
fn quick_start() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let at = readme.find("## Quick start").expect("README has a Quick start");
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block in the Quick start") + "```sh\n".len();
    let len = rest[start..].find("```").expect("the block ends");
    rest[start..start + len].to_string()
}

/// A sandbox HOME with an OpenClaw home and a notes folder, and a shell that finds `clawback` on
/// PATH as an installed binary.
fn shell(sb: &Sandbox) -> Command {
    let mut c = Command::new("bash");
    let bin_dir = bin().parent().unwrap().to_path_buf();
    sb.clean_env(&mut c)
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()))
        .env("USER", "e2e")
        .env("TZ", "UTC")
        // No gateway of this machine's interferes with the in-place restore.
        .env("OPENCLAW_GATEWAY_PORT", free_port().to_string())
        .current_dir(&sb.home);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn openclaw_home(sb: &Sandbox) {
    generate(&Options {
        root: sb.home.clone(),
        total_bytes: 300_000,
        files: Some(80),
        seed: 5,
        era: Era::Both,
        small_files: false,
        agents: 2,
    })
    .expect("generate an OpenClaw home");
    write(&sb.home.join("notes/todo.md"), b"- back up the agent\n");
    write(&sb.home.join("notes/debug.log"), b"left out by --exclude\n");
}

#[test]
fn the_quick_start_runs_as_written() {
    let sb = Sandbox::new();
    openclaw_home(&sb);
    let block = quick_start();
    let out = shell(&sb).arg("-euxo").arg("pipefail").arg("-c").arg(&block).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the README's Quick start failed ({}):\n{err}", out.status);

    // It did what it says: two kinds of snapshots, each restore found its files.
    let ws = sb.home.join(".openclaw/workspace");
    let memory = std::fs::read(ws.join("MEMORY.md")).unwrap();
    let restored_ws = sb.home.join("ws").join(ws.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored_ws.join("MEMORY.md")).unwrap(), memory, "--only workspace --target ~/ws");
    let notes = sb.home.join("restore-notes").join(sb.home.join("notes/todo.md").strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(notes).unwrap(), b"- back up the agent\n", "restore latest --tag manual");
    assert!(!sb.home.join("restore-notes").join(sb.home.join("notes/debug.log").strip_prefix("/").unwrap()).exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(&*String::from_utf8_lossy(&memory)).count(), 1, "dump printed MEMORY.md once");
    assert!(sb.home.join("openclaw-backup.tar.gz").is_file());
}

#[test]
fn the_openclaw_docs_commands_run_as_written() {
    let sb = Sandbox::new();
    openclaw_home(&sb);
    let run = |script: &str| {
        let out = shell(&sb).arg("-euc").arg(script).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "`{script}` failed ({}):\n{text}", out.status);
        text
    };
    // The embedded default repository, as a new user has it: no repository or password named.
    run("clawback now");
    let forced = run("clawback now --force");
    assert!(!forced.contains("anomaly"), "re-reading unchanged files is not an anomaly:\n{forced}");
    let list = run("clawback list");
    let id = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .rfind(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .expect("list shows snapshot ids");
    run(&format!("clawback restore {id} --target ~/restored"));
    assert!(sb
        .home
        .join("restored")
        .join(sb.home.join(".openclaw/workspace/MEMORY.md").strip_prefix("/").unwrap())
        .is_file());
    let status = run("clawback status");
    assert!(status.contains(id), "status names the last snapshot:\n{status}");
}
