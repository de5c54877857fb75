//! `clawback dump SNAPSHOT PATH`: write one file of a snapshot to stdout, or a folder as tar.

use crate::context::Ctx;
use anyhow::Result;
use clawback_engine::commands::dump::{dump_file, dump_tar, find, Found};
use clawback_engine::format::tree::NodeKind;
use clawback_engine::repo::host::absolute_clean;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id, prefix, or `latest`
    pub snapshot: String,
    /// The file or folder, by its original path (a folder is written as a tar stream)
    pub path: PathBuf,
    /// With `latest`: the newest snapshot these select
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
    /// Write a single file as a tar stream too
    #[arg(long)]
    pub tar: bool,
}

/// A write error because the reader went away (`clawback dump ... | head`) is not a failure.
fn reader_gone(e: &clawback_engine::Error) -> bool {
    matches!(e, clawback_engine::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let repo = ctx.open()?;
    let (_, snap) = crate::select::find(&repo, &a.snapshot, &a.filter, |_| true)?;
    let path = absolute_clean(&a.path)?;
    let found = find(&repo, &snap, &path)?;
    crate::ui::private_stdout();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let r = match &found {
        Found::Node(n) if n.kind == NodeKind::File && !a.tar => dump_file(&repo, n, &path, &mut out).map(|_| ()),
        Found::Node(n) if n.kind == NodeKind::Symlink && !a.tar => {
            return Err(crate::ui::usage(format!(
                "{} is a symlink to {} in the snapshot; dump its target, or use --tar",
                path.display(),
                String::from_utf8_lossy(&n.target)
            )))
        }
        _ => dump_tar(&repo, &snap, &path, &mut out).map(|_| ()),
    };
    let r = r.and_then(|_| out.flush().map_err(|e| clawback_engine::Error::io("write", "standard output", e)));
    match r {
        Err(e) if reader_gone(&e) => Ok(0),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(0),
    }
}
