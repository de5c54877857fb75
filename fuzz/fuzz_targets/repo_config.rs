//! The repository's `config` object after decryption (JSON), and sealed.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::codec;
use clawback_engine::format::crypto::AAD_CONFIG;
use clawback_engine::repo::RepoConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = RepoConfig::from_json(data);
    let keys = common::keys();
    if let Ok(plain) = codec::open_object(&keys, &[AAD_CONFIG], data, "config", "config", 1 << 20) {
        let _ = RepoConfig::from_json(&plain);
    }
});
