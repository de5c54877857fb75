//! `clawback test` (alias `doctor`): checks each piece a backup needs and prints a ✓ or ✗ line per
//! check, with the fix for each ✗; exit 1 on any ✗. A `backup` section in openclaw.json adds an
//! `openclaw.json` check: ✗ when the installed OpenClaw rejects it, else a warning.
//!
//! The checks: the config loads; the storage answers and lets clawback list, write, read back and
//! delete a scratch object (under `locks/`, where clawback's own short-lived objects live); the
//! password opens the repository; a backup and restore round trip of a small scratch folder; the
//! schedule is installed; a scheduled run would have what it needs (the installed job's command,
//! or the one `schedule install` would write, run under the scheduler's empty environment with
//! `--scheduled-probe`); recent runs in the run log succeeded. The round trip runs in a throwaway
//! repository in a temporary folder, removed afterwards: it exercises this build's whole pipeline
//! (chunking, encryption, packing, restore) without adding snapshots to the real repository, while
//! the storage probe proves the real storage takes writes and deletes. Each ✗ carries the fix for
//! what actually failed ([`fix_for`]): a wrong secret or a server that is down is not a
//! permissions problem.

use crate::commands::schedule;
use crate::context::{self, Ctx};
use crate::ui::error_line;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::commands::restore::{restore, RestoreOptions};
use clawback_engine::openclaw::Env;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use clawback_engine::run::runlog::{RunLog, RunStatus};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The fix for a failed check, from what the error says. The one place that maps kinds of
/// failure to what to do: a wrong secret, a server that is down and a missing permission each
/// get their own fix. `check` gives the default when the error is none of the known kinds.
pub fn fix_for(check: &str, error: &str) -> String {
    let e = error.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    let env_file = crate::envfile::display(&crate::envfile::default_path());
    if has(&["referenced by the config but the scheduled job will not have it"]) {
        return format!("run `clawback setup` again from a shell that has the variable, or add it to {env_file} (KEY=VALUE, mode 0600)");
    }
    if has(&["scheduled job has no repository password", "no password given"]) {
        return format!(
            "give the job a password source: encryption.keyFile in the config, or CLAWBACK_PASSWORD in {env_file}; `clawback setup` writes both"
        );
    }
    if has(&["wrong password", "no key file can be opened"]) {
        return "give the repository's password: CLAWBACK_PASSWORD, CLAWBACK_PASSWORD_FILE, --password-file, or the config's encryption.keyFile / passwordCommand; a new password is added with `clawback key add`".into();
    }
    if has(&["environment file"]) && has(&["chmod", "chown"]) {
        return format!("make {env_file} private: chmod 600 {env_file}");
    }
    if has(&[
        "signaturedoesnotmatch",
        "signature does not match",
        "signature mismatch",
        "invalidaccesskeyid",
        "access key id does not exist",
        "unknown access key",
        "invalid access key",
    ]) {
        return "the access key id or secret is wrong: correct storage.accessKeyId / secretAccessKey (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) to the key pair the provider shows".into();
    }
    if has(&["requesttimetooskewed", "clock skew", "time too skewed", "clock is"]) {
        return "this machine's clock is off: turn on time sync (`timedatectl set-ntp true`) and try again".into();
    }
    if has(&[
        "no credentials",
        "credentials not found",
        "no s3 credentials",
        "missing credentials",
        "credentials were found",
    ]) {
        return format!("give S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.accessKeyId / secretAccessKey as ${{VAR}} references (scheduled runs read them from {env_file})");
    }
    if has(&["cannot reach", "could not connect", "error trying to connect", "dispatch failure"])
        && !has(&["dns", "resolve", "lookup", "tls", "certificate"])
    {
        return "the endpoint cannot be reached: check that the S3 server is up and that the host and port of storage.endpoint / AWS_ENDPOINT_URL are right".into();
    }
    if has(&["connection refused", "refused the connection"]) {
        return "nothing answers at the endpoint: start the S3 server, or correct the host and port of storage.endpoint / AWS_ENDPOINT_URL".into();
    }
    if has(&[
        "dns",
        "failed to lookup",
        "name or service not known",
        "could not resolve",
        "does not resolve",
        "no such host",
    ]) {
        return "the endpoint's host name does not resolve: correct storage.endpoint / AWS_ENDPOINT_URL, or check this machine's DNS".into();
    }
    if has(&["tls", "certificate", "handshake", "ssl"]) {
        return "the TLS connection failed: check http:// versus https:// in the endpoint, and that the server's certificate is valid for its name".into();
    }
    if has(&["timed out", "timeout", "did not finish within"]) {
        return "the endpoint did not answer in time: check the network, firewall or VPN between here and the endpoint, and that the server is up".into();
    }
    if has(&["nosuchbucket", "bucket does not exist", "no such bucket"]) {
        return "create the bucket: `clawback init --create-bucket` (or in the provider's console), or correct storage.bucket".into();
    }
    if has(&["accessdenied", "access denied", "forbidden", "permission denied", "not authorized"]) {
        return "give clawback's credentials list, read, write and delete rights on the repository (bucket policy or folder permissions)".into();
    }
    if has(&["no space", "quota"]) {
        return "free space on the storage (or raise its quota), then `clawback prune` old data".into();
    }
    if has(&["read-only file system"]) {
        return "the repository's file system is mounted read-only: remount it read-write or choose another folder"
            .into();
    }
    if has(&["state dir"]) && has(&["does not exist"]) {
        return "set OPENCLAW_STATE_DIR in the shell you run `clawback schedule install` from (it is written into the job), or create the state dir".into();
    }
    if has(&["is not on the scheduled job's path"]) {
        return format!("give the hook's full path in the config, or add its folder to PATH in {env_file}");
    }
    if has(&["does not exist"]) && check != "config" {
        return "create it with `clawback init` (or `clawback setup`), or point --repo/CLAWBACK_REPO at the right place".into();
    }
    match check {
        "config" => "correct the file named above (JSON5; `clawback setup --force` writes a new one)".into(),
        // The scratch object could not be listed, written or deleted, for no reason named above.
        "storage" if has(&["cannot list", "cannot write", "cannot delete", "cannot read back"]) => {
            "give clawback's credentials list, read, write and delete rights on the repository (bucket policy or folder permissions)".into()
        }
        "storage" => "check the repository location (--repo, CLAWBACK_REPO or the config's storage) and its credentials".into(),
        "key" => fix_for("key", "wrong password"),
        "scheduled run" => "run the job's command by hand (`clawback daemon --once`) to see the error, fix it, and check again with `clawback test`".into(),
        _ => "see the error above".into(),
    }
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
            out.push(round_trip());
            out.push(schedule_check(g, &s));
            out.push(scheduled_run_check(g, &s));
            out.push(runs_check(g, &s));
        }
        None => {
            let skipped = |name| fail(name, "not checked: the config does not load", "fix the config first");
            out.push(skipped("storage"));
            out.push(skipped("key"));
            out.push(round_trip());
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
        let why = match be.read(Kind::Config, "config") {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => e.to_string(),
            Err(e) if clawback_engine::backend::s3::is_missing_bucket(&e) => e.to_string(),
            _ => "no repository there (does not exist)".to_string(),
        };
        return vec![
            fail("storage", format!("{loc}: {why}"), fix_for("storage", &why)),
            fail("key", "not checked: no repository", "create the repository first"),
        ];
    }
    let storage = match probe(be.as_ref()) {
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
/// a job in OpenClaw's scheduler.
fn installed_schedule(state_dir: &Path) -> Option<String> {
    schedule::installed_jobs(state_dir).into_iter().next().map(|(how, _)| how)
}

/// Whether a scheduled run would have what it needs: each installed job's command (or, with
/// none installed, the one `schedule install --systemd` would write from this shell) run under
/// the scheduler's environment with `--scheduled-probe`.
fn scheduled_run_check(g: &GlobalArgs, s: &context::Settings) -> Check {
    const NAME: &str = "scheduled run";
    if s.config.schedule.is_none() {
        let installed =
            schedule::installed_jobs(&context::layout(&GlobalArgs { quiet: true, ..g.clone() }, s).state_dir);
        if installed.is_empty() {
            return Check {
                name: NAME,
                ok: true,
                detail: "not checked: no schedule configured or installed".into(),
                fix: None,
                warning: true,
            };
        }
    }
    let layout = context::layout(&GlobalArgs { quiet: true, ..g.clone() }, s);
    let mut jobs = schedule::installed_jobs(&layout.state_dir);
    let prospective = jobs.is_empty();
    if prospective {
        match schedule::prospective_job(g) {
            Ok(j) => jobs.push(("the job `clawback schedule install --systemd` would write".into(), j)),
            Err(e) => return fail(NAME, error_line(&e), "see the error above"),
        }
    }
    let mut passed = Vec::new();
    for (how, job) in &jobs {
        match job.probe() {
            Ok(what) => passed.push(format!("{how}: {what}")),
            Err(e) => {
                return fail(
                    NAME,
                    format!("{how}, run as {} runs it, would fail: {e}", job.kind.name()),
                    fix_for(NAME, &e),
                )
            }
        }
    }
    pass(NAME, passed.join("; "))
}

/// A shell word that needs no program on PATH.
fn is_shell_builtin(w: &str) -> bool {
    const BUILTINS: &[&str] = &[
        ":", ".", "[", "alias", "break", "case", "cd", "command", "continue", "echo", "eval", "exec", "exit", "export",
        "false", "for", "if", "printf", "pwd", "read", "return", "set", "shift", "source", "test", "trap", "true",
        "type", "ulimit", "umask", "unset", "wait", "while", "until", "{", "(", "!",
    ];
    BUILTINS.contains(&w) || w.contains('=') || w.starts_with('$')
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
    for w in &loaded.warnings {
        if let Some(name) = w.split("refers to ${").nth(1).and_then(|r| r.split('}').next()) {
            if w.contains("which is not set") {
                return Err(E::Other(format!(
                    "{name} is referenced by the config but the scheduled job will not have it: run `clawback setup` \
                     again from a shell that has it, or add it to {env_file}"
                ))
                .into());
            }
        }
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
            let why = match be.read(Kind::Config, "config") {
                Err(e) if clawback_engine::backend::s3::is_missing_bucket(&e) => e.to_string(),
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
        let Some(word) = schedule::sh_words(h).and_then(|w| w.into_iter().next()) else { continue };
        if is_shell_builtin(&word) {
            continue;
        }
        let found = if word.contains('/') {
            Path::new(&word).is_file()
        } else {
            clawback_engine::run::notify::find_on_path(&word).is_some()
        };
        if !found {
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

#[cfg(test)]
mod tests {
    use super::fix_for;

    #[test]
    fn each_kind_of_failure_gets_its_own_fix() {
        const RIGHTS: &str = "list, read, write and delete rights";
        for (check, error, want) in [
            (
                "storage",
                "SignatureDoesNotMatch: the request signature we calculated does not match",
                "access key id or secret",
            ),
            ("storage", "InvalidAccessKeyId", "access key id or secret"),
            ("storage", "connection refused (os error 111)", "start the S3 server"),
            ("storage", "cannot reach the S3 endpoint http://127.0.0.1:1", "S3 server is up"),
            ("storage", "dns error: failed to lookup address information", "does not resolve"),
            ("storage", "invalid peer certificate: UnknownIssuer", "TLS"),
            ("storage", "operation timed out", "did not answer in time"),
            ("storage", "RequestTimeTooSkewed", "clock"),
            ("storage", "no credentials found for the S3 endpoint", "give S3 credentials"),
            ("storage", "NoSuchBucket: the bucket does not exist", "create the bucket"),
            ("storage", "cannot write locks/x: AccessDenied", RIGHTS),
            ("storage", "cannot delete locks/x: the store said 501", RIGHTS),
            ("key", "wrong password or no key file can be opened with it", "key add"),
            (
                "scheduled run",
                "SEAWEED_KEY is referenced by the config but the scheduled job will not have it",
                "clawback setup",
            ),
            (
                "scheduled run",
                "environment file ~/.config/clawback/env is readable by others; run `chmod 600 x`",
                "chmod 600",
            ),
        ] {
            let fix = fix_for(check, error);
            assert!(fix.contains(want), "{error:?} -> {fix:?}");
            if want != RIGHTS {
                assert!(!fix.contains(RIGHTS), "{error:?} got a permissions fix: {fix:?}");
            }
        }
    }
}
