//! Shared helpers: a sandbox per test (its own HOME, XDG folders, repository and cache, all under
//! one temporary folder), running the real `clawback` binary with a cleared environment and a
//! time limit, tree builders, and `assert_same_tree`, which compares two trees exactly.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery staple";
/// No command in this suite should come near this; it only turns a hang into a failure.
const TIME_LIMIT: Duration = Duration::from_secs(120);

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clawback"))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub desc: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics unless the exit code is `code`, showing everything the command printed.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.desc, self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// stdout parsed as exactly one JSON value (nothing else may be on stdout).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not one JSON value ({e})\n--- stdout\n{}\n--- stderr\n{}",
                self.desc, self.stdout, self.stderr
            )
        })
    }

    /// Asserts docs/CONTRACT.md's rule for failures: exactly one non-empty line on stderr.
    #[track_caller]
    pub fn one_error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "`{}` (exit {}) should print one line on stderr, printed:\n{}",
            self.desc,
            self.code,
            self.stderr
        );
        assert!(lines[0].trim().len() > 10, "error line too terse: {:?}", lines[0]);
        lines[0]
    }
}

/// A command being built; `run` executes it with stdin closed and a time limit.
pub struct Cmd {
    c: Command,
}

impl Cmd {
    /// Wraps a prepared command (another program than clawback, with its own environment).
    pub fn from_command(c: Command) -> Cmd {
        Cmd { c }
    }
    /// The prepared command, for a caller that spawns it itself (a server it talks to).
    pub fn into_command(self) -> Command {
        self.c
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.c.arg(a);
        self
    }
    pub fn args<I, S>(mut self, a: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.c.args(a);
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.c.env(k, v);
        self
    }
    pub fn current_dir(mut self, d: impl AsRef<Path>) -> Cmd {
        self.c.current_dir(d);
        self
    }
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.c.env_remove(k);
        self
    }

    pub fn run(self) -> Run {
        run_command(self.c)
    }
}

