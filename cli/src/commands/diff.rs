//! `clawback diff A B`: what changed between two snapshots, with an OpenClaw summary on top; and
//! `clawback diff A:PATH B[:PATH]`: what changed in one file between two snapshots (a unified diff
//! for text, lines appended for transcripts, row counts for databases).

use crate::context::Ctx;
use crate::ui::human_bytes;
use anyhow::Result;
use clawback_engine::commands::diff::{diff, Change, DiffResult};
use clawback_engine::format::tree::NodeKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The earlier snapshot: id, prefix, or `latest`; SNAPSHOT:PATH compares one file
    pub a: String,
    /// The later snapshot: id, prefix, or `latest`; SNAPSHOT:PATH (or SNAPSHOT: the same path)
    pub b: String,
    /// With `latest`: the newest snapshot these select
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
    /// Only the OpenClaw summary and the counts, not every changed path
    #[arg(long)]
    pub summary: bool,
}

fn kind_name(k: NodeKind) -> &'static str {
    crate::commands::ls::kind_name(k)
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    if a.a.contains(':') || a.b.contains(':') {
        return run_file(ctx, a);
    }
    let repo = ctx.open()?;
    let (ida, sa) = crate::select::find(&repo, &a.a, &a.filter, |_| true)?;
    let (idb, sb) = crate::select::find(&repo, &a.b, &a.filter, |_| true)?;
    let r = diff(&repo, &sa, &sb)?;
    if g.json {
        crate::ui::print_json(&to_json(&r, &ida.to_hex(), &idb.to_hex()));
        return Ok(0);
    }
    println!("comparing snapshot {} ({}) with {} ({})", ida.short(), sa.time, idb.short(), sb.time);
    print_summary(&r);
    if !a.summary && !r.entries.is_empty() {
        println!();
        for e in &r.entries {
            let slash = if e.kind == NodeKind::Dir { "/" } else { "" };
            println!("{}  {}{slash}", e.change.marker(), e.path.display());
        }
    }
    Ok(0)
}

/// `diff A:PATH B[:PATH]`: one file in two snapshots.
fn run_file(ctx: &Ctx, a: &Args) -> Result<i32> {
    use clawback_engine::commands::dump::{find, Found};
    use clawback_engine::commands::history::{compare, content_id};
    let Some((spec_a, path_a)) = a.a.split_once(':').filter(|(_, p)| !p.is_empty()) else {
        return Err(crate::ui::usage(format!(
            "{:?}: to compare one file give SNAPSHOT:PATH first (e.g. latest~1:~/.openclaw/workspace/MEMORY.md)",
            a.a
        )));
    };
    let (spec_b, path_b) = a.b.split_once(':').unwrap_or((&a.b, ""));
    let path_a = super::history::snapshot_path(path_a)?;
    let path_b = if path_b.is_empty() { path_a.clone() } else { super::history::snapshot_path(path_b)? };
    let repo = ctx.open()?;
    let (ida, sa) = crate::select::find(&repo, spec_a, &a.filter, |_| true)?;
    let (idb, sb) = crate::select::find(&repo, spec_b, &a.filter, |_| true)?;
    let node = |s, p: &std::path::Path| -> Result<_> {
        match find(&repo, s, p)? {
            Found::Node(n) => Ok(n),
            Found::Root(_) => Err(crate::ui::usage("give a file's path, not /")),
        }
    };
    let (na, nb) = (node(&sa, &path_a)?, node(&sb, &path_b)?);
    let (la, lb) = (format!("{}:{}", ida.short(), path_a.display()), format!("{}:{}", idb.short(), path_b.display()));
    let c = compare(&repo, &na, &nb, &path_b, &la, &lb)?;
    if ctx.g.json {
        let side = |id: &clawback_engine::format::id::SnapshotId,
                    p: &std::path::Path,
                    n: &clawback_engine::format::tree::Node| {
            serde_json::json!({
                "snapshot": id.to_hex(),
                "path": p.to_string_lossy(),
                "size": n.size,
                "mtime": super::ls::mtime_rfc3339(n.mtime_ns),
                "content_id": content_id(n),
            })
        };
        crate::ui::print_json(&serde_json::json!({
            "a": side(&ida, &path_a, &na),
            "b": side(&idb, &path_b, &nb),
            "changes": c,
        }));
        return Ok(0);
    }
    println!("comparing {la} ({}) with {lb} ({})", sa.time, sb.time);
    super::history::print_comparison(&c, "");
    Ok(0)
}

