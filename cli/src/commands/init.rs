//! `clawback init`: create a repository.

use crate::context::{self, Ctx};
use anyhow::Result;
use clawback_engine::backend::retention::ObjectLock;
use clawback_engine::format::chunker::ChunkParams;
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::repo::{append_only, InitOptions, DEFAULT_COMPRESSION, DEFAULT_PACK_SIZE};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Argon2id memory for the key file, in MiB (1 to 1024)
    #[arg(long, default_value_t = KdfParams::default().m_cost / 1024, value_name = "MIB",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub kdf_memory: u32,
    /// Argon2id iterations for the key file (1 to 100)
    #[arg(long, default_value_t = KdfParams::default().t_cost, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub kdf_iterations: u32,
    /// Target pack size in MiB
    #[arg(long, default_value_t = DEFAULT_PACK_SIZE >> 20, value_name = "MIB")]
    pub pack_size: u64,
    /// zstd level for data (0 stores raw)
    #[arg(long, default_value_t = DEFAULT_COMPRESSION, value_name = "LEVEL")]
    pub compression: i32,
    /// Average chunk size in KiB (minimum is a quarter, maximum four times)
    #[arg(long, default_value_t = ChunkParams::default().avg / 1024, value_name = "KIB")]
    pub chunk_size: u32,
    /// S3: create the bucket if it does not exist
    #[arg(long)]
    pub create_bucket: bool,
    /// Make the repository append-only: nothing is deleted without the maintenance key, which is
    /// written to --maintenance-key-out
    #[arg(long, requires = "maintenance_key_out")]
    pub append_only: bool,
    /// Where to write the new maintenance key (a file that must not exist; keep it off this host)
    #[arg(long, value_name = "F", requires = "append_only")]
    pub maintenance_key_out: Option<PathBuf>,
    /// S3: object lock: every object the repository gets (but leases) cannot be deleted for DAYS
    /// days after its upload, on any host; the bucket needs object lock (--create-bucket makes it so)
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub object_lock_days: Option<u32>,
    /// S3: the object-lock mode: compliance (nobody can shorten it) or governance (credentials with
    /// s3:BypassGovernanceRetention can)
    #[arg(long, value_name = "MODE", requires = "object_lock_days", default_value = "compliance",
          value_parser = ["compliance", "governance"])]
    pub object_lock_mode: String,
}

/// The repository settings the flags ask for.
pub fn options(a: &Args) -> InitOptions {
    let avg = a.chunk_size.max(1) * 1024;
    InitOptions {
        kdf: KdfParams { m_cost: a.kdf_memory.max(1) * 1024, t_cost: a.kdf_iterations.max(1), p_cost: 1 },
        chunker: ChunkParams { min: avg / 4, avg, max: avg * 4 },
        pack_size: a.pack_size << 20,
        compression: a.compression,
        object_lock: a.object_lock_days.map(|days| ObjectLock { mode: a.object_lock_mode.to_ascii_uppercase(), days }),
        ..InitOptions::default()
    }
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let s = context::Settings::load(g)?;
    let mut res = context::resolve(g, &s)?;
    if a.create_bucket {
        context::set_create_bucket(&mut res)?;
    }
    let mut opts = options(a);
    let key_out = match &a.maintenance_key_out {
        Some(out) if a.append_only => {
            let (text, record) = append_only::new_maintenance_key();
            // Written before the repository exists, and never over another file: a key lost to
            // a failed write would leave a repository nobody can prune.
            let mut f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(out).map_err(|e| {
                    crate::ui::usage(format!(
                        "--maintenance-key-out {}: {e}; name a file that does not exist yet",
                        out.display()
                    ))
                })?;
            f.write_all(format!("{text}\n").as_bytes())?;
            f.sync_all()?;
            opts.append_only = Some(record);
            Some(out.clone())
        }
        _ => None,
    };
    if let Err(e) = ctx.create(&s, &res, &opts) {
        if let Some(out) = &key_out {
            let _ = std::fs::remove_file(out);
        }
        return Err(e);
    }
    let loc = ctx.backend(&res.location)?.location();
    if g.json {
        crate::ui::print_json(&serde_json::json!({
            "repository": loc,
            "created": true,
            "append_only": key_out.is_some(),
            "maintenance_key_file": key_out.as_ref().map(|p| p.display().to_string()),
            "object_lock": opts.object_lock,
        }));
    } else if !g.quiet {
        println!("created repository at {loc}");
        if let Some(l) = &opts.object_lock {
            println!(
                "object lock: every object but leases is kept {} for {} days after its upload; forget and \
                 prune hide objects, the bucket keeps them until then",
                l.mode, l.days
            );
        }
        if let Some(out) = &key_out {
            println!(
                "append-only: forget, prune and key removal need the maintenance key written to {}; \
                 move it off this host",
                out.display()
            );
        }
    }
    Ok(0)
}
