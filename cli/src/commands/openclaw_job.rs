//! clawback's job in OpenClaw's own scheduler (`schedule install --openclaw`, `schedule remove
//! --openclaw`), made the way OpenClaw makes its own scheduled backup (`openclaw backup enable`):
//! a command job (`payload.kind: "command"`: the gateway runs the argv itself, with no shell, no
//! agent and no model) carrying a declaration key, so installing again updates the one job in place
//! instead of adding a second; removal looks the job's id up in `openclaw cron list --json` and
//! removes it by id (`openclaw cron rm <id>`), the only way OpenClaw removes a job.
//!
//! What the job runs: `clawback ... daemon --once --low-priority` by absolute path, in HOME
//! (`--command-cwd`), with the gateway's own environment plus the job's `--command-env` variables
//! (CLAWBACK_TRIGGER and this shell's OpenClaw/clawback paths). A gateway installed as a service
//! (`openclaw gateway install`) has a minimal environment (HOME, a PATH of system and user bin
//! folders, OPENCLAW_STATE_DIR...), so the install is checked under one like it (see
//! `schedule::Job::scheduled_env`). OpenClaw stops command jobs after 10 minutes unless told
//! otherwise: the job gets a day (`--timeout-seconds`), as the systemd unit does.
//!
//! Cron commands go through a running gateway. Reading the installed job for `test` falls back
//! to OpenClaw's store on disk when no gateway answers (engine: `openclaw::cron`).

use super::schedule::{say, sh_quote, split_tz, Job, JobKind};
use crate::openclaw_cli::{OpenClaw, CRON_LIMIT};
use anyhow::Result;
use clawback_engine::config::Schedule;
use clawback_engine::openclaw::cron::{read_store, CronJob};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

/// The job's declaration key, which is also its name.
pub const DECLARATION_KEY: &str = "clawback-backup";
/// How long OpenClaw lets one run take (its default for command jobs is 10 minutes).
const JOB_TIMEOUT_S: u64 = 24 * 3600;
/// What to say when a cron command cannot reach the gateway.
const NEEDS_GATEWAY: &str =
    "OpenClaw's cron commands go through its gateway: start it (`openclaw gateway run`, or `openclaw gateway start` for its service) and run this again";

/// An interval as OpenClaw's `--every` reads it (whole days, hours, minutes or seconds).
fn every(s: &Schedule) -> Option<String> {
    let Schedule::Every { interval, .. } = s else { return None };
    let secs = interval.as_secs().max(1);
    Some(match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    })
}

/// `openclaw cron add ...` for this schedule and job.
pub fn add_args(s: &Schedule, argv: &[OsString], env: &[(String, String)], cwd: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        ["cron", "add", "--name", DECLARATION_KEY, "--declaration-key", DECLARATION_KEY].map(String::from).to_vec();
    v.extend(["--description".into(), format!("clawback backup of OpenClaw (schedule {s})")]);
    match every(s) {
        Some(e) => v.extend(["--every".into(), e]),
        None => {
            let (tz, rest) = split_tz(s.as_str());
            v.extend(["--cron".into(), rest.to_string()]);
            if let Some(z) = tz {
                v.extend(["--tz".into(), z.to_string()]);
            }
        }
    }
    let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    v.extend(["--command-argv".into(), serde_json::to_string(&argv).expect("strings serialize")]);
    for (k, val) in env {
        v.extend(["--command-env".into(), format!("{k}={val}")]);
    }
    v.extend(["--command-cwd".into(), cwd.to_string_lossy().into_owned()]);
    v.extend(["--timeout-seconds".into(), JOB_TIMEOUT_S.to_string(), "--no-deliver".into(), "--json".into()]);
    v
}

fn printable(args: &[String]) -> String {
    format!("openclaw {}", args.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" "))
}

/// Whether a job is clawback's: its declaration key (or name, for one made without a key), or a
/// command job that runs `clawback ... daemon`.
fn is_ours(j: &CronJob) -> bool {
    j.is(DECLARATION_KEY)
        || j.command_argv().is_some_and(|a| {
            Path::new(&a[0]).file_name().is_some_and(|n| n == "clawback") && a.iter().any(|w| w == "daemon")
        })
}

