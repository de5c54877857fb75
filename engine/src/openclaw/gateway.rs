//! Is an OpenClaw gateway running on the state dir an in-place restore is about to rewrite?
//!
//! The gateway holds sessions, SQLite databases and transcripts open and rewrites them while it
//! runs, so restoring under it would be overwritten (or would corrupt what it has open). It is
//! detected as OpenClaw 2026.9.6 itself recognises its gateway, most precise first:
//!
//! - **The gateway locks** (src/infra/gateway-lock.ts, docs/gateway/gateway-lock.md): a gateway
//!   holds `gateway.state.lock` (the state ownership lock) and `gateway.<sha256(configPath)[..8]>.lock`
//!   (the config lock) in `<state dir, symlinks resolved>/tmp/openclaw-<uid>/` ([`lock_dir`]), JSON
//!   `{pid, ownerId, createdAt, configPath, stateDir, port, startTime, role?}`, and keeps an exclusive
//!   SQLite transaction open on `<lock>.sqlite` beside each, which the kernel drops when the process
//!   dies. A lock counts when OpenClaw would not reclaim it (`shouldReclaimGatewayLock`): its owner
//!   is alive (not a zombie) and has the recorded start time (`/proc/<pid>/stat` field 22), or,
//!   without one, a gateway command line; a lock without a pid counts for 30 s. A coordinator
//!   held by another process counts too (it also covers a gateway in another pid namespace, a
//!   container sharing the state dir, whose pid means nothing here). Binaries from before the
//!   state-local layout kept the config lock in `<os.tmpdir()>/openclaw-<uid>/`
//!   ([`legacy_lock_dir`]); a lock there counts when its `configPath` or `stateDir` is this one.
//! - **Processes** (`/proc/<pid>/cmdline`), with OpenClaw's own rule
//!   (`src/infra/gateway-process-argv.ts`, `isGatewayArgv`): an argument `gateway` and an
//!   `openclaw` executable or entry script (`openclaw.mjs`, `.../openclaw/dist/index.js`, ...), or
//!   a process titled `openclaw-gateway` (the gateway's run loop sets `process.title` to that,
//!   which on Linux replaces the whole command line; `src/cli/gateway-cli/run-loop.ts`). A process
//!   counts only when it runs on this state dir: its environment (`/proc/<pid>/environ`:
//!   `OPENCLAW_STATE_DIR`, `OPENCLAW_HOME`, `HOME`) and `--profile`/`--dev` arguments resolve to
//!   it; a process whose environment cannot be read counts.
//! - **The port**: the gateway listens on `127.0.0.1:<port>`, port from `OPENCLAW_GATEWAY_PORT`,
//!   else `gateway.port` in the config, else one derived from `OPENCLAW_PROFILE`, else 18789
//!   (`resolveGatewayPort`, src/config/paths.ts). Something accepting connections there is taken
//!   for the gateway.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::env::{clean, Env};
use super::paths::state_dir;

/// OpenClaw's default gateway port.
pub const DEFAULT_PORT: u16 = 18789;
/// How long a lock file without an owner pid counts as held (`DEFAULT_STALE_MS`).
const STALE_LOCK: Duration = Duration::from_secs(30);

/// How a running gateway was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// A gateway lock OpenClaw would not reclaim. `pid` is its owner, when known; `role` is set
    /// for locks other OpenClaw commands take on the state (`sqlite-maintenance` for `openclaw
    /// doctor`, `agent-embedded`, `skill-workshop-apply`).
    Lock { path: PathBuf, pid: Option<u32>, role: Option<String> },
    /// A process whose command line is the gateway's.
    Process { pid: u32, cmdline: String },
    /// Something listening on the gateway's port.
    Port { port: u16 },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Lock { path, pid, role } => {
                match role {
                    Some(r) => write!(f, "OpenClaw state lock {} ({r})", path.display())?,
                    None => write!(f, "gateway lock {}", path.display())?,
                }
                match pid {
                    Some(pid) => write!(f, " held by process {pid}"),
                    None => write!(f, " held by a running process"),
                }
            }
            Evidence::Process { pid, cmdline } => write!(f, "process {pid} `{cmdline}`"),
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
    /// The gateway lock folder (`<state>/tmp/openclaw-<uid>`).
    pub lock_dir: PathBuf,
    /// Where OpenClaw binaries older than the state-local layout kept the config lock
    /// (`<tmpdir>/openclaw-<uid>`).
    pub legacy_lock_dir: PathBuf,
    /// The gateway port; `None`: do not probe.
    pub port: Option<u16>,
}

