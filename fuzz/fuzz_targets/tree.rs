//! Tree blobs (postcard) after decryption.
#![no_main]
use clawback_engine::format::id::TreeId;
use clawback_engine::format::tree::{Node, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(&TreeId::default(), data) {
        for n in &t.nodes {
            assert!(Node::check_name(&n.name).is_ok(), "decode accepted an unsafe name");
            let _ = t.find(&n.name);
        }
        // What decodes re-encodes to bytes that decode to the same tree.
        assert_eq!(Tree::decode(&TreeId::default(), &t.encode()).unwrap(), t);
    }
});
