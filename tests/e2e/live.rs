//! Live data: a writer commits SQLite transactions (WAL mode) and appends to a session transcript
//! throughout a backup; the restored database must open, pass `integrity_check` and hold every
//! transaction committed before the backup began, and the transcript must come back as a prefix of
//! the file. Also `.gitignore`/`.clawbackignore` in an OpenClaw layout, and `backup --dry-run`'s
//! report of what is read and what is left out.

use crate::support::*;
use rusqlite::{Connection, OpenFlags};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS_PER_TX: u64 = 10;

/// The `ls --json` paths of a snapshot.
fn listed(sb: &Sandbox, snap: &str) -> Vec<String> {
    let v = sb.cb().args(["ls", "--json", snap]).run().ok().json();
    v.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect()
}

fn paths_in(list: &serde_json::Value) -> Vec<String> {
    list.as_array().unwrap_or(&vec![]).iter().map(|i| i["path"].as_str().unwrap().to_string()).collect()
}

/// A writer that, until stopped, commits transactions of `ROWS_PER_TX` rows into `db` and
/// appends a line to `transcript` after each. `committed` counts rows committed so far.
struct Writer {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(db: &Path, transcript: &Path, initial_rows: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(initial_rows));
        let thread = {
            let (stop, committed) = (stop.clone(), committed.clone());
            let (db, transcript) = (db.to_path_buf(), transcript.to_path_buf());
            std::thread::spawn(move || {
                let c = Connection::open(&db).unwrap();
                c.busy_timeout(Duration::from_secs(30)).unwrap();
                c.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
                let mut t = fs::OpenOptions::new().append(true).open(&transcript).unwrap();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let tx = c.unchecked_transaction().unwrap();
                    for _ in 0..ROWS_PER_TX {
                        tx.execute(
                            "INSERT INTO messages(session, body) VALUES ('main', ?1)",
                            [format!("message {seq} {}", "m".repeat(400))],
                        )
                        .unwrap();
                    }
                    tx.commit().unwrap();
                    committed.fetch_add(ROWS_PER_TX, Ordering::SeqCst);
                    seq += 1;
                    let line = format!("{{\"type\":\"message\",\"seq\":{seq},\"text\":\"{}\"}}\n", "t".repeat(300));
                    t.write_all(line.as_bytes()).unwrap();
                    std::thread::sleep(Duration::from_micros(300));
                }
            })
        };
        Writer { stop, committed, thread: Some(thread) }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("the writer failed");
        self.committed()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An OpenClaw state dir of the SQLite era: `state/openclaw.sqlite` (WAL, several MB) and a
