//! `clawback test` (alias `doctor`): checks each piece a backup needs and prints a ✓ or ✗ line per
//! check, with the fix for each ✗; exit 1 on any ✗. A `backup` section in openclaw.json adds an
//! `openclaw.json` check: ✗ when the installed OpenClaw rejects it, else a warning.
//!
//! The checks: the config loads; the storage answers and lets clawback list, write, read back and
//! delete a scratch object; the password opens the repository; a backup and restore round trip in
//! a throwaway repository; the schedule is installed; a scheduled run would have what it needs;
//! recent runs in the run log succeeded. What each probe does and concludes is the engine's
//! (`run::doctor`); this module resolves the repository and password, calls them, and prints.

use crate::commands::schedule;
use crate::context::{self, Ctx};
use crate::ui::error_line;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::openclaw::Env;
use clawback_engine::repo::Repository;
use clawback_engine::run::doctor::{self, fail, pass, Check};
use clawback_engine::run::runlog::RunLog;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Leave out the schedule check (setup uses it when no schedule is installed yet)
    #[arg(long, hide = true)]
    pub no_schedule_check: bool,
    /// What a scheduled job runs in place of `daemon --once` to see, under the scheduler's
    /// environment, that a run would find its config, variables, password, repository and hooks
    #[arg(long, hide = true)]
    pub scheduled_probe: bool,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    if a.scheduled_probe {
        return scheduled_probe(ctx);
    }
    let mut checks = checks(ctx);
    if a.no_schedule_check {
        checks.retain(|c| c.name != "schedule" && c.name != "scheduled run");
    }
    let failed = checks.iter().any(|c| !c.ok);
    let v = serde_json::to_value(&checks)?;
    if g.json {
        crate::ui::print_json(&v);
    } else {
        render(&v);
    }
    Ok(if failed { 1 } else { 0 })
}

/// Prints checks (as `test --json` gives them) as ✓/!/✗ lines with their fixes, and a count of
/// failures on stderr.
pub fn render(checks: &serde_json::Value) {
    let list = checks.as_array().cloned().unwrap_or_default();
    for c in &list {
        let mark = if c["ok"] != true {
            "✗"
        } else if c["warning"] == true {
            "!"
        } else {
            "✓"
        };
        println!("{mark} {}: {}", c["name"].as_str().unwrap_or(""), c["detail"].as_str().unwrap_or(""));
        if let Some(f) = c["fix"].as_str() {
            println!("    fix: {f}");
        }
    }
    let failed = list.iter().filter(|c| c["ok"] != true).count();
    if failed > 0 {
        eprintln!("clawback: {failed} of {} checks failed", list.len());
    }
}

/// The fix for a failed check (engine `run::doctor::fix_for`), naming this user's environment file.
pub fn fix_for(check: &str, error: &str) -> String {
    doctor::fix_for(check, error, &crate::envfile::display(&crate::envfile::default_path()))
}

/// Every check, in order.
pub fn checks(ctx: &Ctx) -> Vec<Check> {
    let g = &ctx.g;
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
    if let Some(n) = crate::commands::migrate::notice(g) {
        // The installed OpenClaw refuses to start with it: a ✗; otherwise a warning.
        let ok = n.openclaw_rejects != Some(true);
        out.push(Check { name: "openclaw.json", ok, detail: n.message, fix: Some(n.fix.into()), warning: ok });
    }
    match settings {
        Some(s) => {
            out.extend(repository_checks(ctx, &s));
            out.push(doctor::round_trip(&std::env::temp_dir()));
            let state_dir = context::layout(&GlobalArgs { quiet: true, ..g.clone() }, &s).state_dir;
            // Asked once: `openclaw cron list` goes through the gateway.
            let installed = schedule::installed_jobs(&state_dir);
            let configured = s.config.schedule.as_ref().map(|c| c.to_string());
            out.push(doctor::schedule_check(configured.as_deref(), installed.first().map(|(how, _)| how.as_str())));
            let prospective = || schedule::prospective_job(g).map_err(|e| error_line(&e));
            let env_file = crate::envfile::display(&crate::envfile::default_path());
            out.push(doctor::scheduled_run_check(configured.is_some(), &installed, prospective, &env_file));
            out.push(doctor::runs_check(&RunLog::for_state_dir(&state_dir)));
        }
        None => {
            let skipped = |name| fail(name, "not checked: the config does not load", "fix the config first");
            out.push(skipped("storage"));
            out.push(skipped("key"));
            out.push(doctor::round_trip(&std::env::temp_dir()));
            out.push(skipped("schedule"));
            out.push(skipped("scheduled run"));
            out.push(skipped("recent runs"));
        }
    }
    out
}

