//! Secrets and permissions: a run of every everyday command (and failing ones) with a known,
//! distinctive passphrase, S3 credentials and notification tokens given through `${VAR}`, after
//! which no stdout, stderr, cache file, run log or plaintext repository file holds any of them, nor
//! the master key in hex or base64. The repository is 0600 files in 0700 folders, the cache 0700.

use crate::support::*;
use clawback_engine::backend::local::LocalBackend;
use clawback_engine::format::crypto::Subkeys;
use clawback_engine::repo::{Repository, Secret};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const PASSPHRASE: &str = "Zq8-passphrase-ORCHID-LANTERN-41x";
const S3_KEY_ID: &str = "AKIAZZTRUSTTEST0KEYID";
const S3_SECRET: &str = "wJalrXUtnFEMI-TRUST-k3y-SECRET-9f2b6c";
const TG_TOKEN: &str = "123456:TRUST-bot-token-AAFq7Zz";
const HOOK_TOKEN: &str = "hook-token-MAGENTA-77aa";

/// Where anything that must stay secret could end up, grepped together.
struct Leaks {
    needles: Vec<(String, String)>,
    seen: Vec<String>,
}

impl Leaks {
    fn scan(&mut self, origin: &str, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        let lower = text.to_ascii_lowercase();
        for (what, needle) in &self.needles {
            if text.contains(needle.as_str()) || lower.contains(&needle.to_ascii_lowercase()) {
                self.seen.push(format!("{what} found in {origin}"));
            }
        }
    }

    fn run(&mut self, r: &Run) {
        self.scan(&format!("stdout of `{}`", r.desc), r.stdout.as_bytes());
        self.scan(&format!("stderr of `{}`", r.desc), r.stderr.as_bytes());
    }

