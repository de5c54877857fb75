//! What users bring from restic and expect to work the same: `-r`/`-p`, `--tag a,b` as one tag set
//! in every command, `latest` narrowed by `--path`/`--tag`/`--host` (and rustic's `latest~N`),
//! `version`, completions and a man page from the flags, global options apart in `--help`; and
//! archives that keep secrets secret (0600, a warning, `export --encrypt`).

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn tags_of(sb: &Sandbox, args: &[&str]) -> Vec<Vec<String>> {
    let v = sb.cb().args(["snapshots", "--json"]).args(args).run().ok().json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .collect()
}

#[test]
fn short_repo_and_password_file_flags() {
    let sb = Sandbox::new();
    let pw = sb.path("pw");
    write(&pw, b"short flags\n");
    let src = sb.path("src");
    write(&src.join("a.txt"), b"a");
    let cb = || sb.bare().arg("--cache-dir").arg(&sb.cache);
    cb().args(["init", "--kdf-memory", "1", "--kdf-iterations", "1", "-r"]).arg(&sb.repo).arg("-p").arg(&pw).run().ok();
    cb().arg("-r").arg(&sb.repo).arg("-p").arg(&pw).arg("backup").arg(&src).run().ok();
    let v = cb().args(["snapshots", "--json", "-r"]).arg(&sb.repo).arg("-p").arg(&pw).run().ok().json();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn version_completions_and_man_page() {
    let sb = Sandbox::new();
    let v = sb.bare().arg("version").run().ok();
    assert!(v.stdout.starts_with(&format!("clawback {}", env!("CARGO_PKG_VERSION"))), "{}", v.stdout);
    let j = sb.bare().args(["version", "--json"]).run().ok().json();
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"));
    for shell in ["bash", "zsh", "fish"] {
        let c = sb.bare().args(["completions", shell]).run().ok();
        assert!(c.stdout.contains("clawback") && c.stdout.contains("restore"), "{shell} completions:\n{}", c.stdout);
    }
    sb.bare().args(["completions", "tcsh"]).run().code(2);
    let man = sb.bare().arg("man").run().ok();
    assert!(man.stdout.starts_with(".ie") || man.stdout.contains(".TH clawback"), "{}", &man.stdout[..200]);
    let dir = sb.path("man");
    sb.bare().args(["man", "--dir"]).arg(&dir).run().ok();
    for page in ["clawback.1", "clawback-backup.1", "clawback-restore.1"] {
        assert!(dir.join(page).is_file(), "man --dir wrote {page}");
    }
    // Global options are listed apart from the command's own.
    let help = sb.bare().args(["restore", "--help"]).run().ok().stdout;
    let global = help.find("Global options:").expect("a Global options heading");
    assert!(help[global..].contains("--repo") && !help[..global].contains("--repo <R>"), "{help}");
    assert!(help[..global].contains("--target"), "{help}");
}

#[test]
fn a_comma_tag_list_means_the_same_everywhere() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("f"), b"1");
    sb.cb().args(["backup", "--tag", "a,b"]).arg(&src).run().ok();
    sb.cb().args(["backup", "--tag", "a", "--tag", "c"]).arg(&src).run().ok();
    sb.cb().args(["backup", "--tag", "b"]).arg(&src).run().ok();
    // Backup: a comma list and a repeated flag both add each tag.
    assert_eq!(tags_of(&sb, &[]), vec![vec!["a", "b"], vec!["a", "c"], vec!["b"]]);
    // Filters: a,b is one set (both); repeated flags are alternatives.
    assert_eq!(tags_of(&sb, &["--tag", "a,b"]), vec![vec!["a", "b"]]);
    assert_eq!(tags_of(&sb, &["--tag", "a,b", "--tag", "c"]), vec![vec!["a", "b"], vec!["a", "c"]]);
    assert_eq!(tags_of(&sb, &["--tag", "a"]).len(), 2);
    // forget reads --tag the same way: keeping the newest one of what the tags select removes the rest.
    let removed = |tags: &[&str]| {
        let mut args = vec!["forget", "--json", "--keep-last", "1", "--dry-run"];
        for t in tags {
            args.extend(["--tag", t]);
        }
        let f = sb.cb().args(&args).run().ok().json();
        f["remove"].as_array().unwrap_or_else(|| panic!("forget --json: {f}")).len()
    };
    assert_eq!(removed(&["a,b"]), 0);
    assert_eq!(removed(&["a"]), 1);
    assert_eq!(removed(&["a,b", "c"]), 1);
    // copy: the same set.
    let to = sb.path("repo2");
    sb.cb().args(["copy", "--to-init", "--tag", "a,b", "--to"]).arg(&to).env("CLAWBACK_TO_PASSWORD", "x").run().ok();
    let n = sb.bare().args(["snapshots", "--json", "--repo"]).arg(&to).env("CLAWBACK_PASSWORD", "x").run().ok().json();
    assert_eq!(n.as_array().unwrap().len(), 1);
}

