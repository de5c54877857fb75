//! `clawback schedule install --systemd | --cron | --openclaw` and `schedule remove`: register the
//! schedule with a systemd user timer, a crontab block, or OpenClaw's own scheduler. Each job runs
//! `clawback daemon --once --low-priority` (backup, retention, prune when due; one at a time) with
//! the absolute path of this program and the flags and OpenClaw variables of this shell, and
//! each install prints what it wrote and how to check it. Before installing, the variables the job
//! needs from this shell go into clawback's environment file, and the job's command is run under
//! the scheduler's empty environment (`test --scheduled-probe`): a job that would fail is not
//! installed, and the one-line error says what it lacks. OpenClaw's job is a command job with a
//! declaration key, made and removed as OpenClaw makes its own (see `openclaw_job`).

use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::{Context, Result};
use clawback_engine::config::{parse_duration, Schedule};
use clawback_engine::run::notify::find_on_path;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Overrides the `crontab` program (tests, or a wrapper).
pub const CRONTAB_ENV: &str = "CLAWBACK_CRONTAB_CMD";
/// Overrides the `systemctl` program.
pub const SYSTEMCTL_ENV: &str = "CLAWBACK_SYSTEMCTL_CMD";
const CRON_BEGIN: &str =
    "# >>> clawback (managed by `clawback schedule install --cron`; remove with `clawback schedule remove --cron`)";
const CRON_END: &str = "# <<< clawback";
/// Variables a scheduled run needs to find the same state dir, config and password file.
const CARRIED_ENV: &[&str] = &[
    "OPENCLAW_STATE_DIR",
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_HOME",
    "OPENCLAW_PROFILE",
    "OPENCLAW_WORKSPACE_DIR",
    "CLAWBACK_CONFIG",
    "CLAWBACK_PASSWORD_FILE",
    "CLAWBACK_CACHE_DIR",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
];

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Register the schedule with systemd (user timer), cron, or OpenClaw's scheduler
    Install(InstallArgs),
    /// Undo `schedule install` (all kinds found, or only the one named)
    Remove(Which),
}

#[derive(clap::Args, Debug, Clone, Copy)]
#[group(multiple = false)]
pub struct Which {
    /// A systemd user service and timer (~/.config/systemd/user/clawback.{service,timer})
    #[arg(long)]
    pub systemd: bool,
    /// A block in your crontab
    #[arg(long)]
    pub cron: bool,
    /// A job in OpenClaw's own scheduler (`openclaw cron`)
    #[arg(long)]
    pub openclaw: bool,
}

#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub which: Which,
    /// Run every DUR instead of the configured schedule
    #[arg(long, value_name = "DUR", conflicts_with = "schedule")]
    pub every: Option<String>,
    /// Use this schedule instead of the configured one ("2h", or a cron expression)
    #[arg(long, value_name = "EXPR")]
    pub schedule: Option<String>,
    /// systemd: MemoryMax= of the service
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    pub memory_max: String,
}

fn schedule_from(g: &GlobalArgs, every: &Option<String>, expr: &Option<String>) -> Result<Schedule> {
    if let Some(e) = every {
        let d = parse_duration(e)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| usage(format!("--every {e}: give a duration like 2h, 30m or 1d")))?;
        return Ok(Schedule::Every { text: e.trim().to_string(), interval: d });
    }
    if let Some(x) = expr {
        return Schedule::parse(x).map_err(|e| usage(e.to_string()));
    }
    // Quietly: what the job would lack is said by the check that follows, in one line.
    let s = crate::context::Settings::load(&GlobalArgs { quiet: true, ..g.clone() })?;
    s.config.schedule().ok_or_else(|| {
        usage("no schedule: set `schedule` in the config (\"2h\", \"1d\" or a cron expression), or pass --every 2h")
    })
}

