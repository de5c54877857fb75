//! Compression dictionaries (`format::dict`) and the payloads compressed with one: the first byte
//! picks a dictionary plaintext (even: `Dict::from_bytes`, and sealed, `Dict::open`, which must
//! agree) or a dictionary-compressed payload (odd: `codec::dict_frame`, `decode_dict_payload` with
//! a fixed dictionary trained on fixed samples). The raw bytes are also opened as a stored object.
#![no_main]
#[path = "common.rs"]
mod common;
use clawback_engine::format::codec;
use clawback_engine::format::dict::{self, Dict};
use clawback_engine::format::id::ObjectId;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn fixed() -> &'static Dict {
    static D: OnceLock<Dict> = OnceLock::new();
    D.get_or_init(|| {
        let bytes = dict::train(&common::dict_samples().iter().map(|s| s.as_slice()).collect::<Vec<_>>(), 4096)
            .expect("the fixed samples train a dictionary");
        Dict::from_bytes("fixed".into(), bytes).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    let _ = Dict::open(&keys, &ObjectId::of_bytes(data).to_hex(), data);
    let Some((&pick, rest)) = data.split_first() else { return };
    if pick % 2 == 0 {
        let plain = Dict::from_bytes("fuzz".into(), rest.to_vec()).is_ok();
        let (name, sealed) = Dict::seal(&keys, rest);
        assert_eq!(Dict::open(&keys, &name.to_hex(), &sealed).is_ok(), plain, "sealing changed the verdict");
    } else {
        let d = fixed();
        let _ = codec::dict_frame(rest, 1 << 20);
        if let Ok(out) = codec::decode_dict_payload(rest, 1 << 20, d) {
            assert!(out.len() <= 1 << 20);
        }
    }
});
