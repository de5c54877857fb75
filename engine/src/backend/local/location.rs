//! The folder backend in the location registry: `local:/path` or a plain path on the command
//! line, `storage.path` in the config (with `provider: "local"` or none).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LocalBackend;
use crate::backend::kind::{BackendKind, Sources, Spec};
use crate::backend::Backend;
use crate::config::storage::StorageConfig;
use crate::error::{Error, Result};

pub const KIND: BackendKind = BackendKind { name: "local", parse, from_config, env_vars: &[] };

/// A repository folder.
struct Folder(PathBuf);

fn parse(_url: &str, rest: &str) -> Result<Box<dyn Spec>> {
    if rest.is_empty() {
        return Err(Error::Usage("empty repository path".into()));
    }
    Ok(Box::new(Folder(PathBuf::from(rest))))
}

fn from_config(st: &StorageConfig) -> Result<Box<dyn Spec>> {
    match &st.path {
        Some(p) => Ok(Box::new(Folder(p.clone()))),
        None => Err(Error::Usage("the config's storage provider is local but storage.path is not set".into())),
    }
}

impl Spec for Folder {
    fn settle(&mut self, _: &Sources) -> Result<()> {
        Ok(())
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }

    fn key(&self) -> String {
        format!("local:{}", self.0.display())
    }

    fn local_path(&self) -> Option<&Path> {
        Some(&self.0)
    }

    fn open(&self) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(LocalBackend::new(self.0.clone())))
    }
}

#[cfg(test)]
mod tests {
    use crate::repo::location::parse;
    use std::path::Path;

    #[test]
    fn plain_paths_and_the_local_scheme_are_folders() {
        for url in ["/srv/repo", "local:/srv/repo"] {
            let loc = parse(url).unwrap();
            assert_eq!(loc.kind(), "local");
            assert_eq!(loc.local_path(), Some(Path::new("/srv/repo")));
            assert_eq!(loc.name(), "/srv/repo");
            assert_eq!(loc.key(), "local:/srv/repo");
        }
        // A scheme nobody registered is part of a folder's name, as it always was.
        assert_eq!(parse("sftp:host:/x").unwrap().local_path(), Some(Path::new("sftp:host:/x")));
        assert_eq!(parse("rel/dir").unwrap().local_path(), Some(Path::new("rel/dir")));
    }

    #[test]
    fn an_empty_path_is_refused() {
        for url in ["", "local:"] {
            let e = parse(url).unwrap_err();
            assert_eq!(e.to_string(), "empty repository path");
            assert_eq!(e.exit_code(), 2);
        }
    }
}
