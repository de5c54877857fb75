//! Where a repository is: the URL grammar (`local:/path` or a plain path, `s3:...`), the
//! config's `storage` section, the precedence that fills in what neither says (flags, then the
//! environment, then the config), the embedded default, and the factory that opens a location's
//! storage with its decorators. Each backend kind is one entry of the [`registry`].

mod defaults;
mod stack;

use std::fmt;
use std::path::Path;

use crate::config::storage::StorageConfig;
use crate::error::{Error, Result};

pub use crate::backend::kind::{BackendKind, Overrides, Sources, Spec};
pub use crate::backend::registry::{self, NAMES};
pub use defaults::{config_dir, default_password_file, default_repo_path};
pub use stack::{open, Backends, Traffic};

/// A repository's location: its backend kind and that kind's settings.
pub struct Location {
    kind: &'static BackendKind,
    spec: Box<dyn Spec>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Location").field(&self.kind.name).field(&self.spec.name()).finish()
    }
}

impl Location {
    /// The backend kind's name (`local`, `s3`).
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// The folder of a local repository (what a backup must never read as data).
    pub fn local_path(&self) -> Option<&Path> {
        self.spec.local_path()
    }

    /// Where the repository is, as its backend says it (no credentials), without opening it.
    pub fn name(&self) -> String {
        self.spec.name()
    }

    /// What the location is known by within one process (never a secret).
    pub fn key(&self) -> String {
        self.spec.key()
    }

    /// Asks that creating the repository also creates its container (an S3 bucket); false when
    /// this kind of storage has none.
    pub fn create_container(&mut self) -> bool {
        self.spec.create_container()
    }

    /// The environment variables this kind of storage reads, which a scheduled run must be given.
    pub fn env_vars(&self) -> &'static [&'static str] {
        self.kind.env_vars
    }

    /// Fills in what the URL or the config did not say: flags, then environment, then config.
    pub fn settle(&mut self, sources: &Sources) -> Result<()> {
        self.spec.settle(sources)
    }
}

/// Whether a backend's error says the location's container (an S3 bucket) does not exist, as
/// opposed to one object in it.
pub fn is_missing_container(e: &std::io::Error) -> bool {
    #[cfg(feature = "s3")]
    if crate::backend::s3::is_missing_bucket(e) {
        return true;
    }
    let _ = e;
    false
}

/// Parses a repository URL: `scheme:rest` for a kind in the [`registry`] (`local:/path`,
/// `s3:http[s]://host[:port]/bucket[/prefix]`, `s3://bucket[/prefix]`), anything else a folder.
/// Nothing is filled in from the environment or the config: see [`from_url`].
pub fn parse(url: &str) -> Result<Location> {
    for kind in registry::KINDS {
        if let Some(rest) = url.strip_prefix(kind.name).and_then(|r| r.strip_prefix(':')) {
            return Ok(Location { kind, spec: (kind.parse)(url, rest)? });
        }
    }
    let kind = registry::FOLDER;
    Ok(Location { kind, spec: (kind.parse)(url, url)? })
}

/// A repository named on the command line (`--repo`, `copy --to`), with the settings the URL does
/// not say filled in from `sources`.
pub fn from_url(url: &str, sources: &Sources) -> Result<Location> {
    let mut loc = parse(url)?;
    loc.settle(sources)?;
    Ok(loc)
}

/// The location commands use, and whether it is the embedded default.
#[derive(Debug)]
pub struct Resolved {
    pub location: Location,
    /// True when no repository was named and the embedded default is used.
    pub is_default: bool,
}

