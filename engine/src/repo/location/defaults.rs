//! Where the embedded default repository lives when none is named, and where its generated
//! password is kept: under the XDG data and config folders.

use std::path::PathBuf;

use crate::openclaw::Env;

/// `$VAR` when set (not empty), else `fallback` under the home folder.
fn xdg(env: &Env, var: &str, fallback: &str) -> PathBuf {
    env.vars
        .get(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo::home_dir().join(fallback))
}

/// The embedded default repository: `$XDG_DATA_HOME/clawback/repo` (`~/.local/share/...`).
pub fn default_repo_path(env: &Env) -> PathBuf {
    xdg(env, "XDG_DATA_HOME", ".local/share").join("clawback").join("repo")
}

/// Where the generated password of the embedded default repository is kept (0600):
/// `$XDG_CONFIG_HOME/clawback/default-repo.password`.
pub fn default_password_file(env: &Env) -> PathBuf {
    config_dir(env).join("default-repo.password")
}

/// clawback's folder under `$XDG_CONFIG_HOME` (`~/.config/clawback`).
pub fn config_dir(env: &Env) -> PathBuf {
    xdg(env, "XDG_CONFIG_HOME", ".config").join("clawback")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_folders_when_set() {
        let env = Env::from_pairs([("XDG_DATA_HOME", "/d"), ("XDG_CONFIG_HOME", "/c"), ("HOME", "/h")]);
        assert_eq!(default_repo_path(&env), PathBuf::from("/d/clawback/repo"));
        assert_eq!(default_password_file(&env), PathBuf::from("/c/clawback/default-repo.password"));
        assert_eq!(config_dir(&env), PathBuf::from("/c/clawback"));
    }

    #[test]
    fn home_folders_when_unset_or_empty() {
        let home = crate::repo::home_dir();
        let env = Env::from_pairs([("XDG_DATA_HOME", "")]);
        assert_eq!(default_repo_path(&env), home.join(".local/share/clawback/repo"));
        assert_eq!(default_password_file(&env), home.join(".config/clawback/default-repo.password"));
    }
}
