//! What the web console changes: a backup started from the page (the recorded run `clawback
//! backup` makes, under the daemon's lock so a scheduled run and this one never overlap) and a
//! restore (`clawback restore`'s own path, with its safety snapshot and gateway refusal, into the
//! allowed places only). One runs at a time, in the background; its engine progress is pushed to
//! the page as server-sent events.

use super::{start_stream, Answer, Refusal, Reply, Server};
use crate::commands::{backup, restore};
use crate::context::{self, Settings};
use crate::runs;
use chrono::{DateTime, Utc};
use clawback_engine::progress::Progress;
use clawback_engine::repo::host::absolute_clean;
use clawback_engine::run::interrupt::Interrupt;
use clawback_engine::run::planner::DaemonLock;
use clawback_engine::run::retention::Pruner;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// The operation running now, if any (one at a time: a backup and a restore never overlap).
struct Busy {
    what: &'static str,
    /// Counts the jobs started, so the page knows the outcome it reads is its own.
    job: u64,
    since: DateTime<Utc>,
    progress: Arc<Progress>,
}

#[derive(Default)]
struct State {
    busy: Option<Busy>,
    jobs: u64,
    /// How the last backup and the last restore started from the page ended, by kind.
    last: BTreeMap<&'static str, Value>,
}

#[derive(Default)]
pub struct Jobs {
    state: Mutex<State>,
}

/// The counters as the page shows them: files, bytes, rate and ETA.
fn progress_json(b: &Busy) -> Value {
    let p = &b.progress;
    let elapsed = (Utc::now() - b.since).num_milliseconds().max(1) as f64 / 1000.0;
    let done = p.bytes_done.load(Relaxed);
    let total = p.bytes_total.load(Relaxed);
    let known = p.total_known.load(Relaxed);
    let rate = done as f64 / elapsed;
    let eta = (known && rate > 0.0 && total >= done).then(|| (total - done) as f64 / rate);
    json!({
        "what": b.what,
        "job": b.job,
        "since": b.since,
        "phase": p.phase(),
        "unit": p.unit(),
        "files_done": p.files_done.load(Relaxed),
        "files_total": known.then(|| p.files_total.load(Relaxed)),
        "bytes_done": done,
        "bytes_total": known.then_some(total),
        "uploaded": p.upload.done.load(Relaxed),
        "elapsed_s": elapsed,
        "rate_bytes_s": rate,
        "eta_s": eta,
    })
}

/// A job's outcome as the page gets it: `ok`, the exit code, the answer or the error line, and
/// the progress as it stood at the end.
fn outcome(result: &anyhow::Result<(i32, Value)>) -> Value {
    match result {
        Ok((code, v)) => json!({"ok": *code == 0 || *code == 3, "exit_code": code, "result": v, "error": null}),
        Err(e) => json!({
            "ok": false, "exit_code": crate::ui::exit_code(e), "result": null, "error": crate::ui::error_line(e),
        }),
    }
}

impl Jobs {
    /// What runs of kind `what` (`backup`, `restore`) and how the last one ended.
    pub fn state(&self, what: &str) -> Value {
        let st = self.state.lock();
        json!({
            "running": st.busy.as_ref().filter(|b| b.what == what).map(progress_json),
            "last": st.last.get(what),
        })
    }

    /// Marks `what` as running, or says what already is: the job's number and counters.
    fn begin(&self, what: &'static str) -> Result<(u64, Arc<Progress>), Refusal> {
        let mut st = self.state.lock();
        if let Some(b) = &st.busy {
            return Err(Refusal::new(
                409,
                format!(
                    "a {} is already running (started {}); wait for it to finish",
                    b.what,
                    b.since.format("%H:%M:%S UTC")
                ),
            ));
        }
        st.jobs += 1;
        let job = st.jobs;
        let progress = Arc::new(Progress::default());
        st.busy = Some(Busy { what, job, since: Utc::now(), progress: progress.clone() });
        Ok((job, progress))
    }

    /// Ends the running job; with `outcome`, it is kept as the last of its kind, with its final
    /// progress.
    fn end(&self, outcome: Option<Value>) {
        let mut st = self.state.lock();
        let Some(b) = st.busy.take() else { return };
        if let Some(mut v) = outcome {
            v["job"] = json!(b.job);
            v["progress"] = progress_json(&b);
            st.last.insert(b.what, v);
        }
    }
}

fn read_only(s: &Server, what: &str) -> Result<(), Refusal> {
    match s.opts.read_only {
        true => {
            Err(Refusal::new(403, format!("the console is read-only (--read-only); {what} with the clawback command")))
        }
        false => Ok(()),
    }
}

/// Starts a backup like `clawback backup` (hooks, run log, notifications, retention), in the
/// background; `events` follows it.
pub fn start_backup<'s>(s: &'s Server<'s>, scope: &'s std::thread::Scope<'s, '_>) -> Answer {
    read_only(s, "back up")?;
    let (job, progress) = s.jobs.begin("backup")?;
    // The daemon holds this lock for as long as it runs: a backup from the page waits for no
    // schedule, it is refused while a daemon could start one.
    let lock = match DaemonLock::acquire(&runs::clawback_dir()) {
        Ok(l) => l,
        Err(e) => {
            s.jobs.end(None);
            return Err(Refusal::new(409, format!("cannot back up from the page: {e}")));
        }
    };
    scope.spawn(move || {
        let interrupt = Interrupt::new();
        let how = runs::How { interrupt: &interrupt, trigger: None, pruner: Pruner::Backup, progress: Some(progress) };
        let a = backup::Args::default();
        let rec =
            runs::record(&s.ctx.g, false, &how, Box::new(|_, code| code), |r| backup::recorded(s.ctx, &a, &how, r));
        drop(lock);
        let record = serde_json::to_value(&rec.record).unwrap_or(Value::Null);
        let mut v = outcome(&rec.result.map(|code| (code, Value::Null)));
        v["record"] = record;
        s.jobs.end(Some(v));
    });
    Ok(Reply::Json(json!({ "started": true, "job": job })))
}

