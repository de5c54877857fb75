//! `clawback backup [PATH...]` (alias `now`): snapshot paths, by default the OpenClaw state; then
//! the configured retention for the new snapshot's group (host and paths), with prune started
//! in the background at most once per `retention.pruneEvery` (engine `run::retention`). The daemon
//! runs its cycles through [`recorded`] in its own process.

use crate::context::{self, Ctx};
use crate::runs;
use crate::ui::{self, usage};
use crate::GlobalArgs;
use anyhow::{Context, Result};
use chrono::Utc;
use clawback_engine::commands::backup::StdinCommand;
use clawback_engine::commands::backup::{backup, BackupOptions, DryRunReport, Presample};
use clawback_engine::openclaw;
use clawback_engine::progress::Progress;
use clawback_engine::repo;
use clawback_engine::run::hooks;
use clawback_engine::run::interrupt::Interrupt;
use clawback_engine::run::recorded::{Recording, Written};
use clawback_engine::run::retention::{self, Pruner};
use clawback_engine::run::sizelog::SizeEvent;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Files and folders to back up (default: the OpenClaw state dir and workspaces)
    pub paths: Vec<PathBuf>,
    /// Tag the snapshot (a,b: both tags; repeatable)
    #[arg(long = "tag", value_name = "T[,T]")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's)
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
    /// Leave out paths matching this gitignore-style pattern (repeatable)
    #[arg(long = "exclude", short = 'e', value_name = "PAT")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (repeatable)
    #[arg(long = "exclude-file", value_name = "F")]
    pub exclude_files: Vec<PathBuf>,
    /// Snapshot time, RFC 3339 (for imports and tests)
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
    /// Read and count everything, store nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Read every file, even those whose metadata is unchanged
    #[arg(long)]
    pub force: bool,
    /// Compare against this snapshot instead of the latest one of this host and paths
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Honour .gitignore files in workspaces (off by default: OpenClaw's own backup keeps what
    /// they name, such as .env; the config's include.gitignore turns it on too)
    #[arg(long, overrides_with = "no_gitignore")]
    pub gitignore: bool,
    /// Do not honour .gitignore files, whatever the config's include.gitignore says
    #[arg(long, overrides_with = "gitignore")]
    pub no_gitignore: bool,
    /// Do not leave out OpenClaw's caches and runtime files (tmp/, cache/control-ui-assets/,
    /// node_modules/, *.sock, ...)
    #[arg(long)]
    pub no_default_excludes: bool,
    /// Store this command's standard output (run with `sh -c`) as a file of the snapshot; the
    /// backup fails if the command fails (database dumps: `pg_dump mydb`)
    #[arg(long, value_name = "CMD", requires = "stdin_filename")]
    pub stdin_from_command: Option<String>,
    /// Where the command's output goes in the snapshot, like /dumps/db.sql
    #[arg(long, value_name = "NAME", requires = "stdin_from_command")]
    pub stdin_filename: Option<String>,
    /// Fleet group id: snapshots several hosts take together share it (`snapshots --group`)
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
}

/// What a backup reads and leaves out, and why.
struct Selection {
    paths: Vec<PathBuf>,
    excludes: Vec<String>,
    reasons: Vec<(String, String)>,
    gitignore_roots: Vec<PathBuf>,
    openclaw: Option<clawback_engine::format::snapshot::OpenclawMeta>,
    openclaw_cli: Option<openclaw::version::CliVersion>,
}

