//! Running the installed `openclaw` program: found on PATH, run with a time limit (a slow Node
//! start or a gateway that does not answer never hangs clawback; the whole process group is
//! killed), and its JSON answer parsed. clawback asks it two things: its verdict on its own config
//! (`config validate --json`, at most once per run) and its cron jobs (`cron list/add/rm`, which
//! go through a running gateway).

use clawback_engine::openclaw::cron::{jobs_from_list, CronJob};
use clawback_engine::openclaw::program;
pub use clawback_engine::openclaw::program::Output;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How long `openclaw config validate` may take (Node starts in a few seconds on a busy machine).
pub const VALIDATE_LIMIT: Duration = Duration::from_secs(45);
/// How long one `openclaw cron ...` call may take (its own gateway timeout is 30 s).
pub const CRON_LIMIT: Duration = Duration::from_secs(60);

/// The `openclaw` program on PATH.
#[derive(Clone, Debug)]
pub struct OpenClaw {
    pub bin: PathBuf,
}

impl OpenClaw {
    pub fn find() -> Option<OpenClaw> {
        clawback_engine::run::notify::find_on_path("openclaw").map(|bin| OpenClaw { bin })
    }

    /// Runs `openclaw ARGS` with stdin closed and colour off; Err when it cannot start or does not
    /// finish within `limit` (then its process group is killed).
    pub fn run(&self, args: &[&str], limit: Duration) -> Result<Output, String> {
        let mut c = Command::new(&self.bin);
        c.args(args);
        program::run_limited(c, limit)
    }

    /// The jobs of OpenClaw's scheduler, disabled ones too (`cron list --all --json`, through the
    /// gateway). Err says why it could not be asked.
    pub fn cron_list(&self) -> Result<Vec<CronJob>, String> {
        let o = self.run(&["cron", "list", "--all", "--json"], CRON_LIMIT)?;
        if !o.success {
            return Err(o.complaint());
        }
        o.json.as_ref().and_then(jobs_from_list).ok_or_else(|| "`openclaw cron list --json` printed no job list".into())
    }

    /// `cron add --help`, to see which flags this OpenClaw has.
    pub fn cron_add_help(&self) -> String {
        self.run(&["cron", "add", "--help"], CRON_LIMIT).map(|o| o.stdout).unwrap_or_default()
    }
}

/// OpenClaw's verdict on a `backup` key in its config.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The config is valid with the key in it.
    Accepts,
    /// It refuses the key; OpenClaw's own words (`<root>: Unrecognized key: "backup"`).
    Rejects(String),
    /// It refuses the config for other reasons only (listed); the key itself is not named.
    OtherIssues(Vec<String>),
    /// No verdict: it could not run, timed out, or printed none (why).
    Unknown(String),
}

/// `openclaw config validate --json`, read for what it says about the `backup` key. Each command
/// asks at most once; the daemon asks again each cycle, so a fixed openclaw.json is seen.
pub fn validate(oc: &OpenClaw) -> Verdict {
    validate_now(oc)
}

/// `openclaw config validate --json`, run now (after a change, to confirm it).
pub fn validate_now(oc: &OpenClaw) -> Verdict {
    match oc.run(&["config", "validate", "--json"], VALIDATE_LIMIT) {
        Ok(o) => verdict(&o),
        Err(e) => Verdict::Unknown(e),
    }
}

fn verdict(o: &Output) -> Verdict {
    let Some(v) = o.json.as_ref().filter(|v| v.get("valid").is_some_and(Value::is_boolean)) else {
        return Verdict::Unknown(format!("`openclaw config validate --json` gave no verdict ({})", o.complaint()));
    };
    if v["valid"] == true {
        return Verdict::Accepts;
    }
    let issues: Vec<(String, String)> = v["issues"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    (s("path"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default();
    let about_backup = |(path, msg): &(String, String)| {
        path == "backup"
            || path.starts_with("backup.")
            || ((path == "<root>" || path.is_empty()) && msg.contains("\"backup\""))
    };
    match issues.iter().find(|i| about_backup(i)) {
        Some((path, msg)) => Verdict::Rejects(format!("{path}: {msg}")),
        None => Verdict::OtherIssues(issues.iter().map(|(p, m)| format!("{p}: {m}")).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str) -> Output {
        Output {
            success: false,
            code: Some(1),
            stdout: stdout.into(),
            stderr: String::new(),
            json: program::parse_last_json(stdout),
        }
    }

    #[test]
    fn verdicts_as_openclaw_2026_9_prints_them() {
        assert_eq!(
            verdict(&out(r#"{"valid":true,"path":"/h/.openclaw/openclaw.json","warnings":[]}"#)),
            Verdict::Accepts
        );
        let rejected = r#"{
  "ok": false,
  "error": { "type": "cli_error", "message": "OpenClaw config is invalid: ~/.openclaw/openclaw.json" },
  "valid": false,
  "path": "/h/.openclaw/openclaw.json",
  "issues": [ { "path": "<root>", "message": "Unrecognized key: \"backup\"" } ]
}"#;
        assert_eq!(
            verdict(&out(&format!("some log line\n{rejected}\n"))),
            Verdict::Rejects("<root>: Unrecognized key: \"backup\"".into())
        );
        let other = r#"{"valid":false,"issues":[{"path":"gateway.port","message":"Expected number"}]}"#;
        assert_eq!(verdict(&out(other)), Verdict::OtherIssues(vec!["gateway.port: Expected number".into()]));
        assert!(matches!(verdict(&out("error: unknown option '--json'")), Verdict::Unknown(_)));
    }
}
