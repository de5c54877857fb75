//! Restoring one part of an agent's life, exactly, against the real OpenClaw: `--only agent:ID`
//! when another agent's workspace nests in this one's (what `openclaw agents add --role` makes), and
//! the parts `sessions`, `session:AGENT/ID`, `cron`, `memory`, `config`, `credentials`, each damaged
//! on a home made by OpenClaw's CLI, restored, and read back by OpenClaw itself. The file era's
//! layout (JSONL transcripts, `sessions.json`, `cron/jobs.json`) comes from the corpus generator.

use crate::real_openclaw::{
    cron_names, openclaw, openclaw_json, openclaw_path, RealHome, CRON_JOB, MEMORY_LINE, TOKEN,
};
use crate::support::*;
use clawback_corpus::{generate, Era, Options};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs SQL on a database as a damaged or changed home would have it (foreign keys on, as OpenClaw
/// opens its databases, so a deleted session takes its rows with it).
fn sql(db: &Path, sql: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(&format!("PRAGMA foreign_keys = ON; {sql}")).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every file under `root` (relative) with its content.
fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(root).unwrap().to_path_buf(), fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

/// The non-folder entries restored under `target`, as the original absolute paths.
fn restored_files(target: &Path) -> BTreeSet<PathBuf> {
    scan(target).into_iter().filter(|(_, e)| e.kind != "dir").map(|(p, _)| Path::new("/").join(p)).collect()
}

/// Runs the undo command a restore printed (its words need no quoting: ids and plain paths).
fn run_undo(h: &RealHome, line: &str) -> Run {
    let rest = line.strip_prefix("clawback ").unwrap_or_else(|| panic!("not a clawback command: {line}"));
    assert!(!rest.contains('\''), "quoted words: {line}");
    // As a user pastes it: the repository and cache are the ones the line names.
    h.sb.bare()
        .env("PATH", openclaw_path())
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .env("CLAWBACK_CACHE_DIR", &h.sb.cache)
        .args(rest.split_whitespace())
        .run()
}

#[test]
fn an_agent_restore_never_touches_a_nested_agents_workspace() {
    let h = RealHome::new();
    let (molty, scribe) = (h.workspace("molty"), h.workspace("scribe"));
    assert!(scribe.starts_with(&molty) && scribe != molty, "scribe's workspace nests in molty's: {scribe:?} {molty:?}");
    h.cb().args(["backup", "--json"]).run().ok();

    // Afterwards both agents change: molty's memory is edited and a file added, scribe's soul is
    // edited and a file added.
    let memory = molty.join("MEMORY.md");
    let original_memory = fs::read(&memory).unwrap();
    fs::write(&memory, "edited by mistake\n").unwrap();
    fs::write(molty.join("extra.md"), "added after the backup\n").unwrap();
    fs::write(scribe.join("SOUL.md"), "scribe's newer soul\n").unwrap();
    fs::write(scribe.join("later.md"), "scribe's later notes\n").unwrap();
    let scribe_before = files(&scribe);
    let is_scribes = |p: &str| Path::new(p).starts_with(&scribe) || p.contains("/agents/scribe");

    // A dry run with --delete lists molty's changes and nothing of scribe's.
    let r = h.cb().args(["restore", "latest", "--only", "agent:molty", "--delete", "--dry-run", "--json"]).run().ok();
    let v = r.json();
    let changes: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect();
    assert!(changes.contains(&(memory.to_string_lossy().into_owned(), "update".into())), "{changes:?}");
    assert!(changes.contains(&(molty.join("extra.md").to_string_lossy().into_owned(), "delete".into())), "{changes:?}");
    assert!(!changes.iter().any(|(p, _)| is_scribes(p)), "scribe's files listed: {changes:?}");

    // Into a folder: molty's workspace without scribe's.
    let t = h.sb.path("target");
    h.cb().args(["restore", "latest", "--only", "agent:molty", "--target"]).arg(&t).run().ok();
    let got = restored_files(&t);
    assert!(got.contains(&memory) && got.iter().any(|p| p.starts_with(h.state().join("agents/molty"))), "{got:?}");
    assert!(!got.iter().any(|p| is_scribes(&p.to_string_lossy())), "scribe's files restored: {got:?}");
    assert!(!restored(&t, &scribe).exists());

    // In place, then in place with --delete: molty's back, scribe's untouched (edits and additions).
    h.cb().args(["restore", "latest", "--only", "agent:molty"]).run().ok();
    assert_eq!(fs::read(&memory).unwrap(), original_memory);
    assert_eq!(files(&scribe), scribe_before);
    let r = h.cb().args(["restore", "latest", "--only", "agent:molty", "--delete", "--json"]).run().ok();
    assert!(!molty.join("extra.md").exists());
    assert_eq!(files(&scribe), scribe_before, "{}", r.stdout);
    assert_eq!(fs::read_to_string(scribe.join("later.md")).unwrap(), "scribe's later notes\n");
}

/// A session id this test's sessions use.
const SID: &str = "5f1c2a9e-7b3d-4e8f-9a61-2c4d6e8f0a1b";
const KEY: &str = "agent:molty:tea-party";

/// A transcript as OpenClaw's file era writes it (`{"type":"session",...}` then one event a line).
fn transcript(sid: &str, cwd: &Path, text: &str) -> String {
    format!(
        "{{\"type\":\"session\",\"version\":3,\"id\":\"{sid}\",\"timestamp\":\"2026-12-01T10:00:00.000Z\",\"cwd\":\"{}\"}}\n\
         {{\"type\":\"message\",\"id\":\"m1\",\"parentId\":null,\"timestamp\":\"2026-12-01T10:00:01.000Z\",\"message\":{{\"role\":\"user\",\"content\":[{{\"type\":\"text\",\"text\":\"{text}\"}}],\"timestamp\":1764583201000}}}}\n\
         {{\"type\":\"message\",\"id\":\"m2\",\"parentId\":\"m1\",\"timestamp\":\"2026-12-01T10:00:02.000Z\",\"message\":{{\"role\":\"assistant\",\"content\":[{{\"type\":\"text\",\"text\":\"Noted.\"}}],\"provider\":\"openai\",\"model\":\"gpt-5.2\",\"usage\":{{\"input\":3,\"output\":2,\"totalTokens\":5}},\"stopReason\":\"stop\",\"timestamp\":1764583202000}}}}\n",
        cwd.display()
    )
}

/// Puts a session into molty's database without a model: the transcript and `sessions.json` entry
/// are written in the file era's layout and imported by OpenClaw's own migration, `openclaw doctor
/// --session-sqlite import` (it moves the files aside once imported).
fn import_session(h: &RealHome, sid: &str, key: &str, text: &str) -> String {
    let dir = h.state().join("agents/molty/sessions");
    let body = transcript(sid, &h.workspace("molty"), text);
    fs::write(dir.join(format!("{sid}.jsonl")), &body).unwrap();
    let entry = serde_json::json!({ key: {
        "sessionId": sid, "updatedAt": 1764583202000u64, "chatType": "direct",
        "sessionFile": dir.join(format!("{sid}.jsonl")),
    }});
    fs::write(dir.join("sessions.json"), entry.to_string()).unwrap();
    let v = openclaw_json(h.home(), &["doctor", "--session-sqlite", "import", "--session-sqlite-agent", "molty"]);
    assert_eq!(v["totals"]["importedEntries"], 1, "{v}");
    assert_eq!(v["totals"]["issues"], 0, "{v}");
    body
}

/// The session keys `openclaw sessions --agent molty --json` lists.
fn session_keys(home: &Path) -> BTreeSet<String> {
    let v = openclaw_json(home, &["sessions", "--agent", "molty"]);
    v["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions in {v}"))
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn one_session_or_all_come_back_and_openclaw_lists_them() {
    let h = RealHome::new();
    let db = h.state().join("agents/molty/agent/openclaw-agent.sqlite");
    let body = import_session(&h, SID, KEY, "Plan the tea party");
    h.cb().args(["backup", "--json"]).run().ok();

    // Afterwards the session is lost (deleted with its rows) and another one is made.
    sql(&db, &format!("DELETE FROM session_nodes WHERE session_key = '{KEY}'"));
    assert_eq!(count(&db, &format!("SELECT count(*) FROM transcript_events WHERE session_id = '{SID}'")), 0);
    let later_sid = "0b9e8d7c-6a5b-4c3d-8e2f-1a0b9c8d7e6f";
    import_session(&h, later_sid, "agent:molty:later", "A later chat");
    let other_rows = count(&db, &format!("SELECT count(*) FROM transcript_events WHERE session_id = '{later_sid}'"));

    // A dry run names the one unit of rows it would create.
    let only = format!("session:molty/{SID}");
    let v = h.cb().args(["restore", "latest", "--only", &only, "--dry-run", "--json"]).run().ok().json();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v}");
    assert_eq!(changes[0]["kind"], "row");
    assert_eq!(changes[0]["action"], "create");
    assert_eq!(changes[0]["path"], db.to_string_lossy().as_ref());
    assert_eq!(changes[0]["row"], format!("session {KEY}"));

    // In place: that session comes back, the later one stays, and OpenClaw lists and checks both.
    let v = h.cb().args(["restore", "latest", "--only", &only, "--json"]).run().ok().json();
    assert_eq!(v["rows"], 1, "{v}");
    assert_eq!(session_keys(h.home()), BTreeSet::from([KEY.to_string(), "agent:molty:later".to_string()]));
    assert_eq!(count(&db, &format!("SELECT count(*) FROM transcript_events WHERE session_id = '{SID}'")), 3);
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM transcript_events WHERE session_id = '{later_sid}'")),
        other_rows
    );
    let inspect =
        openclaw_json(h.home(), &["doctor", "--session-sqlite", "inspect", "--session-sqlite-agent", "molty"]);
    assert_eq!(inspect["totals"]["issues"], 0, "{inspect}");
    assert_eq!(inspect["totals"]["sqliteEntries"], 2, "{inspect}");
    // Its undo puts the database back as it was: without the session.
    let undo = v["undo"].as_str().unwrap().to_string();
    run_undo(&h, &undo).ok();
    assert_eq!(count(&db, &format!("SELECT count(*) FROM session_nodes WHERE session_key = '{KEY}'")), 0);

    // Every session, with --delete: the snapshot's sessions exactly, the later one gone.
    h.cb().args(["restore", "latest", "--only", "sessions", "--delete"]).run().ok();
    assert_eq!(session_keys(h.home()), BTreeSet::from([KEY.to_string()]));

    // Into a folder: the session as OpenClaw's file era keeps it, the transcript line for line.
    let t = h.sb.path("target");
    h.cb().args(["restore", "latest", "--only", &only, "--target"]).arg(&t).run().ok();
    let dir = restored(&t, &h.state().join("agents/molty/sessions"));
    assert_eq!(fs::read_to_string(dir.join(format!("{SID}.jsonl"))).unwrap(), body);
    let index: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("sessions.json")).unwrap()).unwrap();
    assert_eq!(index[KEY]["sessionId"], SID);
    // ...which OpenClaw imports: lose the session once more and bring it back from those files.
    sql(&db, &format!("DELETE FROM session_nodes WHERE session_key = '{KEY}'"));
    let home_dir = h.state().join("agents/molty/sessions");
    for name in [format!("{SID}.jsonl"), "sessions.json".into()] {
        fs::copy(dir.join(&name), home_dir.join(&name)).unwrap();
    }
    let v = openclaw_json(h.home(), &["doctor", "--session-sqlite", "import", "--session-sqlite-agent", "molty"]);
    assert_eq!(v["totals"]["importedEntries"], 1, "{v}");
    assert_eq!(session_keys(h.home()), BTreeSet::from([KEY.to_string()]));

    // What is not in the snapshot: one line each, exit 2, naming what there is.
    let r = h.cb().args(["restore", "latest", "--only", "session:molty/no-such-id", "--dry-run"]).run().code(2);
    let line = r.one_error_line();
    assert!(line.contains("no-such-id") && line.contains(SID) && line.contains(KEY), "{line}");
    let r = h.cb().args(["restore", "latest", "--only", "session:ghost/x", "--dry-run"]).run().code(2);
    assert!(r.one_error_line().contains("molty, scribe, worker") || r.one_error_line().contains("its agents are"));
    let r = h.cb().args(["restore", "latest", "--only", "calendar", "--dry-run"]).run().code(2);
    let line = r.one_error_line();
    for kind in ["sessions", "session:AGENT/ID", "memory", "cron", "config", "credentials", "agent:ID"] {
        assert!(line.contains(kind), "{line}");
    }
}

