//! "Two hours of activity" on a generated home, for incremental-backup benchmarks: transcripts
//! grow and a session starts, databases take new rows in WAL mode, a daily note appears and
//! MEMORY.md is edited, a photo arrives, the gateway logs, cron runs, and the git project gets
//! a commit. Each tick moves the simulated clock one day past the newest daily note, so
//! repeated ticks with the same seed keep making new, different changes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::content::{self, MediaKind, Sink};
use crate::layout::{FAKE_HOME, GIT_PROJECT, STATE};
use crate::rng::{derive, Rng};
use crate::sqlite::{self, DbKind};
use crate::text;
use crate::time::{date, parse_date, DAY, END};

/// What [`tick`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// Existing files whose content changed.
    pub files_changed: u64,
    /// Files that did not exist before.
    pub files_added: u64,
    /// Growth in bytes over the changed and added files.
    pub bytes_added: u64,
}

/// Remembers the size of every path before it is touched.
#[derive(Default)]
struct Touched(BTreeMap<PathBuf, Option<(u64, std::time::SystemTime)>>);

impl Touched {
    fn before(&mut self, p: &Path) {
        self.0.entry(p.to_path_buf()).or_insert_with(|| stat(p));
    }

    fn summary(&self) -> TickSummary {
        let mut s = TickSummary::default();
        for (p, before) in &self.0 {
            let Some((after, at)) = stat(p) else { continue };
            match before {
                None => {
                    s.files_added += 1;
                    s.bytes_added += after;
                }
                Some((b, bt)) if *b != after || *bt != at => {
                    s.files_changed += 1;
                    s.bytes_added += after.saturating_sub(*b);
                }
                Some(_) => {}
            }
        }
        s
    }
}