/// The paths to back up (given, or what `openclaw backup create` reads: the OpenClaw state dir,
/// every workspace, agent dir and config file outside it, the credentials folder
/// (`OPENCLAW_OAUTH_DIR`) and symlinked managed skills; then `include.extraPaths`) and the
/// excludes: OpenClaw's default ones, the config's `exclude`, then `--exclude`.
fn select(g: &GlobalArgs, s: &context::Settings, a: &Args) -> Result<Selection> {
    let layout = context::layout(g, s);
    let cfg = &s.config;
    let paths = if !a.paths.is_empty() || a.stdin_from_command.is_some() {
        a.paths.clone()
    } else {
        let mut cands: Vec<PathBuf> = Vec::new();
        if cfg.include_state_dir() {
            cands.extend(layout.roots().into_iter().filter(|r| !layout.workspaces.iter().any(|w| &w.path == r)));
            let oauth = openclaw::paths::oauth_dir(&s.env, &layout.state_dir);
            if !openclaw::layout::is_inside(&layout.state_dir, &oauth) {
                cands.push(oauth);
            }
            let mut owners = cands.clone();
            owners.extend(layout.workspaces.iter().map(|w| w.path.clone()));
            cands.extend(openclaw::layout::managed_skill_targets(&layout.state_dir, &owners));
        }
        if cfg.include_workspace() {
            cands.extend(layout.workspaces.iter().map(|w| w.path.clone()));
        }
        cands.extend(cfg.include.extra_paths.iter().cloned());
        let mut out: Vec<PathBuf> = Vec::new();
        for c in cands {
            if c.exists() && !out.iter().any(|o| c.starts_with(o)) {
                out.retain(|o| !o.starts_with(&c));
                out.push(c);
            }
        }
        // A state dir holding nothing but clawback's own files (left by an older version) is no
        // OpenClaw install: backing it up would save an empty snapshot.
        out.retain(|p| *p != layout.state_dir || holds_more_than_clawback(p));
        if out.is_empty() {
            return Err(usage(format!(
                "no OpenClaw state dir at {} (set OPENCLAW_STATE_DIR, or give the paths to back up)",
                layout.state_dir.display()
            )));
        }
        out
    };
    let mut reasons: Vec<(String, String)> = Vec::new();
    if !a.no_default_excludes {
        for e in openclaw::default_excludes(&layout) {
            reasons.push((e.pattern, e.reason));
        }
    }
    for p in &cfg.exclude {
        reasons.push((p.clone(), "exclude in the config".into()));
    }
    for p in &a.excludes {
        reasons.push((p.clone(), format!("--exclude {p}")));
    }
    for f in &a.exclude_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read exclude file {}", f.display()))?;
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            reasons.push((l.to_string(), format!("{} in {}", l, f.display())));
        }
    }
    let honour_gitignore = (a.gitignore || cfg.include_gitignore()) && !a.no_gitignore;
    let gitignore_roots =
        if honour_gitignore { layout.workspaces.iter().map(|w| w.path.clone()).collect() } else { Vec::new() };
    // The config's version, unless the installed CLI answers `openclaw --version` (asked once per
    // backup, with a time limit, while it runs).
    let openclaw = layout.state_dir.is_dir().then(|| layout.to_meta());
    let openclaw_cli = openclaw.is_some().then(openclaw::version::CliVersion::ask);
    Ok(Selection {
        paths,
        excludes: reasons.iter().map(|(p, _)| p.clone()).collect(),
        reasons,
        gitignore_roots,
        openclaw,
        openclaw_cli,
    })
}

/// Whether `dir` holds anything besides clawback's own folder and config file.
fn holds_more_than_clawback(dir: &std::path::Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().any(|e| !matches!(e.file_name().to_str(), Some("clawback" | "clawback.json"))),
        Err(_) => true,
    }
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let interrupt = Interrupt::new();
    if !a.dry_run {
        // Ctrl-C and SIGTERM say what was kept; a second one ends the process at once.
        if let Err(e) = interrupt.catch(&[libc::SIGINT, libc::SIGTERM], true) {
            eprintln!("clawback: warning: cannot catch SIGINT and SIGTERM: {e}");
        }
    }
    let how =
        runs::How { interrupt: &interrupt, trigger: runs::trigger_from_env(), pruner: Pruner::Backup, progress: None };
    // One run-log line and the notifications, whatever the outcome (see runs.rs).
    runs::record(g, a.dry_run, &how, Box::new(|_, code| code), |rec| recorded(ctx, a, &how, rec)).result
}

