//! The SQLite databases of an OpenClaw home: the file-era memory index
//! (`memory/<agent>.sqlite`), and the SQLite-era gateway state (`state/openclaw.sqlite`) and
//! per-agent database (`agents/<id>/agent/openclaw-agent.sqlite`).
//!
//! Every database is in WAL mode with FTS5 tables and embedding BLOBs, and is left as a running
//! gateway leaves it: the newest transactions still in the `-wal` file, not checkpointed.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection};

use crate::content::mtime;
use crate::rng::Rng;
use crate::text;
use crate::time::{date, DAY};

/// Embedding width of OpenAI's text-embedding-3-small, the default memory provider.
pub(crate) const EMBED_DIMS: usize = 1536;
const EMBED_MODEL: &str = "text-embedding-3-small";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DbKind {
    /// File era: the builtin memory index of one agent.
    Memory,
    /// SQLite era: sessions, transcript messages and memory of one agent.
    Agent,
    /// SQLite era: gateway-wide state (sessions index, cron, key/value).
    State,
}

#[derive(Clone, Debug)]
pub(crate) struct DbSpec {
    pub rel: String,
    pub kind: DbKind,
    pub agent: String,
    /// Approximate size of the payload to insert.
    pub bytes: u64,
    pub seed: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub mtime: i64,
}

