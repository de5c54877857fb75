//! OpenClaw's cron jobs ("automations"): as its gateway serves them (`openclaw cron list --json`),
//! and, when no gateway answers, as its store keeps them on disk: SQLite
//! `<state>/state/openclaw.sqlite`, table `cron_jobs` (2026.9: one row per job, `job_json` the job
//! as the gateway serves it), else the older `<state>/cron/jobs.json` (`{ "jobs": [...] }`).
//!
//! A job that runs a program has `payload: { kind: "command", argv, env, cwd }`: the gateway runs
//! `argv` itself (no shell) with its own environment plus `env`, in `cwd`. `openclaw cron add
//! --command S` stores `argv: ["sh", "-lc", S]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// One job, with what clawback looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct CronJob {
    pub id: Option<String>,
    pub name: String,
    /// The idempotent identity `cron add --declaration-key` gives a job.
    pub declaration_key: Option<String>,
    pub enabled: bool,
    /// The job's payload as stored (`kind` says which).
    pub payload: Value,
}

impl CronJob {
    /// A job from its JSON (the gateway's or the store's shape).
    pub fn from_json(v: &Value) -> Option<CronJob> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty());
        Some(CronJob {
            id: s("id").or_else(|| s("jobId")),
            name: s("name").unwrap_or_default(),
            declaration_key: s("declarationKey"),
            enabled: v.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            payload: v.get("payload").cloned().unwrap_or(Value::Null),
        })
        .filter(|j| j.id.is_some() || !j.name.is_empty())
    }

    /// Whether this is the job a `declaration_key` (or, for jobs made without one, that name)
    /// stands for.
    pub fn is(&self, key: &str) -> bool {
        match &self.declaration_key {
            Some(k) => k == key,
            None => self.name == key,
        }
    }

    /// The program a command job runs, as argv.
    pub fn command_argv(&self) -> Option<Vec<String>> {
        if self.payload.get("kind").and_then(Value::as_str) != Some("command") {
            return None;
        }
        let argv: Vec<String> = self
            .payload
            .get("argv")?
            .as_array()?
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<_>>()?;
        (!argv.is_empty()).then_some(argv)
    }

    /// The variables a command job sets on top of the gateway's environment.
    pub fn command_env(&self) -> BTreeMap<String, String> {
        self.payload
            .get("env")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
            .unwrap_or_default()
    }

    /// The folder a command job runs in, if set.
    pub fn command_cwd(&self) -> Option<String> {
        self.payload.get("cwd").and_then(Value::as_str).map(str::to_string)
    }

    /// The payload's kind (`command`, `agentTurn`, `systemEvent`, ...).
    pub fn kind(&self) -> &str {
        self.payload.get("kind").and_then(Value::as_str).unwrap_or("unknown")
    }
}

/// The jobs in `cron list --json`'s answer (`{ "jobs": [...] }`) or a bare array.
pub fn jobs_from_list(v: &Value) -> Option<Vec<CronJob>> {
    let list = v.get("jobs").and_then(Value::as_array).or_else(|| v.as_array())?;
    Some(list.iter().filter_map(CronJob::from_json).collect())
}

/// The SQLite store of this era.
pub fn sqlite_store(state: &Path) -> PathBuf {
    state.join("state").join("openclaw.sqlite")
}

/// The JSON store of earlier builds.
pub fn json_store(state: &Path) -> PathBuf {
    state.join("cron").join("jobs.json")
}