/// One recorded backup with the config's hooks around it: `backup`, or a cycle of the daemon
/// (`how` says which).
pub fn recorded(ctx: &Ctx, a: &Args, how: &runs::How, rec: &mut Recording) -> Result<i32> {
    let g = &ctx.g;
    let s = context::Settings::load(g)?;
    crate::commands::migrate::warn(g);
    if !s.config.enabled() && !a.dry_run {
        // Scheduled runs stop; one asked for by hand still runs, and says so.
        if how.trigger.is_some() {
            if !g.quiet {
                eprintln!("clawback: backups are disabled in the config (enabled: false)");
            }
            return Ok(0);
        }
        if !g.quiet {
            eprintln!(
                "clawback: note: backups are disabled in the config (enabled: false); backing up because you asked"
            );
        }
    }
    let cfg = s.config.hooks.clone();
    if a.dry_run || (cfg.before.is_empty() && cfg.after.is_empty()) {
        return run_backup(ctx, a, s, how, rec, &mut None);
    }
    let warn = |e: &dyn std::fmt::Display| {
        if !g.quiet {
            eprintln!("clawback: warning: {e}");
        }
    };
    match hooks::before(&cfg, &hook_output) {
        hooks::Before::Go => {}
        hooks::Before::GoAnyway(w) => warn(&w),
        hooks::Before::Abort { error, after } => {
            after.iter().for_each(|e| warn(e));
            return Err(error.into());
        }
    }
    let mut saved = None;
    let r = run_backup(ctx, a, s, how, rec, &mut saved);
    let code = match &r {
        Ok(c) => *c,
        Err(e) => ui::exit_code(e),
    };
    hooks::run_after(&cfg, &hooks::Outcome::from_exit(code, saved), &hook_output).iter().for_each(|e| warn(e));
    r
}

/// Where hook output goes: this process's stderr (so `--json` output on stdout stays clean), or
/// nowhere if it cannot be duplicated.
fn hook_output() -> std::process::Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => std::process::Stdio::from(fd),
        Err(_) => std::process::Stdio::null(),
    }
}

/// What a backup into the repository `res` never reads: the repository, if it is a folder, and
/// the cache in use (named or the default one): it changes during the backup and holds only
/// copies of what the repository has.
fn skip_paths(g: &GlobalArgs, res: &context::Resolved) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = res.location.local_path().map(|p| p.to_path_buf()).into_iter().collect();
    out.push(g.cache_dir.clone().unwrap_or_else(clawback_engine::repo::default_cache_base));
    out
}

