//! `clawback import ARCHIVE`: turn an `openclaw backup create` archive into a snapshot.

use crate::context::{self, Ctx};
use crate::ui::{self, usage};
use anyhow::{Context, Result};
use clawback_engine::commands::archive::{import, ImportOptions};
use clawback_engine::progress::Progress;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The archive (`.tar.gz` made by `openclaw backup create`, or by `clawback export`); `-` reads
    /// standard input
    pub archive: PathBuf,
    /// Host name to record (default: the one a clawback export recorded, else this machine's)
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
    /// Tag the snapshot (a,b: both tags; repeatable)
    #[arg(long = "tag", value_name = "T[,T]")]
    pub tags: Vec<String>,
    /// The age identity file that opens an encrypted archive (`export --encrypt`)
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Snapshot time, RFC 3339 (default: the archive's `createdAt`)
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let time = ui::parse_time(a.time.as_deref())?;
    let input: Box<dyn std::io::Read> = if a.archive.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&a.archive).with_context(|| format!("cannot open {}", a.archive.display()))?;
        if let Ok(md) = f.metadata() {
            if md.is_dir() {
                return Err(usage(format!("{} is a folder, not an archive", a.archive.display())));
            }
        }
        Box::new(f)
    };
    let input = clawback_engine::commands::sealed::open_maybe_sealed(input, a.identity.as_deref())?;
    let s = context::Settings::load(g)?;
    let (repo, _) = ctx.open_or_create_default(&s)?;
    let opts = ImportOptions { host: a.host.clone(), tags: crate::select::new_tags(&a.tags), time };
    let progress = Arc::new(Progress::default());
    let bar = ui::Bar::start(g.quiet || g.json, progress.clone(), "import");
    let r = import(&repo, input, &opts, &progress);
    bar.finish();
    let r = r?;
    if g.json {
        ui::print_json(&serde_json::json!({
            "snapshot_id": r.snapshot_id.to_hex(),
            "time": r.snapshot.time,
            "archive_root": r.archive_root,
            "created_at": r.created_at,
            "paths": r.snapshot.paths,
            "files": r.files,
            "dirs": r.dirs,
            "symlinks": r.symlinks,
            "bytes": r.bytes,
            "bytes_added": r.snapshot.summary.bytes_added,
            "bytes_stored": r.snapshot.summary.bytes_stored,
            "skipped": r.skipped,
            "warnings": r.warnings,
        }));
    } else if !g.quiet {
        for s in &r.skipped {
            eprintln!("clawback: left out: {}: {}", s.path, s.error);
        }
        for w in &r.warnings {
            eprintln!("clawback: warning: {}: {}", w.path, w.error);
        }
        println!(
            "imported {} ({} files, {}, {} folders, {} symlinks) as snapshot {} of {}",
            r.archive_root,
            r.files,
            ui::human_bytes(r.bytes),
            r.dirs,
            r.symlinks,
            r.snapshot_id.short(),
            r.snapshot.time
        );
        for p in &r.snapshot.paths {
            println!("  {p}");
        }
    }
    Ok(0)
}
