//! Is an OpenClaw gateway running on the state dir an in-place restore is about to rewrite?
//!
//! The gateway holds sessions, SQLite databases and transcripts open and rewrites them while it
//! runs, so restoring under it would be overwritten (or would corrupt what it has open). It is
//! detected three ways, as OpenClaw itself recognises its gateway:
//!
//! - **Processes** (`/proc/<pid>/cmdline`), with OpenClaw's own rule
//!   (`src/infra/gateway-process-argv.ts`, `isGatewayArgv`): an argument `gateway` and an
//!   `openclaw` executable or entry script (`openclaw.mjs`, `.../openclaw/dist/index.js`, ...), or
//!   a process titled `openclaw-gateway` (the gateway's run loop sets `process.title` to that,
//!   which on Linux replaces the whole command line; `src/cli/gateway-cli/run-loop.ts`). A process
//!   counts only when it runs on this state dir: its environment (`/proc/<pid>/environ`:
//!   `OPENCLAW_STATE_DIR`, `OPENCLAW_PROFILE`, `OPENCLAW_HOME`, `HOME`) and `--profile`/`--dev`
//!   arguments resolve to it; a process whose environment cannot be read counts.
//! - **The gateway lock** (`src/infra/gateway-lock.ts`, docs `gateway/gateway-lock.md`): the
//!   gateway holds `<os.tmpdir()>/openclaw-<uid>/gateway.<sha256(configPath)[..8]>.lock`, JSON
//!   `{pid, createdAt, configPath, startTime}`. A lock counts when its `configPath` is this state
//!   dir's config (or lies inside the state dir) and its owner is alive (same start time, or a
//!   gateway command line when the lock has none), as OpenClaw decides a lock is not stale.
//! - **The port**: the gateway listens on `127.0.0.1:<port>`, port from `OPENCLAW_GATEWAY_PORT`,
//!   else `gateway.port` in the config, else 18789 (`resolveGatewayPort`, src/config/paths.ts).
//!   Something accepting connections there is taken for the gateway.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::{clean, Env};
use super::paths::state_dir;

/// OpenClaw's default gateway port.
pub const DEFAULT_PORT: u16 = 18789;

/// How a running gateway was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// A process whose command line is the gateway's.
    Process { pid: u32, cmdline: String },
    /// A live gateway lock for this config.
    Lock { path: PathBuf, pid: u32 },
    /// Something listening on the gateway's port.
    Port { port: u16 },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Process { pid, cmdline } => write!(f, "process {pid} `{cmdline}`"),
            Evidence::Lock { path, pid } => write!(f, "gateway lock {} held by process {pid}", path.display()),
            Evidence::Port { port } => write!(f, "something is listening on 127.0.0.1:{port}, the gateway port"),
        }
    }
}

/// What to look for: the state dir to be restored and the config that belongs to it.
#[derive(Clone, Debug)]
pub struct Probe {
    pub state_dir: PathBuf,
    /// The config file of that state dir (`OPENCLAW_CONFIG_PATH` or `<state>/openclaw.json`).
    pub config_path: PathBuf,
    /// Where process information is read (`/proc`).
    pub proc_root: PathBuf,
    /// The gateway lock folder (`<tmpdir>/openclaw-<uid>`).
    pub lock_dir: PathBuf,
    /// The gateway port; `None`: do not probe.
    pub port: Option<u16>,
}

impl Probe {
    /// The probe for `state_dir`, with the lock folder, config and port resolved from `env` (the
    /// environment of this process) as OpenClaw resolves them.
    pub fn new(env: &Env, state_dir: &Path, config_path: Option<&Path>) -> Probe {
        let config_path =
            config_path.map(Path::to_path_buf).unwrap_or_else(|| super::paths::config_path(env, state_dir));
        Probe {
            state_dir: state_dir.to_path_buf(),
            port: Some(gateway_port(env, state_dir, &config_path)),
            config_path,
            proc_root: PathBuf::from("/proc"),
            lock_dir: lock_dir(env),
        }
    }

    /// Everything that shows a gateway running on this state dir; empty when none does.
    pub fn detect(&self) -> Vec<Evidence> {
        let mut out = scan_processes(&self.proc_root, &self.state_dir);
        out.extend(scan_locks(&self.lock_dir, &self.proc_root, &self.state_dir, &self.config_path));
        if let Some(port) = self.port {
            if port_open(port) {
                out.push(Evidence::Port { port });
            }
        }
        out
    }
}

