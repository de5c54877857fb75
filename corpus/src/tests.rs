//! Behaviour of the generator: every kind of file is there, databases are healthy WAL-mode
//! SQLite with FTS5 rows, sizes land on target, a seed names one corpus, and `tick` reports
//! what it changed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::Connection;

use super::*;

fn opts(root: &Path, bytes: u64, seed: u64) -> Options {
    Options { seed, ..Options::new(root, bytes) }
}

/// Every regular file under `root`: relative path -> (size, mtime).
fn snapshot(root: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, SystemTime)>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                go(root, &e.path(), out);
            } else if t.is_file() {
                let m = e.metadata().unwrap();
                let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, (m.len(), m.modified().unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

fn files_matching(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| pred(&p.file_name().unwrap().to_string_lossy())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn assert_jsonl(path: &Path) -> usize {
    let text = fs::read_to_string(path).unwrap();
    for (i, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
            panic!("{}:{}: not JSON ({e}): {}", path.display(), i + 1, &line[..line.len().min(120)])
        });
    }
    text.lines().count()
}

#[test]
fn small_home_has_every_kind_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    let o = Options { agents: 3, ..opts(&root, 5_000_000, 1) };
    let s = generate(&o).unwrap();
    let st = root.join(".openclaw");
    assert_eq!(s.state_dir, st);

    // Size and file count near the targets, and the summary agrees with the tree.
    let snap = snapshot(&root);
    let bytes: u64 = snap.values().map(|v| v.0).sum();
    assert_eq!((s.files, s.bytes), (snap.len() as u64, bytes));
    assert!(bytes.abs_diff(5_000_000) < 500_000, "{bytes} bytes for a 5 MB target");
    let want_files = layout::default_files(5_000_000, false);
    assert!(s.files.abs_diff(want_files) * 4 < want_files, "{} files, expected about {want_files}", s.files);

    // Config: JSON5 with ${VAR} secrets and an agent whose workspace is outside the state dir.
    let cfg = fs::read_to_string(st.join("openclaw.json")).unwrap();
    for needle in ["//", "${OPENAI_API_KEY}", "agents: {", "list: [", "workspace: \"~/projects/agent-ws\"", "},\n"] {
        assert!(cfg.contains(needle), "openclaw.json lacks {needle:?}");
    }
    assert!(fs::read_to_string(st.join(".env")).unwrap().contains("OPENAI_API_KEY=sk-"));
    assert_eq!(s.workspaces, vec![st.join("workspace"), st.join("workspace-research"), root.join("projects/agent-ws")]);

    // State dir contents.
    for rel in [
        "openclaw.json.bak",
        "credentials/oauth.json",
        "credentials/whatsapp/default/creds.json",
        "credentials/whatsapp/default/pre-key-1.json",
        "identity/device.json",
        "devices/paired.json",
        "agents/main/agent/auth-profiles.json",
        "agents/research/agent/models.json",
        "exec-approvals.json",
        "logs/gateway.log",
        "logs/gateway.err.log",
        "canvas/index.html",
        "cron/jobs.json",
        "memory/main.sqlite",
        "memory/research.sqlite",
        "state/openclaw.sqlite",
        "agents/main/agent/openclaw-agent.sqlite",
        "gateway.pid",
        "agents/main/sessions/sessions.json.lock",
        "browser/openclaw/user-data/Default/Preferences",
    ] {
        assert!(st.join(rel).is_file(), "missing {rel}");
    }
    assert!(!files_matching(&st.join("logs"), |n| n.starts_with("gateway.2")).is_empty(), "no rotated log");
    assert!(!files_matching(&st, |n| n.ends_with(".tmp")).is_empty(), "no *.tmp file");
    assert!(snap.keys().any(|k| k.starts_with(".openclaw/tmp/")));
    assert!(snap.keys().any(|k| k.starts_with(".openclaw/tools/")));
    assert!(snap.keys().any(|k| k.starts_with(".openclaw/workspace/node_modules/") && k.ends_with("/LICENSE")));
    assert!(snap.keys().any(|k| k.starts_with(".openclaw/extensions/") && k.contains("/node_modules/")));
    assert!(snap.keys().any(|k| k.contains("/user-data/Default/Cache/Cache_Data/")));

    // Transcripts and their index are valid JSON; cron runs too.
    let sessions = st.join("agents/main/sessions");
    let transcripts = files_matching(&sessions, |n| n.ends_with(".jsonl"));
    assert!(!transcripts.is_empty());
    for t in &transcripts {
        assert!(assert_jsonl(t) >= 2);
    }
    let index: serde_json::Value = serde_json::from_slice(&fs::read(sessions.join("sessions.json")).unwrap()).unwrap();
    let first = index.as_object().unwrap().values().next().unwrap();
    let id = first["sessionId"].as_str().unwrap();
    assert!(sessions.join(format!("{id}.jsonl")).is_file(), "sessions.json points at a missing transcript");
    let jobs: serde_json::Value = serde_json::from_slice(&fs::read(st.join("cron/jobs.json")).unwrap()).unwrap();
    let job = jobs["jobs"][0]["id"].as_str().unwrap();
    assert_jsonl(&st.join(format!("cron/runs/{job}.jsonl")));

    // Media: incompressible, with headers, and at least one file stored twice.
    let media: Vec<(String, u64)> = snap
        .iter()
        .filter(|(k, _)| k.starts_with(".openclaw/media/inbound/") || k.starts_with(".openclaw/workspace/attachments/"))
        .map(|(k, v)| (k.clone(), v.0))
        .collect();
    assert!(media.len() >= 3);
    let mut by_content = BTreeMap::new();
    for (k, _) in &media {
        *by_content.entry(fs::read(root.join(k)).unwrap()).or_insert(0) += 1;
    }
    assert!(by_content.values().any(|&n| n > 1), "no duplicated media");
    assert!(media.iter().any(|(k, _)| k.ends_with(".jpg")));

    // Workspaces.
    for ws in &s.workspaces {
        for f in
            ["AGENTS.md", "SOUL.md", "USER.md", "IDENTITY.md", "TOOLS.md", "HEARTBEAT.md", "MEMORY.md", ".gitignore"]
        {
            assert!(ws.join(f).is_file(), "missing {}", ws.join(f).display());
        }
        let daily = files_matching(&ws.join("memory"), |n| n.len() == 13 && n.ends_with(".md"));
        assert!(daily.len() >= 10, "{} daily notes in {}", daily.len(), ws.display());
        assert!(fs::read_to_string(ws.join(".gitignore")).unwrap().contains("scratch/"));
        assert!(ws.join("scratch").is_dir(), "nothing for .gitignore to ignore");
    }
    let main_ws = &s.workspaces[0];
    let skill = snap.keys().find(|k| k.ends_with("/SKILL.md")).expect("a skill");
    assert!(fs::read_to_string(root.join(skill)).unwrap().starts_with("---\nname: "));
    if git::available() {
        let repo = s.git_project.as_ref().expect("git project");
        assert!(repo.starts_with(main_ws));
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
        let status =
            std::process::Command::new("git").arg("-C").arg(repo).args(["status", "--porcelain"]).output().unwrap();
        assert!(status.stdout.is_empty(), "git project has uncommitted changes");
    }

    // Everything dates from before the fixed epoch.
    let end = content::mtime(time::END);
    assert!(snap.iter().filter(|(k, _)| !k.contains("/.git/")).all(|(_, v)| v.1 <= end));
}

