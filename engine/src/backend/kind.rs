//! What a backend kind tells the location layer: its name (the URL scheme and the config's
//! `storage.provider`), how to read the rest of a URL or the config's storage section, and how to
//! open the storage. Each backend folder declares one [`BackendKind`]; the registry lists them.

use std::path::Path;
use std::sync::Arc;

use crate::backend::Backend;
use crate::config::storage::StorageConfig;
use crate::error::Result;
use crate::openclaw::Env;

/// One kind of backend, as the location registry knows it.
pub struct BackendKind {
    /// The URL scheme (`s3` in `s3:...`) and the config's `storage.provider`; lower-case.
    pub name: &'static str,
    /// Parses what follows `name:` in a repository URL; `url` is the whole URL, for messages.
    pub parse: fn(url: &str, rest: &str) -> Result<Box<dyn Spec>>,
    /// The location the config's storage section names when `storage.provider` is this kind.
    pub from_config: fn(&StorageConfig) -> Result<Box<dyn Spec>>,
    /// Environment variables the backend reads (credentials, endpoint): a scheduled run must be
    /// given them.
    pub env_vars: &'static [&'static str],
}

/// What fills in the settings a URL does not say: flags beat the environment, which beats the
/// config file.
pub struct Sources<'a> {
    pub storage: &'a StorageConfig,
    pub env: &'a Env,
    pub flags: &'a Overrides,
}

/// The command line's say in how a repository is reached (the engine has no flags of its own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--storage-class`: the storage class for data packs.
    pub storage_class: Option<String>,
    /// `--connections`: requests kept in flight.
    pub connections: Option<usize>,
}

/// One parsed location of some kind: the settings it needs to open its storage.
pub trait Spec: Send + Sync {
    /// Fills in what the URL or the config section did not say, from `sources`.
    fn settle(&mut self, sources: &Sources) -> Result<()>;
    /// Where the repository is, as the opened backend's `location()` will say it (no secret).
    fn name(&self) -> String;
    /// What the location is known by within one process: two locations with the same key share
    /// one opened backend. Never a secret.
    fn key(&self) -> String;
    /// The folder of a repository on a local disk (what a backup must never read as data).
    fn local_path(&self) -> Option<&Path> {
        None
    }
    /// Asks that creating the repository also creates its container (an S3 bucket); false when
    /// the kind has none.
    fn create_container(&mut self) -> bool {
        false
    }
    /// The storage itself, without decorators.
    fn open(&self) -> Result<Arc<dyn Backend>>;
}
