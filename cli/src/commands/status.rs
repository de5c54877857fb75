//! `clawback status`: is the backup healthy? (The rule is the engine's `run::health`: the newest
//! snapshot younger than 1.5 × the schedule interval and the last run not failed.) Exit 0 when
//! healthy, 1 when not, so monitors can run it as is. `--metrics-file F` also
//! writes Prometheus textfile-collector metrics (atomically). A `backup` section in openclaw.json
//! (which OpenClaw 2026.9 rejects) gets a warning line and, with `--json`, the
//! `openclaw_backup_section` field; it does not change the exit code.

use crate::context::{self, Ctx};
use crate::ui::{human_bytes, usage};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clawback_engine::config::{parse_duration, Schedule};
use clawback_engine::run::health::{self, Newest, State};
use clawback_engine::run::runlog::RunRecord;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also write Prometheus textfile-collector metrics to this file (atomic rename)
    #[arg(long, value_name = "F")]
    pub metrics_file: Option<PathBuf>,
    /// Healthy while the newest snapshot is younger than this (default: 1.5 × the schedule interval)
    #[arg(long, value_name = "DUR")]
    pub max_age: Option<String>,
}

/// What `status` reads from the repository (the web console's home page shows it too).
pub struct Repo {
    pub location: String,
    pub last: Option<(String, DateTime<Utc>, String)>,
    pub snapshots: u64,
    pub bytes: u64,
    pub key_id: String,
    /// The repository's append-only mode holds for this run.
    pub append_only: bool,
    /// The store lets this host's credentials delete (a probe: an expired lease written and
    /// deleted); `None` when the probe itself failed.
    pub can_delete: Option<bool>,
}

/// The repository as `status` reads it, or the one line saying why it could not be read, and its
/// newest snapshot as the health rule (`run::health`) takes it: `status` and the web console's home.
pub fn read_repo_for_health(ctx: &Ctx, s: &context::Settings) -> (Option<Repo>, Option<String>, Newest) {
    health_of(ctx.open_with(s).and_then(|repo| read_open_repo(&repo)))
}

/// `read_repo_for_health` from a read already made (the web console keeps its repository open).
pub fn health_of(read: Result<Repo>) -> (Option<Repo>, Option<String>, Newest) {
    match read {
        Ok(r) => {
            let newest = Newest::Read(r.last.as_ref().map(|(_, t, _)| *t));
            (Some(r), None, newest)
        }
        Err(e) => (None, Some(crate::ui::error_line(&e)), Newest::Unreadable),
    }
}

/// What `status` reads from an open repository.
pub fn read_open_repo(repo: &clawback_engine::repo::Repository) -> Result<Repo> {
    let bytes = repo.stored_bytes().context("cannot list the repository")?;
    let snaps = repo.snapshots()?;
    let last = snaps
        .iter()
        .filter_map(|(id, sn)| {
            DateTime::parse_from_rfc3339(&sn.time)
                .ok()
                .map(|t| (id.to_hex(), t.with_timezone(&Utc), sn.hostname.clone()))
        })
        .max_by_key(|(_, t, _)| *t);
    Ok(Repo {
        location: clawback_engine::run::runlog::strip_credentials(&repo.backend().location()),
        last,
        snapshots: snaps.len() as u64,
        bytes,
        key_id: repo.key_id().to_string(),
        append_only: repo.append_only(),
        can_delete: clawback_engine::repo::append_only::probe_delete(repo.backend().as_ref()).ok(),
    })
}

/// What this host could destroy, when it could: the warning `status` shows (it does not change
/// the exit code: health is about backups being taken).
fn delete_warning(r: &Repo) -> Option<String> {
    match (r.append_only, r.can_delete) {
        (_, Some(false)) | (_, None) => None,
        (true, Some(true)) => Some(
            "the repository is append-only for clawback, but this host's credentials can delete its objects \
             directly; give this host storage credentials without delete rights"
                .into(),
        ),
        (false, Some(true)) => Some(
            "this host's repository credentials can delete snapshots; for backups the agent cannot destroy use \
             `init --append-only` or storage credentials without delete rights"
                .into(),
        ),
    }
}

fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let s = context::Settings::load(g)?;
    // A `backup` section in openclaw.json: one warning line, and a field in the JSON.
    let legacy = crate::commands::migrate::warn(g);
    let now = Utc::now();
    let schedule: Option<Schedule> = s.config.schedule();
    let max_age = match &a.max_age {
        Some(m) => {
            Some(parse_duration(m).ok_or_else(|| usage(format!("--max-age {m}: give a duration like 3h or 2d")))?)
        }
        None => None,
    };
    let log = crate::runs::run_log();
    let runs = log.read_all().unwrap_or_default();

    let (repo, repo_error, newest) = read_repo_for_health(ctx, &s);
    let h = health::assess(&runs, newest, schedule.as_ref(), max_age, now);
    let (last_run, last_success, failures) = (h.last_run, h.last_success, h.consecutive_failures);
    let (healthy, stale, failing, state) = (h.healthy, h.stale, h.failing, h.state);
    let (last_time, age_s, max_age, interval, next_due) = (h.last_time, h.age_s, h.max_age, h.interval, h.next_due);
    let anomalies = last_success.map(|r| r.anomalies.clone()).unwrap_or_default();

    if let Some(f) = &a.metrics_file {
        write_metrics(f, healthy, last_time, age_s, repo.as_ref(), last_run)?;
    }
    if g.json {
        crate::ui::print_json(&json!({
            "healthy": healthy,
            "state": state.as_str(),
            "stale": stale,
            "failing": failing,
            "consecutive_failures": failures,
            "last_snapshot": repo.as_ref().and_then(|r| r.last.as_ref()).map(|(id, t, host)| json!({
                "id": id, "short_id": &id[..8.min(id.len())], "time": t, "hostname": host,
            })),
            "age_s": age_s,
            "max_age_s": max_age.as_secs(),
            "next_due": next_due,
            "repo_bytes": repo.as_ref().map(|r| r.bytes),
            "snapshots": repo.as_ref().map(|r| r.snapshots),
            "repository": repo.as_ref().map(|r| r.location.clone()),
            "repo_error": repo_error,
            "schedule": schedule.as_ref().map(|s| s.to_string()),
            "interval_s": interval.as_secs(),
            "last_run": last_run,
            "last_success": last_success,
            "anomalies": anomalies,
            "encryption": repo.as_ref().map(|r| json!({"algorithm": "aes-256-gcm-siv", "key_id": r.key_id})),
            "run_log": log.path(),
            "openclaw_backup_section": legacy,
            "append_only": repo.as_ref().map(|r| r.append_only),
            "can_delete": repo.as_ref().and_then(|r| r.can_delete),
            "delete_warning": repo.as_ref().and_then(delete_warning),
        }));
    } else if !g.quiet {
        let verdict = match state {
            State::Healthy => "healthy".to_string(),
            State::Stale => format!("STALE: the newest snapshot is older than {}", human_age(max_age.as_secs() as i64)),
            State::Failing => format!("FAILING: the last {failures} run(s) failed"),
            State::NoBackup => "NO BACKUP yet".to_string(),
            State::Error => "ERROR: the repository cannot be read".to_string(),
        };
        println!("status:        {verdict}");
        match (repo.as_ref().and_then(|r| r.last.as_ref()), age_s) {
            (Some((id, t, host)), Some(age)) => println!(
                "last snapshot: {} from {host} at {} ({} ago)",
                &id[..8.min(id.len())],
                t.format("%Y-%m-%d %H:%M:%S UTC"),
                human_age(age)
            ),
            (None, Some(age)) => println!("last success:  {} ago (from the run log)", human_age(age)),
            _ => println!("last snapshot: none"),
        }
        match &schedule {
            Some(sch) => println!(
                "schedule:      {sch} (healthy while the newest snapshot is under {} old)",
                human_age(max_age.as_secs() as i64)
            ),
            None => println!(
                "schedule:      none configured (healthy while the newest snapshot is under {} old)",
                human_age(max_age.as_secs() as i64)
            ),
        }
        if let Some(n) = next_due {
            println!("next due:      {}", n.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        if let Some(r) = last_run {
            let mut line = format!(
                "last run:      {} at {}, {:.1}s",
                r.status.as_str(),
                r.end.format("%Y-%m-%d %H:%M:%S UTC"),
                r.duration_s
            );
            if let Some(c) = &r.counters {
                line.push_str(&format!(", {} added", human_bytes(c.bytes_added)));
            }
            if let Some(e) = &r.error {
                line.push_str(&format!(": {e}"));
            }
            println!("{line}");
        }
        match (&repo, &repo_error) {
            (Some(r), _) => println!(
                "repository:    {}, {} in {} snapshots, encrypted (AES-256-GCM-SIV)",
                r.location,
                human_bytes(r.bytes),
                r.snapshots
            ),
            (None, Some(e)) => println!("repository:    cannot be read: {e}"),
            _ => {}
        }
        if let Some(w) = repo.as_ref().and_then(delete_warning) {
            println!("warning:       {w}");
        }
        for an in &anomalies {
            println!("anomaly:       {}", an.message);
        }
    }
    Ok(if healthy { 0 } else { 1 })
}

/// Prometheus textfile-collector format, written to a temporary file beside `path` and renamed.
fn write_metrics(
    path: &Path,
    healthy: bool,
    last_time: Option<DateTime<Utc>>,
    age_s: Option<i64>,
    repo: Option<&Repo>,
    last_run: Option<&RunRecord>,
) -> Result<()> {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: Option<String>| {
        if let Some(v) = value {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"));
        }
    };
    gauge(
        "clawback_healthy",
        "1 when the newest backup is recent enough and the last run did not fail.",
        Some(u8::from(healthy).to_string()),
    );
    gauge(
        "clawback_last_success_timestamp_seconds",
        "Unix time of the newest snapshot.",
        last_time.map(|t| t.timestamp().to_string()),
    );
    gauge("clawback_backup_age_seconds", "Age of the newest snapshot.", age_s.map(|a| a.to_string()));
    gauge("clawback_repo_bytes", "Bytes the repository occupies.", repo.map(|r| r.bytes.to_string()));
    gauge("clawback_snapshots", "Snapshots in the repository.", repo.map(|r| r.snapshots.to_string()));
    gauge(
        "clawback_last_run_timestamp_seconds",
        "Unix time the last backup run ended.",
        last_run.map(|r| r.end.timestamp().to_string()),
    );
    gauge(
        "clawback_last_run_exit_code",
        "Exit code of the last backup run.",
        last_run.map(|r| r.exit_code.to_string()),
    );
    gauge(
        "clawback_last_run_duration_seconds",
        "Duration of the last backup run.",
        last_run.map(|r| format!("{:.3}", r.duration_s)),
    );
    gauge(
        "clawback_last_run_bytes_added",
        "New bytes the last backup run added.",
        last_run.and_then(|r| r.counters.as_ref()).map(|c| c.bytes_added.to_string()),
    );
    gauge(
        "clawback_last_run_anomalies",
        "Anomaly warnings of the last backup run.",
        last_run.map(|r| r.anomalies.len().to_string()),
    );
    if let Some(r) = last_run {
        out.push_str(
            "# HELP clawback_last_run_status Status of the last backup run (1 for the one it had).\n\
             # TYPE clawback_last_run_status gauge\n",
        );
        for st in ["ok", "partial", "failed"] {
            out.push_str(&format!(
                "clawback_last_run_status{{status=\"{st}\"}} {}\n",
                u8::from(r.status.as_str() == st)
            ));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| usage(format!("--metrics-file {}: not a file name", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp.{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, out).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