impl Probe {
    /// The probe for `state_dir`, with the lock folders, config and port resolved from `env` (the
    /// environment of this process) as OpenClaw resolves them.
    pub fn new(env: &Env, state_dir: &Path, config_path: Option<&Path>) -> Probe {
        let config_path =
            config_path.map(Path::to_path_buf).unwrap_or_else(|| super::paths::config_path(env, state_dir));
        Probe {
            state_dir: state_dir.to_path_buf(),
            port: Some(gateway_port(env, state_dir, &config_path)),
            config_path,
            proc_root: PathBuf::from("/proc"),
            lock_dir: lock_dir(state_dir),
            legacy_lock_dir: legacy_lock_dir(env),
        }
    }

    /// Everything that shows a gateway running on this state dir, locks first; empty when none
    /// does.
    pub fn detect(&self) -> Vec<Evidence> {
        let mut out = scan_locks(&self.lock_dir, &self.proc_root);
        if clean(&self.legacy_lock_dir) != clean(&self.lock_dir) {
            out.extend(scan_legacy_locks(&self.legacy_lock_dir, &self.proc_root, &self.state_dir, &self.config_path));
        }
        out.extend(scan_processes(&self.proc_root, &self.state_dir));
        if let Some(port) = self.port {
            if port_open(port) {
                out.push(Evidence::Port { port });
            }
        }
        out
    }
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// `path`, symlinks resolved through its deepest existing ancestor, the rest kept as written
/// (`resolveIdentityPathViaExistingAncestorSync`).
fn resolve_via_existing_ancestor(path: &Path) -> PathBuf {
    let path = clean(path);
    let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
    let mut cursor: &Path = &path;
    loop {
        if let Ok(real) = std::fs::canonicalize(cursor) {
            return missing.iter().rev().fold(real, |p, seg| p.join(seg));
        }
        match (cursor.parent(), cursor.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                cursor = parent;
            }
            _ => return path.clone(),
        }
    }
}

/// The gateway lock folder of a state dir, as 2026.9.6 resolves it (`resolveGatewayLockDir`):
/// `<state dir, symlinks resolved>/tmp/openclaw-<uid>`.
pub fn lock_dir(state_dir: &Path) -> PathBuf {
    resolve_via_existing_ancestor(state_dir).join("tmp").join(format!("openclaw-{}", uid()))
}

/// Where OpenClaw binaries before the state-local lock layout kept their gateway lock: Node's
/// `os.tmpdir()` (`TMPDIR`, `TMP`, `TEMP`, else `/tmp`, trailing `/` removed) joined with
/// `openclaw-<uid>`.
pub fn legacy_lock_dir(env: &Env) -> PathBuf {
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
    PathBuf::from(tmp).join(format!("openclaw-{}", uid()))
}

/// The config lock's file name for a config path: `gateway.<first 8 hex of sha256(path)>.lock`.
pub fn config_lock_name(config_path: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(config_path.as_os_str().as_encoded_bytes());
    format!("gateway.{}.lock", &hex::encode(digest)[..8])
}

