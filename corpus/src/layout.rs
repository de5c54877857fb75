//! The plan: which files an OpenClaw home holds, where, how large and how old.
//!
//! Planning is cheap and single-threaded; it decides every path, size, seed and mtime up front
//! so that writing (in parallel) cannot change the result. The byte and file budgets are split
//! over categories by fixed shares, so `total_bytes` and `files` are met within a few percent.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::content::{Content, FileSpec, MediaKind};
use crate::git::GitSpec;
use crate::rng::{derive, Rng};
use crate::sqlite::{DbKind, DbSpec};
use crate::text;
use crate::time::{date, iso_string, DAY, END};
use crate::{Era, Options};

/// The fake user's home as it appears inside generated files (never the real output path, so
/// that the content does not depend on where the corpus is written).
pub(crate) const FAKE_HOME: &str = "/home/claw";
pub(crate) const STATE: &str = ".openclaw";
pub(crate) const GIT_PROJECT: &str = "projects/home-dashboard";

#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub id: String,
    /// Workspace path relative to the home.
    pub workspace: String,
    /// The `workspace` value written to `openclaw.json`, when not the default.
    pub configured: Option<String>,
}

pub(crate) fn agents(n: usize) -> Vec<Agent> {
    const IDS: &[&str] = &["main", "research", "ops", "writer", "finance", "travel", "coder", "home"];
    (0..n.max(1))
        .map(|i| {
            let id = IDS.get(i).map(|s| s.to_string()).unwrap_or_else(|| format!("agent{}", i + 1));
            let (workspace, configured) = match i {
                0 => (format!("{STATE}/workspace"), None),
                // The third agent keeps its workspace outside the state dir, set in the config.
                2 => ("projects/agent-ws".to_string(), Some("~/projects/agent-ws".to_string())),
                _ => (format!("{STATE}/workspace-{id}"), None),
            };
            Agent { id, workspace, configured }
        })
        .collect()
}

pub(crate) struct Plan {
    pub files: Vec<FileSpec>,
    pub dbs: Vec<DbSpec>,
    pub git: Option<GitSpec>,
    pub agents: Vec<Agent>,
}

impl Plan {
    /// Every directory the plan writes into, parents before children.
    pub fn dirs(&self) -> BTreeSet<String> {
        let mut dirs = BTreeSet::new();
        let mut add = |rel: &str| {
            let mut p = rel;
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                if !dirs.insert(p.to_string()) {
                    break;
                }
            }
        };
        for f in &self.files {
            add(&f.rel);
        }
        for d in &self.dbs {
            add(&d.rel);
        }
        if let Some(g) = &self.git {
            add(&format!("{}/.git", g.rel));
        }
        for a in &self.agents {
            add(&format!("{}/memory/x", a.workspace));
        }
        dirs
    }
}

/// Default file count for a byte budget: 20k files at 500 MB, 100k at 3 GB.
pub(crate) fn default_files(total_bytes: u64, small_files: bool) -> u64 {
    if small_files {
        return (total_bytes / 2_000).max(1_000);
    }
    let x = total_bytes as f64 / 500e6;
    (20_000.0 * x.powf(0.9)).max(150.0) as u64
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cat {
    Transcripts,
    Media,
    Logs,
    NodeModules,
    BrowserCache,
    Notes,
    Skills,
    CronRuns,
    Canvas,
    Git,
    Tools,
    Tmp,
    Databases,
    TinyNodeModules,
    TinyNotes,
    TinySessions,
}

struct SessionRec {
    agent: usize,
    key: String,
    id: String,
    file: String,
    updated_ms: i64,
    channel: &'static str,
    bytes: u64,
}

struct CronJob {
    id: String,
    agent: String,
    name: String,
    expr: &'static str,
    created_ms: i64,
    last_ms: i64,
}

struct Planner<'a> {
    opts: &'a Options,
    rng: Rng,
    files: Vec<FileSpec>,
    dbs: Vec<DbSpec>,
    git: Option<GitSpec>,
    agents: Vec<Agent>,
    target_files: u64,
    start: i64,
    used_bytes: u64,
    sessions: Vec<SessionRec>,
    jobs: Vec<CronJob>,
    phone: String,
}

pub(crate) fn plan(opts: &Options) -> Plan {
    let target_files = opts.files.unwrap_or_else(|| default_files(opts.total_bytes, opts.small_files)).max(50);
    let days = (target_files as i64 / 60).clamp(21, 400);
    let mut rng = Rng::new(derive(opts.seed, "plan"));
    let phone = format!("+1555{:07}", rng.below(10_000_000));
    let mut p = Planner {
        opts,
        rng,
        files: Vec::new(),
        dbs: Vec::new(),
        git: None,
        agents: agents(opts.agents),
        target_files,
        start: END - days * DAY,
        used_bytes: 0,
        sessions: Vec::new(),
        jobs: Vec::new(),
        phone,
    };
    p.fixed();
    p.workspace_basics();
    p.daily_notes();
    p.proportional();
    p.rebalance();
    p.indexes();
    Plan { files: p.files, dbs: p.dbs, git: p.git, agents: p.agents }
}

