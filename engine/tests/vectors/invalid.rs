//! The negative vectors: every file of `format-spec/vectors/invalid/` goes to the independent reader
//! and to the engine, and both must refuse every one with the outcome the manifest names.

use crate::spec::{self, Outcome};
use crate::{hex32, keys, root, s, vectors};
use serde_json::Value;
use std::collections::BTreeSet;

/// The vector repository's dictionaries, read by the independent reader.
fn dicts(v: &Value) -> Vec<(u32, Vec<u8>)> {
    let dir = root().join("repo/dicts");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            spec::dict(&keys(v), &name, &std::fs::read(e.path()).unwrap()).unwrap()
        })
        .collect()
}

/// The independent reader's verdict on one negative vector.
fn independent(vector: &Value, bytes: &[u8], v: &Value) -> Result<(), spec::Refused> {
    let k = keys(v);
    let name = || s(vector, "name");
    match s(vector, "object") {
        "pack" => spec::pack(&k, name(), bytes).map(drop),
        "blob" => {
            let ty = vector["type"].as_u64().unwrap() as u8;
            spec::blob(&k, &dicts(v), ty, &hex32(s(vector, "id")), vector["raw_length"].as_u64().unwrap(), bytes)
                .map(drop)
        }
        "tree" => spec::tree(bytes).map(drop),
        "index" => spec::index(&k, name(), bytes).map(drop),
        "snapshot" => spec::snapshot(&k, name(), bytes).map(drop),
        "config" => spec::config(&k, bytes).map(drop),
        "dict" => spec::dict(&k, name(), bytes).map(drop),
        "key" => {
            if let Some(name) = vector.get("name") {
                spec::check_name(name.as_str().unwrap(), bytes)?;
            }
            spec::unwrap_key(bytes, s(v, "passphrase").as_bytes()).map(drop)
        }
        o => panic!("unknown object {o}"),
    }
}

#[test]
fn every_negative_vector_is_refused_as_its_manifest_says() {
    let v = vectors();
    let dir = root().join("invalid");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let list = manifest["vectors"].as_array().unwrap();
    let kinds = manifest["kinds"].as_object().unwrap();
    let listed: BTreeSet<&str> = list.iter().map(|x| s(x, "file")).collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "manifest.json")
        .collect();
    assert_eq!(listed, present.iter().map(String::as_str).collect(), "one manifest entry per file");
    assert_eq!(listed.len(), list.len(), "each file once in the manifest");

    let scratch = crate::engine::Scratch::new();
    let mut wrong = Vec::new();
    for x in list {
        let file = s(x, "file");
        let expect = s(x, "expect");
        assert!(kinds.contains_key(expect), "{file}: unknown kind {expect}");
        let bytes = std::fs::read(dir.join(file)).unwrap();
        match independent(x, &bytes, &v) {
            Err(r) if r.kind.as_str() == expect => {}
            Err(r) => wrong.push(format!(
                "{file}: the independent reader says {} ({}), expected {expect}",
                r.kind.as_str(),
                r.why
            )),
            Ok(()) => wrong.push(format!("{file}: the independent reader accepts it, expected {expect}")),
        }
        match crate::engine::outcome(x, &bytes, &v, &scratch) {
            Some(k) if k == expect => {}
            got => wrong.push(format!(
                "{file}: the engine {}, expected {expect}",
                got.map_or("accepts it".to_string(), |k| format!("says {k}"))
            )),
        }
    }
    assert!(wrong.is_empty(), "{} of {} negative vectors:\n{}", wrong.len(), list.len(), wrong.join("\n"));
    assert!(list.len() >= 50, "{}", list.len());
    let by_kind: BTreeSet<&str> = list.iter().map(|x| s(x, "expect")).collect();
    assert_eq!(by_kind.len(), kinds.len(), "every outcome kind has a vector");
    assert!(list.iter().all(|x| x.get("engine").is_none()), "no vector is marked as accepted by the engine");
    eprintln!("vectors: {} negative vectors refused by both readers", list.len());
}

#[test]
fn any_byte_changed_in_a_good_object_is_refused() {
    // Every object of the vector repository with its first, middle or last byte changed: objects
    // named by their hash fail the name check, the config (named `config`) fails authentication.
    let v = vectors();
    let k = keys(&v);
    let repo = root().join("repo");
    let mut checked = 0;
    for entry in walkdir(&repo) {
        let bytes = std::fs::read(&entry).unwrap();
        let name = entry.file_name().unwrap().to_str().unwrap().to_string();
        let folder = entry.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
        for at in [0, bytes.len() / 2, bytes.len() - 1] {
            let mut x = bytes.clone();
            x[at] ^= 0x01;
            let r = match folder.as_str() {
                "index" => spec::index(&k, &name, &x).map(drop),
                "snapshots" => spec::snapshot(&k, &name, &x).map(drop),
                "dicts" => spec::dict(&k, &name, &x).map(drop),
                "keys" => spec::check_name(&name, &x),
                "repo" => spec::config(&k, &x).map(drop),
                _ => spec::pack(&k, &name, &x).map(drop),
            };
            let e = r.expect_err(&format!("{folder}/{name} with byte {at} changed"));
            let want = if folder == "repo" { Outcome::Authentication } else { Outcome::Name };
            assert_eq!(e.kind, want, "{folder}/{name} byte {at}");
            checked += 1;
        }
    }
    assert!(checked >= 18, "{checked}");
}

fn walkdir(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn the_independent_time_check_agrees_with_the_engines() {
    let good = [
        "2026-01-01T00:00:00Z",
        "2026-11-22T12:00:00.123456789Z",
        "2024-02-29T23:59:59+01:00",
        "2026-06-30T23:59:60Z",
        "2026-01-01t00:00:00z",
        "2026-01-01T00:00:00.5-05:30",
    ];
    let bad = [
        "2026-01-01 00:00:00",
        "2026-01-01T00:00:00",
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00Z ",
        "26-01-01T00:00:00Z",
        "yesterday",
        "",
    ];
    for t in good {
        assert!(spec::is_rfc3339(t), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
    }
    for t in bad {
        assert!(!spec::is_rfc3339(t), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_err(), "{t}");
    }
}
