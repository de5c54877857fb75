//! This machine as the repository records it: its host name and user (in snapshots, key files and
//! leases), its home folder, and a path given here in the absolute, clean form snapshots record.

use crate::error::{IoContext, Result};
use std::path::{Component, Path, PathBuf};

/// `$HOME`, or `/` when it is unset or empty.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

/// The host name (`localhost` if the system will not say).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if r == 0 {
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..n]).into_owned()
    } else {
        "localhost".into()
    }
}

/// `$USER`, else `$LOGNAME`, else `uid<N>`.
pub fn username() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| {
        // SAFETY: getuid has no preconditions.
        format!("uid{}", unsafe { libc::getuid() })
    })
}

/// Makes a path absolute (against the current folder) and lexically clean (no `.`/`..`), without
/// following symlinks: the form in which snapshots record the paths they hold.
pub fn absolute_clean(p: &Path) -> Result<PathBuf> {
    let abs =
        if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().ctx("read current folder", p)?.join(p) };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_and_clean() {
        assert_eq!(absolute_clean(Path::new("/a/./b/../c//d/")).unwrap(), PathBuf::from("/a/c/d"));
        assert_eq!(absolute_clean(Path::new("/../..")).unwrap(), PathBuf::from("/"));
        let here = std::env::current_dir().unwrap();
        assert_eq!(absolute_clean(Path::new("x/../y")).unwrap(), here.join("y"));
        assert!(!hostname().is_empty());
        assert!(!username().is_empty());
    }
}
