//! Index files: the postcard plaintext behind the MAC (sealed here with the fixed key), then
//! loaded into the in-memory index.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::codec;
use clawback_engine::format::crypto::AAD_INDEX;
use clawback_engine::format::index::{Index, IndexFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    for sealed in [codec::seal_object(&keys, &[AAD_INDEX], data, 0), keys.seal(&[AAD_INDEX], data)] {
        if let Ok(f) = IndexFile::decode(&keys, "fuzz", &sealed) {
            let mut idx = Index::default();
            idx.add_file(&f);
            for (_, loc) in idx.blobs() {
                let _ = idx.pack_id(loc.pack);
            }
        }
    }
});