/// The jobs in the state dir's store and the file they were read from: the SQLite store when it
/// has a `cron_jobs` table, else `cron/jobs.json`. `Ok(None)`: neither exists. Reading changes
/// nothing on disk.
pub fn read_store(state: &Path) -> Result<Option<(Vec<CronJob>, PathBuf)>, String> {
    let db = sqlite_store(state);
    if db.is_file() {
        if let Some(jobs) = read_sqlite(&db)? {
            return Ok(Some((jobs, db)));
        }
    }
    let json = json_store(state);
    match std::fs::read_to_string(&json) {
        Ok(text) => {
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON ({e})", json.display()))?;
            let jobs = jobs_from_list(&v).ok_or_else(|| format!("{}: no `jobs` list", json.display()))?;
            Ok(Some((jobs, json)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", json.display())),
    }
}

/// The `cron_jobs` rows; `Ok(None)` when the database has no such table. A database with its
/// sidecars (a gateway has it open) is read read-only; one without is read as immutable, so no
/// `-wal`/`-shm` files are left behind.
fn read_sqlite(db: &Path) -> Result<Option<Vec<CronJob>>, String> {
    let open_err = |e: rusqlite::Error| format!("cannot read {}: {e}", db.display());
    let live = ["-wal", "-shm"].iter().any(|s| super::sqlite::sidecar(db, s).exists());
    let uri = format!("file:{}?{}", uri_path(db), if live { "mode=ro" } else { "immutable=1" });
    let c = Connection::open_with_flags(uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI)
        .map_err(open_err)?;
    let _ = c.busy_timeout(std::time::Duration::from_secs(5));
    let has_table: bool = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'cron_jobs'", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(open_err)?
        > 0;
    if !has_table {
        return Ok(None);
    }
    let mut st = c.prepare("SELECT job_json, enabled FROM cron_jobs ORDER BY sort_order, job_id").map_err(open_err)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(open_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(open_err)?;
    Ok(Some(
        rows.iter()
            .filter_map(|(json, enabled)| {
                let v: Value = serde_json::from_str(json).ok()?;
                // The row's column is the truth for enabled (the JSON may lag behind an edit).
                CronJob::from_json(&v).map(|j| CronJob { enabled: *enabled != 0, ..j })
            })
            .collect(),
    ))
}

/// A path as the path part of an SQLite URI (`%`, `?` and `#` escaped).
fn uri_path(p: &Path) -> String {
    let mut out = String::new();
    for b in p.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Value {
        json!({
            "id": "6af9", "name": "clawback-backup", "declarationKey": "clawback-backup", "enabled": true,
            "payload": { "kind": "command", "argv": ["/bin/clawback", "daemon", "--once"],
                         "env": { "CLAWBACK_TRIGGER": "openclaw" }, "cwd": "/home/u" },
        })
    }

    #[test]
    fn jobs_from_the_gateway_list() {
        let list = json!({ "jobs": [job(), { "id": "x", "name": "nightly", "payload": { "kind": "agentTurn" } }] });
        let jobs = jobs_from_list(&list).unwrap();
        assert_eq!(jobs.len(), 2);
        let j = &jobs[0];
        assert!(j.is("clawback-backup") && !jobs[1].is("clawback-backup"));
        assert_eq!(j.command_argv().unwrap(), ["/bin/clawback", "daemon", "--once"]);
        assert_eq!(j.command_env().get("CLAWBACK_TRIGGER").map(String::as_str), Some("openclaw"));
        assert_eq!(j.command_cwd().as_deref(), Some("/home/u"));
        assert_eq!(jobs[1].command_argv(), None);
        assert_eq!(jobs[1].kind(), "agentTurn");
        // A job made without a declaration key is known by its name.
        let old = CronJob::from_json(&json!({ "id": "y", "name": "clawback-backup" })).unwrap();
        assert!(old.is("clawback-backup"));
    }

    #[test]
    fn store_in_sqlite_then_json() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path();
        assert_eq!(read_store(state).unwrap(), None);
        std::fs::create_dir_all(state.join("cron")).unwrap();
        std::fs::write(json_store(state), json!({ "version": 1, "jobs": [job()] }).to_string()).unwrap();
        let (jobs, from) = read_store(state).unwrap().unwrap();
        assert_eq!((jobs.len(), from), (1, json_store(state)));
        std::fs::create_dir_all(state.join("state")).unwrap();
        let c = Connection::open(sqlite_store(state)).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE cron_jobs (store_key TEXT, job_id TEXT, enabled INTEGER, \
             job_json TEXT, sort_order INTEGER NOT NULL DEFAULT 0)",
        )
        .unwrap();
        c.execute("INSERT INTO cron_jobs VALUES ('k', '6af9', 0, ?1, 0)", [job().to_string()]).unwrap();
        drop(c);
        let (jobs, from) = read_store(state).unwrap().unwrap();
        assert_eq!(from, sqlite_store(state));
        assert!(!jobs[0].enabled, "the row's enabled column wins");
        assert!(!super::super::sqlite::sidecar(&from, "-shm").exists(), "reading left no sidecar behind");
    }
}
