//! Blob decryption and decompression: the codec payload (flag, declared length, zstd frame) is
//! sealed with the fixed key as a blob, then decoded as the engine reads blobs from packs.
//! Input: 4 bytes of the length the index claims, then the payload.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::codec;
use clawback_engine::format::crypto::AAD_BLOB;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let raw_len = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let payload = &data[4..];
    if let Ok(plain) = codec::decode_payload(payload, raw_len.min(blob::MAX_BLOB_LEN)) {
        assert!(plain.len() <= raw_len);
    }
    let keys = common::keys();
    for ty in [BlobType::Data, BlobType::Tree] {
        // An id the fuzzer cannot match: decoding must stop at the hash check at the latest.
        let id = keys.blob_id(payload);
        let stored = keys.seal(&[AAD_BLOB, &[ty as u8], &id.0], payload);
        if let Ok(p) = blob::decode(&keys, ty, &id, &stored, raw_len) {
            assert_eq!(keys.blob_id(&p), id);
        }
    }
});
