//! clawback's OpenClaw-format archives, judged by the real OpenClaw both ways: `export` writes
//! what `openclaw backup verify` accepts and `openclaw backup restore` brings back as a working
//! home (the same agents and cron jobs, a gateway that starts), with the manifest `openclaw backup
//! create` writes; `dump --tar` is a tar node-tar (OpenClaw's reader) lists without complaint;
//! `import` of OpenClaw's own archive records the agents and workspaces the archive declares, so
//! `restore --only agent:ID` restores that agent's real workspace; and `latest` passes over the
//! safety snapshot an in-place restore takes.

use crate::diff_dump::raw_stdout;
use crate::real_openclaw::{agents, cron_names, openclaw_json, openclaw_path, tools_dir, RealHome, CRON_JOB};
use crate::support::*;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The one `.tar.gz` in `dir` (where `openclaw backup create --output DIR` wrote its archive).
fn archive_in(dir: &Path) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(found.len(), 1, "one archive in {}: {found:?}", dir.display());
    found[0].clone()
}

/// The `<root>/manifest.json` of a gzip-compressed archive.
fn manifest_of(archive: &Path) -> serde_json::Value {
    let f = fs::File::open(archive).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.split('/').count() == 2 && p.ends_with("/manifest.json") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            return serde_json::from_str(&s).unwrap();
        }
    }
    panic!("no manifest in {}", archive.display());
}

/// The kinds of the headers in a tar stream, as written (PAX and GNU long-name headers too).
fn header_kinds(tar_bytes: &[u8]) -> Vec<tar::EntryType> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.entries().unwrap().raw(true).map(|e| e.unwrap().header().entry_type()).collect()
}

