//! `diff` and `dump`: what changed after two hours of OpenClaw activity (the OpenClaw summary names
//! the grown sessions and the changed memory files), a file dumped byte for byte (yesterday's
//! MEMORY.md without a restore), and a folder dumped as a tar stream that extracts to the same tree.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Runs the binary like `Sandbox::cb` and returns its raw stdout (binary-safe), expecting success.
pub fn raw_stdout(sb: &Sandbox, cwd: Option<&Path>, args: &[&OsStr]) -> Vec<u8> {
    let mut c = sb.cb_command();
    c.args(args).stdin(Stdio::null());
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let out = c.output().expect("run clawback");
    assert!(
        out.status.success(),
        "clawback {:?} failed ({:?}):\n{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn strs(v: &serde_json::Value, k: &str) -> BTreeSet<String> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("{k} is not an array in {v}"))
        .iter()
        .map(|p| p.as_str().unwrap_or_else(|| panic!("{k} holds a non-string: {v}")).to_string())
        .collect()
}

/// (size, content) of the session transcripts and workspace memory notes under the state dir.
fn watched(state: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for p in files_under(state) {
        let rel = p.strip_prefix(state).unwrap();
        let s: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap_or("")).collect();
        let session = s.len() == 4 && s[0] == "agents" && s[2] == "sessions" && s[3].ends_with(".jsonl");
        let in_ws = s.first().is_some_and(|f| *f == "workspace" || f.starts_with("workspace-"));
        let memory = in_ws
            && ((s.len() == 2 && s[1] == "MEMORY.md")
                || (s.len() >= 3 && s[1] == "memory" && s[s.len() - 1].ends_with(".md")));
        if session || memory {
            out.insert(p.clone(), fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn diff_after_two_hours_of_activity_names_grown_sessions_and_changed_memory() {
    let sb = Sandbox::with_repo();
    let home = sb.path("oc-home");
    let mut opts = clawback_corpus::Options::new(&home, 3_000_000);
    opts.seed = 11;
    let gen = clawback_corpus::generate(&opts).expect("generate corpus");
    let state = gen.state_dir.clone();
    let cmd = || sb.cb().env("OPENCLAW_STATE_DIR", &state);

    let b1 = cmd().args(["backup", "--json"]).arg(&state).run().ok().json();
    let before = watched(&state);
    let ts = clawback_corpus::tick(&home, 1).expect("tick");
    assert!(ts.files_changed + ts.files_added > 0, "the tick changed nothing");
    let after = watched(&state);
    let b2 = cmd().args(["backup", "--json"]).arg(&state).run().ok().json();
    let (a, b) = (b1["snapshot_id"].as_str().unwrap(), b2["snapshot_id"].as_str().unwrap());

    // What the disk says changed.
    let is_session = |p: &Path| p.extension() == Some(OsStr::new("jsonl"));
    let mut grown = BTreeSet::new();
    let mut new_sessions = BTreeSet::new();
    let mut memory = BTreeSet::new();
    for (p, now) in &after {
        let key = p.to_string_lossy().into_owned();
        match before.get(p) {
            None if is_session(p) => {
                new_sessions.insert(key);
            }
            Some(old) if is_session(p) && now.len() > old.len() => {
                grown.insert(key);
            }
            None => {
                memory.insert(key);
            }
            Some(old) if !is_session(p) && old != now => {
                memory.insert(key);
            }
            _ => {}
        }
    }
    assert!(!grown.is_empty() && !new_sessions.is_empty(), "the tick grew no session: {ts:?}");
    assert!(memory.iter().any(|m| m.ends_with("MEMORY.md")), "the tick did not edit MEMORY.md: {memory:?}");

    let v = sb.cb().args(["diff", "--json", a, b]).run().ok().json();
    let (added, removed, modified) = (strs(&v, "added"), strs(&v, "removed"), strs(&v, "modified"));
    for s in &new_sessions {
        assert!(added.contains(s), "new session {s} not in added: {added:?}");
    }
    for s in &grown {
        assert!(modified.contains(s), "grown session {s} not in modified");
    }
    for m in &memory {
        assert!(added.contains(m) || modified.contains(m), "changed memory file {m} not listed");
    }
    assert!(added.is_disjoint(&removed) && added.is_disjoint(&modified));

    // The OpenClaw summary: exactly the sessions that appeared or grew, with the bytes appended.
    let oc = &v["openclaw"];
    let sessions = oc["sessions"].as_array().expect("openclaw.sessions");
    let listed: BTreeMap<String, &serde_json::Value> =
        sessions.iter().map(|s| (s["path"].as_str().unwrap().to_string(), s)).collect();
    let want: BTreeSet<String> = grown.union(&new_sessions).cloned().collect();
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), want, "sessions in the summary: {oc}");
    for s in &grown {
        let e = listed[s];
        let p = Path::new(s);
        let delta = after[p].len() as i64 - before[p].len() as i64;
        assert_eq!(e["change"], "modified", "{e}");
        assert_eq!(e["grown"].as_i64(), Some(delta), "{e}");
        assert_eq!(e["agent"], "main", "{e}");
    }
    for s in &new_sessions {
        assert_eq!(listed[s]["change"], "added");
    }
    assert_eq!(oc["sessions_added"].as_u64(), Some(new_sessions.len() as u64), "{oc}");
    assert_eq!(oc["sessions_grown"].as_u64(), Some(grown.len() as u64), "{oc}");
    let mem: BTreeSet<String> =
        oc["memory"].as_array().unwrap().iter().map(|m| m["path"].as_str().unwrap().to_string()).collect();
    for m in &memory {
        assert!(mem.contains(m), "memory file {m} not in the summary: {mem:?}");
    }
    for m in &mem {
        assert!(m.ends_with(".md") || m.ends_with(".sqlite"), "not a memory file: {m}");
    }
    for d in oc["databases"].as_array().unwrap() {
        let p = d["path"].as_str().unwrap();
        assert!(p.ends_with(".sqlite") || p.ends_with(".db"), "not a database: {p}");
    }
    let dbs: Vec<&str> = oc["databases"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert!(!dbs.is_empty(), "the tick wrote rows into the databases, the diff should say so: {oc}");
    assert!(v["summary"]["files_modified"].as_u64().unwrap() >= grown.len() as u64);

    // Human output: the summary first, then the lists.
    let h = sb.cb().args(["diff", a, b]).run().ok().stdout;
    let summary_at = h.find("sessions:").unwrap_or_else(|| panic!("no sessions line:\n{h}"));
    assert!(h.contains("memory:"), "{h}");
    let first = grown.iter().next().unwrap();
    assert!(h.contains(&format!("M  {first}")), "{h}");
    assert!(h.find(&format!("M  {first}")).unwrap() > summary_at, "the summary comes first:\n{h}");
    for s in &new_sessions {
        assert!(h.contains(&format!("+  {s}")), "{h}");
    }

    // A snapshot compared with itself: nothing.
    let same = sb.cb().args(["diff", "--json", b, b]).run().ok().json();
    for k in ["added", "removed", "modified"] {
        assert!(strs(&same, k).is_empty(), "{same}");
    }
}

#[test]
fn diff_reports_removed_folders_type_changes_and_metadata() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("gone/a.txt"), b"a");
    write(&src.join("gone/deep/b.txt"), b"bb");
    write(&src.join("mode.txt"), b"same");
    write(&src.join("turns-into-dir"), b"file");
    let s1 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    fs::remove_dir_all(src.join("gone")).unwrap();
    chmod(&src.join("mode.txt"), 0o600);
    fs::remove_file(src.join("turns-into-dir")).unwrap();
    write(&src.join("turns-into-dir/x"), b"x");
    let s2 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    let v = sb.cb().args(["diff", "--json", &s1, &s2]).run().ok().json();
    let p = |r: &str| src.join(r).to_string_lossy().into_owned();
    let removed = strs(&v, "removed");
    for r in ["gone", "gone/a.txt", "gone/deep", "gone/deep/b.txt", "turns-into-dir"] {
        assert!(removed.contains(&p(r)), "{r} not removed: {v}");
    }
    let added = strs(&v, "added");
    assert!(added.contains(&p("turns-into-dir")) && added.contains(&p("turns-into-dir/x")), "{v}");
    assert!(strs(&v, "modified").contains(&p("mode.txt")), "{v}");
    let e = v["entries"].as_array().unwrap().iter().find(|e| e["path"] == p("mode.txt")).unwrap();
    assert_eq!((e["content_changed"].as_bool(), e["metadata_changed"].as_bool()), (Some(false), Some(true)));
    assert_eq!(v["summary"]["bytes_removed"].as_u64(), Some(1 + 2 + 4), "{v}");
}

#[test]
fn dump_writes_one_file_byte_for_byte_even_from_an_older_snapshot() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    let ws = src.join("workspace");
    let big = random_bytes(5, 3 << 20);
    write(&ws.join("MEMORY.md"), b"# Memory\n- yesterday's note\n");
    write(&ws.join("big.bin"), &big);
    write(&ws.join("empty"), b"");
    let s1 = sb.backup(&[&src])["snapshot_id"].as_str().unwrap().to_string();
    write(&ws.join("MEMORY.md"), b"# Memory\n- today's note\n");
    sb.backup(&[&src]);

    let dump = |snap: &str, p: &Path| raw_stdout(&sb, None, &[OsStr::new("dump"), OsStr::new(snap), p.as_os_str()]);
    assert_eq!(dump(&s1, &ws.join("MEMORY.md")), b"# Memory\n- yesterday's note\n");
    assert_eq!(dump("latest", &ws.join("MEMORY.md")), b"# Memory\n- today's note\n");
    assert!(dump("latest", &ws.join("big.bin")) == big, "big.bin differs");
    assert!(dump("latest", &ws.join("empty")).is_empty());
    // A relative path is resolved against the current folder, as `ls` does.
    let rel = raw_stdout(&sb, Some(&src), &[OsStr::new("dump"), OsStr::new(&s1), OsStr::new("workspace/MEMORY.md")]);
    assert_eq!(rel, b"# Memory\n- yesterday's note\n");

    let r = sb.cb().args(["dump", "latest"]).arg(ws.join("nope.md")).run().code(2);
    assert!(r.one_error_line().contains("not in the snapshot"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn dump_of_a_folder_is_a_tar_stream_that_extracts_to_the_same_tree() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    let ws = src.join("workspace");
    write(&ws.join("MEMORY.md"), b"memory\n");
    write(&ws.join("memory/2026-03-01.md"), b"a daily note\n");
    write(&ws.join("skills/run.sh"), b"#!/bin/sh\necho hi\n");
    chmod(&ws.join("skills/run.sh"), 0o755);
    write(&ws.join("secret.json"), b"{}");
    chmod(&ws.join("secret.json"), 0o600);
    write(&ws.join("big.bin"), &random_bytes(9, 2 << 20));
    write(&ws.join("empty"), b"");
    fs::create_dir_all(ws.join("empty-dir")).unwrap();
    let long =
        ws.join("a-rather-long-folder-name-to-pass-the-hundred-byte-tar-name-limit/and-a-long-file-name-as-well.md");
    write(&long, b"long\n");
    write(&ws.join(os_string(b"caf\xe9.txt")), b"latin-1 name\n");
    std::os::unix::fs::symlink("MEMORY.md", ws.join("link")).unwrap();
    // Whole-second times everywhere (the tar crate extracts seconds), one file with nanoseconds.
    let mut all: Vec<PathBuf> =
        scan(&ws).into_keys().map(|r| if r.as_os_str().is_empty() { ws.clone() } else { ws.join(r) }).collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_mtime(p, 1_700_000_000 + i as i64, 0);
    }
    set_mtime(&ws.join("MEMORY.md"), 1_700_000_123, 456_789_000);
    sb.backup(&[&src]);

    let bytes = raw_stdout(&sb, None, &[OsStr::new("dump"), OsStr::new("latest"), ws.as_os_str()]);
    let prefix = ws.strip_prefix("/").unwrap().to_path_buf();
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(bytes.as_slice());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().into_owned();
        assert!(path.starts_with(&prefix), "entry {} outside {}", path.display(), prefix.display());
        if path == prefix.join("MEMORY.md") {
            let pax = e.pax_extensions().unwrap().expect("a PAX header with the nanosecond mtime");
            let mtime = pax.filter_map(Result::ok).find(|x| x.key() == Ok("mtime")).expect("PAX mtime");
            assert_eq!(mtime.value().unwrap(), "1700000123.456789000");
        }
        names.push(path);
    }
    assert!(names.contains(&prefix.join("empty-dir")), "{names:?}");
    assert!(names.contains(&prefix.join("link")), "{names:?}");

    let out = sb.path("out");
    fs::create_dir_all(&out).unwrap();
    let mut ar = tar::Archive::new(bytes.as_slice());
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.unpack(&out).unwrap();
    let got = scan(&out.join(&prefix));
    let want = scan(&ws);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (p, w) in &want {
        let g = &got[p];
        assert_eq!(g.kind, w.kind, "{p:?}");
        assert_eq!(g.target, w.target, "{p:?}");
        if w.kind != "symlink" {
            assert_eq!(g.mode, w.mode, "{p:?}");
        }
        if w.kind == "file" {
            assert!(same_content(&ws.join(p), &out.join(&prefix).join(p)), "{p:?} differs");
            assert_eq!(g.mtime.0, w.mtime.0, "{p:?} mtime");
        }
    }

    // A single file with --tar, and a symlink without it.
    let one = raw_stdout(
        &sb,
        None,
        &[OsStr::new("dump"), OsStr::new("--tar"), OsStr::new("latest"), ws.join("empty").as_os_str()],
    );
    let n = tar::Archive::new(one.as_slice()).entries().unwrap().count();
    assert_eq!(n, 1);
    let r = sb.cb().args(["dump", "latest"]).arg(ws.join("link")).run().code(2);
    assert!(r.one_error_line().contains("symlink"), "{}", r.stderr);
}
