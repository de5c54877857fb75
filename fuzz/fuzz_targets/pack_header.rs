//! Pack headers: the trailing length, then the sealed postcard header and its consistency checks.
//! Input: 2 bytes of blob-area length, then the header plaintext, which is sealed with the fixed
//! key so the postcard decoder behind the MAC is reached.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::codec;
use clawback_engine::format::crypto::AAD_PACK_HEADER;
use clawback_engine::format::id::PackId;
use clawback_engine::format::pack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let keys = common::keys();
    let blobs_len = u16::from_le_bytes([data[0], data[1]]) as usize % 4096;
    let plain = &data[2..];
    // The plaintext as a raw codec payload, and as the payload itself (flag byte fuzzed too).
    for sealed in [codec::seal_object(&keys, &[AAD_PACK_HEADER], plain, 0), keys.seal(&[AAD_PACK_HEADER], plain)] {
        let mut bytes = vec![0u8; blobs_len];
        bytes.extend_from_slice(&sealed);
        bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let id = PackId::of_bytes(&bytes);
        if let Ok(entries) = pack::parse(&keys, &id, &bytes) {
            let end: u64 = entries.iter().map(|e| e.length as u64).sum();
            assert_eq!(end, blobs_len as u64, "accepted a header whose blobs do not fill the pack");
        }
    }
    // The raw bytes as a whole pack (the MAC refuses them, but the tail length is read first).
    let id = PackId::of_bytes(data);
    let _ = pack::parse(&keys, &id, data);
    if data.len() >= 4 {
        let tail: [u8; 4] = data[data.len() - 4..].try_into().unwrap();
        if let Ok((start, len)) = pack::header_range(data.len() as u64, &tail) {
            assert!(start + len + 4 == data.len() as u64);
        }
    }
});