/// Node's `os.tmpdir()` (`TMPDIR`, `TMP`, `TEMP`, else `/tmp`, trailing `/` removed) joined with
/// `openclaw-<uid>`: OpenClaw's `resolveGatewayLockDir`.
pub fn lock_dir(env: &Env) -> PathBuf {
    let tmp = ["TMPDIR", "TMP", "TEMP"]
        .iter()
        .find_map(|k| env.get(k))
        .map(|t| {
            let t = t.trim_end_matches('/');
            if t.is_empty() {
                "/".to_string()
            } else {
                t.to_string()
            }
        })
        .unwrap_or_else(|| "/tmp".into());
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(tmp).join(format!("openclaw-{uid}"))
}

/// The gateway port: `OPENCLAW_GATEWAY_PORT` (legacy `CLAWDBOT_GATEWAY_PORT`), else `gateway.port`
/// in the config, else 18789.
pub fn gateway_port(env: &Env, state_dir: &Path, config_path: &Path) -> u16 {
    for k in ["OPENCLAW_GATEWAY_PORT", "CLAWDBOT_GATEWAY_PORT"] {
        if let Some(p) = env.get_trimmed(k).and_then(leading_int) {
            if p > 0 && p <= u16::MAX as u64 {
                return p as u16;
            }
        }
    }
    if let Ok(cfg) = super::config::load_from(env, state_dir, config_path) {
        if let Some(p) = cfg.get("gateway.port").and_then(|v| v.as_f64()) {
            if p >= 1.0 && p <= u16::MAX as f64 {
                return p as u16;
            }
        }
    }
    DEFAULT_PORT
}

/// `Number.parseInt`: the leading digits.
fn leading_int(s: &str) -> Option<u64> {
    let d: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    d.parse().ok()
}

/// True when something accepts a TCP connection on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Subcommands of `openclaw gateway` that talk about the gateway without being it.
const NOT_THE_GATEWAY: &[&str] = &["status", "stop", "probe", "install", "uninstall", "health", "call", "discover"];

/// Entry scripts OpenClaw runs from (OpenClaw's own list); the generic ones count only in a path
/// that names openclaw.
const ENTRIES: &[&str] = &["dist/index.js", "dist/entry.js", "scripts/run-node.mjs", "src/entry.ts", "src/index.ts"];

/// Whether a command line (argv) is an OpenClaw gateway: OpenClaw's `isGatewayArgv`, with the
/// `openclaw-gateway` process title and without the gateway's own short-lived subcommands.
pub fn is_gateway_argv(args: &[String]) -> bool {
    let norm: Vec<String> = args.iter().map(|a| a.trim().replace('\\', "/").to_lowercase()).collect();
    let Some(exe) = norm.first() else { return false };
    let exe = exe.trim_end_matches(".exe").trim_end_matches(".cmd").trim_end_matches(".bat");
    let base = exe.rsplit('/').next().unwrap_or(exe);
    if base == "openclaw-gateway" {
        return true;
    }
    let Some(pos) = norm.iter().skip(1).position(|a| a == "gateway").map(|p| p + 1) else {
        return false;
    };
    if norm.get(pos + 1).is_some_and(|next| NOT_THE_GATEWAY.contains(&next.as_str())) {
        return false;
    }
    base == "openclaw"
        || norm.iter().any(|a| {
            a.ends_with("/openclaw.mjs")
                || a == "openclaw.mjs"
                || (a.contains("openclaw") && ENTRIES.iter().any(|e| a.ends_with(e)))
        })
}

/// A `/proc/<pid>/cmdline`, split on NULs.
fn read_cmdline(dir: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(dir.join("cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .map(|s| String::from_utf8_lossy(s).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// Where a gateway process keeps its state, as far as can be told from outside.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// Its environment cannot be read.
    Unknown,
    /// This state dir.
    Dir(PathBuf),
    /// The default state dir of this home, or a profile of it (`--profile` cannot be seen once
    /// the gateway has replaced its command line with its title).
    Home { home: PathBuf, default: PathBuf },
}

/// The `--profile NAME` / `--profile=NAME` / `--dev` of an OpenClaw command line.
fn profile_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--dev" {
            return Some("dev".into());
        }
        if a == "--profile" {
            return it.next().cloned();
        }
        if let Some(p) = a.strip_prefix("--profile=") {
            return Some(p.to_string());
        }
    }
    None
}

