//! `clawback snapshots` (alias `list`): list snapshots, newest last.

use crate::context::Ctx;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
    /// Only the newest N
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let repo = ctx.open()?;
    let mut list = repo.snapshots_matching(&a.filter.filter()?)?;
    if let Some(n) = a.latest {
        let skip = list.len().saturating_sub(n);
        list.drain(..skip);
    }
    if g.json {
        let v: Vec<_> = list.iter().map(|(id, s)| super::snapshot_json(id, s)).collect();
        crate::ui::print_json(&serde_json::Value::Array(v));
        return Ok(0);
    }
    println!("{:<9} {:<20} {:<16} {:<16} Paths", "ID", "Time", "Host", "Tags");
    for (id, s) in &list {
        let t = s.time().with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S");
        println!("{:<9} {:<20} {:<16} {:<16} {}", id.short(), t, s.hostname, s.tags.join(","), s.paths.join(" "));
        if let Some(gr) = &s.group {
            println!("{:<9} group {gr}", "");
        }
        // What the backup knew of OpenClaw: version, agents and workspaces.
        if let Some(oc) = &s.openclaw {
            let agents: Vec<&str> = oc.agents.iter().map(|a| a.id.as_str()).collect();
            println!(
                "{:<9} openclaw {} (state {}), agents: {}, workspaces: {}",
                "",
                oc.openclaw_version.as_deref().unwrap_or("version unknown"),
                oc.state_dir,
                if agents.is_empty() { "-".to_string() } else { agents.join(", ") },
                oc.workspaces.len()
            );
        }
    }
    println!("{} snapshots", list.len());
    Ok(0)
}
