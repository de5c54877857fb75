//! The blob table's files in the local cache (`repo::blobtable`): the input is 2 bytes of manifest
//! length, the manifest body (postcard; the target appends its BLAKE3 checksum, so the parser
//! behind it is reached) and the bytes of the run file it names (`run-fuzzzz`). The table is
//! loaded as a backup would load it (a damaged one is rebuilt from a fixed index file), then every
//! record is read and a few blobs are looked up.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::error::Result;
use clawback_engine::format::id::BlobId;
use clawback_engine::format::index::IndexFile;
use clawback_engine::repo::blobtable::BlobTable;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("clawback-fuzz-blobtable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (body, run) = data[2..].split_at(n);
    let d = dir();
    let mut manifest = body.to_vec();
    manifest.extend_from_slice(blake3::hash(body).as_bytes());
    std::fs::write(d.join("manifest"), manifest).unwrap();
    std::fs::write(d.join("run-fuzzzz"), run).unwrap();
    let names = vec![common::TABLE_INDEX_NAME.to_string()];
    let mut fetch = |_: &[&str], each: &mut dyn FnMut(IndexFile) -> Result<()>| each(common::table_index());
    let Ok((table, packs)) = BlobTable::load(Some(d.as_path()), &names, &mut fetch) else { return };
    let all: Vec<_> = table.iter().collect();
    assert!(all.len() as u64 <= table.records());
    let mut ids: Vec<BlobId> = all.iter().take(4).map(|r| r.id).collect();
    ids.push(BlobId([1; 32]));
    ids.push(BlobId([0xff; 32]));
    for id in ids {
        table.find(&id, packs.len(), |r| {
            assert_eq!(r.id, id, "a lookup offered another blob's record");
            assert!((r.pack as usize) < packs.len(), "a record points past the pack list");
        });
    }
});
