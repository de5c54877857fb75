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

/// The samples the `dict` target trains its fixed dictionary on (the seed test makes its seed
/// payload with the same dictionary, from the same samples: `engine/tests/fuzz_seeds.rs`): JSON-ish
/// lines of a session log.
pub fn dict_samples() -> Vec<Vec<u8>> {
    (0..400u32)
        .map(|i| {
            format!(
                "{{\"role\":\"{}\",\"turn\":{i},\"text\":\"the agent read file notes-{}.md and replied {}\"}}\n",
                ["user", "assistant", "tool"][i as usize % 3],
                i % 17,
                i * 7919 % 1000
            )
            .repeat(1 + i as usize % 5)
            .into_bytes()
        })
        .collect()
}

/// An empty repository in memory (fast key derivation), made once per process.
pub fn repo() -> &'static clawback_engine::repo::Repository {
    use clawback_engine::format::crypto::KdfParams;
    use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
    static R: std::sync::OnceLock<Repository> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let b = std::sync::Arc::new(MemBackend::default());
        let pw = Secret(b"fuzz".to_vec());
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(b.clone(), &pw, &opts).unwrap();
        Repository::open(b, &pw, &CacheOptions { dir: None, disabled: true }).unwrap()
    })
}

/// The index file the `blob_table` target's table covers (its seed was built from it).
pub const TABLE_INDEX_NAME: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// That index file: one pack of three blobs.
pub fn table_index() -> clawback_engine::format::index::IndexFile {
    use clawback_engine::format::blob::BlobType;
    use clawback_engine::format::id::{BlobId, PackId};
    use clawback_engine::format::index::{IndexFile, IndexPack};
    use clawback_engine::format::pack::PackEntry;
    let blobs = (1..=3u8)
        .map(|i| PackEntry {
            ty: BlobType::Data,
            id: BlobId([i; 32]),
            offset: 100 * (i as u32 - 1),
            length: 100,
            raw_length: 150,
        })
        .collect();
    IndexFile { version: 1, supersedes: vec![], packs: vec![IndexPack { id: PackId([8; 32]), size: 400, blobs }] }
}
