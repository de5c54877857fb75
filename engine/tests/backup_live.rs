//! The backup pipeline on live data: SQLite databases stored as consistent images (sidecars left
//! out, unchanged databases reused), files that change while they are read, `.gitignore` and
//! `.clawbackignore`, and the dry-run report. Snapshots are read back through the repository API
//! (trees and blobs), not through restore.

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::commands::backup::{backup, BackupOptions, BackupResult, DryRunReport, LARGEST_FILES};
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::format::tree::{Node, Tree};
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use rusqlite::{Connection, OpenFlags};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap() };
        let be = Arc::new(LocalBackend::new(w.repo_path()));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(be, &Secret(b"pw".to_vec()), &opts).unwrap();
        std::fs::create_dir_all(w.src()).unwrap();
        w
    }
    fn repo_path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn repo(&self) -> Repository {
        let be = Arc::new(LocalBackend::new(self.repo_path()));
        Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
    }
    fn opts(&self, paths: Vec<PathBuf>) -> BackupOptions {
        BackupOptions { paths, skip_paths: vec![self.repo_path()], ..Default::default() }
    }
    fn run(&self, opts: &BackupOptions) -> BackupResult {
        backup(&self.repo(), opts, &Progress::default()).unwrap()
    }
    /// The snapshot's node for an absolute path, and the repository to read it with.
    fn node(&self, r: &BackupResult, path: &Path) -> Option<Node> {
        let repo = self.repo();
        let (_, snap) = repo.find_snapshot(&r.snapshot_id.unwrap().to_hex(), |_| true).unwrap();
        let mut tree: Tree = repo.load_tree(&snap.tree).unwrap();
        let comps: Vec<_> = path.components().skip(1).collect();
        for (i, c) in comps.iter().enumerate() {
            let n = tree.find(c.as_os_str().as_bytes())?.clone();
            if i + 1 == comps.len() {
                return Some(n);
            }
            tree = repo.load_tree(&n.subtree?).unwrap();
        }
        None
    }
    fn content(&self, n: &Node) -> Vec<u8> {
        let repo = self.repo();
        let mut out = Vec::new();
        for id in &n.content {
            out.extend(repo.read_data(id).unwrap());
        }
        assert_eq!(out.len() as u64, n.size, "a node's size is the length of its content");
        out
    }
    /// Writes a node's content to a file beside the sources and opens it as a database.
    fn open_db(&self, n: &Node) -> (Connection, PathBuf) {
        let p = self.dir.path().join(format!("restored-{}.sqlite", rand_suffix()));
        std::fs::write(&p, self.content(n)).unwrap();
        let c = Connection::open_with_flags(&p, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "the stored image passes integrity_check");
        (c, p)
    }
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn rows(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
}

/// A WAL database with `n` rows, its last commits left in the WAL (the connection stays open).
fn live_db(p: &Path, n: usize) -> Connection {
    let c = Connection::open(p).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
    c.execute_batch("PRAGMA wal_autocheckpoint=0; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").unwrap();
    for chunk in 0..n.div_ceil(100) {
        let tx = c.unchecked_transaction().unwrap();
        for i in chunk * 100..((chunk + 1) * 100).min(n) {
            tx.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i} {}", "y".repeat(200))]).unwrap();
        }
        tx.commit().unwrap();
    }
    c
}

fn issue<'a>(list: &'a [clawback_engine::format::snapshot::BackupIssue], p: &Path) -> Option<&'a str> {
    list.iter().find(|i| Path::new(&i.path) == p).map(|i| i.error.as_str())
}