fn stat(p: &Path) -> Option<(u64, std::time::SystemTime)> {
    let m = fs::symlink_metadata(p).ok()?;
    if !m.is_file() {
        return None;
    }
    Some((m.len(), m.modified().ok()?))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => files_under(&e.path(), out),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(END)
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Simulates two hours of OpenClaw activity in the home at `root` (made by `generate`).
pub fn tick(root: &Path, seed: u64) -> Result<TickSummary> {
    let state = root.join(STATE);
    if !state.join("openclaw.json").is_file() {
        bail!("{} holds no OpenClaw home (no .openclaw/openclaw.json): run generate first", root.display());
    }
    let agents: Vec<String> =
        sorted_names(&state.join("agents")).into_iter().filter(|a| state.join("agents").join(a).is_dir()).collect();
    let main_ws = state.join("workspace");

    // The simulated day: the one after the newest daily note.
    let last = sorted_names(&main_ws.join("memory"))
        .iter()
        .filter_map(|n| n.strip_suffix(".md").and_then(parse_date))
        .max()
        .unwrap_or(END - DAY);
    let day = last + DAY;
    let now_ms = (day + 12 * 3_600) * 1000;
    let from_ms = now_ms - 2 * 3_600_000;
    let mut rng = Rng::new(derive(seed, &format!("tick/{day}")));
    let mut touched = Touched::default();
    let mut buf = Vec::new();

    // Transcripts: a few sessions of the main agent grow, and one new session starts.
    let sessions_dir = state.join("agents/main/sessions");
    let live: Vec<String> = sorted_names(&sessions_dir).into_iter().filter(|n| n.ends_with(".jsonl")).collect();
    let mut grown_ids = Vec::new();
    for _ in 0..live.len().min(3) {
        let name = rng.pick(&live).clone();
        let path = sessions_dir.join(&name);
        if grown_ids.contains(&name) {
            continue;
        }
        touched.before(&path);
        let lines = rng.range(20, 100);
        let file = File::options().append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut s = Sink::new(file, &mut buf, lines * 1_100);
        content::transcript(&mut s, &mut rng, from_ms, now_ms, None)?;
        s.finish()?;
        grown_ids.push(name);
    }
    let new_id = rng.uuid();
    let new_path = sessions_dir.join(format!("{new_id}.jsonl"));
    touched.before(&new_path);
    fs::create_dir_all(&sessions_dir)?;
    let lines = rng.range(20, 100);
    let mut s = Sink::new(File::create(&new_path)?, &mut buf, lines * 1_100);
    content::transcript(&mut s, &mut rng, from_ms, now_ms, Some((&new_id, &format!("{FAKE_HOME}/{STATE}/workspace"))))?;
    s.finish()?;

    let index = sessions_dir.join("sessions.json");
    if index.is_file() {
        touched.before(&index);
        let mut v: Value =
            serde_json::from_slice(&fs::read(&index)?).with_context(|| format!("parsing {}", index.display()))?;
        if let Some(map) = v.as_object_mut() {
            for entry in map.values_mut() {
                let hit = entry
                    .get("sessionId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| grown_ids.iter().any(|n| n.starts_with(id)));
                if hit {
                    entry["updatedAt"] = json!(now_ms);
                }
            }
            map.insert(
                format!("agent:main:webchat:direct:{}", rng.hex(12)),
                json!({ "sessionId": new_id, "updatedAt": now_ms, "sessionFile": format!("{FAKE_HOME}/{STATE}/agents/main/sessions/{new_id}.jsonl"),
                        "chatType": "direct", "lastChannel": "webchat", "model": "gpt-5.2", "modelProvider": "openai" }),
            );
        }
        let mut out = serde_json::to_string_pretty(&v)?;
        out.push('\n');
        fs::write(&index, out)?;
    }

    // Databases.
    let mut dbs: Vec<(PathBuf, DbKind, String)> = Vec::new();
    let state_db = state.join("state/openclaw.sqlite");
    if state_db.is_file() {
        dbs.push((state_db, DbKind::State, "main".into()));
    }
    for a in &agents {
        let p = state.join(format!("agents/{a}/agent/openclaw-agent.sqlite"));
        if p.is_file() {
            dbs.push((p, DbKind::Agent, a.clone()));
        }
        let p = state.join(format!("memory/{a}.sqlite"));
        if p.is_file() {
            dbs.push((p, DbKind::Memory, a.clone()));
        }
    }
    for (path, kind, agent) in &dbs {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let sidecars =
            [path.clone(), path.with_file_name(format!("{name}-wal")), path.with_file_name(format!("{name}-shm"))];
        for p in &sidecars {
            touched.before(p);
        }
        let n = rng.range(20, 100) as usize;
        sqlite::tick(path, *kind, agent, &mut rng, now_ms, n)?;
    }

    // Workspace memory: a new daily note, and MEMORY.md edited.
    let d = date(day);
    let note = main_ws.join(format!("memory/{d}.md"));
    touched.before(&note);
    buf.clear();
    let n = rng.range(1_000, 5_000) as usize;
    text::daily_note(&mut rng, &mut buf, n, &d);
    fs::create_dir_all(note.parent().expect("has parent"))?;
    fs::write(&note, &buf)?;
    let memory = main_ws.join("MEMORY.md");
    touched.before(&memory);
    let mut m = fs::read(&memory).unwrap_or_default();
    m.extend_from_slice(format!("\n## {d}\n\n- ").as_bytes());
    let n = rng.range(200, 800) as usize;
    text::prose(&mut rng, &mut m, n);
    m.push(b'\n');
    fs::write(&memory, &m)?;

    // A photo arrives.
    let media = state.join(format!("media/inbound/{}.jpg", rng.uuid()));
    touched.before(&media);
    fs::create_dir_all(media.parent().expect("has parent"))?;
    let size = rng.range(1_000_000, 3_000_000);
    let spec = content::FileSpec {
        rel: media.strip_prefix(root).expect("under root").to_string_lossy().into_owned(),
        size,
        mtime: now_secs(),
        content: content::Content::Media { seed: rng.next_u64(), kind: MediaKind::Jpeg },
    };
    content::write_file(root, &spec, &mut buf)?;

    // The gateway log.
    let log = state.join("logs/gateway.log");
    touched.before(&log);
    fs::create_dir_all(log.parent().expect("has parent"))?;
    buf.clear();
    let lines = rng.range(200, 800);
    for i in 0..lines {
        content::log_line(&mut rng, from_ms + (i as i64 * 7_200_000 / lines as i64), &mut buf);
    }
    File::options().create(true).append(true).open(&log)?.write_all(&buf)?;

    // Cron: runs appended, job state updated.
    let jobs_path = state.join("cron/jobs.json");
    if jobs_path.is_file() {
        touched.before(&jobs_path);
        let mut v: Value = serde_json::from_slice(&fs::read(&jobs_path)?)
            .with_context(|| format!("parsing {}", jobs_path.display()))?;
        let mut ran = Vec::new();
        if let Some(jobs) = v.get_mut("jobs").and_then(Value::as_array_mut) {
            for job in jobs.iter_mut().take(2) {
                job["state"]["lastRunAtMs"] = json!(now_ms - 600_000);
                job["state"]["nextRunAtMs"] = json!(now_ms + 3_600_000);
                job["updatedAtMs"] = json!(now_ms);
                if let Some(id) = job.get("id").and_then(Value::as_str) {
                    ran.push(id.to_string());
                }
            }
        }
        let mut out = serde_json::to_string_pretty(&v)?;
        out.push('\n');
        fs::write(&jobs_path, out)?;
        for id in ran {
            let runs = state.join(format!("cron/runs/{id}.jsonl"));
            touched.before(&runs);
            fs::create_dir_all(runs.parent().expect("has parent"))?;
            let file = File::options().create(true).append(true).open(&runs)?;
            let mut s = Sink::new(file, &mut buf, rng.range(1_000, 4_000));
            content::cron_runs(&mut s, &mut rng, &id, from_ms, now_ms)?;
            s.finish()?;
        }
    }

    // A commit in the git project.
    let repo = main_ws.join(GIT_PROJECT);
    if repo.join(".git").is_dir() && crate::git::available() {
        let mut before = Vec::new();
        files_under(&repo, &mut before);
        for p in &before {
            touched.before(p);
        }
        let written = crate::git::tick_commit(&repo, &mut rng, now_ms / 1000)?;
        let mut after = Vec::new();
        files_under(&repo, &mut after);
        for p in after.iter().chain(&written) {
            // New paths were absent before the commit.
            touched.0.entry(p.clone()).or_insert(None);
        }
    }

    Ok(touched.summary())
}
