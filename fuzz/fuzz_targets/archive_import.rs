//! The `openclaw backup` archive importer (gzip or plain tar, manifest, PAX and GNU long names),
//! writing into an in-memory repository.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::commands::archive::{import, ImportOptions};
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn repo() -> &'static Repository {
    static R: OnceLock<Repository> = OnceLock::new();
    R.get_or_init(|| {
        let b = Arc::new(common::MemBackend::default());
        let pw = Secret(b"fuzz".to_vec());
        let opts = InitOptions {
            kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 },
            ..Default::default()
        };
        Repository::init(b.clone(), &pw, &opts).unwrap();
        Repository::open(b, &pw, &CacheOptions { dir: None, disabled: true }).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = import(repo(), data, &ImportOptions::default(), &Progress::default());
});
