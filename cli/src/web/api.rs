//! The web console's read-only API: health (what `status` reports), the timeline (snapshots, the
//! run log, the configured retention's `forget` plan), a snapshot's tree, a file shown as text,
//! Markdown, a conversation or table counts, a file's versions and diffs, and downloads (`dump`).
//! Every answer comes from the engine; nothing from the config but the schedule and retention
//! rules reaches the page (never a password, key or credential).

use super::{render, start_stream, Answer, Refusal, Reply, Server};
use crate::context::Settings;
use chrono::Utc;
use clawback_engine::commands::dump::{dump_file, dump_tar, find, Found};
use clawback_engine::commands::forget::{self, Filter, GroupBy, Policy};
use clawback_engine::commands::history::{self, Comparison};
use clawback_engine::format::id::SnapshotId;
use clawback_engine::format::snapshot::Snapshot;
use clawback_engine::format::tree::NodeKind;
use clawback_engine::repo::host::absolute_clean;
use clawback_engine::repo::Repository;
use clawback_engine::run::health;
use clawback_engine::run::runlog::strip_credentials;
use clawback_engine::run::sizelog::SizeLog;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tiny_http::Request;

/// The largest file shown in the page (bigger ones are downloaded).
const SHOW_LIMIT: u64 = 4 << 20;

/// A request's query string, decoded.
pub struct Query(BTreeMap<String, String>);

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn need(&self, k: &str) -> Result<&str, Refusal> {
        self.get(k).filter(|v| !v.is_empty()).ok_or_else(|| Refusal::new(400, format!("missing parameter {k}")))
    }
    fn path(&self) -> Result<PathBuf, Refusal> {
        Ok(absolute_clean(Path::new(self.need("path")?))?)
    }
}

fn settings(s: &Server) -> Result<Settings, Refusal> {
    Ok(Settings::load(&s.ctx.g)?)
}

fn open(s: &Server) -> Result<std::sync::Arc<Repository>, Refusal> {
    Ok(s.repo()?)
}

fn snapshot(repo: &Repository, spec: &str) -> Result<(SnapshotId, Snapshot), Refusal> {
    Ok(repo.find_snapshot(spec, |_| true)?)
}

