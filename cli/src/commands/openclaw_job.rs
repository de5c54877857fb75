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
//! the engine's `run::scheduler::Job::scheduled_env`). OpenClaw stops command jobs after 10 minutes unless told
//! otherwise: the job gets a day (`--timeout-seconds`), as the systemd unit does.
//!
//! Cron commands go through a running gateway. Reading the installed job for `test` falls back
//! to OpenClaw's store on disk when no gateway answers (engine: `run::scheduler::openclaw`). The
//! add command's words and which jobs are clawback's are the engine's; this module runs
//! `openclaw` and says what happened.

use crate::openclaw_cli::{OpenClaw, CRON_LIMIT};
use crate::ui::Out;
use anyhow::Result;
use clawback_engine::config::Schedule;
use clawback_engine::openclaw::cron::CronJob;
use clawback_engine::run::scheduler::openclaw::{
    add_args, ids_in_store, is_ours, printable, DECLARATION_KEY, NEEDS_GATEWAY,
};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::Path;

/// Installs (or updates) the job; the JSON report of `schedule install --json`.
pub fn install(s: &Schedule, argv: &[OsString], env: &[(String, String)], out: Out) -> Result<Value> {
    let home = clawback_engine::repo::home_dir();
    let args = add_args(s, argv, env, &home);
    let line = printable(&args);
    let Some(oc) = OpenClaw::find() else {
        out.say("the openclaw command is not on PATH; on the machine that runs the gateway, run:");
        out.say(format!("  {line}"));
        out.say("then check it with: openclaw cron list; clawback status");
        return Ok(json!({ "kind": "openclaw", "command": line, "added": false, "schedule": s.to_string() }));
    };
    let help = oc.cron_add_help();
    if !(help.contains("--command-argv") && help.contains("--declaration-key")) {
        out.say("this OpenClaw's `cron add` has no --command-argv or --declaration-key (it cannot run a program as a job); upgrade OpenClaw, or use --systemd or --cron. With an OpenClaw that has them:");
        out.say(format!("  {line}"));
        out.say("then check it with: openclaw cron list; clawback status");
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
    let ran = oc.run(&refs, CRON_LIMIT).map_err(clawback_engine::Error::Other)?;
    if !ran.success {
        return Err(clawback_engine::Error::Other(format!(
            "`openclaw cron add` failed: {}; {NEEDS_GATEWAY}",
            ran.complaint()
        ))
        .into());
    }
    let answer = ran.json.unwrap_or(Value::Null);
    let id = answer.pointer("/job/id").and_then(Value::as_str).map(str::to_string);
    let Some(id) = id else {
        return Err(clawback_engine::Error::Other(
            "`openclaw cron add` printed no job id; check with `openclaw cron list --all --json`".into(),
        )
        .into());
    };
    let created = answer.get("created").and_then(Value::as_bool).unwrap_or(true);
    if created {
        out.say(format!("added the OpenClaw cron job {DECLARATION_KEY} (id {id}):\n  {line}"));
    } else {
        out.say(format!("updated the OpenClaw cron job {DECLARATION_KEY} (id {id}) in place (declaration key {DECLARATION_KEY}):\n  {line}"));
    }
    // Jobs an earlier clawback added by name, without the key: the same schedule twice.
    let mut removed = Vec::new();
    match oc.cron_list() {
        Ok(jobs) => {
            for j in jobs.iter().filter(|j| is_ours(j) && j.id.as_deref() != Some(id.as_str())) {
                let Some(other) = &j.id else { continue };
                rm(&oc, other)?;
                out.say(format!("removed an older clawback job in OpenClaw's scheduler (id {other}, made without a declaration key)"));
                removed.push(other.clone());
            }
        }
        Err(e) => eprintln!("clawback: warning: cannot list OpenClaw's cron jobs to look for older clawback jobs: {e}"),
    }
    out.say(format!("check it with: openclaw cron show {id}; clawback status"));
    Ok(json!({
        "kind": "openclaw", "command": line, "added": true, "created": created, "id": id,
        "removed_older": removed, "schedule": s.to_string(),
    }))
}

fn rm(oc: &OpenClaw, id: &str) -> Result<()> {
    let ran = oc.run(&["cron", "rm", id, "--json"], CRON_LIMIT).map_err(clawback_engine::Error::Other)?;
    let removed = ran.json.as_ref().and_then(|v| v.get("removed")).and_then(Value::as_bool);
    if !ran.success || removed == Some(false) {
        return Err(
            clawback_engine::Error::Other(format!("`openclaw cron rm {id}` failed: {}", ran.complaint())).into()
        );
    }
    Ok(())
}

/// Removes clawback's jobs from OpenClaw's scheduler; the ids removed. `asked`: `--openclaw` was
/// given (then not reaching the gateway is an error; otherwise a note).
pub fn remove(asked: bool, state_dir: &Path, out: Out) -> Result<Vec<String>> {
    let Some(oc) = OpenClaw::find() else {
        let ids = ids_in_store(state_dir);
        if asked || !ids.is_empty() {
            out.say(match ids.as_slice() {
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
        out.say(format!("removed the OpenClaw cron job {} (id {id})", j.name));
        removed.push(id.clone());
    }
    if removed.is_empty() && asked {
        out.say(format!(
            "no clawback job in OpenClaw's scheduler (`openclaw cron list --all` has no {DECLARATION_KEY})"
        ));
    }
    Ok(removed)
}

/// What `openclaw cron list` answers, if an `openclaw` is at hand and its gateway answers.
pub fn list() -> Option<Vec<CronJob>> {
    OpenClaw::find().and_then(|oc| oc.cron_list().ok())
}
