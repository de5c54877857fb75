//! `clawback check`: verify the repository's structure and, with `--read-data`, every byte of
//! its packs. Exit 0 when everything is in order, 1 when not.

use crate::context::Ctx;
use anyhow::Result;
use clawback_engine::commands::check::{self, CheckOptions, Problem, Subset};
use clawback_engine::progress::Progress;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also download every pack, verify its hash and decrypt and verify every blob
    #[arg(long)]
    pub read_data: bool,
    /// Read only a share of the packs: n/m (the nth of m groups by id) or P% (at random)
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,
}

fn print_problem(level: &str, p: &Problem) {
    println!("{level}: {}", p.message);
    if !p.files.is_empty() {
        let shown: Vec<&str> = p.files.iter().take(10).map(String::as_str).collect();
        let more = p.files.len().saturating_sub(shown.len());
        let short: Vec<&str> = p.snapshots.iter().map(|s| &s[..s.len().min(8)]).collect();
        println!(
            "  affects {} path(s) in snapshot(s) {}: {}{}",
            p.files.len(),
            short.join(", "),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let read_data = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => Some(Subset::parse(s)?),
        (None, true) => Some(Subset::All),
        (None, false) => None,
    };
    let repo = match ctx.open() {
        Ok(r) => r,
        // Opening reads every index file not in the cache; a damaged one is a finding of check.
        Err(e) => match e.downcast_ref::<clawback_engine::Error>() {
            Some(clawback_engine::Error::Corrupt { what: "index", id, .. }) => {
                let msg = format!("{e}; the rest of the check needs a readable index (`repair index` rebuilds it)");
                if g.json {
                    crate::ui::print_json(&serde_json::json!({
                        "ok": false,
                        "errors": [{"kind": "index", "message": msg, "index": id}],
                        "warnings": [],
                        "packs_checked": 0,
                        "blobs_checked": 0,
                    }));
                } else {
                    println!("error: {msg}");
                }
                eprintln!("clawback: check found a damaged index file {id}");
                return Ok(1);
            }
            _ => return Err(e),
        },
    };
    let progress = Arc::new(Progress::default());
    let bar = crate::ui::Bar::start(g.quiet || g.json, progress.clone(), "check");
    let r = check::check_with_progress(&repo, &CheckOptions { read_data }, &progress)?;
    bar.finish();
    if g.json {
        crate::ui::print_json(&serde_json::to_value(&r)?);
    } else {
        for w in &r.warnings {
            if !g.quiet {
                print_problem("warning", w);
            }
        }
        for e in &r.errors {
            print_problem("error", e);
        }
        if !g.quiet {
            println!(
                "{} snapshots, {} trees, {} packs, {} blobs checked{}",
                r.snapshots_checked,
                r.trees_checked,
                r.packs_checked,
                r.blobs_checked,
                if read_data.is_some() { " (data read)" } else { "" }
            );
            if r.ok {
                println!("no errors were found");
            }
        }
    }
    if r.ok {
        Ok(0)
    } else {
        if !g.json {
            eprintln!("clawback: check found {} error(s) in the repository", r.errors.len());
        }
        Ok(1)
    }
}
