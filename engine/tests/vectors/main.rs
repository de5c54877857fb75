//! The format vectors (`format-spec/vectors/`) against two readers: `spec`, an independent decoder
//! written from the spec's text, and the engine. `good` decodes every key, config, pack, blob, tree,
//! index file and snapshot of the vector repository with `spec` and compares them with what
//! `vectors.json` records, then has the engine restore the snapshot; `invalid` gives every negative
//! vector to both readers and expects the outcome its manifest names; `drift` checks that the spec
//! names every key the engine writes.

mod drift;
mod engine;
mod good;
mod invalid;
mod spec;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The vectors folder.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors")
}

/// `vectors.json`.
pub fn vectors() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("vectors.json")).unwrap()).unwrap()
}

pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("vectors.json lacks {k}"))
}

pub fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The vector repository's subkeys, from the master key vectors.json records.
pub fn keys(v: &Value) -> spec::Subkeys {
    spec::subkeys(&hex32(s(v, "master_key")))
}
