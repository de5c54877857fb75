//! clawback's environment file as the program uses it: loaded into this process at start (its
//! bad lines are warnings), and merged with what a scheduled run needs, saying which names it
//! wrote (never a value). The file's rules are the engine's (`config::envfile`).

use anyhow::Result;
use clawback_engine::config::envfile;
use clawback_engine::openclaw::Env;
use std::path::{Path, PathBuf};

pub use envfile::{display, referenced_vars};

/// The default file: `$XDG_CONFIG_HOME/clawback/env` (`~/.config/clawback/env`).
pub fn default_path() -> PathBuf {
    envfile::default_path(&Env::from_process())
}

/// The file for a run with `--config explicit`: the config's `envFile`, else the default. The
/// config is located with the process environment as it is (a broken config is reported later,
/// by the command itself).
pub fn path_for(explicit_config: Option<&Path>) -> PathBuf {
    envfile::path_for(&Env::from_process(), explicit_config)
}

/// Loads the environment file into this process: a variable the process already has (even empty:
/// that is how `setup` keeps one from its checks) wins, except PATH, which is added to. Returns
/// whether anything was set. Must run before any thread starts (it calls `std::env::set_var`).
pub fn load_into_process(p: &Path) -> Result<bool> {
    let file = envfile::read(p)?;
    if !file.bad_lines.is_empty() {
        let lines: Vec<String> = file.bad_lines.iter().map(|n| n.to_string()).collect();
        eprintln!(
            "clawback: warning: {}: cannot read line {} (expected KEY=VALUE); ignored",
            display(p),
            lines.join(", ")
        );
    }
    let changes = envfile::changes(&file.vars, |k| std::env::var_os(k))?;
    for (k, v) in &changes {
        std::env::set_var(k, v);
    }
    Ok(!changes.is_empty())
}

/// The variables of this shell a scheduled run needs (see `config::envfile::needed`).
pub fn needed(config_text: Option<&str>, password_from_env: bool, backend_vars: &[&str]) -> Vec<(String, String)> {
    envfile::needed(&Env::from_process(), config_text, password_from_env, backend_vars)
}

/// Merges `vars` into the file at `p` and says which names it wrote (values never shown).
pub fn write_needed(p: &Path, vars: &[(String, String)], quiet: bool) -> Result<()> {
    let m = envfile::merge(p, vars)?;
    if !quiet && (!m.added.is_empty() || !m.updated.is_empty()) {
        let mut names = m.added.clone();
        names.extend(m.updated.iter().cloned());
        eprintln!(
            "clawback: scheduled runs read {} from {} (0600, loaded by clawback at start)",
            names.join(", "),
            display(p)
        );
    }
    Ok(())
}
