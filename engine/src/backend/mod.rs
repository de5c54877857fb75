//! Storage backends: a small interface over named, immutable objects grouped by kind, each
//! addressed by an [`ObjectName`] made from a typed id (see `name`). Objects are written once and
//! atomically; a reader never sees a partial object under its final name.
//! Decorators (retry, fault injection) wrap a `Backend` and are themselves `Backend`s. Each kind
//! of storage also has a `location` module (its URL scheme, config section and variables), listed
//! once in `backend::registry`.

pub mod fault;
pub mod kind;
pub mod local;
pub mod name;
pub mod registry;
pub mod retention;
pub mod retry;
#[cfg(feature = "s3")]
pub mod s3;
pub mod throttle;
#[cfg(test)]
pub(crate) mod watched;

use std::io;

pub use name::{ObjectName, Stored};

/// The `Backend` methods a decorator holding `inner: Arc<dyn Backend>` passes straight through:
/// `location`, `connections`, `requests` and `versioned`. Used inside the decorator's `impl Backend`.
macro_rules! forward_to_inner {
    () => {
        fn location(&self) -> String {
            self.inner.location()
        }

        fn connections(&self) -> usize {
            self.inner.connections()
        }

        fn requests(&self) -> Vec<(&'static str, u64)> {
            self.inner.requests()
        }

        fn versioned(&self) -> Option<&dyn $crate::backend::retention::Versioned> {
            self.inner.versioned()
        }
    };
}
pub(crate) use forward_to_inner;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Lock,
    /// Records of packs a prune has condemned (see format-spec, "Prune"). Created on first use, so
    /// repositories made before it existed need no migration.
    Condemned,
    /// zstd dictionaries that blobs are compressed with (format-spec §16). Created on first use.
    Dict,
}

impl Kind {
    /// The folder of this kind in the repository layout.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Config => "",
            Kind::Key => "keys",
            Kind::Pack => "data",
            Kind::Index => "index",
            Kind::Snapshot => "snapshots",
            Kind::Lock => "locks",
            Kind::Condemned => "condemned",
            Kind::Dict => "dicts",
        }
    }
}

pub trait Backend: Send + Sync {
    /// Where the repository is, for messages.
    fn location(&self) -> String;
    /// Creates the repository's folders (or bucket prefix). Fails if a config already exists.
    fn create(&self) -> io::Result<()>;
    /// Reads a whole object.
    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`.
    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>>;
    /// Reads `len` bytes at `offset` into `buf`, which then holds exactly them. By default a new
    /// buffer replaces it; a backend that can read into the caller's memory (the local one) does,
    /// so a caller that keeps one buffer per thread (restore) does not have the kernel map and
    /// zero new pages for every range. Decorators that act on reads forward it.
    fn read_range_into(&self, name: &ObjectName, offset: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        *buf = self.read_range(name, offset, len)?;
        Ok(())
    }
    /// Stores an object atomically. Writing a name that exists is an error of kind `AlreadyExists`.
    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()>;
    /// Stores the local file at `path` as an object, like [`Backend::write`] (the caller removes
    /// the file after). By default it is read into memory and written; a backend that can do
    /// better (the local one links it into place) keeps a whole pack out of memory.
    fn write_file(&self, name: &ObjectName, path: &std::path::Path) -> io::Result<()> {
        self.write(name, &std::fs::read(path)?)
    }
    /// Lists the objects of a kind with their sizes: every name [`ObjectName::listed`] keeps, so
    /// foreign names are there too (callers parse them with [`ObjectName::id`]).
    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>>;
    fn size(&self, name: &ObjectName) -> io::Result<u64>;
    fn delete(&self, name: &ObjectName) -> io::Result<()>;
    /// How many requests callers should keep in flight (pack uploads, restore reads). Decorators
    /// forward it.
    fn connections(&self) -> usize {
        2
    }
    /// Requests made so far, by type (`get`, `put`, `list`...), for `-v` and `--json`; empty for
    /// backends that do not count. Decorators forward it.
    fn requests(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// The store's object versions and retention (an S3 bucket), or None where there are none.
    /// Decorators forward it.
    fn versioned(&self) -> Option<&dyn retention::Versioned> {
        None
    }
}