/// Lists a tar file with node-tar, the reader `openclaw backup` uses: (entry paths, warnings).
fn node_tar_list(file: &Path) -> (Vec<String>, Vec<String>) {
    let script = file.with_extension("list.cjs");
    fs::write(
        &script,
        "const tar = require(process.argv[2]);\n\
         const entries = [], warnings = [];\n\
         tar.t({ file: process.argv[3], sync: true,\n\
                 onwarn: (code, message) => warnings.push(code + ': ' + message),\n\
                 onReadEntry: (e) => entries.push(e.path) });\n\
         console.log(JSON.stringify({ entries, warnings }));\n",
    )
    .unwrap();
    let mut c = std::process::Command::new("node");
    c.env_clear()
        .env("PATH", openclaw_path())
        .arg(&script)
        .arg(tools_dir().join("openclaw/node_modules/tar"))
        .arg(file);
    let r = Cmd::from_command(c).run();
    assert_eq!(r.code, 0, "node-tar could not list {}: {}", file.display(), r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let strs = |k: &str| v[k].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    (strs("entries"), strs("warnings"))
}

/// The cron job names OpenClaw keeps for this state dir (`cron_jobs`, keyed by the absolute
/// path of `<state>/cron/jobs.json`), read from its database while no gateway runs.
fn cron_jobs_in_db(state: &Path) -> BTreeSet<String> {
    let c = rusqlite::Connection::open_with_flags(
        state.join("state/openclaw.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let key = state.join("cron/jobs.json");
    let mut q = c.prepare("SELECT name FROM cron_jobs WHERE store_key = ?1").unwrap();
    let names = q.query_map([key.to_str().unwrap()], |r| r.get::<_, String>(0)).unwrap();
    names.map(Result::unwrap).collect()
}

fn sorted_agents(home: &Path) -> Vec<(String, PathBuf)> {
    let mut v = agents(home);
    v.sort();
    v
}

fn set(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.to_string()).collect()
}

#[test]
fn export_and_dump_tar_are_archives_openclaw_accepts_and_restores() {
    let h = RealHome::new();
    let home = h.home().to_path_buf();
    let state = h.state();
    let worker = h.workspace("worker");
    assert!(!worker.starts_with(&state), "the template's worker workspace is outside the state dir");
    let agents_before = sorted_agents(&home);
    let jobs_before = cron_jobs_in_db(&state);
    assert!(jobs_before.contains(CRON_JOB), "{jobs_before:?}");
    // A name past ustar's 100 bytes, so the archives need long-name headers (the Control UI's
    // hashed paths had them, but a default backup now leaves that cache out, as OpenClaw does).
    let long = state.join("workspace/projects").join(format!("{}.md", "a-long-note-name-".repeat(8)));
    fs::create_dir_all(long.parent().unwrap()).unwrap();
    fs::write(&long, "kept under its long name\n").unwrap();
    let v = h.cb().args(["backup", "--json"]).run().ok().json();
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");

    let out = h.sb.path("export.tar.gz");
    let v = h.cb().args(["export", "--json", "latest", "-o"]).arg(&out).run().ok().json();
    let root = v["archive_root"].as_str().unwrap().to_string();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(&out).unwrap()).read_to_end(&mut plain).unwrap();
    assert!(
        header_kinds(&plain).contains(&tar::EntryType::XHeader),
        "the export carries PAX headers (nanosecond times), which node-tar must accept"
    );
    let verified = openclaw_json(&home, &["backup", "verify", out.to_str().unwrap()]);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["archiveRoot"], root.as_str(), "{verified}");

    // dump --tar is a plain tar of original paths (not an OpenClaw archive): node-tar lists every
    // entry, PAX and long-name headers included, without a warning.
    let dumped =
        raw_stdout(&h.sb, None, &[OsStr::new("dump"), OsStr::new("latest"), state.as_os_str(), OsStr::new("--tar")]);
    let kinds = header_kinds(&dumped);
    assert!(kinds.contains(&tar::EntryType::XHeader), "the dump carries PAX headers");
    let dump_file = h.sb.path("state.tar");
    fs::write(&dump_file, &dumped).unwrap();
    let (listed, warnings) = node_tar_list(&dump_file);
    assert!(warnings.is_empty(), "node-tar warned: {warnings:?}");
    let mut ar = tar::Archive::new(dumped.as_slice());
    let want: Vec<String> =
        ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(listed.len(), want.len(), "node-tar lists every entry");
    let rel = |p: &Path| p.strip_prefix("/").unwrap().to_string_lossy().into_owned();
    assert!(listed.contains(&rel(&state.join("openclaw.json"))), "{listed:?}");
    assert!(listed.iter().any(|p| p.len() > 100), "long names (GNU long-name headers) are listed too");

    // Into an empty home at the same path (OpenClaw's archives, its cron store and config hold
    // absolute paths): `openclaw backup restore` extracts into a fresh staging folder, and
    // activation is, as it prints, moving the restored asset trees into place.
    fs::remove_dir_all(&state).unwrap();
    fs::remove_dir_all(&worker).unwrap();
    let staging = h.sb.path("staging");
    let r = openclaw_json(&home, &["backup", "restore", out.to_str().unwrap(), "--target", staging.to_str().unwrap()]);
    assert_eq!(r["archiveRoot"], root.as_str(), "{r}");
    let payload = staging.join(&root).join("payload/posix");
    for p in [&state, &worker] {
        fs::rename(restored(&payload, p), p).unwrap_or_else(|e| panic!("{} restored by OpenClaw: {e}", p.display()));
    }
    assert_eq!(fs::read_to_string(worker.join("notes.md")).unwrap(), "worker's own notes\n");
    assert_eq!(sorted_agents(&home), agents_before, "OpenClaw lists the same agents and workspaces");
    let jobs_after: BTreeSet<String> = cron_names(&home).into_iter().collect();
    assert_eq!(jobs_after, jobs_before, "a gateway on the restored home lists the same cron jobs");
}

