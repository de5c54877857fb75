//! The real OpenClaw for the tests: the npm package `openclaw` (pinned in `tests/run`) on Node 24,
//! both installed by `tests/run` under `$OPENCLAW_TOOLS` (default `~/.cache/clawback-openclaw`).
//! Without them a test that needs them fails with the reason; it never passes silently.
//!
//! A home made by OpenClaw's own CLI costs about forty seconds of CPU, so one template home is made
//! per test process ([`template`]): `openclaw onboard` (default agent `molty`), `agents add worker`
//! with a workspace outside the state dir, `agents add scribe --role writer` (its workspace nests in
//! molty's), a MEMORY.md and a daily memory file, `memory index`, a gateway run on loopback while
//! `cron add` adds a job, then the gateway is stopped. Each test gets its own copy ([`RealHome`]),
//! with the template's home path rewritten to the copy's in every JSON file (SQLite files are copied
//! as they are), so tests may change, restore into and run a gateway on their copy in parallel.

#![allow(dead_code)]

use crate::support::{Cmd, Run, Sandbox};
use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The OpenClaw version `tests/run` installs; a change here is an upgrade made on purpose.
pub const OPENCLAW_VERSION: &str = "2026.9.6";
/// The gateway token every home is made with.
pub const TOKEN: &str = "clawback-e2e-gateway-token";
/// The nightly job `cron add` makes in the template.
pub const CRON_JOB: &str = "nightly";
/// Text the template's memory files hold, so a restore can be told from an empty file.
pub const MEMORY_LINE: &str = "Remember: the user prefers tea over coffee.";
pub const DAILY_NOTE: &str = "memory/2026-12-01.md";

/// Where `tests/run` installs Node 24 and OpenClaw.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("OPENCLAW_TOOLS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/clawback-openclaw"),
    }
}

/// The PATH under which `openclaw` and Node 24 are found first, or a failure naming the fix.
pub fn openclaw_path() -> String {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let t = tools_dir();
        let node = t.join("node24/package/bin");
        let oc = t.join("openclaw/node_modules/.bin");
        assert!(
            node.join("node").is_file() && oc.join("openclaw").exists(),
            "the real OpenClaw is not installed under {} (Node 24 in node24/, openclaw@{OPENCLAW_VERSION} in openclaw/); \
             run tests/run, which installs both from the npm registry",
            t.display()
        );
        format!("{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", node.display(), oc.display())
    })
    .clone()
}

/// The `openclaw` program with HOME = `home` and nothing else from this process's environment.
pub fn openclaw_command(home: &Path) -> Command {
    let mut c = Command::new("openclaw");
    c.env_clear()
        .env("PATH", openclaw_path())
        .env("HOME", home)
        .env("USER", "e2e")
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        .current_dir(home);
    c
}

/// `openclaw ARGS` on `home`, run with a time limit (see [`openclaw_command`]).
pub fn openclaw(home: &Path) -> Cmd {
    crate::support::Cmd::from_command(openclaw_command(home))
}

/// `openclaw gateway run` on loopback, on `port`, with the test token.
pub fn gateway_command(home: &Path, port: u16) -> Command {
    let mut c = openclaw_command(home);
    c.args(["gateway", "run", "--port", &port.to_string(), "--bind", "loopback", "--token", TOKEN]);
    c
}

/// Runs `openclaw ARGS --json` expecting success and returns the JSON it printed (the last JSON
/// document on stdout: some commands print log lines first).
#[track_caller]
pub fn openclaw_json(home: &Path, args: &[&str]) -> serde_json::Value {
    let r = openclaw(home).args(args).arg("--json").run().ok();
    parse_last_json(&r.stdout).unwrap_or_else(|| panic!("`{}` printed no JSON\n{}\n{}", r.desc, r.stdout, r.stderr))
}