#[test]
fn latest_takes_path_tag_and_host_filters() {
    let sb = Sandbox::with_repo();
    let state = sb.path("state");
    let notes = sb.path("notes");
    write(&state.join("MEMORY.md"), b"v1");
    write(&notes.join("todo.md"), b"notes");
    sb.cb().arg("backup").arg(&state).run().ok();
    write(&state.join("MEMORY.md"), b"v2");
    sb.cb().arg("backup").arg(&state).run().ok();
    sb.cb().args(["backup", "--tag", "manual", "--host", "laptop"]).arg(&notes).run().ok();
    let memory = state.join("MEMORY.md");

    // Plain latest is the notes snapshot: the state file is not in it, and the error says how to pick.
    let e = sb.cb().arg("ls").arg("latest").arg(&memory).run().code(2);
    assert!(e.stderr.contains("--path"), "{}", e.stderr);
    // ls, dump, restore and diff take --path; latest~1 is the one before.
    sb.cb().args(["ls", "latest", "--path"]).arg(&state).arg(&memory).run().ok();
    assert_eq!(sb.cb().args(["dump", "latest", "--path"]).arg(&state).arg(&memory).run().ok().stdout, "v2");
    assert_eq!(sb.cb().args(["dump", "latest~1", "--path"]).arg(&state).arg(&memory).run().ok().stdout, "v1");
    let d = sb.cb().args(["diff", "--json", "latest~1", "latest", "--path"]).arg(&state).run().ok().json();
    assert!(d["modified"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().ends_with("MEMORY.md")), "{d}");
    let t = sb.path("t");
    sb.cb().args(["restore", "latest", "--tag", "manual", "--target"]).arg(&t).run().ok();
    assert!(restored(&t, &notes.join("todo.md")).is_file());
    let t2 = sb.path("t2");
    sb.cb().args(["restore", "latest", "--host", "laptop", "--target"]).arg(&t2).run().ok();
    assert!(restored(&t2, &notes.join("todo.md")).is_file());
    // Filters that select nothing say so, with the filters.
    let e = sb.cb().args(["restore", "latest", "--tag", "nope", "--target"]).arg(sb.path("t3")).run();
    assert_ne!(e.code, 0);
    assert!(e.one_error_line().contains("--tag nope"), "{}", e.stderr);
    sb.cb().args(["dump", "latest~9", "--path"]).arg(&state).arg(&memory).run().code(2);
}

#[test]
fn only_workspace_on_a_snapshot_without_it_is_an_error() {
    let sb = Sandbox::with_repo();
    let state = sb.home.join(".openclaw");
    write(&state.join("openclaw.json"), b"{}\n");
    write(&state.join("workspace/MEMORY.md"), b"memory\n");
    let notes = sb.home.join("notes");
    write(&notes.join("a.md"), b"a");
    sb.cb().arg("backup").run().ok();
    sb.cb().arg("backup").arg(&notes).run().ok();
    // The notes snapshot records OpenClaw's layout but holds no workspace: an error, not "0 files".
    let e = sb.cb().args(["restore", "latest", "--only", "workspace", "--target"]).arg(sb.path("t")).run().code(2);
    assert!(e.one_error_line().contains("does not hold"), "{}", e.stderr);
    assert!(e.stderr.contains("--path"), "{}", e.stderr);
    // With the filter it restores the workspace.
    sb.cb()
        .args(["restore", "latest", "--only", "workspace", "--path"])
        .arg(&state)
        .arg("--target")
        .arg(sb.path("t"))
        .run()
        .ok();
    assert!(restored(&sb.path("t"), &state.join("workspace/MEMORY.md")).is_file());
}