/// session transcript of the file era beside it. Returns the database and transcript paths and
/// the rows written.
fn live_state(state: &Path) -> (PathBuf, PathBuf, u64) {
    let db = state.join("state/openclaw.sqlite");
    let transcript = state.join("agents/main/sessions/main.jsonl");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    fs::create_dir_all(transcript.parent().unwrap()).unwrap();
    let rows = 25_000u64;
    {
        let c = Connection::open(&db).unwrap();
        c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        c.execute_batch("CREATE TABLE messages(id INTEGER PRIMARY KEY, session TEXT, body TEXT)").unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..rows {
            tx.execute("INSERT INTO messages(session, body) VALUES ('old', ?1)", [format!("{i} {}", "o".repeat(400))])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let line = format!("{{\"type\":\"message\",\"seq\":0,\"text\":\"{}\"}}\n", "h".repeat(300));
    write(&transcript, line.repeat(60_000).as_bytes()); // ~20 MB, so reading it takes a while
    write(&state.join("openclaw.json"), b"{}\n");
    (db, transcript, rows)
}

fn open_checked(p: &Path) -> Connection {
    let c = Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok", "{} fails integrity_check", p.display());
    c
}

#[test]
fn a_backup_under_live_writes_restores_a_consistent_database_and_a_transcript_prefix() {
    let sb = Sandbox::with_repo();
    let state = sb.path("openclaw-state");
    let (db, transcript, initial) = live_state(&state);
    assert!(fs::metadata(&db).unwrap().len() > 8 << 20, "big enough for the copy to take a while");

    let w = Writer::start(&db, &transcript, initial);
    while w.committed() < initial + 50 * ROWS_PER_TX {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(fs::metadata(format!("{}-wal", db.display())).unwrap().len() > 0, "the database is live");
    // Everything committed up to here must be in the snapshot.
    let before = w.committed();
    let started = Instant::now();
    let r = sb.cb().args(["backup", "--json"]).arg(&state).run();
    let took = started.elapsed();
    let during = w.committed() - before;
    let final_rows = w.finish();
    let v = r.ok().json();
    assert!(during > 0, "the writer committed nothing during the {took:?} backup");
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");

    // The sidecars were left out and say why; the snapshot does not hold them.
    let skipped = paths_in(&v["skipped"]);
    for s in ["-wal", "-shm"] {
        let side = format!("{}{s}", db.display());
        assert!(skipped.contains(&side), "{side} not in skipped: {v}");
    }
    let snap = v["snapshot_id"].as_str().unwrap();
    let files = listed(&sb, snap);
    assert!(files.iter().any(|p| p.ends_with("state/openclaw.sqlite")), "{files:?}");
    assert!(!files.iter().any(|p| p.ends_with("-wal") || p.ends_with("-shm")), "sidecars stored: {files:?}");

    let t = sb.path("restore");
    sb.restore(snap, &t);
    let rdb = restored(&t, &db);
    let mut names: Vec<_> =
        fs::read_dir(rdb.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["openclaw.sqlite"], "only the database is restored");
    let c = open_checked(&rdb);
    let n: i64 = c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert!(n as u64 >= before, "restored {n} rows; {before} were committed before the backup began");
    assert!(n as u64 <= final_rows);
    assert_eq!(n as u64 % ROWS_PER_TX, 0, "whole transactions only: {n}");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal", "the image keeps the database's journal mode");
    drop(c);

    // The transcript: a prefix of the file as it is now, and whole lines unless listed as changed.
    let stored = fs::read(restored(&t, &transcript)).unwrap();
    let now = fs::read(&transcript).unwrap();
    assert!(stored.len() >= 60_000, "at least what was there before");
    assert_eq!(&now[..stored.len()], &stored[..], "the restored transcript is a prefix of the file");
    let changed = paths_in(&v["changed"]);
    let listed_changed = changed.contains(&transcript.display().to_string());
    assert!(
        listed_changed || stored.ends_with(b"\n"),
        "the transcript ends mid-line and is not listed as changed: {}",
        v["changed"]
    );
    let lines: Vec<&[u8]> = stored.split(|&b| b == b'\n').collect();
    for line in &lines[..lines.len() - 1] {
        assert!(line.starts_with(b"{") && line.ends_with(b"}"), "a torn line: {}", String::from_utf8_lossy(line));
    }
    // The snapshot records it too.
    let snaps = sb.snapshots();
    eprintln!(
        "backup took {took:?}; {during} rows committed during it; transcript listed as changed: {listed_changed}; \
         snapshot summary {}",
        snaps[0]["summary"]
    );
}

#[test]
fn an_unchanged_database_is_not_imaged_again() {
    let sb = Sandbox::with_repo();
    let state = sb.path("s");
    let db = state.join("memory/main.sqlite");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);").unwrap();
    }
    // Older than the window in which a later write could share its timestamps.
    std::thread::sleep(Duration::from_millis(2100));
    let a = sb.backup(&[&state]);
    assert_eq!(u(&a, "files_new"), 1);
    let b = sb.backup(&[&state]);
    assert_eq!((u(&b, "files_unmodified"), u(&b, "bytes_read")), (1, 0), "{b}");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("INSERT INTO t VALUES (4)").unwrap();
    }
    let c = sb.backup(&[&state]);
    assert_eq!(u(&c, "files_changed"), 1, "{c}");
    let t = sb.path("t");
    sb.restore(c["snapshot_id"].as_str().unwrap(), &t);
    let n: i64 = open_checked(&restored(&t, &db)).query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 4);
}

/// Builds an OpenClaw state dir with a workspace holding ignore files; returns (state, workspace).
fn layout_with_ignores(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let state = sb.path("home/.openclaw");
    let ws = state.join("workspace");
    let files: &[(&str, usize)] = &[
        ("openclaw.json", 3),
        ("agents/main/sessions/s1.jsonl", 5000),
        ("logs/gateway.log", 2000),
        ("browser/openclaw/user-data/Default/Cache/data_1", 300_000),
        ("browser/openclaw/user-data/Default/Cache/data_2", 100_000),
        ("tmp/scratch.bin", 9000),
        ("gateway.pid", 5),
        ("workspace/MEMORY.md", 400),
        ("workspace/project/src/main.rs", 700),
        ("workspace/project/dist/bundle.js", 50_000),
        ("workspace/project/app.log", 800),
        ("workspace/project/keep.log", 80),
        ("workspace/project/node_modules/dep/index.js", 60_000),
        ("workspace/private/diary.md", 1234),
        ("workspace/notes.bak", 10),
        ("credentials/.clawbackignore", 0),
        ("credentials/oauth.json", 90),
        ("credentials/cache.bin", 4444),
    ];
    for (f, n) in files {
        write(&state.join(f), &vec![b'x'; *n]);
    }
    write(&ws.join("project/.gitignore"), b"dist/\n*.log\n!keep.log\n");
    write(&ws.join(".clawbackignore"), b"private/\n*.bak\n");
    write(&state.join("credentials/.clawbackignore"), b"cache.bin\n");
    (state, ws)
}