/// The gateway port (`resolveGatewayPort`): `OPENCLAW_GATEWAY_PORT` (a port, `host:port` or
/// `[v6]:port`), else a positive `gateway.port` in the config, else, with a named
/// `OPENCLAW_PROFILE`, `20000 + fnv1a(profile) % 40000`, else 18789.
pub fn gateway_port(env: &Env, state_dir: &Path, config_path: &Path) -> u16 {
    if let Some(p) = env.get_trimmed("OPENCLAW_GATEWAY_PORT").and_then(parse_port_env) {
        return p;
    }
    if let Ok(cfg) = super::config::load_from(env, state_dir, config_path) {
        if let Some(p) = cfg.get("gateway.port").and_then(|v| v.as_f64()) {
            if p > 0.0 && p <= u16::MAX as f64 && p.fract() == 0.0 {
                return p as u16;
            }
        }
    }
    match super::profile::named_profile(env.get("OPENCLAW_PROFILE")) {
        Some(profile) => {
            let mut hash: u32 = 2166136261;
            for b in profile.bytes() {
                hash = (hash ^ b as u32).wrapping_mul(16777619);
            }
            (20000 + hash % 40000) as u16
        }
        None => DEFAULT_PORT,
    }
}

/// `parseGatewayPortEnvValue`: digits, `host:port` (one colon) or `[v6]:port`; 1..=65535.
fn parse_port_env(raw: &str) -> Option<u16> {
    let digits = |s: &str| -> Option<u16> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u32>().ok().filter(|p| (1..=65535).contains(p)).map(|p| p as u16)
    };
    if let Some(p) = digits(raw) {
        return Some(p);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return (!host.is_empty() && !host.contains(']')).then(|| digits(port)).flatten();
    }
    let first = raw.find(':')?;
    if first == 0 || Some(first) != raw.rfind(':') {
        return None;
    }
    digits(&raw[first + 1..])
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

/// Entry scripts of OpenClaw (`ENTRY_CANDIDATES`), as OpenClaw's own owner check matches them.
const OPENCLAW_ENTRIES: &[&str] =
    &["dist/index.js", "dist/entry.js", "openclaw.mjs", "scripts/run-node.mjs", "src/entry.ts", "src/index.ts"];

fn normalize_args(args: &[String]) -> Vec<String> {
    args.iter().map(|a| a.replace('\\', "/").to_lowercase()).collect()
}

fn exe_of(norm: &[String]) -> String {
    let exe = norm.first().map(String::as_str).unwrap_or("");
    exe.strip_suffix(".exe")
        .or_else(|| exe.strip_suffix(".cmd"))
        .or_else(|| exe.strip_suffix(".bat"))
        .unwrap_or(exe)
        .into()
}

/// OpenClaw's `isOpenClawArgv`: an entry script among the arguments, or an `openclaw` executable.
fn openclaw_argv(norm: &[String]) -> bool {
    let exe = exe_of(norm);
    norm.iter().any(|a| OPENCLAW_ENTRIES.iter().any(|e| a.ends_with(e)))
        || exe.ends_with("/openclaw")
        || exe == "openclaw"
}

/// OpenClaw's `isOpenClawCommandArgv(args, command)`.
fn openclaw_command_argv(norm: &[String], command: &str) -> bool {
    norm.iter().any(|a| a == command) && openclaw_argv(norm)
}

/// OpenClaw's `isGatewayArgv(args, {allowGatewayBinary: true})`, the rule its lock check uses.
fn lock_owner_is_gateway(args: &[String]) -> bool {
    let norm = normalize_args(args);
    let exe = exe_of(&norm);
    openclaw_command_argv(&norm, "gateway") || exe.ends_with("/openclaw-gateway") || exe == "openclaw-gateway"
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

/// The profile an OpenClaw command line selects (`parseCliProfileArgs`): `--profile NAME`,
/// `--profile=NAME`, or `--dev` before the command (after `gateway` it is the gateway's own flag).
fn profile_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter().skip(1);
    let mut seen_gateway = false;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--dev" && !seen_gateway {
            return Some("dev".into());
        }
        if a == "--profile" {
            return it.next().cloned();
        }
        if let Some(p) = a.strip_prefix("--profile=") {
            return Some(p.to_string());
        }
        seen_gateway |= a == "gateway";
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
    if let Some(p) = profile_arg(args) {
        // (OpenClaw refuses to start with a bad profile name: then the environment's own.)
        let env = env.clone().with_profile(&p).unwrap_or(env);
        return Scope::Dir(state_dir(&env));
    }
    // The environment a process started with is all /proc shows: a `--profile` lost with the
    // command line (to the process title) may have moved it to `~/.openclaw-<name>`.
    if env.get_trimmed("OPENCLAW_STATE_DIR").is_some() || args.len() > 1 {
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

/// The start time (clock ticks since boot) of a process: field 22 of `/proc/<pid>/stat`, what
/// OpenClaw records as a lock's `startTime` on Linux.
pub fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let raw = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let rest = &raw[raw.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// OpenClaw's `isPidAlive`: the process exists (or exists under another user) and is not a zombie
/// whose threads have all exited.
fn pid_alive(proc_root: &Path, pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    let status = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).unwrap_or_default();
    let zombie = status.lines().any(|l| l.strip_prefix("State:").is_some_and(|v| v.trim_start().starts_with('Z')))
        && status.lines().any(|l| l.strip_prefix("Threads:").is_some_and(|v| v.trim() == "1"));
    !zombie
}

/// A lock file's JSON, as OpenClaw's `LockPayloadSchema` accepts it (`pid`, `createdAt` and
/// `configPath` required).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockPayload {
    pid: f64,
    #[allow(dead_code)]
    created_at: String,
    config_path: String,
    #[serde(default)]
    state_dir: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    start_time: Option<f64>,
}