const MEMORY_SCHEMA: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (path TEXT PRIMARY KEY, source TEXT NOT NULL DEFAULT 'memory', hash TEXT NOT NULL,
  mtime INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE chunks (id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL DEFAULT 'memory',
  start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, hash TEXT NOT NULL, model TEXT NOT NULL,
  text TEXT NOT NULL, embedding BLOB NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX idx_chunks_path ON chunks(path);
CREATE INDEX idx_chunks_source ON chunks(source);
CREATE TABLE embedding_cache (provider TEXT NOT NULL, model TEXT NOT NULL, provider_key TEXT NOT NULL,
  hash TEXT NOT NULL, embedding BLOB NOT NULL, dims INTEGER, updated_at INTEGER NOT NULL,
  PRIMARY KEY (provider, model, provider_key, hash));
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, id UNINDEXED, path UNINDEXED, source UNINDEXED,
  model UNINDEXED, start_line UNINDEXED, end_line UNINDEXED);
INSERT INTO meta VALUES ('memory_index_meta_v1',
  '{"model":"text-embedding-3-small","provider":"openai","chunkTokens":400,"chunkOverlap":80,"vectorDims":1536}');
"#;

const AGENT_SCHEMA: &str = r#"
CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (session_key TEXT PRIMARY KEY, session_id TEXT NOT NULL, channel TEXT,
  chat_type TEXT, session_started_at INTEGER NOT NULL, last_interaction_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, entry_json TEXT NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, seq INTEGER NOT NULL,
  role TEXT NOT NULL, created_at INTEGER NOT NULL, content TEXT NOT NULL, meta_json TEXT);
CREATE INDEX idx_messages_session ON messages(session_id, seq);
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
CREATE TABLE memory_chunks (id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL,
  start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, hash TEXT NOT NULL, text TEXT NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE VIRTUAL TABLE memory_chunks_fts USING fts5(text, id UNINDEXED, path UNINDEXED);
CREATE TABLE memory_embeddings (chunk_id TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL,
  dims INTEGER NOT NULL, vector BLOB NOT NULL);
INSERT INTO schema_meta VALUES ('version', '3');
"#;

const STATE_SCHEMA: &str = r#"
CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  updated_at INTEGER NOT NULL, PRIMARY KEY (namespace, key));
CREATE TABLE sessions (agent_id TEXT NOT NULL, session_key TEXT NOT NULL, session_id TEXT NOT NULL,
  updated_at INTEGER NOT NULL, entry_json TEXT NOT NULL, PRIMARY KEY (agent_id, session_key));
CREATE TABLE cron_jobs (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, name TEXT NOT NULL,
  enabled INTEGER NOT NULL, schedule_json TEXT NOT NULL, payload_json TEXT NOT NULL,
  state_json TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE cron_runs (id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL, status TEXT NOT NULL, summary TEXT, session_id TEXT);
CREATE INDEX idx_cron_runs_job ON cron_runs(job_id, started_at);
INSERT INTO schema_meta VALUES ('version', '2');
"#;

fn schema(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Memory => MEMORY_SCHEMA,
        DbKind::Agent => AGENT_SCHEMA,
        DbKind::State => STATE_SCHEMA,
    }
}

/// Creates and fills one database.
pub(crate) fn create(root: &Path, spec: &DbSpec) -> Result<()> {
    let path = root.join(&spec.rel);
    let conn = Connection::open(&path).with_context(|| format!("creating {}", path.display()))?;
    // Bulk load without a journal: nothing to recover from if generation fails midway. No
    // fsync either (synchronous=OFF, throughout): a sync here would wait for every dirty page
    // the other generator threads have written.
    conn.execute_batch(
        "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; \
         PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
    )?;
    conn.execute_batch(schema(spec.kind))?;
    let mut f = Filler::new(spec.kind, &spec.agent, Rng::new(spec.seed), spec.start_ms, spec.end_ms);
    // The newest ~2% (at most 2 MB, below the 1000-page auto-checkpoint) stays in the WAL.
    // `spec.bytes` is the goal on disk, so leave room for the WAL and the 32 KB shm file.
    let tail = (spec.bytes / 50).clamp(4 << 10, 2 << 20);
    let sidecars = 32 * 1024 + tail * 3 / 2 + 48 * 1024;
    f.fill(&conn, spec.bytes.saturating_sub(sidecars))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    f.tick_end_ms = spec.end_ms;
    let tx = conn.unchecked_transaction()?;
    f.insert(&tx, (tail as f64 / f.ratio) as u64)?;
    tx.commit()?;
    conn.close().map_err(|(_, e)| e).with_context(|| format!("closing {}", path.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let p = path.with_file_name(format!("{}{suffix}", path.file_name().and_then(|n| n.to_str()).unwrap_or("")));
        if let Ok(file) = std::fs::File::options().write(true).open(&p) {
            let _ = file.set_modified(mtime(spec.mtime));
        }
    }
    Ok(())
}

/// "Two hours of activity" on an existing database: new rows (messages, memory chunks with
/// embeddings, cron runs), a few updates, committed in WAL mode and left un-checkpointed.
pub(crate) fn tick(path: &Path, kind: DbKind, agent: &str, rng: &mut Rng, now_ms: i64, messages: usize) -> Result<()> {
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    let mut f = Filler::new(kind, agent, rng.fork(), now_ms - 2 * 3_600_000, now_ms);
    let tx = conn.unchecked_transaction()?;
    match kind {
        DbKind::Memory => {
            f.memory_file(&tx, Some(format!("memory/{}.md", date(now_ms / 1000))))?;
            tx.execute(
                "UPDATE files SET mtime = ?1 WHERE path IN (SELECT path FROM files ORDER BY mtime DESC LIMIT 3)",
                params![now_ms],
            )?;
        }
        DbKind::Agent => {
            let recent: Option<(String, String)> = tx
                .query_row("SELECT session_key, session_id FROM sessions ORDER BY updated_at DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .ok();
            if let Some((key, id)) = recent {
                let seq: i64 =
                    tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1", [&id], |r| {
                        r.get(0)
                    })?;
                f.messages(&tx, &id, seq + 1, messages)?;
                tx.execute(
                    "UPDATE sessions SET updated_at = ?1, last_interaction_at = ?1 WHERE session_key = ?2",
                    params![now_ms, key],
                )?;
            }
            f.agent_session(&tx, messages / 2 + 1)?;
            f.agent_memory(&tx)?;
            tx.execute(
                "UPDATE sessions SET updated_at = ?1 WHERE session_key IN \
                 (SELECT session_key FROM sessions ORDER BY updated_at DESC LIMIT 3 OFFSET 1)",
                params![now_ms],
            )?;
        }
        DbKind::State => {
            f.ensure_jobs(&tx)?;
            f.cron_runs(&tx)?;
            f.kv(&tx)?;
            f.state_session(&tx)?;
            let state = format!(r#"{{"lastRunAtMs":{now_ms},"lastStatus":"ok","nextRunAtMs":{}}}"#, now_ms + 3_600_000);
            tx.execute(
                "UPDATE cron_jobs SET state_json = ?1, updated_at = ?2 WHERE id IN (SELECT id FROM cron_jobs ORDER BY id LIMIT 2)",
                params![state, now_ms],
            )?;
            tx.execute("UPDATE kv SET updated_at = ?1 WHERE namespace = 'usage'", params![now_ms])?;
        }
    }
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// Inserts plausible rows until a byte budget is used. Row content comes from its own
/// generator, so the same seed fills the same database.
struct Filler {
    kind: DbKind,
    agent: String,
    rng: Rng,
    start_ms: i64,
    end_ms: i64,
    tick_end_ms: i64,
    day: i64,
    /// Rows per step grow with the budget, so small databases are not overshot.
    batch: u64,
    /// Disk bytes per estimated payload byte, as measured while filling.
    ratio: f64,
    jobs: Vec<String>,
    text: Vec<u8>,
    blob: Vec<u8>,
}

impl Filler {
    fn new(kind: DbKind, agent: &str, rng: Rng, start_ms: i64, end_ms: i64) -> Self {
        Filler {
            kind,
            agent: agent.to_string(),
            rng,
            start_ms,
            end_ms,
            tick_end_ms: end_ms,
            day: 0,
            batch: 2,
            ratio: 1.0,
            jobs: Vec::new(),
            text: Vec::new(),
            blob: Vec::new(),
        }
    }

    fn when(&mut self) -> i64 {
        self.start_ms + self.rng.below((self.end_ms - self.start_ms).max(1) as u64) as i64
    }

    /// Grows the database to about `bytes` in total, measured in pages actually used: blobs wider than a
    /// page and FTS indexes make payload size a poor guide, and FTS5 keeps new terms in memory
    /// until commit. So each round inserts part of what is missing, commits, measures, and
    /// learns how many disk bytes an estimated byte takes; a few rounds land within a few percent.
    fn fill(&mut self, conn: &Connection, bytes: u64) -> Result<()> {
        self.batch = if bytes < 256 << 10 {
            1
        } else if bytes < 4 << 20 {
            3
        } else {
            7
        };
        let used = |c: &Connection| -> Result<u64> {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            Ok((pages - free) as u64 * 4096)
        };
        let target = bytes;
        if self.kind == DbKind::State {
            self.ensure_jobs(conn)?;
        }
        let mut ratio: Option<f64> = None;
        loop {
            let before = used(conn)?;
            let missing = target.saturating_sub(before);
            if missing <= bytes / 50 + 4096 {
                return Ok(());
            }
            let want = match ratio {
                None => missing as f64 * 0.4,
                Some(r) => missing as f64 * 0.9 / r,
            };
            let tx = conn.unchecked_transaction()?;
            let est = self.insert(&tx, want as u64)?;
            tx.commit()?;
            let grown = used(conn)?.saturating_sub(before);
            ratio = Some((grown as f64 / est.max(1) as f64).max(0.2));
            self.ratio = ratio.unwrap_or(1.0);
        }
    }

    /// Inserts rows worth about `bytes` of payload (at least one step); returns the estimate.
    fn insert(&mut self, tx: &Connection, bytes: u64) -> Result<u64> {
        let mut done = 0;
        loop {
            done += match self.kind {
                DbKind::Memory => self.memory_file(tx, None)?,
                DbKind::Agent => {
                    if self.rng.chance(0.6) {
                        let n = 3 + self.rng.below(self.batch * 5) as usize;
                        self.agent_session(tx, n)?
                    } else {
                        self.agent_memory(tx)?
                    }
                }
                DbKind::State => match self.rng.below(10) {
                    0..=4 => self.cron_runs(tx)?,
                    5..=7 => self.kv(tx)?,
                    _ => self.state_session(tx)?,
                },
            };
            if done >= bytes {
                return Ok(done);
            }
        }
    }

    fn embedding(&mut self) {
        self.blob.clear();
        for _ in 0..EMBED_DIMS / 2 {
            let r = self.rng.next_u64();
            for half in [r as u32, (r >> 32) as u32] {
                let f = (f32::from_bits((half >> 9) | 0x3f80_0000) - 1.5) * 0.16;
                self.blob.extend_from_slice(&f.to_le_bytes());
            }
        }
    }

    fn markdown(&mut self, lo: u64, hi: u64) -> String {
        self.text.clear();
        let n = self.rng.range(lo, hi) as usize;
        let t = text::title(&mut self.rng, 2);
        text::markdown(&mut self.rng, &mut self.text, n, &t);
        String::from_utf8(self.text.clone()).expect("ascii")
    }

    fn prose(&mut self, lo: u64, hi: u64) -> String {
        self.text.clear();
        let n = self.rng.range(lo, hi) as usize;
        text::prose(&mut self.rng, &mut self.text, n);
        String::from_utf8(self.text.clone()).expect("ascii")
    }

    /// One indexed memory file (daily note or session transcript) with its chunks.
    fn memory_file(&mut self, tx: &Connection, path: Option<String>) -> Result<u64> {
        let (path, source) = match path {
            Some(p) => (p, "memory"),
            None => {
                self.day += 1;
                let day_ms = self.end_ms - self.day * DAY * 1000;
                if day_ms > self.start_ms {
                    (format!("memory/{}.md", date(day_ms / 1000)), "memory")
                } else {
                    (format!("sessions/{}.jsonl", self.rng.uuid()), "sessions")
                }
            }
        };
        let t = self.when();
        let chunks = 1 + self.rng.below(self.batch);
        let mut bytes = 200;
        let mut line = 1;
        for _ in 0..chunks {
            let id = self.rng.hex(64);
            let hash = self.rng.hex(64);
            let text = self.markdown(400, 1_800);
            self.embedding();
            let lines = 5 + self.rng.below(40) as i64;
            tx.prepare_cached(
                "INSERT INTO chunks (id, path, source, start_line, end_line, hash, model, text, embedding, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![id, path, source, line, line + lines, hash, EMBED_MODEL, text, self.blob, t])?;
            tx.prepare_cached(
                "INSERT INTO chunks_fts (text, id, path, source, model, start_line, end_line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![text, id, path, source, EMBED_MODEL, line, line + lines])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO embedding_cache (provider, model, provider_key, hash, embedding, dims, updated_at) \
                 VALUES ('openai', ?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![EMBED_MODEL, "api.openai.com", hash, self.blob, EMBED_DIMS as i64, t])?;
            line += lines;
            bytes += text.len() as u64 * 3 + 2 * self.blob.len() as u64 + 400;
        }
        let hash = self.rng.hex(64);
        tx.prepare_cached(
            "INSERT OR REPLACE INTO files (path, source, hash, mtime, size) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![path, source, hash, t, bytes as i64])?;
        Ok(bytes)
    }

    /// Transcript messages of one session, indexed for full-text search.
    fn messages(&mut self, tx: &Connection, session_id: &str, first_seq: i64, n: usize) -> Result<u64> {
        let mut t = self.when();
        let mut bytes = 0;
        for i in 0..n {
            let role = match i % 3 {
                0 => "user",
                1 => "assistant",
                _ => {
                    if self.rng.chance(0.5) {
                        "toolResult"
                    } else {
                        "assistant"
                    }
                }
            };
            let content = if role == "user" { self.prose(20, 500) } else { self.prose(80, 3_000) };
            let meta = format!(
                r#"{{"id":"{}","provider":"openai","model":"gpt-5.2","usage":{{"input":{},"output":{}}}}}"#,
                self.rng.hex(8),
                self.rng.below(100_000),
                self.rng.below(3_000)
            );
            t += self.rng.below(120_000) as i64;
            tx.prepare_cached(
                "INSERT INTO messages (session_id, seq, role, created_at, content, meta_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![session_id, first_seq + i as i64, role, t, content, meta])?;
            let rowid = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO messages_fts (rowid, content) VALUES (?1, ?2)")?
                .execute(params![rowid, content])?;
            bytes += content.len() as u64 * 2 + meta.len() as u64 + 60;
        }
        Ok(bytes)
    }

    fn agent_session(&mut self, tx: &Connection, n: usize) -> Result<u64> {
        let id = self.rng.uuid();
        let channel = *self.rng.pick(&["whatsapp", "telegram", "webchat", "cron", "discord"]);
        let key = format!("agent:{}:{channel}:direct:{}", self.agent, self.rng.uuid());
        let started = self.when();
        let bytes = self.messages(tx, &id, 1, n)?;
        let entry = format!(
            r#"{{"sessionId":"{id}","chatType":"direct","lastChannel":"{channel}","model":"gpt-5.2","modelProvider":"openai","contextTokens":400000,"totalTokens":{}}}"#,
            bytes / 4
        );
        let last = (started + 3_600_000).min(self.tick_end_ms);
        tx.prepare_cached(
            "INSERT INTO sessions (session_key, session_id, channel, chat_type, session_started_at, last_interaction_at, updated_at, entry_json) \
             VALUES (?1, ?2, ?3, 'direct', ?4, ?5, ?5, ?6)",
        )?
        .execute(params![key, id, channel, started, last, entry])?;
        Ok(bytes + entry.len() as u64 + 200)
    }

    fn agent_memory(&mut self, tx: &Connection) -> Result<u64> {
        let path = format!("memory/{}.md", date(self.when() / 1000));
        let t = self.when();
        let mut bytes = 0;
        for c in 0..(1 + self.rng.below(self.batch)) {
            let id = self.rng.hex(64);
            let text = self.markdown(400, 1_800);
            let hash = self.rng.hex(64);
            tx.prepare_cached(
                "INSERT INTO memory_chunks (id, path, source, start_line, end_line, hash, text, updated_at) \
                 VALUES (?1, ?2, 'memory', ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![id, path, c as i64 * 20 + 1, c as i64 * 20 + 20, hash, text, t])?;
            tx.prepare_cached("INSERT INTO memory_chunks_fts (text, id, path) VALUES (?1, ?2, ?3)")?
                .execute(params![text, id, path])?;
            self.embedding();
            tx.prepare_cached(
                "INSERT INTO memory_embeddings (chunk_id, provider, model, dims, vector) VALUES (?1, 'openai', ?2, ?3, ?4)",
            )?
            .execute(params![id, EMBED_MODEL, EMBED_DIMS as i64, self.blob])?;
            bytes += text.len() as u64 * 3 + self.blob.len() as u64 + 300;
        }
        Ok(bytes)
    }

    fn ensure_jobs(&mut self, tx: &Connection) -> Result<u64> {
        let existing: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM cron_jobs ORDER BY id")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if !existing.is_empty() {
            self.jobs = existing;
            return Ok(0);
        }
        let mut bytes = 0;
        for _ in 0..8 {
            let id = self.rng.uuid();
            let name = text::title(&mut self.rng, 2);
            let created = self.start_ms;
            let schedule = format!(r#"{{"kind":"cron","expr":"{} {} * * *"}}"#, self.rng.below(60), self.rng.below(24));
            let payload = format!(
                r#"{{"kind":"agentTurn","message":"{}","deliver":true,"channel":"last"}}"#,
                self.prose(40, 200)
            );
            let state = format!(r#"{{"lastStatus":"ok","nextRunAtMs":{}}}"#, self.end_ms + 3_600_000);
            tx.prepare_cached(
                "INSERT INTO cron_jobs (id, agent_id, name, enabled, schedule_json, payload_json, state_json, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params![id, self.agent, name, schedule, payload, state, created])?;
            bytes += payload.len() as u64 + 300;
            self.jobs.push(id);
        }
        Ok(bytes)
    }

    fn cron_runs(&mut self, tx: &Connection) -> Result<u64> {
        let mut bytes = 0;
        for _ in 0..5 {
            let job = self.rng.pick(&self.jobs).clone();
            let t = self.when();
            let summary = self.prose(150, 1_500);
            let status = if self.rng.chance(0.05) { "error" } else { "ok" };
            let sid = self.rng.uuid();
            tx.prepare_cached(
                "INSERT INTO cron_runs (job_id, started_at, finished_at, status, summary, session_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![job, t, t + 5_000 + self.rng.below(60_000) as i64, status, summary, sid])?;
            bytes += summary.len() as u64 + 120;
        }
        Ok(bytes)
    }

    fn kv(&mut self, tx: &Connection) -> Result<u64> {
        let ns = *self.rng.pick(&["channels", "media", "delivery", "pairing", "usage", "presence"]);
        let key = self.rng.uuid();
        self.text.clear();
        let n = self.rng.range(300, 6_000) as usize;
        text::chat_text(&mut self.rng, &mut self.text, n);
        let value = format!(r#"{{"note":"{}","v":{}}}"#, String::from_utf8_lossy(&self.text), self.rng.below(1000));
        let t = self.when();
        tx.prepare_cached("INSERT OR REPLACE INTO kv (namespace, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![ns, key, value, t])?;
        Ok(value.len() as u64 + 100)
    }

    fn state_session(&mut self, tx: &Connection) -> Result<u64> {
        let id = self.rng.uuid();
        let key = format!("agent:{}:whatsapp:direct:+1555{:07}", self.agent, self.rng.below(10_000_000));
        let t = self.when();
        let entry = format!(
            r#"{{"sessionId":"{id}","updatedAt":{t},"chatType":"direct","lastChannel":"whatsapp","origin":{{"label":"{}","provider":"whatsapp"}},"totalTokens":{}}}"#,
            text::title(&mut self.rng, 2),
            self.rng.below(400_000)
        );
        tx.prepare_cached(
            "INSERT OR REPLACE INTO sessions (agent_id, session_key, session_id, updated_at, entry_json) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![self.agent, key, id, t, entry])?;
        Ok(entry.len() as u64 + 150)
    }
}