#[test]
fn databases_are_stored_as_consistent_images_without_their_sidecars() {
    let w = World::new();
    let src = w.src();
    // Named like a database, and named like anything else: found by the header.
    let db = src.join("state/openclaw.sqlite");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let writer = live_db(&db, 1000);
    let odd = src.join("memory/main.bin");
    std::fs::create_dir_all(odd.parent().unwrap()).unwrap();
    let odd_writer = live_db(&odd, 10);
    assert!(std::fs::metadata(src.join("state/openclaw.sqlite-wal")).unwrap().len() > 0);
    assert!(src.join("state/openclaw.sqlite-shm").exists());
    // Starts like a database, is not one: kept byte for byte, with a warning.
    let fake = src.join("fake.db");
    let mut fake_bytes = b"SQLite format 3\0\x10\x00\x01\x01".to_vec();
    fake_bytes.extend(std::iter::repeat_n(0x5Au8, 10_000));
    std::fs::write(&fake, &fake_bytes).unwrap();
    // A -wal beside something that is no database is an ordinary file.
    std::fs::write(src.join("notes"), b"notes").unwrap();
    std::fs::write(src.join("notes-wal"), b"not a wal").unwrap();

    let md = std::fs::metadata(&db).unwrap();
    let r = w.run(&w.opts(vec![src.clone()]));
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    let n = w.node(&r, &db).unwrap();
    assert_eq!((n.mode, n.mtime_ns / 1_000_000_000, n.ino), (md.mode() & 0o7777, md.mtime(), md.ino()));
    let (c, _) = w.open_db(&n);
    assert_eq!(rows(&c), 1000, "the transactions still in the WAL are in the image");
    let n2 = w.node(&r, &odd).unwrap();
    assert_eq!(rows(&w.open_db(&n2).0), 10);
    for s in ["-wal", "-shm"] {
        for base in [&db, &odd] {
            let side = PathBuf::from(format!("{}{s}", base.display()));
            assert!(w.node(&r, &side).is_none(), "{} was stored", side.display());
            let why = issue(&r.skipped, &side).unwrap_or_else(|| panic!("{} not in skipped", side.display()));
            assert!(why.contains("consistent image"), "{why}");
        }
    }
    assert_eq!(w.content(&w.node(&r, &fake).unwrap()), fake_bytes);
    assert!(issue(&r.warnings, &fake).is_some_and(|e| e.contains("plain copy")), "{:?}", r.warnings);
    assert_eq!(w.content(&w.node(&r, &src.join("notes-wal")).unwrap()), b"not a wal");
    // Nothing of ours is left beside the database, nor in the temporary folder.
    let mut names: Vec<_> = std::fs::read_dir(src.join("state")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["openclaw.sqlite", "openclaw.sqlite-shm", "openclaw.sqlite-wal"]);
    drop((writer, odd_writer));
}

#[test]
fn a_database_is_reused_while_unchanged_and_imaged_again_after_a_commit() {
    let w = World::new();
    let db = w.src().join("jobs.sqlite");
    let c = live_db(&db, 300);
    // Past the window in which a write could share the recorded timestamp.
    std::thread::sleep(Duration::from_millis(2100));
    let opts = w.opts(vec![w.src()]);
    let r1 = w.run(&opts);
    assert_eq!(r1.summary.files_new, 1);
    let r2 = w.run(&opts);
    assert_eq!((r2.summary.files_unmodified, r2.summary.bytes_read), (1, 0), "{:?}", r2.summary);
    assert_eq!(w.node(&r2, &db).unwrap().content, w.node(&r1, &db).unwrap().content);
    assert!(issue(&r2.skipped, &PathBuf::from(format!("{}-wal", db.display()))).is_some());

    // A commit goes into the WAL only: the database file itself does not change.
    let before = std::fs::metadata(&db).unwrap();
    c.execute("INSERT INTO t(v) VALUES ('after')", []).unwrap();
    let after = std::fs::metadata(&db).unwrap();
    assert_eq!(
        (before.mtime_nsec(), before.ctime_nsec(), before.len()),
        (after.mtime_nsec(), after.ctime_nsec(), after.len())
    );
    let r3 = w.run(&opts);
    assert_eq!(r3.summary.files_changed, 1, "{:?}", r3.summary);
    assert_eq!(rows(&w.open_db(&w.node(&r3, &db).unwrap()).0), 301);
    // That image was taken right after a write: the next backup does not trust it and images again.
    let r4 = w.run(&opts);
    assert_eq!(r4.summary.files_changed, 1, "{:?}", r4.summary);
    assert_eq!(rows(&w.open_db(&w.node(&r4, &db).unwrap()).0), 301);
}

#[test]
fn a_database_written_throughout_the_backup_holds_what_was_committed_before() {
    let w = World::new();
    let db = w.src().join("openclaw.sqlite");
    drop(live_db(&db, 20_000)); // about 5 MB
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(20_000));
    let t = {
        let (stop, committed, db) = (stop.clone(), committed.clone(), db.clone());
        std::thread::spawn(move || {
            let c = Connection::open(&db).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let tx = c.unchecked_transaction().unwrap();
                for _ in 0..20 {
                    tx.execute("INSERT INTO t(v) VALUES (?1)", ["z".repeat(300)]).unwrap();
                }
                tx.commit().unwrap();
                committed.fetch_add(20, Ordering::SeqCst);
            }
        })
    };
    while committed.load(Ordering::SeqCst) < 21_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = committed.load(Ordering::SeqCst) as i64;
    let r = w.run(&w.opts(vec![w.src()]));
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let n = rows(&w.open_db(&w.node(&r, &db).unwrap()).0);
    assert!(n >= before, "image holds {n} rows, {before} were committed before the backup");
    assert!(n <= committed.load(Ordering::SeqCst) as i64);
    assert_eq!(n % 20, 0, "whole transactions only");
}