/// Installs (or updates) the job; the JSON report of `schedule install --json`.
pub fn install(s: &Schedule, argv: &[OsString], env: &[(String, String)]) -> Result<Value> {
    let home = clawback_engine::repo::home_dir();
    let args = add_args(s, argv, env, &home);
    let line = printable(&args);
    let Some(oc) = OpenClaw::find() else {
        say("the openclaw command is not on PATH; on the machine that runs the gateway, run:");
        say(format!("  {line}"));
        say("then check it with: openclaw cron list; clawback status");
        return Ok(json!({ "kind": "openclaw", "command": line, "added": false, "schedule": s.to_string() }));
    };
    let help = oc.cron_add_help();
    if !(help.contains("--command-argv") && help.contains("--declaration-key")) {
        say("this OpenClaw's `cron add` has no --command-argv or --declaration-key (it cannot run a program as a job); upgrade OpenClaw, or use --systemd or --cron. With an OpenClaw that has them:");
        say(format!("  {line}"));
        say("then check it with: openclaw cron list; clawback status");
        return Ok(json!({ "kind": "openclaw", "command": line, "added": false, "schedule": s.to_string() }));
    }
    // As `openclaw backup enable`: a remote gateway would run the job on its own host, where this
    // program's path and the repository may not exist.
    let env = clawback_engine::openclaw::Env::from_process();
    let remote = clawback_engine::openclaw::config::load(&env)
        .ok()
        .is_some_and(|c| c.get_raw("gateway.mode").and_then(Value::as_str) == Some("remote"));
    if remote {
        return Err(clawback_engine::Error::Other(
            "OpenClaw's gateway here is remote (gateway.mode: \"remote\"): its jobs run on the gateway's host, where \
             this clawback and its repository may not be; run `clawback schedule install --openclaw` on that host, or \
             use --systemd or --cron here"
                .into(),
        )
        .into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = oc.run(&refs, CRON_LIMIT).map_err(clawback_engine::Error::Other)?;
    if !out.success {
        return Err(clawback_engine::Error::Other(format!(
            "`openclaw cron add` failed: {}; {NEEDS_GATEWAY}",
            out.complaint()
        ))
        .into());
    }
    let answer = out.json.unwrap_or(Value::Null);
    let id = answer.pointer("/job/id").and_then(Value::as_str).map(str::to_string);
    let Some(id) = id else {
        return Err(clawback_engine::Error::Other(
            "`openclaw cron add` printed no job id; check with `openclaw cron list --all --json`".into(),
        )
        .into());
    };
    let created = answer.get("created").and_then(Value::as_bool).unwrap_or(true);
    if created {
        say(format!("added the OpenClaw cron job {DECLARATION_KEY} (id {id}):\n  {line}"));
    } else {
        say(format!("updated the OpenClaw cron job {DECLARATION_KEY} (id {id}) in place (declaration key {DECLARATION_KEY}):\n  {line}"));
    }
    // Jobs an earlier clawback added by name, without the key: the same schedule twice.
    let mut removed = Vec::new();
    match oc.cron_list() {
        Ok(jobs) => {
            for j in jobs.iter().filter(|j| is_ours(j) && j.id.as_deref() != Some(id.as_str())) {
                let Some(other) = &j.id else { continue };
                rm(&oc, other)?;
                say(format!("removed an older clawback job in OpenClaw's scheduler (id {other}, made without a declaration key)"));
                removed.push(other.clone());
            }
        }
        Err(e) => eprintln!("clawback: warning: cannot list OpenClaw's cron jobs to look for older clawback jobs: {e}"),
    }
    say(format!("check it with: openclaw cron show {id}; clawback status"));
    Ok(json!({
        "kind": "openclaw", "command": line, "added": true, "created": created, "id": id,
        "removed_older": removed, "schedule": s.to_string(),
    }))
}

fn rm(oc: &OpenClaw, id: &str) -> Result<()> {
    let out = oc.run(&["cron", "rm", id, "--json"], CRON_LIMIT).map_err(clawback_engine::Error::Other)?;
    let removed = out.json.as_ref().and_then(|v| v.get("removed")).and_then(Value::as_bool);
    if !out.success || removed == Some(false) {
        return Err(
            clawback_engine::Error::Other(format!("`openclaw cron rm {id}` failed: {}", out.complaint())).into()
        );
    }
    Ok(())
}

/// Removes clawback's jobs from OpenClaw's scheduler; the ids removed. `asked`: `--openclaw` was
/// given (then not reaching the gateway is an error; otherwise a note).
pub fn remove(asked: bool, state_dir: &Path) -> Result<Vec<String>> {
    let Some(oc) = OpenClaw::find() else {
        let ids: Vec<String> = read_store(state_dir)
            .ok()
            .flatten()
            .map(|(jobs, _)| jobs.into_iter().filter(is_ours).filter_map(|j| j.id).collect())
            .unwrap_or_default();
        if asked || !ids.is_empty() {
            say(match ids.as_slice() {
                [] => format!(
                    "the openclaw command is not on PATH; where the gateway runs, find the job's id with `openclaw cron \
                     list --all --json` (declaration key {DECLARATION_KEY}) and remove it with `openclaw cron rm <id>`"
                ),
                ids => format!(
                    "the openclaw command is not on PATH; where the gateway runs, remove the job with: {}",
                    ids.iter().map(|i| format!("openclaw cron rm {i}")).collect::<Vec<_>>().join("; ")
                ),
            });
        }
        return Ok(Vec::new());
    };
    let jobs = match oc.cron_list() {
        Ok(j) => j,
        Err(e) if asked => {
            return Err(clawback_engine::Error::Other(format!(
                "cannot list OpenClaw's cron jobs ({e}); {NEEDS_GATEWAY}"
            ))
            .into())
        }
        Err(e) => {
            eprintln!(
                "clawback: note: OpenClaw's scheduler was not checked (cannot list its cron jobs: {e}); with its gateway \
                 running, `clawback schedule remove --openclaw` removes clawback's job"
            );
            return Ok(Vec::new());
        }
    };
    let mut removed = Vec::new();
    for j in jobs.iter().filter(|j| is_ours(j)) {
        let Some(id) = &j.id else { continue };
        rm(&oc, id)?;
        say(format!("removed the OpenClaw cron job {} (id {id})", j.name));
        removed.push(id.clone());
    }
    if removed.is_empty() && asked {
        say(format!("no clawback job in OpenClaw's scheduler (`openclaw cron list --all` has no {DECLARATION_KEY})"));
    }
    Ok(removed)
}

/// clawback's jobs in OpenClaw's scheduler, for `test`: from `openclaw cron list --json` (asked
/// once per run), else from the store on disk. Each with where it was found.
pub fn installed(state_dir: &Path) -> Vec<(String, Job)> {
    static LISTED: OnceLock<Option<Vec<CronJob>>> = OnceLock::new();
    let listed = LISTED.get_or_init(|| OpenClaw::find().and_then(|oc| oc.cron_list().ok()));
    let (jobs, from) = match listed {
        Some(j) => (j.clone(), "`openclaw cron list`".to_string()),
        None => match read_store(state_dir) {
            Ok(Some((j, p))) => (j, p.display().to_string()),
            _ => return Vec::new(),
        },
    };
    jobs.iter()
        .filter(|j| is_ours(j))
        .filter_map(|j| {
            let job = to_job(j)?;
            let id = j.id.as_deref().unwrap_or("?");
            let state = if j.enabled { "" } else { ", DISABLED: `openclaw cron enable <id>`" };
            Some((format!("OpenClaw cron job {} (id {id}{state}) in {from}", j.name), job))
        })
        .collect()
}

/// The job a command job runs; one an earlier clawback made with `--command` (`sh -lc "env K=V
/// ... clawback ..."`) is read through its shell line.
fn to_job(j: &CronJob) -> Option<Job> {
    let argv = j.command_argv()?;
    if argv.len() == 3 && argv[0] == "sh" && (argv[1] == "-lc" || argv[1] == "-c") {
        return super::schedule::job_from_openclaw_command(&argv[2]);
    }
    Some(Job {
        kind: JobKind::Openclaw,
        argv: argv.into_iter().map(OsString::from).collect(),
        env: j.command_env().into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_add_command() {
        let argv: Vec<OsString> = vec!["/opt/clawback".into(), "daemon".into(), "--once".into()];
        let env = vec![("CLAWBACK_TRIGGER".to_string(), "openclaw".to_string())];
        let a = add_args(&Schedule::parse("2h").unwrap(), &argv, &env, Path::new("/home/u"));
        let s = a.join(" ");
        assert!(s.starts_with("cron add --name clawback-backup --declaration-key clawback-backup"), "{s}");
        assert!(s.contains("--every 2h --command-argv [\"/opt/clawback\",\"daemon\",\"--once\"]"), "{s}");
        assert!(
            s.contains("--command-env CLAWBACK_TRIGGER=openclaw --command-cwd /home/u --timeout-seconds 86400"),
            "{s}"
        );
        let a = add_args(&Schedule::parse("CRON_TZ=Europe/Berlin 30 3 * * *").unwrap(), &argv, &env, Path::new("/h"));
        assert!(a.join(" ").contains("--cron 30 3 * * * --tz Europe/Berlin"), "{a:?}");
        assert_eq!(every(&Schedule::parse("1d").unwrap()).unwrap(), "1d");
        assert_eq!(every(&Schedule::parse("90m").unwrap()).unwrap(), "90m");
    }
}
