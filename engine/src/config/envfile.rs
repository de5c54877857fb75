//! clawback's environment file: `KEY=VALUE` lines (`$XDG_CONFIG_HOME/clawback/env`, or the file
//! the config's `envFile` names) loaded at start, before the config is read, so a scheduled run
//! gets what the user's shell had: the variables the config refers to as `${VAR}`, the password
//! source, the backend's variables and PATH. It must be private (0600, owned by the user), as ssh
//! insists for its keys; merges keep every other line and never show a value.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::openclaw::vars::parse_dotenv;
use crate::openclaw::Env;

/// The default file: `$XDG_CONFIG_HOME/clawback/env` (`~/.config/clawback/env`).
pub fn default_path(env: &Env) -> PathBuf {
    env.vars
        .get("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| crate::repo::home_dir().join(".config"))
        .join("clawback")
        .join("env")
}

/// The file for a run with `--config explicit`: the config's `envFile`, else the default. A
/// config that does not load gives the default (the command itself reports it later).
pub fn path_for(env: &Env, explicit_config: Option<&Path>) -> PathBuf {
    match super::load(env, explicit_config) {
        Ok(l) => l.config.env_file.unwrap_or_else(|| default_path(env)),
        Err(_) => default_path(env),
    }
}

/// The path as users write it: `~/...` under the home folder.
pub fn display(p: &Path) -> String {
    let home = crate::repo::home_dir();
    match p.strip_prefix(&home) {
        Ok(rest) if home != Path::new("/") => format!("~/{}", rest.display()),
        _ => p.display().to_string(),
    }
}

/// Refuses a file others can read or that someone else owns: it holds secrets.
fn check_private(p: &Path, md: &std::fs::Metadata) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if md.uid() != uid && uid != 0 {
        return Err(Error::Usage(format!(
            "environment file {} belongs to another user (uid {}); remove it or `chown {} {}`",
            display(p),
            md.uid(),
            uid,
            display(p)
        )));
    }
    if md.mode() & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "environment file {} is readable by others (mode {:o}) and holds secrets; run `chmod 600 {}`",
            display(p),
            md.mode() & 0o777,
            display(p)
        )));
    }
    Ok(())
}

/// What the file says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// The variables, in the file's order.
    pub vars: Vec<(String, String)>,
    /// The numbers of the lines that are not `KEY=VALUE` (ignored).
    pub bad_lines: Vec<usize>,
}

/// The file's variables (none when it does not exist).
pub fn read(p: &Path) -> Result<Contents> {
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => return Err(Error::Other(format!("cannot read environment file {}: {e}", display(p)))),
    };
    check_private(p, &md)?;
    let text = std::fs::read_to_string(p)
        .map_err(|e| Error::Other(format!("cannot read environment file {}: {e}", display(p))))?;
    let (vars, bad_lines) = parse_dotenv(&text);
    Ok(Contents { vars, bad_lines })
}

/// What loading `pairs` into a process whose variables are `current` changes, as
/// `(name, new value)`: a variable the process already has (even empty: that is how `setup` keeps
/// one from its checks) wins, except PATH, whose folders from the file are added after the
/// process's own (so a scheduled run, whose PATH is /usr/bin:/bin, still finds hooks and
/// `openclaw`).
pub fn changes(
    pairs: &[(String, String)],
    current: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<(String, OsString)>> {
    let mut out: Vec<(String, OsString)> = Vec::new();
    for (k, v) in pairs {
        if k == "PATH" {
            let cur = out.iter().rev().find(|(n, _)| n == "PATH").map(|(_, v)| v.clone());
            let cur = cur.or_else(|| current("PATH")).unwrap_or_default();
            let mut dirs: Vec<PathBuf> = std::env::split_paths(&cur).collect();
            let before = dirs.len();
            for d in std::env::split_paths(v) {
                if !d.as_os_str().is_empty() && !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
            if dirs.len() != before {
                let joined = std::env::join_paths(dirs)
                    .map_err(|e| Error::Other(format!("PATH in the environment file: {e}")))?;
                out.push(("PATH".into(), joined));
            }
        } else if current(k).is_none() && !out.iter().any(|(n, _)| n == k) && !v.is_empty() {
            out.push((k.clone(), v.into()));
        }
    }
    Ok(out)
}

/// A value as a line of the file, quoted when it must be (the dotenv format has no escapes
/// inside quotes, so the quote chosen is one the value does not hold).
fn quote(k: &str, v: &str) -> Result<String> {
    let plain = !v.is_empty()
        && v.chars().all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '`' | '#' | '\\'))
        && !v.starts_with(['"', '\'', '`']);
    if plain {
        return Ok(v.to_string());
    }
    for q in ['\'', '`', '"'] {
        if !v.contains(q) && (q != '"' || !v.contains('\\')) {
            return Ok(format!("{q}{v}{q}"));
        }
    }
    Err(Error::Usage(format!("the value of {k} holds every kind of quote; it cannot be kept in the environment file")))
}

