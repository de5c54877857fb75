//! Shared by the fuzz targets: a fixed key (so a target can seal fuzzed plaintext and reach the
//! decoders behind the MAC) and an in-memory backend (so the importer can write a repository).
#![allow(dead_code)]

use clawback_engine::backend::{Backend, Kind};
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
    objects: Mutex<HashMap<(Kind, String), Vec<u8>>>,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: not found"))
}

impl Backend for MemBackend {
    fn location(&self) -> String {
        "mem:".into()
    }
    fn create(&self) -> io::Result<()> {
        Ok(())
    }
    fn read(&self, kind: Kind, name: &str) -> io::Result<Vec<u8>> {
        self.objects.lock().unwrap().get(&(kind, name.to_string())).cloned().ok_or_else(|| not_found(name))
    }
    fn read_range(&self, kind: Kind, name: &str, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let all = self.read(kind, name)?;
        let end = offset.checked_add(len).filter(|&e| e <= all.len() as u64);
        match end {
            Some(end) => Ok(all[offset as usize..end as usize].to_vec()),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range beyond the object")),
        }
    }
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> io::Result<()> {
        let mut m = self.objects.lock().unwrap();
        let k = (kind, name.to_string());
        if m.contains_key(&k) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        m.insert(k, data.to_vec());
        Ok(())
    }
    fn list(&self, kind: Kind) -> io::Result<Vec<(String, u64)>> {
        let m = self.objects.lock().unwrap();
        let mut v: Vec<_> =
            m.iter().filter(|((k, _), _)| *k == kind).map(|((_, n), d)| (n.clone(), d.len() as u64)).collect();
        v.sort();
        Ok(v)
    }
    fn size(&self, kind: Kind, name: &str) -> io::Result<u64> {
        Ok(self.read(kind, name)?.len() as u64)
    }
    fn delete(&self, kind: Kind, name: &str) -> io::Result<()> {
        self.objects.lock().unwrap().remove(&(kind, name.to_string())).map(|_| ()).ok_or_else(|| not_found(name))
    }
}
