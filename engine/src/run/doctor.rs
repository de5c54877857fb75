//! What `clawback test` (alias `doctor`) checks and what it concludes: one [`Check`] per piece a
//! backup needs, with the fix for what actually failed ([`fix_for`]: a wrong secret or a server
//! that is down is not a permissions problem). The probes that need only the engine live here:
//! the storage takes a scratch object (listed, written, read back, deleted under `locks/`), a
//! backup and restore round trip through a throwaway repository, the run log's recent runs, the
//! schedule's verdict and what a scheduled run would lack (an unset variable, a hook not on PATH).
//! The CLI resolves the repository and password and prints the checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::backend::local::LocalBackend;
use crate::backend::name::LockName;
use crate::backend::{Backend, Kind, ObjectName};
use crate::commands::backup::{backup, BackupOptions};
use crate::commands::restore::{restore, RestoreOptions};
use crate::progress::Progress;
use crate::repo::{CacheOptions, InitOptions, Repository, Secret};
use crate::run::runlog::{RunLog, RunStatus};
use crate::run::scheduler::{shell::sh_words, Job};

/// One check's outcome. `warning`: shown with `!`, not a failure (no schedule configured).
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check { name, ok: true, detail: detail.into(), fix: None, warning: false }
}

pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, ok: false, detail: detail.into(), fix: Some(fix.into()), warning: false }
}

/// Not a failure, but worth a `!` line.
pub fn warn(name: &'static str, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check { name, ok: true, detail: detail.into(), fix, warning: true }
}

/// The fix for a failed check, from what the error says. The one place that maps kinds of
/// failure to what to do: a wrong secret, a server that is down and a missing permission each
/// get their own fix. `check` gives the default when the error is none of the known kinds;
/// `env_file` is the environment file scheduled runs read, as shown to the user.
pub fn fix_for(check: &str, error: &str, env_file: &str) -> String {
    let e = error.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    if has(&["referenced by the config but the scheduled job will not have it"]) {
        return format!("run `clawback setup` again from a shell that has the variable, or add it to {env_file} (KEY=VALUE, mode 0600)");
    }
    if has(&["scheduled job has no repository password", "no password given"]) {
        return format!(
            "give the job a password source: encryption.keyFile in the config, or CLAWBACK_PASSWORD in {env_file}; `clawback setup` writes both"
        );
    }
    if has(&["wrong password", "no key file can be opened"]) {
        return "give the repository's password: CLAWBACK_PASSWORD, CLAWBACK_PASSWORD_FILE, --password-file, or the config's encryption.keyFile / passwordCommand; a new password is added with `clawback key add`".into();
    }
    if has(&["environment file"]) && has(&["chmod", "chown"]) {
        return format!("make {env_file} private: chmod 600 {env_file}");
    }
    if has(&[
        "signaturedoesnotmatch",
        "signature does not match",
        "signature mismatch",
        "invalidaccesskeyid",
        "access key id does not exist",
        "unknown access key",
        "invalid access key",
    ]) {
        return "the access key id or secret is wrong: correct storage.accessKeyId / secretAccessKey (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) to the key pair the provider shows".into();
    }
    if has(&["requesttimetooskewed", "clock skew", "time too skewed", "clock is"]) {
        return "this machine's clock is off: turn on time sync (`timedatectl set-ntp true`) and try again".into();
    }
    if has(&[
        "no credentials",
        "credentials not found",
        "no s3 credentials",
        "missing credentials",
        "credentials were found",
    ]) {
        return format!("give S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.accessKeyId / secretAccessKey as ${{VAR}} references (scheduled runs read them from {env_file})");
    }
    if has(&["cannot reach", "could not connect", "error trying to connect", "dispatch failure"])
        && !has(&["dns", "resolve", "lookup", "tls", "certificate"])
    {
        return "the endpoint cannot be reached: check that the S3 server is up and that the host and port of storage.endpoint / AWS_ENDPOINT_URL are right".into();
    }
    if has(&["connection refused", "refused the connection"]) {
        return "nothing answers at the endpoint: start the S3 server, or correct the host and port of storage.endpoint / AWS_ENDPOINT_URL".into();
    }
    if has(&[
        "dns",
        "failed to lookup",
        "name or service not known",
        "could not resolve",
        "does not resolve",
        "no such host",
    ]) {
        return "the endpoint's host name does not resolve: correct storage.endpoint / AWS_ENDPOINT_URL, or check this machine's DNS".into();
    }
    if has(&["tls", "certificate", "handshake", "ssl"]) {
        return "the TLS connection failed: check http:// versus https:// in the endpoint, and that the server's certificate is valid for its name".into();
    }
    if has(&["timed out", "timeout", "did not finish within"]) {
        return "the endpoint did not answer in time: check the network, firewall or VPN between here and the endpoint, and that the server is up".into();
    }
    if has(&["nosuchbucket", "bucket does not exist", "no such bucket"]) {
        return "create the bucket: `clawback init --create-bucket` (or in the provider's console), or correct storage.bucket".into();
    }
    if has(&["accessdenied", "access denied", "forbidden", "permission denied", "not authorized"]) {
        return "give clawback's credentials list, read, write and delete rights on the repository (bucket policy or folder permissions)".into();
    }
    if has(&["no space", "quota"]) {
        return "free space on the storage (or raise its quota), then `clawback prune` old data".into();
    }
    if has(&["read-only file system"]) {
        return "the repository's file system is mounted read-only: remount it read-write or choose another folder"
            .into();
    }
    if has(&["state dir"]) && has(&["does not exist"]) {
        return "set OPENCLAW_STATE_DIR in the shell you run `clawback schedule install` from (it is written into the job), or create the state dir".into();
    }
    if has(&["is not on the scheduled job's path"]) {
        return format!("give the hook's full path in the config, or add its folder to PATH in {env_file}");
    }
    if has(&["does not exist"]) && check != "config" {
        return "create it with `clawback init` (or `clawback setup`), or point --repo/CLAWBACK_REPO at the right place".into();
    }
    match check {
        "config" => "correct the file named above (JSON5; `clawback setup --force` writes a new one)".into(),
        // The scratch object could not be listed, written or deleted, for no reason named above.
        "storage" if has(&["cannot list", "cannot write", "cannot delete", "cannot read back"]) => {
            "give clawback's credentials list, read, write and delete rights on the repository (bucket policy or folder permissions)".into()
        }
        "storage" => "check the repository location (--repo, CLAWBACK_REPO or the config's storage) and its credentials".into(),
        "key" => fix_for("key", "wrong password", env_file),
        "scheduled run" => "run the job's command by hand (`clawback daemon --once`) to see the error, fix it, and check again with `clawback test`".into(),
        _ => "see the error above".into(),
    }
}