/// The backup itself (hooks aside); `saved` gets the snapshot id once one is written.
fn run_backup(
    ctx: &Ctx,
    a: &Args,
    s: context::Settings,
    how: &runs::How,
    rec: &mut Recording,
    saved: &mut Option<String>,
) -> Result<i32> {
    let g = &ctx.g;
    // Know what to back up before creating anything: no state dir, no new repository.
    let sel = select(g, &s, a)?;
    // A first backup's dictionaries are sampled while the key is derived (`Presample`).
    let mut presample = None;
    let (repo, res) = ctx.open_or_create_default_then(&s, |be, res| {
        if !a.dry_run && a.parent.is_none() && repo::first_open_here(&context::cache_options(g), be.as_ref()) {
            let scope = BackupOptions {
                paths: sel.paths.clone(),
                excludes: sel.excludes.clone(),
                skip_paths: skip_paths(g, res),
                gitignore_roots: sel.gitignore_roots.clone(),
                ..Default::default()
            };
            presample = Some(Presample::start(be.clone(), &scope));
        }
    })?;

    let time = ui::parse_time(a.time.as_deref())?;
    let parent = match &a.parent {
        Some(p) => Some(crate::select::find_any(&repo, p)?.0),
        None => None,
    };
    let opts = BackupOptions {
        paths: sel.paths,
        excludes: sel.excludes,
        skip_paths: skip_paths(g, &res),
        tags: crate::select::new_tags(&a.tags),
        host: a.host.clone(),
        time,
        dry_run: a.dry_run,
        parent,
        force: a.force,
        // A watched run (the web console) shows an ETA, so it needs the totals too.
        scan_totals: how.progress.is_some() || (!g.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())),
        openclaw: sel.openclaw,
        openclaw_cli: sel.openclaw_cli,
        gitignore_roots: sel.gitignore_roots,
        exclude_reasons: sel.reasons,
        group: a.group.clone(),
        stdin_commands: match (&a.stdin_from_command, &a.stdin_filename) {
            (Some(command), Some(filename)) => {
                vec![StdinCommand { command: command.clone(), filename: filename.clone() }]
            }
            _ => Vec::new(),
        },
        presample,
    };
    let progress = how.progress.clone().unwrap_or_else(|| Arc::new(Progress::default()));
    let bar = ui::Bar::start(g.quiet || g.json, progress.clone(), "backup");
    how.interrupt.writing(&progress);
    let r = backup(&repo, &opts, &progress);
    how.interrupt.written();
    bar.finish();
    let r = match r {
        Err(clawback_engine::Error::Interrupted) => {
            let sig = how.interrupt.signal().unwrap_or(libc::SIGINT);
            let stored = progress.bytes_stored.load(std::sync::atomic::Ordering::Relaxed);
            return Err(runs::interrupted_error(sig, stored, None));
        }
        r => r?,
    };
    *saved = r.snapshot_id.map(|i| i.to_hex());
    let (anomalies, retention) = match (r.snapshot_id, &r.snapshot) {
        (Some(id), Some(snapshot)) if !a.dry_run => {
            let w = Written { snapshot, parent: r.parent.as_ref(), forced: a.force };
            let anomalies = rec.backup_done(&r, &w);
            if !g.quiet {
                for a in &anomalies {
                    eprintln!("clawback: warning: anomaly: {}", a.message);
                }
            }
            if let Some(sig) = how.interrupt.signal() {
                return Err(runs::interrupted_error(sig, 0, Some(&id.to_hex())));
            }
            let password = || ctx.password(&s, &res, false).map_err(|e| ui::error_line(&e));
            let mut step = retention::after_backup(
                &repo,
                &s.config.retention,
                &id,
                &rec.started().dir,
                how.pruner,
                Utc::now(),
                password,
            );
            if !g.quiet {
                for w in &step.warnings {
                    eprintln!("clawback: warning: {w}");
                }
            }
            rec.retention_done(&mut step);
            (anomalies, step.outcome)
        }
        _ => (Vec::new(), None),
    };
    let s = &r.summary;
    if g.json {
        ui::print_json(&serde_json::json!({
            "snapshot_id": r.snapshot_id.map(|i| i.to_hex()),
            "parent_id": r.parent_id.map(|i| i.to_hex()),
            "files_new": s.files_new,
            "files_changed": s.files_changed,
            "files_unmodified": s.files_unmodified,
            "dirs": s.dirs,
            "bytes_read": s.bytes_read,
            "bytes_added": s.bytes_added,
            "bytes_stored": s.bytes_stored,
            "duration_s": s.duration_s,
            "total_files": s.total_files,
            "total_bytes": s.total_bytes,
            // On a dry run, what would be read and what is left out, and why; else null.
            "dry_run": r.dry_run,
            "errors": r.errors,
            "skipped": r.skipped,
            "changed": r.changed,
            "warnings": r.warnings,
            // Files of the parent given new content (files_changed also counts re-reads).
            "files_content_changed": r.files_content_changed,
            // Against the parent and the recent runs of the same host and paths: mass change or
            // deletion, jumps in new data, new-content files or duration.
            "anomalies": anomalies,
            // What the retention policy forgot after the backup, and prune; null with no policy.
            "retention": retention,
            // Requests sent to the repository by type (S3 counts them; {} for a folder).
            "requests": context::requests_json(repo.backend().as_ref()),
        }));
    } else if !g.quiet {
        for e in &r.errors {
            eprintln!("clawback: could not read {}: {}", e.path, e.error);
        }
        if g.verbose > 0 {
            for e in &r.skipped {
                eprintln!("clawback: skipped {}: {}", e.path, e.error);
            }
        }
        for e in &r.changed {
            eprintln!("clawback: {} {}", e.path, e.error);
        }
        for e in &r.warnings {
            eprintln!("clawback: warning: {}: {}", e.path, e.error);
        }
        if let Some(report) = &r.dry_run {
            print_dry_run(report, g.verbose > 0);
        }
        println!(
            "files: {} new, {} changed, {} unmodified; {} folders",
            s.files_new, s.files_changed, s.files_unmodified, s.dirs
        );
        println!(
            "read {}, added {}, stored {} in {:.2}s",
            ui::human_bytes(s.bytes_read),
            ui::human_bytes(s.bytes_added),
            ui::human_bytes(s.bytes_stored),
            s.duration_s
        );
        match r.snapshot_id {
            Some(id) => println!("snapshot {} saved", id.short()),
            None => println!("dry run: nothing stored"),
        }
        if let Some(rt) = &retention {
            print_retention(rt);
        }
    }
    // After the output: its request counts are the backup's own.
    if let Some(id) = r.snapshot_id.filter(|_| !a.dry_run) {
        runs::record_size(
            &rec.started().dir,
            &repo,
            SizeEvent::Backup,
            Some(id.to_hex()),
            Some(r.summary.bytes_stored),
        );
    }
    if !r.errors.is_empty() {
        if !g.json {
            eprintln!("clawback: {} files could not be read; the snapshot lists them (exit 3)", r.errors.len());
        }
        return Ok(3);
    }
    Ok(0)
}