/// Storage reachable with the permissions backups need, then the key.
fn repository_checks(ctx: &Ctx, s: &context::Settings) -> Vec<Check> {
    let g = &ctx.g;
    let res = match context::resolve(g, s) {
        Ok(r) => r,
        Err(e) => {
            return vec![
                fail("storage", error_line(&e), "set --repo/CLAWBACK_REPO or the config's storage (`clawback setup`)"),
                fail("key", "not checked: no storage", "fix the storage first"),
            ]
        }
    };
    let be = match ctx.backend(&res.location) {
        Ok(b) => b,
        Err(e) => {
            let line = error_line(&e);
            return vec![
                fail("storage", line.clone(), fix_for("storage", &line)),
                fail("key", "not checked: no storage", "fix the storage first"),
            ];
        }
    };
    let loc = be.location();
    if !context::exists(be.as_ref()) {
        // Tell "no repository" from "cannot reach it".
        let why = doctor::why_no_repository(be.as_ref());
        return vec![
            fail("storage", format!("{loc}: {why}"), fix_for("storage", &why)),
            fail("key", "not checked: no repository", "create the repository first"),
        ];
    }
    let storage = match doctor::probe_storage(be.as_ref()) {
        Ok(()) => pass("storage", format!("{loc}: listed, wrote, read back and deleted a scratch object")),
        Err(e) => fail("storage", format!("{loc}: {e}"), fix_for("storage", &e)),
    };
    let key = match ctx
        .password(s, &res, false)
        .and_then(|pw| Ok(Repository::open(be.clone(), &pw, &context::cache_options(g))?))
    {
        Ok(repo) => {
            let n = repo.snapshots().map(|v| v.len()).unwrap_or(0);
            pass("key", format!("the password opens the repository ({n} snapshots)"))
        }
        Err(e) => {
            let line = error_line(&e);
            fail("key", line.clone(), fix_for("key", &line))
        }
    };
    vec![storage, key]
}

/// `test --scheduled-probe`: run in place of a scheduled job's `daemon --once`, under the
/// scheduler's environment (after the environment file was loaded by main). Checks, without
/// backing anything up, what the run needs: the config loads and every `${VAR}` it refers to is
/// set; the OpenClaw state dir exists; the repository exists and the password opens it; the
/// hooks are found on PATH. One line on stdout when all is there, else one line on stderr.
fn scheduled_probe(ctx: &Ctx) -> Result<i32> {
    let g = &ctx.g;
    use clawback_engine::Error as E;
    let env = Env::from_process();
    let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").map(PathBuf::from));
    let env_file = crate::envfile::display(&crate::envfile::path_for(g.config.as_deref()));
    let loaded = clawback_engine::config::load(&env, explicit.as_deref())
        .map_err(|e| E::Other(format!("the config does not load for the scheduled job: {e}")))?;
    // The loader's own verdict on each `${VAR}` (process, .env files, env.vars), from its warnings.
    if let Some(name) = doctor::unset_variable(&loaded.warnings) {
        return Err(E::Other(format!(
            "{name} is referenced by the config but the scheduled job will not have it: run `clawback setup` \
             again from a shell that has it, or add it to {env_file}"
        ))
        .into());
    }
    let referenced = loaded
        .file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|t| crate::envfile::referenced_vars(&t).len())
        .unwrap_or(0);
    let s = context::Settings { env: Env::from_process(), config: loaded.config };
    let layout = context::layout(&GlobalArgs { quiet: true, ..g.clone() }, &s);
    if s.config.include_state_dir() && !layout.state_dir.is_dir() {
        return Err(E::Other(format!(
            "the OpenClaw state dir {} does not exist for the scheduled job (HOME={}): set OPENCLAW_STATE_DIR in the \
             shell you install the schedule from, or create it",
            layout.state_dir.display(),
            clawback_engine::repo::home_dir().display()
        ))
        .into());
    }
    let res = context::resolve(g, &s)?;
    let be = ctx.backend(&res.location)?;
    let loc = be.location();
    let repo_note = if !context::exists(be.as_ref()) {
        if !res.is_default {
            let why = match be.read(&clawback_engine::backend::ObjectName::config()) {
                Err(e) if clawback_engine::repo::location::is_missing_container(&e) => e.to_string(),
                _ => "no repository there".into(),
            };
            return Err(E::RepoNotFound(format!("{loc} (as the scheduled job sees it: {why})")).into());
        }
        format!("the default repository {loc} is created by the first run")
    } else {
        let pw = ctx.password(&s, &res, false).map_err(|e| {
            let line = error_line(&e);
            anyhow::Error::new(E::NoPassword).context(format!(
                "the scheduled job has no repository password ({line}); set encryption.keyFile in the config, or \
                 run `clawback setup` again (it writes CLAWBACK_PASSWORD into {env_file} when that is the source)"
            ))
        })?;
        Repository::open_unloaded(be.clone(), &pw, &context::cache_options(g)).map_err(|e| {
            let wrong = matches!(e, E::WrongPassword);
            let err = anyhow::Error::new(e);
            if wrong {
                err.context(format!("the scheduled job's password does not open {loc}"))
            } else {
                err.context(format!("the scheduled job cannot open {loc}"))
            }
        })?;
        format!("the password opens {loc}")
    };
    let mut hooks = 0;
    for h in s.config.hooks.before.iter().chain(&s.config.hooks.after) {
        let Some(word) = doctor::hook_program(h) else { continue };
        if !doctor::program_found(&word) {
            return Err(E::Other(format!(
                "hook `{h}`: {word} is not on the scheduled job's PATH ({}); give its full path or add its folder to \
                 PATH in {env_file}",
                std::env::var("PATH").unwrap_or_default()
            ))
            .into());
        }
        hooks += 1;
    }
    println!(
        "the run has what it needs: the config loads ({referenced} variables referenced, all set), {repo_note}, \
         {hooks} hooks found"
    );
    Ok(0)
}
