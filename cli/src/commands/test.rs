//! `clawback test` (alias `doctor`): checks each piece a backup needs and prints a ✓ or ✗ line per
//! check, with the fix for each ✗; exit 1 on any ✗.
//!
//! The checks: the config loads; the storage answers and lets clawback list, write, read back and
//! delete a scratch object (under `locks/`, where clawback's own short-lived objects live); the
//! password opens the repository; a backup and restore round trip of a small scratch folder; the
//! schedule is installed; recent runs in the run log succeeded. The round trip runs in a throwaway
//! repository in a temporary folder, removed afterwards: it exercises this build's whole pipeline
//! (chunking, encryption, packing, restore) without adding snapshots to the real repository, while
//! the storage probe proves the real storage takes writes and deletes.

use crate::context;
use crate::runs::error_line;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::commands::restore::{restore, RestoreOptions};
use clawback_engine::openclaw::Env;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use clawback_engine::runlog::{RunLog, RunStatus};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Leave out the schedule check (setup uses it when no schedule is installed yet)
    #[arg(long, hide = true)]
    pub no_schedule_check: bool,
}

/// One check's outcome. `warning`: shown with `!`, not a failure (no schedule configured).
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check { name, ok: true, detail: detail.into(), fix: None, warning: false }
}
fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, ok: false, detail: detail.into(), fix: Some(fix.into()), warning: false }
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    let mut checks = checks(g);
    if a.no_schedule_check {
        checks.retain(|c| c.name != "schedule");
    }
    let failed = checks.iter().any(|c| !c.ok);
    if g.json {
        crate::ui::print_json(&serde_json::to_value(&checks)?);
    } else {
        for c in &checks {
            let mark = if !c.ok {
                "✗"
            } else if c.warning {
                "!"
            } else {
                "✓"
            };
            println!("{mark} {}: {}", c.name, c.detail);
            if let Some(f) = &c.fix {
                println!("    fix: {f}");
            }
        }
        if failed {
            eprintln!("clawback: {} of {} checks failed", checks.iter().filter(|c| !c.ok).count(), checks.len());
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Every check, in order.
pub fn checks(g: &GlobalArgs) -> Vec<Check> {
    let mut out = Vec::new();
    let env = Env::from_process();
    let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").map(PathBuf::from));
    let (settings, config_check) = match clawback_engine::config::load(&env, explicit.as_deref()) {
        Ok(l) => {
            let files: Vec<String> = l.sources.iter().map(|p| p.display().to_string()).collect();
            let mut detail =
                if files.is_empty() { "no config file; defaults apply".to_string() } else { files.join(", ") };
            if !l.warnings.is_empty() {
                detail.push_str(&format!(" ({} warnings: {})", l.warnings.len(), l.warnings.join("; ")));
            }
            (Some(context::Settings { env: Env::from_process(), config: l.config }), pass("config", detail))
        }
        Err(e) => (
            None,
            fail(
                "config",
                e.to_string(),
                "correct the file named above (JSON5; `clawback setup --force` writes a new one)",
            ),
        ),
    };
    out.push(config_check);
    match settings {
        Some(s) => {
            out.extend(repository_checks(g, &s));
            out.push(round_trip());
            out.push(schedule_check(g, &s));
            out.push(runs_check(g, &s));
        }
        None => {
            let skipped = |name| fail(name, "not checked: the config does not load", "fix the config first");
            out.push(skipped("storage"));
            out.push(skipped("key"));
            out.push(round_trip());
            out.push(skipped("schedule"));
            out.push(skipped("recent runs"));
        }
    }
    out
}

/// Storage reachable with the permissions backups need, then the key.
fn repository_checks(g: &GlobalArgs, s: &context::Settings) -> Vec<Check> {
    let res = match context::resolve(g, s) {
        Ok(r) => r,
        Err(e) => {
            return vec![
                fail("storage", error_line(&e), "set --repo/CLAWBACK_REPO or the config's storage (`clawback setup`)"),
                fail("key", "not checked: no storage", "fix the storage first"),
            ]
        }
    };
    let be = match context::backend(&res.location) {
        Ok(b) => b,
        Err(e) => {
            return vec![
                fail("storage", error_line(&e), "check the repository location and credentials"),
                fail("key", "not checked: no storage", "fix the storage first"),
            ]
        }
    };
    let loc = be.location();
    if !context::exists(be.as_ref()) {
        // Tell "no repository" from "cannot reach it".
        let why = match be.read(Kind::Config, "config") {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => e.to_string(),
            _ => "no repository there".to_string(),
        };
        return vec![
            fail(
                "storage",
                format!("{loc}: {why}"),
                "create it with `clawback init` (or `clawback setup`), or point --repo/CLAWBACK_REPO at the right place",
            ),
            fail("key", "not checked: no repository", "create the repository first"),
        ];
    }
    let storage = match probe(be.as_ref()) {
        Ok(()) => pass("storage", format!("{loc}: listed, wrote, read back and deleted a scratch object")),
        Err(e) => fail(
            "storage",
            format!("{loc}: {e}"),
            "give clawback's credentials list, read, write and delete rights on the repository (bucket policy or folder permissions)",
        ),
    };
    let key = match context::password(g, s, &res, false)
        .and_then(|pw| Ok(Repository::open(be.clone(), &pw, &context::cache_options(g))?))
    {
        Ok(repo) => {
            let n = repo.snapshots().map(|v| v.len()).unwrap_or(0);
            pass("key", format!("the password opens the repository ({n} snapshots)"))
        }
        Err(e) => fail(
            "key",
            error_line(&e),
            "give the repository's password: CLAWBACK_PASSWORD, CLAWBACK_PASSWORD_FILE, --password-file, or the config's encryption.keyFile / passwordCommand",
        ),
    };
    vec![storage, key]
}

/// List, write, read back and delete a scratch object under `locks/`.
fn probe(be: &dyn Backend) -> std::result::Result<(), String> {
    be.list(Kind::Lock).map_err(|e| format!("cannot list locks/: {e}"))?;
    let mut r = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut r))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let name = format!("clawback-test-{}", hex::encode(r));
    let data = format!("clawback test probe {}\n", hex::encode(r)).into_bytes();
    be.write(Kind::Lock, &name, &data).map_err(|e| format!("cannot write locks/{name}: {e}"))?;
    let back = be.read(Kind::Lock, &name);
    let deleted = be.delete(Kind::Lock, &name);
    match back {
        Ok(b) if b == data => {}
        Ok(_) => return Err(format!("locks/{name} read back different bytes")),
        Err(e) => return Err(format!("cannot read back locks/{name}: {e}")),
    }
    deleted.map_err(|e| format!("cannot delete locks/{name}: {e}"))
}