/// The owner of a lock, as OpenClaw's `resolveGatewayOwnerStatus` judges it.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    Alive,
    Dead,
    Unknown,
}

fn owner_status(proc_root: &Path, p: &LockPayload) -> Owner {
    let pid = p.pid;
    let valid = pid.fract() == 0.0 && pid > 0.0 && pid <= i32::MAX as f64;
    if !(valid && pid_alive(proc_root, pid as u32)) {
        return Owner::Dead;
    }
    let pid = pid as u32;
    if let Some(recorded) = p.start_time.filter(|t| t.is_finite()) {
        if let Some(now) = start_time(proc_root, pid) {
            return if now as f64 == recorded { Owner::Alive } else { Owner::Dead };
        }
    }
    let Some(args) = read_cmdline(&proc_root.join(pid.to_string())) else { return Owner::Unknown };
    let norm = normalize_args(&args);
    let alive = match p.role.as_deref() {
        Some("agent-embedded") => openclaw_argv(&norm),
        Some("sqlite-maintenance") => openclaw_command_argv(&norm, "doctor"),
        Some("skill-workshop-apply") => openclaw_command_argv(&norm, "skills"),
        _ => lock_owner_is_gateway(&args),
    };
    if alive {
        Owner::Alive
    } else {
        Owner::Dead
    }
}

/// Whether another process holds a write lock on the SQLite coordinator `<lock>.sqlite` (the
/// gateway keeps `BEGIN EXCLUSIVE` open on it while it owns the lock), and its pid as the kernel
/// reports it (0, so `None`, when it runs in another pid namespace). The lock is only tested
/// (`F_GETLK` over SQLite's pending, reserved and shared bytes), never taken.
fn coordinator_holder(path: &Path) -> Option<Option<u32>> {
    use std::os::unix::io::AsRawFd;
    // SQLite's lock bytes (os_unix.c): PENDING_BYTE 0x40000000, then RESERVED, then 510 shared.
    const PENDING_BYTE: libc::off_t = 0x4000_0000;
    let f = std::fs::File::open(path).ok()?;
    // SAFETY: an all-zero flock is a valid value; fcntl(F_GETLK) only writes into it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_RDLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = PENDING_BYTE;
    fl.l_len = 512;
    // SAFETY: the descriptor is open for the duration of the call and `fl` is a valid flock.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if r != 0 || fl.l_type == libc::F_UNLCK as libc::c_short {
        return None;
    }
    Some((fl.l_pid > 0).then_some(fl.l_pid as u32))
}

