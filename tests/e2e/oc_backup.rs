//! What a default backup reads, against the real OpenClaw 2026.9.6: the same files as OpenClaw's
//! own `openclaw backup create` archive of the same home, except the differences the README
//! names (listed here with their reasons; any other difference fails); `.gitignore` honoured only
//! when asked; the gateway found by its own lock; `--profile` as OpenClaw's; the OpenClaw version
//! and where it came from.

use crate::real_openclaw::{agents, free_port, openclaw, openclaw_json, Gateway, RealHome, OPENCLAW_VERSION, TOKEN};
use crate::support::Sandbox;
use clawback_engine::openclaw::gateway;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Which side has a file the other lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    ClawbackOnly,
    OpenClawOnly,
}

/// A difference the README names: which side has the files, and why.
struct Named {
    side: Side,
    what: &'static str,
    why: &'static str,
    /// Whether a path (relative to the state dir, or `None` outside it; and whether it lies in a
    /// workspace) is one of these.
    matches: fn(Option<&str>, bool, &str) -> bool,
}

fn components(p: &str) -> impl Iterator<Item = &str> {
    p.split('/').filter(|c| !c.is_empty())
}

/// The differences README.md names ("What a default backup reads"), as this test checks them.
const NAMED: &[Named] = &[
    Named {
        side: Side::ClawbackOnly,
        what: "live session transcripts, logs and cron run logs",
        why: "OpenClaw skips them because tar races with appends; clawback re-reads a file that changes and \
              stores a consistent prefix",
        matches: |rel, _, _| {
            let Some(rel) = rel else { return false };
            let log = rel.ends_with(".jsonl") || rel.ends_with(".log");
            let c: Vec<&str> = components(rel).collect();
            log && (matches!(c.first(), Some(&"sessions") | Some(&"logs"))
                || rel.starts_with("cron/runs/")
                || (c.first() == Some(&"agents") && c.get(2) == Some(&"sessions")))
        },
    },
    Named {
        side: Side::OpenClawOnly,
        what: "rebuildable trees: node_modules/ .venv/ __pycache__/ target/ .cache/ in workspaces",
        why: "rebuilt from the project's own files; OpenClaw's backup keeps them",
        matches: |_, in_workspace, abs| {
            in_workspace
                && components(abs).any(|c| matches!(c, "node_modules" | ".venv" | "__pycache__" | "target" | ".cache"))
        },
    },
    Named {
        side: Side::OpenClawOnly,
        what: "Chromium's caches in browser profiles",
        why: "rebuilt by the browser; the profiles' cookies and logins are kept",
        matches: |rel, _, _| {
            rel.is_some_and(|r| {
                r.starts_with("browser/")
                    && components(r).any(|c| {
                        matches!(
                            c,
                            "Cache"
                                | "Code Cache"
                                | "GPUCache"
                                | "GrShaderCache"
                                | "ShaderCache"
                                | "DawnGraphiteCache"
                                | "DawnWebGPUCache"
                        )
                    })
            })
        },
    },
    Named {
        side: Side::OpenClawOnly,
        what: "*.lock files in the state dir",
        why: "locks of running OpenClaw processes; restored, they would name processes that are gone",
        matches: |rel, _, _| rel.is_some_and(|r| r.ends_with(".lock")),
    },
    Named {
        side: Side::OpenClawOnly,
        what: "<state>/clawback/",
        why: "clawback's own run log and daemon state, about the backups",
        matches: |rel, _, _| rel.is_some_and(|r| r.starts_with("clawback/")),
    },
];

/// The files (and symlinks) of OpenClaw's archive in `dir`, by absolute source path, with sizes.
fn archive_files(dir: &Path) -> BTreeMap<String, u64> {
    let archive = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap_or_else(|| panic!("no .tar.gz in {}", dir.display()));
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(&archive).unwrap()));
    let mut out = BTreeMap::new();
    for e in t.entries().unwrap() {
        let e = e.unwrap();
        let ty = e.header().entry_type();
        if !(ty.is_file() || ty.is_symlink()) {
            continue;
        }
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let Some((_, rest)) = path.split_once("/payload/") else {
            assert!(path.ends_with("/manifest.json"), "an entry outside payload/: {path}");
            continue;
        };
        let abs = rest.strip_prefix("posix").unwrap_or_else(|| panic!("not a POSIX path: {path}"));
        out.insert(abs.to_string(), e.header().size().unwrap());
    }
    out
}

