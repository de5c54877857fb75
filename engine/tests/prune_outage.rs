//! A prune that meets a pack no index lists (a prune stopped after un-indexing it) reads the pack's
//! header to learn what it holds before deciding its fate. When the store cannot serve that read (an
//! outage), the prune must stop, not take the pack for empty and delete what a snapshot needs.

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::commands::check::{check, CheckOptions, Subset};
use clawback_engine::commands::prune::{prune, PruneOptions};
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::format::id::PackId;
use clawback_engine::format::index::IndexFile;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use std::io;
use std::sync::{Arc, Mutex};

/// A local backend whose range reads of one pack fail as a dropped connection does.
struct Outage {
    inner: LocalBackend,
    down: Mutex<Option<ObjectName>>,
}

impl Backend for Outage {
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
        self.inner.write(name, data)
    }
    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        self.inner.list(kind)
    }
    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        self.inner.size(name)
    }
    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        self.inner.delete(name)
    }
}

#[test]
fn an_unreadable_unindexed_pack_stops_the_prune_instead_of_being_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (repo_dir, src) = (dir.path().join("repo"), dir.path().join("src"));
    let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
    Repository::init(Arc::new(LocalBackend::new(&repo_dir)), &Secret(b"pw".to_vec()), &opts).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("memory.md"), b"a month of an agent's life\n".repeat(500)).unwrap();
    let be = Arc::new(Outage { inner: LocalBackend::new(&repo_dir), down: Mutex::new(None) });
    // A cache keeps the trees, so the prune can mark the snapshot with the data pack unindexed.
    let cache = CacheOptions { dir: Some(dir.path().join("cache")), disabled: false };
    let repo = Repository::open(be.clone(), &Secret(b"pw".to_vec()), &cache).unwrap();
    backup(&repo, &BackupOptions { paths: vec![src.clone()], ..Default::default() }, &Progress::default()).unwrap();

    // Un-index the data pack: the index files are replaced by one listing the others only.
    let names = repo.index_names().unwrap();
    let mut packs = Vec::new();
    for n in &names {
        packs.extend(repo.read_index_file(n).unwrap().packs);
    }
    let is_data = |p: &clawback_engine::format::index::IndexPack| {
        p.blobs.iter().any(|b| b.ty == clawback_engine::format::blob::BlobType::Data)
    };
    let data: Vec<PackId> = packs.iter().filter(|p| is_data(p)).map(|p| p.id).collect();
    assert_eq!(data.len(), 1, "one data pack");
    let rest: Vec<_> = packs.into_iter().filter(|p| !is_data(p)).collect();
    repo.save_index(&IndexFile { version: 1, supersedes: vec![], packs: rest }).unwrap();
    for n in &names {
        be.inner.delete(n).unwrap();
    }
    let pack = ObjectName::of(&data[0]);
    *be.down.lock().unwrap() = Some(pack.clone());

    let e = prune(&repo, &PruneOptions::default(), &mut |_| Ok(())).expect_err("the prune must stop");
    assert!(e.to_string().contains("connection reset"), "{e}");
    assert!(be.inner.size(&pack).is_ok(), "the pack a snapshot needs was deleted");

    // Once the store serves it again, a prune indexes it again (resurrected) and all is well.
    *be.down.lock().unwrap() = None;
    let r = prune(&repo, &PruneOptions::default(), &mut |_| Ok(())).unwrap();
    assert!(be.inner.size(&pack).is_ok(), "{r:?}");
    let c = check(&repo, &CheckOptions { read_data: Some(Subset::All) }).unwrap();
    assert!(c.ok, "{:?}", c.errors);
}
