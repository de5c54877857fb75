//! Migration both ways with `openclaw backup` archives: `import` of a hand-built archive in the
//! documented layout (`<root>/manifest.json` and `<root>/payload/posix/<absolute path>`) gives a
//! snapshot with the archive's time and original paths whose restore equals the payload; hostile
//! archives are refused; `export` writes that layout, and importing the export gives back the same
//! content and metadata.

use crate::diff_dump::raw_stdout;
use crate::support::*;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

const ROOT: &str = "2026-03-09T08-00-00.000Z-openclaw-backup";
const STATE: &str = "/home/node/.openclaw";
const WS: &str = "/srv/agents/ops-ws";

/// A small OpenClaw state dir and an outside workspace, with whole-second mtimes (tar's).
fn make_payload(state: &Path, ws: &Path) {
    write(&state.join("openclaw.json"), br#"{ agents: { list: [{ id: "ops", workspace: "/srv/agents/ops-ws" }] } }"#);
    write(&state.join("credentials/telegram.json"), b"{\"token\":\"x\"}");
    chmod(&state.join("credentials/telegram.json"), 0o600);
    write(&state.join("agents/main/sessions/0b7c.jsonl"), b"{\"role\":\"user\",\"content\":\"hi\"}\n");
    write(&state.join("agents/main/agent/auth-profiles.json"), b"{}");
    write(&state.join("memory/main.sqlite"), &random_bytes(3, 200_000));
    write(&state.join("workspace/MEMORY.md"), b"# Memory\n");
    write(&state.join("workspace/memory/2026-03-08.md"), b"note\n");
    write(&state.join("media/photo.jpg"), &random_bytes(4, 3 << 20));
    write(&state.join("workspace/skills/tool.sh"), b"#!/bin/sh\n");
    chmod(&state.join("workspace/skills/tool.sh"), 0o755);
    write(
        &state.join("a-folder-name-long-enough-that-the-whole-path-passes-one-hundred-bytes/and-a-file-name.md"),
        b"long\n",
    );
    fs::create_dir_all(state.join("empty")).unwrap();
    std::os::unix::fs::symlink("../workspace/MEMORY.md", state.join("agents/main/memory-link")).unwrap();
    // Symlinks are kept as symlinks, whatever they point at; restore never follows them.
    std::os::unix::fs::symlink("/etc/passwd", state.join("workspace/outside")).unwrap();
    write(&ws.join("MEMORY.md"), b"ops memory\n");
    write(&ws.join("memory/2026-03-09.md"), b"ops note\n");
    for root in [state, ws] {
        let mut all: Vec<PathBuf> = scan(root)
            .into_keys()
            .map(|r| if r.as_os_str().is_empty() { root.to_path_buf() } else { root.join(r) })
            .collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for (i, p) in all.iter().enumerate() {
            set_mtime(p, 1_773_000_000 + i as i64, 0);
        }
    }
}

fn manifest() -> Vec<u8> {
    let m = serde_json::json!({
        "schemaVersion": 1,
        "createdAt": "2026-03-09T08:00:00.000Z",
        "archiveRoot": ROOT,
        "runtimeVersion": "2026.3.8",
        "platform": "linux",
        "nodeVersion": "v22.14.0",
        "options": { "includeWorkspace": true },
        "paths": {
            "stateDir": STATE,
            "configPath": format!("{STATE}/openclaw.json"),
            "oauthDir": format!("{STATE}/credentials"),
            "workspaceDirs": [format!("{STATE}/workspace"), WS],
        },
        "assets": [
            { "kind": "state", "sourcePath": STATE, "archivePath": format!("{ROOT}/payload/posix{STATE}") },
            { "kind": "workspace", "sourcePath": WS, "archivePath": format!("{ROOT}/payload/posix{WS}") },
        ],
        "skipped": [],
    });
    let mut v = serde_json::to_vec_pretty(&m).unwrap();
    v.push(b'\n');
    v
}

fn append_file(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(1_773_043_200);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).unwrap();
}