/// What the page needs to know about the server itself.
pub fn info(s: &Server) -> Answer {
    Ok(Reply::Json(json!({
        "read_only": s.opts.read_only,
        "allowed_targets": s.opts.allow_targets,
        "default_target": s.opts.allow_targets.first(),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// Health at a glance: the rule `status` applies (engine `run::health`), the last runs, anomalies.
pub fn status(s: &Server) -> Answer {
    let st = settings(s)?;
    let schedule = st.config.schedule();
    let runs = crate::runs::run_log().read_all().unwrap_or_default();
    let read = s.repo().and_then(|r| crate::commands::status::read_open_repo(&r));
    let (repo, repo_error, newest) = crate::commands::status::health_of(read);
    let h = health::assess(&runs, newest, schedule.as_ref(), None, Utc::now());
    let failures: Vec<_> = runs.iter().rev().filter(|r| !r.status.succeeded()).take(5).collect();
    let anomalies: Vec<_> = runs.iter().rev().filter(|r| !r.anomalies.is_empty()).take(5).collect();
    Ok(Reply::Json(json!({
        "state": h.state.as_str(),
        "healthy": h.healthy,
        "consecutive_failures": h.consecutive_failures,
        "last_snapshot": repo.as_ref().and_then(|r| r.last.as_ref()).map(|(id, t, host)| json!({
            "id": id, "time": t, "hostname": host,
        })),
        "age_s": h.age_s,
        "max_age_s": h.max_age.as_secs(),
        "next_due": h.next_due,
        "schedule": schedule.as_ref().map(|s| s.to_string()),
        "last_run": h.last_run,
        "repository": repo.as_ref().map(|r| strip_credentials(&r.location)),
        "repo_bytes": repo.as_ref().map(|r| r.bytes),
        "snapshots": repo.as_ref().map(|r| r.snapshots),
        "repo_error": repo_error,
        "encryption": repo.as_ref().map(|r| json!({"algorithm": "aes-256-gcm-siv", "key_id": r.key_id})),
        "recent_failures": failures,
        "recent_anomalies": anomalies,
    })))
}

/// Snapshots over time (per host and group), the run log, and what the configured retention
/// would keep and forget (the `forget --dry-run` plan).
pub fn timeline(s: &Server) -> Answer {
    let st = settings(s)?;
    let repo = open(s)?;
    let snaps = repo.snapshots()?;
    let runs = crate::runs::run_log().read_all().unwrap_or_default();
    let (policy, note) = Policy::from_config(&st.config.retention)?;
    let (keep, remove, reasons) = match &policy {
        Some(p) => {
            // The grouping the retention after each backup uses (engine `commands::retention`).
            let by = GroupBy { host: true, paths: true, tags: false };
            let plan = forget::plan(&snaps, &Filter::default(), by, p, Utc::now(), &chrono::Local);
            let reasons: BTreeMap<String, Vec<String>> =
                plan.reasons.iter().map(|(id, r)| (id.to_hex(), r.clone())).collect();
            let hex = |v: Vec<SnapshotId>| v.iter().map(|i| i.to_hex()).collect::<BTreeSet<_>>();
            (hex(plan.keep()), hex(plan.remove()), reasons)
        }
        None => Default::default(),
    };
    let mut list: Vec<Value> = snaps
        .iter()
        .map(|(id, sn)| {
            let hex = id.to_hex();
            let verdict = if remove.contains(&hex) {
                "forget"
            } else if keep.contains(&hex) {
                "keep"
            } else {
                "none"
            };
            json!({
                "id": hex, "short_id": id.short(), "time": sn.time, "hostname": sn.hostname,
                "group": sn.group, "paths": sn.paths, "tags": sn.tags, "summary": sn.summary,
                "retention": verdict, "reasons": reasons.get(&hex),
            })
        })
        .collect();
    list.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "start": r.start, "end": r.end, "status": r.status.as_str(), "duration_s": r.duration_s,
                "bytes_added": r.counters.as_ref().map(|c| c.bytes_added),
                "bytes_stored": r.counters.as_ref().map(|c| c.bytes_stored),
                "snapshot_id": r.snapshot_id, "error": r.error, "host": r.host, "trigger": r.trigger,
                "anomalies": r.anomalies.len(),
            })
        })
        .collect();
    Ok(Reply::Json(json!({
        "snapshots": list,
        "runs": runs,
        "sizes": sizes(&repo),
        "retention": { "configured": policy.is_some(), "note": note, "keep": keep.len(), "forget": remove.len() },
    })))
}

/// The repository's size over time: what the size log recorded after each backup and prune of
/// this repository, then its size now (so the plot ends where `status` stands, also after a
/// prune run elsewhere).
fn sizes(repo: &Repository) -> Vec<Value> {
    let location = strip_credentials(&repo.backend().location());
    let log = SizeLog::in_dir(&crate::runs::clawback_dir());
    let mut out: Vec<Value> = log
        .read(&location)
        .unwrap_or_default()
        .iter()
        .map(|p| json!({"time": p.time, "bytes": p.bytes, "listed": p.listed, "event": p.event, "snapshot_id": p.snapshot_id}))
        .collect();
    if let Ok(bytes) = repo.stored_bytes() {
        out.push(json!({"time": Utc::now(), "bytes": bytes, "listed": true, "event": "now", "snapshot_id": null}));
    }
    out
}

/// The snapshots alone, oldest first, for the pages that only choose one (browse, restore): the
/// timeline's plan, run log and sizes are not worth their time there.
pub fn snapshot_list(s: &Server) -> Answer {
    let repo = open(s)?;
    let mut snaps = repo.snapshots()?;
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    let list: Vec<Value> = snaps
        .iter()
        .map(|(id, sn)| {
            json!({
                "id": id.to_hex(), "short_id": id.short(), "time": sn.time, "hostname": sn.hostname,
                "group": sn.group, "paths": sn.paths, "tags": sn.tags,
            })
        })
        .collect();
    Ok(Reply::Json(json!({ "snapshots": list })))
}

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Dir => "dir",
        NodeKind::File => "file",
        NodeKind::Symlink => "symlink",
    }
}

