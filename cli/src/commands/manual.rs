//! `clawback version`, `clawback completions SHELL` and `clawback man`: what a packager or a shell
//! needs, generated from the same clap definitions the program parses with, so they never drift.

use crate::ui::usage;
use crate::{Cli, GlobalArgs};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write clawback.1 and one clawback-COMMAND.1 per command into this folder instead of printing
    /// clawback.1 on stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn version(g: &GlobalArgs) -> Result<i32> {
    let v = env!("CARGO_PKG_VERSION");
    if g.json {
        crate::ui::print_json(&serde_json::json!({
            "version": v,
            "repository_format": clawback_engine::repo::DICT_VERSION,
            "target": std::env::consts::ARCH.to_string() + "-" + std::env::consts::OS,
        }));
    } else {
        let f = clawback_engine::repo::DICT_VERSION;
        println!(
            "clawback {v} (repository format {f}, reads 1 to {f}, {}-{})",
            std::env::consts::ARCH,
            std::env::consts::OS
        );
    }
    Ok(0)
}

pub fn completions(a: &CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "clawback", &mut std::io::stdout());
    Ok(0)
}

pub fn man(a: &ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    match &a.dir {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).context("cannot write the man page")?;
        }
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(usage(format!("--dir {}: not a folder", dir.display())));
            }
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        }
    }
    Ok(0)
}