#[test]
fn import_records_the_agents_and_workspaces_the_archive_declares() {
    let h = RealHome::new();
    let home = h.home().to_path_buf();
    let state = h.state();
    let want = sorted_agents(&home);
    let worker = want.iter().find(|(id, _)| id == "worker").unwrap().1.clone();
    let oc_dir = h.sb.path("openclaw-archive");
    fs::create_dir_all(&oc_dir).unwrap();
    openclaw_json(&home, &["backup", "create", "--output", oc_dir.to_str().unwrap()]);
    let theirs = archive_in(&oc_dir);
    h.cb().args(["backup", "--json"]).run().ok();
    let ours = h.sb.path("export.tar.gz");
    h.cb().args(["export", "latest", "-o"]).arg(&ours).run().ok();

    // clawback's manifest has every field OpenClaw's has (but the optional external-link report)
    // and declares the same paths, agents and assets.
    let (m_oc, m_cb) = (manifest_of(&theirs), manifest_of(&ours));
    for k in m_oc.as_object().unwrap().keys().filter(|k| *k != "externalSymbolicLinks") {
        assert!(m_cb.get(k).is_some(), "`{k}` missing from clawback's manifest: {m_cb}");
    }
    for k in ["schemaVersion", "runtimeVersion", "platform"] {
        assert_eq!(m_cb[k], m_oc[k], "{k}");
    }
    for k in ["stateDir", "configPath", "oauthDir"] {
        assert_eq!(m_cb["paths"][k], m_oc["paths"][k], "paths.{k}");
    }
    for k in ["workspaceDirs", "agentRoots"] {
        assert_eq!(set(&m_cb["paths"][k]), set(&m_oc["paths"][k]), "paths.{k}");
    }
    let assets = |m: &serde_json::Value| -> BTreeSet<(String, String)> {
        m["assets"].as_array().unwrap().iter().map(|a| (a["kind"].to_string(), a["sourcePath"].to_string())).collect()
    };
    assert_eq!(assets(&m_cb), assets(&m_oc), "assets");

    for (who, archive) in [("openclaw", &theirs), ("clawback", &ours)] {
        let v = h.cb().args(["import", "--json"]).arg(archive).run().ok().json();
        let id = v["snapshot_id"].as_str().unwrap().to_string();
        assert_eq!(v["warnings"], serde_json::json!([]), "{who}: {v}");
        let snap = h.cb().args(["cat", "snapshot", &id]).run().ok().json();
        let mut got: Vec<(String, PathBuf)> = snap["openclaw"]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["id"].as_str().unwrap().to_string(), PathBuf::from(a["workspace"].as_str().unwrap())))
            .collect();
        got.sort();
        assert_eq!(got, want, "{who}: the agents and workspaces OpenClaw itself lists");

        // `--only agent:worker` restores worker's workspace (outside the state dir) and its
        // agent folder, and nothing of the other agents.
        let t = h.sb.path(&format!("only-worker-{who}"));
        h.cb().args(["restore", &id, "--only", "agent:worker", "--target"]).arg(&t).run().ok();
        assert_eq!(
            fs::read_to_string(restored(&t, &worker.join("notes.md"))).unwrap(),
            "worker's own notes\n",
            "{who}"
        );
        assert!(restored(&t, &worker.join("AGENTS.md")).is_file(), "{who}");
        assert!(restored(&t, &state.join("agents/worker/agent/openclaw-agent.sqlite")).is_file(), "{who}");
        assert!(!restored(&t, &state.join("workspace")).exists(), "{who}: molty's workspace is not worker's");
        assert!(!restored(&t, &state.join("agents/molty")).exists(), "{who}");
    }
}

#[test]
fn latest_passes_over_the_safety_snapshot_of_an_in_place_restore() {
    let sb = Sandbox::with_repo();
    let dir = sb.path("data");
    write(&dir.join("notes.md"), b"first\n");
    let ids = |v: &serde_json::Value| v["snapshot_id"].as_str().unwrap().to_string();

    // A repository whose only snapshot is a safety snapshot: `latest` says why it finds none.
    let lone = Sandbox::with_repo();
    lone.cb().args(["backup", "--tag", "pre-restore"]).arg(&dir).run().ok();
    let r = lone.cb().args(["export", "latest", "-o"]).arg(lone.path("x.tar.gz")).run().code(2);
    assert!(r.one_error_line().contains("--tag pre-restore"), "{}", r.stderr);

    let a = ids(&sb.backup(&[&dir]));
    write(&dir.join("notes.md"), b"changed\n");
    let v = sb.cb().args(["restore", "--json", &a]).run().ok().json();
    let safety = v["safety_snapshot_id"].as_str().expect("an in-place restore takes a safety snapshot").to_string();
    assert_eq!(fs::read(dir.join("notes.md")).unwrap(), b"first\n");
    let snaps = sb.snapshots();
    assert_eq!(snaps.last().unwrap()["id"], safety.as_str(), "the safety snapshot is the newest");

    let export = |extra: &[&str], name: &str| {
        let out = sb.path(name);
        let v = sb.cb().args(["export", "--json", "latest", "-o"]).arg(&out).args(extra).run().ok().json();
        v["snapshot_id"].as_str().unwrap().to_string()
    };
    assert_eq!(export(&[], "latest.tar.gz"), a, "`export latest` is the latest backup");
    assert_eq!(export(&["--tag", "pre-restore"], "safety.tar.gz"), safety, "asked for by its tag");
    let cat = sb.cb().args(["cat", "snapshot", "latest"]).run().ok().json();
    assert_eq!(cat["id"], a.as_str(), "every command's `latest` is the same");
    let ls = sb.cb().args(["restore", "--dry-run", "--json", "latest", "--target"]).arg(sb.path("t")).run().ok().json();
    assert_eq!(ls["snapshot_id"], a.as_str(), "{ls}");
}
