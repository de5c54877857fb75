//! Keeps the spec and the code from drifting apart: every key the engine writes into a snapshot,
//! the config or a key file is named in the spec's section for that object, and the independent
//! reader stays independent of the engine.

use clawback_engine::format::crypto::{KdfParams, KeyFile, MasterKey};
use clawback_engine::format::id::{SnapshotId, TreeId};
use clawback_engine::format::snapshot::{AgentMeta, BackupIssue, OpenclawMeta, Snapshot, Summary, VersionSource};
use clawback_engine::repo::RepoConfig;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn spec_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/README.md")).unwrap()
}

/// The text of section `n` (from its `## n.` heading to the next `## `).
fn section(spec: &str, n: u32) -> String {
    let head = format!("## {n}. ");
    let start = spec.find(&head).unwrap_or_else(|| panic!("no section {n}"));
    let rest = &spec[start + head.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
}

/// Every key of `v`, nested ones included (objects inside arrays too).
fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.insert(k.clone());
                keys(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

/// The keys of `v` that `text` does not name as `"key"`.
fn unnamed(v: &Value, text: &str) -> (usize, Vec<String>) {
    let mut all = BTreeSet::new();
    keys(v, &mut all);
    let missing = all.iter().filter(|k| !text.contains(&format!("\"{k}\""))).cloned().collect();
    (all.len(), missing)
}

/// A snapshot with every optional part filled in, so that serializing it writes every key.
fn full_snapshot() -> Snapshot {
    let issue = || vec![BackupIssue { path: "/p".into(), error: "e".into() }];
    Snapshot {
        version: 1,
        time: "2026-01-01T00:00:00.000000000Z".into(),
        hostname: "h".into(),
        username: "u".into(),
        paths: vec!["/p".into()],
        tags: vec!["t".into()],
        parent: Some(SnapshotId([1; 32])),
        tree: TreeId([2; 32]),
        summary: Summary::default(),
        program_version: "clawback".into(),
        errors: issue(),
        skipped: issue(),
        warnings: issue(),
        changed: issue(),
        openclaw: Some(OpenclawMeta {
            state_dir: "/s".into(),
            config_path: Some("/s/openclaw.json".into()),
            config_files: vec!["/s/openclaw.json".into()],
            workspaces: vec!["/s/workspace".into()],
            agents: vec![AgentMeta {
                id: "main".into(),
                default: true,
                workspace: "/w".into(),
                agent_dir: "/a".into(),
            }],
            openclaw_version: Some("2026.9.6".into()),
            openclaw_version_source: Some(VersionSource::Cli),
        }),
        group: Some("g".into()),
        original: Some(SnapshotId([3; 32])),
    }
}

#[test]
fn the_spec_names_every_snapshot_key() {
    let (n, missing) = unnamed(&serde_json::to_value(full_snapshot()).unwrap(), &section(&spec_text(), 11));
    assert!(missing.is_empty(), "format-spec §11 does not name the snapshot keys {missing:?}");
    eprintln!("vectors: the spec names all {n} snapshot keys");
}

#[test]
fn the_spec_names_every_config_and_key_file_key() {
    let spec = spec_text();
    let cfg = RepoConfig {
        version: 1,
        id: "ab".repeat(32),
        chunker: Default::default(),
        pack_size: 16 << 20,
        compression: 3,
        append_only: Some(clawback_engine::repo::append_only::AppendOnly { maintenance: "cd".repeat(32) }),
        object_lock: Some(clawback_engine::backend::retention::ObjectLock { mode: "COMPLIANCE".into(), days: 30 }),
    };
    let (_, missing) = unnamed(&serde_json::to_value(cfg).unwrap(), &section(&spec, 4));
    assert!(missing.is_empty(), "format-spec §4 does not name the config keys {missing:?}");
    let kf =
        KeyFile::create(&MasterKey([5; 32]), b"pw", KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 }, "h", "u").unwrap();
    let (_, missing) = unnamed(&serde_json::to_value(kf).unwrap(), &section(&spec, 3));
    assert!(missing.is_empty(), "format-spec §3 does not name the key file keys {missing:?}");
}

#[test]
fn section_four_shows_the_default_chunker() {
    let d = clawback_engine::format::chunker::ChunkParams::default();
    let want = format!("\"chunker\":{{\"min\":{},\"avg\":{},\"max\":{}}}", d.min, d.avg, d.max);
    assert!(section(&spec_text(), 4).contains(&want), "format-spec §4's example should show {want}");
    let want = format!("\"pack_size\":{}", clawback_engine::repo::DEFAULT_PACK_SIZE);
    assert!(section(&spec_text(), 4).contains(&want), "format-spec §4's example should show {want}");
}

#[test]
fn the_independent_reader_does_not_use_the_engine() {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/spec.rs")).unwrap();
    let engine_crate = ["clawback", "_engine"].concat();
    assert!(
        !src.contains(&engine_crate) && !src.contains("crate::"),
        "spec.rs must not use the engine or other test modules"
    );
}
