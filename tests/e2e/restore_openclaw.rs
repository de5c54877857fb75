//! Restoring what was asked of an OpenClaw home: `--only state|workspace|agent:ID` (with globs), and
//! restores in place: the safety snapshot and its undo command, `--delete`, and the refusal while
//! a gateway runs on the state dir (real processes whose command line is a gateway's, a gateway
//! lock, a listener on the gateway port) unless `--force`.
//!
//! Homes come from the corpus generator (three agents: `main` and `research` with workspaces in the
//! state dir, `ops` with its workspace in `~/projects/agent-ws`), backed up by a default `backup`,
//! which records the OpenClaw layout. Every command gets `OPENCLAW_GATEWAY_PORT` set to a port
//! nobody listens on, so a gateway elsewhere on this machine never interferes.

use crate::support::*;
use clawback_corpus::{generate, Era, Options, Summary};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Home {
    sb: Sandbox,
    gen: Summary,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Home {
    /// A generated OpenClaw home in a sandbox with a repository.
    fn generated(agents: usize) -> Home {
        let sb = Sandbox::with_repo();
        let gen = generate(&Options {
            root: sb.home.clone(),
            total_bytes: 400_000,
            files: Some(120),
            seed: 11,
            era: Era::Both,
            small_files: false,
            agents,
        })
        .expect("generate an OpenClaw home");
        Home { sb, gen, port: free_port() }
    }

    /// A tiny hand-made home: config, one session, one workspace file.
    fn small() -> Home {
        let sb = Sandbox::with_repo();
        let state = sb.home.join(".openclaw");
        write(&state.join("openclaw.json"), b"{ agents: { list: [ { id: \"main\" } ] } }\n");
        write(&state.join("agents/main/sessions/s1.jsonl"), b"{\"role\":\"user\"}\n");
        write(&state.join("workspace/MEMORY.md"), b"what I know\n");
        let gen = Summary {
            files: 3,
            bytes: 0,
            state_dir: state.clone(),
            workspaces: vec![state.join("workspace")],
            databases: vec![],
            git_project: None,
            warnings: vec![],
        };
        Home { sb, gen, port: free_port() }
    }

    fn state(&self) -> &Path {
        &self.gen.state_dir
    }

    fn ws(&self) -> PathBuf {
        self.gen.workspaces[0].clone()
    }

    fn cb(&self) -> Cmd {
        self.sb.cb().env("OPENCLAW_GATEWAY_PORT", self.port.to_string())
    }

    /// A default backup (state dir and workspaces, with the OpenClaw metadata); its id.
    fn backup(&self) -> String {
        let r = self.cb().args(["backup", "--json"]).run().ok();
        let v = r.json();
        assert!(v["errors"].as_array().is_some_and(|e| e.is_empty()), "backup reported errors: {v}");
        v["snapshot_id"].as_str().unwrap().to_string()
    }

    fn snapshot(&self, id: &str) -> serde_json::Value {
        self.sb.snapshots().into_iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no snapshot {id}"))
    }

    /// `ls --json SNAP`: (absolute path, type).
    fn ls(&self, id: &str) -> Vec<(PathBuf, String)> {
        let v = self.cb().args(["ls", "--json", id]).run().ok().json();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| (PathBuf::from(e["path"].as_str().unwrap()), e["type"].as_str().unwrap().to_string()))
            .collect()
    }
}

/// The non-folder entries restored under `target`, as the original absolute paths.
fn restored_entries(target: &Path) -> BTreeSet<PathBuf> {
    scan(target).into_iter().filter(|(_, e)| e.kind != "dir").map(|(p, _)| Path::new("/").join(p)).collect()
}

fn under(p: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| p.starts_with(r))
}

