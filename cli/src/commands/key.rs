//! `clawback key list|add|remove ID|passwd`: the passphrases that open the repository. Each key
//! file wraps the same master key, so adding or removing one re-encrypts nothing.

use crate::context::{self, Ctx};
use crate::ui::usage;
use anyhow::{Context, Result};
use clawback_engine::commands::key;
use clawback_engine::config::password;
use clawback_engine::openclaw::Env;
use clawback_engine::repo::{self, Secret};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: KeyCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyCmd {
    /// List the key files; `*` marks the one the password opened
    List,
    /// Add a key for a new password (the old one keeps working)
    Add(NewPassword),
    /// Remove a key by id or prefix (not the one in use, never the last one)
    Remove {
        /// Key id, or at least 4 of its first hex digits
        id: String,
    },
    /// Change the password: add a key for the new one, then remove the key in use
    Passwd(NewPassword),
}

#[derive(clap::Args, Debug)]
pub struct NewPassword {
    /// Read the new password from this file (else CLAWBACK_NEW_PASSWORD, else a prompt)
    #[arg(long, value_name = "F")]
    pub new_password_file: Option<PathBuf>,
    /// Host name to record in the new key (default: this machine's)
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
}

/// The new password: `--new-password-file`, else `CLAWBACK_NEW_PASSWORD`, else asked twice on a TTY.
fn new_password(a: &NewPassword) -> Result<Secret> {
    if let Some(src) = password::given_new(a.new_password_file.as_deref(), &Env::from_process()) {
        return Ok(src.read()?);
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("enter the new password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("enter the new password again: ").context("cannot read the password")?;
        if p != again {
            return Err(usage("the passwords do not match"));
        }
        if p.is_empty() {
            return Err(usage("empty password"));
        }
        return Ok(Secret(p.into_bytes()));
    }
    Err(usage("no new password given: use --new-password-file F or set CLAWBACK_NEW_PASSWORD"))
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let s = context::Settings::load(g)?;
    // Reading the new password first: a missing one fails before the slow key derivation.
    let new = match &a.cmd {
        KeyCmd::Add(n) | KeyCmd::Passwd(n) => Some(new_password(n)?),
        _ => None,
    };
    let res = context::resolve(g, &s)?;
    let be = ctx.backend(&res.location)?;
    if !context::exists(be.as_ref()) {
        return Err(clawback_engine::Error::RepoNotFound(be.location()).into());
    }
    let pw = ctx.password(&s, &res, false)?;
    let repo = repo::Repository::open(be, &pw, &context::cache_options(g))?;
    ctx.lift_append_only(&repo)?;
    let be = repo.backend().as_ref();
    match &a.cmd {
        KeyCmd::List => {
            let keys = key::list(be, repo.key_id())?;
            if g.json {
                crate::ui::print_json(&serde_json::to_value(&keys)?);
            } else {
                println!(" {:<9} {:<12} {:<20} Created", "ID", "User", "Host");
                for k in &keys {
                    let mark = if k.current { '*' } else { ' ' };
                    println!("{mark}{:<9} {:<12} {:<20} {}", k.short_id, k.username, k.hostname, k.created);
                }
                println!("{} keys", keys.len());
            }
        }
        KeyCmd::Add(n) => {
            let host = n.host.clone().unwrap_or_else(repo::hostname);
            let id = key::add(&repo, &pw, new.as_ref().unwrap(), &host, &repo::username())?;
            if g.json {
                crate::ui::print_json(&serde_json::json!({ "added": id, "short_id": &id[..8] }));
            } else if !g.quiet {
                println!("added key {}", &id[..8]);
            }
        }
        KeyCmd::Remove { id } => {
            repo.require_deletes("key remove")?;
            let removed = key::remove(be, repo.key_id(), id)?;
            if g.json {
                crate::ui::print_json(&serde_json::json!({ "removed": removed }));
            } else if !g.quiet {
                println!("removed key {}", &removed[..8]);
            }
        }
        KeyCmd::Passwd(n) => {
            let host = n.host.clone().unwrap_or_else(repo::hostname);
            let (added, removed) = key::passwd(&repo, &pw, new.as_ref().unwrap(), &host, &repo::username())?;
            if g.json {
                crate::ui::print_json(&serde_json::json!({ "added": added, "removed": removed }));
            } else if !g.quiet {
                println!("password changed: key {} replaces key {}", &added[..8], &removed[..8]);
            }
        }
    }
    Ok(0)
}