impl Planner<'_> {
    fn add(&mut self, rel: String, size: u64, mtime: i64, content: Content) {
        self.used_bytes += size;
        self.files.push(FileSpec { rel, size, mtime, content });
    }

    fn add_bytes(&mut self, rel: String, mtime: i64, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        self.add(rel, bytes.len() as u64, mtime, Content::Bytes(bytes));
    }

    fn add_json(&mut self, rel: String, mtime: i64, v: &Value) {
        let mut s = serde_json::to_string_pretty(v).expect("json");
        s.push('\n');
        self.add_bytes(rel, mtime, s);
    }

    fn seed(&self, tag: &str) -> u64 {
        derive(self.opts.seed, tag)
    }

    /// A moment in the corpus history (unix seconds).
    fn when(&mut self) -> i64 {
        self.start + self.rng.below((END - self.start) as u64) as i64
    }

    /// Recent moment: the last few days.
    fn recent(&mut self) -> i64 {
        END - 60 - self.rng.below(3 * DAY as u64) as i64
    }

    /// `n` sizes adding up to about `bytes`, log-uniformly spread over a factor `spread` either
    /// side of the mean, none below `min`.
    fn sizes(&mut self, n: usize, bytes: u64, spread: f64, min: u64) -> Vec<u64> {
        if n == 0 {
            return Vec::new();
        }
        let k = spread.ln();
        let w: Vec<f64> = (0..n).map(|_| ((self.rng.unit() * 2.0 - 1.0) * k).exp()).collect();
        let sum: f64 = w.iter().sum();
        w.iter().map(|x| ((x / sum) * bytes as f64) as u64).map(|s| s.max(min)).collect()
    }

    fn tiny_sizes(&mut self, n: usize, avg: u64) -> Vec<u64> {
        let lo = (avg / 10).clamp(60, 200);
        let hi = (2 * avg).saturating_sub(lo).max(lo + 1);
        (0..n).map(|_| self.rng.range(lo, hi)).collect()
    }

    // ---------------------------------------------------------------- fixed files

    fn fixed(&mut self) {
        let s = STATE;
        let t_cfg = self.recent();
        let cfg = self.config();
        self.add_bytes(format!("{s}/openclaw.json"), t_cfg, cfg.clone());
        // The gateway keeps a backup of the previous config: nearly the same bytes.
        let bak = cfg.replace("\"every\": \"30m\"", "\"every\": \"1h\"");
        let t = t_cfg - 3 * DAY;
        self.add_bytes(format!("{s}/openclaw.json.bak"), t, bak);
        let env = format!(
            "# Secrets referenced from openclaw.json as ${{VAR}}\nOPENAI_API_KEY=sk-proj-{}\nANTHROPIC_API_KEY=sk-ant-api03-{}\nTELEGRAM_BOT_TOKEN={}:{}\nOPENCLAW_GATEWAY_TOKEN={}\nBRAVE_API_KEY=BSA{}\nELEVENLABS_API_KEY={}\n",
            self.rng.alnum(64),
            self.rng.alnum(80),
            1_000_000_000 + self.rng.below(8_000_000_000),
            self.rng.alnum(35),
            self.rng.hex(48),
            self.rng.alnum(27),
            self.rng.hex(32)
        );
        let t = self.start + DAY;
        self.add_bytes(format!("{s}/.env"), t, env);

        // Credentials: OAuth tokens, WhatsApp (Baileys) auth state with its many small key files.
        let oauth = json!({
            "anthropic": { "type": "oauth", "access": format!("sk-ant-oat01-{}", self.rng.alnum(90)),
                "refresh": format!("sk-ant-ort01-{}", self.rng.alnum(90)), "expires": END * 1000 + 3_600_000 },
            "openai-codex": { "type": "oauth", "access": self.rng.alnum(120), "refresh": self.rng.alnum(60),
                "expires": END * 1000 + 86_400_000, "accountId": self.rng.uuid() },
        });
        let t = self.recent();
        self.add_json(format!("{s}/credentials/oauth.json"), t, &oauth);
        let wa = format!("{s}/credentials/whatsapp/default");
        let creds = json!({
            "noiseKey": { "private": { "type": "Buffer", "data": self.rng.alnum(44) }, "public": { "type": "Buffer", "data": self.rng.alnum(44) } },
            "signedIdentityKey": { "private": { "type": "Buffer", "data": self.rng.alnum(44) }, "public": { "type": "Buffer", "data": self.rng.alnum(44) } },
            "registrationId": self.rng.below(16_000),
            "advSecretKey": self.rng.alnum(44),
            "me": { "id": format!("{}:12@s.whatsapp.net", &self.phone[1..]), "name": "Claw" },
            "platform": "android",
            "registered": true,
        });
        let t = self.recent();
        self.add_json(format!("{wa}/creds.json"), t, &creds);
        let keys = (self.target_files / 400).clamp(4, 120);
        for i in 0..keys {
            let v =
                json!({ "keyPair": { "private": self.rng.alnum(44), "public": self.rng.alnum(44) }, "keyId": i + 1 });
            let t = self.when();
            self.add_json(format!("{wa}/pre-key-{}.json", i + 1), t, &v);
        }
        let allow = json!({ "version": 1, "allowFrom": [self.phone.clone()] });
        let t = self.when();
        self.add_json(format!("{s}/credentials/whatsapp-allowFrom.json"), t, &allow);
        let pair = json!({ "version": 1, "requests": [] });
        self.add_json(format!("{s}/credentials/telegram-pairing.json"), t, &pair);

        let device = json!({ "version": 1, "deviceId": self.rng.hex(64), "publicKeyPem": format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", self.rng.alnum(60)),
            "privateKeyPem": format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", self.rng.alnum(64)), "createdAtMs": self.start * 1000 });
        self.add_json(format!("{s}/identity/device.json"), self.start, &device);
        let dev_auth = json!({ "version": 1, "deviceId": self.rng.hex(64), "tokens": { "operator": { "token": self.rng.alnum(43), "role": "operator", "scopes": ["operator.admin"], "updatedAtMs": END * 1000 - 86_400_000 } } });
        self.add_json(format!("{s}/identity/device-auth.json"), self.start, &dev_auth);
        let mut paired = serde_json::Map::new();
        for name in ["macbook", "iphone", "raspberry-pi"] {
            let id = self.rng.hex(64);
            paired.insert(id.clone(), json!({ "deviceId": id, "displayName": name, "platform": name, "role": "node", "publicKey": self.rng.alnum(44), "approvedAtMs": self.when() * 1000 }));
        }
        let t = self.when();
        self.add_json(format!("{s}/devices/paired.json"), t, &Value::Object(paired));
        self.add_json(format!("{s}/devices/pending.json"), t, &json!({}));

        for i in 0..self.agents.len() {
            let id = self.agents[i].id.clone();
            let profiles = json!({ "version": 1, "profiles": {
                "openai:default": { "type": "api_key", "provider": "openai", "key": format!("sk-proj-{}", self.rng.alnum(64)) },
                "anthropic:default": { "type": "oauth", "provider": "anthropic", "access": self.rng.alnum(90), "refresh": self.rng.alnum(90), "expires": END * 1000 }
            }, "lastGood": { "openai": "openai:default" }, "usageStats": { "openai:default": { "lastUsed": END * 1000 - 5_000 } } });
            let t = self.recent();
            self.add_json(format!("{s}/agents/{id}/agent/auth-profiles.json"), t, &profiles);
            let models = json!({ "providers": { "openai": { "baseUrl": "https://api.openai.com/v1", "models": [
                { "id": "gpt-5.2", "contextWindow": 400_000, "maxTokens": 128_000 }, { "id": "gpt-5-mini", "contextWindow": 400_000, "maxTokens": 128_000 } ] } } });
            let t = self.when();
            self.add_json(format!("{s}/agents/{id}/agent/models.json"), t, &models);
        }

        let t = self.recent();
        self.add_json(format!("{s}/exec-approvals.json"), t, &json!({ "version": 1, "socket": { "path": format!("{FAKE_HOME}/.openclaw/exec-approvals.sock") },
            "defaults": { "security": "allowlist", "ask": "on-miss" }, "agents": { "main": { "allowlist": [ { "pattern": "/usr/bin/git" }, { "pattern": "/usr/bin/rg" } ] } } }));
        self.add_json(
            format!("{s}/update-check.json"),
            t,
            &json!({ "lastCheckedAt": iso_string(t * 1000), "latestVersion": "2026.1.8" }),
        );
        self.add_json(format!("{s}/subagents/runs.json"), t, &json!({ "version": 1, "runs": {} }));
        // Runtime leftovers a backup should skip.
        let pid = 1_000 + self.rng.below(60_000);
        self.add_bytes(format!("{s}/gateway.pid"), END - 3_600, format!("{pid}\n"));
        self.add_bytes(
            format!("{s}/agents/main/sessions/sessions.json.lock"),
            END - 60,
            format!("{{\"pid\":{},\"createdAt\":{}}}\n", 4242, END * 1000 - 60_000),
        );
        let tmp = format!("{s}/openclaw.json.{}.tmp", self.rng.below(100_000));
        let half = cfg.len() / 2;
        self.add_bytes(tmp, END - 120, cfg.as_bytes()[..half].to_vec());
    }

    fn config(&mut self) -> String {
        let mut list = String::new();
        for (i, a) in self.agents.iter().enumerate() {
            list.push_str("      { id: \"");
            list.push_str(&a.id);
            list.push('"');
            if i == 0 {
                list.push_str(", default: true");
            }
            if let Some(w) = &a.configured {
                list.push_str(&format!(", workspace: \"{w}\""));
            }
            if i == 1 {
                list.push_str(", model: \"anthropic/claude-opus-4-5\"");
            }
            list.push_str(" },\n");
        }
        let tz = *self.rng.pick(&["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London"]);
        let group = format!("-100{}", 1_000_000_000 + self.rng.below(8_000_000_000));
        format!(
            r#"// OpenClaw configuration (JSON5). Secrets live in ~/.openclaw/.env.
{{
  meta: {{ lastTouchedVersion: "2026.1.8", lastTouchedAt: "{touched}" }},
  env: {{ vars: {{ TZ: "{tz}" }} }},
  models: {{
    providers: {{
      openai: {{ apiKey: "${{OPENAI_API_KEY}}" }},
      anthropic: {{ apiKey: "${{ANTHROPIC_API_KEY}}" }},
    }},
  }},
  agents: {{
    defaults: {{
      workspace: "~/.openclaw/workspace",
      model: {{ primary: "openai/gpt-5.2", fallbacks: ["anthropic/claude-sonnet-4-5"] }},
      heartbeat: {{ "every": "30m", target: "last" }},
      memorySearch: {{ provider: "openai", model: "text-embedding-3-small" }},
      compaction: {{ mode: "safeguard" }},
      userTimezone: "{tz}",
    }},
    list: [
{list}    ],
  }},
  channels: {{
    whatsapp: {{ allowFrom: ["{phone}"], groups: {{ "*": {{ requireMention: true }} }} }},
    telegram: {{ botToken: "${{TELEGRAM_BOT_TOKEN}}", dmPolicy: "pairing", groups: {{ "{group}": {{ requireMention: false }} }} }},
  }},
  tools: {{ web: {{ search: {{ apiKey: "${{BRAVE_API_KEY}}" }} }} }},
  messages: {{ tts: {{ provider: "elevenlabs", elevenlabs: {{ apiKey: "${{ELEVENLABS_API_KEY}}" }} }} }},
  session: {{ dmScope: "per-channel-peer", reset: {{ mode: "daily", atHour: 4 }} }},
  cron: {{ enabled: true, maxConcurrentRuns: 1 }},
  browser: {{ enabled: true, defaultProfile: "openclaw" }},
  plugins: {{ entries: {{ "voice-call": {{ enabled: true }}, "memory-lancedb": {{ enabled: false }} }} }},
  gateway: {{
    port: 18789,
    bind: "loopback",
    auth: {{ mode: "token", token: "${{OPENCLAW_GATEWAY_TOKEN}}" }},
  }},
}}
"#,
            touched = iso_string((END - 7_200) * 1000),
            phone = self.phone,
        )
    }

    // ---------------------------------------------------------------- workspaces

    fn workspace_basics(&mut self) {
        for i in 0..self.agents.len() {
            let ws = self.agents[i].workspace.clone();
            let id = self.agents[i].id.clone();
            for (name, lo, hi) in [
                ("AGENTS.md", 3_000, 9_000),
                ("SOUL.md", 1_200, 4_000),
                ("USER.md", 600, 2_500),
                ("IDENTITY.md", 200, 600),
                ("TOOLS.md", 800, 4_000),
                ("HEARTBEAT.md", 150, 1_200),
                ("MEMORY.md", 4_000, 40_000),
            ] {
                let size = self.rng.range(lo, hi);
                let seed = self.seed(&format!("{ws}/{name}"));
                let t = if name == "MEMORY.md" { self.recent() } else { self.when() };
                let title = format!("{} ({id})", name.trim_end_matches(".md"));
                self.add(format!("{ws}/{name}"), size, t, Content::Markdown { seed, title });
            }
            let t = self.start;
            self.add_bytes(
                format!("{ws}/.gitignore"),
                t,
                "# scratch space and tool output\nscratch/\n*.log\nnode_modules/\n.DS_Store\n",
            );
            // Present but ignored by the .gitignore above.
            for n in 0..2 {
                let size = self.rng.range(500, 20_000);
                let seed = self.seed(&format!("{ws}/scratch/{n}"));
                let t = self.recent();
                self.add(format!("{ws}/scratch/draft-{n}.txt"), size, t, Content::Prose { seed });
            }
            let size = self.rng.range(2_000, 60_000);
            let seed = self.seed(&format!("{ws}/debug.log"));
            let t = self.recent();
            self.add(
                format!("{ws}/debug.log"),
                size,
                t,
                Content::Log { seed, start_ms: (t - DAY) * 1000, end_ms: t * 1000 },
            );
        }
    }

    fn daily_notes(&mut self) {
        for i in 0..self.agents.len() {
            let ws = self.agents[i].workspace.clone();
            let every = if i == 0 { 1 } else { 2 };
            let mut day = self.start - self.start % DAY;
            while day < END {
                let d = date(day);
                let size = self.rng.range(600, 6_000);
                let seed = self.seed(&format!("{ws}/memory/{d}"));
                let t = day + 20 * 3_600 + self.rng.below(4 * 3_600) as i64;
                self.add(format!("{ws}/memory/{d}.md"), size, t.min(END - 1), Content::Daily { seed, date: d });
                day += every * DAY;
            }
        }
    }

    // ---------------------------------------------------------------- proportional categories

    fn proportional(&mut self) {
        let era = self.opts.era;
        let db_share = match era {
            Era::File => 0.08,
            Era::Sqlite => 0.14,
            Era::Both => 0.18,
        };
        let mut shares: Vec<(Cat, f64, f64)> = vec![
            (Cat::Transcripts, 0.07, 0.30 + (0.18 - db_share)),
            (Cat::Media, 0.05, 0.25),
            (Cat::Logs, 0.003, 0.07),
            (Cat::NodeModules, 0.40, 0.04),
            (Cat::BrowserCache, 0.08, 0.035),
            (Cat::Notes, 0.17, 0.045),
            (Cat::Skills, 0.04, 0.01),
            (Cat::Canvas, 0.01, 0.004),
            (Cat::Git, 0.03, 0.01),
            (Cat::Tools, 0.006, 0.02),
            (Cat::Tmp, 0.01, 0.006),
            (Cat::Databases, 0.0, db_share),
        ];
        if era != Era::Sqlite {
            shares.push((Cat::CronRuns, 0.015, 0.02));
        }
        let db_specs = self.db_layout();
        let db_files = db_specs.len() as u64 * 3;
        let planned = self.files.len() as u64 + db_files + 4; // + sessions.json etc.
        let mut rem_files = self.target_files.saturating_sub(planned).max(40) as f64;
        let mut rem_bytes =
            self.opts.total_bytes.saturating_sub(self.used_bytes).max(self.opts.total_bytes / 10) as f64;

        if self.opts.small_files {
            let tiny_files = rem_files * 0.85;
            // Keep room for the other categories, at least the databases' floor.
            let reserve = (rem_bytes * 0.15).max(db_specs.len() as f64 * 262_144.0 + 300_000.0);
            let avg = ((rem_bytes - reserve) / tiny_files).clamp(300.0, 2_148.0) as u64;
            let tiny: [(Cat, f64); 3] =
                [(Cat::TinyNodeModules, 0.73), (Cat::TinyNotes, 0.15), (Cat::TinySessions, 0.12)];
            for (cat, f) in tiny {
                let n = (tiny_files * f).round() as usize;
                let before = self.used_bytes;
                self.category(cat, n, n as u64 * avg, &[]);
                rem_bytes -= (self.used_bytes - before) as f64;
            }
            rem_files -= tiny_files;
            rem_bytes = rem_bytes.max(self.opts.total_bytes as f64 * 0.05);
        }

        let fsum: f64 = shares.iter().map(|s| s.1).sum();
        let bsum: f64 = shares.iter().map(|s| s.2).sum();
        for (cat, f, b) in shares {
            let n = (rem_files * f / fsum).round() as usize;
            let bytes = (rem_bytes * b / bsum) as u64;
            self.category(cat, n, bytes, &db_specs);
        }
    }

    fn category(&mut self, cat: Cat, n: usize, bytes: u64, db_specs: &[(String, DbKind, String, f64)]) {
        match cat {
            Cat::Transcripts => self.transcripts(n.max(2 * self.agents.len()), bytes, false),
            Cat::TinySessions => self.transcripts(n, bytes, true),
            Cat::Media => self.media(n.max(3), bytes),
            Cat::Logs => self.logs(n.max(3), bytes),
            Cat::NodeModules => {
                let exts = ["voice-call", "matrix", "memory-lancedb"];
                let ws_n = n / 2;
                let ws_root = format!("{STATE}/workspace/node_modules");
                self.npm_tree(&ws_root, ws_n.max(5), bytes / 2, None);
                for (i, ext) in exts.iter().enumerate() {
                    let base = format!("{STATE}/extensions/{ext}");
                    let t = self.when();
                    self.add_json(format!("{base}/package.json"), t, &json!({ "name": format!("@openclaw/{ext}"), "version": "2026.1.8", "type": "module", "main": "dist/index.js", "openclaw": { "extensions": ["./dist/index.js"] } }));
                    self.add_json(format!("{base}/openclaw.plugin.json"), t, &json!({ "id": ext, "configSchema": { "type": "object", "additionalProperties": false, "properties": {} } }));
                    let size = bytes / 40;
                    let seed = self.seed(&format!("{base}/dist/index.js"));
                    self.add(format!("{base}/dist/index.js"), size, t, Content::Code { seed });
                    let share = (n - ws_n) / exts.len() + usize::from(i < (n - ws_n) % exts.len());
                    self.npm_tree(&format!("{base}/node_modules"), share.max(3), bytes / 2 / exts.len() as u64, None);
                }
            }
            Cat::TinyNodeModules => {
                let ws2 =
                    self.agents.get(1).map(|a| a.workspace.clone()).unwrap_or_else(|| format!("{STATE}/workspace"));
                let roots = [
                    (format!("{STATE}/workspace/projects/webapp/node_modules"), 0.6),
                    (format!("{STATE}/workspace/projects/site/node_modules"), 0.25),
                    (format!("{ws2}/projects/scraper/node_modules"), 0.15),
                ];
                let avg = bytes / n.max(1) as u64;
                for (root, f) in roots {
                    let k = (n as f64 * f).round() as usize;
                    self.npm_tree(&root, k, k as u64 * avg, Some(avg));
                }
            }
            Cat::BrowserCache => self.browser_cache(n.max(5), bytes),
            Cat::Notes => self.notes(n.max(self.agents.len()), bytes, None),
            Cat::TinyNotes => self.notes(n, bytes, Some(bytes / n.max(1) as u64)),
            Cat::Skills => self.skills(n.max(3), bytes),
            Cat::CronRuns => self.cron(n.max(2), bytes),
            Cat::Canvas => self.canvas(n.max(1), bytes),
            Cat::Git => {
                // A repository adds object files (blobs, trees, commits, hooks) beside its tree.
                let tree_files = ((n as f64 - 60.0) / 2.9).max(6.0) as usize;
                let (start, end) = (self.start, END - DAY);
                self.git = Some(GitSpec {
                    rel: format!("{STATE}/workspace/{GIT_PROJECT}"),
                    seed: self.seed("git"),
                    files: tree_files,
                    // The .git directory adds hook samples and compressed objects.
                    bytes: (bytes.saturating_sub(50_000) / 2).max(20_000),
                    start,
                    end,
                });
            }
            Cat::Tools => self.tools(n.max(1), bytes),
            Cat::Tmp => self.tmp(n.max(2), bytes),
            Cat::Databases => {
                let total_w: f64 = db_specs.iter().map(|d| d.3).sum();
                for (rel, kind, agent, w) in db_specs {
                    // Schema pages, the shm file and a minimal WAL make a floor.
                    let b = ((bytes as f64 * w / total_w) as u64).max(256 * 1024);
                    let seed = self.seed(rel);
                    let t = self.recent();
                    self.used_bytes += b;
                    self.dbs.push(DbSpec {
                        rel: rel.clone(),
                        kind: *kind,
                        agent: agent.clone(),
                        bytes: b,
                        seed,
                        start_ms: self.start * 1000,
                        end_ms: END * 1000,
                        mtime: t,
                    });
                }
            }
        }
    }

    /// (path, kind, agent, weight) of every database the era calls for.
    fn db_layout(&self) -> Vec<(String, DbKind, String, f64)> {
        let era = self.opts.era;
        let mut v = Vec::new();
        let (state_w, agent_w, mem_w) = match era {
            Era::File => (0.0, 0.0, 1.0),
            Era::Sqlite => (0.12, 0.88, 0.0),
            Era::Both => (0.08, 0.57, 0.35),
        };
        let weights: Vec<f64> = (0..self.agents.len()).map(|i| if i == 0 { 2.0 } else { 1.0 }).collect();
        let wsum: f64 = weights.iter().sum();
        if era != Era::File {
            v.push((format!("{STATE}/state/openclaw.sqlite"), DbKind::State, "main".to_string(), state_w));
            for (a, w) in self.agents.iter().zip(&weights) {
                v.push((
                    format!("{STATE}/agents/{}/agent/openclaw-agent.sqlite", a.id),
                    DbKind::Agent,
                    a.id.clone(),
                    agent_w * w / wsum,
                ));
            }
        }
        if era != Era::Sqlite {
            for (a, w) in self.agents.iter().zip(&weights) {
                v.push((format!("{STATE}/memory/{}.sqlite", a.id), DbKind::Memory, a.id.clone(), mem_w * w / wsum));
            }
        }
        v
    }

    fn transcripts(&mut self, n: usize, bytes: u64, tiny: bool) {
        let agents = self.agents.len();
        let sizes = if tiny { self.tiny_sizes(n, bytes / n.max(1) as u64) } else { self.sizes(n, bytes, 30.0, 1_500) };
        let channels = ["whatsapp", "telegram", "webchat", "cron", "discord"];
        for (i, size) in sizes.into_iter().enumerate() {
            // 60% of sessions belong to the main agent.
            let agent =
                if agents == 1 || self.rng.chance(0.6) { 0 } else { 1 + self.rng.below(agents as u64 - 1) as usize };
            let a = self.agents[agent].clone();
            let id = self.rng.uuid();
            let start = self.when();
            let dur = 60 + self.rng.below(3 * DAY as u64) as i64;
            let end = (start + dur).min(END - 60);
            let channel = *self.rng.pick(&channels);
            let key = match (i, channel) {
                (0, _) => format!("agent:{}:main", a.id),
                (_, "cron") => format!("agent:{}:cron:{}:run:{id}", a.id, self.rng.uuid()),
                (_, "telegram") => format!("agent:{}:telegram:group:-100{}", a.id, self.rng.below(1_000_000_000)),
                _ => format!("agent:{}:{channel}:direct:+1555{:07}", a.id, self.rng.below(10_000_000)),
            };
            let r = self.rng.below(100);
            let file = if r < 8 {
                format!("{id}.jsonl.reset.{}", iso_string(end * 1000).replace(':', "-"))
            } else if r < 12 {
                format!("{id}.jsonl.deleted.{}", iso_string(end * 1000).replace(':', "-"))
            } else {
                format!("{id}.jsonl")
            };
            let seed = self.seed(&format!("session/{id}"));
            let cwd = format!("{FAKE_HOME}/{}", a.workspace);
            let rel = format!("{STATE}/agents/{}/sessions/{file}", a.id);
            self.add(
                rel,
                size,
                end,
                Content::Transcript { seed, id: id.clone(), start_ms: start * 1000, end_ms: end * 1000, cwd },
            );
            if r >= 12 {
                self.sessions.push(SessionRec { agent, key, id, file, updated_ms: end * 1000, channel, bytes: size });
            }
        }
    }

    fn media(&mut self, n: usize, bytes: u64) {
        let dups = if n >= 10 { n / 10 } else { 1 };
        let unique = n - dups;
        let sizes = self.sizes(unique, bytes * unique as u64 / n as u64, 10.0, 2_000);
        let mut made: Vec<(u64, MediaKind, u64)> = Vec::new();
        let mut names = BTreeSet::new();
        for size in sizes {
            let kind = match self.rng.below(100) {
                0..=44 => MediaKind::Jpeg,
                45..=59 => MediaKind::Png,
                60..=84 => MediaKind::Ogg,
                85..=91 => MediaKind::Mp4,
                _ => MediaKind::Pdf,
            };
            let name = self.rng.uuid();
            let seed = self.seed(&format!("media/{name}"));
            let t = self.when();
            self.add(format!("{STATE}/media/inbound/{name}.{}", kind.ext()), size, t, Content::Media { seed, kind });
            made.push((seed, kind, size));
        }
        // The same picture saved twice: once more in the inbox, or copied into the workspace.
        for d in 0..dups {
            let (seed, kind, size) = *self.rng.pick(&made);
            let t = self.when();
            let rel = if d % 2 == 0 {
                format!("{STATE}/media/inbound/{}.{}", self.rng.uuid(), kind.ext())
            } else {
                format!("{STATE}/workspace/attachments/{}.{}", text::slug(&mut self.rng, 2), kind.ext())
            };
            if !names.insert(rel.clone()) {
                continue;
            }
            self.add(rel, size, t, Content::Media { seed, kind });
        }
    }

    fn logs(&mut self, n: usize, bytes: u64) {
        let start_ms = self.start * 1000;
        let end_ms = END * 1000 - 1_000;
        let rotated = n - 2;
        let seg = (end_ms - start_ms) / (rotated as i64 + 1);
        let main = bytes * 35 / 100;
        let err = bytes * 5 / 100;
        let rest = bytes - main - err;
        let seed = self.seed("logs/gateway.log");
        self.add(
            format!("{STATE}/logs/gateway.log"),
            main,
            END - 1,
            Content::Log { seed, start_ms: end_ms - seg, end_ms },
        );
        let seed = self.seed("logs/gateway.err.log");
        self.add(format!("{STATE}/logs/gateway.err.log"), err, END - 100, Content::Log { seed, start_ms, end_ms });
        let sizes = self.sizes(rotated, rest, 2.0, 1_000);
        for (k, size) in sizes.into_iter().enumerate() {
            let s = end_ms - seg * (k as i64 + 2);
            let seed = self.seed(&format!("logs/rotated/{k}"));
            let e = s + seg;
            self.add(
                format!("{STATE}/logs/gateway.{}.log", date(e / 1000)),
                size,
                e / 1000,
                Content::Log { seed, start_ms: s, end_ms: e },
            );
        }
    }

    /// A node_modules-like tree of `n` files under `root`. `tiny` gives an average size for
    /// uniformly small files; otherwise sizes spread widely around the mean.
    fn npm_tree(&mut self, root: &str, n: usize, bytes: u64, tiny: Option<u64>) {
        const NAMES: &[&str] = &[
            "lodash",
            "chalk",
            "debug",
            "ms",
            "semver",
            "commander",
            "yargs",
            "zod",
            "ws",
            "undici",
            "express",
            "body-parser",
            "mime-types",
            "uuid",
            "dotenv",
            "json5",
            "ajv",
            "fast-glob",
            "picomatch",
            "micromatch",
            "glob",
            "minimatch",
            "rimraf",
            "tslib",
            "typescript",
            "esbuild",
            "rollup",
            "vite",
            "react",
            "react-dom",
            "scheduler",
            "sharp",
            "pino",
            "pino-pretty",
            "axios",
            "form-data",
            "node-fetch",
            "whatwg-url",
            "tr46",
            "punycode",
            "iconv-lite",
            "safer-buffer",
            "qs",
            "cookie",
            "@types/node",
            "@types/react",
            "@babel/core",
            "@babel/parser",
            "@babel/types",
            "@sinclair/typebox",
            "@mariozechner/pi-ai",
        ];
        let sizes = match tiny {
            Some(avg) => self.tiny_sizes(n, avg),
            None => self.sizes(n, bytes, 6.0, 120),
        };
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut i = 0;
        let mut parent: Option<String> = None;
        while i < n {
            let mut name = self.rng.pick(NAMES).to_string();
            if !used.insert(name.clone()) {
                name = format!("{name}-{}", text::slug(&mut self.rng, 1));
                if !used.insert(name.clone()) {
                    name = format!("{name}-{}", used.len());
                    used.insert(name.clone());
                }
            }
            let dir = match &parent {
                Some(p) if self.rng.chance(0.15) => format!("{p}/node_modules/{name}"),
                _ => format!("{root}/{name}"),
            };
            let t = self.when();
            let k = (3 + self.rng.below(14) as usize).min(n - i);
            for j in 0..k {
                let size = sizes[i + j];
                let (file, content) = match j {
                    0 => {
                        let v = format!("{}.{}.{}", self.rng.below(12), self.rng.below(30), self.rng.below(20));
                        let pj = format!("{{\n  \"name\": \"{name}\",\n  \"version\": \"{v}\",\n  \"main\": \"index.js\",\n  \"license\": \"MIT\",\n  \"engines\": {{ \"node\": \">=18\" }}\n}}\n");
                        ("package.json".to_string(), Content::Bytes(pj.into_bytes()))
                    }
                    1 => ("LICENSE".to_string(), Content::Bytes(text::MIT.as_bytes().to_vec())),
                    2 => ("README.md".to_string(), Content::Markdown { seed: 0, title: name.clone() }),
                    3 => ("index.js".to_string(), Content::Code { seed: 0 }),
                    _ => {
                        let sub = *self.rng.pick(&["lib", "dist", "src", "lib/utils", "types"]);
                        let ext = if sub == "types" { "d.ts" } else { "js" };
                        (format!("{sub}/{}-{j}.{ext}", text::slug(&mut self.rng, 1)), Content::Code { seed: 0 })
                    }
                };
                let rel = format!("{dir}/{file}");
                let seed = self.seed(&rel);
                let content = match content {
                    Content::Markdown { title, .. } => Content::Markdown { seed, title },
                    Content::Code { .. } => Content::Code { seed },
                    c => c,
                };
                let size = match &content {
                    Content::Bytes(b) => b.len() as u64,
                    _ => size,
                };
                self.add(rel, size, t, content);
            }
            i += k;
            parent = Some(dir);
        }
    }

    fn browser_cache(&mut self, n: usize, bytes: u64) {
        let base = format!("{STATE}/browser/openclaw/user-data");
        let t = self.recent();
        self.add_json(format!("{base}/Local State"), t, &json!({ "browser": { "enabled_labs_experiments": [] }, "profile": { "info_cache": { "Default": { "name": "openclaw" } } } }));
        self.add_json(format!("{base}/Default/Preferences"), t, &json!({ "profile": { "name": "openclaw", "exit_type": "Crashed" }, "download": { "default_directory": format!("{FAKE_HOME}/Downloads") } }));
        let sizes = self.sizes(n.saturating_sub(2), bytes, 20.0, 200);
        for size in sizes {
            let dir = if self.rng.chance(0.8) { "Default/Cache/Cache_Data" } else { "Default/Code Cache/js" };
            let name = format!("{}_0", self.rng.hex(16));
            let rel = format!("{base}/{dir}/{name}");
            let seed = self.seed(&rel);
            let t = self.when();
            self.add(rel, size, t, Content::BrowserCache { seed });
        }
    }

    fn notes(&mut self, n: usize, bytes: u64, tiny: Option<u64>) {
        let sizes = match tiny {
            Some(avg) => self.tiny_sizes(n, avg),
            None => self.sizes(n, bytes, 15.0, 100),
        };
        let topics: Vec<String> = (0..8).map(|_| text::slug(&mut self.rng, 2)).collect();
        for size in sizes {
            let agent = if self.agents.len() == 1 || self.rng.chance(0.6) {
                0
            } else {
                1 + self.rng.below(self.agents.len() as u64 - 1) as usize
            };
            let ws = self.agents[agent].workspace.clone();
            let t = self.when();
            let dir = if tiny.is_some() {
                format!("notes/{}/{}", &date(t)[..4], &date(t)[5..7])
            } else {
                match self.rng.below(6) {
                    0 => "notes".to_string(),
                    1 => format!("research/{}", self.rng.pick(&topics)),
                    2 => "docs".to_string(),
                    3 => "people".to_string(),
                    4 => "drafts".to_string(),
                    _ => format!("projects/{}/notes", self.rng.pick(&topics)),
                }
            };
            let name = format!("{}-{}", text::slug(&mut self.rng, 2), self.rng.hex(4));
            let (ext, content) = match self.rng.below(10) {
                0 => ("csv", Content::Csv { seed: 0 }),
                1 => ("txt", Content::Prose { seed: 0 }),
                _ => ("md", Content::Markdown { seed: 0, title: text::title(&mut self.rng, 3) }),
            };
            let rel = format!("{ws}/{dir}/{name}.{ext}");
            let seed = self.seed(&rel);
            let content = match content {
                Content::Csv { .. } => Content::Csv { seed },
                Content::Prose { .. } => Content::Prose { seed },
                Content::Markdown { title, .. } => Content::Markdown { seed, title },
                c => c,
            };
            self.add(rel, size, t, content);
        }
    }

    fn skills(&mut self, n: usize, bytes: u64) {
        let sizes = self.sizes(n, bytes, 6.0, 300);
        let mut i = 0;
        while i < n {
            let name = text::slug(&mut self.rng, 2);
            let base = if self.rng.chance(0.7) {
                format!("{STATE}/workspace/skills/{name}")
            } else {
                format!("{STATE}/skills/{name}")
            };
            let t = self.when();
            let k = (2 + self.rng.below(5) as usize).min(n - i);
            // SKILL.md: YAML frontmatter, then instructions.
            let mut body = Vec::new();
            let mut desc = Vec::new();
            text::prose(&mut self.rng, &mut desc, 90);
            let desc = String::from_utf8(desc).expect("ascii").trim().to_string();
            body.extend_from_slice(
                format!("---\nname: {name}\ndescription: {desc}\nmetadata: {{\"openclaw\":{{\"emoji\":\"*\",\"requires\":{{\"bins\":[\"curl\",\"jq\"]}}}}}}\n---\n\n").as_bytes(),
            );
            let md_len = sizes[i].saturating_sub(body.len() as u64).max(100) as usize;
            let heading = text::title(&mut self.rng, 3);
            text::markdown(&mut self.rng, &mut body, md_len, &heading);
            self.add_bytes(format!("{base}/SKILL.md"), t, body);
            for j in 1..k {
                let (rel, content) = if j % 2 == 1 {
                    let ext = *self.rng.pick(&["py", "sh", "mjs"]);
                    let rel = format!("{base}/scripts/{}.{ext}", text::slug(&mut self.rng, 1));
                    (rel.clone(), Content::Code { seed: self.seed(&rel) })
                } else {
                    let rel = format!("{base}/references/{}.md", text::slug(&mut self.rng, 2));
                    (rel.clone(), Content::Markdown { seed: self.seed(&rel), title: text::title(&mut self.rng, 2) })
                };
                if self.files.iter().rev().take(8).any(|f| f.rel == rel) {
                    continue;
                }
                self.add(rel, sizes[i + j], t, content);
            }
            i += k;
        }
    }

    fn cron(&mut self, n: usize, bytes: u64) {
        const EXPRS: &[&str] =
            &["0 7 * * *", "*/30 * * * *", "0 9 * * 1", "0 18 * * 1-5", "15 6 * * *", "0 */4 * * *", "0 21 * * 0"];
        let sizes = self.sizes(n, bytes, 4.0, 500);
        for size in sizes {
            let id = self.rng.uuid();
            let agent = self.agents[self.rng.below(self.agents.len() as u64) as usize].id.clone();
            let created = self.when();
            let last = self.recent();
            let seed = self.seed(&format!("cron/{id}"));
            self.add(
                format!("{STATE}/cron/runs/{id}.jsonl"),
                size,
                last,
                Content::CronRuns { seed, job_id: id.clone(), start_ms: created * 1000, end_ms: last * 1000 },
            );
            let name = text::title(&mut self.rng, 2);
            let expr = *self.rng.pick(EXPRS);
            self.jobs.push(CronJob { id, agent, name, expr, created_ms: created * 1000, last_ms: last * 1000 });
        }
    }

    fn canvas(&mut self, n: usize, bytes: u64) {
        let t = self.when();
        let html = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>OpenClaw Canvas</title></head>\n<body><div id=\"app\"></div><script src=\"/__openclaw__/canvas.js\"></script></body></html>\n";
        self.add_bytes(format!("{STATE}/canvas/index.html"), t, html);
        let sizes = self.sizes(n.saturating_sub(1), bytes, 4.0, 200);
        let app = text::slug(&mut self.rng, 1);
        for (i, size) in sizes.into_iter().enumerate() {
            let rel = format!(
                "{STATE}/canvas/{app}/{}-{i}.{}",
                text::slug(&mut self.rng, 1),
                if i % 3 == 0 { "css" } else { "js" }
            );
            let seed = self.seed(&rel);
            self.add(rel, size, t, Content::Code { seed });
        }
    }

    fn tools(&mut self, n: usize, bytes: u64) {
        let sizes = self.sizes(n, bytes, 8.0, 1_000);
        for (i, size) in sizes.into_iter().enumerate() {
            let tool = ["signal-cli", "whisper", "ffmpeg", "node"][i % 4];
            let rel = format!("{STATE}/tools/{tool}/bin/{}-{i}", text::slug(&mut self.rng, 1));
            let seed = self.seed(&rel);
            let t = self.when();
            self.add(rel, size, t, Content::Random { seed });
        }
    }

    fn tmp(&mut self, n: usize, bytes: u64) {
        let sizes = self.sizes(n, bytes, 8.0, 100);
        for (i, size) in sizes.into_iter().enumerate() {
            let rel = if i == 0 {
                format!("{STATE}/tmp/upload-{}.tmp", self.rng.hex(8))
            } else {
                format!("{STATE}/tmp/openclaw-{}/part-{i}", self.rng.hex(6))
            };
            let seed = self.seed(&rel);
            let content = if i % 2 == 0 { Content::Random { seed } } else { Content::Prose { seed } };
            let t = self.recent();
            self.add(rel, size, t, content);
        }
    }

    /// Minimum sizes, fixed-size files and databases make small corpora overshoot; stretch or
    /// shrink the large elastic files (transcripts, media, logs, blobs) to land on the total.
    fn rebalance(&mut self) {
        let planned = self.used_bytes + self.git.as_ref().map_or(0, |g| g.bytes * 2 + 50_000);
        let total = self.opts.total_bytes;
        let elastic = |f: &FileSpec| {
            f.size >= 8_192
                && matches!(
                    f.content,
                    Content::Transcript { .. } | Content::Media { .. } | Content::Log { .. } | Content::Random { .. }
                )
        };
        let stretch: u64 = self.files.iter().filter(|f| elastic(f)).map(|f| f.size).sum();
        if stretch == 0 || planned.abs_diff(total) < total / 100 {
            return;
        }
        let factor = (1.0 + (total as f64 - planned as f64) / stretch as f64).clamp(0.2, 5.0);
        for f in self.files.iter_mut().filter(|f| elastic(f)) {
            let new = ((f.size as f64 * factor) as u64).max(4_096);
            self.used_bytes = self.used_bytes + new - f.size;
            f.size = new;
        }
    }

    // ---------------------------------------------------------------- indexes

    fn indexes(&mut self) {
        // sessions.json per agent: the live (non-archived) sessions, newest first, at most 500.
        self.sessions.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then(a.id.cmp(&b.id)));
        for i in 0..self.agents.len() {
            let agent = self.agents[i].clone();
            let mut map = serde_json::Map::new();
            let mut newest = self.start;
            for s in self.sessions.iter().filter(|s| s.agent == i).take(500) {
                newest = newest.max(s.updated_ms / 1000);
                let tokens = s.bytes / 4;
                map.insert(
                    s.key.clone(),
                    json!({
                        "sessionId": s.id,
                        "updatedAt": s.updated_ms,
                        "sessionFile": format!("{FAKE_HOME}/{STATE}/agents/{}/sessions/{}", agent.id, s.file),
                        "chatType": if s.key.contains(":group:") { "group" } else { "direct" },
                        "lastChannel": s.channel,
                        "model": "gpt-5.2",
                        "modelProvider": "openai",
                        "contextTokens": 400_000,
                        "inputTokens": tokens * 9 / 10,
                        "outputTokens": tokens / 10,
                        "totalTokens": tokens,
                        "compactionCount": tokens / 150_000,
                    }),
                );
            }
            self.add_json(format!("{STATE}/agents/{}/sessions/sessions.json", agent.id), newest, &Value::Object(map));
        }
        if self.opts.era != Era::Sqlite {
            let jobs: Vec<Value> = self
                .jobs
                .iter()
                .map(|j| {
                    json!({
                        "id": j.id,
                        "agentId": j.agent,
                        "name": j.name,
                        "enabled": true,
                        "createdAtMs": j.created_ms,
                        "updatedAtMs": j.last_ms,
                        "schedule": { "kind": "cron", "expr": j.expr },
                        "sessionTarget": "isolated",
                        "wakeMode": "next-heartbeat",
                        "payload": { "kind": "agentTurn", "message": format!("Run the {} routine and report.", j.name.to_lowercase()), "deliver": true, "channel": "last" },
                        "state": { "lastRunAtMs": j.last_ms, "lastStatus": "ok", "nextRunAtMs": j.last_ms + 3_600_000 },
                    })
                })
                .collect();
            let t = self.jobs.iter().map(|j| j.last_ms / 1000).max().unwrap_or(self.start);
            self.add_json(format!("{STATE}/cron/jobs.json"), t, &json!({ "version": 1, "jobs": jobs }));
        }
    }
}
