//! With no repository named anywhere, `backup` backs up the OpenClaw state dir into the embedded
//! default repository, creating it (and a password for it) on first use.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn first_backup_creates_and_uses_the_embedded_default_repository() {
    let sb = Sandbox::new();
    let oc_home = sb.path("oc-home");
    let mut opts = clawback_corpus::Options::new(&oc_home, 1_000_000);
    opts.seed = 3;
    let gen = clawback_corpus::generate(&opts).expect("generate corpus");
    let state = gen.state_dir.clone();
    wait_out_racy_window();

    // No --repo, no CLAWBACK_REPO, no password: HOME and the XDG folders point into the sandbox.
    let cmd = || sb.bare().env("OPENCLAW_STATE_DIR", &state);
    let r = cmd().args(["backup", "--json"]).run().ok();
    let v = r.json();
    assert!(v["snapshot_id"].is_string(), "{v}");
    assert!(v["files_new"].as_u64().unwrap() > 10, "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    let repo = sb.path("xdg/data/clawback/repo");
    assert!(repo.join("config").is_file(), "no repository at {}", repo.display());
    let pw = sb.path("xdg/config/clawback/default-repo.password");
    assert!(pw.is_file(), "no generated password file");
    assert_eq!(fs::metadata(&pw).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!r.stderr.contains(fs::read_to_string(&pw).unwrap().trim()), "the generated password was printed");
    assert!(
        files_under(&sb.path("xdg/cache")).iter().any(|p| p.ends_with("cache.db")),
        "the cache should default to $XDG_CACHE_HOME/clawback"
    );
    assert!(files_under(&sb.home).is_empty(), "wrote into HOME although the XDG variables were set");

    // Second run: same repository, unchanged files not read again.
    let v2 = cmd().args(["backup", "--json"]).run().ok().json();
    assert_eq!(v2["parent_id"], v["snapshot_id"]);
    assert_eq!(v2["bytes_read"], 0, "{v2}");

    // `snapshots` without --repo finds both.
    let list = cmd().args(["snapshots", "--json"]).run().ok().json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], v["snapshot_id"]);
    assert!(list[0]["paths"].as_array().unwrap().iter().any(|p| p == state.to_str().unwrap()), "{list:?}");

    // And the state dir comes back exactly.
    let t = sb.path("t");
    cmd().args(["restore", "latest", "--verify", "--target"]).arg(&t).run().ok();
    // OpenClaw's default excludes (caches, tmp, lock files) are left out: compare what the
    // snapshot holds, and check that the sessions and the config are part of it.
    let kept = snapshot_paths(cmd(), "latest", &state);
    for must in ["openclaw.json", "agents/main/sessions/sessions.json"] {
        assert!(kept.contains(Path::new(must)), "{must} is not in the snapshot");
    }
    assert!(kept.iter().any(|p| p.extension().is_some_and(|e| e == "jsonl")));
    assert_same_tree_where(&state, &restored(&t, &state), &|p| kept.contains(p));

    // With a repository named explicitly that does not exist, nothing is created silently.
    cmd().arg("--repo").arg(sb.path("elsewhere")).arg("backup").run().code(10);
    assert!(!sb.path("elsewhere").exists());
}