/// One lock file: held or not, by whom. `belongs` filters payloads in a folder shared by every
/// state dir (the legacy one), where a lock without a readable payload says nothing.
fn check_lock(path: &Path, proc_root: &Path, belongs: Option<&dyn Fn(&LockPayload) -> bool>) -> Option<Evidence> {
    let coordinator = coordinator_holder(&PathBuf::from(format!("{}.sqlite", path.display())));
    let text = std::fs::read_to_string(path).ok();
    let payload = text.as_deref().and_then(|t| serde_json::from_str::<LockPayload>(t).ok());
    let evidence = |pid: Option<u32>, role: Option<String>| Evidence::Lock { path: path.to_path_buf(), pid, role };
    match &payload {
        Some(p) if belongs.is_some_and(|b| !b(p)) => None,
        None if belongs.is_some() => None,
        Some(p) => {
            let role = p.role.clone().filter(|r| r != "gateway");
            match owner_status(proc_root, p) {
                Owner::Dead => coordinator.map(|pid| evidence(pid, role)),
                Owner::Alive | Owner::Unknown => Some(evidence(Some(p.pid as u32), role)),
            }
        }
        // No readable payload: held while fresh (OpenClaw's stale rule), or while a process
        // holds its coordinator.
        None => {
            if let Some(pid) = coordinator {
                return Some(evidence(pid, None));
            }
            let fresh = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age <= STALE_LOCK);
            (text.is_some() && fresh).then(|| evidence(None, None))
        }
    }
}

fn lock_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("gateway.") && n.ends_with(".lock")
        })
        .map(|e| e.path())
        .collect();
    // The state ownership lock first: every gateway holds it.
    out.sort_by_key(|p| (p.file_name().is_none_or(|n| n != "gateway.state.lock"), p.clone()));
    out
}

/// Held gateway locks in a state dir's lock folder ([`lock_dir`]). Every lock there belongs to
/// that state dir: the state ownership lock and the config lock of whichever config path its
/// gateway was started with.
pub fn scan_locks(lock_dir: &Path, proc_root: &Path) -> Vec<Evidence> {
    lock_files(lock_dir).iter().filter_map(|p| check_lock(p, proc_root, None)).collect()
}