#[test]
fn archives_are_private_and_can_be_sealed() {
    let sb = Sandbox::with_repo();
    let state = sb.home.join(".openclaw");
    write(&state.join("openclaw.json"), b"{ gateway: { auth: { token: \"secret-token\" } } }\n");
    write(&state.join("credentials/oauth.json"), b"{\"refresh\":\"r\"}\n");
    write(&state.join("workspace/MEMORY.md"), b"memory\n");
    sb.cb().arg("backup").run().ok();

    // Plain export: 0600 whatever the umask, and a warning about credentials.
    let plain = sb.path("plain.tar.gz");
    let r = sb.cb().args(["export", "latest", "-o"]).arg(&plain).run().ok();
    assert_eq!(mode(&plain), 0o600);
    assert!(r.stderr.contains("credentials unencrypted") && r.stderr.contains("--encrypt"), "{}", r.stderr);

    // dump --tar to a file the shell made: 0600 too.
    let tarred = sb.path("dump.tar");
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tarred).unwrap();
    std::fs::set_permissions(&tarred, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = sb.cb_command();
    c.args(["dump", "--tar", "latest"]).arg(&state).stdout(f);
    assert!(c.status().unwrap().success());
    assert_eq!(mode(&tarred), 0o600);

    // Sealed with age: no plaintext inside, no warning, and import opens it with the identity.
    let id = age::x25519::Identity::generate();
    let key = sb.path("archive.key");
    {
        use age::secrecy::ExposeSecret;
        write(&key, format!("# public key: {}\n{}\n", id.to_public(), id.to_string().expose_secret()).as_bytes());
    }
    let sealed = sb.path("agent.tar.gz.age");
    let r = sb
        .cb()
        .args(["export", "latest", "-o"])
        .arg(&sealed)
        .arg("--encrypt")
        .arg(id.to_public().to_string())
        .run()
        .ok();
    assert!(!r.stderr.contains("unencrypted"), "{}", r.stderr);
    assert_eq!(mode(&sealed), 0o600);
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    let e = sb.cb().arg("import").arg(&sealed).run().code(2);
    assert!(e.one_error_line().contains("--identity"), "{}", e.stderr);
    let wrong = sb.path("wrong.key");
    write(&wrong, format!("{}\n", age::x25519::Identity::generate().to_string().expose_secret_str()).as_bytes());
    sb.cb().arg("import").arg(&sealed).arg("--identity").arg(&wrong).run().code(2);
    let v = sb
        .cb()
        .args(["import", "--json", "--tag", "sealed"])
        .arg(&sealed)
        .arg("--identity")
        .arg(&key)
        .run()
        .ok()
        .json();
    assert!(v["files"].as_u64().unwrap() >= 3, "{v}");
    let t = sb.path("t");
    sb.cb().args(["restore", "latest", "--tag", "sealed", "--target"]).arg(&t).run().ok();
    assert_eq!(std::fs::read(restored(&t, &state.join("workspace/MEMORY.md"))).unwrap(), b"memory\n");
    // A bad recipient is a usage error naming the fix.
    let e =
        sb.cb().args(["export", "latest", "-o"]).arg(sb.path("x.age")).args(["--encrypt", "age1nope"]).run().code(2);
    assert!(e.one_error_line().contains("age-keygen"), "{}", e.stderr);
}

trait ExposeStr {
    fn expose_secret_str(&self) -> String;
}
impl ExposeStr for age::secrecy::SecretString {
    fn expose_secret_str(&self) -> String {
        use age::secrecy::ExposeSecret;
        self.expose_secret().to_string()
    }
}

#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    for i in 0..2000 {
        write(&src.join(format!("d{}/f{i}", i % 20)), b"x");
    }
    sb.backup(&[&src]);
    let mut c = sb.cb_command();
    c.args(["ls", "latest"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "ls into a closed pipe panicked:\n{err}");
    assert_eq!(out.status.code(), Some(141), "exit status {:?}, stderr:\n{err}", out.status);
}
