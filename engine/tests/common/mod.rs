//! A local backend rigged for the engine's integration tests: it can leave objects out of
//! listings, fail range reads of one object as a dropped connection does, and stop before writing
//! a snapshot until told to go on. Everything else goes straight to the folder.

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use std::io;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;

pub struct Rigged {
    pub inner: LocalBackend,
    /// Left out of every listing (still served by name).
    pub hidden: Mutex<Vec<ObjectName>>,
    /// Range reads of this object fail with ConnectionReset.
    pub down: Mutex<Option<ObjectName>>,
    /// Armed: the next snapshot write says so on the first channel, then waits on the second.
    pub gate: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

impl Rigged {
    pub fn new(dir: &Path) -> Rigged {
        Rigged {
            inner: LocalBackend::new(dir),
            hidden: Mutex::new(Vec::new()),
            down: Mutex::new(None),
            gate: Mutex::new(None),
        }
    }
}

impl Backend for Rigged {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> io::Result<()> {
        self.inner.create()
    }
    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        self.inner.read(name)
    }
    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        if self.down.lock().unwrap().as_ref() == Some(name) {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
        }
        self.inner.read_range(name, offset, len)
    }
    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        if name.kind() == Kind::Snapshot {
            if let Some((reached, go)) = self.gate.lock().unwrap().take() {
                reached.send(()).unwrap();
                go.recv().unwrap();
            }
        }
        self.inner.write(name, data)
    }
    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        let hidden = self.hidden.lock().unwrap();
        Ok(self.inner.list(kind)?.into_iter().filter(|(n, _)| !hidden.contains(n)).collect())
    }
    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        self.inner.size(name)
    }
    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        self.inner.delete(name)
    }
}
