//! A backup running while a prune runs, interleaved deterministically through the library: the
//! backup takes its lease and loads the index at one point of the prune (or before it), and writes
//! its snapshot at a later point (or after it). Its storage pauses it just before the snapshot is
//! written, and the prune's phase hook decides when it starts and when it may finish. The backup
//! re-adds a file that a forget just made unreferenced, so it deduplicates against exactly the
//! data the prune wants to delete. After every interleaving (and a second prune that finishes any
//! deferred deletion) `check` passes and every snapshot restores byte for byte.

mod common;

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::commands::check::{check, CheckOptions};
use clawback_engine::commands::prune::{prune, PruneOptions, PruneReport};
use clawback_engine::commands::restore::{restore, RestoreOptions};
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap() };
        let opts = InitOptions {
            kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 },
            pack_size: 1 << 20,
            ..Default::default()
        };
        Repository::init(Arc::new(LocalBackend::new(w.repo_path())), &Secret(b"pw".to_vec()), &opts).unwrap();
        std::fs::create_dir_all(w.src()).unwrap();
        w
    }
    fn repo_path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn open(&self, be: Arc<dyn Backend>) -> Repository {
        Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
    }
    fn repo(&self) -> Repository {
        self.open(Arc::new(LocalBackend::new(self.repo_path())))
    }
    fn set(&self, name: &str, data: &[u8]) {
        std::fs::write(self.src().join(name), data).unwrap();
    }
    fn contents(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.src())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect()
    }
    fn backup_with(&self, repo: &Repository, time: &str) -> String {
        let opts = BackupOptions {
            paths: vec![self.src()],
            time: Some(chrono::DateTime::parse_from_rfc3339(time).unwrap().into()),
            ..Default::default()
        };
        backup(repo, &opts, &Progress::default()).unwrap().snapshot_id.unwrap().to_hex()
    }

    /// Check passes and every snapshot restores to what `expected` says it held.
    #[track_caller]
    fn verify(&self, expected: &BTreeMap<String, BTreeMap<String, Vec<u8>>>, what: &str) {
        let repo = self.repo();
        let report =
            check(&repo, &CheckOptions { read_data: Some(clawback_engine::commands::check::Subset::All) }).unwrap();
        assert!(report.ok, "{what}: check failed: {:?}", report.errors);
        let snaps = repo.snapshots().unwrap();
        for (id, snap) in &snaps {
            let want = expected.get(&id.to_hex()).unwrap_or_else(|| panic!("{what}: unknown snapshot"));
            let target = self.dir.path().join(format!("restore-{}", id.short()));
            let opts = RestoreOptions { target: target.clone(), verify: true, ..Default::default() };
            restore(&repo, snap, &opts, &Progress::default()).unwrap_or_else(|e| panic!("{what}: restore: {e}"));
            let got = target.join(self.src().strip_prefix("/").unwrap());
            for (name, data) in want {
                let g = std::fs::read(got.join(name)).unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
                assert!(g == *data, "{what}: {name} differs after restore");
            }
            std::fs::remove_dir_all(&target).unwrap();
        }
    }
}

/// The racing backup: started (up to its snapshot write) at point `start`, let finish at `finish`.
struct Racer {
    start: usize,
    finish: usize,
    repo: PathBuf,
    src: PathBuf,
    go: Option<Sender<()>>,
    handle: Option<std::thread::JoinHandle<String>>,
    id: Option<String>,
}

impl Racer {
    fn step(&mut self, i: usize) {
        if i == self.start {
            let (reached_tx, reached_rx) = channel();
            let (go_tx, go_rx) = channel();
            let be = {
                let r = common::Rigged::new(&self.repo);
                *r.gate.lock().unwrap() = Some((reached_tx, go_rx));
                Arc::new(r)
            };
            let src = self.src.clone();
            self.handle = Some(std::thread::spawn(move || {
                let repo =
                    Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap();
                let opts = BackupOptions {
                    paths: vec![src],
                    time: Some(chrono::DateTime::parse_from_rfc3339("2026-05-03T10:00:00Z").unwrap().into()),
                    ..Default::default()
                };
                backup(&repo, &opts, &Progress::default()).unwrap().snapshot_id.unwrap().to_hex()
            }));
            reached_rx.recv().expect("the racing backup reached its snapshot");
            self.go = Some(go_tx);
        }
        if i == self.finish {
            self.go.take().unwrap().send(()).unwrap();
            self.id = Some(self.handle.take().unwrap().join().unwrap());
        }
    }
}