#[test]
fn cron_jobs_come_back_without_the_rest_of_the_state_database() {
    let h = RealHome::new();
    let db = h.state().join("state/openclaw.sqlite");
    assert_eq!(count(&db, &format!("SELECT count(*) FROM cron_jobs WHERE name = '{CRON_JOB}'")), 1);
    h.cb().args(["backup", "--json"]).run().ok();

    // Afterwards: the job is lost, another is added (a copy under a new id and name), and unrelated
    // state in the same database changes.
    sql(
        &db,
        &format!(
            "INSERT INTO cron_jobs (store_key, job_id, name, enabled, payload_kind, job_json, state_json, updated_at)
             SELECT store_key, 'later-job', 'later', enabled, payload_kind,
                    replace(replace(job_json, job_id, 'later-job'), '\"{CRON_JOB}\"', '\"later\"'), state_json, updated_at
             FROM cron_jobs WHERE name = '{CRON_JOB}';
             DELETE FROM cron_jobs WHERE name = '{CRON_JOB}';
             INSERT INTO config_machine_state (state_key, value_json, updated_at_ms) VALUES ('clawback.e2e', '1', 1);"
        ),
    );

    let v = h.cb().args(["restore", "latest", "--only", "cron", "--dry-run", "--json"]).run().ok().json();
    let rows: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap().to_string(), c["row"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(rows.len(), 1, "{v}");
    assert!(rows[0].0 == "create" && rows[0].1.starts_with(&format!("cron job {CRON_JOB} (")), "{rows:?}");

    // In place: the job is back; the later one and the unrelated row stay.
    h.cb().args(["restore", "latest", "--only", "cron"]).run().ok();
    assert_eq!(count(&db, &format!("SELECT count(*) FROM cron_jobs WHERE name = '{CRON_JOB}'")), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM cron_jobs WHERE name = 'later'"), 1);
    // With --delete the jobs are the snapshot's: the later one goes, the unrelated row stays.
    h.cb().args(["restore", "latest", "--only", "cron", "--delete"]).run().ok();
    assert_eq!(count(&db, "SELECT count(*) FROM cron_jobs WHERE name = 'later'"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM config_machine_state WHERE state_key = 'clawback.e2e'"), 1);

    // Into a folder: cron/jobs.json, the file era's store, with the job...
    let t = h.sb.path("target");
    h.cb().args(["restore", "latest", "--only", "cron", "--target"]).arg(&t).run().ok();
    let exported = restored(&t, &h.state().join("cron/jobs.json"));
    let jobs: serde_json::Value = serde_json::from_slice(&fs::read(&exported).unwrap()).unwrap();
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|j| j["name"] == CRON_JOB), "{jobs}");
    // ...which OpenClaw's doctor imports: lose the job, put the file in place, `doctor --fix`.
    sql(&db, &format!("DELETE FROM cron_jobs WHERE name = '{CRON_JOB}'"));
    fs::create_dir_all(h.state().join("cron")).unwrap();
    fs::copy(&exported, h.state().join("cron/jobs.json")).unwrap();
    openclaw(h.home()).args(["doctor", "--fix", "--non-interactive"]).run().ok();
    assert_eq!(count(&db, &format!("SELECT count(*) FROM cron_jobs WHERE name = '{CRON_JOB}'")), 1);

    // OpenClaw's gateway runs the job.
    let names = cron_names(h.home());
    assert!(names.iter().any(|n| n == CRON_JOB) && !names.iter().any(|n| n == "later"), "{names:?}");
}

#[test]
fn memory_files_come_back_and_openclaw_indexes_them() {
    let h = RealHome::new();
    let ws = h.workspace("molty");
    h.cb().args(["backup", "--json"]).run().ok();
    let status_files = |h: &RealHome| -> u64 {
        let v = openclaw_json(h.home(), &["memory", "status", "--agent", "molty"]);
        v[0]["status"]["files"].as_u64().unwrap_or_else(|| panic!("no file count in {v}"))
    };
    let found = |h: &RealHome| -> bool {
        let v = openclaw_json(h.home(), &["memory", "search", "tea over coffee", "--agent", "molty"]);
        v["results"].as_array().unwrap().iter().any(|r| r["path"] == "MEMORY.md")
    };
    let before = status_files(&h);

    // The memory files are lost and OpenClaw re-indexes: it no longer finds the memory.
    fs::remove_file(ws.join("MEMORY.md")).unwrap();
    fs::remove_dir_all(ws.join("memory")).unwrap();
    openclaw(h.home()).args(["memory", "index", "--agent", "molty"]).run().ok();
    assert!(!found(&h));
    assert!(status_files(&h) < before);

    h.cb().args(["restore", "latest", "--only", "memory"]).run().ok();
    assert!(fs::read_to_string(ws.join("MEMORY.md")).unwrap().contains(MEMORY_LINE));
    assert!(ws.join(crate::real_openclaw::DAILY_NOTE).is_file());
    // The index is derived from the files: OpenClaw indexes what came back.
    openclaw(h.home()).args(["memory", "index", "--agent", "molty"]).run().ok();
    assert_eq!(status_files(&h), before);
    assert!(found(&h), "OpenClaw finds the restored memory");
}

#[test]
fn config_comes_back_valid() {
    let h = RealHome::new();
    h.cb().args(["backup", "--json"]).run().ok();
    let cfg = h.state().join("openclaw.json");
    let good = fs::read(&cfg).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v["notAnOpenClawKey"] = serde_json::json!(true);
    fs::write(&cfg, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let bad = crate::real_openclaw::config_valid(h.home());
    assert!(
        bad.code != 0 || bad.stdout.contains("\"valid\": false") || bad.stdout.contains("\"ok\": false"),
        "{bad:?}"
    );

    h.cb().args(["restore", "latest", "--only", "config"]).run().ok();
    assert_eq!(fs::read(&cfg).unwrap(), good);
    let ok = crate::real_openclaw::config_valid(h.home()).ok();
    let r = crate::real_openclaw::parse_last_json(&ok.stdout).unwrap();
    assert!(r["valid"] == true || r["ok"] == true, "{r}");
}

#[test]
fn credentials_come_back_and_openclaw_lists_the_profile() {
    let h = RealHome::new();
    // An API key saved the way a user saves one (`models auth paste-api-key`, the key on stdin).
    let mut c = Command::new("openclaw");
    c.env_clear()
        .env("PATH", openclaw_path())
        .env("HOME", h.home())
        .env("USER", "e2e")
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        .current_dir(h.home())
        .args(["models", "auth", "paste-api-key", "--provider", "openai", "--agent", "molty"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"sk-clawback-e2e-not-a-real-key\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let profiles = |h: &RealHome| -> Vec<String> {
        let v = openclaw_json(h.home(), &["models", "auth", "list", "--agent", "molty"]);
        v["profiles"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(profiles(&h), ["openai:manual"]);
    h.cb().args(["backup", "--json"]).run().ok();

    // The saved profiles are lost.
    let db = h.state().join("agents/molty/agent/openclaw-agent.sqlite");
    sql(&db, "DELETE FROM auth_profile_store; DELETE FROM auth_profile_state;");
    assert!(profiles(&h).is_empty());

    let v = h.cb().args(["restore", "latest", "--only", "credentials", "--json"]).run().ok().json();
    assert_eq!(v["rows"], 1, "{v}");
    assert_eq!(profiles(&h), ["openai:manual"]);
    let key: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT store_json FROM auth_profile_store WHERE store_key = 'primary'", [], |r| r.get(0))
        .unwrap();
    assert!(key.contains("sk-clawback-e2e-not-a-real-key"));
}

#[test]
fn file_era_parts_restore_from_their_files() {
    let sb = Sandbox::with_repo();
    let gen = generate(&Options {
        root: sb.home.clone(),
        total_bytes: 400_000,
        files: Some(120),
        seed: 11,
        era: Era::File,
        small_files: false,
        agents: 2,
    })
    .expect("generate an OpenClaw home of the file era");
    let state = gen.state_dir.clone();
    let cb = || sb.cb().env("OPENCLAW_GATEWAY_PORT", "1");
    cb().args(["backup", "--json"]).run().ok();
    let sessions = state.join("agents/main/sessions");
    let index: serde_json::Value = serde_json::from_slice(&fs::read(sessions.join("sessions.json")).unwrap()).unwrap();
    let (key, entry) = index.as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    let sid = entry["sessionId"].as_str().unwrap().to_string();

    // Each part into a folder: the files of that part, nothing else.
    let expect: Vec<(&str, Vec<PathBuf>)> = vec![
        ("sessions", vec![sessions.clone(), state.join("agents/research/sessions")]),
        ("cron", vec![state.join("cron")]),
        (
            "memory",
            std::iter::once(state.join("memory"))
                .chain(gen.workspaces.iter().flat_map(|w| [w.join("MEMORY.md"), w.join("memory")]))
                .collect(),
        ),
        (
            "credentials",
            vec![
                state.join("credentials"),
                state.join("agents/main/agent/auth-profiles.json"),
                state.join("agents/research/agent/auth-profiles.json"),
            ],
        ),
        ("config", vec![state.join("openclaw.json"), state.join(".env")]),
    ];
    for (part, roots) in &expect {
        let t = sb.path(&format!("t-{part}"));
        cb().args(["restore", "latest", "--only", part, "--target"]).arg(&t).run().ok();
        let got = restored_files(&t);
        assert!(!got.is_empty(), "{part}");
        for p in &got {
            assert!(roots.iter().any(|r| p.starts_with(r)), "{part}: {p:?} is not under {roots:?}");
        }
        for r in roots.iter().filter(|r| r.exists()) {
            assert!(got.iter().any(|p| p.starts_with(r)), "{part}: nothing of {r:?} in {got:?}");
        }
    }
    let jobs = restored(&sb.path("t-cron"), &state.join("cron/jobs.json"));
    assert_eq!(fs::read(jobs).unwrap(), fs::read(state.join("cron/jobs.json")).unwrap());

    // One session into a folder: its transcript and an index with its entry alone.
    let t = sb.path("t-one");
    cb().args(["restore", "latest", "--only", &format!("session:main/{sid}"), "--target"]).arg(&t).run().ok();
    let dir = restored(&t, &sessions);
    let names: BTreeSet<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, BTreeSet::from([format!("{sid}.jsonl"), "sessions.json".to_string()]));
    assert_eq!(
        fs::read(dir.join(format!("{sid}.jsonl"))).unwrap(),
        fs::read(sessions.join(format!("{sid}.jsonl"))).unwrap()
    );
    let one: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("sessions.json")).unwrap()).unwrap();
    assert_eq!(one, serde_json::json!({ key.clone(): entry.clone() }));

    // In place, by key: the transcript comes back and the entry merges into the index on disk, which
    // keeps what was added since.
    let transcript = sessions.join(format!("{sid}.jsonl"));
    let original = fs::read(&transcript).unwrap();
    fs::remove_file(&transcript).unwrap();
    let mut now = index.clone();
    let o = now.as_object_mut().unwrap();
    o.remove(&key);
    o.insert("agent:main:later".into(), serde_json::json!({ "sessionId": "later", "updatedAt": 1 }));
    fs::write(sessions.join("sessions.json"), serde_json::to_vec(&now).unwrap()).unwrap();
    let v = cb().args(["restore", "latest", "--only", &format!("session:main/{key}"), "--json"]).run().ok().json();
    assert_eq!(fs::read(&transcript).unwrap(), original, "{v}");
    let merged: serde_json::Value = serde_json::from_slice(&fs::read(sessions.join("sessions.json")).unwrap()).unwrap();
    assert_eq!(merged[&key], entry);
    assert_eq!(merged["agent:main:later"]["sessionId"], "later");
    assert_eq!(merged.as_object().unwrap().len(), index.as_object().unwrap().len() + 1);
}
