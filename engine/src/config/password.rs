//! Where a repository's password comes from, in order: `--password-file`, `--password-command`,
//! `CLAWBACK_PASSWORD`, `CLAWBACK_PASSWORD_FILE`, the config's `encryption` (passphrase, keyFile,
//! passwordCommand), the embedded default repository's generated file. Also reading a password
//! file, running a password command, and making a random password kept in a new 0600 file.

use std::path::{Path, PathBuf};

use super::EncryptionConfig;
use crate::error::{Error, Result};
use crate::openclaw::Env;
use crate::repo::Secret;

/// The password flags: `--password-file` and `--password-command`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PasswordFlags<'a> {
    pub file: Option<&'a Path>,
    pub command: Option<&'a str>,
}

/// A password source that was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file holding it (trailing newlines are not part of it).
    File(PathBuf),
    /// A shell command printing it.
    Command(String),
    /// The password itself, from the environment or the config (kept out of `Debug`).
    Value(Hidden),
}

/// A password value in a [`Source`]; its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(pub Vec<u8>);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

impl Source {
    /// The password it gives.
    pub fn read(&self) -> Result<Secret> {
        match self {
            Source::File(f) => read_password_file(f),
            Source::Command(c) => password_from_command(c),
            Source::Value(v) => Ok(Secret(v.0.clone())),
        }
    }
}

/// The first password source given, in the order of this module's header; `default_file` is the
/// embedded default repository's generated file, used only when `is_default` and it exists. None:
/// nothing was given (ask on a terminal).
pub fn given(
    flags: PasswordFlags,
    env: &Env,
    enc: &EncryptionConfig,
    is_default: bool,
    default_file: &Path,
) -> Option<Source> {
    if let Some(f) = flags.file {
        return Some(Source::File(f.to_path_buf()));
    }
    if let Some(c) = flags.command {
        return Some(Source::Command(c.to_string()));
    }
    if let Some(p) = env.vars.get("CLAWBACK_PASSWORD").filter(|p| !p.is_empty()) {
        return Some(Source::Value(Hidden(p.as_bytes().to_vec())));
    }
    if let Some(f) = env.vars.get("CLAWBACK_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        return Some(Source::File(PathBuf::from(f)));
    }
    if let Some(s) = configured(enc) {
        return Some(s);
    }
    if is_default && default_file.exists() {
        return Some(Source::File(default_file.to_path_buf()));
    }
    None
}

/// A new password (`key add`, `key passwd`): `--new-password-file`, else `CLAWBACK_NEW_PASSWORD`.
/// None: ask on a terminal.
pub fn given_new(file: Option<&Path>, env: &Env) -> Option<Source> {
    if let Some(f) = file {
        return Some(Source::File(f.to_path_buf()));
    }
    env.vars
        .get("CLAWBACK_NEW_PASSWORD")
        .filter(|p| !p.is_empty())
        .map(|p| Source::Value(Hidden(p.as_bytes().to_vec())))
}

/// The config's `encryption` section as a source: passphrase, else keyFile, else passwordCommand.
pub fn configured(enc: &EncryptionConfig) -> Option<Source> {
    if let Some(p) = enc.passphrase.as_ref().filter(|p| !p.is_empty()) {
        return Some(Source::Value(Hidden(p.expose().as_bytes().to_vec())));
    }
    if let Some(f) = &enc.key_file {
        return Some(Source::File(f.clone()));
    }
    enc.password_command.as_deref().filter(|c| !c.is_empty()).map(|c| Source::Command(c.to_string()))
}

/// A password file's content without its trailing newlines; an empty one is a usage error.
pub fn read_password_file(p: &Path) -> Result<Secret> {
    let mut s = std::fs::read(p).map_err(|e| Error::io("cannot read password file", p, e))?;
    while matches!(s.last(), Some(b'\n' | b'\r')) {
        s.pop();
    }
    if s.is_empty() {
        return Err(Error::Usage(format!("password file {} is empty", p.display())));
    }
    Ok(Secret(s))
}

/// Runs a password command (`sh -c`, its stderr passed through) and takes its output without the
/// trailing newline; the output is never logged.
pub fn password_from_command(cmd: &str) -> Result<Secret> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::Other(format!("cannot run the password command: {e}")))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "the password command failed ({}); check --password-command or encryption.passwordCommand",
            out.status
        )));
    }
    let mut pw = out.stdout;
    if pw.last() == Some(&b'\n') {
        pw.pop();
        if pw.last() == Some(&b'\r') {
            pw.pop();
        }
    }
    if pw.is_empty() {
        return Err(Error::Other("the password command printed no password".into()));
    }
    Ok(Secret(pw))
}

/// A random password: 24 bytes from the system, as 48 hex digits.
pub fn random_password() -> Result<String> {
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut b))
        .map_err(|e| Error::io("cannot read", "/dev/urandom", e))?;
    Ok(hex::encode(b))
}