/// A backup and restore of a small scratch folder through a throwaway repository.
fn round_trip() -> Check {
    const NAME: &str = "round trip";
    match round_trip_in(&std::env::temp_dir()) {
        Ok(d) => pass(NAME, d),
        Err(e) => fail(
            NAME,
            e,
            "make the temporary folder writable ($TMPDIR) and check free space; if it persists, report it as a bug",
        ),
    }
}

fn round_trip_in(tmp: &Path) -> std::result::Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix("clawback-test-")
        .tempdir_in(tmp)
        .map_err(|e| format!("cannot create a scratch folder in {}: {e}", tmp.display()))?;
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("memory")).map_err(|e| err("cannot create the scratch folder", &e))?;
    let mut noise = vec![0u8; 256 * 1024];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut noise))
        .map_err(|e| err("cannot read /dev/urandom", &e))?;
    let files: Vec<(PathBuf, Vec<u8>)> = vec![
        (src.join("MEMORY.md"), b"# memory\nclawback test\n".to_vec()),
        (src.join("memory/2026-01-01.md"), b"a day\n".repeat(1000)),
        (src.join("blob.bin"), noise),
    ];
    for (p, d) in &files {
        std::fs::write(p, d).map_err(|e| err("cannot write the scratch files", &e))?;
    }
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("repo")));
    let pw = Secret(b"clawback-test-scratch".to_vec());
    let mut opts = InitOptions::default();
    opts.kdf.m_cost = 1024;
    opts.kdf.t_cost = 1;
    Repository::init(be.clone(), &pw, &opts).map_err(|e| err("init of the scratch repository", &e))?;
    let repo = Repository::open(be, &pw, &CacheOptions { dir: None, disabled: true })
        .map_err(|e| err("opening the scratch repository", &e))?;
    let bo = BackupOptions { paths: vec![src.clone()], tags: vec!["clawback-test".into()], ..Default::default() };
    let r = backup(&repo, &bo, &Progress::default()).map_err(|e| err("backup", &e))?;
    let id = r.snapshot_id.ok_or("the backup wrote no snapshot")?;
    let (_, snap) = repo.find_snapshot(&id.to_hex(), |_| true).map_err(|e| err("reading the snapshot", &e))?;
    let target = dir.path().join("restore");
    let ro = RestoreOptions { target: target.clone(), verify: true, ..Default::default() };
    restore(&repo, &snap, &ro, &Progress::default()).map_err(|e| err("restore", &e))?;
    let mut bytes = 0usize;
    for (p, d) in &files {
        let back = target.join(p.strip_prefix("/").unwrap_or(p));
        let got = std::fs::read(&back).map_err(|e| err(&format!("reading restored {}", back.display()), &e))?;
        if &got != d {
            return Err(format!("restored {} differs from what was backed up", back.display()));
        }
        bytes += d.len();
    }
    Ok(format!("backed up and restored {} files ({bytes} bytes) in a scratch repository, identical", files.len()))
}