/// The files (and symlinks) of clawback's latest snapshot, with sizes.
fn snapshot_files(h: &RealHome) -> BTreeMap<String, u64> {
    let v = h.cb().args(["ls", "latest", "--json"]).run().ok().json();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| matches!(e["type"].as_str(), Some("file" | "symlink")))
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["size"].as_u64().unwrap()))
        .collect()
}

#[test]
fn a_default_backup_reads_what_openclaws_own_backup_reads() {
    let h = RealHome::new();
    let state = h.state();
    let all = agents(h.home());
    let workspaces: Vec<PathBuf> = all.iter().map(|(_, w)| w.clone()).collect();
    let ws = all.iter().find(|(id, _)| id == "molty").map(|(_, w)| w.clone()).expect("agent molty");
    // The gateway running: the Control UI it unpacks, its locks, live databases.
    let _gw = Gateway::start(h.home());
    assert!(state.join("cache/control-ui-assets").is_dir(), "the gateway unpacked no Control UI");
    // What a lived-in home has beside what onboarding makes: one file of each kind a named
    // difference is about, and some that both sides treat alike.
    for rel in [
        ".openclaw/agents/molty/sessions/legacy-session.jsonl",
        ".openclaw/logs/commands.log",
        ".openclaw/workspace/node_modules/left-pad/index.js",
        ".openclaw/workspace/.cache/tool/state",
        "work/worker/app/target/debug/app",
        ".openclaw/browser/openclaw/user-data/Default/Cache/data_0",
        ".openclaw/browser/openclaw/user-data/Default/Cookies",
        ".openclaw/browser/openclaw/user-data/SingletonLock",
        ".openclaw/agents/molty/sessions/sessions.json.lock",
        ".openclaw/clawback/runs.jsonl",
        ".openclaw/sandboxes/agent-molty/notes.md",
        ".openclaw/workspace/tmp-notes.tmp",
    ] {
        let p = h.home().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, format!("{rel}\n")).unwrap();
    }
    let out = h.sb.path("openclaw-archive");
    fs::create_dir_all(&out).unwrap();
    let made = openclaw_json(h.home(), &["backup", "create", "--output", out.to_str().unwrap()]);
    let v = h.cb().args(["backup", "--json"]).run().ok().json();
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");

    // OpenClaw resolves symlinks in the paths it archives.
    let home = h.home().to_string_lossy().into_owned();
    let canon = h.home().canonicalize().unwrap().to_string_lossy().into_owned();
    let theirs: BTreeMap<String, u64> =
        archive_files(&out).into_iter().map(|(p, n)| (p.replacen(&canon, &home, 1), n)).collect();
    let ours = snapshot_files(&h);

    let state_s = format!("{}/", state.display());
    let mut named: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unnamed: Vec<String> = Vec::new();
    let only = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| -> Vec<String> {
        a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
    };
    let ours_only = only(&ours, &theirs);
    let theirs_only = only(&theirs, &ours);
    for (side, list) in [(Side::ClawbackOnly, &ours_only), (Side::OpenClawOnly, &theirs_only)] {
        for p in list {
            let rel = p.strip_prefix(&state_s);
            let in_ws = workspaces.iter().any(|w| Path::new(p).starts_with(w));
            match NAMED.iter().find(|n| n.side == side && (n.matches)(rel, in_ws, p)) {
                Some(n) => named.entry(n.what).or_default().push(p),
                None => unnamed.push(format!("{side:?}: {p}")),
            }
        }
    }

    let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    println!(
        "clawback snapshot: {} files, {} bytes; OpenClaw archive: {} files, {} bytes; in both: {} files",
        ours.len(),
        total(&ours),
        theirs.len(),
        total(&theirs),
        ours.keys().filter(|k| theirs.contains_key(*k)).count()
    );
    let gz: u64 = fs::read_dir(&out).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
    println!("clawback read {} bytes; OpenClaw's .tar.gz is {gz} bytes", v["bytes_read"]);
    for n in NAMED {
        let hits = named.get(n.what).map_or(0, Vec::len);
        println!("named difference ({:?}) {}: {hits} files ({})", n.side, n.what, n.why);
    }
    assert!(unnamed.is_empty(), "differences the README does not name:\n{}", unnamed.join("\n"));
    // Each named difference is seen on this home: the README's claims about OpenClaw hold.
    for n in NAMED {
        assert!(named.contains_key(n.what), "no file shows the named difference {:?}", n.what);
    }
    // Treated alike: kept by both (cookies, sandboxes), left out by both (Chromium's marker,
    // transient names).
    for (rel, kept) in
        [".openclaw/browser/openclaw/user-data/Default/Cookies", ".openclaw/sandboxes/agent-molty/notes.md"]
            .map(|r| (r, true))
            .into_iter()
            .chain(
                [".openclaw/browser/openclaw/user-data/SingletonLock", ".openclaw/workspace/tmp-notes.tmp"]
                    .map(|r| (r, false)),
            )
    {
        let p = h.home().join(rel).to_string_lossy().into_owned();
        assert_eq!((ours.contains_key(&p), theirs.contains_key(&p)), (kept, kept), "{rel}");
    }

    // What was wrong before, checked by name.
    assert!(ours.contains_key(&ws.join(".env").to_string_lossy().into_owned()), "the workspace .env is kept");
    assert!(!ours.keys().any(|p| p.contains("/cache/control-ui-assets/")), "the Control UI is left out");
    assert!(
        !ours.keys().any(|p| p.contains(".generation-lock.sqlite") || p.contains(".reindex-lock.sqlite")),
        "SQLite lock databases are left out"
    );
    assert!(!ours.keys().any(|p| p.starts_with(&format!("{state_s}tmp/"))), "<state>/tmp is left out");
    // The skipped list OpenClaw reports names what both leave out.
    let skipped: Vec<&str> =
        made["skipped"].as_array().unwrap().iter().filter_map(|s| s["sourcePath"].as_str()).collect();
    assert!(skipped.iter().any(|p| p.ends_with("/.openclaw/tmp")), "{skipped:?}");

    // The version: the installed CLI's.
    let snap = &h.sb.snapshots()[0];
    assert_eq!(snap["openclaw"]["openclaw_version"], OPENCLAW_VERSION, "{snap}");
    assert_eq!(snap["openclaw"]["openclaw_version_source"], "cli", "{snap}");
}