/// Builds the archive as `openclaw backup create` lays it out (the manifest first, as it writes
/// it, or last), gzip-compressed.
fn build_archive(out: &Path, state: &Path, ws: &Path, manifest_last: bool) {
    let f = fs::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    if !manifest_last {
        append_file(&mut b, &format!("{ROOT}/manifest.json"), &manifest());
    }
    b.append_dir_all(format!("{ROOT}/payload/posix{STATE}"), state).unwrap();
    b.append_dir_all(format!("{ROOT}/payload/posix{WS}"), ws).unwrap();
    if manifest_last {
        append_file(&mut b, &format!("{ROOT}/manifest.json"), &manifest());
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn import_of_an_openclaw_archive_restores_its_payload_at_the_original_paths() {
    let sb = Sandbox::with_repo();
    let (state, ws) = (sb.path("payload/state"), sb.path("payload/ws"));
    make_payload(&state, &ws);
    for manifest_last in [false, true] {
        let ar = sb.path(&format!("backup-{manifest_last}.tar.gz"));
        build_archive(&ar, &state, &ws, manifest_last);
        let v = sb.cb().args(["import", "--json"]).arg(&ar).run().ok().json();
        let id = v["snapshot_id"].as_str().expect("snapshot_id").to_string();
        assert_eq!(v["archive_root"], ROOT, "{v}");
        assert_eq!(v["paths"], serde_json::json!([STATE, WS]), "{v}");
        assert_eq!(v["skipped"], serde_json::json!([]), "{v}");

        let snap =
            sb.snapshots().into_iter().find(|s| s["id"] == id.as_str()).expect("the imported snapshot is listed");
        assert_eq!(snap["time"], "2026-03-09T08:00:00.000000000Z", "the archive's time: {snap}");
        assert_eq!(snap["paths"], serde_json::json!([STATE, WS]));
        let raw = sb.cb().args(["cat", "snapshot", &id]).run().ok().json();
        let oc = &raw["openclaw"];
        assert_eq!(oc["state_dir"], STATE, "{raw}");
        assert_eq!(oc["config_path"], format!("{STATE}/openclaw.json"), "{raw}");
        assert!(oc["workspaces"].as_array().unwrap().contains(&serde_json::json!(WS)), "{raw}");
        // The agents its openclaw.json declares, with their own workspaces.
        assert_eq!(oc["agents"].as_array().unwrap().len(), 1, "{raw}");
        assert_eq!(oc["agents"][0]["id"], "ops", "{raw}");
        assert_eq!(oc["agents"][0]["workspace"], WS, "{raw}");
        assert_eq!(oc["agents"][0]["agent_dir"], format!("{STATE}/agents/ops/agent"), "{raw}");
        assert_eq!(oc["openclaw_version"], "2026.3.8", "{raw}");

        let t = sb.path(&format!("restored-{manifest_last}"));
        sb.restore(&id, &t);
        assert_same_tree(&state, &restored(&t, Path::new(STATE)));
        assert_same_tree(&ws, &restored(&t, Path::new(WS)));
        // dump reads the imported snapshot like any other.
        let mem = raw_stdout(&sb, None, &[OsStr::new("dump"), OsStr::new(&id), OsStr::new(&format!("{WS}/MEMORY.md"))]);
        assert_eq!(mem, b"ops memory\n");
    }
    // Two imports of the same archive share every chunk.
    let snaps = sb.snapshots();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["tree"], snaps[1]["tree"], "the same archive gives the same trees");
}

/// A tar stream with a manifest and the given extra entries, gzip-compressed.
fn hostile(extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_file(&mut b, &format!("{ROOT}/manifest.json"), &manifest());
    append_file(&mut b, &format!("{ROOT}/payload/posix{STATE}/openclaw.json"), b"{}");
    append_file(&mut b, &format!("{ROOT}/payload/posix{WS}/MEMORY.md"), b"m");
    extra(&mut b);
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// Writes a raw header whose name field holds `name` verbatim (the tar crate refuses `..` and
/// absolute names, which is the point).
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &[u8], ty: tar::EntryType, link: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(ty);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn hostile_archives_are_refused_and_leave_no_snapshot() {
    let sb = Sandbox::with_repo();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "..",
            hostile(|b| {
                raw_entry(
                    b,
                    format!("{ROOT}/payload/posix/../../../etc/cron.d/x").as_bytes(),
                    tar::EntryType::Regular,
                    b"",
                    b"x",
                )
            }),
        ),
        ("absolute", hostile(|b| raw_entry(b, b"/etc/cron.d/x", tar::EntryType::Regular, b"", b"x"))),
        ("outside the archive root", hostile(|b| append_file(b, "another-root/payload/posix/x", b"x"))),
        ("appears twice", hostile(|b| append_file(b, &format!("{ROOT}/payload/posix{STATE}/openclaw.json"), b"again"))),
        (
            "not a folder",
            hostile(|b| append_file(b, &format!("{ROOT}/payload/posix{STATE}/openclaw.json/inside"), b"x")),
        ),
        ("PAX header", hostile(|b| b.append_pax_extensions([("comment", vec![b'x'; 2 << 20].as_slice())]).unwrap())),
        ("manifest", {
            let mut b = tar::Builder::new(Vec::new());
            append_file(&mut b, &format!("{ROOT}/payload/posix{STATE}/openclaw.json"), b"{}");
            b.into_inner().unwrap()
        }),
        ("truncated", {
            let full =
                hostile(|b| append_file(b, &format!("{ROOT}/payload/posix{STATE}/big"), &random_bytes(1, 1 << 20)));
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(full.as_slice()).read_to_end(&mut plain).unwrap();
            plain.truncate(plain.len() - 300_000);
            plain
        }),
    ];
    for (what, bytes) in cases {
        let p = sb.path("hostile.tar.gz");
        fs::write(&p, &bytes).unwrap();
        let r = sb.cb().args(["import"]).arg(&p).run();
        assert_eq!(r.code, 1, "{what}: expected a refusal, got {}\n{}\n{}", r.code, r.stdout, r.stderr);
        let line = r.one_error_line();
        assert!(line.contains("archive"), "{what}: {line}");
        assert!(sb.snapshots().is_empty(), "{what}: a snapshot was written");
    }
    assert!(!Path::new("/etc/cron.d/x").exists());
}

