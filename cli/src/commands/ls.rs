//! `clawback ls SNAPSHOT [PATH]`: list the files in a snapshot.

use crate::context::Ctx;
use anyhow::Result;
use clawback_engine::commands::ls::walk;
use clawback_engine::format::tree::NodeKind;
use clawback_engine::repo::host::absolute_clean;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id, prefix, or `latest`
    pub snapshot: String,
    /// Only entries under this path
    pub path: Option<PathBuf>,
    /// With `latest`: the newest snapshot these select
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
    /// Long listing: type, mode, size, mtime
    #[arg(long, short = 'l')]
    pub long: bool,
}

pub fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
    }
}

pub fn mtime_rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let repo = ctx.open()?;
    let (_, snap) = crate::select::find(&repo, &a.snapshot, &a.filter, |_| true)?;
    let under = match &a.path {
        Some(p) => absolute_clean(p)?,
        None => PathBuf::from("/"),
    };
    let mut json = Vec::new();
    walk(&repo, &snap, &under, &mut |e| {
        if g.json {
            json.push(serde_json::json!({
                "path": e.path.to_string_lossy(),
                "type": kind_name(e.node.kind),
                "size": e.node.size,
                "mode": e.node.mode,
                "mtime": mtime_rfc3339(e.node.mtime_ns),
            }));
        } else if a.long {
            println!(
                "{:<7} {:04o} {:>12} {} {}",
                kind_name(e.node.kind),
                e.node.mode,
                e.node.size,
                mtime_rfc3339(e.node.mtime_ns),
                e.path.display()
            );
        } else {
            println!("{}", e.path.display());
        }
    })?;
    if g.json {
        crate::ui::print_json(&serde_json::Value::Array(json));
    }
    Ok(0)
}
