//! Running an installed program (OpenClaw's `openclaw`) with a time limit: stdin closed, colour
//! off, stdout and stderr captured, and the whole process group killed when it overruns (a slow
//! Node start or a gateway that does not answer never hangs clawback) or when it is done (helpers
//! it left in its group would hold the pipes open).

use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run printed, and how it ended.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The last JSON document on stdout (some commands print log lines first).
    pub json: Option<Value>,
}

impl Output {
    /// What OpenClaw said went wrong, in one line: its JSON error message, else the first line of
    /// stderr, else the exit status.
    pub fn complaint(&self) -> String {
        let from_json = self.json.as_ref().and_then(|v| {
            let m = v.pointer("/error/message").or_else(|| v.get("error")).and_then(Value::as_str)?;
            m.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
        });
        from_json
            .or_else(|| {
                self.stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with("OpenClaw 20") && !l.starts_with('🦞'))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".into(),
            })
    }
}

/// The last top-level JSON object or array in `text`.
pub fn parse_last_json(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(text.trim()) {
        return Some(v);
    }
    let starts: Vec<usize> =
        text.match_indices(['{', '[']).map(|(i, _)| i).filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n').collect();
    starts.into_iter().rev().find_map(|i| serde_json::from_str(text[i..].trim()).ok())
}

/// Runs `cmd`, waiting at most `limit`. Err says, in one line, that it could not start or did not
/// finish in time.
pub fn run_limited(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let what = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let group = -(child.id() as i32);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > limit => {
                // SAFETY: kill has no memory preconditions; the group is the child's own.
                unsafe { libc::kill(group, libc::SIGKILL) };
                let _ = child.wait();
                return Err(format!("`{what}` did not finish within {}s", limit.as_secs_f32()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for `{what}`: {e}")),
        }
    };
    // SAFETY: as above.
    unsafe { libc::kill(group, libc::SIGKILL) };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Output { success: status.success(), code: status.code(), json: parse_last_json(&stdout), stdout, stderr })
}