/// The scheduled command: this program, by absolute path, with this run's global flags.
fn job_argv(g: &GlobalArgs) -> Result<Vec<OsString>> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let abs = |p: &Path| -> OsString { std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).into_os_string() };
    let mut v: Vec<OsString> = vec![exe.into_os_string()];
    if let Some(r) = &g.repo {
        let r = if r.contains(':') && !r.starts_with("local:") {
            r.into()
        } else {
            abs(Path::new(r.trim_start_matches("local:")))
        };
        v.extend(["--repo".into(), r]);
    }
    if let Some(f) = &g.password_file {
        v.extend(["--password-file".into(), abs(f)]);
    }
    if let Some(c) = &g.password_command {
        v.extend(["--password-command".into(), c.into()]);
    }
    if let Some(c) = &g.config {
        v.extend(["--config".into(), abs(c)]);
    }
    if let Some(d) = &g.cache_dir {
        v.extend(["--cache-dir".into(), abs(d)]);
    }
    if g.no_cache {
        v.push("--no-cache".into());
    }
    v.extend(["daemon".into(), "--once".into(), "--low-priority".into()]);
    Ok(v)
}

/// The OpenClaw and clawback variables of this shell the job must see, made absolute.
fn carried_env() -> Vec<(String, String)> {
    CARRIED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
        .map(|(k, v)| {
            let p = Path::new(&v);
            let v = if k == "OPENCLAW_PROFILE" || p.is_absolute() || v.starts_with('~') {
                v
            } else {
                std::path::absolute(p).map(|p| p.to_string_lossy().into_owned()).unwrap_or(v)
            };
            (k, v)
        })
        .collect()
}

/// Whether this shell's runs take the password from CLAWBACK_PASSWORD (it beats the config).
fn password_from_env(g: &GlobalArgs) -> bool {
    std::env::var("CLAWBACK_PASSWORD").is_ok_and(|p| !p.is_empty())
        && g.password_file.is_none()
        && g.password_command.is_none()
}

/// Writes what the job needs from this shell into the environment file: the variables the
/// config refers to, CLAWBACK_PASSWORD when it is the password source, an S3 repository's AWS_*
/// settings, PATH. Never a value on the terminal.
pub fn write_job_env(g: &GlobalArgs) -> Result<()> {
    let env = clawback_engine::openclaw::Env::from_process();
    let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").map(PathBuf::from));
    let loaded = clawback_engine::config::load(&env, explicit.as_deref()).ok();
    let text = loaded.as_ref().and_then(|l| l.file.as_ref()).and_then(|f| std::fs::read_to_string(f).ok());
    let settings =
        crate::context::Settings { env, config: loaded.as_ref().map(|l| l.config.clone()).unwrap_or_default() };
    let backend_vars = crate::context::resolve(g, &settings).map(|r| r.location.env_vars()).unwrap_or_default();
    let pw_env = password_from_env(g);
    if pw_env && !g.quiet {
        eprintln!(
            "clawback: note: CLAWBACK_PASSWORD is set in this shell and is the password; the scheduled job reads it \
             from the environment file (0600), never from the job's own definition"
        );
    }
    let path = crate::envfile::path_for(g.config.as_deref());
    crate::envfile::write_needed(&path, &crate::envfile::needed(text.as_deref(), pw_env, backend_vars), g.quiet)
}

/// POSIX shell quoting.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn sh_line(argv: &[OsString]) -> String {
    argv.iter().map(|a| sh_quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

/// systemd's quoting for ExecStart= words.
fn systemd_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$"))
    }
}

pub fn run(g: &GlobalArgs, a: &Args) -> Result<i32> {
    JSON_OUTPUT.store(g.json, std::sync::atomic::Ordering::Relaxed);
    match &a.action {
        Action::Install(i) => install(g, i),
        Action::Remove(w) => remove(g, *w),
    }
}

fn install(g: &GlobalArgs, a: &InstallArgs) -> Result<i32> {
    let w = a.which;
    if !(w.systemd || w.cron || w.openclaw) {
        return Err(usage("say where: schedule install --systemd, --cron or --openclaw"));
    }
    let schedule = schedule_from(g, &a.every, &a.schedule)?;
    let argv = job_argv(g)?;
    write_job_env(g)?;
    let kind = if w.systemd {
        JobKind::Systemd
    } else if w.cron {
        JobKind::Cron
    } else {
        JobKind::Openclaw
    };
    let job = Job { kind, argv: argv.clone(), env: job_env(kind) };
    let probe = job
        .probe()
        .map_err(|e| clawback_engine::Error::Other(format!("not installed: the scheduled job would fail: {e}")))?;
    if !g.quiet && !g.json {
        say(format!("checked the job as {} would run it (an empty environment but its own): {probe}", kind.name()));
    }
    let report = if w.systemd {
        install_systemd(&schedule, &argv, &a.memory_max)?
    } else if w.cron {
        install_cron(&schedule, &argv)?
    } else {
        super::openclaw_job::install(&schedule, &argv, &job_env(JobKind::Openclaw))?
    };
    if g.json {
        crate::ui::print_json(&report);
    }
    Ok(0)
}

