//! `clawback export SNAPSHOT -o FILE`: write a snapshot as an `openclaw backup` archive. The file
//! is private (0600): an OpenClaw state dir carries its tokens and credentials; `--encrypt` seals it
//! with age for archives that leave the machine.

use crate::context::Ctx;
use crate::ui::{self, usage};
use anyhow::{Context, Result};
use clawback_engine::commands::archive::{export, holds_secrets, ExportResult};
use clawback_engine::commands::sealed;
use clawback_engine::format::id::SnapshotId;
use clawback_engine::format::snapshot::Snapshot;
use clawback_engine::progress::Progress;
use clawback_engine::repo::Repository;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id, prefix, or `latest`
    pub snapshot: String,
    /// The archive to write (`.tar.gz`); `-` writes to standard output. An existing file is never
    /// overwritten.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// With `latest`: the newest snapshot these select
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
    /// Encrypt the archive to this age recipient (age1...), or to those listed in this file
    /// (repeatable); open it with `age -d -i KEY` or `clawback import --identity KEY`
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt: Vec<String>,
}

/// A temporary file beside `dest`, renamed into place when the archive is complete.
fn temp_beside(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tag: u64 = (std::process::id() as u64) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    dest.with_file_name(format!(".{name}.{tag:x}.tmp"))
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let to_stdout = a.output.as_os_str() == "-";
    if !to_stdout && std::fs::symlink_metadata(&a.output).is_ok() {
        return Err(usage(format!("{} already exists; clawback never overwrites an archive", a.output.display())));
    }
    let recipients = clawback_engine::commands::sealed::recipients(&a.encrypt)?;
    let repo = ctx.open()?;
    let (id, snap) = crate::select::find(&repo, &a.snapshot, &a.filter, |_| true)?;
    let progress = Arc::new(Progress::default());
    progress.add_total(snap.summary.total_files, snap.summary.total_bytes);
    progress.total_known.store(snap.summary.total_files > 0, std::sync::atomic::Ordering::Relaxed);
    let r = if to_stdout {
        crate::ui::private_stdout();
        let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let bar = ui::Bar::start(g.quiet || g.json, progress.clone(), "export");
        let r = write_archive(&repo, &id, &snap, &recipients, out, &progress);
        bar.finish();
        let (r, mut out) = r?;
        out.flush().context("write standard output")?;
        r
    } else {
        let tmp = temp_beside(&a.output);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let bar = ui::Bar::start(g.quiet || g.json, progress.clone(), "export");
        let r = write_archive(&repo, &id, &snap, &recipients, std::io::BufWriter::with_capacity(1 << 20, f), &progress);
        bar.finish();
        let done = r.and_then(|(r, out)| {
            let f = out.into_inner().map_err(|e| e.into_error()).context("write the archive")?;
            f.sync_all().context("write the archive")?;
            // A hard link never replaces an existing file, so a concurrent writer cannot be clobbered.
            std::fs::hard_link(&tmp, &a.output)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Err(e)
                    } else {
                        std::fs::rename(&tmp, &a.output)
                    }
                })
                .with_context(|| format!("cannot write {}", a.output.display()))?;
            Ok(r)
        });
        let _ = std::fs::remove_file(&tmp);
        done?
    };
    for s in &r.skipped {
        eprintln!("clawback: warning: left out {}: {}", s.path, s.error);
    }
    if recipients.is_empty() && holds_secrets(&snap) && !g.quiet {
        eprintln!(
            "clawback: warning: the archive holds OpenClaw's config and credentials unencrypted (file mode 0600); \
             use --encrypt RECIPIENT before it leaves this machine"
        );
    }
    if g.json && !to_stdout {
        ui::print_json(&serde_json::json!({
            "snapshot_id": id.to_hex(),
            "output": a.output.to_string_lossy(),
            "archive_root": r.archive_root,
            "files": r.files,
            "dirs": r.dirs,
            "symlinks": r.symlinks,
            "bytes": r.bytes,
            "skipped": r.skipped,
        }));
    } else if !g.quiet && !to_stdout {
        println!(
            "exported snapshot {} ({} files, {}) to {} (archive root {})",
            id.short(),
            r.files,
            ui::human_bytes(r.bytes),
            a.output.display(),
            r.archive_root
        );
    }
    Ok(0)
}

/// The archive, sealed with age when there are recipients.
fn write_archive<W: Write>(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    recipients: &[sealed::Recipient],
    out: W,
    progress: &Progress,
) -> Result<(ExportResult, W)> {
    if recipients.is_empty() {
        return Ok(export(repo, id, snap, out, progress)?);
    }
    let sealed = sealed::encrypt(recipients, out)?;
    let (r, sealed) = export(repo, id, snap, sealed, progress)?;
    let out = sealed.finish().context("write the encrypted archive")?;
    Ok((r, out))
}
