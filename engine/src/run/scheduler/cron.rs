//! The crontab block: `schedule install --cron` writes one tagged block (the 5 fields, the job's
//! variables, its command, output appended to a log; a `CRON_TZ=` line for a zoned schedule) last
//! in the user's crontab, replaces it on a new install and strips it on removal, through the
//! `crontab` program ([`CRONTAB_ENV`] overrides it).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::shell::{sh_line, sh_quote, sh_words, split_assignments};
use super::{Job, JobKind};
use crate::config::Schedule;
use crate::error::{Error, Result};
use crate::openclaw::Env;

/// Overrides the `crontab` program (tests, or a wrapper).
pub const CRONTAB_ENV: &str = "CLAWBACK_CRONTAB_CMD";
pub const CRON_BEGIN: &str =
    "# >>> clawback (managed by `clawback schedule install --cron`; remove with `clawback schedule remove --cron`)";
pub const CRON_END: &str = "# <<< clawback";

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

fn crontab_cmd(env: &Env) -> OsString {
    env.get(CRONTAB_ENV).filter(|v| !v.is_empty()).map(OsString::from).unwrap_or_else(|| "crontab".into())
}

/// The user's crontab (empty when there is none).
pub fn read_crontab(env: &Env) -> Result<String> {
    let cmd = crontab_cmd(env);
    let out =
        Command::new(&cmd).arg("-l").stdin(Stdio::null()).output().map_err(|e| {
            Error::Other(format!("cannot run `{} -l` (is cron installed?): {e}", cmd.to_string_lossy()))
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.to_ascii_lowercase().contains("no crontab") {
        return Ok(String::new());
    }
    Err(Error::Other(format!("`{} -l` failed: {}", cmd.to_string_lossy(), err.lines().next().unwrap_or("").trim())))
}

/// Replaces the user's crontab with `text`.
pub fn write_crontab(env: &Env, text: &str) -> Result<()> {
    let cmd = crontab_cmd(env);
    let mut child = Command::new(&cmd)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Other(format!("cannot run `{} -`: {e}", cmd.to_string_lossy())))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(text.as_bytes()).map_err(|e| Error::Other(format!("cannot write the crontab: {e}")))?;
    drop(stdin);
    let out =
        child.wait_with_output().map_err(|e| Error::Other(format!("cannot run `{} -`: {e}", cmd.to_string_lossy())))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "`{} -` refused the new crontab: {}",
            cmd.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").trim()
        )));
    }
    Ok(())
}

/// The crontab without clawback's block.
pub fn strip_block(text: &str) -> (String, bool) {
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

/// A schedule's `CRON_TZ=`/`TZ=` zone, and the expression after it.
pub fn split_tz(text: &str) -> (Option<&str>, &str) {
    for p in ["CRON_TZ=", "TZ="] {
        if let Some(r) = text.strip_prefix(p) {
            let (z, rest) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            return (Some(z), rest.trim());
        }
    }
    (None, text.trim())
}

/// The crontab line for a job: the fields, `CLAWBACK_TRIGGER=cron` and the carried variables,
/// the command, output appended to `log`.
pub fn line(fields: &str, carried: &[(String, String)], argv: &[OsString], log: &Path) -> String {
    let mut env_words = vec!["CLAWBACK_TRIGGER=cron".to_string()];
    env_words.extend(carried.iter().map(|(k, v)| format!("{k}={}", sh_quote(v))));
    format!("{fields} {} {} >> {} 2>&1", env_words.join(" "), sh_line(argv), sh_quote(&log.to_string_lossy()))
}

/// The tagged block holding `line`, with its zone.
pub fn block(line: &str, tz: Option<&str>) -> String {
    let mut block = format!("{CRON_BEGIN}\n");
    if let Some(z) = tz {
        block.push_str(&format!("CRON_TZ={z}\n"));
    }
    block.push_str(&format!("{line}\n{CRON_END}\n"));
    block
}

/// The job in clawback's crontab line: five fields, `K=V` words, the command, the redirection.
pub fn job_from_cron_line(line: &str) -> Option<Job> {
    let rest = line.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
    let cmd = rest.split(" >> ").next()?;
    let (env, argv) = split_assignments(sh_words(cmd)?);
    Some(Job { kind: JobKind::Cron, argv, env })
}

/// The jobs in clawback's block of a crontab, each with the line it came from.
pub fn jobs(text: &str) -> Vec<(String, Job)> {
    let mut out = Vec::new();
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_to_cron() {
        let f = |s: &str| cron_fields(&Schedule::parse(s).unwrap()).map(|x| x.0);
        assert_eq!(f("2h").unwrap(), "0 */2 * * *");
        assert_eq!(f("30m").unwrap(), "*/30 * * * *");
        assert_eq!(f("1d").unwrap(), "0 0 * * *");
        assert!(f("90m").unwrap_err().to_string().contains("cron cannot run every 90m"));
        assert!(f("10s").is_err());
        let (c, tz) = cron_fields(&Schedule::parse("CRON_TZ=UTC 5 4 * * *").unwrap()).unwrap();
        assert_eq!((c.as_str(), tz.as_deref()), ("5 4 * * *", Some("UTC")));
    }

    #[test]
    fn the_block_is_added_read_back_and_stripped() {
        let argv: Vec<OsString> = vec!["/opt/claw back/clawback".into(), "daemon".into(), "--once".into()];
        let carried = vec![("X".to_string(), "a b%$c".to_string())];
        let l = line("0 */2 * * *", &carried, &argv, Path::new("/log"));
        let mine = "MAILTO=me\n15 4 * * * /usr/bin/true\n";
        let text = format!("{mine}{}", block(&l, Some("UTC")));
        let found = jobs(&text);
        assert_eq!(found.len(), 1, "{text}");
        let mut env = vec![("CLAWBACK_TRIGGER".to_string(), "cron".to_string())];
        env.extend(carried);
        assert_eq!((found[0].1.argv.clone(), found[0].1.env.clone()), (argv, env));
        assert_eq!(strip_block(&text), (mine.to_string(), true));
        assert_eq!(strip_block(mine), (mine.to_string(), false));
    }
}
