//! Snapshots: the JSON plaintext, and sealed with the fixed key.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::codec;
use clawback_engine::format::crypto::AAD_SNAPSHOT;
use clawback_engine::format::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snapshot::from_json("fuzz", data) {
        let _ = s.time();
    }
    let keys = common::keys();
    let _ = Snapshot::decode(&keys, "fuzz", &codec::seal_object(&keys, &[AAD_SNAPSHOT], data, 0));
    let _ = Snapshot::decode(&keys, "fuzz", &keys.seal(&[AAD_SNAPSHOT], data));
});
