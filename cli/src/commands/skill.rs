//! `clawback skill install | show`: the OpenClaw skill (skill/SKILL.md, built into the binary)
//! that tells an agent how to back up, list, check and restore with clawback. `install` copies it
//! to `<state dir>/skills/clawback/SKILL.md`, where OpenClaw loads skills shared by every agent.

use crate::context;
use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

/// The skill as shipped.
pub const SKILL_MD: &str = include_str!("../../../skill/SKILL.md");

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Copy the skill into <OpenClaw state dir>/skills/clawback/SKILL.md
    Install {
        /// Overwrite a SKILL.md that was changed since it was installed
        #[arg(long)]
        force: bool,
    },
    /// Print the skill
    Show,
}

/// Where `install` writes: `<state dir>/skills/clawback/SKILL.md`.
pub fn install_path(g: &GlobalArgs, s: &context::Settings) -> PathBuf {
    context::layout(g, s).state_dir.join("skills").join("clawback").join("SKILL.md")
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    match a.action {
        Action::Show => {
            if g.json {
                crate::ui::print_json(&serde_json::json!({ "skill": SKILL_MD }));
            } else {
                std::io::stdout().write_all(SKILL_MD.as_bytes())?;
            }
            Ok(0)
        }
        Action::Install { force } => {
            let s = context::Settings::load(g)?;
            let path = install_path(g, &s);
            let status = match std::fs::read(&path) {
                Ok(old) if old == SKILL_MD.as_bytes() => "unchanged",
                Ok(_) if !force => {
                    return Err(usage(format!(
                        "{} exists and differs from this version's skill (edited, or from another clawback version); \
                         `clawback skill show` prints this one, --force overwrites",
                        path.display()
                    )))
                }
                Ok(_) => "updated",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "installed",
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            if status != "unchanged" {
                let dir = path.parent().expect("a folder");
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                // Written beside and renamed, so OpenClaw never loads half a file.
                let tmp = dir.join(".SKILL.md.clawback-tmp");
                std::fs::write(&tmp, SKILL_MD).with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
            }
            if g.json {
                crate::ui::print_json(&serde_json::json!({ "path": path, "status": status }));
            } else if !g.quiet {
                println!("skill {status}: {}", path.display());
                if status != "unchanged" {
                    println!("OpenClaw loads it on the next session (`openclaw skills list` shows it)");
                }
            }
            Ok(0)
        }
    }
}