const POINTS: [&str; 9] = ["before", "load", "mark", "plan", "repack", "index", "condemn", "delete", "after"];

/// One interleaving: the racing backup starts at `start` and writes its snapshot at `finish`.
fn interleave(start: usize, finish: usize) -> (PruneReport, PruneReport) {
    let what = format!("backup from {} to {}", POINTS[start], POINTS[finish]);
    let w = World::new();
    let mut expected = BTreeMap::new();
    w.set("a.bin", &random(1, 700_000));
    w.set("b.bin", &random(2, 700_000));
    for i in 0..16 {
        w.set(&format!("s{i:02}"), &random(10 + i, 40_000));
    }
    let s1 = w.backup_with(&w.repo(), "2026-05-01T10:00:00Z");
    // The second snapshot lacks a.bin and half the small files; the first is forgotten, so their
    // data is unreferenced.
    std::fs::remove_file(w.src().join("a.bin")).unwrap();
    for i in (0..16).step_by(2) {
        std::fs::remove_file(w.src().join(format!("s{i:02}"))).unwrap();
    }
    let s2 = w.backup_with(&w.repo(), "2026-05-02T10:00:00Z");
    expected.insert(s2, w.contents());
    let s1 = clawback_engine::format::id::SnapshotId::from_hex(&s1).unwrap();
    w.repo().backend().delete(&ObjectName::of(&s1)).unwrap();
    // The racing backup brings a.bin and s00 back (the same bytes: it deduplicates against the
    // forgotten data if its index still offers it) and adds a new file.
    w.set("a.bin", &random(1, 700_000));
    w.set("s00", &random(10, 40_000));
    w.set("c.bin", &random(3, 300_000));
    let race_contents = w.contents();

    let mut racer = Racer { start, finish, repo: w.repo_path(), src: w.src(), go: None, handle: None, id: None };
    racer.step(0);
    let first = {
        let repo = w.repo();
        let mut hook = |phase: &str| {
            if let Some(i) = POINTS.iter().position(|p| *p == phase) {
                racer.step(i);
            }
            Ok(())
        };
        prune(&repo, &PruneOptions { dry_run: false, max_unused: 0.0 }, &mut hook).unwrap()
    };
    racer.step(POINTS.len() - 1);
    let racing = racer.id.clone().expect("the racing backup finished");
    expected.insert(racing, race_contents);
    w.verify(&expected, &format!("{what}, after the prune"));
    // A second prune deletes what the first had to leave for the backup, and only that.
    let r = prune(&w.repo(), &PruneOptions::default(), &mut |_| Ok(())).unwrap();
    assert_eq!(r.packs_waiting, 0, "{what}");
    w.verify(&expected, &format!("{what}, after a second prune"));
    assert!(w.repo().backend().list(Kind::Condemned).unwrap().is_empty(), "{what}: records left");
    assert!(w.repo().backend().list(Kind::Lock).unwrap().is_empty(), "{what}: leases left");
    (first, r)
}

#[test]
fn a_backup_interleaved_with_every_prune_phase_never_loses_data() {
    for start in 0..POINTS.len() {
        for finish in start..POINTS.len() {
            interleave(start, finish);
        }
    }
}

/// The condemned packs are not deleted while the backup that loaded the index before they were
/// condemned still runs, and that backup's reuse of them resurrects them afterwards.
#[test]
fn condemned_data_a_running_backup_reused_is_resurrected_not_deleted() {
    let (first, second) = interleave(1, 7);
    assert!(first.packs_condemned > 0, "{first:?}");
    assert!(first.packs_waiting > 0, "the backup's lease holds the condemned packs: {first:?}");
    assert!(second.packs_resurrected > 0, "the reused data is kept: {second:?}");
    assert!(second.packs_deleted > 0, "what nothing reused goes: {second:?}");
}
