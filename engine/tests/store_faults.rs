//! Storage that misbehaves the way real stores do, and what the engine must make of it.
//!
//! - A store whose listing of `data/` leaves out a pack it still serves by name (SeaweedFS can lose
//!   the folder entry above objects it holds): `check` reads the pack by name and warns instead of
//!   calling it missing, and `repair index` keeps it; a pack really gone is still an error.
//! - A prune that meets a pack no index lists (a prune stopped after un-indexing it) reads the
//!   pack's header to learn what it holds. When the store cannot serve that read (an outage), the
//!   prune must stop, not take the pack for empty and delete what a snapshot needs.

mod common;

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind, ObjectName};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::commands::check::{check, CheckOptions, Subset};
use clawback_engine::commands::prune::{prune, PruneOptions};
use clawback_engine::commands::repair::repair_index;
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::format::id::PackId;
use clawback_engine::format::index::IndexFile;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use common::Rigged;
use std::sync::Arc;

/// A new repository in `dir` behind a rigged backend, opened (with a cache when `cache`), holding
/// one backup of a folder with one file of `content`.
fn backed_up(dir: &std::path::Path, content: &[u8], cache: bool) -> (Arc<Rigged>, Repository) {
    let (repo_dir, src) = (dir.join("repo"), dir.join("src"));
    let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
    Repository::init(Arc::new(LocalBackend::new(&repo_dir)), &Secret(b"pw".to_vec()), &opts).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("memory.md"), content).unwrap();
    let be = Arc::new(Rigged::new(&repo_dir));
    let cache = CacheOptions { dir: cache.then(|| dir.join("cache")), disabled: !cache };
    let repo = Repository::open(be.clone(), &Secret(b"pw".to_vec()), &cache).unwrap();
    backup(&repo, &BackupOptions { paths: vec![src], ..Default::default() }, &Progress::default()).unwrap();
    (be, repo)
}

#[test]
fn a_pack_the_listing_leaves_out_is_read_by_name_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (be, repo) = backed_up(dir.path(), &b"what the agent remembers\n".repeat(100), false);

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

#[test]
fn an_unreadable_unindexed_pack_stops_the_prune_instead_of_being_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // A cache keeps the trees, so the prune can mark the snapshot with the data pack unindexed.
    let (be, repo) = backed_up(dir.path(), &b"a month of an agent's life\n".repeat(500), true);

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