/// A home without OpenClaw's CLI: a config naming a workspace outside the state dir.
fn small_home() -> (Sandbox, PathBuf) {
    let sb = Sandbox::with_repo();
    let state = sb.home.join(".openclaw");
    let ws = sb.home.join("ws");
    fs::create_dir_all(&state).unwrap();
    fs::write(
        state.join("openclaw.json"),
        r#"{ meta: { lastTouchedVersion: "2026.9.6" }, agents: { defaults: { workspace: "~/ws" } } }"#,
    )
    .unwrap();
    for (rel, body) in [
        (".gitignore", "/.env\nbuild/\n"),
        (".env", "TOKEN=workspace-secret\n"),
        ("notes.md", "notes\n"),
        ("build/out.bin", "built\n"),
        ("node_modules/x/index.js", "js\n"),
        (".venv/bin/python", "py\n"),
        ("pkg/__pycache__/m.pyc", "pyc\n"),
        ("proj/target/debug/app", "bin\n"),
    ] {
        let p = ws.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
    (sb, ws)
}

/// What a dry run leaves out: path → reason.
fn left_out(sb: &Sandbox, extra: &[&str]) -> BTreeMap<String, String> {
    let v = sb.cb().args(["backup", "--dry-run", "--json"]).args(extra).run().ok().json();
    v["dry_run"]["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["reason"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn gitignore_is_honoured_only_when_asked_and_rebuildable_trees_stay_out() {
    let (sb, ws) = small_home();
    let p = |rel: &str| ws.join(rel).to_string_lossy().into_owned();
    let rebuildable = [
        ("node_modules", "npm dependencies"),
        (".venv", "virtual environment"),
        ("pkg/__pycache__", "bytecode"),
        ("proj/target", "build output"),
    ];
    let check_rebuildable = |out: &BTreeMap<String, String>| {
        for (rel, why) in rebuildable {
            let reason = out.get(&p(rel)).unwrap_or_else(|| panic!("{rel} is not left out: {out:?}"));
            assert!(reason.contains(why), "{rel}: {reason}");
        }
    };

    // By default the workspace's .gitignore changes nothing: .env and build/ are backed up, as
    // OpenClaw's own backup keeps them.
    let out = left_out(&sb, &[]);
    assert!(!out.contains_key(&p(".env")) && !out.contains_key(&p("build")), "{out:?}");
    check_rebuildable(&out);

    // --gitignore honours it.
    let out = left_out(&sb, &["--gitignore"]);
    for rel in [".env", "build"] {
        let reason = out.get(&p(rel)).unwrap_or_else(|| panic!("{rel} is not left out: {out:?}"));
        assert_eq!(reason, &format!(".gitignore in {}", ws.display()));
    }
    check_rebuildable(&out);

    // So does the config's include.gitignore; --no-gitignore overrides it for one run.
    fs::write(sb.home.join(".openclaw/clawback.json"), r#"{ include: { gitignore: true } }"#).unwrap();
    let out = left_out(&sb, &[]);
    assert!(out.contains_key(&p(".env")), "{out:?}");
    let out = left_out(&sb, &["--no-gitignore"]);
    assert!(!out.contains_key(&p(".env")), "{out:?}");
    check_rebuildable(&out);

    // Without OpenClaw on PATH the version is the config's, and says so.
    sb.cb().args(["backup", "--json"]).run().ok();
    let snap = &sb.snapshots()[0];
    assert_eq!(snap["openclaw"]["openclaw_version"], "2026.9.6", "{snap}");
    assert_eq!(snap["openclaw"]["openclaw_version_source"], "config", "{snap}");
}

#[test]
fn an_in_place_restore_refuses_while_the_gateway_holds_its_lock() {
    let h = RealHome::new();
    let memory = h.workspace("molty").join("MEMORY.md");
    let kept = fs::read(&memory).unwrap();
    h.cb().args(["backup", "--json"]).run().ok();
    fs::write(&memory, "edited after the backup\n").unwrap();

    let mut gw = Gateway::start(h.home());
    let uid = unsafe { libc::getuid() };
    let locks = h.state().canonicalize().unwrap().join(format!("tmp/openclaw-{uid}"));
    assert_eq!(gateway::lock_dir(&h.state()), locks);
    // OpenClaw's own lock files, held by the gateway: the state lock and the config lock.
    let found = gateway::scan_locks(&locks, Path::new("/proc"));
    let config_lock = locks.join(gateway::config_lock_name(&h.state().join("openclaw.json")));
    let pid = Some(gw.pid());
    assert_eq!(
        found,
        vec![
            gateway::Evidence::Lock { path: locks.join("gateway.state.lock"), pid, role: None },
            gateway::Evidence::Lock { path: config_lock, pid, role: None },
        ]
    );

    // The port probe looks elsewhere (a free port): the lock alone names the gateway.
    let elsewhere = free_port().to_string();
    let r = h.cb().env("OPENCLAW_GATEWAY_PORT", &elsewhere).args(["restore", "latest"]).run().code(1);
    let line = r.one_error_line();
    assert!(
        line.contains("gateway is running")
            && line.contains(&format!("gateway lock {}", locks.join("gateway.state.lock").display()))
            && line.contains(&format!("process {}", gw.pid())),
        "{line}"
    );
    assert_eq!(fs::read_to_string(&memory).unwrap(), "edited after the backup\n");

    // Stopped, the gateway removes its locks (their SQLite coordinators stay, unlocked): the
    // restore proceeds.
    gw.stop();
    assert_eq!(gateway::scan_locks(&locks, Path::new("/proc")), vec![]);
    h.cb().env("OPENCLAW_GATEWAY_PORT", &elsewhere).args(["restore", "latest"]).run().ok();
    assert_eq!(fs::read(&memory).unwrap(), kept);
}

#[test]
fn profile_selects_the_state_dir_openclaw_uses_and_the_variable_alone_does_not() {
    let sb = Sandbox::with_repo();
    let home = sb.home.clone();
    let port = free_port().to_string();
    // A home made under `openclaw --profile work`.
    let made = openclaw(&home)
        .args(["--profile", "work", "onboard", "--non-interactive", "--accept-risk", "--mode", "local"])
        .args(["--auth-choice", "skip", "--skip-daemon", "--skip-channels", "--skip-health", "--skip-search"])
        .args(["--skip-skills", "--skip-ui", "--skip-hooks", "--gateway-bind", "loopback", "--gateway-port", &port])
        .args(["--gateway-auth", "token", "--gateway-token", TOKEN, "--agent-name", "Worky", "--json"])
        .run()
        .ok();
    assert!(home.join(".openclaw-work/openclaw.json").is_file(), "{}\n{}", made.stdout, made.stderr);
    assert!(!home.join(".openclaw").exists());

    // Where OpenClaw itself says the profile's state and config are.
    let theirs = openclaw(&home).args(["--profile", "work", "backup", "create", "--dry-run", "--json"]).run().ok();
    let theirs = crate::real_openclaw::parse_last_json(&theirs.stdout).expect("backup create --dry-run --json");
    let their_state = theirs["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "state")
        .map(|a| a["sourcePath"].as_str().unwrap().to_string())
        .expect("a state asset");
    let their_config = openclaw(&home).args(["--profile", "work", "config", "file"]).run().ok();
    let their_config = their_config.stdout.lines().last().unwrap().trim().to_string();
    assert_eq!(their_state, home.join(".openclaw-work").to_string_lossy());

    // clawback --profile work: the same state dir and config.
    sb.cb().args(["--profile", "work", "backup", "--json"]).run().ok();
    let snap = &sb.snapshots()[0];
    assert_eq!(snap["openclaw"]["state_dir"], their_state.as_str(), "{snap}");
    assert_eq!(snap["openclaw"]["config_path"], their_config.as_str(), "{snap}");
    assert_eq!(snap["paths"][0], their_state.as_str(), "{snap}");
    // (OpenClaw is not on this PATH: the version comes from the config the onboarding wrote.)
    assert_eq!(snap["openclaw"]["openclaw_version"], OPENCLAW_VERSION, "{snap}");
    assert_eq!(snap["openclaw"]["openclaw_version_source"], "config", "{snap}");

    // OPENCLAW_PROFILE alone selects nothing, for OpenClaw as for clawback: ~/.openclaw, absent.
    let plain = openclaw(&home).env("OPENCLAW_PROFILE", "work").args(["config", "file"]).run().ok();
    assert_eq!(plain.stdout.lines().last().unwrap().trim(), home.join(".openclaw/openclaw.json").to_string_lossy());
    let r = sb.cb().env("OPENCLAW_PROFILE", "work").args(["backup", "--json"]).run().code(2);
    assert!(r.one_error_line().contains(&format!("no OpenClaw state dir at {}", home.join(".openclaw").display())));

    // A name OpenClaw refuses.
    let r = sb.cb().args(["--profile", "no/such", "backup"]).run().code(2);
    assert!(r.one_error_line().contains("invalid OpenClaw profile name \"no/such\""), "{}", r.stderr);
}

#[test]
fn the_roots_are_openclaws_own_credentials_and_linked_skills_included() {
    let (sb, ws) = small_home();
    let home = sb.home.clone();
    let skill = home.join("dev/myskill");
    fs::create_dir_all(&skill).unwrap();
    fs::write(skill.join("SKILL.md"), "---\nname: myskill\ndescription: a skill linked in\n---\n# My skill\n").unwrap();
    fs::create_dir_all(home.join(".openclaw/skills")).unwrap();
    std::os::unix::fs::symlink(&skill, home.join(".openclaw/skills/myskill")).unwrap();
    fs::create_dir_all(home.join("creds")).unwrap();
    fs::write(home.join("creds/oauth.json"), "{}\n").unwrap();

    let theirs = openclaw(&home).env("OPENCLAW_OAUTH_DIR", "~/creds").args(["backup", "create", "--dry-run", "--json"]);
    let theirs = crate::real_openclaw::parse_last_json(&theirs.run().ok().stdout).expect("backup create --dry-run");
    let mut their_roots: Vec<String> =
        theirs["assets"].as_array().unwrap().iter().map(|a| a["sourcePath"].as_str().unwrap().to_string()).collect();
    their_roots.sort();

    sb.cb().env("OPENCLAW_OAUTH_DIR", "~/creds").args(["backup", "--json"]).run().ok();
    let snap = &sb.snapshots()[0];
    let mut ours: Vec<String> =
        snap["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    ours.sort();
    assert_eq!(ours, their_roots, "clawback reads OpenClaw's roots");
    for p in [home.join(".openclaw"), ws, home.join("creds"), skill] {
        assert!(ours.contains(&p.to_string_lossy().into_owned()), "{} not read: {ours:?}", p.display());
    }
}