/// List, write, read back and delete a scratch object under `locks/`.
pub fn probe_storage(be: &dyn Backend) -> std::result::Result<(), String> {
    be.list(Kind::Lock).map_err(|e| format!("cannot list locks/: {e}"))?;
    let mut r = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut r))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let name = ObjectName::of(&LockName::Probe(r));
    let data = format!("clawback test probe {}\n", hex::encode(r)).into_bytes();
    be.write(&name, &data).map_err(|e| format!("cannot write locks/{name}: {e}"))?;
    let back = be.read(&name);
    let deleted = be.delete(&name);
    match back {
        Ok(b) if b == data => {}
        Ok(_) => return Err(format!("locks/{name} read back different bytes")),
        Err(e) => return Err(format!("cannot read back locks/{name}: {e}")),
    }
    deleted.map_err(|e| format!("cannot delete locks/{name}: {e}"))
}

/// A backup and restore of a small scratch folder through a throwaway repository.
pub fn round_trip(tmp: &Path) -> Check {
    const NAME: &str = "round trip";
    match round_trip_in(tmp) {
        Ok(d) => pass(NAME, d),
        Err(e) => fail(
            NAME,
            e,
            "make the temporary folder writable ($TMPDIR) and check free space; if it persists, report it as a bug",
        ),
    }
}

