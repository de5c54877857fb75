//! `clawback unlock`: remove leases left by processes that are gone (`--remove-all`: every lease).

use crate::context::Ctx;
use anyhow::Result;
use clawback_engine::commands::unlock::unlock;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove live leases too (a running backup or prune loses its protection)
    #[arg(long)]
    pub remove_all: bool,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let repo = ctx.open()?;
    if a.remove_all && !g.quiet {
        eprintln!(
            "clawback: warning: --remove-all removes live leases too: a prune or backup still running loses \
             its protection; use it only when you know none runs"
        );
    }
    let r = unlock(&repo, a.remove_all)?;
    if g.json {
        crate::ui::print_json(&serde_json::json!({"removed": r.removed, "kept": r.kept}));
        return Ok(0);
    }
    if g.quiet {
        return Ok(0);
    }
    for l in &r.removed {
        println!("removed {} ({})", l.name, l.holder.as_deref().unwrap_or("unreadable"));
    }
    for l in &r.kept {
        println!("kept live {} ({})", l.name, l.holder.as_deref().unwrap_or("unreadable"));
    }
    println!("{} leases removed, {} live leases kept", r.removed.len(), r.kept.len());
    Ok(0)
}