/// One folder of a snapshot: its entries with sizes and times. Without `path`, the snapshot's
/// backed-up paths.
pub fn tree(s: &Server, q: &Query) -> Answer {
    let repo = open(s)?;
    let (id, snap) = snapshot(&repo, q.need("snapshot")?)?;
    let path = match q.get("path").filter(|p| !p.is_empty()) {
        Some(p) => absolute_clean(Path::new(p))?,
        None => {
            return Ok(Reply::Json(json!({
                "snapshot": id.to_hex(), "time": snap.time, "hostname": snap.hostname, "path": null,
                "entries": snap.paths.iter().map(|p| json!({"path": p, "name": p, "kind": "dir"})).collect::<Vec<_>>(),
            })))
        }
    };
    let mut entries = Vec::new();
    // One level only (the page opens folders one at a time; `ls` walks whole subtrees).
    let dir_tree = match find(&repo, &snap, &path)? {
        Found::Root(t) => t,
        Found::Node(n) if n.kind == NodeKind::Dir => match &n.subtree {
            Some(t) => repo.load_tree(t)?,
            None => return Err(Refusal::new(500, format!("{} has no tree in the snapshot", path.display()))),
        },
        Found::Node(_) => return Err(Refusal::new(400, format!("{} is not a folder in the snapshot", path.display()))),
    };
    for n in &dir_tree.nodes {
        let size = if n.kind == NodeKind::Dir { None } else { Some(n.size) };
        entries.push(json!({
            "name": n.name_lossy(),
            "path": path.join(n.name_lossy()),
            "kind": kind_name(n.kind),
            "size": size,
            "mtime": chrono::DateTime::from_timestamp_nanos(n.mtime_ns),
        }));
    }
    Ok(Reply::Json(json!({
        "snapshot": id.to_hex(), "time": snap.time, "hostname": snap.hostname, "path": path, "entries": entries,
    })))
}

/// A file shown in the page: Markdown rendered (no raw HTML), JSONL as a conversation, SQLite as
/// table row counts, other text as is; binary files are offered for download only.
pub fn file(s: &Server, q: &Query) -> Answer {
    let repo = open(s)?;
    let (id, snap) = snapshot(&repo, q.need("snapshot")?)?;
    let path = q.path()?;
    let bytes = history::read_file(&repo, &snap, &path, SHOW_LIMIT)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let base = json!({"snapshot": id.to_hex(), "path": path, "size": bytes.len()});
    let mut v = base;
    let o = v.as_object_mut().expect("object");
    if bytes.starts_with(b"SQLite format 3\0") {
        let dir = tempfile::tempdir().map_err(|e| Refusal::new(500, format!("cannot make a temporary folder: {e}")))?;
        let db = dir.path().join("view.sqlite");
        std::fs::write(&db, &bytes).map_err(|e| Refusal::new(500, format!("cannot write {}: {e}", db.display())))?;
        let rows = clawback_engine::openclaw::sqlite::table_rows(&db).map_err(|e| Refusal::new(500, e))?;
        o.insert("kind".into(), "sqlite".into());
        o.insert("tables".into(), rows.iter().map(|(n, c)| json!({"table": n, "rows": c})).collect());
        return Ok(Reply::Json(v));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        o.insert("kind".into(), "binary".into());
        return Ok(Reply::Json(v));
    };
    if name.ends_with(".md") || name.ends_with(".markdown") {
        o.insert("kind".into(), "markdown".into());
        o.insert("html".into(), render::markdown(&text).into());
    } else if name.ends_with(".jsonl") {
        o.insert("kind".into(), "conversation".into());
        o.insert("messages".into(), render::conversation(&text).into());
    } else {
        o.insert("kind".into(), "text".into());
    }
    o.insert("text".into(), text.into());
    Ok(Reply::Json(v))
}

