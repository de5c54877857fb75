//! Key files (`keys/<id>`): plaintext JSON with Argon2id parameters, salt and the wrapped master key.
#![no_main]
use clawback_engine::format::crypto::KeyFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(kf) = KeyFile::parse(data) else { return };
    // Unwrapping runs Argon2 with the file's own parameters; the engine bounds them, and the
    // fuzzer tries only cheap ones so it keeps its speed (the bounds are tested in crypto.rs).
    if kf.params.m_cost <= 256 && kf.params.t_cost <= 2 && kf.params.p_cost <= 4 {
        let _ = kf.open(b"fuzz passphrase");
    }
});
