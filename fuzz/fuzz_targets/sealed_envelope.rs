//! Sealed objects as they come from the repository: nonce, ciphertext, tag. Only authentication
//! stands between these bytes and the decoders; it must refuse them without panicking.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::codec;
use clawback_engine::format::crypto::{AAD_CONFIG, AAD_INDEX, AAD_PACK_HEADER, AAD_SNAPSHOT};
use clawback_engine::format::id::{BlobId, PackId};
use clawback_engine::format::index::IndexFile;
use clawback_engine::format::pack;
use clawback_engine::format::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    for aad in [AAD_CONFIG, AAD_INDEX, AAD_PACK_HEADER, AAD_SNAPSHOT] {
        let _ = codec::open_object(&keys, &[aad], data, "object", "fuzz", 1 << 20);
    }
    let _ = IndexFile::decode(&keys, "fuzz", data);
    let _ = Snapshot::decode(&keys, "fuzz", data);
    let _ = pack::decode_header(&keys, &PackId::default(), data, 0);
    let _ = blob::decode(&keys, BlobType::Data, &BlobId::default(), data, data.len());
    let _ = blob::decode(&keys, BlobType::Tree, &BlobId::default(), data, usize::MAX);
});
