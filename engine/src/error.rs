//! The engine's error type. Every variant names what failed and on which object or path, so the CLI
//! can print it as one line; `Error::exit_code` maps each kind to the documented exit code.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("repository {0} does not exist; create it with `clawback init`")]
    RepoNotFound(String),
    /// An S3 repository's bucket does not exist; the message says how to create it.
    #[error("{0}")]
    BucketNotFound(String),
    #[error("repository {0} already exists")]
    RepoExists(String),
    #[error("wrong password or no key file can be opened with it")]
    WrongPassword,
    #[error("no password given: set CLAWBACK_PASSWORD, CLAWBACK_PASSWORD_FILE or --password-file")]
    NoPassword,
    #[error("repository is locked: {0}")]
    Locked(String),
    #[error("{what} {id} is damaged: {why}")]
    Corrupt { what: &'static str, id: String, why: String },
    #[error("{what} {id} not found in the repository")]
    Missing { what: &'static str, id: String },
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    #[error("snapshot prefix {0} is ambiguous; give more hex digits")]
    AmbiguousSnapshot(String),
    #[error("unsafe path in repository data: {0}")]
    UnsafePath(String),
    #[error("{0}")]
    Usage(String),
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{}", backend_message(op, name, source))]
    Backend { op: &'static str, name: String, source: std::io::Error },
    #[error("cache database {path}: {source}")]
    Cache { path: PathBuf, source: rusqlite::Error },
    #[error("interrupted")]
    Interrupted,
    /// An operation that deletes, refused because the repository is append-only or because these
    /// credentials cannot delete. Exit code 1, like any refusal that the user fixes elsewhere.
    #[error("{0}")]
    AppendOnly(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The process exit code documented in docs/CONTRACT.md for this kind of error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::RepoNotFound(_) | Error::BucketNotFound(_) => 10,
            Error::WrongPassword | Error::NoPassword => 11,
            Error::Locked(_) => 12,
            Error::Usage(_) | Error::SnapshotNotFound(_) | Error::AmbiguousSnapshot(_) => 2,
            Error::Interrupted => 130,
            _ => 1,
        }
    }

    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub fn corrupt(what: &'static str, id: impl ToString, why: impl ToString) -> Self {
        Error::Corrupt { what, id: id.to_string(), why: why.to_string() }
    }

    /// For `map_err` on a backend call: the failure of `op` on the object `name`.
    pub fn backend_err<'a, N: std::fmt::Display + ?Sized>(
        op: &'static str,
        name: &'a N,
    ) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Backend { op, name: name.to_string(), source }
    }
}

/// A backend failure's line. A failure of the whole store (unreachable, no credentials, wrong
/// key, clock skew) reads the same for every object and already says what and how to fix it; the
/// object's name would only bury that.
fn backend_message(op: &str, name: &str, source: &std::io::Error) -> String {
    #[cfg(feature = "s3")]
    {
        use crate::backend::s3::S3Failure;
        if S3Failure::of(source).is_some_and(|f| f != S3Failure::Other) {
            return source.to_string();
        }
    }
    format!("backend {op} {name}: {source}")
}

/// Adds path context to `std::io::Result`s.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