fn process_scope(dir: &Path, args: &[String]) -> Scope {
    let Ok(raw) = std::fs::read(dir.join("environ")) else { return Scope::Unknown };
    let pairs = raw.split(|&b| b == 0).filter_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        let (k, v) = kv.split_once('=')?;
        Some((k.to_string(), v.to_string()))
    });
    let mut env = Env::from_pairs(pairs);
    env.cwd = std::fs::read_link(dir.join("cwd")).ok();
    if env.get_trimmed("OPENCLAW_STATE_DIR").is_some() || env.get_trimmed("CLAWDBOT_STATE_DIR").is_some() {
        return Scope::Dir(state_dir(&env));
    }
    if let Some(p) = profile_arg(args) {
        env = env.with("OPENCLAW_PROFILE", p);
        return Scope::Dir(state_dir(&env));
    }
    if env.get_trimmed("OPENCLAW_PROFILE").is_some() || args.len() > 1 {
        return Scope::Dir(state_dir(&env));
    }
    Scope::Home { home: env.home(), default: state_dir(&env) }
}

fn same_path(a: &Path, b: &Path) -> bool {
    if clean(a) == clean(b) {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn in_scope(scope: &Scope, state: &Path) -> bool {
    match scope {
        Scope::Unknown => true,
        Scope::Dir(d) => same_path(d, state),
        Scope::Home { home, default } => {
            same_path(default, state)
                || (state.parent().is_some_and(|p| same_path(p, home))
                    && state.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".openclaw")))
        }
    }
}

/// Gateway processes (other than this one) running on `state`.
pub fn scan_processes(proc_root: &Path, state: &Path) -> Vec<Evidence> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(proc_root) else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let dir = e.path();
        let Some(args) = read_cmdline(&dir) else { continue };
        if !is_gateway_argv(&args) {
            continue;
        }
        if in_scope(&process_scope(&dir, &args), state) {
            out.push(Evidence::Process { pid, cmdline: args.join(" ") });
        }
    }
    out.sort_by_key(|e| match e {
        Evidence::Process { pid, .. } => *pid,
        _ => 0,
    });
    out
}