/// Runs a prepared command: stdin closed, output captured, killed (and the test failed) after
/// `TIME_LIMIT`; death by a signal (a crash) fails the test too.
pub fn run_command(mut c: Command) -> Run {
    let desc = {
        let mut d = c.get_program().to_string_lossy().into_owned();
        for a in c.get_args() {
            d.push(' ');
            d.push_str(&a.to_string_lossy());
        }
        d
    };
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start `{desc}`: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{desc}` did not finish within {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    let code = match status.code() {
        Some(c) => c,
        None => {
            use std::os::unix::process::ExitStatusExt;
            panic!("`{desc}` was killed by signal {:?} (a crash)\n--- stderr\n{stderr}", status.signal())
        }
    };
    Run { desc, code, stdout, stderr }
}

/// Waits for `child` to exit, polling; past `limit` it kills the child and fails the test with
/// `what()`.
#[track_caller]
pub fn wait_or_kill(child: &mut Child, limit: Duration, what: impl FnOnce() -> String) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{}", what());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `clawback ARGS EXTRA` against the sandbox with `CLAWBACK_FAILPOINT=point` (see
/// engine/src/failpoint.rs) and asserts that it died of SIGKILL there (the failure point was
/// reached).
#[track_caller]
pub fn run_killed(sb: &Sandbox, point: &str, args: &[&str], extra: &[&Path]) {
    use std::os::unix::process::ExitStatusExt;
    let mut c = sb.cb_command();
    c.env("CLAWBACK_FAILPOINT", point)
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("start clawback");
    let status = wait_or_kill(&mut child, TIME_LIMIT, || format!("{args:?} with failure point {point} did not finish"));
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{args:?} was meant to die at failure point {point}, but exited {status:?}\n--- stderr\n{err}"
    );
}

/// One test's world: a temporary folder holding a fake HOME and XDG folders, a repository path
/// and a cache path. Commands run with a cleared environment, so the real HOME is never touched.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub repo: PathBuf,
    pub cache: PathBuf,
}

impl Sandbox {
    /// A sandbox with no repository yet.
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("clawback-e2e-").tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        for d in ["home", "xdg/data", "xdg/config", "xdg/cache"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        Sandbox { repo: root.join("repo"), cache: root.join("cache"), home, root, dir }
    }

    /// A sandbox with an initialised repository (fast key derivation).
    pub fn with_repo() -> Sandbox {
        Self::with_repo_args(&[])
    }

    /// Like `with_repo`, with extra `init` flags (e.g. `--pack-size 1`).
    pub fn with_repo_args(extra: &[&str]) -> Sandbox {
        let sb = Sandbox::new();
        sb.init(extra);
        sb
    }

    pub fn init(&self, extra: &[&str]) {
        self.cb().args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).args(extra).run().ok();
    }

    /// A path inside the sandbox.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The binary with only the sandbox environment (no repository, no password).
    pub fn bare(&self) -> Cmd {
        let mut c = Command::new(bin());
        self.clean_env(&mut c).env("USER", "e2e").env("TZ", "UTC").env("RUST_BACKTRACE", "1");
        Cmd { c }
    }

    /// Clears `c`'s environment down to PATH, the sandbox's HOME and its XDG folders.
    pub fn clean_env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.root.join("xdg/data"))
            .env("XDG_CONFIG_HOME", self.root.join("xdg/config"))
            .env("XDG_CACHE_HOME", self.root.join("xdg/cache"))
    }

    /// The binary as a plain `Command` set up like `cb` (repository, cache, password, USER, TZ;
    /// no RUST_BACKTRACE), for a caller that spawns it itself or wants its raw output.
    pub fn cb_command(&self) -> Command {
        let mut c = Command::new(bin());
        self.clean_env(&mut c)
            .env("USER", "e2e")
            .env("TZ", "UTC")
            .env("CLAWBACK_PASSWORD", PASSWORD)
            .arg("--repo")
            .arg(&self.repo)
            .arg("--cache-dir")
            .arg(&self.cache);
        c
    }

    /// The binary pointed at this sandbox's repository and cache, with the password in the
    /// environment.
    pub fn cb(&self) -> Cmd {
        self.bare().arg("--repo").arg(&self.repo).arg("--cache-dir").arg(&self.cache).env("CLAWBACK_PASSWORD", PASSWORD)
    }

    /// Like `cb`, with another cache folder (another machine's view of the repository).
    pub fn cb_cache(&self, cache: &Path) -> Cmd {
        self.bare().arg("--repo").arg(&self.repo).arg("--cache-dir").arg(cache).env("CLAWBACK_PASSWORD", PASSWORD)
    }

    /// `backup --json PATHS`, expecting success; returns the JSON object.
    #[track_caller]
    pub fn backup(&self, paths: &[&Path]) -> serde_json::Value {
        let r = self.cb().args(["backup", "--json"]).args(paths).run().ok();
        let v = r.json();
        assert!(v["errors"].as_array().is_some_and(|e| e.is_empty()), "backup reported errors: {v}");
        v
    }

    /// `restore SNAP --target TARGET --verify`, expecting success.
    #[track_caller]
    pub fn restore(&self, snap: &str, target: &Path) -> Run {
        self.cb().args(["restore", snap, "--verify", "--target"]).arg(target).run().ok()
    }

    /// `snapshots --json` as an array.
    #[track_caller]
    pub fn snapshots(&self) -> Vec<serde_json::Value> {
        let r = self.cb().args(["snapshots", "--json"]).run().ok();
        r.json().as_array().expect("snapshots --json is an array").clone()
    }
}

/// The sandbox's repository through the engine library (no cache, so nothing is shared with the
/// binary's cache).
pub fn open_repo(sb: &Sandbox) -> clawback_engine::repo::Repository {
    use clawback_engine::repo::{CacheOptions, Repository, Secret};
    Repository::open(
        std::sync::Arc::new(clawback_engine::backend::local::LocalBackend::new(&sb.repo)),
        &Secret(PASSWORD.as_bytes().to_vec()),
        &CacheOptions { dir: None, disabled: true },
    )
    .expect("open repository through the library")
}

/// Where restore puts the backed-up absolute path `src` under `target`.
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").expect("absolute path"))
}

/// Deterministic pseudo-random bytes (xorshift64*), incompressible and fast to make.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn write(p: &Path, data: &[u8]) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

pub fn append(p: &Path, data: &[u8]) {
    let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(data).unwrap();
}

/// Writes a program the tests will run. The file is written by a child `install`, never through a
/// descriptor of this process: a test thread forking at that moment would inherit a writable descriptor
/// and make the program's exec fail with "Text file busy".
pub fn write_executable(p: &Path, text: &str) {
    let draft = p.with_extension("draft");
    fs::write(&draft, text).unwrap();
    let st = std::process::Command::new("install").arg("-m755").arg(&draft).arg(p).status().unwrap();
    assert!(st.success(), "install {}", p.display());
    fs::remove_file(&draft).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Sets mtime (and atime) to `secs`.`nanos` without following symlinks.
pub fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(p, t, t).unwrap_or_else(|e| panic!("set times of {}: {e}", p.display()));
}

pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// Total size of the regular files under `p`.
pub fn du(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    total
}

/// Every file under `p` (recursively), for finding packs and cache databases.
pub fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// What `assert_same_tree` compares for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// (seconds, nanoseconds)
    pub mtime: (i64, i64),
    pub size: u64,
    pub target: Option<Vec<u8>>,
    pub ino: u64,
    pub dev: u64,
}

/// Every entry under `root` (the root itself as ""), by relative path, without following links.
pub fn scan(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = if rel.as_os_str().is_empty() { root.to_path_buf() } else { root.join(&rel) };
        let md = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else {
            "device"
        };
        let target =
            if ft.is_symlink() { Some(fs::read_link(&p).unwrap().into_os_string().as_bytes().to_vec()) } else { None };
        out.insert(
            rel.clone(),
            Entry {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: (md.mtime(), md.mtime_nsec()),
                size: if ft.is_file() { md.len() } else { 0 },
                target,
                ino: md.ino(),
                dev: md.dev(),
            },
        );
        if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
    }
    out
}

/// Byte-for-byte comparison of two files, streaming.
pub fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Groups of paths sharing an inode (hard links), as sets of relative paths.
fn link_groups(t: &BTreeMap<PathBuf, Entry>) -> BTreeSet<BTreeSet<PathBuf>> {
    let mut by: BTreeMap<(u64, u64), BTreeSet<PathBuf>> = BTreeMap::new();
    for (p, e) in t {
        if e.kind == "file" {
            by.entry((e.dev, e.ino)).or_default().insert(p.clone());
        }
    }
    by.into_values().filter(|g| g.len() > 1).collect()
}

/// Options for `assert_same_tree`.
#[derive(Clone, Copy)]
pub struct Compare {
    /// Compare owners (only meaningful when restore ran as root).
    pub owners: bool,
}

impl Default for Compare {
    fn default() -> Self {
        Compare { owners: is_root() }
    }
}

/// Asserts that `restored` is an exact copy of `original`: the same entries (names as bytes), kinds,
/// permission bits (with setuid/setgid/sticky), owners when root, mtimes to the nanosecond (files,
/// folders and symlinks), file contents, symlink targets, and hard-link groups. Collects every
/// difference before failing.
#[track_caller]
pub fn assert_same_tree(original: &Path, restored: &Path) {
    assert_same_tree_with(original, restored, Compare::default())
}

/// Like `assert_same_tree`, for a backup that left things out on purpose (OpenClaw's default
/// excludes): entries of `original` for which `kept` is false are not expected in `restored`.
/// Everything kept must match exactly, and nothing else may appear.
#[track_caller]
pub fn assert_same_tree_where(original: &Path, restored: &Path, kept: &dyn Fn(&Path) -> bool) {
    assert_same_tree_impl(original, restored, Compare::default(), kept)
}

#[track_caller]
pub fn assert_same_tree_with(original: &Path, restored: &Path, opt: Compare) {
    assert_same_tree_impl(original, restored, opt, &|_| true)
}

#[track_caller]
fn assert_same_tree_impl(original: &Path, restored: &Path, opt: Compare, kept: &dyn Fn(&Path) -> bool) {
    let mut a = scan(original);
    a.retain(|p, _| kept(p));
    let b = scan(restored);
    let mut diffs = Vec::new();
    for p in a.keys().filter(|p| !b.contains_key(*p)) {
        diffs.push(format!("missing in restore: {p:?}"));
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("extra in restore: {p:?}"));
    }
    for (p, ea) in &a {
        let Some(eb) = b.get(p) else { continue };
        if ea.kind != eb.kind {
            diffs.push(format!("{p:?}: kind {} vs {}", ea.kind, eb.kind));
            continue;
        }
        if ea.kind != "symlink" && ea.mode != eb.mode {
            diffs.push(format!("{p:?}: mode {:o} vs {:o}", ea.mode, eb.mode));
        }
        if ea.mtime != eb.mtime {
            diffs.push(format!("{p:?}: mtime {:?} vs {:?}", ea.mtime, eb.mtime));
        }
        if opt.owners && (ea.uid, ea.gid) != (eb.uid, eb.gid) {
            diffs.push(format!("{p:?}: owner {}:{} vs {}:{}", ea.uid, ea.gid, eb.uid, eb.gid));
        }
        if ea.target != eb.target {
            diffs.push(format!(
                "{p:?}: symlink target {:?} vs {:?}",
                ea.target.as_deref().map(String::from_utf8_lossy),
                eb.target.as_deref().map(String::from_utf8_lossy)
            ));
        }
        if ea.kind == "file" {
            let (fa, fb) = (original.join(p), restored.join(p));
            if is_sqlite(&fa) && has_sidecar(&fa) {
                // A live database is backed up as a consistent image of it and its -wal: the
                // bytes differ from the main file by design; the contents must not.
                if let Err(e) = same_database(&fa, &fb) {
                    diffs.push(format!("{p:?}: database differs: {e}"));
                }
            } else if ea.size != eb.size {
                diffs.push(format!("{p:?}: size {} vs {}", ea.size, eb.size));
            } else if !same_content(&fa, &fb) {
                diffs.push(format!("{p:?}: content differs"));
            }
        }
    }
    let (ga, gb) = (link_groups(&a), link_groups(&b));
    if ga != gb {
        diffs.push(format!("hard-link groups differ: {ga:?} vs {gb:?}"));
    }
    if !diffs.is_empty() {
        let n = diffs.len();
        diffs.truncate(60);
        panic!(
            "{} is not an exact copy of {} ({n} differences):\n  {}",
            restored.display(),
            original.display(),
            diffs.join("\n  ")
        );
    }
}

/// A list of every path under `p` (relative), to show that nothing appeared there.
pub fn listing(p: &Path) -> BTreeSet<PathBuf> {
    scan(p).into_keys().collect()
}

pub fn u(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

pub fn os_string(b: &[u8]) -> OsString {
    OsStr::from_bytes(b).to_os_string()
}

/// The paths (relative to `root`, `""` for `root` itself) that snapshot `snap` holds under `root`,
/// from `ls --json`.
pub fn snapshot_paths(cmd: Cmd, snap: &str, root: &Path) -> BTreeSet<PathBuf> {
    let v = cmd.args(["ls", "--json", snap]).arg(root).run().ok().json();
    v.as_array()
        .expect("ls --json is an array")
        .iter()
        .map(|i| {
            let p = PathBuf::from(i["path"].as_str().unwrap());
            p.strip_prefix(root).expect("listed under the root").to_path_buf()
        })
        .chain(std::iter::once(PathBuf::new()))
        .collect()
}

/// Waits until files written just now are older than the backup's "racy" window: a SQLite database
/// whose change stamp is within 2 s of a backup's start is imaged again by the next backup (git's
/// racy-clean rule), so a test that expects an unchanged database to be skipped next time lets
/// that window pass before the first backup, as two hours between backups would.
pub fn wait_out_racy_window() {
    std::thread::sleep(Duration::from_millis(2_100));
}

/// Whether `p` starts with SQLite's header.
pub fn is_sqlite(p: &Path) -> bool {
    let mut head = [0u8; 16];
    fs::File::open(p).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"SQLite format 3\0"
}

fn has_sidecar(p: &Path) -> bool {
    ["-wal", "-journal"].iter().any(|s| {
        let mut sp = p.as_os_str().to_os_string();
        sp.push(s);
        Path::new(&sp).exists()
    })
}

/// Compares two SQLite databases by content: the schema and every row of every table (shadow
/// tables of FTS included), opened read-only so nothing is checkpointed or changed.
pub fn same_database(a: &Path, b: &Path) -> Result<(), String> {
    use rusqlite::{types::Value, Connection, OpenFlags};
    let open = |p: &Path| {
        Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("open {}: {e}", p.display()))
    };
    let (ca, cb) = (open(a)?, open(b)?);
    let ok: String = cb.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if ok != "ok" {
        return Err(format!("integrity_check of the restored database: {ok}"));
    }
    let schema = |c: &Connection| -> Result<Vec<(String, String, Option<String>)>, String> {
        let mut st =
            c.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").map_err(|e| e.to_string())?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    };
    let sa = schema(&ca)?;
    if sa != schema(&cb)? {
        return Err("schemas differ".into());
    }
    for (ty, name, sql) in &sa {
        // Virtual tables are read through their shadow tables, which are ordinary tables.
        if ty != "table" || sql.as_deref().is_some_and(|s| s.to_ascii_uppercase().starts_with("CREATE VIRTUAL")) {
            continue;
        }
        let q = format!("SELECT * FROM \"{}\"", name.replace('"', "\"\""));
        let rows = |c: &Connection| -> Result<Vec<Vec<Value>>, String> {
            let mut st = c.prepare(&q).map_err(|e| e.to_string())?;
            let n = st.column_count();
            let rows = st
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
                .map_err(|e| e.to_string())?;
            rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
        };
        if rows(&ca)? != rows(&cb)? {
            return Err(format!("rows of table {name} differ"));
        }
    }
    Ok(())
}
