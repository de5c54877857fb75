//! `clawback restore SNAPSHOT [--target DIR]`: restore all or part of a snapshot, into a folder or
//! in place (to the original paths, after a safety snapshot, refusing while the OpenClaw gateway
//! runs on the state dir unless `--force`), or onto this machine's home with `--relocate`. The
//! rules are the engine's (`commands::restore::safety`); this parses, calls and prints.

use crate::context::{self, Ctx};
use crate::ui;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::commands::restore::{self, resolve_only, Action, RestoreOptions, SafetyOptions};
use clawback_engine::progress::Progress;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Snapshot id, prefix, or `latest` (may be left out with --group: the group's member from --host)
    #[arg(required_unless_present = "group")]
    pub snapshot: Option<String>,
    /// Folder to restore into (created if missing); without it, restore in place to the original paths
    #[arg(long, short = 't', value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Restore only paths matching this gitignore-style pattern (repeatable)
    #[arg(long = "include", short = 'i', value_name = "PAT")]
    pub includes: Vec<String>,
    /// Leave out paths matching this pattern (repeatable)
    #[arg(long = "exclude", short = 'e', value_name = "PAT")]
    pub excludes: Vec<String>,
    /// Restore only the OpenClaw state dir (`state`), every workspace (`workspace`), one agent's
    /// sessions, agent dir and workspace (`agent:ID`), every session (`sessions`) or one
    /// (`session:AGENT/ID`), the memory files (`memory`), the cron jobs (`cron`), the config
    /// (`config`), the credentials (`credentials`), or an absolute path (repeatable)
    #[arg(
        long = "only",
        value_name = "state|workspace|agent:ID|sessions|session:AGENT/ID|memory|cron|config|credentials|PATH"
    )]
    pub only: Vec<String>,
    /// Re-read and re-hash every restored file
    #[arg(long)]
    pub verify: bool,
    /// Show what would be restored (in place: what would change); write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// In place: remove files the snapshot does not have, within what is restored
    #[arg(long)]
    pub delete: bool,
    /// In place: restore even while an OpenClaw gateway is running. With --relocate: restore over
    /// what is already at the new places, after a safety snapshot
    #[arg(long)]
    pub force: bool,
    /// Restore onto this machine's home: the snapshot's home maps to $HOME, its state dir to where
    /// OpenClaw looks here; `--relocate=OLD=NEW` maps one path (repeatable). The paths in
    /// OpenClaw's config and databases move with them, each reported
    #[arg(long, value_name = "OLD=NEW", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub relocate: Vec<String>,
    /// With `latest`: the newest snapshot these select (with --group alone: the group's snapshot;
    /// with --group and --host, that host's member)
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
}

/// A restore done: what was restored, from which snapshot, and the command that undoes it.
pub struct Done {
    pub id: clawback_engine::format::id::SnapshotId,
    pub opts: RestoreOptions,
    pub r: restore::RestoreResult,
    /// The host the snapshot was taken on.
    pub hostname: String,
    /// In place with a safety snapshot: the command that puts back what was there before.
    pub undo: Option<String>,
}

