//! `clawback mount MOUNTPOINT`: the repository as a read-only folder tree (FUSE) until SIGINT or
//! SIGTERM, which unmount it and exit 0 (as `daemon` does: a stopped mount is a finished one).

use crate::context::Ctx;
use crate::ui::usage;
use anyhow::{Context, Result};
use clawback_engine::commands::mount::fuse::{serve, Ended};
use clawback_engine::commands::mount::{Browse, DEFAULT_CACHE_BYTES};
use clawback_engine::run::interrupt::Interrupt;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An empty folder to mount the repository on
    pub mountpoint: PathBuf,
    /// Decrypted chunks kept in memory, MiB
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_CACHE_BYTES >> 20, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub cache_mib: u64,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let mp = &a.mountpoint;
    match std::fs::metadata(mp) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(usage(format!("{} is not a folder; give an empty folder to mount on", mp.display()))),
        Err(e) => {
            return Err(usage(format!("{}: {e}; create an empty folder to mount on (mkdir -p it)", mp.display())))
        }
    }
    let repo = ctx.open()?;
    let interrupt = Interrupt::new();
    interrupt.catch(&[libc::SIGINT, libc::SIGTERM], false).context("cannot catch SIGINT and SIGTERM")?;
    let fs = Browse::new(repo, a.cache_mib << 20);
    if !ctx.g.quiet {
        eprintln!(
            "clawback: repository mounted read-only at {} (snapshots/, hosts/, tags/, ids/); Ctrl-C or SIGTERM unmounts",
            mp.display()
        );
    }
    let ended = serve(fs, mp, &|| interrupt.signal().is_some())?;
    if !ctx.g.quiet {
        match ended {
            Ended::Stopped => eprintln!("clawback: unmounted {}", mp.display()),
            Ended::Unmounted => eprintln!("clawback: {} was unmounted", mp.display()),
        }
    }
    Ok(0)
}
