//! Which OpenClaw a snapshot was taken of: `openclaw --version` when OpenClaw is installed (on
//! `PATH`), else the version that last wrote the config (`meta.lastTouchedVersion`). The snapshot
//! records which of the two it is ([`VersionSource`]).

use crate::format::snapshot::OpenclawMeta;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::format::snapshot::VersionSource;

/// How long `openclaw --version` may take (it answers in well under a second; Node's start-up on
/// a loaded machine is the slow part).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(5);

/// The version in `openclaw --version`'s output: `OpenClaw 2026.9.6 (eb377ac)` gives `2026.9.6`.
/// A bare version line (`2026.9.6`) is accepted too.
pub fn parse_cli_version(out: &str) -> Option<String> {
    let line = out.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let v = if first.eq_ignore_ascii_case("openclaw") { words.next()? } else { first };
    let v = v.strip_prefix('v').unwrap_or(v);
    let looks_like_version = v.chars().next().is_some_and(|c| c.is_ascii_digit())
        && v.contains('.')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'));
    looks_like_version.then(|| v.to_string())
}

/// Runs `program --version` (normally `openclaw`, found on `PATH`), waiting at most `timeout`;
/// `None` when it is missing, fails, prints no version or takes too long (it is then killed).
pub fn cli_version(program: &Path, timeout: Duration) -> Option<String> {
    run_version(Command::new(program), timeout)
}

fn run_version(mut cmd: Command, timeout: Duration) -> Option<String> {
    cmd.arg("--version");
    let out = super::program::run_limited(cmd, timeout).ok()?;
    out.success.then(|| parse_cli_version(&out.stdout)).flatten()
}

/// The installed CLI's `openclaw --version`, asked in a thread of its own while a backup runs:
/// Node's start-up took 0.10-0.24 s here, which every backup waited for before it began when it
/// was asked first. The snapshot, written last, takes the answer ([`CliVersion::record`]).
#[derive(Clone)]
pub struct CliVersion(Arc<Mutex<CliState>>);

enum CliState {
    Asking(std::thread::JoinHandle<Option<String>>),
    Answered(Option<String>),
}

impl std::fmt::Debug for CliVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CliVersion")
    }
}

impl CliVersion {
    /// Runs `openclaw --version` (found on `PATH`, at most [`CLI_TIMEOUT`]) in a new thread.
    pub fn ask() -> CliVersion {
        Self::ask_with(|| cli_version(Path::new("openclaw"), CLI_TIMEOUT))
    }

    fn ask_with(ask: impl FnOnce() -> Option<String> + Send + 'static) -> CliVersion {
        let t = std::thread::Builder::new().name("openclaw-version".into()).spawn(ask);
        CliVersion(Arc::new(Mutex::new(match t {
            Ok(h) => CliState::Asking(h),
            Err(_) => CliState::Answered(None),
        })))
    }

    /// The answer, waiting for it if need be; `None` when there is none (see [`cli_version`]).
    pub fn answer(&self) -> Option<String> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let answer = match std::mem::replace(&mut *st, CliState::Answered(None)) {
            CliState::Asking(h) => h.join().ok().flatten(),
            CliState::Answered(v) => v,
        };
        *st = CliState::Answered(answer.clone());
        answer
    }

    /// Records the CLI's version in `meta` when it answered; otherwise `meta` keeps the config's.
    pub fn record(&self, meta: &mut OpenclawMeta) {
        if let Some(v) = self.answer() {
            meta.openclaw_version = Some(v);
            meta.openclaw_version_source = Some(VersionSource::Cli);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn parses_the_cli_banner() {
        assert_eq!(parse_cli_version("OpenClaw 2026.9.6 (eb377ac)\n").as_deref(), Some("2026.9.6"));
        assert_eq!(parse_cli_version("\n2026.3.8\n").as_deref(), Some("2026.3.8"));
        assert_eq!(parse_cli_version("openclaw v2026.1.2-beta.1").as_deref(), Some("2026.1.2-beta.1"));
        assert_eq!(parse_cli_version("error: something"), None);
        assert_eq!(parse_cli_version(""), None);
        assert_eq!(parse_cli_version("OpenClaw"), None);
    }

    /// `sh -c BODY` (run through sh: executing a file this multi-threaded process just wrote can
    /// fail with "text file busy").
    fn script(body: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(body).arg("openclaw");
        c
    }

    #[test]
    fn the_version_is_asked_while_the_caller_goes_on() {
        let start = Instant::now();
        let v =
            CliVersion::ask_with(|| run_version(script("sleep 0.3; echo 'OpenClaw 2026.9.6 (eb377ac)'"), CLI_TIMEOUT));
        assert!(start.elapsed() < Duration::from_millis(200), "asking waited for the answer");
        let mut meta = OpenclawMeta { openclaw_version: Some("2026.1.8".into()), ..Default::default() };
        meta.openclaw_version_source = Some(VersionSource::Config);
        v.clone().record(&mut meta);
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(meta.openclaw_version.as_deref(), Some("2026.9.6"));
        assert_eq!(meta.openclaw_version_source, Some(VersionSource::Cli));
        assert_eq!(v.answer().as_deref(), Some("2026.9.6"), "a second look gets the same answer");
        // No answer: the config's version stays.
        let none = CliVersion::ask_with(|| run_version(script("exit 127"), CLI_TIMEOUT));
        let mut meta = OpenclawMeta { openclaw_version: Some("2026.1.8".into()), ..Default::default() };
        meta.openclaw_version_source = Some(VersionSource::Config);
        none.record(&mut meta);
        assert_eq!(meta.openclaw_version.as_deref(), Some("2026.1.8"));
        assert_eq!(meta.openclaw_version_source, Some(VersionSource::Config));
    }

    #[test]
    fn runs_the_program_with_a_time_limit() {
        let ok = script("test \"$1\" = --version && echo 'OpenClaw 2026.9.6 (eb377ac)'");
        assert_eq!(run_version(ok, CLI_TIMEOUT).as_deref(), Some("2026.9.6"));
        let fails = script("echo 'OpenClaw 2026.9.6'; exit 1");
        assert_eq!(run_version(fails, CLI_TIMEOUT), None);
        let slow = script("exec sleep 5");
        let start = Instant::now();
        assert_eq!(run_version(slow, Duration::from_millis(300)), None);
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(cli_version(Path::new("/nonexistent/openclaw"), CLI_TIMEOUT), None);
    }
}