fn print_retention(rt: &clawback_engine::run::runlog::RetentionOutcome) {
    if let Some(e) = &rt.error {
        println!("retention: {e}");
        return;
    }
    let prune = match (rt.prune.as_deref(), rt.next_prune) {
        (Some("started"), _) => {
            let log = retention::prune_log(&runs::clawback_dir());
            format!("; prune started in the background (output in {})", log.display())
        }
        (Some("not_due"), Some(t)) => format!("; prune is next due at {}", t.format("%Y-%m-%d %H:%M UTC")),
        (Some("daemon"), _) => "; the daemon prunes when due".to_string(),
        _ => String::new(),
    };
    let n = rt.removed.len();
    let s = if n == 1 { "" } else { "s" };
    println!("retention: forgot {n} snapshot{s} of this host and paths, kept {}{prune}", rt.kept);
}

/// The dry-run report as tables: per path, what is left out (largest first) and the largest files.
fn print_dry_run(r: &DryRunReport, verbose: bool) {
    const ROWS: usize = 40;
    println!("would back up {} in {} files:", ui::human_bytes(r.included_bytes), r.included_files);
    println!("  {:>12}  {:>9}  path", "size", "files");
    let mut roots: Vec<_> = r.roots.iter().collect();
    roots.sort_by_key(|x| std::cmp::Reverse(x.bytes));
    for x in roots {
        println!("  {:>12}  {:>9}  {}", ui::human_bytes(x.bytes), x.files, x.path);
    }
    if r.excluded.is_empty() {
        println!("left out: nothing");
    } else {
        println!(
            "left out {} in {} files ({} entries), largest first:",
            ui::human_bytes(r.excluded_bytes),
            r.excluded_files,
            r.excluded.len()
        );
        println!("  {:>12}  {:>9}  {:<50}  why", "size", "files", "path");
        let shown = if verbose { r.excluded.len() } else { ROWS.min(r.excluded.len()) };
        for e in &r.excluded[..shown] {
            let path = if e.dir { format!("{}/", e.path) } else { e.path.clone() };
            let why = match &e.pattern {
                Some(p) if !e.reason.contains(p.as_str()) => format!("{} ({p})", e.reason),
                _ => e.reason.clone(),
            };
            println!("  {:>12}  {:>9}  {:<50}  {}", ui::human_bytes(e.bytes), e.files, path, why);
        }
        if shown < r.excluded.len() {
            let rest = &r.excluded[shown..];
            println!(
                "  ... and {} more ({}); -v lists them all",
                rest.len(),
                ui::human_bytes(rest.iter().map(|e| e.bytes).sum())
            );
        }
    }
    if !r.largest.is_empty() {
        println!("largest files included:");
        println!("  {:>12}  path", "size");
        for f in &r.largest {
            println!("  {:>12}  {}", ui::human_bytes(f.bytes), f.path);
        }
    }
}