/// Writes `data` to `p`, 0600, creating its folder 0700. A new file unless `overwrite`: an
/// existing password file is never replaced (it may be the only key to a repository).
pub fn write_private(p: &Path, data: &[u8], overwrite: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = p.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(0o600);
    if overwrite {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(p).map_err(|e| Error::io("cannot create", p, e))?;
    f.write_all(data).map_err(|e| Error::io("cannot write", p, e))
}

/// Keeps the embedded default repository's password in `f` (0600, in a 0700 folder), where
/// unattended runs look for it. Never replaces an existing file: that one may open a repository.
pub fn keep_default_password(f: &Path, pw: &Secret) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = f.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create", dir, e))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(f)
        .map_err(|e| Error::Other(format!("cannot create {} (it must not exist yet): {e}", f.display())))?;
    file.write_all(&pw.0).map_err(|e| Error::io("cannot write", f, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret as ConfigSecret;
    use std::os::unix::fs::PermissionsExt;

    fn enc(passphrase: Option<&str>, key_file: Option<&str>, command: Option<&str>) -> EncryptionConfig {
        EncryptionConfig {
            passphrase: passphrase.map(ConfigSecret::new),
            key_file: key_file.map(PathBuf::from),
            password_command: command.map(str::to_string),
            ..EncryptionConfig::default()
        }
    }

    #[test]
    fn sources_in_order() {
        let d = tempfile::tempdir().unwrap();
        let default_file = d.path().join("default.password");
        let all_env = Env::from_pairs([("CLAWBACK_PASSWORD", "env-pw"), ("CLAWBACK_PASSWORD_FILE", "/env/file")]);
        let all_enc = enc(Some("conf-pw"), Some("/conf/file"), Some("conf-cmd"));
        let flags = PasswordFlags { file: Some(Path::new("/flag/file")), command: Some("flag-cmd") };
        let g = |flags, env: &Env, e: &EncryptionConfig, dflt| given(flags, env, e, dflt, &default_file);
        assert_eq!(g(flags, &all_env, &all_enc, true), Some(Source::File("/flag/file".into())));
        let flags = PasswordFlags { file: None, ..flags };
        assert_eq!(g(flags, &all_env, &all_enc, true), Some(Source::Command("flag-cmd".into())));
        let none = PasswordFlags::default();
        assert_eq!(g(none, &all_env, &all_enc, true), Some(Source::Value(Hidden(b"env-pw".to_vec()))));
        // An empty variable is not a source.
        let env = all_env.clone().with("CLAWBACK_PASSWORD", "");
        assert_eq!(g(none, &env, &all_enc, true), Some(Source::File("/env/file".into())));
        let env = Env::default();
        assert_eq!(g(none, &env, &all_enc, true), Some(Source::Value(Hidden(b"conf-pw".to_vec()))));
        assert_eq!(g(none, &env, &enc(Some(""), Some("/k"), None), true), Some(Source::File("/k".into())));
        assert_eq!(g(none, &env, &enc(None, None, Some("c")), true), Some(Source::Command("c".into())));
        assert_eq!(g(none, &env, &enc(None, None, Some("")), true), None);
        // The default repository's generated file, only for it and only when it exists.
        std::fs::write(&default_file, "gen\n").unwrap();
        assert_eq!(g(none, &env, &EncryptionConfig::default(), true), Some(Source::File(default_file.clone())));
        assert_eq!(g(none, &env, &EncryptionConfig::default(), false), None);
        assert_eq!(Source::File(default_file).read().unwrap().0, b"gen");
        assert!(!format!("{:?}", Source::Value(Hidden(b"env-pw".to_vec()))).contains("env-pw"));
    }

    #[test]
    fn new_passwords() {
        let env = Env::from_pairs([("CLAWBACK_NEW_PASSWORD", "new")]);
        assert_eq!(given_new(Some(Path::new("/f")), &env), Some(Source::File("/f".into())));
        assert_eq!(given_new(None, &env), Some(Source::Value(Hidden(b"new".to_vec()))));
        assert_eq!(given_new(None, &env.clone().with("CLAWBACK_NEW_PASSWORD", "")), None);
        // The repository's own password is not a new one.
        assert_eq!(given_new(None, &Env::from_pairs([("CLAWBACK_PASSWORD", "pw")])), None);
    }

    #[test]
    fn password_files_lose_trailing_newlines_and_must_hold_one() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pw");
        std::fs::write(&f, "secret\r\n\n").unwrap();
        assert_eq!(read_password_file(&f).unwrap().0, b"secret");
        std::fs::write(&f, "\n").unwrap();
        let e = read_password_file(&f).unwrap_err();
        assert_eq!((e.to_string(), e.exit_code()), (format!("password file {} is empty", f.display()), 2));
        let e = read_password_file(&d.path().join("missing")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with(&format!("cannot read password file {}: ", d.path().join("missing").display())));
    }

    #[test]
    fn password_commands() {
        assert_eq!(password_from_command("printf 'pw\\r\\n'").unwrap().0, b"pw");
        assert_eq!(password_from_command("printf 'a b\\n\\n'").unwrap().0, b"a b\n");
        let e = password_from_command("exit 3").unwrap_err().to_string();
        assert!(e.starts_with("the password command failed (exit status: 3)"), "{e}");
        let e = password_from_command("true").unwrap_err().to_string();
        assert_eq!(e, "the password command printed no password");
    }

    #[test]
    fn private_files_are_new_and_0600() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/pw");
        write_private(&f, b"one", false).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(f.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(write_private(&f, b"two", false).unwrap_err().to_string().starts_with("cannot create"));
        write_private(&f, b"two", true).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        let kept = d.path().join("cfg/default.password");
        keep_default_password(&kept, &Secret(b"gen".to_vec())).unwrap();
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
        let e = keep_default_password(&kept, &Secret(b"other".to_vec())).unwrap_err().to_string();
        assert!(e.contains("(it must not exist yet)"), "{e}");
        assert_eq!(std::fs::read(&kept).unwrap(), b"gen");
        let p = random_password().unwrap();
        assert_eq!(p.len(), 48);
        assert_ne!(p, random_password().unwrap());
    }
}