#[test]
fn only_restores_the_state_dir_the_workspaces_or_one_agent() {
    let h = Home::generated(3);
    let snap = h.backup();
    let meta = h.snapshot(&snap)["openclaw"].clone();
    let state = PathBuf::from(meta["state_dir"].as_str().unwrap());
    assert_eq!(state, h.state());
    let ids: Vec<&str> = meta["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["main", "research", "ops"]);
    let ops_ws = h.sb.home.join("projects/agent-ws");
    assert_eq!(h.gen.workspaces[2], ops_ws);
    let all = h.ls(&snap);
    let files: BTreeSet<PathBuf> = all.iter().filter(|(_, t)| t != "dir").map(|(p, _)| p.clone()).collect();

    let cases: Vec<(&[&str], Vec<PathBuf>)> = vec![
        (&["state"], vec![state.clone()]),
        (&["workspace"], h.gen.workspaces.clone()),
        (&["agent:research"], vec![state.join("agents/research"), state.join("workspace-research")]),
        (&["agent:ops"], vec![state.join("agents/ops"), ops_ws.clone()]),
        (
            &["agent:main", "agent:ops"],
            vec![state.join("agents/main"), state.join("workspace"), state.join("agents/ops"), ops_ws.clone()],
        ),
    ];
    for (i, (only, roots)) in cases.iter().enumerate() {
        let t = h.sb.path(&format!("t{i}"));
        let mut c = h.cb().args(["restore", &snap, "--verify", "--json", "--target"]).arg(&t);
        for o in *only {
            c = c.args(["--only", o]);
        }
        let r = c.run().ok();
        let expected: BTreeSet<PathBuf> = files.iter().filter(|p| under(p, roots)).cloned().collect();
        assert!(expected.len() > 3, "{only:?}: too few files to show anything: {expected:?}");
        let got = restored_entries(&t);
        assert_eq!(got, expected, "{only:?}");
        assert_eq!(
            u(&r.json(), "files") as usize,
            expected.iter().filter(|p| all.iter().any(|(q, ty)| q == *p && ty == "file")).count()
        );
        // Folders: the roots' contents and their ancestors, nothing else.
        for (rel, e) in scan(&t) {
            let abs = Path::new("/").join(&rel);
            assert!(under(&abs, roots) || roots.iter().any(|r| r.starts_with(&abs)), "{only:?}: {abs:?} ({})", e.kind);
        }
    }
    // `state` holds the workspaces that live in it, not the one outside; `workspace` holds no
    // session; an agent holds its sessions.
    let t0 = h.sb.path("t0");
    assert!(restored(&t0, &state.join("workspace")).is_dir());
    assert!(!restored(&t0, &ops_ws).exists());
    assert!(!restored(&h.sb.path("t1"), &state.join("agents")).exists());
    let sessions = restored(&h.sb.path("t2"), &state.join("agents/research/sessions"));
    assert!(fs::read_dir(&sessions).unwrap().count() > 0, "research's sessions restored");
    assert!(!restored(&h.sb.path("t2"), &state.join("agents/main")).exists());

    // With globs: one agent's transcripts only.
    let t = h.sb.path("tglob");
    h.cb().args(["restore", &snap, "--only", "agent:research", "--include", "*.jsonl", "--target"]).arg(&t).run().ok();
    let got = restored_entries(&t);
    assert!(!got.is_empty());
    for p in &got {
        assert!(p.starts_with(state.join("agents/research")) && p.extension().is_some_and(|e| e == "jsonl"), "{p:?}");
    }
    // And with an exclude.
    let t = h.sb.path("texcl");
    h.cb().args(["restore", &snap, "--only", "workspace", "--exclude", "*.md", "--target"]).arg(&t).run().ok();
    let got = restored_entries(&t);
    assert!(!got.is_empty() && got.iter().all(|p| p.extension().is_none_or(|e| e != "md")), "{got:?}");

    // An unknown agent: a usage error naming the agents there are.
    let r = h.cb().args(["restore", &snap, "--only", "agent:ghost", "--target"]).arg(h.sb.path("tx")).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains("ghost") && line.contains("main, research, ops"), "{line}");
    assert!(!h.sb.path("tx").exists());
    let r = h.cb().args(["restore", &snap, "--only", "calendar", "--target"]).arg(h.sb.path("tx")).run().code(2);
    assert!(r.one_error_line().contains("state, workspace, agent:ID"));
}

