//! `setup`'s password questions: for a repository that exists, proving a password it holds or is
//! given opens it (else asking for the right one); for a new one, how the passphrase is kept, and
//! writing a generated or typed one into its 0600 file once every answer is in. The sources and
//! rules are the engine's (`commands::setup`).

use super::ask::Asker;
use super::Args;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::backend::Backend;
use clawback_engine::commands::setup::answers::{check_path, check_var};
use clawback_engine::commands::setup::existing::{self, Candidate, Given};
use clawback_engine::commands::setup::{self as plan, PasswordAnswers, PasswordChoice, PasswordFile};
use clawback_engine::config::password::{random_password, write_private};
use clawback_engine::openclaw::Env;
use clawback_engine::repo::Secret;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The encryption settings for an existing repository: a password this setup holds or was given
/// that opens it, else one typed on the terminal (kept in a new 0600 file), else exit 11. Also
/// says how it was found.
pub fn prove_existing(
    g: &GlobalArgs,
    a: &Args,
    asker: &Asker,
    be: &Arc<dyn Backend>,
    old_config: &Path,
    env: &Env,
) -> Result<(Value, String)> {
    let loc = be.location();
    let given = Given { password_env: a.password_env.as_deref(), password_file: g.password_file.as_deref() };
    let tried: Vec<Candidate> = existing::candidates(given, old_config, env);
    if let Some(c) = existing::first_opening(be, &tried)? {
        return Ok((c.encryption.clone(), format!("the password from {} opens it", c.what)));
    }
    let none = existing::none_opened(&tried);
    if !asker.tty {
        return Err(anyhow::Error::new(clawback_engine::Error::WrongPassword).context(format!(
            "the repository at {loc} exists and {none}: run setup again with --password-file FILE (or --password-env VAR) \
             holding its password, or on a terminal to be asked; setup never replaces it (a new one is added with `clawback key add`)"
        )));
    }
    eprintln!("The repository at {loc} exists; {none}.");
    for attempt in 1..=5 {
        let p =
            rpassword::prompt_password("Password of the existing repository: ").context("cannot read the password")?;
        if p.is_empty() {
            continue;
        }
        let secret = Secret(p.into_bytes());
        if existing::opens(be, &secret)? {
            let f = asker.ask_valid(
                "Keep it in which file (0600)",
                &existing::free_password_file(env).to_string_lossy(),
                "--password-file",
                |s| {
                    let f = check_path(env, s)?;
                    if f.exists() {
                        return Err(format!("{} exists and is never overwritten; give a new file", f.display()));
                    }
                    Ok(f)
                },
            )?;
            write_private(&f, &secret.0, false)?;
            return Ok((plan::key_file(&f), format!("the password typed opens it; kept in {} (0600)", f.display())));
        }
        eprintln!("that password does not open {loc} ({attempt} of 5)");
    }
    Err(anyhow::Error::new(clawback_engine::Error::WrongPassword)
        .context(format!("no password typed opens the repository at {loc}; nothing was written")))
}

/// A new repository's passphrase: its encryption settings, and the 0600 file to write (empty
/// data: a passphrase typed last of all) once every answer is in.
pub struct NewPassword {
    pub encryption: Value,
    pub to_write: Option<(PathBuf, Vec<u8>)>,
}

/// How a new repository's passphrase is kept: from the flags as the engine decides, else asked.
pub fn for_new(g: &GlobalArgs, a: &Args, asker: &Asker, env: &Env, say: &dyn Fn(String)) -> Result<NewPassword> {
    let answers = PasswordAnswers {
        password_env: a.password_env.as_deref(),
        generate: a.generate_password,
        password_file: g.password_file.as_deref(),
    };
    let env_file = crate::envfile::display(&crate::envfile::path_for(g.config.as_deref()));
    let choice = plan::choose_password(answers, env, asker.tty, &env_file)?;
    let to_write = match &choice {
        PasswordChoice::ClawbackPassword => {
            say("the new repository's password is CLAWBACK_PASSWORD (set here or in the environment file)".into());
            None
        }
        PasswordChoice::Generate(f) => Some((f.clone(), random_password()?.into_bytes())),
        PasswordChoice::Env(_) | PasswordChoice::KeyFile(_) => None,
        PasswordChoice::Ask => return ask(asker, env),
    };
    Ok(NewPassword { encryption: choice.encryption().unwrap_or_default(), to_write })
}

/// The passphrase menu, on a terminal.
fn ask(asker: &Asker, env: &Env) -> Result<NewPassword> {
    let opts = [
        ("generate", "a random passphrase kept in a 0600 file (recommended; keep a copy elsewhere)"),
        ("type", "a passphrase you type, kept in a 0600 file"),
        ("env", "from an environment variable, referenced as ${VAR}"),
        ("file", "an existing key/password file"),
    ];
    let check_path = |s: &str| check_path(env, s);
    Ok(match asker.choose("How should the repository passphrase be kept?", &opts, 0)? {
        c @ (0 | 1) => {
            let f = asker.ask_valid(
                "Passphrase file",
                &existing::password_file(env).to_string_lossy(),
                "--password-file",
                check_path,
            )?;
            // Generated now; a typed one is asked for last (empty data).
            let data = if c == 0 { random_password()?.into_bytes() } else { Vec::new() };
            NewPassword { encryption: plan::key_file(&f), to_write: Some((f, data)) }
        }
        2 => {
            let v = asker.ask_valid("Environment variable", "CLAWBACK_PASSWORD", "--password-env", check_var)?;
            NewPassword { encryption: plan::passphrase_from(&v), to_write: None }
        }
        _ => {
            let f = asker.ask_valid("Key/password file", "", "--password-file", |s| {
                let f = check_path(s)?;
                if f.is_file() {
                    Ok(f)
                } else {
                    Err(format!("{} does not exist", f.display()))
                }
            })?;
            NewPassword { encryption: plan::key_file(&f), to_write: None }
        }
    })
}

/// Writes the passphrase file (a typed passphrase is asked for now, last of all). An existing
/// file is never written over: it is kept and used. Returns the file when one was written.
pub fn write_file(asker: &Asker, f: &Path, mut data: Vec<u8>, say: &dyn Fn(String)) -> Result<Option<PathBuf>> {
    if plan::password_file_state(f)? == PasswordFile::Kept {
        say(format!("{} exists; it is kept and used as this repository's password (never overwritten)", f.display()));
        return Ok(None);
    }
    if data.is_empty() {
        data = typed_or_generated(asker)?.into_bytes();
    }
    write_private(f, &data, false)?;
    Ok(Some(f.to_path_buf()))
}

/// A passphrase typed twice (empty: generate one).
fn typed_or_generated(asker: &Asker) -> Result<String> {
    if !asker.tty {
        return Ok(random_password()?);
    }
    loop {
        let p = rpassword::prompt_password("Passphrase (empty: generate a random one): ")
            .context("cannot read the passphrase")?;
        if p.is_empty() {
            return Ok(random_password()?);
        }
        let again = rpassword::prompt_password("Passphrase again: ").context("cannot read the passphrase")?;
        if again == p {
            return Ok(p);
        }
        eprintln!("the passphrases do not match; again");
    }
}
