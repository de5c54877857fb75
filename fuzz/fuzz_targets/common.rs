//! Shared by the fuzz targets: a fixed key (so a target can seal fuzzed plaintext and reach the
//! decoders behind the MAC) and an in-memory backend (so the importer can write a repository).
#![allow(dead_code)]

use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::format::crypto::{Keys, MasterKey};
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

pub fn keys() -> Keys {
    Keys::derive(&MasterKey([7; 32]))
}

/// A `Backend` in a `HashMap`: write-once objects, like the real ones.
#[derive(Default)]
pub struct MemBackend {
    objects: Mutex<HashMap<ObjectName, Vec<u8>>>,
}

fn not_found(name: &ObjectName) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: not found"))
}

impl Backend for MemBackend {
    fn location(&self) -> String {
        "mem:".into()
    }
    fn create(&self) -> io::Result<()> {
        Ok(())
    }
    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        self.objects.lock().unwrap().get(name).cloned().ok_or_else(|| not_found(name))
    }
    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let all = self.read(name)?;
        let end = offset.checked_add(len).filter(|&e| e <= all.len() as u64);
        match end {
            Some(end) => Ok(all[offset as usize..end as usize].to_vec()),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range beyond the object")),
        }
    }
    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        let mut m = self.objects.lock().unwrap();
        if m.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        m.insert(name.clone(), data.to_vec());
        Ok(())
    }
    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        let m = self.objects.lock().unwrap();
        let mut v: Vec<_> =
            m.iter().filter(|(n, _)| n.kind() == kind).map(|(n, d)| (n.clone(), d.len() as u64)).collect();
        v.sort();
        Ok(v)
    }
    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        Ok(self.read(name)?.len() as u64)
    }
    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        self.objects.lock().unwrap().remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }
}