fn round_trip_in(tmp: &Path) -> std::result::Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix("clawback-test-")
        .tempdir_in(tmp)
        .map_err(|e| format!("cannot create a scratch folder in {}: {e}", tmp.display()))?;
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("memory")).map_err(|e| err("cannot create the scratch folder", &e))?;
    let mut noise = vec![0u8; 256 * 1024];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut noise))
        .map_err(|e| err("cannot read /dev/urandom", &e))?;
    let files: Vec<(PathBuf, Vec<u8>)> = vec![
        (src.join("MEMORY.md"), b"# memory\nclawback test\n".to_vec()),
        (src.join("memory/2026-01-01.md"), b"a day\n".repeat(1000)),
        (src.join("blob.bin"), noise),
    ];
    for (p, d) in &files {
        std::fs::write(p, d).map_err(|e| err("cannot write the scratch files", &e))?;
    }
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("repo")));
    let pw = Secret(b"clawback-test-scratch".to_vec());
    let mut opts = InitOptions::default();
    opts.kdf.m_cost = 1024;
    opts.kdf.t_cost = 1;
    Repository::init(be.clone(), &pw, &opts).map_err(|e| err("init of the scratch repository", &e))?;
    let repo = Repository::open(be, &pw, &CacheOptions { dir: None, disabled: true })
        .map_err(|e| err("opening the scratch repository", &e))?;
    let bo = BackupOptions { paths: vec![src.clone()], tags: vec!["clawback-test".into()], ..Default::default() };
    let r = backup(&repo, &bo, &Progress::default()).map_err(|e| err("backup", &e))?;
    let id = r.snapshot_id.ok_or("the backup wrote no snapshot")?;
    let (_, snap) = repo.find_snapshot(&id.to_hex(), |_| true).map_err(|e| err("reading the snapshot", &e))?;
    let target = dir.path().join("restore");
    let ro = RestoreOptions { target: target.clone(), verify: true, ..Default::default() };
    restore(&repo, &snap, &ro, &Progress::default()).map_err(|e| err("restore", &e))?;
    let mut bytes = 0usize;
    for (p, d) in &files {
        let back = target.join(p.strip_prefix("/").unwrap_or(p));
        let got = std::fs::read(&back).map_err(|e| err(&format!("reading restored {}", back.display()), &e))?;
        if &got != d {
            return Err(format!("restored {} differs from what was backed up", back.display()));
        }
        bytes += d.len();
    }
    Ok(format!("backed up and restored {} files ({bytes} bytes) in a scratch repository, identical", files.len()))
}

/// Why there is no repository at `be`: "no repository there" unless the storage said something
/// else (unreachable, a missing bucket).
pub fn why_no_repository(be: &dyn Backend) -> String {
    match be.read(&ObjectName::config()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => e.to_string(),
        Err(e) if crate::repo::location::is_missing_container(&e) => e.to_string(),
        _ => "no repository there (does not exist)".to_string(),
    }
}

/// The schedule: none configured is a warning; configured but not installed (`installed`: where
/// it is, if anywhere) is a ✗.
pub fn schedule_check(configured: Option<&str>, installed: Option<&str>) -> Check {
    const NAME: &str = "schedule";
    let Some(sched) = configured else {
        return warn(
            NAME,
            "no schedule configured: backups run only when started by hand",
            Some("set `schedule` in the config (e.g. \"2h\"), then `clawback schedule install --systemd`".into()),
        );
    };
    match installed {
        Some(how) => pass(NAME, format!("every {sched}, installed: {how}")),
        None => fail(
            NAME,
            format!("{sched} configured, but no systemd timer, crontab line or OpenClaw cron job runs clawback"),
            "clawback schedule install --systemd (or --cron, or --openclaw); or keep `clawback daemon` running",
        ),
    }
}

/// Whether a scheduled run would have what it needs: each installed job's command (or, with none
/// installed, the `prospective` one `schedule install --systemd` would write) run under its
/// scheduler's environment with `--scheduled-probe`.
pub fn scheduled_run_check(
    configured: bool,
    installed: &[(String, Job)],
    prospective: impl FnOnce() -> Result<Job, String>,
    env_file: &str,
) -> Check {
    const NAME: &str = "scheduled run";
    if !configured && installed.is_empty() {
        return warn(NAME, "not checked: no schedule configured or installed", None);
    }
    let mut jobs = installed.to_vec();
    if jobs.is_empty() {
        match prospective() {
            Ok(j) => jobs.push(("the job `clawback schedule install --systemd` would write".into(), j)),
            Err(e) => return fail(NAME, e, "see the error above"),
        }
    }
    let mut passed = Vec::new();
    for (how, job) in &jobs {
        match job.probe() {
            Ok(what) => passed.push(format!("{how}: {what}")),
            Err(e) => {
                return fail(
                    NAME,
                    format!("{how}, run as {} runs it, would fail: {e}", job.kind.name()),
                    fix_for(NAME, &e, env_file),
                )
            }
        }
    }
    pass(NAME, passed.join("; "))
}

/// The first `${VAR}` the config loader warned is not set, if any (a scheduled run would lack it).
pub fn unset_variable(warnings: &[String]) -> Option<String> {
    warnings.iter().find_map(|w| {
        let name = w.split("refers to ${").nth(1).and_then(|r| r.split('}').next())?;
        w.contains("which is not set").then(|| name.to_string())
    })
}

/// The program a hook command starts, when it is one that must be found (not a shell builtin or
/// an assignment).
pub fn hook_program(hook: &str) -> Option<String> {
    let word = sh_words(hook).and_then(|w| w.into_iter().next())?;
    (!is_shell_builtin(&word)).then_some(word)
}

/// Whether `program` is found: a path that is a file, or a name on `PATH`.
pub fn program_found(program: &str) -> bool {
    if program.contains('/') {
        Path::new(program).is_file()
    } else {
        crate::run::notify::find_on_path(program).is_some()
    }
}

