//! `key list|add|remove|passwd` and passwords from a command (`--password-command`,
//! `encryption.passwordCommand`).

use crate::support::*;

const NEW: &str = "a second passphrase";
const THIRD: &str = "and a third one";

/// The binary on the sandbox repository with `pw` as the password.
fn with_pw(sb: &Sandbox, pw: &str) -> Cmd {
    sb.bare().arg("--repo").arg(&sb.repo).arg("--cache-dir").arg(&sb.cache).env("CLAWBACK_PASSWORD", pw)
}

fn keys(sb: &Sandbox, pw: &str) -> Vec<serde_json::Value> {
    with_pw(sb, pw).args(["key", "list", "--json"]).run().ok().json().as_array().unwrap().clone()
}

fn no_secrets(r: &Run) {
    for s in [PASSWORD, NEW, THIRD] {
        assert!(!r.stdout.contains(s) && !r.stderr.contains(s), "`{}` printed a password", r.desc);
    }
}

#[test]
fn keys_add_list_remove_and_passwd() {
    let sb = Sandbox::with_repo();
    let src = sb.path("src");
    write(&src.join("f.txt"), b"kept across key changes");
    sb.backup(&[&src]);

    let first = keys(&sb, PASSWORD);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["current"], true);
    assert_eq!(first[0]["username"], "e2e");
    let old_id = first[0]["id"].as_str().unwrap().to_string();

    // Add a key; both passwords open the repository.
    let f = sb.path("new-pw");
    write(&f, format!("{NEW}\n").as_bytes());
    let r = sb.cb().args(["key", "add", "--json", "--new-password-file"]).arg(&f).run().ok();
    no_secrets(&r);
    let new_id = r.json()["added"].as_str().unwrap().to_string();
    let two = keys(&sb, NEW);
    assert_eq!(two.len(), 2);
    let cur: Vec<&str> = two.iter().filter(|k| k["current"] == true).map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(cur, [new_id.as_str()], "the new password opens the new key");
    let text = with_pw(&sb, NEW).args(["key", "list"]).run().ok().stdout;
    assert!(text.contains(&format!("*{}", &new_id[..8])) && text.contains("2 keys"), "{text}");
    with_pw(&sb, NEW).args(["snapshots", "--json"]).run().ok();

    // The key in use cannot be removed.
    let r = sb.cb().args(["key", "remove", &old_id[..8]]).run().code(1);
    assert!(r.one_error_line().contains("in use"), "{}", r.stderr);
    // Removed with the other key: the old password no longer opens anything.
    let r = with_pw(&sb, NEW).args(["key", "remove", &old_id[..8]]).run().ok();
    assert!(r.stdout.contains("removed key"), "{}", r.stdout);
    assert_eq!(keys(&sb, NEW).len(), 1);
    let r = sb.cb().args(["snapshots"]).run().code(11);
    r.one_error_line();

    // The last key is never removed.
    let r = with_pw(&sb, NEW).args(["key", "remove", &new_id]).run().code(1);
    assert!(r.one_error_line().contains("last key"), "{}", r.stderr);
    // Unknown ids are a usage error.
    with_pw(&sb, NEW).args(["key", "remove", "ffffffff"]).run().code(2);

    // passwd: NEW stops working, THIRD works, still one key, the data is intact.
    let r = with_pw(&sb, NEW).args(["key", "passwd", "--json"]).env("CLAWBACK_NEW_PASSWORD", THIRD).run().ok();
    no_secrets(&r);
    assert_eq!(r.json()["removed"], new_id.as_str());
    with_pw(&sb, NEW).args(["snapshots"]).run().code(11);
    let k = keys(&sb, THIRD);
    assert_eq!(k.len(), 1);
    let out = sb.path("out");
    with_pw(&sb, THIRD).args(["restore", "latest", "--verify", "--target"]).arg(&out).run().ok();
    assert_same_tree(&src, &restored(&out, &src));

    // No new password anywhere and no terminal: a usage error, nothing added.
    with_pw(&sb, THIRD).args(["key", "add"]).run().code(2);
    assert_eq!(keys(&sb, THIRD).len(), 1);
}

#[test]
fn password_from_a_command() {
    let sb = Sandbox::with_repo();
    let pwf = sb.path("secret-store");
    write(&pwf, format!("{PASSWORD}\n").as_bytes());
    let base = || sb.bare().arg("--repo").arg(&sb.repo).arg("--cache-dir").arg(&sb.cache);

    // The flag: the command's output minus the trailing newline.
    let cmd = format!("cat '{}'", pwf.display());
    let r = base().args(["--password-command", &cmd, "snapshots", "--json"]).run().ok();
    no_secrets(&r);
    // Beats CLAWBACK_PASSWORD, as flags beat the environment.
    base().args(["--password-command", &cmd, "snapshots"]).env("CLAWBACK_PASSWORD", "wrong").run().ok();

    // The config's encryption.passwordCommand.
    let cfg = sb.path("clawback.json");
    write(&cfg, format!("{{ encryption: {{ passwordCommand: \"cat '{}'\" }} }}", pwf.display()).as_bytes());
    base().arg("--config").arg(&cfg).args(["snapshots"]).run().ok();

    // A failing command: exit 1, one line, its output not shown.
    let r = base().args(["--password-command", "echo leaked-secret; exit 3", "snapshots"]).run().code(1);
    let line = r.one_error_line();
    assert!(line.contains("password command failed"), "{line}");
    assert!(!r.stderr.contains("leaked-secret") && !r.stdout.contains("leaked-secret"));
    // A command that prints the wrong password: exit 11.
    base().args(["--password-command", "echo nope", "snapshots"]).run().code(11).one_error_line();
    // Both a file and a command: a usage error.
    base().args(["--password-command", &cmd, "--password-file"]).arg(&pwf).arg("snapshots").run().code(2);
}
