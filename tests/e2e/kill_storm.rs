//! Kill storms: clawback itself SIGKILLed at random moments of backup, forget, prune, copy, rewrite
//! and in-place restore, hundreds of times on one repository (local, and on SeaweedFS), with a
//! printed seed (`CLAWBACK_TEST_SEED=N` replays). Afterwards a normal run completes, `check
//! --read-data` is clean and every snapshot, in the repository and in the copy, restores exactly
//! what was on disk when it was taken.

use crate::s3_kill_rounds::{clean_failure, Rng};
use crate::seaweed::{s3cb, with_s3_keys, Seaweed};
use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const TO_PASSWORD: &str = "the copy's own passphrase";
/// The pattern rewrite takes out: files of the source named so.
const EXCLUDED: &str = "*.skip";

/// A folder's contents as the seeds and lengths `random_bytes` makes them from, so each round's
/// exact state is kept without keeping its bytes.
type State = BTreeMap<String, (u64, usize)>;

/// Makes `dir` hold exactly `state` (files not in it are removed).
fn materialize(dir: &Path, state: &State) {
    for f in files_under(dir) {
        let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        if f.is_file() && !state.contains_key(&rel) {
            fs::remove_file(&f).unwrap();
        }
    }
    for (rel, &(seed, len)) in state {
        write(&dir.join(rel), &random_bytes(seed, len));
    }
}

/// Whether `dir` holds exactly `state` (minus the excluded files when `rewritten`); `Err` says how
/// it differs.
fn holds(dir: &Path, state: &State, rewritten: bool) -> Result<(), String> {
    let found: BTreeMap<String, Vec<u8>> = contents(dir);
    let want: BTreeMap<&String, &(u64, usize)> =
        state.iter().filter(|(rel, _)| !(rewritten && rel.ends_with(".skip"))).collect();
    if found.keys().collect::<Vec<_>>() != want.keys().copied().collect::<Vec<_>>() {
        return Err(format!("files differ: {:?} restored, {:?} expected", found.keys(), want.keys()));
    }
    for (rel, &&(seed, len)) in &want {
        if found[*rel] != random_bytes(seed, len) {
            return Err(format!("{rel} differs from what was on disk"));
        }
    }
    Ok(())
}

/// The source's next state: one or two files changed, one added, now and then one removed.
fn mutate(state: &mut State, n: u64, rng: &mut Rng) {
    for _ in 0..1 + rng.below(2) {
        if let Some(k) = state.keys().nth(rng.below(state.len() as u64) as usize).cloned() {
            state.insert(k, (rng.next_u64(), 1_000 + rng.below(300_000) as usize));
        }
    }
    let ext = if rng.below(4) == 0 { "skip" } else { "bin" };
    state.insert(format!("d{}/f{n}.{ext}", n % 5), (rng.next_u64(), 1_000 + rng.below(400_000) as usize));
    if state.len() > 24 {
        let k = state.keys().nth(rng.below(state.len() as u64) as usize).cloned().unwrap();
        state.remove(&k);
    }
}

/// How one run ended.
enum Outcome {
    Killed,
    Exited { code: i32, stderr: String, desc: String },
}