/// The versions of one file across every snapshot, oldest first (the `history` command's engine).
pub fn versions(s: &Server, q: &Query) -> Answer {
    let repo = open(s)?;
    let path = q.path()?;
    let mut snaps = repo.snapshots()?;
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    let h = history::history(&repo, &snaps, &path)?;
    let v: Vec<_> = h
        .versions
        .iter()
        .filter(|v| v.kind == "file")
        .map(|v| {
            json!({
                "snapshot_id": v.first_snapshot.to_hex(), "time": v.first_time, "size": v.size,
                "mtime_ns": v.mtime_ns, "snapshots": v.snapshots, "content_id": v.content_id,
                "last_snapshot_id": v.last_snapshot.to_hex(), "last_time": v.last_time,
            })
        })
        .collect();
    Ok(Reply::Json(json!({ "path": path, "versions": v })))
}

/// What changed in one file between two snapshots: `history`'s comparison (a unified diff for
/// text, lines appended for a transcript, rows per table for a database, a summary otherwise).
pub fn diff(s: &Server, q: &Query) -> Answer {
    let repo = open(s)?;
    let path = q.path()?;
    let (from_id, from) = snapshot(&repo, q.need("from")?)?;
    let (to_id, to) = snapshot(&repo, q.need("to")?)?;
    let node = |sn: &Snapshot| -> Result<_, Refusal> {
        match find(&repo, sn, &path)? {
            Found::Node(n) => Ok(n),
            _ => Err(Refusal::new(400, format!("{} is not a file in the snapshot", path.display()))),
        }
    };
    let (a, b) = (node(&from)?, node(&to)?);
    let p = path.display();
    let c = history::compare(
        &repo,
        &a,
        &b,
        &path,
        &format!("{p} @ {}", from_id.short()),
        &format!("{p} @ {}", to_id.short()),
    )?;
    let text = match &c {
        Comparison::Same => String::new(),
        Comparison::Text { patch, .. } => patch.clone(),
        Comparison::Jsonl { lines_appended, patch: Some(patch), .. } => {
            format!("{lines_appended} line(s) appended; earlier lines changed:\n{patch}")
        }
        Comparison::Jsonl { lines_appended, .. } => format!("{lines_appended} line(s) appended, none changed\n"),
        Comparison::Sqlite { tables } => tables
            .iter()
            .map(|t| {
                let n = |r: Option<u64>| r.map_or_else(|| "-".to_string(), |r| r.to_string());
                format!("{}: {} -> {} rows\n", t.table, n(t.rows_before), n(t.rows_after))
            })
            .collect(),
        Comparison::Binary { size_before, size_after, chunks_shared, chunks_after, .. } => {
            format!("binary: {size_before} -> {size_after} bytes, {chunks_shared} of {chunks_after} chunks shared\n")
        }
    };
    Ok(Reply::Json(
        json!({ "path": path, "from": from_id.to_hex(), "to": to_id.to_hex(), "comparison": c, "diff": text }),
    ))
}

/// A file as it is, or a folder (or a file, with `format=tar`) as tar or tar.gz: `dump`'s engine,
/// streamed.
pub fn download(s: &Server, q: &Query, rq: Request) {
    let prepared = (|| -> Result<_, Refusal> {
        let repo = open(s)?;
        let (_, snap) = snapshot(&repo, q.need("snapshot")?)?;
        let path = q.path()?;
        let found = find(&repo, &snap, &path)?;
        Ok((repo, snap, path, found))
    })();
    let (repo, snap, path, found) = match prepared {
        Ok(x) => x,
        Err(r) => return super::respond_json(rq, r.status, &json!({ "error": r.error })),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "snapshot".into());
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let format = q.get("format").unwrap_or("");
    let attach = |ext: &str| vec![("Content-Disposition", format!("attachment; filename=\"{name}{ext}\""))];
    match (&found, format) {
        (Found::Node(n), "" | "file") if n.kind == NodeKind::File => {
            let mut w = start_stream(rq, "application/octet-stream", &attach(""));
            let _ = dump_file(&repo, n, &path, &mut w);
        }
        (_, "tar.gz") => {
            let w = start_stream(rq, "application/gzip", &attach(".tar.gz"));
            let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            if dump_tar(&repo, &snap, &path, &mut gz).is_ok() {
                let _ = gz.finish();
            }
        }
        _ => {
            let w = start_stream(rq, "application/x-tar", &attach(".tar"));
            let _ = dump_tar(&repo, &snap, &path, w);
        }
    }
}