#[test]
fn only_needs_a_snapshot_with_openclaw_metadata() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("sub/a.txt"), b"a");
    write(&data.join("b.txt"), b"b");
    let snap = sb.backup(&[&data])["snapshot_id"].as_str().unwrap().to_string();
    let r = sb.cb().args(["restore", &snap, "--only", "state", "--target"]).arg(sb.path("t")).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains("no OpenClaw metadata") && line.contains("--include"), "{line}");
    // An absolute path works without it.
    let t = sb.path("t2");
    sb.cb().args(["restore", &snap, "--only"]).arg(data.join("sub")).arg("--target").arg(&t).run().ok();
    assert_eq!(restored_entries(&t), BTreeSet::from([data.join("sub/a.txt")]));
}

/// The files to edit, delete and compare: the main workspace's Markdown files and main's
/// transcripts, as the snapshot lists them.
fn pick(h: &Home, snap: &str) -> (PathBuf, PathBuf, PathBuf) {
    let all = h.ls(snap);
    let file = |pred: &dyn Fn(&Path) -> bool| -> Vec<PathBuf> {
        all.iter().filter(|(p, t)| t == "file" && pred(p)).map(|(p, _)| p.clone()).collect()
    };
    let ws = h.ws();
    let md = file(&|p| p.parent() == Some(ws.as_path()) && p.extension().is_some_and(|e| e == "md"));
    let sessions =
        file(&|p| p.starts_with(h.state().join("agents/main/sessions")) && p.extension().is_some_and(|e| e == "jsonl"));
    assert!(md.len() >= 2 && !sessions.is_empty(), "{md:?} {sessions:?}");
    (md[0].clone(), sessions[0].clone(), md[1].clone())
}

/// Runs a printed command line through the shell as a user would paste it (with `clawback` being
/// the binary under test), in the sandbox's environment.
fn run_printed(h: &Home, line: &str) -> Run {
    let rest = line.strip_prefix("clawback ").unwrap_or_else(|| panic!("not a clawback command: {line}"));
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("exec '{}' {rest}", bin().display()))
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &h.sb.home)
        .env("XDG_DATA_HOME", h.sb.path("xdg/data"))
        .env("XDG_CONFIG_HOME", h.sb.path("xdg/config"))
        .env("XDG_CACHE_HOME", h.sb.path("xdg/cache"))
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .env("CLAWBACK_CACHE_DIR", &h.sb.cache)
        .env("OPENCLAW_GATEWAY_PORT", h.port.to_string());
    run_command(c)
}

/// SQLite databases are stored as consistent images without their `-wal`/`-shm`, so after a
/// restore they are other bytes holding the same data: compared separately.
fn is_database(h: &Home, rel: &Path) -> bool {
    let abs = h.sb.home.join(rel);
    h.gen.databases.iter().any(|d| {
        let s = d.to_string_lossy();
        abs == *d || abs.to_string_lossy() == format!("{s}-wal") || abs.to_string_lossy() == format!("{s}-shm")
    })
}

/// `assert_same_tree` for everything but what `skip` names (on both sides): kinds, modes, owners,
/// mtimes, sizes, contents and symlink targets.
#[track_caller]
fn assert_same_except(a: &Path, b: &Path, skip: &dyn Fn(&Path) -> bool) {
    let mut ta = scan(a);
    let mut tb = scan(b);
    ta.retain(|p, _| !skip(p));
    tb.retain(|p, _| !skip(p));
    let mut diffs = Vec::new();
    for p in ta.keys().filter(|p| !tb.contains_key(*p)) {
        diffs.push(format!("missing: {p:?}"));
    }
    for p in tb.keys().filter(|p| !ta.contains_key(*p)) {
        diffs.push(format!("extra: {p:?}"));
    }
    for (p, ea) in &ta {
        let Some(eb) = tb.get(p) else { continue };
        let same = ea.kind == eb.kind
            && (ea.kind == "symlink" || ea.mode == eb.mode)
            && ea.mtime == eb.mtime
            && (ea.uid, ea.gid) == (eb.uid, eb.gid)
            && ea.size == eb.size
            && ea.target == eb.target
            && (ea.kind != "file" || same_content(&a.join(p), &b.join(p)));
        if !same {
            diffs.push(format!("{p:?}: {ea:?} vs {eb:?}"));
        }
    }
    assert!(diffs.is_empty(), "{} differs from {}:\n  {}", b.display(), a.display(), diffs.join("\n  "));
}