    fn files(&mut self, dir: &Path) {
        for f in files_under(dir) {
            if let Ok(bytes) = fs::read(&f) {
                self.scan(&f.display().to_string(), &bytes);
            }
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every folder under `dir` (itself included).
fn dirs_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().unwrap().is_dir() {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

#[test]
fn no_secret_reaches_any_output_log_or_cache_and_permissions_are_private() {
    let sb = Sandbox::new();
    let state = sb.path("state");
    fs::create_dir_all(&state).unwrap();
    let src = sb.path("src");
    write(&src.join("memory.md"), b"the agent remembers things\n");
    write(&src.join("data.bin"), &random_bytes(3, 300_000));
    fs::write(
        state.join("clawback.json"),
        r#"{
          // S3 credentials and tokens come from the environment; `--repo` points elsewhere.
          storage: { provider: "s3", bucket: "trust-bucket", region: "us-east-1",
                     endpoint: "http://127.0.0.1:9", accessKeyId: "${T_KEY_ID}", secretAccessKey: "${T_SECRET}" },
          notify: { onFailure: true, onSuccess: true, webhook: "http://127.0.0.1:9/hook/${T_HOOK}",
                    telegram: { botToken: "${T_TG}", chatId: "42" } },
        }"#,
    )
    .unwrap();
    let with_env = |c: Cmd| {
        c.env("OPENCLAW_STATE_DIR", &state)
            .env("T_KEY_ID", S3_KEY_ID)
            .env("T_SECRET", S3_SECRET)
            .env("T_TG", TG_TOKEN)
            .env("T_HOOK", HOOK_TOKEN)
            .env("CLAWBACK_TELEGRAM_API", "http://127.0.0.1:9")
            .env("CLAWBACK_PASSWORD", PASSPHRASE)
    };
    let cb = || with_env(sb.cb());
    let wrong = || with_env(sb.cb()).env("CLAWBACK_PASSWORD", "not the passphrase");

    let mut runs = vec![cb().args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok()];

    // The master key and the subkeys derived from it, as a leak would spell them.
    let backend = LocalBackend::new(&sb.repo);
    let (master, _) = Repository::unlock(&backend, &Secret(PASSPHRASE.as_bytes().to_vec())).unwrap();
    let sub = Subkeys::derive(&master);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut leaks = Leaks {
        needles: vec![
            ("the passphrase".into(), PASSPHRASE.into()),
            ("the S3 key id".into(), S3_KEY_ID.into()),
            ("the S3 secret key".into(), S3_SECRET.into()),
            ("the Telegram token".into(), TG_TOKEN.into()),
            ("the webhook token".into(), HOOK_TOKEN.into()),
            ("the master key (hex)".into(), hex::encode(master.0)),
            ("the master key (base64)".into(), b64.encode(master.0)),
            ("the data key (hex)".into(), hex::encode(sub.data_key)),
            ("the chunk-id key (hex)".into(), hex::encode(sub.chunk_id_key)),
        ],
        seen: Vec::new(),
    };

    runs.push(cb().args(["backup"]).arg(&src).run().ok());
    runs.push(cb().args(["-v", "backup"]).arg(&src).run().ok());
    write(&src.join("memory.md"), b"the agent remembers more things\n");
    runs.push(cb().args(["backup", "--json"]).arg(&src).run().ok());
    // A failing backup (a path that does not exist) tells the notifiers about an error.
    runs.push(cb().args(["backup"]).arg(sb.path("no-such-folder")).run());
    runs.push(cb().args(["snapshots"]).run().ok());
    runs.push(cb().args(["snapshots", "--json"]).run().ok());
    runs.push(cb().args(["-v", "check"]).run().ok());
    runs.push(cb().args(["check", "--read-data", "--json"]).run().ok());
    runs.push(cb().args(["restore", "latest", "--verify", "--target"]).arg(sb.path("restored")).run().ok());
    runs.push(cb().args(["--json", "restore", "latest", "--target"]).arg(sb.path("restored2")).run().ok());
    runs.push(cb().args(["stats"]).run().ok());
    runs.push(cb().args(["stats", "--json"]).run().ok());
    let cat = cb().args(["cat", "config"]).run().ok();
    assert!(cat.json().is_object(), "cat config prints the config as JSON");
    runs.push(cat);
    runs.push(cb().args(["cat", "snapshot", "latest"]).run());
    runs.push(cb().args(["forget", "--keep-last", "2"]).run().ok());
    runs.push(cb().args(["forget", "--keep-last", "1", "--json"]).run().ok());
    for args in [&["snapshots"][..], &["-v", "backup"], &["check", "--json"], &["cat", "config"], &["--json", "stats"]]
    {
        let mut c = wrong().args(args);
        if args.contains(&"backup") {
            c = c.arg(&src);
        }
        let r = c.run().code(11);
        if args.contains(&"-v") {
            // -v may say where the config came from first; the error is the last line.
            assert!(r.stderr.lines().last().is_some_and(|l| l.contains("password")), "{}", r.stderr);
        } else {
            r.one_error_line();
        }
        runs.push(r);
    }
    // A password file with the passphrase, and one with a wrong one.
    fs::write(sb.path("pw"), format!("{PASSPHRASE}\n")).unwrap();
    runs.push(
        cb().env_remove("CLAWBACK_PASSWORD").arg("--password-file").arg(sb.path("pw")).arg("snapshots").run().ok(),
    );
    fs::write(sb.path("pw-wrong"), "nope\n").unwrap();
    runs.push(
        cb().env_remove("CLAWBACK_PASSWORD")
            .arg("--password-file")
            .arg(sb.path("pw-wrong"))
            .arg("check")
            .run()
            .code(11),
    );

    for r in &runs {
        leaks.run(r);
    }
    leaks.files(&sb.cache);
    leaks.files(&sb.root.join("xdg"));
    leaks.files(&sb.home);
    leaks.files(&state.join("clawback"));
    // The repository's plaintext objects (key files, leases) and everything else in it.
    leaks.files(&sb.repo);
    assert!(leaks.seen.is_empty(), "secrets leaked:\n{}", leaks.seen.join("\n"));
    let runlog = state.join("clawback/runs.jsonl");
    eprintln!("run log present: {}", runlog.exists());

    // Permissions: the repository private to its owner, the cache too.
    let mut bad = Vec::new();
    for d in dirs_under(&sb.repo) {
        if mode(&d) != 0o700 {
            bad.push(format!("folder {} is {:o}", d.display(), mode(&d)));
        }
    }
    for f in files_under(&sb.repo) {
        if mode(&f) != 0o600 {
            bad.push(format!("file {} is {:o}", f.display(), mode(&f)));
        }
    }
    for d in dirs_under(&sb.cache) {
        if mode(&d) != 0o700 {
            bad.push(format!("cache folder {} is {:o}", d.display(), mode(&d)));
        }
    }
    for f in files_under(&sb.cache) {
        if mode(&f) & 0o077 != 0 {
            bad.push(format!("cache file {} is {:o}", f.display(), mode(&f)));
        }
    }
    if runlog.exists() && mode(&runlog) != 0o600 {
        bad.push(format!("run log is {:o}", mode(&runlog)));
    }
    assert!(bad.is_empty(), "permissions too open:\n{}", bad.join("\n"));
}