/// The repository: `repo` (`--repo`/`CLAWBACK_REPO`, ignored when empty), else the config's
/// `storage` section (a `provider`, or just a `path`), else the embedded default
/// ([`default_repo_path`]).
pub fn resolve(repo: Option<&str>, sources: &Sources) -> Result<Resolved> {
    if let Some(r) = repo.filter(|r| !r.is_empty()) {
        return Ok(Resolved { location: from_url(r, sources)?, is_default: false });
    }
    let st = sources.storage;
    let kind = match st.provider.as_deref() {
        Some(name) => registry::find(name).ok_or_else(|| {
            let known: Vec<String> = NAMES.iter().map(|n| format!("{n:?}")).collect();
            Error::Usage(format!("storage.provider {name:?} is not known; use one of {}", known.join(", ")))
        })?,
        None if st.path.is_some() => registry::FOLDER,
        None => {
            let default = StorageConfig { path: Some(default_repo_path(sources.env)), ..StorageConfig::default() };
            let spec = (registry::FOLDER.from_config)(&default)?;
            return Ok(Resolved { location: Location { kind: registry::FOLDER, spec }, is_default: true });
        }
    };
    let mut location = Location { kind, spec: (kind.from_config)(st)? };
    location.settle(sources)?;
    Ok(Resolved { location, is_default: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openclaw::Env;
    use std::path::PathBuf;

    fn resolved(repo: Option<&str>, storage: StorageConfig) -> Result<Resolved> {
        let env = Env::from_pairs([("XDG_DATA_HOME", "/data")]);
        resolve(repo, &Sources { storage: &storage, env: &env, flags: &Overrides::default() })
    }

    #[test]
    fn the_registry_names_every_kind_once() {
        assert_eq!(NAMES.len(), registry::KINDS.len());
        assert!(NAMES.contains(&"local"));
        #[cfg(feature = "s3")]
        assert_eq!(NAMES, ["s3", "local"]);
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(n.to_ascii_lowercase(), *n);
            assert!(!NAMES[..i].contains(n), "{n} twice");
            assert_eq!(registry::find(n).unwrap().name, *n);
        }
        assert!(registry::find("ftp").is_none());
    }

    #[test]
    fn nothing_named_is_the_embedded_default() {
        let r = resolved(None, StorageConfig::default()).unwrap();
        assert!(r.is_default);
        assert_eq!(r.location.local_path(), Some(Path::new("/data/clawback/repo")));
        // An empty --repo (CLAWBACK_REPO="") names nothing.
        assert!(resolved(Some(""), StorageConfig::default()).unwrap().is_default);
    }

    #[test]
    fn the_flag_beats_the_config() {
        let st = StorageConfig { path: Some(PathBuf::from("/conf")), ..StorageConfig::default() };
        let r = resolved(Some("/flag"), st).unwrap();
        assert!(!r.is_default);
        assert_eq!(r.location.local_path(), Some(Path::new("/flag")));
    }

    #[test]
    fn the_config_names_a_folder_with_or_without_a_provider() {
        for provider in [None, Some("local".to_string())] {
            let st = StorageConfig { provider, path: Some(PathBuf::from("/conf")), ..StorageConfig::default() };
            let r = resolved(None, st).unwrap();
            assert!(!r.is_default);
            assert_eq!((r.location.kind(), r.location.local_path()), ("local", Some(Path::new("/conf"))));
        }
        let e =
            resolved(None, StorageConfig { provider: Some("local".into()), ..StorageConfig::default() }).unwrap_err();
        assert_eq!(e.to_string(), "the config's storage provider is local but storage.path is not set");
        assert_eq!(e.exit_code(), 2);
        let e = resolved(None, StorageConfig { provider: Some("ftp".into()), ..StorageConfig::default() }).unwrap_err();
        assert!(e.to_string().starts_with("storage.provider \"ftp\" is not known; use one of "), "{e}");
    }

    #[cfg(feature = "s3")]
    #[test]
    fn the_config_names_a_bucket() {
        let st = StorageConfig {
            provider: Some("s3".into()),
            bucket: Some("bkt".into()),
            prefix: Some("p".into()),
            endpoint: Some("http://conf:1".into()),
            // A folder beside an S3 provider is not used.
            path: Some(PathBuf::from("/conf")),
            ..StorageConfig::default()
        };
        let r = resolved(None, st).unwrap();
        assert_eq!((r.location.kind(), r.location.name()), ("s3", "s3:http://conf:1/bkt/p".to_string()));
        assert_eq!(r.location.local_path(), None);
        assert!(r.location.env_vars().contains(&"AWS_ACCESS_KEY_ID"));
        let e = resolved(None, StorageConfig { provider: Some("s3".into()), ..StorageConfig::default() }).unwrap_err();
        assert_eq!(e.to_string(), "the config's storage provider is s3 but storage.bucket is not set");
    }

    #[cfg(feature = "s3")]
    #[test]
    fn a_url_is_settled_from_the_config() {
        let st = StorageConfig { endpoint: Some("http://conf:1".into()), ..StorageConfig::default() };
        let env = Env::default();
        let mut loc = from_url("s3://bkt", &Sources { storage: &st, env: &env, flags: &Overrides::default() }).unwrap();
        assert_eq!(loc.name(), "s3:http://conf:1/bkt");
        assert!(loc.create_container());
        let mut folder = parse("/x").unwrap();
        assert!(!folder.create_container());
        assert!(folder.env_vars().is_empty());
    }
}
