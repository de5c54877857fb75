//! After the config is written: `init` (unless the repository exists), the schedule if asked,
//! the same checks as `clawback test`, and a first backup if wanted; each run as this binary with
//! the new config, so it sees exactly what later runs will.

use super::ask::Asker;
use super::{Args, Installer};
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::commands::setup as plan;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs init, the schedule, the checks and the first backup for the config at `path`.
pub fn run(
    g: &GlobalArgs,
    a: &Args,
    asker: &Asker,
    path: &Path,
    existing: bool,
    create_bucket: bool,
    say: &dyn Fn(String),
) -> Result<i32> {
    if !existing {
        let mut args = vec!["init"];
        if create_bucket {
            args.push("--create-bucket");
        }
        let code = sub(g, path, a, &args, false)?.0;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "`clawback init` failed (exit {code}); the config is in {}: fix it and run `clawback init`",
                path.display()
            ))
            .into());
        }
    }
    let installer = match a.install_schedule {
        Some(i) => i,
        None => {
            let opts = [
                ("none", "not now (`clawback schedule install` later)"),
                ("systemd", "a systemd user timer"),
                ("cron", "a crontab line"),
                ("openclaw", "OpenClaw's own scheduler"),
            ];
            [Installer::None, Installer::Systemd, Installer::Cron, Installer::Openclaw]
                [asker.choose("Install the schedule now?", &opts, 0)?]
        }
    };
    let flag = match installer {
        Installer::None => None,
        Installer::Systemd => Some("--systemd"),
        Installer::Cron => Some("--cron"),
        Installer::Openclaw => Some("--openclaw"),
    };
    if let Some(flag) = flag {
        let code = sub(g, path, a, &["schedule", "install", flag], false)?.0;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "`clawback schedule install {flag}` failed (exit {code}); run it again once fixed"
            ))
            .into());
        }
    }
    // The checks exactly as `clawback test` makes them, the schedule's included.
    let (_, out) = sub(g, path, a, &["test", "--json"], true)?;
    let checks: Value = serde_json::from_str(&out).context("`clawback test --json` printed no checks")?;
    if g.json {
        crate::ui::print_json(&checks);
    } else {
        crate::commands::doctor::render(&checks);
    }
    let failed = plan::failed_checks(&checks);
    if plan::checks_fail_setup(&failed, flag.is_some()) {
        return Err(clawback_engine::Error::Other(format!(
            "setup wrote {} but the checks found problems ({}); fix them and run `clawback test`",
            path.display(),
            failed.join(", ")
        ))
        .into());
    }
    if flag.is_none() {
        say("the schedule is not installed, so no backup runs by itself yet: `clawback schedule install --systemd` (or --cron, --openclaw)".into());
    }

    // A first backup, if wanted.
    let backup_now =
        a.backup_now || (asker.tty && asker.confirm("Run a first backup now (`clawback backup`)?", true)?);
    if backup_now {
        let code = sub(g, path, a, &["backup"], false)?.0;
        if code != 0 {
            return Err(clawback_engine::Error::Other(format!(
                "the first backup failed (exit {code}); the set-up itself is done: fix the error above and run `clawback backup`"
            ))
            .into());
        }
    } else {
        say("start a first backup with `clawback backup`".into());
    }
    Ok(0)
}

/// Runs this binary with the new config: `clawback --config PATH ARGS...`. The password and
/// repository come from the config alone (the environment's CLAWBACK_REPO and password variables
/// are removed unless the config refers to them). With `capture`, its stdout is returned;
/// otherwise it is shown (on stderr under `--json`, where setup's own stdout is JSON).
fn sub(g: &GlobalArgs, config: &Path, a: &Args, args: &[&str], capture: bool) -> Result<(i32, String)> {
    let exe = std::env::current_exe().context("cannot find the clawback binary")?;
    let mut c = Command::new(exe);
    c.arg("--config").arg(config);
    if let Some(d) = &g.cache_dir {
        c.arg("--cache-dir").arg(d);
    }
    if g.no_cache {
        c.arg("--no-cache");
    }
    if g.quiet {
        c.arg("--quiet");
    }
    c.args(args);
    c.env_remove("CLAWBACK_REPO").env_remove("CLAWBACK_PASSWORD_FILE").env_remove("CLAWBACK_CONFIG");
    if plan::hide_clawback_password(a.password_env.as_deref(), std::fs::read_to_string(config).ok().as_deref()) {
        // Set empty, not removed: the child would take it from the environment file again.
        c.env("CLAWBACK_PASSWORD", "");
    }
    if capture {
        let out = c
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run clawback {}", args.join(" ")))?;
        return Ok((out.status.code().unwrap_or(1), String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    if g.json {
        let stderr = std::os::fd::AsFd::as_fd(&std::io::stderr().lock()).try_clone_to_owned()?;
        c.stdout(std::process::Stdio::from(stderr));
    }
    let st = c.status().with_context(|| format!("cannot run clawback {}", args.join(" ")))?;
    Ok((st.code().unwrap_or(1), String::new()))
}