fn count_rows(db: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok", "{}", db.display());
    let mut st = c.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").unwrap();
    let names: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    names
        .into_iter()
        .map(|n| {
            let k: i64 = c.query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0)).unwrap();
            (n, k)
        })
        .collect()
}

#[test]
fn in_place_restore_takes_a_safety_snapshot_and_prints_its_undo() {
    let h = Home::generated(2);
    let snap = h.backup();
    let (edit, append_to, remove) = pick(&h, &snap);
    let originals: Vec<(PathBuf, Vec<u8>)> =
        [&edit, &append_to, &remove].iter().map(|p| (p.to_path_buf(), fs::read(p).unwrap())).collect();
    write(&edit, b"rewritten by the user, then regretted\n");
    append(&append_to, b"{\"role\":\"assistant\",\"content\":\"later turn\"}\n");
    fs::remove_file(&remove).unwrap();
    let extra = h.ws().join("written-after-the-backup.md");
    write(&extra, b"new\n");
    // The edited home, to compare with after the undo.
    let copy = h.sb.path("home-edited");
    let st = Command::new("cp").arg("-a").arg(&h.sb.home).arg(&copy).status().unwrap();
    assert!(st.success());

    let r = h.cb().args(["restore", &snap, "--json"]).run().ok();
    let v = r.json();
    assert_eq!(v["in_place"], true);
    assert_eq!(v["snapshot_id"], snap.as_str());
    let safety = v["safety_snapshot_id"].as_str().expect("safety_snapshot_id").to_string();
    assert_eq!(safety.len(), 64);
    let undo = v["undo"].as_str().expect("undo").to_string();
    assert!(
        undo.starts_with("clawback ") && undo.contains(&format!(" restore {safety} ")) && undo.ends_with(" --delete"),
        "{undo}"
    );
    assert!(u(&v, "files") >= 3 && u(&v, "unchanged") > 0 && u(&v, "deleted") == 0, "{v}");
    let changes = v["changes"].as_array().unwrap();
    for (p, action) in [(&edit, "update"), (&append_to, "update"), (&remove, "create")] {
        assert!(
            changes.iter().any(|c| c["path"] == p.to_str().unwrap() && c["action"] == action),
            "{p:?} {action}: {changes:?}"
        );
    }
    for (p, bytes) in &originals {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{p:?} is back");
    }
    assert_eq!(fs::read(&extra).unwrap(), b"new\n", "no --delete: kept");
    // A database rewritten loses the old one's write-ahead log (it would be applied to the new
    // file), and opens with the snapshot's data.
    let mut rewritten = 0;
    for db in &h.gen.databases {
        if changes.iter().any(|c| c["path"] == db.to_str().unwrap()) {
            rewritten += 1;
            for sfx in ["-wal", "-shm"] {
                assert!(!Path::new(&format!("{}{sfx}", db.display())).exists(), "{}{sfx}", db.display());
            }
        }
        count_rows(db);
    }
    assert!(rewritten > 0, "the generated databases (with their logs) differ from the stored images");
    // The safety snapshot: tagged, this host, holding the state dir and workspace as they were.
    let s = h.snapshot(&safety);
    assert_eq!(s["tags"], serde_json::json!(["pre-restore"]));
    assert_eq!(s["hostname"], h.snapshot(&snap)["hostname"]);
    assert_eq!(s["openclaw"], h.snapshot(&snap)["openclaw"]);

    // Human output: the safety snapshot's id and, last, the undo command.
    let r = h.cb().args(["restore", &snap]).run().ok();
    let last = r.stdout.lines().last().unwrap();
    assert!(last.starts_with("to undo: clawback ") && last.ends_with("--delete"), "{}", r.stdout);
    assert!(r.stdout.contains("safety snapshot "), "{}", r.stdout);

    // The undo, pasted into a shell, brings back the edited home exactly.
    let undo_run = run_printed(&h, &undo);
    assert_eq!(undo_run.code, 0, "{undo_run:?}");
    assert_same_except(&copy, &h.sb.home, &|rel: &Path| is_database(&h, rel));
    for db in &h.gen.databases {
        let rel = db.strip_prefix(&h.sb.home).unwrap();
        assert_eq!(count_rows(db), count_rows(&copy.join(rel)), "{}", db.display());
    }

    // `latest` is still the backup, not a safety snapshot.
    let v = h.cb().args(["restore", "latest", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(v["snapshot_id"], snap.as_str());
    assert!(v["safety_snapshot_id"].is_null());
}

#[test]
fn delete_removes_what_the_snapshot_lacks_only_when_asked_and_only_where_restored() {
    let h = Home::generated(2);
    let snap = h.backup();
    let ws = h.ws();
    let state = h.state().to_path_buf();
    let ws_extra = ws.join("scratch.md");
    let ws_dir = ws.join("new-folder/deeper/notes.txt");
    let session_extra = state.join("agents/main/sessions/0000-extra.jsonl");
    write(&ws_extra, b"x");
    write(&ws_dir, b"y");
    write(&session_extra, b"{}\n");
    // Left out of backups by design: never deleted.
    let protected =
        [ws.join("node_modules/left-pad/index.js"), state.join("tmp/scratch.bin"), state.join("agents/main/run.pid")];
    for p in &protected {
        write(p, b"keep me");
    }

    let v = h.cb().args(["restore", &snap, "--json"]).run().ok().json();
    assert_eq!(u(&v, "deleted"), 0);
    assert!(ws_extra.exists() && ws_dir.exists() && session_extra.exists());

    // Dry run: listed, not removed.
    let v = h.cb().args(["restore", &snap, "--delete", "--dry-run", "--json"]).run().ok().json();
    let deletes: BTreeSet<String> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let want: BTreeSet<String> =
        [s(&ws_extra), s(&ws_dir), s(ws_dir.parent().unwrap()), s(&ws.join("new-folder")), s(&session_extra)].into();
    assert_eq!(deletes, want);
    assert!(ws_extra.exists() && session_extra.exists());

    // Only the workspaces: the transcript outside them stays.
    h.cb().args(["restore", &snap, "--only", "workspace", "--delete"]).run().ok();
    assert!(!ws_extra.exists() && !ws.join("new-folder").exists());
    assert!(session_extra.exists());

    let v = h.cb().args(["restore", &snap, "--delete", "--json"]).run().ok().json();
    assert_eq!(u(&v, "deleted"), 1);
    assert!(!session_extra.exists());
    for p in &protected {
        assert_eq!(fs::read(p).unwrap(), b"keep me", "{p:?}");
    }
    // Nothing else differs from the snapshot: a further restore changes nothing.
    let v = h.cb().args(["restore", &snap, "--delete", "--dry-run", "--json"]).run().ok().json();
    assert_eq!(v["changes"].as_array().unwrap().len(), 0, "{v}");
}

/// A process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Starts `c` and waits until its command line shows `argv0`.
    fn start(mut c: Command, argv0: &str) -> Proc {
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let p = Proc(c.spawn().expect("start a dummy gateway"));
        let cmdline = PathBuf::from(format!("/proc/{}/cmdline", p.0.id()));
        for _ in 0..500 {
            if fs::read(&cmdline).is_ok_and(|b| b.starts_with(argv0.as_bytes())) {
                return p;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{argv0} did not start");
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// `openclaw-gateway` as the gateway titles itself: `sleep` with that argv[0].
fn titled_gateway(env: &[(&str, &Path)]) -> Proc {
    let mut c = Command::new("sleep");
    c.arg0("openclaw-gateway").arg("120").env_clear();
    for (k, v) in env {
        c.env(k, v);
    }
    Proc::start(c, "openclaw-gateway")
}

/// `/usr/local/bin/openclaw ... gateway run`: a shell with that argv[0], sleeping.
fn cli_gateway(env: &[(&str, &Path)]) -> Proc {
    let mut c = Command::new("sh");
    c.arg0("/usr/local/bin/openclaw").args(["-c", "sleep 120; true", "gateway", "run"]).env_clear();
    for (k, v) in env {
        c.env(k, v);
    }
    Proc::start(c, "/usr/local/bin/openclaw")
}

#[test]
fn a_running_gateway_stops_an_in_place_restore_unless_forced() {
    let h = Home::small();
    let snap = h.backup();
    let memory = h.ws().join("MEMORY.md");
    write(&memory, b"edited\n");

    let refused = |c: Cmd, what: &str| {
        let n_snapshots = h.sb.snapshots().len();
        let r = c.run().code(1);
        let line = r.one_error_line().to_string();
        assert!(
            line.contains("OpenClaw gateway is running") && line.contains("--force") && line.contains(what),
            "{line}"
        );
        assert_eq!(fs::read(&memory).unwrap(), b"edited\n", "nothing restored");
        assert_eq!(h.sb.snapshots().len(), n_snapshots, "no safety snapshot either");
    };

    // The gateway as it titles itself, running with this HOME (so on ~/.openclaw).
    let g = titled_gateway(&[("HOME", &h.sb.home)]);
    refused(h.cb().args(["restore", &snap]), &format!("process {}", g.pid()));
    // A dry run only warns.
    let r = h.cb().args(["restore", &snap, "--dry-run"]).run().ok();
    assert!(r.stderr.contains("gateway is running"), "{}", r.stderr);
    assert_eq!(fs::read(&memory).unwrap(), b"edited\n");
    // --force proceeds, with a warning.
    let r = h.cb().args(["restore", &snap, "--force"]).run().ok();
    assert!(r.stderr.contains("warning") && r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(fs::read(&memory).unwrap(), b"what I know\n");
    drop(g);
    write(&memory, b"edited\n");

    // `openclaw gateway run` with the state dir named by OPENCLAW_STATE_DIR.
    let g = cli_gateway(&[("OPENCLAW_STATE_DIR", h.state())]);
    refused(h.cb().args(["restore", &snap]), &format!("process {}", g.pid()));
    drop(g);

    // A gateway on another state dir does not count.
    let elsewhere = h.sb.path("other-state");
    let _other = cli_gateway(&[("OPENCLAW_STATE_DIR", &elsewhere)]);
    let _other2 = titled_gateway(&[("HOME", &h.sb.path("another-home"))]);
    h.cb().args(["restore", &snap]).run().ok();
    assert_eq!(fs::read(&memory).unwrap(), b"what I know\n");
    write(&memory, b"edited\n");
    let n_snapshots = h.sb.snapshots().len();

    // Something listening on the gateway port.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let r = h.sb.cb().env("OPENCLAW_GATEWAY_PORT", port.to_string()).args(["restore", &snap]).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    drop(l);

    // A live gateway lock for this config, in `$TMPDIR/openclaw-<uid>/`.
    let tmp = h.sb.path("tmp");
    let owner = Proc::start(
        {
            let mut c = Command::new("sleep");
            c.arg("120");
            c
        },
        "sleep",
    );
    let stat = fs::read_to_string(format!("/proc/{}/stat", owner.pid())).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().parse().unwrap();
    let uid = unsafe { libc::getuid() };
    let lock = tmp.join(format!("openclaw-{uid}/gateway.0badc0de.lock"));
    let body = serde_json::json!({
        "pid": owner.pid(), "createdAt": "2026-01-01T00:00:00.000Z",
        "configPath": h.state().join("openclaw.json"), "startTime": start,
    });
    write(&lock, body.to_string().as_bytes());
    let r = h.cb().env("TMPDIR", &tmp).args(["restore", &snap]).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains("gateway lock") && line.contains(&owner.pid().to_string()), "{line}");
    assert_eq!(h.sb.snapshots().len(), n_snapshots);
    // Once the owner is gone the lock is stale, as OpenClaw judges it.
    drop(owner);
    h.cb().env("TMPDIR", &tmp).args(["restore", &snap]).run().ok();
    assert_eq!(fs::read(&memory).unwrap(), b"what I know\n");
}

#[test]
fn restoring_to_a_target_needs_no_gateway_check_and_refuses_delete() {
    let h = Home::small();
    let snap = h.backup();
    let _g = titled_gateway(&[("HOME", &h.sb.home)]);
    let t = h.sb.path("t");
    h.cb().args(["restore", &snap, "--only", "state", "--target"]).arg(&t).run().ok();
    assert!(restored(&t, &h.ws().join("MEMORY.md")).is_file());
    let r = h.cb().args(["restore", &snap, "--delete", "--target"]).arg(h.sb.path("t2")).run().code(2);
    assert!(r.one_error_line().contains("--delete"));
}