/// The schedule: none configured is a warning; configured but not installed is a ✗.
fn schedule_check(g: &GlobalArgs, s: &context::Settings) -> Check {
    const NAME: &str = "schedule";
    let Some(sched) = s.config.schedule.clone() else {
        return Check {
            name: NAME,
            ok: true,
            detail: "no schedule configured: backups run only when started by hand".into(),
            fix: Some("set `schedule` in the config (e.g. \"2h\"), then `clawback schedule install --systemd`".into()),
            warning: true,
        };
    };
    let layout = context::layout(&GlobalArgs { quiet: true, ..g.clone() }, s);
    match installed_schedule(&layout.state_dir) {
        Some(how) => pass(NAME, format!("every {sched}, installed: {how}")),
        None => fail(
            NAME,
            format!("{sched} configured, but no systemd timer, crontab line or OpenClaw cron job runs clawback"),
            "clawback schedule install --systemd (or --cron, or --openclaw); or keep `clawback daemon` running",
        ),
    }
}

/// Where a clawback schedule is installed, if anywhere: a systemd user timer, a crontab line, or
/// an OpenClaw cron job.
fn installed_schedule(state_dir: &Path) -> Option<String> {
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| clawback_engine::repo::home_dir().join(".config"));
    let units = config_home.join("systemd/user");
    if let Ok(rd) = std::fs::read_dir(&units) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("clawback") && n.ends_with(".timer") {
                return Some(format!("systemd user timer {}", e.path().display()));
            }
        }
    }
    if let Ok(out) = std::process::Command::new("crontab").arg("-l").stderr(std::process::Stdio::null()).output() {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(l) = text.lines().find(|l| !l.trim_start().starts_with('#') && l.contains("clawback")) {
                return Some(format!("crontab line `{}`", l.trim()));
            }
        }
    }
    for f in ["cron/jobs.json", "cron.json"] {
        let p = state_dir.join(f);
        if std::fs::read_to_string(&p).is_ok_and(|t| t.contains("clawback")) {
            return Some(format!("OpenClaw cron job in {}", p.display()));
        }
    }
    None
}

/// The run log's last runs.
fn runs_check(g: &GlobalArgs, s: &context::Settings) -> Check {
    const NAME: &str = "recent runs";
    let layout = context::layout(&GlobalArgs { quiet: true, ..g.clone() }, s);
    let log = RunLog::for_state_dir(&layout.state_dir);
    let recent = match log.recent(5) {
        Ok(r) => r,
        Err(e) => return fail(NAME, e.to_string(), format!("remove or repair {}", log.path().display())),
    };
    let Some(last) = recent.last() else {
        return pass(NAME, format!("no runs recorded yet ({} does not exist or is empty)", log.path().display()));
    };
    let failed = recent.iter().filter(|r| r.status == RunStatus::Failed).count();
    let when = last.end.format("%Y-%m-%d %H:%M UTC");
    if last.status == RunStatus::Failed {
        let why = last.error.clone().unwrap_or_else(|| format!("exit {}", last.exit_code));
        return fail(
            NAME,
            format!("the last run ({when}) failed: {why}; {failed} of the last {} failed", recent.len()),
            "run `clawback backup` to see the error, fix it, and check `clawback status`",
        );
    }
    pass(NAME, format!("last run {when}: {}; {failed} of the last {} failed", last.status.as_str(), recent.len()))
}
