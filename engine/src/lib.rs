//! clawback's engine: an encrypted, deduplicating, content-addressed snapshot store.
//!
//! Files are cut into chunks by FastCDC, named by keyed BLAKE3, compressed with zstd, encrypted with
//! AES-256-GCM-SIV and packed; directories become tree blobs; a snapshot names the root tree. The
//! byte-level format is specified in `format-spec/README.md`. This crate prints nothing and never
//! exits the process: every operation returns a `Result` whose error knows its exit code.

pub mod anomaly;
pub mod backend;
pub mod blob;
pub mod cache;
pub mod chunker;
pub mod codec;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod error;
pub mod failpoint;
pub mod hooks;
pub mod id;
pub mod index;
pub mod lease;
pub mod notify;
pub mod openclaw;
pub mod pack;
pub mod packer;
pub mod prefetch;
pub mod progress;
pub mod repo;
pub mod retention;
pub mod runlog;
pub mod snapshot;
pub mod tree;

pub use error::{Error, Result};
