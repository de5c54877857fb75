//! The repository format, byte for byte (`format-spec/README.md`): object ids, the key schedule and
//! sealing, the blob codec, the canonical encodings, the chunker, blobs, pack files, index files, trees and snapshots. Nothing
//! here touches storage; the repository layer (`crate::repo`) reads and writes these through a backend.

pub mod blob;
pub mod canonical;
pub mod chunker;
pub mod codec;
pub mod crypto;
pub mod dict;
pub mod id;
pub mod index;
pub mod pack;
pub mod snapshot;
pub mod tree;