/// The restore itself, with the engine's safety rules (safety snapshot, refusal while the gateway
/// runs); `clawback restore` and the web console (`clawback ui`) both call it.
pub fn execute(ctx: &Ctx, a: &Args, progress: &Arc<Progress>) -> Result<Done> {
    let g = &ctx.g;
    let in_place = a.target.is_none();
    restore::check_modes(!in_place, a.delete, !a.relocate.is_empty())?;
    let s = context::Settings::load(g)?;
    let repo = ctx.open_with(&s)?;
    // `latest` is the latest backup, not the safety snapshot a previous in-place restore took.
    let spec = a.snapshot.as_deref().unwrap_or("latest");
    let (id, snap) = crate::select::find(&repo, spec, &a.filter, |_| true)?;
    let only = resolve_only(&repo, &snap, &a.only)?;
    let relocation = crate::relocate::resolve(&a.relocate, a.force, &snap, &s.env)?;
    let running = restore::running_gateway(&s.env, &snap, relocation.as_ref(), in_place);
    if let Some(w) = restore::gateway_rule(running.as_ref(), a.dry_run, a.force)? {
        if !g.quiet {
            eprintln!("clawback: warning: {w}");
        }
    }
    let safety = if in_place {
        let res = context::resolve(g, &s)?;
        let local_repo = res.location.local_path().map(|p| p.to_path_buf());
        Some(SafetyOptions::pre_restore(local_repo, g.cache_dir.clone()))
    } else {
        None
    };
    let opts = RestoreOptions {
        target: a.target.clone().unwrap_or_else(|| PathBuf::from("/")),
        includes: a.includes.clone(),
        excludes: a.excludes.clone(),
        only: only.roots.clone(),
        only_except: only.except.clone(),
        rows: only.rows.clone(),
        verify: a.verify,
        dry_run: a.dry_run,
        in_place,
        delete: a.delete,
        safety,
        protect: s.config.exclude.clone(),
        relocate: relocation,
    };
    let r = restore::restore(&repo, &snap, &opts, progress)?;
    let undo = r.safety_snapshot.map(|sid| {
        let sel = restore::undo_selection(&only, !a.only.is_empty(), relocation_given(a), &r);
        undo_command(g, a, &sel, &sid.to_hex())
    });
    Ok(Done { id, opts, r, undo, hostname: snap.hostname })
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let in_place = a.target.is_none();
    let progress = Arc::new(Progress::default());
    let bar = ui::Bar::start(g.quiet || g.json, progress.clone(), "restore");
    let done = execute(ctx, a, &progress);
    bar.finish();
    let Done { id, opts, r, undo, hostname } = done?;
    if g.json {
        let mut v = serde_json::json!({
            "snapshot_id": id.to_hex(),
            "target": a.target.as_ref().map(|t| t.to_string_lossy()),
            "in_place": in_place,
            "files": r.files, "dirs": r.dirs, "symlinks": r.symlinks, "hardlinks": r.hardlinks,
            "bytes": r.bytes, "dry_run": a.dry_run, "errors": r.errors,
        });
        if !opts.rows.is_empty() {
            v.as_object_mut().expect("object").insert("rows".into(), r.rows.into());
        }
        if in_place {
            let o = v.as_object_mut().expect("object");
            o.insert("unchanged".into(), r.unchanged.into());
            o.insert("deleted".into(), r.deleted.into());
            o.insert("safety_snapshot_id".into(), r.safety_snapshot.map(|i| i.to_hex()).into());
            o.insert("undo".into(), undo.clone().into());
            o.insert("changes".into(), serde_json::to_value(&r.changes)?);
            o.insert("kept".into(), serde_json::to_value(&r.kept)?);
            if let Some(rep) = &r.relocation {
                o.insert("relocation".into(), serde_json::to_value(rep)?);
            }
        }
        ui::print_json(&v);
    } else if !g.quiet {
        if in_place {
            if let Some(rep) = &r.relocation {
                crate::relocate::print_moves(rep, &id.short(), &hostname, a.dry_run);
            }
            if a.dry_run || g.verbose > 0 {
                for c in &r.changes {
                    let verb = match c.action {
                        Action::Create => "create",
                        Action::Update => "update",
                        Action::Replace => "replace",
                        Action::Delete => "delete",
                    };
                    match &c.row {
                        Some(row) => println!("{verb:<8} {} ({row})", c.path),
                        None => println!("{verb:<8} {}", c.path),
                    }
                }
            }
            if let Some(sid) = &r.safety_snapshot {
                println!("safety snapshot {} holds what was there before (tag pre-restore)", sid.short());
            }
            for k in &r.kept {
                eprintln!("clawback: not deleted: {}: {}", k.path, k.error);
            }
            let verb = if a.dry_run { "would restore" } else { "restored" };
            let del = if a.dry_run { "would delete" } else { "deleted" };
            let place = if r.relocation.is_some() { "at the new places" } else { "in place" };
            let rows =
                if opts.rows.is_empty() { String::new() } else { format!(", {} units of database rows", r.rows) };
            println!(
                "{verb} {} files ({}), {} folders, {} symlinks{rows} {place} from snapshot {}; {} unchanged; {del} {}",
                r.files,
                ui::human_bytes(r.bytes),
                r.dirs,
                r.symlinks,
                id.short(),
                r.unchanged,
                r.deleted
            );
            if let Some(rep) = &r.relocation {
                crate::relocate::print_rewrites(rep, a.dry_run);
            }
            match (&undo, &r.relocation) {
                (Some(u), _) => println!("to undo: {u}"),
                (None, Some(rep)) if !a.dry_run => {
                    let roots: Vec<String> =
                        crate::relocate::created_roots(rep).iter().map(|p| p.display().to_string()).collect();
                    println!("nothing was there before: to undo, remove {}", roots.join(" "))
                }
                (None, _) if !a.dry_run => println!("nothing was there before: to undo, remove what was restored"),
                _ => {}
            }
        } else {
            let verb = if a.dry_run { "would restore" } else { "restored" };
            println!(
                "{verb} {} files ({}), {} folders, {} symlinks from snapshot {} to {}",
                r.files,
                ui::human_bytes(r.bytes),
                r.dirs,
                r.symlinks,
                id.short(),
                opts.target.display()
            );
        }
    }
    if !r.errors.is_empty() {
        for e in &r.errors {
            eprintln!("clawback: not restored: {}: {}", e.path, e.error);
        }
        eprintln!("clawback: {} files could not be restored (each listed above with the reason)", r.errors.len());
        return Ok(1);
    }
    Ok(0)
}

fn relocation_given(a: &Args) -> bool {
    !a.relocate.is_empty()
}

/// The command that puts back what the restore replaced: the safety snapshot restored in place
/// over the same selection (`only`: the engine's [`restore::undo_selection`]), with `--delete` so
/// what the restore added goes too.
fn undo_command(g: &GlobalArgs, a: &Args, only: &[String], safety: &str) -> String {
    let mut parts: Vec<String> = vec!["clawback".into()];
    // The repository, when it was named on the command line rather than by the environment.
    if let Some(r) = &g.repo {
        if std::env::var("CLAWBACK_REPO").ok().as_deref() != Some(r.as_str()) {
            parts.extend(["--repo".into(), r.clone()]);
        }
    }
    if let Some(c) = &g.config {
        parts.extend(["--config".into(), c.to_string_lossy().into_owned()]);
    }
    parts.extend(["restore".into(), safety.into()]);
    for o in only {
        parts.extend(["--only".into(), o.clone()]);
    }
    // Relocated: the patterns name the snapshot's paths, not the new places.
    let relocated = relocation_given(a);
    for i in a.includes.iter().filter(|_| !relocated) {
        parts.extend(["--include".into(), i.clone()]);
    }
    for e in a.excludes.iter().filter(|_| !relocated) {
        parts.extend(["--exclude".into(), e.clone()]);
    }
    parts.push("--delete".into());
    parts.iter().map(|p| shell_quote(p)).collect::<Vec<_>>().join(" ")
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("agent:main"), "agent:main");
        assert_eq!(shell_quote("/a b"), "'/a b'");
        assert_eq!(shell_quote("*.md"), "'*.md'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