#[test]
fn workspace_gitignore_and_clawbackignore_files_are_honoured() {
    let sb = Sandbox::with_repo();
    let (state, ws) = layout_with_ignores(&sb);
    let v = sb.cb().args(["backup", "--json", "--gitignore"]).run().ok().json();
    let files = listed(&sb, v["snapshot_id"].as_str().unwrap());
    let has = |rel: &str| files.contains(&state.join(rel).display().to_string());
    for kept in [
        "agents/main/sessions/s1.jsonl",
        "logs/gateway.log",
        "workspace/MEMORY.md",
        "workspace/project/src/main.rs",
        "workspace/project/keep.log",
        "workspace/project/.gitignore",
        "workspace/.clawbackignore",
        "credentials/oauth.json",
    ] {
        assert!(has(kept), "{kept} missing from {files:#?}");
    }
    for gone in [
        "workspace/project/dist",
        "workspace/project/app.log",
        "workspace/project/node_modules",
        "workspace/private",
        "workspace/notes.bak",
        "credentials/cache.bin",
        "browser/openclaw/user-data/Default/Cache",
        "tmp",
        "gateway.pid",
    ] {
        assert!(!has(gone), "{gone} was backed up");
    }

    // By default (as in OpenClaw's own backup) the workspace's .gitignore does not apply;
    // .clawbackignore still does.
    let v = sb.cb().args(["backup", "--json"]).run().ok().json();
    let files = listed(&sb, v["snapshot_id"].as_str().unwrap());
    let has = |rel: &str| files.contains(&ws.join(rel).display().to_string());
    assert!(has("project/dist/bundle.js") && has("project/app.log"));
    assert!(!has("private") && !has("notes.bak") && !has("project/node_modules"));
}

#[test]
fn a_dry_run_shows_what_is_read_and_what_is_left_out_with_sizes() {
    let sb = Sandbox::with_repo();
    let (state, ws) = layout_with_ignores(&sb);
    let db = state.join("state/openclaw.sqlite");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let c = Connection::open(&db).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
    c.execute_batch("PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(100000));")
        .unwrap();
    let before = files_under(&sb.repo);

    let v = sb.cb().args(["backup", "--json", "--dry-run", "--gitignore"]).run().ok().json();
    assert!(v["snapshot_id"].is_null());
    assert_eq!(files_under(&sb.repo), before, "a dry run writes nothing");
    let r = &v["dry_run"];
    let roots = r["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "the workspace lives in the state dir: {r}");
    assert_eq!(roots[0]["path"], state.display().to_string());
    let read_files = u(&roots[0], "files");
    assert_eq!(read_files, u(&v, "total_files"));
    assert_eq!(u(&roots[0], "bytes"), u(&v, "total_bytes"));

    let ex = r["excluded"].as_array().unwrap();
    let entry = |p: &Path| {
        ex.iter()
            .find(|e| e["path"] == p.display().to_string())
            .unwrap_or_else(|| panic!("{} not among the excluded: {r:#}", p.display()))
    };
    let e = entry(&state.join("browser/openclaw/user-data/Default/Cache"));
    assert_eq!((u(e, "bytes"), u(e, "files")), (400_000, 2));
    assert!(e["reason"].as_str().unwrap().contains("browser"), "{e}");
    assert_eq!(ex[0]["path"], e["path"], "largest first");
    let e = entry(&ws.join("project/node_modules"));
    assert_eq!(u(e, "bytes"), 60_000);
    assert!(e["reason"].as_str().unwrap().contains("npm"), "{e}");
    let e = entry(&ws.join("project/dist"));
    assert_eq!(u(e, "bytes"), 50_000);
    assert_eq!(e["reason"], format!(".gitignore in {}", ws.join("project").display()));
    assert_eq!(e["pattern"], "dist/");
    let e = entry(&ws.join("private"));
    assert_eq!(e["reason"], format!(".clawbackignore in {}", ws.display()));
    let e = entry(&state.join("credentials/cache.bin"));
    assert_eq!(
        (u(e, "bytes"), e["reason"].as_str().unwrap()),
        (4444, &*format!(".clawbackignore in {}/credentials", state.display()))
    );
    let e = entry(&state.join("tmp"));
    assert_eq!(u(e, "bytes"), 9000);
    let e = entry(&PathBuf::from(format!("{}-wal", db.display())));
    assert!(u(e, "bytes") > 100_000 && e["reason"].as_str().unwrap().contains("SQLite"), "{e}");
    let sum: u64 = ex.iter().map(|e| u(e, "bytes")).sum();
    assert_eq!(u(r, "excluded_bytes"), sum);

    let largest = r["largest"].as_array().unwrap();
    assert!(largest.len() <= 20 && !largest.is_empty());
    assert_eq!(largest[0]["path"], db.display().to_string(), "the database's image is the largest file: {r:#}");

    // The human report: tables with sizes and reasons.
    let out = sb.cb().args(["backup", "--dry-run", "--gitignore"]).run().ok().stdout;
    assert!(out.contains("would back up"), "{out}");
    assert!(out.contains("left out"), "{out}");
    let row = format!("{}/", state.join("browser/openclaw/user-data/Default/Cache").display());
    let row = out.lines().find(|l| l.contains(&row)).unwrap_or_else(|| panic!("no row for {row}: {out}"));
    assert!(row.contains("KiB") && row.contains("browser"), "size and reason on the row: {row}");
    assert!(out.contains(&format!(".gitignore in {}", ws.join("project").display())), "{out}");
    assert!(out.contains("largest files included"), "{out}");
    assert!(out.contains("dry run: nothing stored"), "{out}");
    drop(c);
}