/// Held gateway locks in the folder older OpenClaw binaries shared between state dirs
/// ([`legacy_lock_dir`]): those whose `configPath` is this state dir's config (or lies in the
/// state dir) or whose `stateDir` is it.
pub fn scan_legacy_locks(dir: &Path, proc_root: &Path, state: &Path, config_path: &Path) -> Vec<Evidence> {
    let belongs = |p: &LockPayload| {
        let cfg = Path::new(&p.config_path);
        same_path(cfg, config_path)
            || clean(cfg).starts_with(clean(state))
            || p.state_dir.as_deref().is_some_and(|s| same_path(Path::new(s), state))
    };
    lock_files(dir).iter().filter_map(|p| check_lock(p, proc_root, Some(&belongs))).collect()
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
        // After `gateway`, --dev is the gateway's own flag.
        assert_eq!(profile_arg(&argv("openclaw gateway --dev")), None);
        assert_eq!(profile_arg(&argv("openclaw gateway")), None);
    }

    #[test]
    fn lock_owner_rule_is_openclaws() {
        assert!(lock_owner_is_gateway(&argv("openclaw-gateway")));
        assert!(lock_owner_is_gateway(&argv("node /x/openclaw.mjs gateway run")));
        // OpenClaw's own rule takes any entry script, and any `gateway` argument.
        assert!(lock_owner_is_gateway(&argv("node dist/index.js gateway")));
        assert!(lock_owner_is_gateway(&argv("openclaw gateway status")));
        assert!(!lock_owner_is_gateway(&argv("sleep 100")));
        assert!(!lock_owner_is_gateway(&argv("openclaw status")));
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

    /// `sh` under another name: a link, so no descriptor of this process ever writes an executable that
    /// a test thread forking at that moment could inherit (exec would fail with "Text file busy").
    fn script(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::os::unix::fs::symlink("/bin/sh", &p).unwrap();
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

    fn write_lock(path: &Path, body: serde_json::Value) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // OpenClaw pads its lock files with whitespace after the JSON.
        std::fs::write(path, format!("{}\n \t \t\n", serde_json::to_string_pretty(&body).unwrap())).unwrap();
    }

    #[test]
    fn finds_held_locks_in_the_state_lock_dir() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join("state");
        let cfg = state.join("openclaw.json");
        let locks = lock_dir(&state);
        assert_eq!(locks, t.path().canonicalize().unwrap().join(format!("state/tmp/openclaw-{}", uid())));
        let child = Kill(Command::new("sleep").arg("30").spawn().unwrap());
        let pid = child.0.id();
        let st = start_time(Path::new("/proc"), pid).unwrap();
        let body = |pid: u32, st: u64| {
            serde_json::json!({"pid": pid, "ownerId": "x", "createdAt": "2026-01-01T00:00:00Z", "configPath": cfg,
                "stateDir": state, "port": 1234, "startTime": st})
        };
        let state_lock = locks.join("gateway.state.lock");
        let config_lock = locks.join(config_lock_name(&cfg));
        write_lock(&config_lock, body(pid, st));
        write_lock(&state_lock, body(pid, st));
        let found = scan_locks(&locks, Path::new("/proc"));
        assert_eq!(
            found,
            vec![
                Evidence::Lock { path: state_lock.clone(), pid: Some(pid), role: None },
                Evidence::Lock { path: config_lock.clone(), pid: Some(pid), role: None },
            ]
        );
        assert!(found[0].to_string().contains(&format!("held by process {pid}")), "{}", found[0]);
        // A reused pid (another start time) or a dead owner: stale, as OpenClaw judges it.
        write_lock(&state_lock, body(pid, st + 1));
        write_lock(&config_lock, body(0x7fff_fff0, st));
        assert_eq!(scan_locks(&locks, Path::new("/proc")), vec![]);
        // Another OpenClaw command holding the state (`openclaw doctor`): named by its role.
        let mut b = body(pid, st);
        b["role"] = "sqlite-maintenance".into();
        write_lock(&state_lock, b);
        let found = scan_locks(&locks, Path::new("/proc"));
        assert_eq!(
            found,
            vec![Evidence::Lock { path: state_lock.clone(), pid: Some(pid), role: Some("sqlite-maintenance".into()) }]
        );
        // A lock without a readable payload counts while it is fresh.
        std::fs::write(&state_lock, "{").unwrap();
        assert_eq!(
            scan_locks(&locks, Path::new("/proc")),
            vec![Evidence::Lock { path: state_lock.clone(), pid: None, role: None }]
        );
        let old = filetime::FileTime::from_unix_time(1_700_000_000, 0);
        filetime::set_file_mtime(&state_lock, old).unwrap();
        assert_eq!(scan_locks(&locks, Path::new("/proc")), vec![]);
    }

    #[test]
    fn a_held_sqlite_coordinator_counts_whatever_the_payload_says() {
        let t = tempfile::tempdir().unwrap();
        let locks = t.path().join("locks");
        let lock = locks.join("gateway.state.lock");
        // A payload whose owner is gone (a pid from another pid namespace, say).
        write_lock(&lock, serde_json::json!({"pid": 0x7fff_fff0u32, "createdAt": "x", "configPath": "/c"}));
        let coord = PathBuf::from(format!("{}.sqlite", lock.display()));
        assert_eq!(scan_locks(&locks, Path::new("/proc")), vec![]);
        // Another process write-locks SQLite's lock bytes, as the gateway's `BEGIN EXCLUSIVE` on
        // the coordinator does (a forked child: a process's own locks never conflict with it).
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&coord).unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into `fds`. The child only makes async-signal-safe
        // calls (fcntl, write, pause, _exit) before it is killed.
        let child = unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                use std::os::unix::io::AsRawFd;
                let mut fl: libc::flock = std::mem::zeroed();
                fl.l_type = libc::F_WRLCK as libc::c_short;
                fl.l_whence = libc::SEEK_SET as libc::c_short;
                fl.l_start = 0x4000_0000 + 2;
                fl.l_len = 510;
                let ok = libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) == 0;
                libc::write(fds[1], [ok as u8].as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
            let mut b = [0u8; 1];
            assert_eq!(libc::read(fds[0], b.as_mut_ptr().cast(), 1), 1);
            assert_eq!(b[0], 1, "the child could not lock");
            libc::close(fds[0]);
            libc::close(fds[1]);
            pid
        };
        let found = scan_locks(&locks, Path::new("/proc"));
        // SAFETY: the child is ours; kill and reap it.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        assert_eq!(found, vec![Evidence::Lock { path: lock.clone(), pid: Some(child as u32), role: None }]);
        assert_eq!(scan_locks(&locks, Path::new("/proc")), vec![]);
        drop(f);
    }

    #[test]
    fn legacy_locks_count_only_for_this_config() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join("state");
        let cfg = state.join("openclaw.json");
        let dir = t.path().join("tmp/openclaw-0");
        let child = Kill(Command::new("sleep").arg("30").spawn().unwrap());
        let pid = child.0.id();
        let st = start_time(Path::new("/proc"), pid).unwrap();
        write_lock(
            &dir.join("gateway.aaaaaaaa.lock"),
            serde_json::json!({"pid": pid, "createdAt": "x", "configPath": "/elsewhere/openclaw.json", "startTime": st}),
        );
        std::fs::write(dir.join("gateway.bbbbbbbb.lock"), "not json").unwrap();
        assert_eq!(scan_legacy_locks(&dir, Path::new("/proc"), &state, &cfg), vec![]);
        write_lock(
            &dir.join("gateway.cccccccc.lock"),
            serde_json::json!({"pid": pid, "createdAt": "x", "configPath": cfg, "startTime": st}),
        );
        assert_eq!(
            scan_legacy_locks(&dir, Path::new("/proc"), &state, &cfg),
            vec![Evidence::Lock { path: dir.join("gateway.cccccccc.lock"), pid: Some(pid), role: None }]
        );
    }

    #[test]
    fn config_lock_names_hash_the_config_path() {
        // As seen on a real 2026.9.6 home: sha256("/tmp/hd-scratch/home/.openclaw/openclaw.json").
        assert_eq!(
            config_lock_name(Path::new("/tmp/hd-scratch/home/.openclaw/openclaw.json")),
            "gateway.ac7b8dce.lock"
        );
    }

    #[test]
    fn port_from_env_then_config_then_profile_then_default() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("openclaw.json");
        let env = Env::from_pairs([("HOME", "/nonexistent")]);
        assert_eq!(gateway_port(&env, t.path(), &cfg), DEFAULT_PORT);
        // A named profile derives its own port (FNV-1a of the name).
        let work = env.clone().with("OPENCLAW_PROFILE", "work");
        let p = gateway_port(&work, t.path(), &cfg);
        assert!((20000..60000).contains(&p) && p != DEFAULT_PORT, "{p}");
        assert_eq!(gateway_port(&env.clone().with("OPENCLAW_PROFILE", "default"), t.path(), &cfg), DEFAULT_PORT);
        std::fs::write(&cfg, "{ gateway: { port: 19001 } }").unwrap();
        assert_eq!(gateway_port(&work, t.path(), &cfg), 19001);
        for (v, want) in
            [("19002", 19002), ("127.0.0.1:19003", 19003), ("[::1]:19004", 19004), ("12x", 19001), ("a:b:1", 19001)]
        {
            let env = env.clone().with("OPENCLAW_GATEWAY_PORT", v);
            assert_eq!(gateway_port(&env, t.path(), &cfg), want, "{v}");
        }
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
    fn legacy_lock_dir_follows_tmpdir() {
        let uid = uid();
        let env = Env::from_pairs([("TMPDIR", "/var/tmp/x/")]);
        assert_eq!(legacy_lock_dir(&env), PathBuf::from(format!("/var/tmp/x/openclaw-{uid}")));
        assert_eq!(legacy_lock_dir(&Env::default()), PathBuf::from(format!("/tmp/openclaw-{uid}")));
    }

    #[test]
    fn lock_dir_resolves_symlinks_of_the_state_dir() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let uid = uid();
        assert_eq!(lock_dir(&t.path().join("link")), real.join(format!("tmp/openclaw-{uid}")));
        // Missing below an existing ancestor: kept as written.
        assert_eq!(lock_dir(&t.path().join("link/new/state")), real.join(format!("new/state/tmp/openclaw-{uid}")));
    }
}
