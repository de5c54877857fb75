//! The backend kinds a repository location can name, one line each. Adding a backend is a folder
//! under `backend/` that declares its [`BackendKind`], and a line here: the URL grammar
//! (`repo::location`), the config's `storage.provider` check and the decorator stack all read this
//! list.

use super::kind::BackendKind;
use crate::backend;

/// Every backend kind, in the order the config's error messages list them.
pub const KINDS: &[&BackendKind] = &[
    #[cfg(feature = "s3")]
    &backend::s3::location::KIND,
    &backend::local::location::KIND,
];

/// The kind a plain path (no scheme) and a config with only `storage.path` name: a folder.
pub const FOLDER: &BackendKind = &backend::local::location::KIND;

/// The kinds' names: the URL schemes and the values `storage.provider` takes.
pub const NAMES: [&str; KINDS.len()] = names();

const fn names() -> [&'static str; KINDS.len()] {
    let mut out = [""; KINDS.len()];
    let mut i = 0;
    while i < KINDS.len() {
        out[i] = KINDS[i].name;
        i += 1;
    }
    out
}

/// The kind called `name` (lower-case).
pub fn find(name: &str) -> Option<&'static BackendKind> {
    KINDS.iter().copied().find(|k| k.name == name)
}
