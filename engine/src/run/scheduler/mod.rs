//! Scheduled jobs as each scheduler runs them: the command a job runs (this program by absolute
//! path with the flags that reach the same repository, then `daemon --once --low-priority`), the
//! variables its definition carries, the environment its scheduler gives it and the probe that
//! runs the job's command under that environment before it is installed; and the jobs already
//! installed (systemd user timer, crontab block, OpenClaw's scheduler). What each scheduler's
//! definition looks like lives in [`systemd`], [`cron`] and [`openclaw`].

pub mod cron;
pub mod openclaw;
pub mod shell;
pub mod systemd;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::openclaw::cron::CronJob;
use crate::openclaw::Env;
use crate::run::runlog::TRIGGER_ENV;

/// Variables a scheduled run needs to find the same state dir, config and password file.
pub const CARRIED_ENV: &[&str] = &[
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

/// Which scheduler runs a job.
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

    /// What the run log says started a run of this kind (`CLAWBACK_TRIGGER`).
    pub fn trigger(self) -> &'static str {
        match self {
            JobKind::Systemd => "systemd",
            JobKind::Cron => "cron",
            JobKind::Openclaw => "openclaw",
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

/// The global flags a job keeps from the shell that installs it.
#[derive(Clone, Debug, Default)]
pub struct JobFlags {
    pub repo: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    pub config: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
}

/// The scheduled command: `exe` with `flags` (paths made absolute: the job runs from HOME),
/// then `daemon --once --low-priority`.
pub fn job_argv(exe: &Path, flags: &JobFlags) -> Vec<OsString> {
    let abs = |p: &Path| -> OsString { std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).into_os_string() };
    let mut v: Vec<OsString> = vec![exe.as_os_str().to_owned()];
    if let Some(r) = &flags.repo {
        let r = if r.contains(':') && !r.starts_with("local:") {
            r.into()
        } else {
            abs(Path::new(r.trim_start_matches("local:")))
        };
        v.extend(["--repo".into(), r]);
    }
    if let Some(f) = &flags.password_file {
        v.extend(["--password-file".into(), abs(f)]);
    }
    if let Some(c) = &flags.password_command {
        v.extend(["--password-command".into(), c.into()]);
    }
    if let Some(c) = &flags.config {
        v.extend(["--config".into(), abs(c)]);
    }
    if let Some(d) = &flags.cache_dir {
        v.extend(["--cache-dir".into(), abs(d)]);
    }
    if flags.no_cache {
        v.push("--no-cache".into());
    }
    v.extend(["daemon".into(), "--once".into(), "--low-priority".into()]);
    v
}

/// The OpenClaw and clawback variables of `env` the job must see, made absolute.
pub fn carried_env(env: &Env) -> Vec<(String, String)> {
    CARRIED_ENV
        .iter()
        .filter_map(|k| env.get(k).filter(|v| !v.is_empty()).map(|v| (k.to_string(), v.to_string())))
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

/// The variables `schedule install` writes into a job of `kind`.
pub fn job_env(kind: JobKind, env: &Env) -> Vec<(String, String)> {
    let mut v = vec![(TRIGGER_ENV.to_string(), kind.trigger().to_string())];
    v.extend(carried_env(env));
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
        let home = crate::repo::home_dir().to_string_lossy().into_owned();
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
        let home = crate::repo::home_dir();
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

/// Every clawback job installed for this user, with where it was found: the systemd user
/// service, the crontab block, a job in OpenClaw's scheduler (`openclaw_listed`: what `openclaw
/// cron list` answered, if it did; else its store in the state dir).
pub fn installed_jobs(env: &Env, state_dir: &Path, openclaw_listed: Option<&[CronJob]>) -> Vec<(String, Job)> {
    let mut out = Vec::new();
    let dir = systemd::unit_dir(env);
    let timer = dir.join(systemd::TIMER);
    if timer.exists() {
        if let Some(j) =
            std::fs::read_to_string(dir.join(systemd::SERVICE)).ok().and_then(|t| systemd::job_from_unit(&t))
        {
            out.push((format!("systemd user timer {}", timer.display()), j));
        }
    }
    if let Ok(text) = cron::read_crontab(env) {
        out.extend(cron::jobs(&text));
    }
    out.extend(openclaw::installed(state_dir, openclaw_listed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_runs_the_daemon_once_with_absolute_paths() {
        let flags = JobFlags {
            repo: Some("rel/repo".into()),
            password_file: Some("pw".into()),
            config: Some("/etc/c.json".into()),
            no_cache: true,
            ..Default::default()
        };
        let argv = job_argv(Path::new("/opt/clawback"), &flags);
        let words: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(words[0], "/opt/clawback");
        assert!(Path::new(&words[2]).is_absolute() && words[2].ends_with("rel/repo"), "{words:?}");
        assert!(Path::new(&words[4]).is_absolute(), "{words:?}");
        assert_eq!(&words[5..], ["--config", "/etc/c.json", "--no-cache", "daemon", "--once", "--low-priority"]);
        let s3 = job_argv(Path::new("/c"), &JobFlags { repo: Some("s3:http://h:1/b".into()), ..Default::default() });
        assert_eq!(s3[2], "s3:http://h:1/b");
    }

    #[test]
    fn the_scheduler_environment_is_minimal_plus_the_jobs_own() {
        let env = Env::from_pairs([("OPENCLAW_STATE_DIR", "/s"), ("OPENCLAW_PROFILE", "work"), ("UNRELATED", "x")]);
        let vars = job_env(JobKind::Cron, &env);
        assert_eq!(vars[0], ("CLAWBACK_TRIGGER".to_string(), "cron".to_string()));
        assert!(vars.contains(&("OPENCLAW_PROFILE".to_string(), "work".to_string())));
        assert!(!vars.iter().any(|(k, _)| k == "UNRELATED"));
        let job = Job { kind: JobKind::Cron, argv: vec![], env: vars };
        let e = job.scheduled_env();
        let get = |k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("PATH"), get("SHELL"), get("OPENCLAW_STATE_DIR")),
            (Some("/usr/bin:/bin"), Some("/bin/sh"), Some("/s"))
        );
        let sd = Job { kind: JobKind::Systemd, ..job }.scheduled_env();
        assert!(sd.contains(&("PATH".to_string(), "/usr/local/bin:/usr/bin:/bin".to_string())));
        assert!(Job { kind: JobKind::Cron, argv: vec!["/bin/true".into()], env: vec![] }.probe().is_err());
    }
}