/// The last top-level JSON object or array in `text`.
pub fn parse_last_json(text: &str) -> Option<serde_json::Value> {
    if let Ok(v) = serde_json::from_str(text.trim()) {
        return Some(v);
    }
    for (i, _) in text.match_indices(['{', '[']).filter(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n') {
        if let Ok(v) = serde_json::from_str(text[i..].trim()) {
            return Some(v);
        }
    }
    None
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A gateway (`openclaw gateway run` on loopback) on a home, stopped by its process group when
/// dropped.
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Gateway {
    /// Starts a gateway on `home` on a free port (written into the config's `gateway.port` first,
    /// so the CLI's own commands find it) and waits until its log says `[gateway] ready`.
    #[track_caller]
    pub fn start(home: &Path) -> Gateway {
        let port = free_port();
        set_gateway_port(home, port);
        let log = home.join(format!("gateway-{port}.log"));
        let out = fs::File::create(&log).unwrap();
        let mut c = gateway_command(home, port);
        c.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).process_group(0);
        let child = c.spawn().expect("start openclaw gateway run");
        let mut g = Gateway { child: Some(child), port, log };
        g.wait_ready(Duration::from_secs(90));
        g
    }

    fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if text.lines().any(|l| l.contains("[gateway] ready")) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("openclaw gateway run exited {status:?} before it was ready\n{text}");
            }
            if start.elapsed() > limit {
                panic!("openclaw gateway run was not ready within {limit:?}\n{text}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Whether the gateway is still running (it exits on a bad config, for one).
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Stops the gateway (SIGTERM to its process group, then SIGKILL after 20 s) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id() as i32;
            // SAFETY: kill has no memory preconditions; the group is the gateway's own.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let start = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if start.elapsed() > Duration::from_secs(20) {
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Helpers it spawned in its group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets `gateway.port` in the home's openclaw.json (a JSON file as OpenClaw writes it).
pub fn set_gateway_port(home: &Path, port: u16) {
    let path = home.join(".openclaw/openclaw.json");
    let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    v["gateway"]["port"] = serde_json::json!(port);
    fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The template home, made once per test process. Returns its HOME folder.
pub fn template() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let tmp = std::env::temp_dir();
        // Templates of earlier test processes that are gone.
        for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("clawback-e2e-openclaw-template-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("clawback-e2e-openclaw-template-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        make_home(&dir);
        dir
    })
}

/// Makes an OpenClaw home in `home` with OpenClaw's own CLI (see the module comment).
#[track_caller]
pub fn make_home(home: &Path) {
    let port = free_port().to_string();
    openclaw_json(
        home,
        &[
            "onboard",
            "--non-interactive",
            "--accept-risk",
            "--mode",
            "local",
            "--auth-choice",
            "skip",
            "--skip-daemon",
            "--skip-channels",
            "--skip-health",
            "--skip-search",
            "--skip-skills",
            "--skip-ui",
            "--skip-hooks",
            "--gateway-bind",
            "loopback",
            "--gateway-port",
            &port,
            "--gateway-auth",
            "token",
            "--gateway-token",
            TOKEN,
            "--agent-name",
            "Molty",
        ],
    );
    let worker = home.join("work/worker");
    openclaw_json(home, &["agents", "add", "worker", "--non-interactive", "--workspace", worker.to_str().unwrap()]);
    openclaw_json(home, &["agents", "add", "scribe", "--non-interactive", "--role", "writer"]);
    let ws = home.join(".openclaw/workspace");
    fs::write(ws.join("MEMORY.md"), format!("# Memory\n\n{MEMORY_LINE}\n")).unwrap();
    fs::create_dir_all(ws.join("memory")).unwrap();
    fs::write(ws.join(DAILY_NOTE), "# 2026-12-01\n\nMet the user; set up the nightly summary.\n").unwrap();
    fs::write(ws.join(".env"), "PROJECT_TOKEN=workspace-secret\n").unwrap();
    fs::write(ws.join(".gitignore"), ".env\nnode_modules/\n").unwrap();
    fs::write(worker.join("notes.md"), "worker's own notes\n").unwrap();
    openclaw(home).args(["memory", "index", "--force"]).run().ok();
    let mut gw = Gateway::start(home);
    openclaw_json(
        home,
        &[
            "cron",
            "add",
            "--name",
            CRON_JOB,
            "--every",
            "1h",
            "--message",
            "Summarize",
            "--agent",
            "molty",
            "--no-deliver",
        ],
    );
    gw.stop();
}

/// One test's copy of the template: a sandbox whose HOME holds the OpenClaw home.
pub struct RealHome {
    pub sb: Sandbox,
}

impl RealHome {
    /// A sandbox with an initialised repository and a copy of the template in its HOME.
    pub fn new() -> RealHome {
        let sb = Sandbox::with_repo();
        copy_home(template(), &sb.home);
        RealHome { sb }
    }

    pub fn home(&self) -> &Path {
        &self.sb.home
    }

    pub fn state(&self) -> PathBuf {
        self.sb.home.join(".openclaw")
    }

    /// The workspace of agent `id` as OpenClaw itself reports it (`openclaw agents list --json`).
    pub fn workspace(&self, id: &str) -> PathBuf {
        agent_workspace(&self.sb.home, id)
    }

    /// `openclaw ...` on this home.
    pub fn openclaw(&self) -> Cmd {
        openclaw(&self.sb.home)
    }

    /// `clawback` on this home with OpenClaw on PATH (as on a machine where it is installed).
    pub fn cb(&self) -> Cmd {
        self.sb.cb().env("PATH", openclaw_path())
    }
}

/// `openclaw agents list --json` as (id, workspace) pairs.
pub fn agents(home: &Path) -> Vec<(String, PathBuf)> {
    let v = openclaw_json(home, &["agents", "list"]);
    let list = v.as_array().cloned().or_else(|| v["agents"].as_array().cloned()).unwrap_or_default();
    list.iter()
        .map(|a| {
            let id = a["id"].as_str().or(a["agentId"].as_str()).unwrap_or_default().to_string();
            (id, PathBuf::from(a["workspace"].as_str().unwrap_or_default()))
        })
        .collect()
}

#[track_caller]
pub fn agent_workspace(home: &Path, id: &str) -> PathBuf {
    let all = agents(home);
    all.iter().find(|(a, _)| a == id).map(|(_, w)| w.clone()).unwrap_or_else(|| panic!("no agent {id} in {all:?}"))
}

/// `openclaw cron list --json` (which asks the gateway: one is started for it and stopped after):
/// the job names.
pub fn cron_names(home: &Path) -> Vec<String> {
    let _gw = Gateway::start(home);
    let v = openclaw_json(home, &["cron", "list"]);
    v["jobs"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Copies the home `from` into `to` (which may exist), rewriting `from`'s path to `to`'s in every
/// JSON file and in every text column of every SQLite database (OpenClaw keys its cron store by the
/// absolute path of `<state>/cron/jobs.json`), and the sha256 keys of the paths moved
/// ([`rewrite_path_keys`]); other files are copied byte for byte.
pub fn copy_home(from: &Path, to: &Path) {
    copy_tree(from, to);
    for e in walkdir::WalkDir::new(to).into_iter().filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_file() && name.ends_with(".sqlite") && !name.contains("-lock") && !name.contains("-writer")
        {
            rewrite_sqlite_paths(e.path(), from.to_str().unwrap(), to.to_str().unwrap());
            rewrite_path_keys(e.path(), from.to_str().unwrap(), to.to_str().unwrap());
        }
    }
}

/// Replaces `a` with `b` in every text column of every table of the database at `db`.
pub fn rewrite_sqlite_paths(db: &Path, a: &str, b: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    // Keys and the rows referring to them change one after the other (rusqlite's SQLite enforces
    // foreign keys by default, which would refuse the first of them).
    c.pragma_update(None, "foreign_keys", false).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in tables {
        let cols: Vec<(String, String)> = c
            .prepare(&format!("PRAGMA table_info(\"{t}\")"))
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (col, ty) in cols {
            if ty.is_empty() || ty.to_ascii_uppercase().contains("TEXT") {
                let sql =
                    format!("UPDATE \"{t}\" SET \"{col}\" = replace(\"{col}\", ?1, ?2) WHERE instr(\"{col}\", ?1) > 0");
                // Virtual tables (full-text indexes) may refuse; their text is not a path anyone reads.
                let _ = c.execute(&sql, [a, b]);
            }
        }
    }
}

/// Copies a tree, rewriting `from`'s path to `to`'s in every JSON file.
fn copy_tree(from: &Path, to: &Path) {
    let a = from.to_str().unwrap();
    let b = to.to_str().unwrap();
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        if rel.starts_with("repo") || rel.extension().is_some_and(|x| x == "log") {
            continue;
        }
        let dst = to.join(rel);
        let ft = e.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&dst).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else {
            let name = e.file_name().to_string_lossy();
            if name.ends_with(".json") || name.contains(".json.bak") {
                let text = fs::read_to_string(e.path()).unwrap();
                fs::write(&dst, text.replace(a, b)).unwrap();
            } else {
                fs::copy(e.path(), &dst).unwrap();
            }
            let mode = e.metadata().unwrap().permissions();
            fs::set_permissions(&dst, mode).unwrap();
        }
    }
}

