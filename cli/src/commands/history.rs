//! `clawback history PATH`: every distinct version of one file across snapshots; `--patch` adds
//! what changed from each version to the next (the engine's `history::compare`). Also the
//! printing `diff A:PATH B:PATH` shares.

use crate::context::Ctx;
use crate::ui::human_bytes;
use anyhow::Result;
use clawback_engine::commands::history::{compare, history, Comparison};
use clawback_engine::repo::host::absolute_clean;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file (absolute, or relative to the current folder; ~ is expanded)
    pub path: PathBuf,
    /// Also show what changed from each version to the next
    #[arg(long)]
    pub patch: bool,
    /// Only the snapshots these select
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
}

/// The path as snapshots record it: `~` expanded, absolute, clean.
pub fn snapshot_path(p: &str) -> Result<PathBuf> {
    let env = clawback_engine::openclaw::Env::from_process();
    Ok(absolute_clean(&env.expand(p))?)
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let path = snapshot_path(&a.path.to_string_lossy())?;
    let repo = ctx.open()?;
    let snaps = repo.snapshots_matching(&a.filter.filter()?)?;
    let r = history(&repo, &snaps, &path)?;
    if r.versions.is_empty() {
        return Err(anyhow::anyhow!(clawback_engine::error::Error::Usage(format!(
            "{} is in none of the {} snapshots searched; `clawback find {}` looks for it by name",
            path.display(),
            r.snapshots_searched,
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ))));
    }
    let mut changes: Vec<Option<Comparison>> = vec![None];
    if a.patch {
        for w in r.versions.windows(2) {
            let la = format!("{}:{}", w[0].first_snapshot.short(), path.display());
            let lb = format!("{}:{}", w[1].first_snapshot.short(), path.display());
            let c = if w[0].node.kind == w[1].node.kind {
                Some(compare(&repo, &w[0].node, &w[1].node, &path, &la, &lb)?)
            } else {
                None
            };
            changes.push(c);
        }
    }
    if g.json {
        let versions: Vec<_> = r
            .versions
            .iter()
            .zip(changes.iter().chain(std::iter::repeat(&None)))
            .map(|(v, c)| {
                let mut j = serde_json::to_value(v).expect("JSON");
                j["first_snapshot"] = v.first_snapshot.to_hex().into();
                j["last_snapshot"] = v.last_snapshot.to_hex().into();
                j["mtime"] = super::ls::mtime_rfc3339(v.mtime_ns).into();
                if a.patch {
                    j["changes"] = serde_json::to_value(c).expect("JSON");
                }
                j
            })
            .collect();
        crate::ui::print_json(&serde_json::json!({
            "path": r.path,
            "snapshots_searched": r.snapshots_searched,
            "snapshots_holding": r.snapshots_holding,
            "versions": versions,
        }));
        return Ok(0);
    }
    println!(
        "{}: {} versions in {} of {} snapshots",
        r.path,
        r.versions.len(),
        r.snapshots_holding,
        r.snapshots_searched
    );
    for (i, v) in r.versions.iter().enumerate() {
        println!(
            "  #{:<3} {}  {:>10}  first {} ({})  last {} ({})  in {} snapshots",
            i + 1,
            &v.content_id[..12],
            human_bytes(v.size),
            v.first_snapshot.short(),
            v.first_time.get(..19).unwrap_or(&v.first_time),
            v.last_snapshot.short(),
            v.last_time.get(..19).unwrap_or(&v.last_time),
            v.snapshots
        );
        if let Some(Some(c)) = changes.get(i) {
            print_comparison(c, "    ");
        }
    }
    Ok(0)
}

/// What changed between two versions, for people.
pub fn print_comparison(c: &Comparison, indent: &str) {
    match c {
        Comparison::Same => println!("{indent}same content"),
        Comparison::Text { lines_before, lines_after, lines_added, lines_removed, patch } => {
            println!("{indent}text: {lines_before} -> {lines_after} lines, +{lines_added} -{lines_removed}");
            print!("{patch}");
        }
        Comparison::Jsonl { lines_before, lines_after, lines_appended, earlier_changed, patch } => {
            let earlier = if *earlier_changed { "earlier lines CHANGED" } else { "earlier lines unchanged" };
            println!(
                "{indent}transcript: {lines_appended} lines appended ({lines_before} -> {lines_after}), {earlier}"
            );
            if let Some(p) = patch {
                print!("{p}");
            }
        }
        Comparison::Sqlite { tables } => {
            println!("{indent}database: rows per table (before -> after)");
            let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            for t in tables {
                let mark = if t.rows_before == t.rows_after { " " } else { "*" };
                println!("{indent}{mark} {:<32} {:>10} -> {:<10}", t.table, n(t.rows_before), n(t.rows_after));
            }
        }
        Comparison::Binary { size_before, size_after, chunks_before, chunks_after, chunks_shared } => println!(
            "{indent}binary: {} -> {}, {chunks_shared} of {chunks_after} chunks shared with the {chunks_before} before",
            human_bytes(*size_before),
            human_bytes(*size_after)
        ),
    }
}