/// The progress of the running `what` (backup or restore) as server-sent events: `progress` a
/// few times a second while it runs, then `done` with how the last one ended (`idle` when none
/// ever ran).
pub fn events(s: &Server, rq: tiny_http::Request, what: &str) {
    let mut w = start_stream(rq, "text/event-stream", &[]);
    let send = |w: &mut Box<dyn Write + Send>, event: &str, data: &Value| -> bool {
        write!(w, "event: {event}\ndata: {data}\n\n").and_then(|_| w.flush()).is_ok()
    };
    loop {
        let (running, last) = {
            let st = s.jobs.state.lock();
            (st.busy.as_ref().filter(|b| b.what == what).map(progress_json), st.last.get(what).cloned())
        };
        match (running, last) {
            (Some(p), _) => {
                if !send(&mut w, "progress", &p) {
                    break;
                }
            }
            (None, Some(last)) => {
                send(&mut w, "done", &json!({ "last": last }));
                break;
            }
            (None, None) => {
                send(&mut w, "idle", &json!({ "last": null }));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[derive(serde::Deserialize)]
struct RestoreRequest {
    snapshot: String,
    /// A folder to restore into; absent: in place, to the original paths.
    target: Option<String>,
    /// `--only` kinds: workspace, agent:ID, memory, sessions, cron, config...
    #[serde(default)]
    only: Vec<String>,
    /// Selected files and folders, by their original paths.
    #[serde(default)]
    paths: Vec<String>,
}

/// `p` with its longest existing ancestor resolved (symlinks followed), so a link cannot lead
/// out of an allowed folder.
fn resolved(p: &Path) -> PathBuf {
    let mut base = p.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(c) = base.canonicalize() {
            return rest.iter().rev().fold(c, |acc, r| acc.join(r));
        }
        match (base.file_name().map(|n| n.to_os_string()), base.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n);
                base = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

fn inside(p: &Path, places: &[PathBuf]) -> bool {
    let p = resolved(p);
    places.iter().any(|a| p.starts_with(resolved(a)))
}

/// Starts a restore like `clawback restore`, to an allowed target folder or in place, in the
/// background; what is refused (a target outside the allowed places, a snapshot not found) is
/// refused here, before it starts. `events` follows it.
pub fn start_restore<'s>(s: &'s Server<'s>, scope: &'s std::thread::Scope<'s, '_>, body: &str) -> Answer {
    read_only(s, "restore")?;
    let req: RestoreRequest =
        serde_json::from_str(body).map_err(|e| Refusal::new(400, format!("not a restore request: {e}")))?;
    let allowed = &s.opts.allow_targets;
    let list = || allowed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let target = match req.target.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => {
            let t = absolute_clean(Path::new(t)).map_err(|e| Refusal::new(400, e.to_string()))?;
            if !inside(&t, allowed) {
                return Err(Refusal::new(
                    403,
                    format!(
                        "restore target {} is outside the allowed places ({}); choose a folder there, or start \
                         `clawback ui --allow-target DIR`",
                        t.display(),
                        list()
                    ),
                ));
            }
            Some(t)
        }
        None => None,
    };
    let mut only = req.only.clone();
    for p in &req.paths {
        only.push(absolute_clean(Path::new(p)).map_err(|e| Refusal::new(400, e.to_string()))?.display().to_string());
    }
    let st = Settings::load(&s.ctx.g)?;
    let (_, snap) = s.repo()?.find_snapshot(&req.snapshot, |_| true)?;
    if target.is_none() {
        // In place writes to the snapshot's own paths: only where OpenClaw lives here.
        let layout = context::layout(&s.ctx.g, &st);
        let mut places = layout.roots();
        places.extend(layout.workspaces.iter().map(|w| w.path.clone()));
        places.push(layout.state_dir.clone());
        places.extend(allowed.iter().cloned());
        let written: Vec<PathBuf> = if req.paths.is_empty() {
            snap.paths.iter().map(PathBuf::from).collect()
        } else {
            req.paths.iter().map(PathBuf::from).collect()
        };
        if let Some(out) = written.iter().find(|p| !inside(p, &places)) {
            return Err(Refusal::new(
                403,
                format!(
                    "restoring in place would write {}, outside this machine's OpenClaw home; restore to a folder \
                     instead",
                    out.display()
                ),
            ));
        }
    }
    let (job, progress) = s.jobs.begin("restore")?;
    let a = restore::Args { snapshot: Some(req.snapshot.clone()), target: target.clone(), only, ..Default::default() };
    scope.spawn(move || {
        let done = restore::execute(s.ctx, &a, &progress).map(|d| {
            let r = &d.r;
            let code = if r.errors.is_empty() { 0 } else { 1 };
            let v = json!({
                "snapshot_id": d.id.to_hex(),
                "target": target,
                "in_place": target.is_none(),
                "files": r.files, "dirs": r.dirs, "bytes": r.bytes, "errors": r.errors,
                "safety_snapshot_id": r.safety_snapshot.map(|i| i.to_hex()),
                "undo": d.undo,
            });
            (code, v)
        });
        s.jobs.end(Some(outcome(&done)));
    });
    Ok(Reply::Json(json!({ "started": true, "job": job })))
}