#[test]
fn databases_are_healthy_wal_with_fts_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(&opts(dir.path(), 4_000_000, 2)).unwrap();
    assert_eq!(s.databases.len(), 5); // state + 2 agent DBs + 2 memory DBs
    for db in &s.databases {
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        assert!(fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false), "{} has no live WAL", db.display());
        let conn = Connection::open(db).unwrap();
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "{}", db.display());
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let fts: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%fts5%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let name = db.file_name().unwrap().to_string_lossy();
        if name == "openclaw.sqlite" {
            let runs: i64 = conn.query_row("SELECT count(*) FROM cron_runs", [], |r| r.get(0)).unwrap();
            assert!(runs > 0);
            continue;
        }
        assert!(!fts.is_empty(), "{} has no FTS5 table", db.display());
        for t in &fts {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {t} WHERE {t} MATCH 'the'"), [], |r| r.get(0)).unwrap();
            assert!(n > 0, "{t} in {} finds nothing", db.display());
            conn.execute(&format!("INSERT INTO {t}({t}) VALUES('integrity-check')"), []).unwrap();
        }
        let blob_sql = if name == "openclaw-agent.sqlite" {
            "SELECT length(vector) FROM memory_embeddings LIMIT 1"
        } else {
            "SELECT length(embedding) FROM chunks LIMIT 1"
        };
        let len: i64 = conn.query_row(blob_sql, [], |r| r.get(0)).unwrap();
        assert_eq!(len as usize, sqlite::EMBED_DIMS * 4);
    }
}

#[test]
fn same_seed_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(&opts(a.path(), 3_000_000, 9)).unwrap();
    generate(&opts(b.path(), 3_000_000, 9)).unwrap();
    generate(&opts(c.path(), 3_000_000, 10)).unwrap();
    // SQLite sidecars and git internals are written by those tools and may differ.
    let comparable = |k: &String| !k.contains("/.git/") && !k.contains(".sqlite");
    let sa = snapshot(a.path());
    let sb = snapshot(b.path());
    let keys_a: Vec<&String> = sa.keys().filter(|k| comparable(k)).collect();
    let keys_b: Vec<&String> = sb.keys().filter(|k| comparable(k)).collect();
    assert_eq!(keys_a, keys_b);
    for k in keys_a {
        assert_eq!(sa[k], sb[k], "{k}: size or mtime differs");
        assert_eq!(fs::read(a.path().join(k)).unwrap(), fs::read(b.path().join(k)).unwrap(), "{k} differs");
    }
    let cfg = |d: &Path| fs::read(d.join(".openclaw/openclaw.json")).unwrap();
    assert_ne!(cfg(a.path()), cfg(c.path()), "another seed should give another corpus");
}