/// A shell word that needs no program on PATH.
pub fn is_shell_builtin(w: &str) -> bool {
    const BUILTINS: &[&str] = &[
        ":", ".", "[", "alias", "break", "case", "cd", "command", "continue", "echo", "eval", "exec", "exit", "export",
        "false", "for", "if", "printf", "pwd", "read", "return", "set", "shift", "source", "test", "trap", "true",
        "type", "ulimit", "umask", "unset", "wait", "while", "until", "{", "(", "!",
    ];
    BUILTINS.contains(&w) || w.contains('=') || w.starts_with('$')
}

/// The run log's last runs.
pub fn runs_check(log: &RunLog) -> Check {
    const NAME: &str = "recent runs";
    let recent = match log.recent(5) {
        Ok(r) => r,
        Err(e) => return fail(NAME, e.to_string(), format!("remove or repair {}", log.path().display())),
    };
    let Some(last) = recent.last() else {
        return pass(NAME, format!("no runs recorded yet ({} does not exist or is empty)", log.path().display()));
    };
    let failed = recent.iter().filter(|r| r.status == RunStatus::Failed).count();
    let when = last.end.format("%Y-%m-%d %H:%M UTC");
    if last.status == RunStatus::Failed {
        let why = last.error.clone().unwrap_or_else(|| format!("exit {}", last.exit_code));
        return fail(
            NAME,
            format!("the last run ({when}) failed: {why}; {failed} of the last {} failed", recent.len()),
            "run `clawback backup` to see the error, fix it, and check `clawback status`",
        );
    }
    pass(NAME, format!("last run {when}: {}; {failed} of the last {} failed", last.status.as_str(), recent.len()))
}

#[cfg(test)]
mod tests {
    use super::fix_for;

    #[test]
    fn each_kind_of_failure_gets_its_own_fix() {
        const RIGHTS: &str = "list, read, write and delete rights";
        for (check, error, want) in [
            (
                "storage",
                "SignatureDoesNotMatch: the request signature we calculated does not match",
                "access key id or secret",
            ),
            ("storage", "InvalidAccessKeyId", "access key id or secret"),
            ("storage", "connection refused (os error 111)", "start the S3 server"),
            ("storage", "cannot reach the S3 endpoint http://127.0.0.1:1", "S3 server is up"),
            ("storage", "dns error: failed to lookup address information", "does not resolve"),
            ("storage", "invalid peer certificate: UnknownIssuer", "TLS"),
            ("storage", "operation timed out", "did not answer in time"),
            ("storage", "RequestTimeTooSkewed", "clock"),
            ("storage", "no credentials found for the S3 endpoint", "give S3 credentials"),
            ("storage", "NoSuchBucket: the bucket does not exist", "create the bucket"),
            ("storage", "cannot write locks/x: AccessDenied", RIGHTS),
            ("storage", "cannot delete locks/x: the store said 501", RIGHTS),
            ("key", "wrong password or no key file can be opened with it", "key add"),
            (
                "scheduled run",
                "SEAWEED_KEY is referenced by the config but the scheduled job will not have it",
                "clawback setup",
            ),
            (
                "scheduled run",
                "environment file ~/.config/clawback/env is readable by others; run `chmod 600 x`",
                "chmod 600",
            ),
        ] {
            let fix = fix_for(check, error, "~/.config/clawback/env");
            assert!(fix.contains(want), "{error:?} -> {fix:?}");
            if want != RIGHTS {
                assert!(!fix.contains(RIGHTS), "{error:?} got a permissions fix: {fix:?}");
            }
        }
    }

    #[test]
    fn probes_of_a_folder_a_round_trip_and_the_run_log() {
        let t = tempfile::tempdir().unwrap();
        let be = super::LocalBackend::new(t.path().join("repo"));
        super::probe_storage(&be).unwrap();
        let c = super::round_trip(t.path());
        assert!(c.ok, "{c:?}");
        let log = super::RunLog::in_dir(t.path());
        assert!(super::runs_check(&log).ok);
        assert_eq!(
            super::unset_variable(&["x refers to ${SEAWEED_KEY}, which is not set".into()]).as_deref(),
            Some("SEAWEED_KEY")
        );
        assert_eq!(super::hook_program("FOO=1 echo hi"), None);
        assert_eq!(super::hook_program("'/opt/my tool' --x").as_deref(), Some("/opt/my tool"));
        assert!(super::program_found("sh") && !super::program_found("/no/such/tool"));
        let s = super::schedule_check(Some("2h"), None);
        assert!(!s.ok && s.fix.unwrap().contains("schedule install"));
        assert!(super::schedule_check(None, None).warning);
    }
}
