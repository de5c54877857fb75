//! The `manifest.json` of an `openclaw backup` archive: the input is the manifest, put first in an
//! otherwise fixed archive (so the JSON parser, timestamps, paths and asset mapping are reached
//! directly, not through mutated tar and gzip framing) and imported into an in-memory repository.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::commands::archive::{import, ImportOptions};
use clawback_engine::progress::Progress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, body: &[u8], ty: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(if ty == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_mtime(1_773_043_200);
        h.set_size(body.len() as u64);
        b.append_data(&mut h, name, body).unwrap();
    };
    add("oc-backup/manifest.json", data, tar::EntryType::Regular);
    add("oc-backup/payload/posix/s/", b"", tar::EntryType::Directory);
    add("oc-backup/payload/posix/s/openclaw.json", b"{ agents: {} }\n", tar::EntryType::Regular);
    add("oc-backup/payload/posix/s/workspace/MEMORY.md", b"# Memory\n", tar::EntryType::Regular);
    let archive = b.into_inner().unwrap();
    let _ = import(common::repo(), &archive[..], &ImportOptions::default(), &Progress::default());
});
