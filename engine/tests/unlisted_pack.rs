//! A store whose listing of `data/` leaves out a pack it still serves by name (SeaweedFS can lose
//! the folder entry above objects it holds): `check` reads the pack by name and warns, instead of
//! calling it missing, and `repair index` keeps it; a pack really gone is still an error.

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::commands::check::{check, CheckOptions, Subset};
use clawback_engine::commands::repair::repair_index;
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use std::io;
use std::sync::{Arc, Mutex};

/// A local backend whose listings leave out the objects named in `hidden`.
struct Hiding {
    inner: LocalBackend,
    hidden: Mutex<Vec<ObjectName>>,
}

impl Backend for Hiding {
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
        self.inner.read_range(name, offset, len)
    }
    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
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

#[test]
fn a_pack_the_listing_leaves_out_is_read_by_name_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (repo_dir, src) = (dir.path().join("repo"), dir.path().join("src"));
    let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
    Repository::init(Arc::new(LocalBackend::new(&repo_dir)), &Secret(b"pw".to_vec()), &opts).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"what the agent remembers\n".repeat(100)).unwrap();
    let be = Arc::new(Hiding { inner: LocalBackend::new(&repo_dir), hidden: Mutex::new(Vec::new()) });
    let no_cache = CacheOptions { dir: None, disabled: true };
    let repo = Repository::open(be.clone(), &Secret(b"pw".to_vec()), &no_cache).unwrap();
    backup(&repo, &BackupOptions { paths: vec![src.clone()], ..Default::default() }, &Progress::default()).unwrap();

    let packs = be.inner.list(Kind::Pack).unwrap();
    assert!(!packs.is_empty());
    let (pack, _) = packs[0].clone();
    *be.hidden.lock().unwrap() = vec![pack.clone()];
    let all = CheckOptions { read_data: Some(Subset::All) };
    let r = check(&repo, &all).unwrap();
    assert!(r.ok, "a pack the store serves is not missing: {:?}", r.errors);
    let warned: Vec<_> = r.warnings.iter().filter(|w| w.kind == "pack_unlisted").collect();
    assert_eq!(warned.len(), 1, "{:?}", r.warnings);
    assert!(warned[0].message.contains(pack.as_str()), "{}", warned[0].message);

    // Rebuilding the index from the packs keeps it too.
    let r = repair_index(&repo, false).unwrap();
    assert!(r.packs_removed.is_empty(), "{:?}", r.packs_removed);
    let r = check(&repo, &all).unwrap();
    assert!(r.ok, "after repair index: {:?}", r.errors);

    // Gone for real: an error, as before.
    be.inner.delete(&pack).unwrap();
    let r = check(&repo, &all).unwrap();
    assert!(!r.ok);
    assert!(r.errors.iter().any(|e| e.kind == "pack_missing"), "{:?}", r.errors);
}
