//! The config's `hooks` around a backup, as the CLI runs them: their output goes to stderr (so
//! `--json` output on stdout stays clean), a failing `before` hook stops the backup unless
//! `hooks.abortOnFailure` is false, and `after` hooks always run and never change the outcome.

use crate::ui;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::config::HooksConfig;
use clawback_engine::run::hooks::{self, Outcome};
use std::os::fd::AsFd;
use std::process::Stdio;

/// Where hook output goes: this process's stderr (or nowhere if it cannot be duplicated).
fn to_stderr() -> Stdio {
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    }
}

/// Runs the `before` hooks, then `backup` (which records the snapshot id it wrote), then the
/// `after` hooks with the outcome; returns the backup's result.
pub fn around(
    g: &GlobalArgs,
    cfg: &HooksConfig,
    backup: impl FnOnce(&mut Option<String>) -> Result<i32>,
) -> Result<i32> {
    if let Err(e) = hooks::run_before(cfg, &to_stderr) {
        if hooks::abort_on_failure(cfg) {
            after(g, cfg, &Outcome::from_exit(1, None));
            return Err(clawback_engine::Error::Other(format!(
                "{e}; the backup was not run (fix the hook, or set hooks.abortOnFailure to false to back up anyway)"
            ))
            .into());
        }
        if !g.quiet {
            eprintln!("clawback: warning: {e}; backing up anyway (hooks.abortOnFailure is false)");
        }
    }
    let mut saved = None;
    let r = backup(&mut saved);
    let code = match &r {
        Ok(c) => *c,
        Err(e) => ui::exit_code(e),
    };
    after(g, cfg, &Outcome::from_exit(code, saved));
    r
}

fn after(g: &GlobalArgs, cfg: &HooksConfig, outcome: &Outcome) {
    for e in hooks::run_after(cfg, outcome, &to_stderr) {
        if !g.quiet {
            eprintln!("clawback: warning: {e}");
        }
    }
}
