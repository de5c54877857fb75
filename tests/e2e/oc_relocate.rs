//! Moving an agent to a new machine: a real OpenClaw home A, backed up as host `old-box`, restored
//! with `--relocate` as home B (clawback run with HOME=B). OpenClaw on B must find every agent
//! with its workspace under B, start its gateway, and still have its cron job: the job is keyed by
//! the absolute path of `<state>/cron/jobs.json` in `state/openclaw.sqlite`, so it is lost unless
//! the databases are rewritten along with openclaw.json.

use crate::real_openclaw::{agents, openclaw_json, openclaw_path, Gateway, RealHome, CRON_JOB};
use crate::support::same_content;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

/// Every file under `root`, relative, without following symlinks.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(root).unwrap().to_path_buf())
        .collect();
    v.sort();
    v
}

/// The rewrites of a `--json` report of this kind at this location.
fn rewrites<'a>(v: &'a Value, kind: &str, location: &str) -> Vec<&'a Value> {
    v["relocation"]["rewrites"]
        .as_array()
        .unwrap_or_else(|| panic!("no relocation report in {v}"))
        .iter()
        .filter(|r| r["kind"] == kind && r["location"] == location)
        .collect()
}

/// OpenClaw's workspace identity key (sha256 of the path), computed by OpenClaw's own runtime.
fn node_sha256(s: &str) -> String {
    let out = std::process::Command::new("node")
        .env("PATH", openclaw_path())
        .args([
            "-e",
            "process.stdout.write(require('crypto').createHash('sha256').update(process.argv[1]).digest('hex'))",
        ])
        .arg(s)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_home_relocated_onto_another_runs_there_with_its_cron_job() {
    let h = RealHome::new();
    let a = h.home().to_path_buf();
    h.cb().args(["backup", "--host", "old-box", "--json"]).run().ok();
    // B's path starts with A's as a string (`.../home` and `.../home-b`): only whole path
    // components may match.
    let b = h.sb.path("home-b");
    fs::create_dir_all(&b).unwrap();
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let restore = |extra: &[&str]| {
        h.cb().env("HOME", &b).args(["restore", "latest", "--host", "old-box", "--relocate"]).args(extra)
    };

    // A dry run says where each root goes and each path it would move, and writes nothing.
    let v = restore(&["--dry-run", "--json"]).run().ok().json();
    let moves: Vec<(String, String, String)> = v["relocation"]["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (m["what"].as_str().unwrap().into(), m["from"].as_str().unwrap().into(), m["to"].as_str().unwrap().into())
        })
        .collect();
    for (what, from, to) in [
        ("state dir", format!("{sa}/.openclaw"), format!("{sb}/.openclaw")),
        ("workspace of worker", format!("{sa}/work/worker"), format!("{sb}/work/worker")),
        ("workspace of scribe", format!("{sa}/.openclaw/workspace/scribe"), format!("{sb}/.openclaw/workspace/scribe")),
    ] {
        assert!(moves.contains(&(what.into(), from, to)), "{what}: {moves:?}");
    }
    let cfg = format!("{sb}/.openclaw/openclaw.json");
    let w = rewrites(&v, "config", "agents.entries.worker.workspace");
    assert!(
        w.iter().any(|r| r["file"] == cfg.as_str()
            && r["from"] == format!("{sa}/work/worker").as_str()
            && r["to"] == format!("{sb}/work/worker").as_str()),
        "{w:?}"
    );
    let state_db = format!("{sb}/.openclaw/state/openclaw.sqlite");
    let c = rewrites(&v, "database", "cron_jobs.store_key");
    assert!(
        c.iter().any(|r| r["file"] == state_db.as_str()
            && r["from"] == format!("{sa}/.openclaw/cron/jobs.json").as_str()
            && r["to"] == format!("{sb}/.openclaw/cron/jobs.json").as_str()
            && r["rows"].as_u64() >= Some(1)),
        "{c:?}"
    );
    let k = rewrites(&v, "database", "workspace_path_aliases.workspace_key");
    assert!(k.iter().any(|r| r["from"] == format!("sha256({sa}/work/worker)").as_str()), "{k:?}");
    assert_eq!(v["dry_run"], true);
    assert!(fs::read_dir(&b).unwrap().next().is_none(), "a dry run writes nothing");

    // The restore, with its report in human lines.
    let r = restore(&[]).run().ok();
    for line in [
        format!("workspace of worker  {sa}/work/worker -> {sb}/work/worker"),
        format!("{cfg}: agents.entries.worker.workspace: {sa}/work/worker -> {sb}/work/worker"),
        format!("{state_db}: cron_jobs.store_key"),
    ] {
        assert!(r.stdout.contains(&line), "missing {line:?} in\n{}", r.stdout);
    }
    assert!(r.stdout.contains(&format!("to undo, remove {sb}/.openclaw {sb}/work/worker")), "{}", r.stdout);

    // The workspaces hold A's files, the .env their .gitignore names too (kept, as OpenClaw keeps it).
    for (from, to) in
        [(a.join(".openclaw/workspace"), b.join(".openclaw/workspace")), (a.join("work/worker"), b.join("work/worker"))]
    {
        let want = files(&from);
        assert!(want.iter().any(|p| p.ends_with("MEMORY.md") || p.ends_with("notes.md")), "{want:?}");
        assert_eq!(files(&to), want, "{}", to.display());
        for f in &want {
            assert!(same_content(&from.join(f), &to.join(f)), "{}", f.display());
        }
    }
    // Nothing restored names A any more: not the config, not the keys in the databases.
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(!text.contains(&format!("{sa}/")), "{text}");
    let db = rusqlite::Connection::open(&state_db).unwrap();
    let keys: Vec<String> = db
        .prepare("SELECT DISTINCT store_key FROM cron_jobs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys, [format!("{sb}/.openclaw/cron/jobs.json")]);
    let ws: Vec<(String, String)> = db
        .prepare("SELECT workspace_key, workspace_path FROM workspace_setup_state")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ws.len(), 3, "{ws:?}");
    for (key, path) in &ws {
        assert!(path.starts_with(&format!("{sb}/")), "{path}");
        assert_eq!(*key, node_sha256(path), "OpenClaw's identity key of {path}");
    }
    drop(db);

    // OpenClaw on B: every workspace under B, the nested one too.
    let mut found = agents(&b);
    found.sort();
    assert_eq!(
        found,
        [
            ("molty".to_string(), b.join(".openclaw/workspace")),
            ("scribe".to_string(), b.join(".openclaw/workspace/scribe")),
            ("worker".to_string(), b.join("work/worker")),
        ]
    );
    // Its gateway starts and still has the cron job.
    let mut gw = Gateway::start(&b);
    let jobs = openclaw_json(&b, &["cron", "list"]);
    let names: Vec<&str> = jobs["jobs"].as_array().unwrap().iter().filter_map(|j| j["name"].as_str()).collect();
    assert!(names.contains(&CRON_JOB), "{names:?}");
    // A relocation onto a home whose gateway runs is refused, --force or not.
    let r = restore(&["--force"]).run().code(1);
    assert!(r.one_error_line().contains("gateway is running"), "{}", r.stderr);
    assert!(gw.running());
    gw.stop();
}