/// Every regular file under `root`, relative, with its size.
pub fn file_sizes(root: &Path) -> std::collections::BTreeMap<PathBuf, u64> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(root).unwrap().to_path_buf(), e.metadata().unwrap().len()))
        .collect()
}

/// Checks a run of OpenClaw printed nothing that says the config is invalid.
pub fn config_valid(home: &Path) -> Run {
    openclaw(home).args(["config", "validate", "--json"]).run()
}

/// After [`rewrite_sqlite_paths`]: OpenClaw keys workspace state by the sha256 of the workspace's
/// path (`workspace_key`, `alias_key`), so a key of a path under `a` becomes the key of the same
/// path under `b`, in every text column of every table.
pub fn rewrite_path_keys(db: &Path, a: &str, b: &str) {
    use sha2::{Digest, Sha256};
    let key = |p: &str| hex::encode(Sha256::digest(p.as_bytes()));
    let c = rusqlite::Connection::open(db).unwrap();
    c.pragma_update(None, "foreign_keys", false).unwrap();
    let tables: Vec<String> = c
        .prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let columns = |t: &str| -> Vec<String> {
        c.prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([t], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    for t in &tables {
        for col in columns(t) {
            let sql = format!("SELECT DISTINCT \"{col}\" FROM \"{t}\" WHERE typeof(\"{col}\") = 'text' AND (\"{col}\" = ?1 OR substr(\"{col}\", 1, length(?1) + 1) = ?1 || '/')");
            let found: Vec<String> =
                c.prepare(&sql).unwrap().query_map([b], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            keys.extend(found.iter().map(|v| (key(&format!("{a}{}", &v[b.len()..])), key(v))));
        }
    }
    for t in &tables {
        for col in columns(t) {
            for (old, new) in &keys {
                let sql = format!("UPDATE \"{t}\" SET \"{col}\" = ?2 WHERE \"{col}\" = ?1");
                c.execute(&sql, [old, new]).unwrap();
            }
        }
    }
}