/// What a merge changed, by variable name (never values).
#[derive(Debug, Default)]
pub struct Merged {
    pub added: Vec<String>,
    pub updated: Vec<String>,
}

/// Sets `vars` in the file at `p`, keeping every other line (comments included) as it is;
/// writes a new 0600 file beside it and renames it over, so a crash leaves the old file whole.
pub fn merge(p: &Path, vars: &[(String, String)]) -> Result<Merged> {
    use std::io::Write;
    let mut merged = Merged::default();
    let old = match std::fs::metadata(p) {
        Ok(md) => {
            check_private(p, &md)?;
            std::fs::read_to_string(p).map_err(|e| Error::Other(format!("cannot read {}: {e}", display(p))))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::Other(format!("cannot read {}: {e}", display(p)))),
    };
    let current: std::collections::HashMap<String, String> = parse_dotenv(&old).0.into_iter().collect();
    let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
    for (k, v) in vars {
        if current.get(k) == Some(v) {
            continue;
        }
        let line = format!("{k}={}", quote(k, v)?);
        // The line that sets `k` (a multi-line value is not ours to rewrite in place: appended).
        let at = lines.iter().position(|l| {
            let t = l.trim_start();
            let t = t.strip_prefix("export ").unwrap_or(t);
            t.split_once('=')
                .is_some_and(|(name, val)| name.trim() == k && !val.trim_start().starts_with(['"', '\'', '`']))
        });
        match (at, current.contains_key(k)) {
            (Some(i), _) => {
                lines[i] = line;
                merged.updated.push(k.clone());
            }
            (None, had) => {
                if had {
                    // Comment out the old multi-line value's first line; later lines stay valid
                    // text of it only if quoted, so drop the whole old definition.
                    lines.retain(|l| {
                        let t = l.trim_start();
                        let t = t.strip_prefix("export ").unwrap_or(t);
                        t.split_once('=').is_none_or(|(name, _)| name.trim() != k)
                    });
                    merged.updated.push(k.clone());
                } else {
                    merged.added.push(k.clone());
                }
                lines.push(line);
            }
        }
    }
    if merged.added.is_empty() && merged.updated.is_empty() && p.exists() {
        return Ok(merged);
    }
    if old.is_empty() {
        lines.insert(
            0,
            "# clawback's environment, loaded by clawback at start (variables already set win; PATH is added to). Keep it 0600."
                .to_string(),
        );
    }
    let dir = p.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create", dir, e))?;
    let tmp =
        dir.join(format!(".{}.tmp-{}", p.file_name().and_then(|n| n.to_str()).unwrap_or("env"), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("cannot create", &tmp, e))?;
    let text = lines.join("\n") + "\n";
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, p).map_err(|e| Error::Other(format!("cannot replace {}: {e}", display(p))))?;
    Ok(merged)
}

/// The `${NAME}` references in a config file's text (`$${NAME}` is an escape, not a reference).
pub fn referenced_vars(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("${") {
        let at = i + off;
        let escaped = at > 0 && b[at - 1] == b'$';
        let start = at + 2;
        let Some(len) = text[start..].find('}') else { break };
        let name = &text[start..start + len];
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if valid && !escaped && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        i = start;
    }
    out
}

