//! SeaweedFS killed (SIGKILL) and restarted at random moments of backup, restore, forget with
//! prune, copy and `check --read-data`, round after round on one repository, with a seed printed so
//! a failing run can be replayed (`CLAWBACK_TEST_SEED=N`; `CLAWBACK_KILL_DIAG=DIR` adds a check
//! after every round and keeps the evidence of the first damage in DIR). Every run must finish or fail with one
//! clear line; afterwards every object in the bucket hashes to its name, `check --read-data` is
//! clean on both repositories, and every snapshot that exists restores exactly what it was taken of.

use crate::seaweed::{audit_objects, s3cb, with_s3_keys, Seaweed, INIT_SMALL};
use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TO_PASSWORD: &str = "the copy's own passphrase";

/// xorshift64*, seeded from `CLAWBACK_TEST_SEED` or the clock.
pub struct Rng(u64);

impl Rng {
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("CLAWBACK_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{what}: seed {seed} (replay with CLAWBACK_TEST_SEED={seed})");
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Round `n`'s source: the previous one's files, one of them changed, and a new incompressible
/// file, so each backup has something to upload when the server dies.
fn next_source(root: &Path, prev: Option<&Path>, n: u64, rng: &mut Rng) -> PathBuf {
    let dir = root.join(format!("src{n}"));
    fs::create_dir_all(&dir).unwrap();
    if let Some(p) = prev {
        for f in files_under(p) {
            let rel = f.strip_prefix(p).unwrap();
            write(&dir.join(rel), &fs::read(&f).unwrap());
        }
    } else {
        write(&dir.join("notes.txt"), b"first\n");
        write(&dir.join("a/b/deep.bin"), &random_bytes(1, 300_000));
    }
    write(&dir.join("notes.txt"), format!("round {n}\n").as_bytes());
    write(&dir.join(format!("new/r{n}.bin")), &random_bytes(rng.next_u64(), 600_000 + rng.below(900_000) as usize));
    dir
}

/// A failed run's report: one line; or, from restore, one line per file it could not restore and
/// then the count (restore's documented report). Returns the last line.
#[track_caller]
pub fn clean_failure(r: &Run) -> String {
    let lines: Vec<&str> = r.stderr.lines().collect();
    if lines.len() > 1 && r.desc.contains(" restore ") {
        let (last, files) = lines.split_last().unwrap();
        assert!(last.contains("files could not be restored"), "{}: {}", r.desc, r.stderr);
        assert!(files.iter().all(|l| l.starts_with("clawback: not restored: ")), "{}: {}", r.desc, r.stderr);
        return last.to_string();
    }
    r.one_error_line().to_string()
}

/// The tag a round's backup carries, and the source it names.
fn round_of(snap: &serde_json::Value) -> u64 {
    let tags = snap["tags"].as_array().expect("tags");
    let t = tags.iter().find_map(|t| t.as_str()?.strip_prefix('r')).expect("a round tag");
    t.parse().unwrap()
}

/// Restores every snapshot of the repository at `url` and compares it with its round's source.
fn restore_all(sb: &Sandbox, cmd: &dyn Fn() -> Cmd, sources: &BTreeMap<u64, PathBuf>, what: &str) -> usize {
    let snaps = cmd().args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().clone();
    for s in &snaps {
        let id = s["id"].as_str().unwrap();
        let src = &sources[&round_of(s)];
        let t = sb.path(&format!("verify-{what}-{}", &id[..8]));
        cmd().args(["restore", id, "--verify", "--target"]).arg(&t).run().ok();
        assert_same_tree(src, &restored(&t, src));
        fs::remove_dir_all(&t).unwrap();
    }
    snaps.len()
}

#[test]
fn s3_server_killed_at_random_moments_over_many_rounds() {
    let mut rng = Rng::from_env("kill rounds");
    let mut srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("kills/repo");
    let to_url = srv.url("kills/copy");
    let cb = || s3cb(&sb, &url);
    let tcb = || {
        with_s3_keys(sb.bare().arg("--repo").arg(&to_url).arg("--cache-dir").arg(sb.path("cache-copy")))
            .env("CLAWBACK_PASSWORD", TO_PASSWORD)
    };
    cb().args(INIT_SMALL).run().ok();
    tcb().args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();

    let mut sources: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let first = next_source(&sb.root, None, 0, &mut rng);
    cb().args(["backup", "--json", "--tag", "r0"]).arg(&first).run().ok();
    sources.insert(0, first);

    let budget = Duration::from_secs(110);
    let start = Instant::now();
    let (mut rounds, mut failed, mut kills, mut mid_run) = (0u64, 0u64, 0u64, 0u64);
    let mut tally: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut undisturbed: BTreeMap<&str, u64> = BTreeMap::new();
    while start.elapsed() < budget && rounds < 40 {
        rounds += 1;
        let n = rounds;
        let op = ["backup", "backup", "restore", "forget-prune", "copy", "check"][rng.below(6) as usize];
        let mut restore_of: Option<(PathBuf, PathBuf)> = None;
        let cmd = match op {
            "backup" => {
                let prev = sources.values().next_back().cloned();
                let src = next_source(&sb.root, prev.as_deref(), n, &mut rng);
                sources.insert(n, src.clone());
                cb().args(["backup", "--json", "--tag", &format!("r{n}")]).arg(src)
            }
            "restore" => {
                let snaps = cb().args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().clone();
                let s = &snaps[rng.below(snaps.len() as u64) as usize];
                let id = s["id"].as_str().unwrap().to_string();
                let t = sb.path(&format!("restore-r{n}"));
                restore_of = Some((sources[&round_of(s)].clone(), t.clone()));
                cb().args(["restore", &id, "--verify", "--target"]).arg(t)
            }
            "forget-prune" => cb().args(["forget", "--keep-last", "4", "--prune"]),
            "copy" => cb().args(["copy", "--to", &to_url]).env("CLAWBACK_TO_PASSWORD", TO_PASSWORD),
            _ => cb().args(["check", "--read-data"]),
        };
        // The kill lands within how long this operation last took undisturbed (at first 1.5 s), so
        // most kills hit a run in flight however fast this machine runs them.
        let span = *undisturbed.get(op).unwrap_or(&1500);
        let began = Instant::now();
        // (When the run ended, not when the kill came: a run that ended long before the kill would
        // otherwise leave a span far longer than the run, and the next kills would miss it too.)
        let ended = std::sync::Arc::new(std::sync::OnceLock::new());
        let end = ended.clone();
        let h = std::thread::spawn(move || {
            let r = cmd.run();
            let _ = end.set(began.elapsed());
            r
        });
        std::thread::sleep(Duration::from_millis(rng.below(span.max(20))));
        if let Some(took) = ended.get() {
            undisturbed.insert(op, (took.as_millis() as u64 * 3 / 4).max(20));
        } else {
            mid_run += 1;
        }
        srv.kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(rng.below(1000)));
        srv.restart();
        let r = h.join().expect("the run's thread");
        let e = tally.entry(op).or_default();
        if r.code == 0 {
            e.0 += 1;
            if let Some((src, t)) = restore_of {
                // A restore that says it succeeded wrote exactly the snapshot.
                assert_same_tree(&src, &restored(&t, &src));
            }
        } else {
            e.1 += 1;
            failed += 1;
            assert!(
                matches!(r.code, 1 | 12),
                "round {n} {op}: exit {} is not a documented failure\n{}",
                r.code,
                r.stderr
            );
            eprintln!("round {n} {op}: exit {}: {}", r.code, clean_failure(&r));
        }
        // `CLAWBACK_KILL_DIAG=DIR`: check after every round, print what each backup and prune said,
        // and at the first damage keep the server's data and the sandbox in DIR and stop.
        if let Some(keep) = std::env::var_os("CLAWBACK_KILL_DIAG") {
            if op == "forget-prune" || op == "backup" {
                eprintln!("diag: round {n} {op} exit {}: {}", r.code, r.stdout.replace('\n', " "));
            }
            let c = cb().args(["check", "--json"]).run();
            if c.code != 0 {
                srv.kill();
                let keep = Path::new(&keep).join(format!("kill-rounds-{}", std::process::id()));
                fs::create_dir_all(&keep).unwrap();
                for (from, to) in [(srv.data_dir(), "weed"), (sb.root.as_path(), "sandbox")] {
                    std::process::Command::new("cp").arg("-a").arg(from).arg(keep.join(to)).status().unwrap();
                }
                panic!(
                    "diag: round {n} {op} (exit {}) left damage, kept in {}: {}\n{}",
                    r.code,
                    keep.display(),
                    c.stdout,
                    r.stderr
                );
            }
        }
    }
    eprintln!("{rounds} rounds, {kills} server kills and restarts ({mid_run} while the run was in flight), {failed} runs failed cleanly; per operation (ok, failed): {tally:?}; {:?}", start.elapsed());
    // (A diagnostic run spends the budget on its checks too: it is after damage, not coverage.)
    if std::env::var_os("CLAWBACK_KILL_DIAG").is_none() {
        assert!(rounds >= 10, "only {rounds} rounds in the time budget: too few to mean anything");
        assert!(mid_run * 2 >= rounds, "only {mid_run} of {rounds} kills hit a run in flight");
    }

    // Afterwards: nothing half-written, both repositories check clean, everything restores.
    let objects = audit_objects(&srv.endpoint, "kills", "repo") + audit_objects(&srv.endpoint, "kills", "copy");
    // A failure shows the server's own log beside the report (what it did before the last kill).
    for (what, c) in [("repository", cb()), ("copy", tcb())] {
        let r = c.args(["check", "--read-data", "--json"]).run();
        assert_eq!(r.code, 0, "check of the {what}: {}\n{}\n--- server log\n{}", r.stdout, r.stderr, srv.log());
    }
    let last = next_source(&sb.root, sources.values().next_back().map(|p| p.as_path()), 999, &mut rng);
    cb().args(["backup", "--json", "--tag", "r999"]).arg(&last).run().ok();
    sources.insert(999, last);
    let restored_main = restore_all(&sb, &cb, &sources, "main");
    let restored_copy = restore_all(&sb, &tcb, &sources, "copy");
    eprintln!(
        "{objects} objects hash to their names; {restored_main} snapshots and {restored_copy} copies restore exactly"
    );
}
