//! clawback's job in OpenClaw's own scheduler, made the way OpenClaw makes its own scheduled
//! backup (`openclaw backup enable`): a command job (the gateway runs the argv itself, with no
//! shell, no agent and no model) carrying a declaration key, so installing again updates the one
//! job in place. Here: the `openclaw cron add` arguments, which jobs are clawback's, and the job a
//! listed one runs. Running `openclaw` is the caller's (the CLI's `openclaw_job`).

use std::ffi::OsString;
use std::path::Path;

use super::shell::{sh_quote, sh_words, split_assignments};
use super::{Job, JobKind};
use crate::config::Schedule;
use crate::openclaw::cron::{read_store, CronJob};

/// The job's declaration key, which is also its name.
pub const DECLARATION_KEY: &str = "clawback-backup";
/// How long OpenClaw lets one run take (its default for command jobs is 10 minutes).
pub const JOB_TIMEOUT_S: u64 = 24 * 3600;
/// What to say when a cron command cannot reach the gateway.
pub const NEEDS_GATEWAY: &str =
    "OpenClaw's cron commands go through its gateway: start it (`openclaw gateway run`, or `openclaw gateway start` for its service) and run this again";

/// An interval as OpenClaw's `--every` reads it (whole days, hours, minutes or seconds).
pub fn every(s: &Schedule) -> Option<String> {
    let Schedule::Every { interval, .. } = s else { return None };
    let secs = interval.as_secs().max(1);
    Some(match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    })
}

/// `openclaw cron add ...` for this schedule and job.
pub fn add_args(s: &Schedule, argv: &[OsString], env: &[(String, String)], cwd: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        ["cron", "add", "--name", DECLARATION_KEY, "--declaration-key", DECLARATION_KEY].map(String::from).to_vec();
    v.extend(["--description".into(), format!("clawback backup of OpenClaw (schedule {s})")]);
    match every(s) {
        Some(e) => v.extend(["--every".into(), e]),
        None => {
            let (tz, rest) = super::cron::split_tz(s.as_str());
            v.extend(["--cron".into(), rest.to_string()]);
            if let Some(z) = tz {
                v.extend(["--tz".into(), z.to_string()]);
            }
        }
    }
    let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    v.extend(["--command-argv".into(), serde_json::to_string(&argv).expect("strings serialize")]);
    for (k, val) in env {
        v.extend(["--command-env".into(), format!("{k}={val}")]);
    }
    v.extend(["--command-cwd".into(), cwd.to_string_lossy().into_owned()]);
    v.extend(["--timeout-seconds".into(), JOB_TIMEOUT_S.to_string(), "--no-deliver".into(), "--json".into()]);
    v
}

/// The add command as a person would type it.
pub fn printable(args: &[String]) -> String {
    format!("openclaw {}", args.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" "))
}

/// Whether a job is clawback's: its declaration key (or name, for one made without a key), or a
/// command job that runs `clawback ... daemon`.
pub fn is_ours(j: &CronJob) -> bool {
    j.is(DECLARATION_KEY)
        || j.command_argv().is_some_and(|a| {
            Path::new(&a[0]).file_name().is_some_and(|n| n == "clawback") && a.iter().any(|w| w == "daemon")
        })
}

/// The job a command job runs; one an earlier clawback made with `--command` (`sh -lc "env K=V
/// ... clawback ..."`) is read through its shell line.
pub fn to_job(j: &CronJob) -> Option<Job> {
    let argv = j.command_argv()?;
    if argv.len() == 3 && argv[0] == "sh" && (argv[1] == "-lc" || argv[1] == "-c") {
        return job_from_openclaw_command(&argv[2]);
    }
    Some(Job {
        kind: JobKind::Openclaw,
        argv: argv.into_iter().map(OsString::from).collect(),
        env: j.command_env().into_iter().collect(),
    })
}

/// The job in the shell line of an OpenClaw job an earlier clawback made with `--command`
/// (`env K=V ... clawback ...`).
pub fn job_from_openclaw_command(cmd: &str) -> Option<Job> {
    let mut words = sh_words(cmd)?;
    if words.first().is_some_and(|w| w == "env") {
        words.remove(0);
    }
    let (env, argv) = split_assignments(words);
    Some(Job { kind: JobKind::Openclaw, argv, env })
}

/// clawback's jobs in OpenClaw's scheduler: from `listed` (what `openclaw cron list` answered),
/// else from the store on disk. Each with where it was found.
pub fn installed(state_dir: &Path, listed: Option<&[CronJob]>) -> Vec<(String, Job)> {
    let (jobs, from) = match listed {
        Some(j) => (j.to_vec(), "`openclaw cron list`".to_string()),
        None => match read_store(state_dir) {
            Ok(Some((j, p))) => (j, p.display().to_string()),
            _ => return Vec::new(),
        },
    };
    jobs.iter()
        .filter(|j| is_ours(j))
        .filter_map(|j| {
            let job = to_job(j)?;
            let id = j.id.as_deref().unwrap_or("?");
            let state = if j.enabled { "" } else { ", DISABLED: `openclaw cron enable <id>`" };
            Some((format!("OpenClaw cron job {} (id {id}{state}) in {from}", j.name), job))
        })
        .collect()
}

/// The ids of clawback's jobs in OpenClaw's store on disk (to say how to remove them where no
/// `openclaw` command is at hand).
pub fn ids_in_store(state_dir: &Path) -> Vec<String> {
    read_store(state_dir)
        .ok()
        .flatten()
        .map(|(jobs, _)| jobs.into_iter().filter(is_ours).filter_map(|j| j.id).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::scheduler::shell::sh_line;

    #[test]
    fn the_add_command() {
        let argv: Vec<OsString> = vec!["/opt/clawback".into(), "daemon".into(), "--once".into()];
        let env = vec![("CLAWBACK_TRIGGER".to_string(), "openclaw".to_string())];
        let a = add_args(&Schedule::parse("2h").unwrap(), &argv, &env, Path::new("/home/u"));
        let s = a.join(" ");
        assert!(s.starts_with("cron add --name clawback-backup --declaration-key clawback-backup"), "{s}");
        assert!(s.contains("--every 2h --command-argv [\"/opt/clawback\",\"daemon\",\"--once\"]"), "{s}");
        assert!(
            s.contains("--command-env CLAWBACK_TRIGGER=openclaw --command-cwd /home/u --timeout-seconds 86400"),
            "{s}"
        );
        let a = add_args(&Schedule::parse("CRON_TZ=Europe/Berlin 30 3 * * *").unwrap(), &argv, &env, Path::new("/h"));
        assert!(a.join(" ").contains("--cron 30 3 * * * --tz Europe/Berlin"), "{a:?}");
        assert_eq!(every(&Schedule::parse("1d").unwrap()).unwrap(), "1d");
        assert_eq!(every(&Schedule::parse("90m").unwrap()).unwrap(), "90m");
    }

    #[test]
    fn an_older_shell_job_reads_back() {
        let argv: Vec<OsString> = vec!["/opt/claw back/clawback".into(), "daemon".into()];
        let env = vec![("X".to_string(), "a b%$c".to_string())];
        let j = job_from_openclaw_command(&format!("env X={} {}", sh_quote("a b%$c"), sh_line(&argv))).unwrap();
        assert_eq!((j.argv, j.env), (argv, env));
    }
}
