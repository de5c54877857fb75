//! The repository URL grammar (`repo::location::parse`): `local:/path`, plain paths and any
//! `scheme:rest` (S3 URLs need the engine's `s3` feature, which the fuzz build leaves out).
#![no_main]
use clawback_engine::repo::location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    if let Ok(loc) = location::parse(url) {
        let (_, name, key, local) = (loc.kind(), loc.name(), loc.key(), loc.local_path().map(|p| p.to_path_buf()));
        // A parsed local location is the folder the URL names: never an empty path.
        if let Some(p) = local {
            assert!(!p.as_os_str().is_empty(), "{url:?} parsed to an empty folder");
            // A folder is the URL itself, or what follows `local:`: nothing is rewritten.
            let named = url.strip_prefix("local:").unwrap_or(url);
            assert_eq!(p, std::path::Path::new(named), "{url:?} parsed to another folder");
        }
        let _ = (name, key);
    }
});
