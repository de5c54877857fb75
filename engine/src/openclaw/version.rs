//! Which OpenClaw a snapshot was taken of: `openclaw --version` when OpenClaw is installed (on
//! `PATH`), else the version that last wrote the config (`meta.lastTouchedVersion`). The snapshot
//! records which of the two it is ([`VersionSource`]).

use std::path::Path;
use std::process::Command;
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

/// The version to record and where it came from: the installed CLI's, else the config's.
pub fn resolve(config_version: Option<&str>) -> Option<(String, VersionSource)> {
    match cli_version(Path::new("openclaw"), CLI_TIMEOUT) {
        Some(v) => Some((v, VersionSource::Cli)),
        None => config_version.map(|v| (v.to_string(), VersionSource::Config)),
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
