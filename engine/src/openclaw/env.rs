//! The environment that discovery reads, as a value: tests build their own instead of touching
//! the process environment, and nothing here ever prints a variable's value.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A set of environment variables (plus the working directory relative paths resolve against).
#[derive(Clone, Default)]
pub struct Env {
    pub vars: HashMap<String, String>,
    /// The folder relative paths resolve against (OpenClaw's `path.resolve`); `None` means the
    /// process's current directory, read when needed.
    pub cwd: Option<PathBuf>,
}

// Values are often secrets (AWS keys, tokens from `.env`), so Debug shows names only.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("vars", &names).field("cwd", &self.cwd).finish()
    }
}

impl Env {
    /// The process environment and current directory.
    pub fn from_process() -> Self {
        Env { vars: std::env::vars().collect(), cwd: std::env::current_dir().ok() }
    }

    /// An environment holding exactly these variables (for tests and embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Env { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), cwd: None }
    }

    /// A copy with one more variable set.
    pub fn with(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    /// A variable's value; empty or whitespace-only counts as unset, as in OpenClaw.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(|s| s.as_str()).filter(|s| !s.trim().is_empty())
    }

    /// A variable's value, trimmed (how OpenClaw reads its path variables).
    pub fn get_trimmed(&self, k: &str) -> Option<&str> {
        self.get(k).map(str::trim)
    }

    /// A variable as OpenClaw's `normalizeHomeDirValue` reads a home: trimmed, and unset when
    /// empty or the strings `undefined`/`null` (what a shell script exporting an unset JS value
    /// leaves behind).
    fn home_value(&self, k: &str) -> Option<&str> {
        self.get_trimmed(k).filter(|v| *v != "undefined" && *v != "null")
    }

    /// The operating system's home, as OpenClaw's `resolveOsHomeDir` finds it: `HOME`, else
    /// `USERPROFILE`, else Termux's home (`$PREFIX/../home` on Android), else the user's entry
    /// in the password database (Node's `os.homedir()`). Not made absolute.
    fn raw_os_home(&self) -> Option<String> {
        if let Some(h) = self.home_value("HOME").or_else(|| self.home_value("USERPROFILE")) {
            return Some(h.to_string());
        }
        if let (Some(prefix), Some(_)) = (self.home_value("PREFIX"), self.home_value("ANDROID_DATA")) {
            let p = prefix.replace('\\', "/");
            let p = p.trim_end_matches('/');
            if p.ends_with("com.termux/files/usr") {
                return Some(format!("{p}/../home"));
            }
        }
        passwd_home().map(|p| p.to_string_lossy().into_owned())
    }

    /// OpenClaw's notion of home (`resolveRequiredHomeDir`): `OPENCLAW_HOME` (a leading `~`
    /// expanded against the OS home), else the OS home ([`Env::user_home`]), else the working
    /// directory.
    pub fn home(&self) -> PathBuf {
        if let Some(h) = self.home_value("OPENCLAW_HOME") {
            if h == "~" || h.starts_with("~/") || h.starts_with("~\\") {
                return match self.raw_os_home() {
                    Some(base) => self.absolute(&format!("{base}{}", &h[1..])),
                    None => self.absolute("."),
                };
            }
            return self.absolute(h);
        }
        self.user_home()
    }

    /// The user's own home (`HOME`, `USERPROFILE`, the password database), for locations that
    /// OpenClaw's `OPENCLAW_HOME` does not move (XDG folders); the working directory when there
    /// is none.
    pub fn user_home(&self) -> PathBuf {
        match self.raw_os_home() {
            Some(h) => self.absolute(&h),
            None => self.absolute("."),
        }
    }

    /// Expands a leading `~` (alone or before `/` or `\`) against OpenClaw's home; `~user` is
    /// left alone, as OpenClaw does. The result is not made absolute; see
    /// [`Env::resolve_user_path`].
    pub fn expand(&self, p: &str) -> PathBuf {
        if p == "~" {
            self.home()
        } else if let Some(rest) = p.strip_prefix("~/").or_else(|| p.strip_prefix("~\\")) {
            self.home().join(rest)
        } else {
            PathBuf::from(p)
        }
    }

    /// OpenClaw's `resolveUserPath`: trim, expand `~`, make absolute against the working
    /// directory, and clean `.`/`..` lexically (no symlinks followed).
    pub fn resolve_user_path(&self, p: &str) -> PathBuf {
        let expanded = self.expand(p.trim());
        self.absolute_path(&expanded)
    }

    fn absolute(&self, p: &str) -> PathBuf {
        self.absolute_path(Path::new(p))
    }

    /// Makes a path absolute against [`Env::cwd`] and cleans it lexically.
    pub fn absolute_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            clean(p)
        } else {
            let base = self.cwd.clone().or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| PathBuf::from("/"));
            clean(&base.join(p))
        }
    }
}