fn signed(n: i64) -> String {
    if n < 0 {
        format!("-{}", human_bytes(n.unsigned_abs()))
    } else {
        format!("+{}", human_bytes(n as u64))
    }
}

fn print_summary(r: &DiffResult) {
    let o = &r.openclaw;
    if !o.is_empty() {
        println!("OpenClaw:");
        if !o.sessions.is_empty() {
            let removed = o.sessions.iter().filter(|s| s.change == Change::Removed).count();
            let mut line = format!(
                "  sessions: {} new, {} grown ({} appended)",
                o.sessions_added(),
                o.sessions_grown(),
                human_bytes(o.session_bytes_grown())
            );
            if removed > 0 {
                line.push_str(&format!(", {removed} removed"));
            }
            println!("{line}");
            for s in &o.sessions {
                let what = match s.change {
                    Change::Added => format!("new, {}", human_bytes(s.size_after.unwrap_or(0))),
                    Change::Removed => "removed".to_string(),
                    Change::Modified => signed(s.grown),
                };
                println!("    {} {}  ({what})", s.change.marker(), s.path);
            }
        }
        for (title, list) in [("memory", &o.memory), ("config/credentials", &o.config), ("databases", &o.databases)] {
            if list.is_empty() {
                continue;
            }
            println!("  {title}: {} changed", list.len());
            for f in list {
                let size = match (f.size_before, f.size_after) {
                    (Some(b), Some(a)) if a != b => format!("  ({} -> {})", human_bytes(b), human_bytes(a)),
                    (None, Some(a)) => format!("  ({})", human_bytes(a)),
                    _ => String::new(),
                };
                println!("    {} {}{size}", f.change.marker(), f.path);
            }
        }
    }
    let s = &r.stats;
    let mut line = format!(
        "files: {} added, {} removed, {} modified; folders: {} added, {} removed",
        s.files_added, s.files_removed, s.files_modified, s.dirs_added, s.dirs_removed
    );
    if s.others_added + s.others_removed + s.others_modified > 0 {
        line.push_str(&format!(
            "; symlinks: {} added, {} removed, {} modified",
            s.others_added, s.others_removed, s.others_modified
        ));
    }
    println!(
        "{line}; {} added, {} removed, {} grown, {} shrunk",
        human_bytes(s.bytes_added),
        human_bytes(s.bytes_removed),
        human_bytes(s.bytes_grown),
        human_bytes(s.bytes_shrunk),
    );
}

pub fn to_json(r: &DiffResult, a: &str, b: &str) -> serde_json::Value {
    let paths = |c: Change| -> Vec<String> {
        r.entries.iter().filter(|e| e.change == c).map(|e| e.path.to_string_lossy().into_owned()).collect()
    };
    let entries: Vec<serde_json::Value> = r
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "path": e.path.to_string_lossy(),
                "change": e.change,
                "type": kind_name(e.kind),
                "size_before": e.size_before,
                "size_after": e.size_after,
                "content_changed": e.content_changed,
                "metadata_changed": e.metadata_changed,
            })
        })
        .collect();
    serde_json::json!({
        "snapshot_a": a,
        "snapshot_b": b,
        "added": paths(Change::Added),
        "removed": paths(Change::Removed),
        "modified": paths(Change::Modified),
        "entries": entries,
        "summary": r.stats,
        "openclaw": {
            "sessions": r.openclaw.sessions,
            "sessions_added": r.openclaw.sessions_added(),
            "sessions_grown": r.openclaw.sessions_grown(),
            "session_bytes_grown": r.openclaw.session_bytes_grown(),
            "memory": r.openclaw.memory,
            "config": r.openclaw.config,
            "databases": r.openclaw.databases,
        },
    })
}
