//! A backend for tests that passes everything to another and calls hooks around writes and
//! listings: what a test needs to count requests, slow a kind of object down, or look at what is
//! written, without a whole `Backend` of its own each time.

use super::{Backend, Kind, ObjectName};
use std::sync::Arc;

/// What a test does around the requests that pass through a [`Watched`] backend.
pub(crate) trait Hooks: Send + Sync {
    /// Before an object is written (`write`, or `write_file` with the file's bytes).
    fn before_write(&self, _name: &ObjectName, _data: &[u8]) {}
    /// After an object was written.
    fn after_write(&self, _name: &ObjectName) {}
    /// Before a listing.
    fn on_list(&self, _kind: Kind) {}
}

pub(crate) struct Watched<H> {
    pub inner: Arc<dyn Backend>,
    pub hooks: H,
}

impl<H: Hooks> Backend for Watched<H> {
    super::forward_to_inner!();

    fn create(&self) -> std::io::Result<()> {
        self.inner.create()
    }

    fn read(&self, name: &ObjectName) -> std::io::Result<Vec<u8>> {
        self.inner.read(name)
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        self.inner.read_range(name, offset, len)
    }

    fn write(&self, name: &ObjectName, data: &[u8]) -> std::io::Result<()> {
        self.hooks.before_write(name, data);
        self.inner.write(name, data)?;
        self.hooks.after_write(name);
        Ok(())
    }

    fn write_file(&self, name: &ObjectName, path: &std::path::Path) -> std::io::Result<()> {
        self.hooks.before_write(name, &std::fs::read(path)?);
        self.inner.write_file(name, path)?;
        self.hooks.after_write(name);
        Ok(())
    }

    fn list(&self, kind: Kind) -> std::io::Result<Vec<(ObjectName, u64)>> {
        self.hooks.on_list(kind);
        self.inner.list(kind)
    }

    fn size(&self, name: &ObjectName) -> std::io::Result<u64> {
        self.inner.size(name)
    }

    fn delete(&self, name: &ObjectName) -> std::io::Result<()> {
        self.inner.delete(name)
    }
}