/// Set for `--json`: stdout then carries the JSON report only.
static JSON_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What was written and how to check it, on stdout (not with `--json`).
pub(super) fn say(msg: impl AsRef<str>) {
    if !JSON_OUTPUT.load(std::sync::atomic::Ordering::Relaxed) {
        println!("{}", msg.as_ref());
    }
}

// ---------- the job as its scheduler runs it ----------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Systemd,
    Cron,
    Openclaw,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Systemd => "systemd",
            JobKind::Cron => "cron",
            JobKind::Openclaw => "OpenClaw",
        }
    }
}

/// A scheduled job: the command it runs and the variables its definition sets.
#[derive(Clone, Debug)]
pub struct Job {
    pub kind: JobKind,
    pub argv: Vec<OsString>,
    pub env: Vec<(String, String)>,
}

/// The variables `schedule install` writes into a job of `kind`.
pub fn job_env(kind: JobKind) -> Vec<(String, String)> {
    let trigger = match kind {
        JobKind::Systemd => "systemd",
        JobKind::Cron => "cron",
        JobKind::Openclaw => "openclaw",
    };
    let mut v = vec![("CLAWBACK_TRIGGER".to_string(), trigger.to_string())];
    v.extend(carried_env());
    v
}

/// How long the probe may take (an S3 endpoint that does not answer is retried for a while).
const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);

impl Job {
    /// The environment the scheduler gives the job: systemd sets HOME, USER, LOGNAME and
    /// PATH=/usr/local/bin:/usr/bin:/bin; cron sets HOME, LOGNAME, SHELL=/bin/sh and
    /// PATH=/usr/bin:/bin; OpenClaw's gateway runs the job's argv (no shell) with its own
    /// environment, which for a gateway installed as a service is about systemd's (HOME, a
    /// minimal PATH, OpenClaw's own variables), so it is checked as systemd's; then the job's own
    /// variables (`--command-env` for OpenClaw).
    pub fn scheduled_env(&self) -> Vec<(String, String)> {
        let home = clawback_engine::repo::home_dir().to_string_lossy().into_owned();
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
        let mut v = vec![("HOME".to_string(), home)];
        match self.kind {
            JobKind::Cron => {
                v.push(("LOGNAME".into(), user));
                v.push(("SHELL".into(), "/bin/sh".into()));
                v.push(("PATH".into(), "/usr/bin:/bin".into()));
            }
            JobKind::Systemd | JobKind::Openclaw => {
                v.push(("USER".into(), user.clone()));
                v.push(("LOGNAME".into(), user));
                v.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
            }
        }
        for (k, val) in &self.env {
            v.retain(|(old, _)| old != k);
            v.push((k.clone(), val.clone()));
        }
        v
    }

    /// Runs the job's command line with `test --scheduled-probe` in place of its `daemon ...`
    /// under the scheduled environment, from the home folder: what the run would find (config,
    /// variables, password, repository, hooks) without backing anything up. Ok: what was checked;
    /// Err: the probe's one-line error.
    pub fn probe(&self) -> std::result::Result<String, String> {
        let Some(cut) = self.argv.iter().rposition(|a| a == "daemon") else {
            return Err("the job does not run `clawback daemon`".into());
        };
        let home = clawback_engine::repo::home_dir();
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..cut]).args(["test", "--scheduled-probe"]).env_clear();
        for (k, v) in self.scheduled_env() {
            c.env(k, v);
        }
        c.current_dir(if home.is_dir() { home } else { PathBuf::from("/") });
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| format!("cannot run {}: {e}", self.argv[0].to_string_lossy()))?;
        let start = std::time::Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() > PROBE_LIMIT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("the check did not finish within {}s", PROBE_LIMIT.as_secs()));
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(e) => return Err(e.to_string()),
            }
        };
        let mut out = String::new();
        let mut err = String::new();
        use std::io::Read;
        let _ = child.stdout.take().map(|mut o| o.read_to_string(&mut out));
        let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
        let last = |t: &str| t.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        if status.success() {
            Ok(last(&out))
        } else {
            let l = last(&err);
            let l = l.strip_prefix("clawback: ").unwrap_or(&l).to_string();
            Err(if l.is_empty() { format!("the check exited {status}") } else { l })
        }
    }
}