/// The start time (clock ticks since boot) of a process: field 22 of `/proc/<pid>/stat`.
pub fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let raw = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let rest = &raw[raw.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Live gateway locks in `lock_dir` for this state dir's config: OpenClaw's own staleness rule
/// (owner alive and, when the lock records it, with the same start time; else with a gateway
/// command line).
pub fn scan_locks(lock_dir: &Path, proc_root: &Path, state: &Path, config_path: &Path) -> Vec<Evidence> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(lock_dir) else { return out };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("gateway.") && name.ends_with(".lock")) {
            continue;
        }
        let path = e.path();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let (Some(pid), Some(cfg)) =
            (v.get("pid").and_then(|p| p.as_u64()), v.get("configPath").and_then(|c| c.as_str()))
        else {
            continue;
        };
        let cfg = Path::new(cfg);
        if !(same_path(cfg, config_path) || clean(cfg).starts_with(clean(state))) {
            continue;
        }
        let pid = pid as u32;
        if !pid_alive(pid) {
            continue;
        }
        let alive = match v.get("startTime").and_then(|s| s.as_u64()) {
            Some(t) => start_time(proc_root, pid).is_none_or(|now| now == t),
            None => read_cmdline(&proc_root.join(pid.to_string())).is_none_or(|a| is_gateway_argv(&a)),
        };
        if alive {
            out.push(Evidence::Lock { path, pid });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn gateway_command_lines() {
        for yes in [
            "openclaw gateway",
            "/usr/local/bin/openclaw gateway run --port 18789",
            "openclaw --profile work gateway",
            "openclaw-gateway",
            "/usr/bin/node /usr/lib/node_modules/openclaw/openclaw.mjs gateway --port 18789",
            "node /home/u/src/openclaw/dist/index.js gateway",
            "C:\\Program\\openclaw.exe gateway",
        ] {
            assert!(is_gateway_argv(&argv(yes)), "{yes}");
        }
        for no in [
            "openclaw",
            "openclaw status",
            "openclaw gateway status",
            "openclaw gateway stop",
            "vim /home/u/.openclaw/gateway.md",
            "node dist/index.js gateway",
            "e2e restore_openclaw::gateway",
            "clawback restore latest --only agent:gateway",
            "grep openclaw gateway",
        ] {
            assert!(!is_gateway_argv(&argv(no)), "{no}");
        }
    }

    #[test]
    fn profile_arguments() {
        assert_eq!(profile_arg(&argv("openclaw --profile work gateway")), Some("work".into()));
        assert_eq!(profile_arg(&argv("openclaw --profile=x gateway")), Some("x".into()));
        assert_eq!(profile_arg(&argv("openclaw --dev gateway")), Some("dev".into()));
        assert_eq!(profile_arg(&argv("openclaw gateway")), None);
    }

    #[test]
    fn scope_matches_the_state_dir() {
        let home = PathBuf::from("/home/u");
        let s = Scope::Home { home: home.clone(), default: home.join(".openclaw") };
        assert!(in_scope(&s, &home.join(".openclaw")));
        assert!(in_scope(&s, &home.join(".openclaw-work")));
        assert!(!in_scope(&s, Path::new("/srv/state")));
        assert!(in_scope(&Scope::Unknown, Path::new("/srv/state")));
        assert!(in_scope(&Scope::Dir("/srv/state/".into()), Path::new("/srv/state")));
        assert!(!in_scope(&Scope::Dir("/srv/other".into()), Path::new("/srv/state")));
    }

    fn script(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::copy("/bin/sh", &p).unwrap();
        p
    }

    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Waits until the child has exec'd (its cmdline shows the program we started).
    fn wait_exec(pid: u32, want: &str) {
        for _ in 0..200 {
            if let Some(a) = read_cmdline(&Path::new("/proc").join(pid.to_string())) {
                if a.first().is_some_and(|a0| a0.ends_with(want)) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("process {pid} never showed {want}");
    }

    #[test]
    fn finds_a_gateway_process_on_this_state_dir_only() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join("state");
        std::fs::create_dir(&state).unwrap();
        // `./openclaw gateway run`: a copy of sh named openclaw, running a script named gateway.
        let sh = script(t.path(), "openclaw");
        std::fs::write(t.path().join("gateway"), "sleep 30; true\n").unwrap();
        let child = Command::new(&sh)
            .args(["gateway", "run"])
            .current_dir(t.path())
            .env_clear()
            .env("OPENCLAW_STATE_DIR", &state)
            .spawn()
            .unwrap();
        let child = Kill(child);
        wait_exec(child.0.id(), "/openclaw");
        let found = scan_processes(Path::new("/proc"), &state);
        assert!(found.iter().any(|e| matches!(e, Evidence::Process { pid, .. } if *pid == child.0.id())), "{found:?}");
        // Another state dir: not this gateway.
        let other = scan_processes(Path::new("/proc"), &t.path().join("elsewhere"));
        assert!(!other.iter().any(|e| matches!(e, Evidence::Process { pid, .. } if *pid == child.0.id())));
    }

    #[test]
    fn finds_a_live_lock_for_this_config() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join("state");
        let cfg = state.join("openclaw.json");
        let locks = t.path().join("locks");
        std::fs::create_dir_all(&locks).unwrap();
        let child = Kill(Command::new("sleep").arg("30").spawn().unwrap());
        let pid = child.0.id();
        let st = start_time(Path::new("/proc"), pid).unwrap();
        let write = |name: &str, pid: u32, cfg: &Path, st: u64| {
            let body = serde_json::json!({"pid": pid, "createdAt": "2026-01-01T00:00:00Z", "configPath": cfg, "startTime": st});
            std::fs::write(locks.join(name), body.to_string()).unwrap();
        };
        write("gateway.aaaaaaaa.lock", pid, &cfg, st);
        let found = scan_locks(&locks, Path::new("/proc"), &state, &cfg);
        assert_eq!(found, vec![Evidence::Lock { path: locks.join("gateway.aaaaaaaa.lock"), pid }]);
        // Another config's lock, a reused pid (other start time), a dead owner: none count.
        std::fs::remove_file(locks.join("gateway.aaaaaaaa.lock")).unwrap();
        write("gateway.bbbbbbbb.lock", pid, Path::new("/elsewhere/openclaw.json"), st);
        write("gateway.cccccccc.lock", pid, &cfg, st + 1);
        write("gateway.dddddddd.lock", 0x7fff_fff0, &cfg, st);
        assert_eq!(scan_locks(&locks, Path::new("/proc"), &state, &cfg), vec![]);
    }

    #[test]
    fn port_from_env_then_config_then_default() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("openclaw.json");
        let env = Env::from_pairs([("HOME", "/nonexistent")]);
        assert_eq!(gateway_port(&env, t.path(), &cfg), DEFAULT_PORT);
        std::fs::write(&cfg, "{ gateway: { port: 19001 } }").unwrap();
        assert_eq!(gateway_port(&env, t.path(), &cfg), 19001);
        let env = env.with("OPENCLAW_GATEWAY_PORT", "19002");
        assert_eq!(gateway_port(&env, t.path(), &cfg), 19002);
    }

    #[test]
    fn port_probe_sees_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(port_open(port));
        drop(l);
        assert!(!port_open(port));
    }

    #[test]
    fn lock_dir_follows_tmpdir() {
        let uid = unsafe { libc::getuid() };
        let env = Env::from_pairs([("TMPDIR", "/var/tmp/x/")]);
        assert_eq!(lock_dir(&env), PathBuf::from(format!("/var/tmp/x/openclaw-{uid}")));
        assert_eq!(lock_dir(&Env::default()), PathBuf::from(format!("/tmp/openclaw-{uid}")));
    }
}
