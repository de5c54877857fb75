//! The config loader: JSON5, `$include` (with fixed files to include, a cycle among them, and a
//! missing one), the schema check, `${VAR}` substitution and path resolution. The input is written
//! as clawback's own file (odd first byte) or as OpenClaw's `openclaw.json` (even).
#![no_main]
use clawback_engine::config;
use clawback_engine::openclaw::env::Env;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let d = PathBuf::from(base).join(format!("clawback-fuzz-config-{}", std::process::id()));
        let state = d.join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("a.json5"), r#"{ storage: { path: "./repo" }, "$include": "b.json5" }"#).unwrap();
        std::fs::write(state.join("b.json5"), r#"{ retention: { keepDaily: 7 }, "$include": ["a.json5"] }"#).unwrap();
        std::fs::write(
            state.join("c.json5"),
            r#"{ tags: ["x", "${TAG}"], notify: { telegram: { token: "${TOKEN}" } } }"#,
        )
        .unwrap();
        std::fs::write(state.join("list.json5"), r#"[1, 2, {"$include": "c.json5"}]"#).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let d = dir();
    let state = d.join("state");
    let (own, oc) = (state.join("clawback.json"), state.join("openclaw.json"));
    let _ = std::fs::remove_file(&own);
    let _ = std::fs::remove_file(&oc);
    let target = if sel & 1 == 1 { &own } else { &oc };
    std::fs::write(target, rest).unwrap();
    let env = Env::from_pairs([
        ("HOME", d.to_string_lossy().into_owned()),
        ("OPENCLAW_STATE_DIR", state.to_string_lossy().into_owned()),
        ("TAG", "nightly".into()),
        ("TOKEN", "t0ken".into()),
    ]);
    let explicit = if sel & 1 == 1 { Some(own.as_path()) } else { None };
    let _ = config::load(&env, explicit);
    if let Ok(text) = std::str::from_utf8(rest) {
        if let Ok(v) = clawback_engine::openclaw::include::parse_json5(target, text) {
            let _ = clawback_engine::openclaw::include::resolve_includes(v, target, &[]);
        }
    }
});