#[test]
fn a_file_that_keeps_changing_is_stored_as_what_was_read_and_listed() {
    let w = World::new();
    let log = w.src().join("sessions/main.jsonl");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let line = format!("{{\"role\":\"assistant\",\"text\":\"{}\"}}\n", "w".repeat(200));
    std::fs::write(&log, line.repeat(100_000)).unwrap(); // ~20 MB: each read takes a while
    std::fs::write(w.src().join("quiet.txt"), b"still").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = {
        let (stop, log, line) = (stop.clone(), log.clone(), line.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(line.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let r = w.run(&w.opts(vec![w.src()]));
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let why = issue(&r.changed, &log).unwrap_or_else(|| panic!("not listed as changed: {:?}", r.changed));
    assert!(why.contains("4 reads"), "{why}");
    assert!(issue(&r.changed, &w.src().join("quiet.txt")).is_none());
    let stored = w.content(&w.node(&r, &log).unwrap());
    let now = std::fs::read(&log).unwrap();
    assert!(stored.len() >= 100_000 * line.len() && stored.len() < now.len());
    assert_eq!(&now[..stored.len()], &stored[..], "a prefix of the file");
    let snap = w.repo().find_snapshot("latest", |_| true).unwrap().1;
    assert_eq!(snap.changed, r.changed, "the snapshot records it too");
}

#[test]
fn gitignore_files_apply_under_their_roots_and_clawbackignore_everywhere() {
    let w = World::new();
    let src = w.src();
    let ws = src.join("workspace");
    let files = [
        "workspace/.gitignore",
        "workspace/a.log",
        "workspace/keep.log",
        "workspace/top.txt",
        "workspace/build/out.bin",
        "workspace/sub/.gitignore",
        "workspace/sub/b.log",
        "workspace/sub/debug.log",
        "workspace/sub/top.txt",
        "workspace/sub/local.txt",
        "workspace/sub/x.tmp",
        "workspace/notes.bak",
        "workspace/.clawbackignore",
        "other/.gitignore",
        "other/a.log",
        "other/.clawbackignore",
        "other/secret/key",
        "other/plain.txt",
    ];
    for f in files {
        let p = src.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f.as_bytes()).unwrap();
    }
    std::fs::write(ws.join(".gitignore"), "build/\n*.log\n!keep.log\n/top.txt\n[bad\n").unwrap();
    std::fs::write(ws.join("sub/.gitignore"), "!debug.log\nlocal.txt\n!x.tmp\n").unwrap();
    std::fs::write(ws.join(".clawbackignore"), "*.bak\n").unwrap();
    std::fs::write(src.join("other/.gitignore"), "*.log\n").unwrap();
    std::fs::write(src.join("other/.clawbackignore"), "secret/\n").unwrap();
    let mut opts = w.opts(vec![src.clone()]);
    opts.gitignore_roots = vec![ws.clone()];
    opts.excludes = vec!["*.tmp".into()];
    let r = w.run(&opts);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let kept = [
        "workspace/.gitignore",
        "workspace/keep.log",
        "workspace/sub/.gitignore",
        "workspace/sub/debug.log",
        "workspace/sub/top.txt",
        "workspace/.clawbackignore",
        "other/.gitignore",
        "other/a.log",
        "other/.clawbackignore",
        "other/plain.txt",
    ];
    for f in files {
        let stored = w.node(&r, &src.join(f)).is_some();
        assert_eq!(stored, kept.contains(&f), "{f}: stored {stored}");
    }
    assert!(w.node(&r, &ws.join("build")).is_none(), "an ignored folder is left out whole");
    assert!(w.node(&r, &src.join("other/secret")).is_none());
}

fn excluded<'a>(r: &'a DryRunReport, p: &Path) -> &'a clawback_engine::commands::backup::ExcludedEntry {
    r.excluded
        .iter()
        .find(|e| Path::new(&e.path) == p)
        .unwrap_or_else(|| panic!("{} not in the report: {:#?}", p.display(), r.excluded))
}

