//! The `openclaw backup` archive importer (gzip or plain tar, manifest, PAX and GNU long names),
//! writing into an in-memory repository.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::commands::archive::{import, ImportOptions};
use clawback_engine::progress::Progress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = import(common::repo(), data, &ImportOptions::default(), &Progress::default());
});