/// Starts `cmd`, SIGKILLs it after `delay` if it is still running.
fn run_and_kill(cmd: Cmd, delay: Duration, err_file: &Path) -> (Outcome, Duration) {
    let mut c = cmd.into_command();
    let desc = format!("{:?}", c.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>());
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(fs::File::create(err_file).unwrap());
    let began = Instant::now();
    let mut child = c.spawn().expect("start clawback");
    let deadline = began + delay;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            let took = began.elapsed();
            let code = s.code().unwrap_or_else(|| panic!("{desc} died of a signal it was not sent: {s:?}"));
            return (Outcome::Exited { code, stderr: fs::read_to_string(err_file).unwrap(), desc }, took);
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return (Outcome::Killed, began.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every regular file under `dir`, relative, with its content.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
        .collect()
}

const OPS: [&str; 7] = ["backup", "backup", "forget", "prune", "copy", "rewrite", "restore-in-place"];

/// One storm: `landed` kills that hit a run in flight, then the checks. `cb` and `to` are the
/// repository's and the copy's commands, `to_url` the copy's `--repo`.
fn storm(
    sb: &Sandbox,
    cb: &dyn Fn() -> Cmd,
    to: &dyn Fn() -> Cmd,
    to_url: &str,
    landed: u64,
    budget: Duration,
    what: &str,
) {
    let mut rng = Rng::from_env(what);
    let kdf = ["--kdf-memory", "1", "--kdf-iterations", "1"];
    cb().args(["init", "--pack-size", "1"]).args(kdf).run().ok();
    to().arg("init").args(kdf).run().ok();
    let src = sb.path("src");
    let live = sb.path("live");
    let err_file = sb.path("stderr.txt");

    // The source's state at each round, by the round tag its backup carries.
    let mut rounds: BTreeMap<u64, State> = BTreeMap::new();
    let mut state = State::new();
    for i in 0..8u64 {
        state.insert(
            format!("d{i}/seed{i}.{}", if i == 3 { "skip" } else { "bin" }),
            (rng.next_u64(), 50_000 + i as usize * 7_000),
        );
    }
    materialize(&src, &state);
    cb().args(["backup", "--tag", "round-0"]).arg(&src).run().ok();
    rounds.insert(0, state.clone());
    // The live folder restored in place: fixed names, several chunks each; two snapshots of it to
    // restore, and the states it held before each in-place restore (what safety snapshots hold).
    let names: Vec<String> = (0..5).map(|i| format!("{}f{i}.bin", if i % 2 == 1 { "sub/" } else { "" })).collect();
    let live_state = |rng: &mut Rng| -> State {
        names.iter().map(|n| (n.clone(), (rng.next_u64(), 200_000 + rng.below(500_000) as usize))).collect()
    };
    let mut live_snaps: Vec<(String, State)> = Vec::new();
    for _ in 0..2 {
        let s = live_state(&mut rng);
        materialize(&live, &s);
        let v = cb().args(["backup", "--json", "--tag", "live"]).arg(&live).run().ok().json();
        live_snaps.push((v["snapshot_id"].as_str().unwrap().to_string(), s));
    }
    let mut before_restores: Vec<State> = Vec::new();

    let start = Instant::now();
    let (mut runs, mut kills, mut mid_run, mut completed, mut failed) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut tally: BTreeMap<&str, (u32, u32, u32)> = BTreeMap::new();
    // Each operation's undisturbed time (at first a guess), so the kills land in flight on a fast
    // machine and a slow one alike.
    let mut undisturbed: BTreeMap<&str, u64> = BTreeMap::new();
    while mid_run < landed {
        assert!(
            start.elapsed() < budget,
            "{what}: only {mid_run} kills landed mid-run in {budget:?} ({runs} runs): too slow for the storm"
        );
        runs += 1;
        let n = runs;
        let op = OPS[rng.below(OPS.len() as u64) as usize];
        let mut in_place: Option<(State, usize)> = None;
        let cmd = match op {
            "backup" => {
                mutate(&mut state, n, &mut rng);
                materialize(&src, &state);
                rounds.insert(n, state.clone());
                cb().args(["backup", "--tag", &format!("round-{n}")]).arg(&src)
            }
            "forget" => cb().args(["forget", "--keep-last", "3", "--keep-tag", "live"]),
            "prune" => cb().arg("prune"),
            "copy" => cb().args(["copy", "--to", to_url]).env("CLAWBACK_TO_PASSWORD", TO_PASSWORD),
            "rewrite" => cb().args(["rewrite", "--exclude", EXCLUDED]),
            _ => {
                // The live files move on (new content under the same names), then an earlier
                // snapshot of them goes back in place.
                let s = live_state(&mut rng);
                materialize(&live, &s);
                before_restores.push(s.clone());
                let k = rng.below(2) as usize;
                in_place = Some((s, k));
                cb().args(["restore", &live_snaps[k].0, "--force"])
            }
        };
        // One run in four goes undisturbed (the repository moves on, and its time is measured);
        // the others are killed at a random moment within the operation's undisturbed time.
        let free = rng.below(4) == 0 || !undisturbed.contains_key(op);
        let span = *undisturbed.get(op).unwrap_or(&0);
        let delay = if free { Duration::from_secs(100) } else { Duration::from_millis(rng.below(span.max(5))) };
        let (outcome, took) = run_and_kill(cmd, delay, &err_file);
        let e = tally.entry(op).or_default();
        kills += !free as u64;
        match outcome {
            Outcome::Killed => {
                mid_run += 1;
                e.2 += 1;
            }
            Outcome::Exited { code, stderr, desc } => {
                // It finished before any kill: a measure of its undisturbed time.
                undisturbed.insert(op, (took.as_millis() as u64).max(5));
                if code == 0 {
                    completed += 1;
                    e.0 += 1;
                } else {
                    failed += 1;
                    e.1 += 1;
                    assert!(matches!(code, 1 | 12), "run {n} {op}: exit {code} is not a documented failure\n{stderr}");
                    let r = Run { desc, code, stdout: String::new(), stderr };
                    eprintln!("{what}: run {n} {op}: exit {code}: {}", clean_failure(&r));
                }
            }
        }
        if let Some((pre, k)) = in_place {
            // Each live file is the old or the restored content, never anything else.
            let (_, snap) = &live_snaps[k];
            let now = contents(&live);
            for (rel, data) in &now {
                if rel.rsplit('/').next().unwrap().starts_with(".clawback-restore-") {
                    fs::remove_file(live.join(rel)).unwrap();
                    continue;
                }
                let (o, s) = (pre[rel], snap[rel]);
                assert!(
                    *data == random_bytes(o.0, o.1) || *data == random_bytes(s.0, s.1),
                    "{what}: run {n}: after in-place restore, {rel} is neither before nor restored ({} bytes)",
                    data.len()
                );
            }
            assert_eq!(
                now.keys().filter(|r| !r.contains(".clawback-restore-")).count(),
                names.len(),
                "{what}: run {n}"
            );
        }
    }
    eprintln!(
        "{what}: {runs} runs, {kills} aimed at a random moment within the run, {mid_run} of them landed mid-run (SIGKILL); \
         {completed} runs completed, {failed} failed cleanly; per operation (ok, failed, killed): {tally:?}; {:?}",
        start.elapsed()
    );
    assert!(mid_run * 2 >= kills, "{what}: only {mid_run} of {kills} kills landed mid-run");

    // Afterwards: a run that completes normally, clean checks, everything restores exactly.
    let n = runs + 1;
    mutate(&mut state, n, &mut rng);
    materialize(&src, &state);
    rounds.insert(n, state.clone());
    cb().args(["backup", "--tag", &format!("round-{n}")]).arg(&src).run().ok();
    cb().args(["copy", "--to", to_url]).env("CLAWBACK_TO_PASSWORD", TO_PASSWORD).run().ok();
    for (c, name) in [(cb as &dyn Fn() -> Cmd, "repository"), (to, "copy")] {
        let v = c().args(["check", "--read-data", "--json"]).run().ok().json();
        assert_eq!(v["ok"], true, "{what}: {name}: {v}");
        assert!(v["errors"].as_array().is_none_or(|e| e.is_empty()), "{what}: {name}: {v}");
    }
    let mut counts = Vec::new();
    for (c, name) in [(cb as &dyn Fn() -> Cmd, "repository"), (to, "copy")] {
        let snaps = c().args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().clone();
        let mut safety_seen = 0;
        for s in &snaps {
            let id = s["id"].as_str().unwrap();
            let tags: Vec<&str> =
                s["tags"].as_array().map(|t| t.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
            let paths: Vec<&str> = s["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            let rewritten = !s["original"].is_null();
            let t = sb.path(&format!("verify-{name}-{}", &id[..8]));
            c().args(["restore", id, "--verify", "--target"]).arg(&t).run().ok();
            let label = format!("{what}: {name} snapshot {} {tags:?}", &id[..8]);
            if paths == [src.to_str().unwrap()] {
                let round: u64 =
                    tags.iter().find_map(|t| t.strip_prefix("round-")).expect("a round tag").parse().unwrap();
                let got = restored(&t, &src);
                let st = &rounds[&round];
                // The repository's rewritten snapshots say so (`original`); a copy names its
                // source in `original` either way, so there it may be either.
                let r = if name == "copy" && holds(&got, st, false).is_ok() {
                    Ok(())
                } else {
                    holds(&got, st, rewritten || name == "copy")
                };
                if let Err(e) = r {
                    panic!("{label}: {e}");
                }
            } else {
                assert_eq!(paths, [live.to_str().unwrap()], "{label}");
                let got = restored(&t, &live);
                if tags.contains(&"live") {
                    // In the copy, by the source's id (`original`).
                    let (_, st) = live_snaps
                        .iter()
                        .find(|(i, _)| i == id || s["original"].as_str() == Some(i.as_str()))
                        .unwrap_or_else(|| panic!("{label}: not one of the live snapshots"));
                    holds(&got, st, false).unwrap_or_else(|e| panic!("{label}: {e}"));
                } else {
                    // A safety snapshot: what the live folder held before one of the restores.
                    let c = contents(&got);
                    assert!(
                        before_restores.iter().any(|st| c.len() == st.len()
                            && st
                                .iter()
                                .all(|(rel, &(seed, len))| c.get(rel).is_some_and(|d| *d == random_bytes(seed, len)))),
                        "{label}: the safety snapshot matches none of the states before a restore"
                    );
                    safety_seen += 1;
                }
            }
            fs::remove_dir_all(&t).unwrap();
        }
        counts.push(format!("{name}: {} snapshots ({safety_seen} safety snapshots) restore exactly", snaps.len()));
    }
    eprintln!("{what}: {}", counts.join("; "));
}

#[test]
fn two_hundred_kills_on_a_local_repository_lose_nothing() {
    let sb = Sandbox::new();
    let to_repo = sb.path("copy-repo");
    let to = || {
        sb.bare()
            .arg("--repo")
            .arg(&to_repo)
            .arg("--cache-dir")
            .arg(sb.path("cache-copy"))
            .env("CLAWBACK_PASSWORD", TO_PASSWORD)
    };
    storm(&sb, &|| sb.cb(), &to, to_repo.to_str().unwrap(), 200, Duration::from_secs(150), "local kill storm");
}

#[test]
fn two_hundred_kills_on_a_seaweedfs_repository_lose_nothing() {
    let srv = Seaweed::start();
    let sb = Sandbox::new();
    let url = srv.url("storm/repo");
    let to_url = srv.url("storm/copy");
    // The bucket first: the storm's own init makes none.
    s3cb(&sb, &srv.url("storm/probe"))
        .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .run()
        .ok();
    let to = || {
        with_s3_keys(sb.bare().arg("--repo").arg(&to_url).arg("--cache-dir").arg(sb.path("cache-copy")))
            .env("CLAWBACK_PASSWORD", TO_PASSWORD)
    };
    storm(&sb, &|| s3cb(&sb, &url), &to, &to_url, 200, Duration::from_secs(240), "S3 kill storm");
}
