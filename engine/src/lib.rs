//! clawback's engine: an encrypted, deduplicating, content-addressed snapshot store.
//!
//! Files are cut into chunks by FastCDC, named by keyed BLAKE3, compressed with zstd, encrypted with
//! AES-256-GCM-SIV and packed; directories become tree blobs; a snapshot names the root tree. The
//! byte-level format is specified in `format-spec/README.md`. This crate prints nothing and never
//! exits the process: every operation returns a `Result` whose error knows its exit code.

// The rule above as a gate (clippy runs with `-D warnings` in `.ci/run`).
#![warn(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

pub mod backend;
pub mod commands;
pub mod config;
pub mod error;
pub mod failpoint;
pub mod format;
pub mod openclaw;
pub mod progress;
pub mod repo;
pub mod run;

pub use error::{Error, Result};