#[test]
fn tick_changes_what_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let s = generate(&opts(root, 3_000_000, 3)).unwrap();
    let agent_db = root.join(".openclaw/agents/main/agent/openclaw-agent.sqlite");
    let count = |sql: &str| -> i64 {
        // Read-only, so the test does not checkpoint the WAL it is looking at.
        let c = Connection::open_with_flags(&agent_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    let messages = count("SELECT count(*) FROM messages");

    for round in 0..2 {
        let before = snapshot(root);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t = tick(root, 5).unwrap();
        let after = snapshot(root);
        let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        let changed: Vec<&String> = after.keys().filter(|k| before.get(*k).is_some_and(|b| b != &after[*k])).collect();
        assert_eq!(t.files_added as usize, added.len(), "round {round}: added {added:?}");
        assert_eq!(t.files_changed as usize, changed.len(), "round {round}: changed {changed:?}");
        let grown: u64 = after.iter().map(|(k, v)| v.0.saturating_sub(before.get(k).map_or(0, |b| b.0))).sum();
        assert_eq!(t.bytes_added, grown);
        assert!(t.bytes_added > 1_000_000, "a tick adds at least a photo");
        assert!(added.iter().any(|k| k.starts_with(".openclaw/media/inbound/")));
        assert!(added.iter().any(|k| k.starts_with(".openclaw/workspace/memory/")));
        assert!(added.iter().any(|k| k.starts_with(".openclaw/agents/main/sessions/")));
        for k in [".openclaw/workspace/MEMORY.md", ".openclaw/logs/gateway.log", ".openclaw/cron/jobs.json"] {
            assert!(changed.contains(&&k.to_string()), "round {round}: {k} unchanged");
        }
        // Touched files carry the current time, not the corpus epoch.
        assert!(after[".openclaw/logs/gateway.log"].1 > content::mtime(time::END));
    }
    for t in files_matching(&root.join(".openclaw/agents/main/sessions"), |n| n.ends_with(".jsonl")) {
        assert_jsonl(&t);
    }
    assert!(count("SELECT count(*) FROM messages") > messages);
    for db in &s.databases {
        let c = Connection::open(db).unwrap();
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "{} after tick", db.display());
    }
    if let Some(repo) = &s.git_project {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
    }
}

#[test]
fn tick_refuses_a_directory_without_a_home() {
    let dir = tempfile::tempdir().unwrap();
    let err = tick(dir.path(), 1).unwrap_err().to_string();
    assert!(err.contains("run generate first"), "{err}");
}

#[test]
fn generate_refuses_an_existing_home() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".openclaw")).unwrap();
    let err = generate(&opts(dir.path(), 1_000_000, 1)).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn eras_choose_their_databases() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    let s = generate(&Options { era: Era::File, ..opts(&file, 2_000_000, 4) }).unwrap();
    assert!(s.databases.iter().all(|d| d.parent().unwrap().ends_with("memory")));
    assert!(file.join(".openclaw/cron/jobs.json").is_file());
    assert!(!file.join(".openclaw/state").exists());

    let sql = dir.path().join("sqlite");
    let s = generate(&Options { era: Era::Sqlite, ..opts(&sql, 2_000_000, 4) }).unwrap();
    assert_eq!(s.databases.len(), 3);
    assert!(!sql.join(".openclaw/memory").exists());
    assert!(!sql.join(".openclaw/cron").exists());
}

#[test]
fn small_files_are_small() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(&Options { small_files: true, ..opts(dir.path(), 6_000_000, 5) }).unwrap();
    let snap = snapshot(dir.path());
    let tiny = snap.values().filter(|v| v.0 <= 4_096).count();
    assert!(s.files >= 2_700, "{} files", s.files);
    assert!(tiny * 100 >= snap.len() * 85, "{tiny} of {} files are tiny", snap.len());
    assert!(snap.keys().any(|k| k.contains("/projects/webapp/node_modules/")));
    assert!(s.bytes.abs_diff(6_000_000) < 900_000, "{} bytes", s.bytes);
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert_eq!(parse_size("20M").unwrap(), 20_000_000);
    assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
    assert_eq!(parse_size("3G").unwrap(), 3_000_000_000);
    assert_eq!(parse_size("1.5G").unwrap(), 1_500_000_000);
    assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
    assert_eq!(parse_size(" 10k ").unwrap(), 10_000);
    assert!(parse_size("").is_err());
    assert!(parse_size("12 parsecs").is_err());
    assert!(parse_size("-1M").is_err());
    assert_eq!("sqlite".parse::<Era>().unwrap(), Era::Sqlite);
    assert!("paper".parse::<Era>().is_err());
}
