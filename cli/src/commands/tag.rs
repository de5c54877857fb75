//! `clawback tag --add/--remove/--set T SNAPSHOT...`: change snapshots' tags (each changed
//! snapshot is written anew, recording the original's id, and the old object removed).

use crate::context::Ctx;
use anyhow::Result;
use clawback_engine::commands::tag::{tag, TagChange};
use clawback_engine::format::snapshot::tag_lists;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshots: ids, prefixes, or `latest`; none: every snapshot the filter selects
    pub snapshots: Vec<String>,
    /// Add these tags (T1,T2; repeatable)
    #[arg(long, value_name = "T[,T]")]
    pub add: Vec<String>,
    /// Remove these tags (T1,T2; repeatable)
    #[arg(long, value_name = "T[,T]")]
    pub remove: Vec<String>,
    /// Replace all tags by these (T1,T2; repeatable; "" clears them)
    #[arg(long, value_name = "T[,T]", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
    /// Only show what would change
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Which snapshots (with `latest`, or with no SNAPSHOT: all these select)
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
}

fn flat(v: &[String]) -> Vec<String> {
    tag_lists(v).into_iter().flatten().collect()
}

/// SNAPSHOT... resolved, or with none every snapshot the filter selects (refused when the filter
/// selects everything, so a slip does not touch every snapshot).
pub fn selected(
    repo: &clawback_engine::repo::Repository,
    specs: &[String],
    f: &crate::select::SnapshotFilter,
    what: &str,
) -> Result<Vec<(clawback_engine::format::id::SnapshotId, clawback_engine::format::snapshot::Snapshot)>> {
    if specs.is_empty() {
        let filter = f.filter()?;
        if filter.is_empty() {
            return Err(crate::ui::usage(format!(
                "{what} needs snapshots: give SNAPSHOT ids, or --host/--tag/--path/--group to select them"
            )));
        }
        return Ok(repo.snapshots_matching(&filter)?);
    }
    let mut out: Vec<(clawback_engine::format::id::SnapshotId, _)> = Vec::new();
    for s in specs {
        let found = crate::select::find(repo, s, f, |_| true)?;
        if !out.iter().any(|(id, _)| *id == found.0) {
            out.push(found);
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let change =
        TagChange { set: (!a.set.is_empty()).then(|| flat(&a.set)), add: flat(&a.add), remove: flat(&a.remove) };
    change.validate()?;
    let repo = ctx.open()?;
    let snaps = selected(&repo, &a.snapshots, &a.filter, "tag")?;
    let r = tag(&repo, &snaps, &change, a.dry_run)?;
    if g.json {
        let changed: Vec<_> = r
            .changed
            .iter()
            .map(|c| {
                serde_json::json!({
                    "snapshot": c.snapshot.to_hex(),
                    "new_snapshot": c.new_snapshot.map(|i| i.to_hex()),
                    "tags_before": c.tags_before,
                    "tags": c.tags,
                })
            })
            .collect();
        crate::ui::print_json(&serde_json::json!({
            "changed": changed,
            "unchanged": r.unchanged.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            "dry_run": r.dry_run,
        }));
        return Ok(0);
    }
    if g.quiet {
        return Ok(0);
    }
    for c in &r.changed {
        let new = c.new_snapshot.map(|i| format!(" -> {}", i.short())).unwrap_or_default();
        println!("{}{new}: [{}] -> [{}]", c.snapshot.short(), c.tags_before.join(", "), c.tags.join(", "));
    }
    let verb = if a.dry_run { "would change" } else { "changed" };
    println!("{} snapshots {verb}, {} already as asked", r.changed.len(), r.unchanged.len());
    Ok(0)
}
