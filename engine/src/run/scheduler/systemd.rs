//! The systemd user timer: the service and timer files `schedule install --systemd` writes (the
//! job's command and variables, nice and idle I/O, a memory cap, a day's time limit; the schedule
//! as `OnUnitActiveSec=` or a cron expression translated to `OnCalendar=`), reading the job back
//! from an installed service, and finding and running `systemctl --user`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::shell::sh_words;
use super::{Job, JobKind};
use crate::config::Schedule;
use crate::error::{Error, Result};
use crate::openclaw::Env;

/// Overrides the `systemctl` program.
pub const SYSTEMCTL_ENV: &str = "CLAWBACK_SYSTEMCTL_CMD";
/// The unit files' names.
pub const SERVICE: &str = "clawback.service";
pub const TIMER: &str = "clawback.timer";

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

/// systemd's quoting for ExecStart= words.
pub fn systemd_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$"))
    }
}

/// Splits a systemd command line or Environment= value into words (undoing [`systemd_quote`]).
pub fn systemd_words(s: &str) -> Option<Vec<String>> {
    let words = sh_words(s)?;
    Some(words.into_iter().map(|w| w.replace("%%", "%").replace("$$", "$")).collect())
}

/// The job in an installed systemd service file.
pub fn job_from_unit(text: &str) -> Option<Job> {
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

/// Where user units live: `$XDG_CONFIG_HOME/systemd/user` (default `~/.config/systemd/user`).
pub fn unit_dir(env: &Env) -> PathBuf {
    let xdg = env.get("XDG_CONFIG_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    xdg.unwrap_or_else(|| crate::repo::home_dir().join(".config")).join("systemd").join("user")
}

/// The `systemctl` program: [`SYSTEMCTL_ENV`], else the one on PATH.
pub fn systemctl(env: &Env) -> Option<PathBuf> {
    match env.get(SYSTEMCTL_ENV).filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => crate::run::notify::find_on_path("systemctl"),
    }
}

/// Runs `systemctl --user ARGS`; Err with its complaint when it fails.
pub fn run_systemctl(bin: &Path, args: &[&str]) -> Result<(), String> {
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

/// The service and timer files for `schedule`, running `argv` with the variables `carried` (and
/// `CLAWBACK_TRIGGER=systemd`).
pub fn unit_files(
    s: &Schedule,
    argv: &[OsString],
    carried: &[(String, String)],
    memory_max: &str,
) -> Result<(String, String)> {
    let exec = argv.iter().map(|a| systemd_quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ");
    let mut env_lines = String::new();
    for (k, v) in carried {
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
        crate::run::planner::default_jitter(s).as_secs()
    );
    Ok((service, timer))
}

// ---------- cron expression → OnCalendar ----------

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The values a cron field matches, or `None` for `*` (every value).
fn expand_field(f: &str, lo: u32, hi: u32, names: &[&str]) -> std::result::Result<Option<Vec<u32>>, String> {
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
    let (tz, expr) = super::cron::split_tz(text);
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
    use crate::run::scheduler::shell::sh_quote;

    #[test]
    fn cron_to_calendar() {
        assert_eq!(on_calendar("0 */2 * * *").unwrap(), "*-*-* 00,02,04,06,08,10,12,14,16,18,20,22:00:00");
        assert_eq!(
            on_calendar("CRON_TZ=Europe/Berlin 30 3 * * 1-5").unwrap(),
            "Mon,Tue,Wed,Thu,Fri *-*-* 03:30:00 Europe/Berlin"
        );
        assert_eq!(on_calendar("@daily").unwrap(), "*-*-* 00:00:00");
        assert_eq!(on_calendar("0 0 1 * 1").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_unit_runs_the_job_and_reads_back() {
        let argv: Vec<OsString> =
            vec!["/opt/claw back/clawback".into(), "--config".into(), "/a/it's.json".into(), "daemon".into()];
        let carried = vec![("X".to_string(), "a b%$c".to_string())];
        let (service, timer) = unit_files(&Schedule::parse("2h").unwrap(), &argv, &carried, "1G").unwrap();
        assert!(service.contains("MemoryMax=1G\n") && service.contains("Environment=CLAWBACK_TRIGGER=systemd\n"));
        assert!(timer.contains("OnUnitActiveSec=7200s\n") && timer.contains("RandomizedDelaySec=120\n"), "{timer}");
        let j = job_from_unit(&service).unwrap();
        let mut env = vec![("CLAWBACK_TRIGGER".to_string(), "systemd".to_string())];
        env.extend(carried);
        assert_eq!((j.argv, j.env), (argv, env));
        let _ = sh_quote("x");
    }
}