#[test]
fn relocation_refuses_unmapped_roots_and_an_existing_install_unless_forced() {
    let h = RealHome::new();
    let a = h.home().to_path_buf();
    h.cb().args(["backup", "--host", "old-box"]).run().ok();
    let b = h.sb.path("home-b");
    fs::create_dir_all(&b).unwrap();
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let cb = || h.cb().env("HOME", &b).args(["restore", "latest"]);

    // Explicit pairs that leave the worker's workspace (outside the state dir) unmapped.
    let pair = format!("--relocate={sa}/.openclaw={sb}/.openclaw");
    let r = cb().arg(&pair).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains(&format!("{sa}/work/worker (workspace of worker)")) && line.contains("unmapped"), "{line}");
    assert!(!b.join(".openclaw").exists());
    // With the workspace mapped too, anywhere.
    let v = cb().args([pair.as_str(), &format!("--relocate={sa}/work={sb}/projects"), "--json"]).run().ok().json();
    assert!(v["safety_snapshot_id"].is_null(), "nothing was there: {v}");
    assert!(b.join("projects/worker/notes.md").is_file());
    let text = fs::read_to_string(b.join(".openclaw/openclaw.json")).unwrap();
    assert!(text.contains(&format!("\"{sb}/projects/worker\"")), "{text}");

    // Again: B holds an install now; it is named and left alone.
    let memory = b.join(".openclaw/workspace/MEMORY.md");
    let original = fs::read_to_string(&memory).unwrap();
    fs::write(&memory, "edited on B\n").unwrap();
    fs::write(b.join(".openclaw/workspace/new-on-b.md"), "new\n").unwrap();
    let r = cb().arg("--relocate").arg(format!("--relocate={sa}/work={sb}/projects")).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains(&format!("{sb}/.openclaw (state dir)")) && line.contains("--force"), "{line}");
    assert!(!line.contains("workspace of molty"), "a workspace inside the state dir is not named again: {line}");
    assert_eq!(fs::read_to_string(&memory).unwrap(), "edited on B\n");

    // --force: over it, after a safety snapshot that the printed undo restores.
    let v = cb()
        .args(["--relocate", &format!("--relocate={sa}/work={sb}/projects"), "--force", "--json"])
        .run()
        .ok()
        .json();
    let safety = v["safety_snapshot_id"].as_str().unwrap_or_else(|| panic!("no safety snapshot: {v}"));
    assert!(v["relocation"]["moves"].as_array().unwrap().iter().any(|m| m["occupied"] == true), "{v}");
    assert_eq!(fs::read_to_string(&memory).unwrap(), original);
    let undo = v["undo"].as_str().unwrap();
    assert!(undo.contains(safety) && undo.contains("--delete"), "{undo}");
    h.cb().env("HOME", &b).args(["restore", safety, "--delete"]).run().ok();
    assert_eq!(fs::read_to_string(&memory).unwrap(), "edited on B\n");
    assert!(b.join(".openclaw/workspace/new-on-b.md").is_file());
}
