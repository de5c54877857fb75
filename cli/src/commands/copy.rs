//! `clawback copy --to REPO2 [SNAPSHOT...]`: copy snapshots into a second repository (another
//! disk, bucket, region or provider), re-encrypted under its keys. Blobs and snapshots the target
//! already has are skipped, so copying again only sends what is new.

use crate::context::{self, Ctx};
use crate::ui::{self, usage};
use anyhow::{Context, Result};
use clawback_engine::commands::copy::copy;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{InitOptions, Repository, Secret};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshots to copy: ids, prefixes or `latest` (default: every snapshot that passes the filters)
    pub snapshots: Vec<String>,
    /// The target repository: a path, local:/path, s3:http://host:port/bucket/prefix or s3://bucket/prefix
    #[arg(long, value_name = "REPO2")]
    pub to: String,
    /// Read the target's password from this file (else CLAWBACK_TO_PASSWORD, CLAWBACK_TO_PASSWORD_FILE, a prompt)
    #[arg(long, value_name = "F")]
    pub to_password_file: Option<PathBuf>,
    /// Create the target repository if it does not exist (same chunk and pack settings as the source)
    #[arg(long)]
    pub to_init: bool,
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
}

/// The target's password: `--to-password-file`, `CLAWBACK_TO_PASSWORD`, `CLAWBACK_TO_PASSWORD_FILE`,
/// else asked on a terminal (twice when the target is being created).
fn target_password(a: &Args, new_repo: bool) -> Result<Secret> {
    if let Some(f) = &a.to_password_file {
        return context::read_password_file(f);
    }
    if let Ok(p) = std::env::var("CLAWBACK_TO_PASSWORD") {
        if !p.is_empty() {
            return Ok(Secret(p.into_bytes()));
        }
    }
    if let Some(f) = std::env::var_os("CLAWBACK_TO_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        return context::read_password_file(std::path::Path::new(&f));
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("enter the target repository's password: ")
            .context("cannot read the password")?;
        if new_repo {
            let again = rpassword::prompt_password("enter it again: ").context("cannot read the password")?;
            if again != p {
                return Err(usage("the passwords do not match"));
            }
        }
        if p.is_empty() {
            return Err(usage("empty password"));
        }
        return Ok(Secret(p.into_bytes()));
    }
    Err(usage(
        "no password for the target repository: use --to-password-file F, CLAWBACK_TO_PASSWORD or CLAWBACK_TO_PASSWORD_FILE",
    ))
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let s = context::Settings::load(g)?;
    let src = ctx.open_with(&s)?;
    let snaps: Vec<(clawback_engine::format::id::SnapshotId, clawback_engine::format::snapshot::Snapshot)> =
        if a.snapshots.is_empty() {
            src.snapshots_matching(&a.filter.filter()?)?
        } else {
            let mut v = Vec::new();
            for spec in &a.snapshots {
                v.push(crate::select::find(&src, spec, &a.filter, |_| true)?);
            }
            v
        };

    let loc = context::location_for(g, &s, &a.to)?;
    let be = ctx.backend(&loc)?;
    let where_ = be.location();
    if !context::exists(be.as_ref()) {
        if !a.to_init {
            return Err(anyhow::Error::new(clawback_engine::Error::RepoNotFound(where_.clone()))
                .context("the copy target does not exist (pass --to-init to create it)"));
        }
        let pw = target_password(a, true)?;
        let c = src.config();
        let opts = InitOptions {
            chunker: c.chunker,
            pack_size: c.pack_size,
            compression: c.compression,
            ..Default::default()
        };
        Repository::init(be.clone(), &pw, &opts).with_context(|| format!("cannot create the target {where_}"))?;
        if !g.quiet {
            eprintln!("clawback: created the target repository at {where_}");
        }
    }
    let pw = target_password(a, false)?;
    let dst =
        Repository::open(be, &pw, &context::cache_options(g)).with_context(|| format!("target repository {where_}"))?;

    let progress = Arc::new(Progress::default());
    let bar = ui::Bar::start(g.quiet || g.json, progress.clone(), "copy");
    let r = copy(&src, &dst, &snaps, &progress);
    bar.finish();
    let r = r?;
    if g.json {
        let pair = |c: &clawback_engine::commands::copy::CopiedSnapshot| serde_json::json!({ "source": c.source.to_hex(), "target": c.target.to_hex() });
        ui::print_json(&serde_json::json!({
            "target": where_,
            "copied": r.copied.iter().map(pair).collect::<Vec<_>>(),
            "skipped": r.skipped.iter().map(pair).collect::<Vec<_>>(),
            "snapshots_copied": r.copied.len(),
            "snapshots_skipped": r.skipped.len(),
            "blobs_copied": r.blobs_copied,
            "blobs_skipped": r.blobs_skipped,
            "bytes_copied": r.bytes_copied,
            "bytes_stored": r.bytes_stored,
            "duration_s": r.duration_s,
        }));
    } else if !g.quiet {
        for c in &r.skipped {
            println!("snapshot {} is already in the target as {}", c.source.short(), c.target.short());
        }
        for c in &r.copied {
            println!("copied snapshot {} to {}", c.source.short(), c.target.short());
        }
        println!(
            "{} snapshots copied, {} already there; {} blobs copied ({}), {} already there; stored {} in {:.2}s",
            r.copied.len(),
            r.skipped.len(),
            r.blobs_copied,
            ui::human_bytes(r.bytes_copied),
            r.blobs_skipped,
            ui::human_bytes(r.bytes_stored),
            r.duration_s
        );
    }
    Ok(0)
}