/// Splits a command line as sh does for the words clawback writes (plain, '...', "...", \x).
pub fn sh_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                has = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                has = true;
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => match it.next()? {
                            x @ ('"' | '\\' | '$' | '`') => cur.push(x),
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.push(it.next()?);
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    Some(out)
}

/// Splits a systemd command line or Environment= value into words (undoing [`systemd_quote`]).
fn systemd_words(s: &str) -> Option<Vec<String>> {
    let words = sh_words(s)?;
    Some(words.into_iter().map(|w| w.replace("%%", "%").replace("$$", "$")).collect())
}

/// `K=V` words at the front of a command line, and the rest.
fn split_assignments(words: Vec<String>) -> (Vec<(String, String)>, Vec<OsString>) {
    let mut env = Vec::new();
    let mut rest = words.into_iter().peekable();
    while let Some(w) = rest.peek() {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                env.push((k.to_string(), v.to_string()));
                rest.next();
            }
            _ => break,
        }
    }
    (env, rest.map(OsString::from).collect())
}

/// The job in an installed systemd service file.
fn job_from_unit(text: &str) -> Option<Job> {
    let mut argv = None;
    let mut env = Vec::new();
    for l in text.lines() {
        if let Some(x) = l.strip_prefix("ExecStart=") {
            argv = Some(systemd_words(x)?.into_iter().map(OsString::from).collect());
        } else if let Some(x) = l.strip_prefix("Environment=") {
            for w in systemd_words(x)? {
                if let Some((k, v)) = w.split_once('=') {
                    env.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    Some(Job { kind: JobKind::Systemd, argv: argv?, env })
}

/// The job in clawback's crontab line: five fields, `K=V` words, the command, the redirection.
fn job_from_cron_line(line: &str) -> Option<Job> {
    let rest = line.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
    let cmd = rest.split(" >> ").next()?;
    let (env, argv) = split_assignments(sh_words(cmd)?);
    Some(Job { kind: JobKind::Cron, argv, env })
}

/// The job in the shell line of an OpenClaw job an earlier clawback made with `--command`
/// (`env K=V ... clawback ...`).
pub(super) fn job_from_openclaw_command(cmd: &str) -> Option<Job> {
    let mut words = sh_words(cmd)?;
    if words.first().is_some_and(|w| w == "env") {
        words.remove(0);
    }
    let (env, argv) = split_assignments(words);
    Some(Job { kind: JobKind::Openclaw, argv, env })
}

/// Every clawback job installed for this user, with where it was found: the systemd user
/// service, the crontab block, a job in OpenClaw's scheduler (`openclaw cron list`, else its store
/// in the state dir).
pub fn installed_jobs(state_dir: &Path) -> Vec<(String, Job)> {
    let mut out = Vec::new();
    let dir = systemd_dir();
    let service = dir.join("clawback.service");
    if dir.join("clawback.timer").exists() {
        if let Some(j) = std::fs::read_to_string(&service).ok().and_then(|t| job_from_unit(&t)) {
            out.push((format!("systemd user timer {}", dir.join("clawback.timer").display()), j));
        }
    }
    if let Ok(text) = read_crontab() {
        let mut inside = false;
        for l in text.lines() {
            if l.trim_start().starts_with("# >>> clawback") {
                inside = true;
            } else if l.trim() == CRON_END {
                inside = false;
            } else if inside && l.contains("daemon") && !l.trim_start().starts_with('#') {
                if let Some(j) = job_from_cron_line(l) {
                    out.push((format!("crontab line `{}`", l.trim()), j));
                }
            }
        }
    }
    out.extend(super::openclaw_job::installed(state_dir));
    out
}

/// The job `schedule install --systemd` would write from this shell (for `test` before any
/// schedule is installed).
pub fn prospective_job(g: &GlobalArgs) -> Result<Job> {
    Ok(Job { kind: JobKind::Systemd, argv: job_argv(g)?, env: job_env(JobKind::Systemd) })
}

// ---------- systemd ----------

fn systemd_dir() -> PathBuf {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    xdg.unwrap_or_else(|| clawback_engine::repo::home_dir().join(".config")).join("systemd").join("user")
}

fn systemctl() -> Option<PathBuf> {
    match std::env::var_os(SYSTEMCTL_ENV).filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => find_on_path("systemctl"),
    }
}

/// Runs `systemctl --user ARGS`; Err with its complaint when it fails.
fn run_systemctl(bin: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(bin)
        .arg("--user")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr);
        Err(msg.lines().next().unwrap_or("failed").trim().to_string())
    }
}

/// The timer's trigger lines for a schedule.
pub fn timer_lines(s: &Schedule) -> Result<Vec<String>> {
    match s {
        Schedule::Every { interval, .. } => {
            let secs = interval.as_secs().max(1);
            Ok(vec![
                "OnBootSec=5min".into(),
                format!("OnUnitActiveSec={secs}s"),
                // The first run soon after the timer is enabled.
                "OnActiveSec=1min".into(),
            ])
        }
        Schedule::Cron(_) => Ok(vec![format!("OnCalendar={}", on_calendar(s.as_str())?)]),
    }
}

fn unit_files(s: &Schedule, argv: &[OsString], memory_max: &str) -> Result<(String, String)> {
    let exec = argv.iter().map(|a| systemd_quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ");
    let mut env_lines = String::new();
    for (k, v) in carried_env() {
        env_lines.push_str(&format!("Environment={}\n", systemd_quote(&format!("{k}={v}"))));
    }
    let service = format!(
        "# Written by `clawback schedule install --systemd`; remove with `clawback schedule remove --systemd`.\n\
         [Unit]\n\
         Description=clawback backup of OpenClaw (schedule {sched})\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exec}\n\
         Environment=CLAWBACK_TRIGGER=systemd\n\
         {env_lines}\
         Nice=10\n\
         IOSchedulingClass=idle\n\
         CPUSchedulingPolicy=batch\n\
         MemoryMax={memory_max}\n\
         # A run that hangs is stopped after a day; SIGTERM lets clawback stop cleanly.\n\
         TimeoutStartSec=1d\n\
         KillSignal=SIGTERM\n",
        sched = s
    );
    let timer = format!(
        "# Written by `clawback schedule install --systemd`; remove with `clawback schedule remove --systemd`.\n\
         [Unit]\n\
         Description=clawback backup of OpenClaw (schedule {s})\n\
         \n\
         [Timer]\n\
         {}\n\
         # Catch up once after the machine was off or asleep at a due time.\n\
         Persistent=true\n\
         RandomizedDelaySec={}\n\
         Unit=clawback.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        timer_lines(s)?.join("\n"),
        clawback_engine::run::planner::default_jitter(s).as_secs()
    );
    Ok((service, timer))
}

fn install_systemd(s: &Schedule, argv: &[OsString], memory_max: &str) -> Result<serde_json::Value> {
    let (service, timer) = unit_files(s, argv, memory_max)?;
    let dir = systemd_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sp = dir.join("clawback.service");
    let tp = dir.join("clawback.timer");
    std::fs::write(&sp, &service).with_context(|| format!("cannot write {}", sp.display()))?;
    std::fs::write(&tp, &timer).with_context(|| format!("cannot write {}", tp.display()))?;
    say(format!("wrote {}:\n{service}", sp.display()));
    say(format!("wrote {}:\n{timer}", tp.display()));
    let enabled = match systemctl() {
        Some(bin) => match run_systemctl(&bin, &["daemon-reload"])
            .and_then(|_| run_systemctl(&bin, &["enable", "--now", "clawback.timer"]))
        {
            Ok(()) => {
                say("enabled and started clawback.timer");
                true
            }
            Err(e) => {
                eprintln!("clawback: warning: systemctl --user failed ({e}); run these yourself:");
                false
            }
        },
        None => {
            say("systemctl was not found; on a machine with systemd run:");
            false
        }
    };
    if !enabled {
        say("  systemctl --user daemon-reload && systemctl --user enable --now clawback.timer");
        say("  (and `loginctl enable-linger $USER` for runs while you are logged out)");
    }
    say("check it with: systemctl --user list-timers clawback.timer; journalctl --user -u clawback.service; clawback status");
    Ok(serde_json::json!({
        "kind": "systemd", "service": sp, "timer": tp, "enabled": enabled, "schedule": s.to_string(),
    }))
}

// ---------- cron ----------

fn crontab_cmd() -> OsString {
    std::env::var_os(CRONTAB_ENV).filter(|v| !v.is_empty()).unwrap_or_else(|| "crontab".into())
}

pub fn read_crontab() -> Result<String> {
    let cmd = crontab_cmd();
    let out = Command::new(&cmd)
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{} -l` (is cron installed?)", cmd.to_string_lossy()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.to_ascii_lowercase().contains("no crontab") {
        return Ok(String::new());
    }
    Err(clawback_engine::Error::Other(format!(
        "`{} -l` failed: {}",
        cmd.to_string_lossy(),
        err.lines().next().unwrap_or("").trim()
    ))
    .into())
}

fn write_crontab(text: &str) -> Result<()> {
    let cmd = crontab_cmd();
    let mut child = Command::new(&cmd)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{} -`", cmd.to_string_lossy()))?;
    child.stdin.take().unwrap().write_all(text.as_bytes()).context("cannot write the crontab")?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(clawback_engine::Error::Other(format!(
            "`{} -` refused the new crontab: {}",
            cmd.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").trim()
        ))
        .into());
    }
    Ok(())
}

/// The crontab without clawback's block.
fn strip_block(text: &str) -> (String, bool) {
    let mut out = Vec::new();
    let mut inside = false;
    let mut found = false;
    for l in text.lines() {
        if l.trim_start().starts_with("# >>> clawback") {
            inside = true;
            found = true;
            continue;
        }
        if inside {
            if l.trim() == CRON_END {
                inside = false;
            }
            continue;
        }
        out.push(l);
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    (s, found)
}

/// The 5 cron fields for a schedule (`2h` → `0 */2 * * *`), and its `CRON_TZ`, if any.
pub fn cron_fields(s: &Schedule) -> Result<(String, Option<String>)> {
    match s {
        Schedule::Every { interval, text } => {
            let secs = interval.as_secs();
            let m = secs / 60;
            let fields = if secs % 60 != 0 || secs < 60 {
                None
            } else if m < 60 {
                Some(format!("*/{m} * * * *"))
            } else if m % 60 == 0 && m / 60 < 24 {
                Some(format!("0 */{} * * *", m / 60))
            } else if m % 1440 == 0 && m / 1440 == 7 {
                Some("0 0 * * 0".to_string())
            } else if m % 1440 == 0 && m / 1440 < 28 {
                let d = m / 1440;
                Some(if d == 1 { "0 0 * * *".to_string() } else { format!("0 0 */{d} * *") })
            } else {
                None
            };
            let f = fields.ok_or_else(|| {
                usage(format!(
                    "schedule {text}: cron cannot run every {text}; use whole minutes under an hour, whole hours under \
                     a day, whole days, or a cron expression (or install with --systemd)"
                ))
            })?;
            Ok((f, None))
        }
        Schedule::Cron(_) => {
            let text = s.as_str();
            let (tz, rest) = split_tz(text);
            let n = rest.split_whitespace().count();
            if n == 6 {
                return Err(usage(format!("schedule {text}: cron has no seconds field; use 5 fields")));
            }
            Ok((rest.to_string(), tz.map(String::from)))
        }
    }
}

pub(super) fn split_tz(text: &str) -> (Option<&str>, &str) {
    for p in ["CRON_TZ=", "TZ="] {
        if let Some(r) = text.strip_prefix(p) {
            let (z, rest) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            return (Some(z), rest.trim());
        }
    }
    (None, text.trim())
}

fn install_cron(s: &Schedule, argv: &[OsString]) -> Result<serde_json::Value> {
    let (fields, tz) = cron_fields(s)?;
    let mut env_words = vec!["CLAWBACK_TRIGGER=cron".to_string()];
    env_words.extend(carried_env().into_iter().map(|(k, v)| format!("{k}={}", sh_quote(&v))));
    let log_dir = crate::runs::state_dir().join("clawback");
    let log = log_dir.join("cron.log");
    let line =
        format!("{fields} {} {} >> {} 2>&1", env_words.join(" "), sh_line(argv), sh_quote(&log.to_string_lossy()));
    let (mut text, replaced) = strip_block(&read_crontab()?);
    let mut block = format!("{CRON_BEGIN}\n");
    if let Some(z) = &tz {
        block.push_str(&format!("CRON_TZ={z}\n"));
    }
    block.push_str(&format!("{line}\n{CRON_END}\n"));
    text.push_str(&block);
    let _ = std::fs::create_dir_all(&log_dir);
    write_crontab(&text)?;
    say(format!("{} the clawback block in your crontab:\n{block}", if replaced { "replaced" } else { "added" }));
    if tz.is_some() {
        say("note: CRON_TZ needs cronie (Fedora, Arch, Debian's cronie); the block stays last in the crontab so it does not change the zone of your other lines");
    }
    say(format!("check it with: crontab -l; clawback status (output of each run goes to {})", log.display()));
    Ok(
        serde_json::json!({ "kind": "cron", "line": line, "cron_tz": tz, "replaced": replaced, "schedule": s.to_string() }),
    )
}

// ---------- remove ----------

fn remove(g: &GlobalArgs, w: Which) -> Result<i32> {
    let all = !(w.systemd || w.cron || w.openclaw);
    let mut removed: Vec<&str> = Vec::new();
    if w.systemd || all {
        let dir = systemd_dir();
        let files = [dir.join("clawback.timer"), dir.join("clawback.service")];
        if files.iter().any(|f| f.exists()) {
            if let Some(bin) = systemctl() {
                if let Err(e) = run_systemctl(&bin, &["disable", "--now", "clawback.timer"]) {
                    eprintln!("clawback: warning: systemctl --user disable failed ({e})");
                }
            }
            for f in &files {
                if f.exists() {
                    std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
                    say(format!("removed {}", f.display()));
                }
            }
            if let Some(bin) = systemctl() {
                let _ = run_systemctl(&bin, &["daemon-reload"]);
            }
            removed.push("systemd");
        } else if w.systemd {
            say(format!("no clawback units in {}", dir.display()));
        }
    }
    if w.cron || all {
        match read_crontab() {
            Ok(text) => {
                let (rest, found) = strip_block(&text);
                if found {
                    write_crontab(&rest)?;
                    say("removed the clawback block from your crontab");
                    removed.push("cron");
                } else if w.cron {
                    say("no clawback block in your crontab");
                }
            }
            Err(e) if w.cron => return Err(e),
            Err(_) => {}
        }
    }
    if w.openclaw || all {
        let state = clawback_engine::openclaw::state_dir(&clawback_engine::openclaw::Env::from_process());
        if !super::openclaw_job::remove(w.openclaw, &state)?.is_empty() {
            removed.push("openclaw");
        }
    }
    if all && removed.is_empty() {
        say("no clawback schedule found (systemd units, crontab block or OpenClaw job)");
    }
    if g.json {
        crate::ui::print_json(&serde_json::json!({ "removed": removed }));
    }
    Ok(0)
}

// ---------- cron expression → systemd OnCalendar ----------

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The values a cron field matches, or `None` for `*` (every value).
fn expand_field(f: &str, lo: u32, hi: u32, names: &[&str]) -> Result<Option<Vec<u32>>, String> {
    if f == "*" || f == "?" {
        return Ok(None);
    }
    let value = |s: &str| -> Result<u32, String> {
        let l = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == l) {
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        s.parse::<u32>().map_err(|_| format!("`{s}` is not supported here"))
    };
    let mut out = Vec::new();
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in `{part}`"))?.max(1)),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((x, y)) = range.split_once('-') {
            (value(x)?, value(y)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { hi } else { v })
        };
        let mut v = a;
        while v <= b {
            out.push(v);
            v += step;
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(Some(out))
}

fn join(v: &[u32], width: usize) -> String {
    v.iter().map(|n| format!("{n:0width$}")).collect::<Vec<_>>().join(",")
}

/// A cron expression (5 or 6 fields, `@daily`..., optional `CRON_TZ=`) as a systemd `OnCalendar=`.
pub fn on_calendar(text: &str) -> Result<String> {
    let (tz, expr) = split_tz(text);
    let zone = tz.map(|z| format!(" {z}")).unwrap_or_default();
    let alias = match expr.to_ascii_lowercase().as_str() {
        "@hourly" => Some("*-*-* *:00:00"),
        "@daily" | "@midnight" => Some("*-*-* 00:00:00"),
        "@weekly" => Some("Sun *-*-* 00:00:00"),
        "@monthly" => Some("*-*-01 00:00:00"),
        "@yearly" | "@annually" => Some("*-01-01 00:00:00"),
        _ => None,
    };
    if let Some(a) = alias {
        return Ok(format!("{a}{zone}"));
    }
    let f: Vec<&str> = expr.split_whitespace().collect();
    let (sec, rest) = match f.len() {
        5 => ("0", &f[..]),
        6 => (f[0], &f[1..]),
        _ => return Err(usage(format!("schedule {text}: cannot translate to a systemd timer"))),
    };
    let bad = |e: String| usage(format!("schedule {text}: {e}; cannot translate to a systemd timer, use --cron"));
    let s = expand_field(sec, 0, 59, &[]).map_err(bad)?;
    let m = expand_field(rest[0], 0, 59, &[]).map_err(bad)?;
    let h = expand_field(rest[1], 0, 23, &[]).map_err(bad)?;
    let dom = expand_field(rest[2], 1, 31, &[]).map_err(bad)?;
    let mon = expand_field(rest[3], 1, 12, &MONTHS).map_err(bad)?;
    let dow = expand_field(rest[4], 0, 7, &DAYS).map_err(bad)?;
    if dom.is_some() && dow.is_some() {
        return Err(usage(format!(
            "schedule {text}: both day of month and day of week are set (cron runs on either, systemd only on both); use --cron"
        )));
    }
    let any = |v: &Option<Vec<u32>>, w: usize| v.as_ref().map(|v| join(v, w)).unwrap_or_else(|| "*".into());
    let dow_s = dow.map(|v| {
        let mut names: Vec<&str> = v.iter().map(|d| DAY_NAMES[(*d % 7) as usize]).collect();
        names.dedup();
        format!("{} ", names.join(","))
    });
    Ok(format!(
        "{}*-{}-{} {}:{}:{}{zone}",
        dow_s.unwrap_or_default(),
        any(&mon, 2),
        any(&dom, 2),
        any(&h, 2),
        any(&m, 2),
        s.as_ref().map(|v| join(v, 2)).unwrap_or_else(|| "*".into())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_to_calendar() {
        assert_eq!(on_calendar("0 */2 * * *").unwrap(), "*-*-* 00,02,04,06,08,10,12,14,16,18,20,22:00:00");
        assert_eq!(
            on_calendar("CRON_TZ=Europe/Berlin 30 3 * * 1-5").unwrap(),
            "Mon,Tue,Wed,Thu,Fri *-*-* 03:30:00 Europe/Berlin"
        );
        assert_eq!(on_calendar("@daily").unwrap(), "*-*-* 00:00:00");
        assert!(on_calendar("0 0 1 * 1").is_err());
    }

    #[test]
    fn installed_jobs_read_back_what_was_written() {
        let argv: Vec<OsString> =
            vec!["/opt/claw back/clawback".into(), "--config".into(), "/a/it's.json".into(), "daemon".into()];
        let env = vec![("X".to_string(), "a b%$c".to_string())];
        let exec = argv.iter().map(|a| systemd_quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ");
        let unit = format!("ExecStart={exec}\nEnvironment={}\n", systemd_quote("X=a b%$c"));
        let j = job_from_unit(&unit).unwrap();
        assert_eq!((j.argv.clone(), j.env.clone()), (argv.clone(), env.clone()));
        let line = format!("0 */2 * * * X={} {} >> /log 2>&1", sh_quote("a b%$c"), sh_line(&argv));
        let j = job_from_cron_line(&line).unwrap();
        assert_eq!((j.argv, j.env), (argv.clone(), env.clone()));
        let j = job_from_openclaw_command(&format!("env X={} {}", sh_quote("a b%$c"), sh_line(&argv))).unwrap();
        assert_eq!((j.argv, j.env), (argv, env));
    }

    #[test]
    fn intervals_to_cron() {
        let f = |s: &str| cron_fields(&Schedule::parse(s).unwrap()).map(|x| x.0);
        assert_eq!(f("2h").unwrap(), "0 */2 * * *");
        assert_eq!(f("30m").unwrap(), "*/30 * * * *");
        assert_eq!(f("1d").unwrap(), "0 0 * * *");
        assert!(f("90m").is_err());
        assert!(f("10s").is_err());
        let (c, tz) = cron_fields(&Schedule::parse("CRON_TZ=UTC 5 4 * * *").unwrap()).unwrap();
        assert_eq!((c.as_str(), tz.as_deref()), ("5 4 * * *", Some("UTC")));
    }
}