/// The home folder of this process's user in the password database (Node's `os.homedir()`
/// when `HOME` is unset).
pub fn passwd_home() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `pwd` and `buf` outlive the call; getpwuid_r writes only into them, and `res`
    // points into `pwd` when it succeeds.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut res);
        if rc != 0 || res.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        let dir = CStr::from_ptr(pwd.pw_dir).to_bytes();
        (!dir.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(dir)))
    }
}

/// Removes `.` and resolves `..` lexically; keeps the path absolute if it was.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !p.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(if p.is_absolute() { "/" } else { "." });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_variables_count_as_unset() {
        let env = Env::from_pairs([("A", ""), ("B", "  "), ("C", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), Some("x"));
    }

    #[test]
    fn home_prefers_openclaw_home_and_expands_its_tilde() {
        let env = Env::from_pairs([("HOME", "/home/u"), ("OPENCLAW_HOME", "/srv/claw")]);
        assert_eq!(env.home(), PathBuf::from("/srv/claw"));
        assert_eq!(env.user_home(), PathBuf::from("/home/u"));
        let env = Env::from_pairs([("HOME", "/home/u"), ("OPENCLAW_HOME", "~/claw")]);
        assert_eq!(env.home(), PathBuf::from("/home/u/claw"));
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(env.home(), PathBuf::from("/home/u"));
        // No HOME: the password database, as Node's os.homedir().
        assert_eq!(Env::default().home(), passwd_home().unwrap());
        let env = Env::from_pairs([("HOME", "undefined"), ("USERPROFILE", "/w/u"), ("OPENCLAW_HOME", "null")]);
        assert_eq!(env.home(), PathBuf::from("/w/u"));
    }

    #[test]
    fn tilde_expansion_matches_openclaw() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(env.expand("~"), PathBuf::from("/home/u"));
        assert_eq!(env.expand("~/ws"), PathBuf::from("/home/u/ws"));
        assert_eq!(env.expand("~other/ws"), PathBuf::from("~other/ws"));
        assert_eq!(env.expand("~\\ws"), PathBuf::from("/home/u/ws"));
        assert_eq!(env.resolve_user_path("  ~/a/./b/../c  "), PathBuf::from("/home/u/a/c"));
    }

    #[test]
    fn relative_paths_resolve_against_cwd() {
        let mut env = Env::from_pairs([("HOME", "/home/u")]);
        env.cwd = Some(PathBuf::from("/work/dir"));
        assert_eq!(env.resolve_user_path("ws/x"), PathBuf::from("/work/dir/ws/x"));
        assert_eq!(env.resolve_user_path("../y"), PathBuf::from("/work/y"));
    }

    #[test]
    fn debug_never_shows_values() {
        let env = Env::from_pairs([("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")]);
        let d = format!("{env:?}");
        assert!(d.contains("AWS_SECRET_ACCESS_KEY"));
        assert!(!d.contains("s3cr3t-value"));
    }
}