#[test]
fn a_dry_run_reports_what_would_be_read_and_what_is_left_out() {
    let w = World::new();
    let state = w.src().join("state");
    let ws = w.src().join("ws");
    let write = |p: PathBuf, n: usize| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![b'x'; n]).unwrap();
    };
    for i in 0..30 {
        write(state.join(format!("sessions/s{i:02}.jsonl")), 1000 + i * 10);
    }
    write(state.join("browser/p/user-data/cache/a"), 300_000);
    write(state.join("browser/p/user-data/cache/b"), 200_000);
    write(state.join("gateway.pid"), 6);
    write(state.join("big.bin"), 50_000);
    write(ws.join("node_modules/x/index.js"), 7000);
    write(ws.join("dist/app.js"), 4000);
    write(ws.join("MEMORY.md"), 100);
    write(ws.join("scratch/t.txt"), 10);
    std::fs::write(ws.join(".gitignore"), "dist/\n").unwrap();
    std::fs::write(ws.join(".clawbackignore"), "scratch/\n").unwrap();
    let db = state.join("openclaw.sqlite");
    let c = live_db(&db, 50);
    let wal_len = std::fs::metadata(state.join("openclaw.sqlite-wal")).unwrap().len();

    let mut opts = w.opts(vec![state.clone(), ws.clone()]);
    let ud = format!("{}/browser/*/user-data/", state.display());
    opts.excludes = vec![ud.clone(), "*.pid".into(), format!("{}/**/node_modules/", ws.display())];
    opts.exclude_reasons = vec![(ud.clone(), "browser profile data".into())];
    opts.gitignore_roots = vec![ws.clone()];
    opts.dry_run = true;
    let r = w.run(&opts);
    assert!(r.snapshot_id.is_none());
    assert!(w.repo().snapshots().unwrap().is_empty());
    let rep = r.dry_run.expect("a dry run has a report");

    let image_len = {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("i.sqlite");
        c.backup(rusqlite::MAIN_DB, &p, None::<fn(rusqlite::backup::Progress)>).unwrap();
        std::fs::metadata(&p).unwrap().len()
    };
    let state_bytes: u64 = (0..30).map(|i| 1000 + i * 10).sum::<u64>() + 50_000 + image_len;
    assert_eq!(rep.roots.len(), 2);
    let root = |p: &Path| rep.roots.iter().find(|x| Path::new(&x.path) == p).unwrap();
    assert_eq!((root(&state).files, root(&state).bytes), (32, state_bytes), "{:?}", rep.roots);
    assert_eq!((root(&ws).files, root(&ws).bytes), (3, 100 + 6 + 9), "MEMORY.md and the two ignore files");
    assert_eq!((rep.included_files, rep.included_bytes), (35, state_bytes + 115));

    let e = excluded(&rep, &state.join("browser/p/user-data"));
    assert_eq!((e.dir, e.files, e.bytes, e.reason.as_str()), (true, 2, 500_000, "browser profile data"));
    let e = excluded(&rep, &state.join("gateway.pid"));
    assert_eq!((e.bytes, e.reason.as_str(), e.pattern.as_deref()), (6, "matches --exclude *.pid", Some("*.pid")));
    let e = excluded(&rep, &ws.join("node_modules"));
    assert_eq!((e.files, e.bytes), (1, 7000));
    let e = excluded(&rep, &ws.join("dist"));
    assert_eq!((e.bytes, e.reason.clone()), (4000, format!(".gitignore in {}", ws.display())));
    let e = excluded(&rep, &ws.join("scratch"));
    assert_eq!((e.bytes, e.reason.clone()), (10, format!(".clawbackignore in {}", ws.display())));
    let e = excluded(&rep, &state.join("openclaw.sqlite-wal"));
    assert_eq!(e.bytes, wal_len);
    assert!(e.reason.contains("SQLite -wal"), "{}", e.reason);
    assert!(rep.excluded.windows(2).all(|p| p[0].bytes >= p[1].bytes), "largest first");
    assert_eq!(rep.excluded_bytes, rep.excluded.iter().map(|e| e.bytes).sum::<u64>());

    assert_eq!(rep.largest.len(), LARGEST_FILES);
    assert!(rep.largest.windows(2).all(|p| p[0].bytes >= p[1].bytes));
    assert_eq!(Path::new(&rep.largest[0].path), state.join("big.bin"));
    assert!(rep.largest.iter().any(|f| Path::new(&f.path) == db && f.bytes == image_len));
    drop(c);
}