/// Every entry of a gzip-compressed tar: (path, type, link target).
fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let p = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let l = e.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).unwrap());
            (p, e.header().entry_type(), l)
        })
        .collect()
}

fn lexical(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[test]
fn export_writes_the_openclaw_layout_and_import_reads_it_back_unchanged() {
    let sb = Sandbox::with_repo();
    let home = sb.path("oc-home");
    let mut opts = clawback_corpus::Options::new(&home, 1_000_000);
    opts.seed = 5;
    let gen = clawback_corpus::generate(&opts).expect("generate corpus");
    let state = gen.state_dir.clone();
    // What a corpus lacks: hard links, a relative and an absolute symlink inside the state dir,
    // a symlink out of it, times with nanoseconds, an unusual mode.
    write(&state.join("links/original.txt"), b"linked\n");
    fs::hard_link(state.join("links/original.txt"), state.join("links/hardlink.txt")).unwrap();
    std::os::unix::fs::symlink("../openclaw.json", state.join("links/relative")).unwrap();
    std::os::unix::fs::symlink(state.join("openclaw.json"), state.join("links/absolute")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", state.join("links/outside")).unwrap();
    write(&state.join("links/odd-mode"), b"x");
    chmod(&state.join("links/odd-mode"), 0o4751);
    set_mtime(&state.join("links/odd-mode"), 1_700_000_000, 123_456_789);
    let b = sb.cb().env("OPENCLAW_STATE_DIR", &state).args(["backup", "--json"]).arg(&state).run().ok().json();
    let a = b["snapshot_id"].as_str().unwrap().to_string();
    let orig = sb.snapshots().into_iter().find(|s| s["id"] == a.as_str()).unwrap();

    let out = sb.path("export.tar.gz");
    let v = sb.cb().args(["export", "--json", &a, "-o"]).arg(&out).run().ok().json();
    let root = v["archive_root"].as_str().unwrap().to_string();
    assert!(root.ends_with("-openclaw-backup") && !root.contains('/'), "{v}");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "only the symlink out of the state dir is left out: {v}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("links/outside"), "{v}");

    // The layout OpenClaw reads: one root, the manifest first, the payload under payload/posix.
    let bytes = fs::read(&out).unwrap();
    let list = entries(&bytes);
    assert_eq!(list[0].0, format!("{root}/manifest.json"));
    let mut m = String::new();
    tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()))
        .entries()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .read_to_string(&mut m)
        .unwrap();
    let m: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(m["schemaVersion"], 1);
    assert_eq!(m["archiveRoot"], root.as_str());
    let created = m["createdAt"].as_str().unwrap();
    assert!(orig["time"].as_str().unwrap().starts_with(&created[..23]), "createdAt {created} vs {orig}");
    assert_eq!(m["paths"]["stateDir"], state.to_string_lossy().as_ref());
    let assets = m["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 1, "{m}");
    assert_eq!(assets[0]["kind"], "state");
    assert_eq!(assets[0]["sourcePath"], state.to_string_lossy().as_ref());
    let asset_path = format!("{root}/payload/posix{}", state.display());
    assert_eq!(assets[0]["archivePath"], asset_path.as_str());
    let payload = format!("{root}/payload/posix");
    for (p, ty, link) in &list {
        assert!(p.starts_with(&format!("{root}/")), "{p} outside the root");
        assert!(!p.split('/').any(|c| c == ".."), "{p}");
        assert_ne!(*ty, tar::EntryType::Link, "hard links are written as files: {p}");
        if *ty == tar::EntryType::Symlink {
            let l = link.as_deref().unwrap();
            assert!(!l.starts_with('/'), "absolute link {p} -> {l}");
            let at = Path::new("/").join(p.strip_prefix(&payload).unwrap().trim_start_matches('/'));
            let target = lexical(at.parent().unwrap(), l);
            assert!(target.starts_with(&state), "{p} -> {l} leaves the asset");
        }
    }
    assert!(list.iter().any(|(p, _, _)| p == &format!("{asset_path}/links/hardlink.txt")));

    // An existing file is never overwritten; `-o -` writes the same bytes to stdout.
    let r = sb.cb().args(["export", &a, "-o"]).arg(&out).run().code(2);
    assert!(r.one_error_line().contains("exists"), "{}", r.stderr);
    assert_eq!(fs::read(&out).unwrap(), bytes);
    let piped = raw_stdout(&sb, None, &[OsStr::new("export"), OsStr::new(&a), OsStr::new("-o"), OsStr::new("-")]);
    assert!(piped == bytes, "export to stdout differs from export to a file");

    // Back in: the same paths, time and host, and the same content and metadata.
    let v = sb.cb().args(["import", "--json"]).arg(&out).run().ok().json();
    let bid = v["snapshot_id"].as_str().unwrap().to_string();
    let imp = sb.snapshots().into_iter().find(|s| s["id"] == bid.as_str()).unwrap();
    assert_eq!(imp["time"], orig["time"]);
    assert_eq!(imp["paths"], orig["paths"]);
    assert_eq!(imp["hostname"], orig["hostname"]);
    let d = sb.cb().args(["diff", "--json", &a, &bid]).run().ok().json();
    let only_outside = serde_json::json!([state.join("links/outside").to_string_lossy()]);
    assert_eq!(d["added"], serde_json::json!([]), "{d}");
    assert_eq!(d["removed"], only_outside, "{d}");
    assert_eq!(d["modified"], serde_json::json!([]), "{d}");

    let (ta, tb) = (sb.path("ta"), sb.path("tb"));
    sb.restore(&a, &ta);
    sb.restore(&bid, &tb);
    // The one entry export left out; removing it must not move the folder's mtime.
    let links = restored(&ta, &state).join("links");
    let md = fs::symlink_metadata(&links).unwrap();
    fs::remove_file(links.join("outside")).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        set_mtime(&links, md.mtime(), md.mtime_nsec() as u32);
    }
    assert_same_tree(&restored(&ta, &state), &restored(&tb, &state));
    let rb = restored(&tb, &state);
    assert_eq!(fs::read_link(rb.join("links/absolute")).unwrap(), state.join("openclaw.json"));
}