/// The variables of `env` (this shell) a scheduled run needs and would not otherwise have: each
/// one the config file refers to (`config_text`), CLAWBACK_PASSWORD when it is the password
/// source, the ones the repository's backend reads (`backend_vars`: an S3 repository's AWS_*
/// settings), and PATH. Only those set (not empty).
pub fn needed(
    env: &Env,
    config_text: Option<&str>,
    password_from_env: bool,
    backend_vars: &[&str],
) -> Vec<(String, String)> {
    let mut names: Vec<String> = config_text.map(referenced_vars).unwrap_or_default();
    if password_from_env {
        names.push("CLAWBACK_PASSWORD".into());
    }
    names.extend(backend_vars.iter().map(|k| k.to_string()));
    names.push("PATH".into());
    let mut out: Vec<(String, String)> = Vec::new();
    for n in names {
        if out.iter().any(|(k, _)| *k == n) {
            continue;
        }
        if let Some(v) = env.vars.get(&n).filter(|v| !v.is_empty()) {
            out.push((n, v.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            referenced_vars(r#"{ a: "${SEAWEED_KEY}", b: "x-${B_2}-${lower}", c: "$${ESC}", d: "${SEAWEED_KEY}" }"#),
            vec!["SEAWEED_KEY", "B_2"]
        );
    }

    #[test]
    fn quoting_round_trips() {
        for v in ["plain", "with space", "it's", "a\"b'c", "x#y", r"back\slash"] {
            let line = format!("K={}", quote("K", v).unwrap());
            let (pairs, bad) = parse_dotenv(&line);
            assert!(bad.is_empty(), "{line}");
            assert_eq!(pairs, vec![("K".to_string(), v.to_string())], "{line}");
        }
        assert_eq!(quote("K", "'`\"\\").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn merge_keeps_other_lines_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/env");
        merge(&p, &[("A".into(), "1".into())]).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str("# mine\nB=keep\n");
        std::fs::write(&p, t).unwrap();
        let m = merge(&p, &[("A".into(), "2".into()), ("C".into(), "x y".into())]).unwrap();
        assert_eq!((m.added, m.updated), (vec!["C".to_string()], vec!["A".to_string()]));
        let (pairs, _) = parse_dotenv(&std::fs::read_to_string(&p).unwrap());
        assert_eq!(pairs, vec![("A".into(), "2".into()), ("B".into(), "keep".into()), ("C".into(), "x y".into())]);
        assert!(std::fs::read_to_string(&p).unwrap().contains("# mine"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn the_process_wins_except_for_path() {
        let pairs: Vec<(String, String)> = [("A", "file"), ("B", "file"), ("E", ""), ("PATH", "/opt/bin:/usr/bin")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let current = |k: &str| match k {
            "A" => Some(OsString::from("")),
            "PATH" => Some(OsString::from("/usr/bin:/bin")),
            _ => None,
        };
        let c = changes(&pairs, current).unwrap();
        assert_eq!(c, vec![("B".into(), "file".into()), ("PATH".into(), "/usr/bin:/bin:/opt/bin".into())]);
        // Nothing new: no change.
        let pairs = vec![("PATH".to_string(), "/bin".to_string())];
        assert!(changes(&pairs, current).unwrap().is_empty());
    }

    #[test]
    fn what_a_scheduled_run_needs() {
        let env = Env::from_pairs([
            ("SEAWEED_KEY", "k"),
            ("CLAWBACK_PASSWORD", "pw"),
            ("AWS_REGION", "r"),
            ("AWS_SESSION_TOKEN", ""),
            ("PATH", "/usr/bin"),
        ]);
        let n =
            needed(&env, Some(r#"{ a: "${SEAWEED_KEY}", b: "${UNSET}" }"#), true, &["AWS_REGION", "AWS_SESSION_TOKEN"]);
        let names: Vec<&str> = n.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["SEAWEED_KEY", "CLAWBACK_PASSWORD", "AWS_REGION", "PATH"]);
        let n = needed(&env, None, false, &[]);
        assert_eq!(n, vec![("PATH".to_string(), "/usr/bin".to_string())]);
    }

    #[test]
    fn default_path_and_display() {
        let env = Env::from_pairs([("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(default_path(&env), PathBuf::from("/cfg/clawback/env"));
        let rel = Env::from_pairs([("XDG_CONFIG_HOME", "relative")]);
        assert_eq!(default_path(&rel), crate::repo::home_dir().join(".config/clawback/env"));
        let home = crate::repo::home_dir();
        if home != Path::new("/") {
            assert_eq!(display(&home.join(".config/clawback/env")), "~/.config/clawback/env");
        }
        assert_eq!(display(Path::new("/elsewhere/env")), "/elsewhere/env");
    }
}
