//! `restore --relocate`: the flag's values, and the report of where each root went and each path
//! that moved. The work, and the gateway check on the new state dir, are the engine's
//! (`commands::restore::relocate`, `commands::restore::safety`).

use crate::ui::usage;
use anyhow::Result;
use clawback_engine::commands::restore::relocate::{self, RelocateSpec, Relocation, Report};
use clawback_engine::format::snapshot::Snapshot;
use clawback_engine::openclaw::Env;
use clawback_engine::repo::host::absolute_clean;
use std::path::{Path, PathBuf};

/// Resolves `--relocate` values (empty: onto this home; `OLD=NEW`: one pair) against the
/// snapshot; `None` without the flag. `force`: restore over what is already there.
pub fn resolve(values: &[String], force: bool, snap: &Snapshot, env: &Env) -> Result<Option<Relocation>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut spec = RelocateSpec { replace: force, ..Default::default() };
    for v in values {
        if v.is_empty() {
            spec.onto_home = true;
            continue;
        }
        let Some((old, new)) = v.split_once('=').filter(|(o, n)| !o.is_empty() && !n.is_empty()) else {
            return Err(usage(format!(
                "--relocate={v}: expected OLD=NEW (a path in the snapshot, and where it goes here), or --relocate alone"
            )));
        };
        if !old.starts_with('/') {
            return Err(usage(format!(
                "--relocate={v}: OLD must be the absolute path the snapshot recorded ({})",
                snap.paths.join(" ")
            )));
        }
        let new = absolute_clean(&env.expand(new))?;
        spec.pairs.push((PathBuf::from(old), new));
    }
    Ok(Some(relocate::resolve(snap, env, &spec)?))
}

/// Where each root goes (printed before the restore's summary).
pub fn print_moves(rep: &Report, short_id: &str, host: &str, dry_run: bool) {
    let verb = if dry_run { "would relocate" } else { "relocated" };
    println!("{verb} snapshot {short_id} (host {host}):");
    let width = rep.moves.iter().map(|m| m.what.len()).max().unwrap_or(0);
    for m in &rep.moves {
        let note = if m.occupied { "  (something was there: restored over it)" } else { "" };
        println!("  {:<width$}  {} -> {}{note}", m.what, m.from, m.to);
    }
}

/// Each path moved, what was left, and the warnings.
pub fn print_rewrites(rep: &Report, dry_run: bool) {
    if rep.rewrites.is_empty() {
        println!("{} no paths in what was restored", if dry_run { "would move" } else { "moved" });
    } else {
        println!("{} {} paths in what was restored:", if dry_run { "would move" } else { "moved" }, rep.rewrites.len());
        for w in &rep.rewrites {
            let rows = match w.rows {
                Some(1) => " (1 row)".to_string(),
                Some(n) => format!(" ({n} rows)"),
                None => String::new(),
            };
            println!("  {}: {}{rows}: {} -> {}", w.file, w.location, w.from, w.to);
        }
    }
    for l in &rep.left {
        println!(
            "left as written: {}: {}: {} {} an old path inside longer text",
            l.file,
            l.location,
            l.rows,
            if l.rows == 1 { "row mentions" } else { "rows mention" }
        );
    }
    for w in &rep.warnings {
        eprintln!("clawback: warning: {w}");
    }
}

/// What to remove to undo a relocation that found nothing at the new places.
pub fn created_roots(rep: &Report) -> Vec<&Path> {
    let mut v: Vec<&Path> = rep.moves.iter().map(|m| Path::new(&m.to)).collect();
    v.sort();
    v.dedup();
    let all = v.clone();
    v.retain(|p| !all.iter().any(|o| o != p && p.starts_with(o)));
    v
}
