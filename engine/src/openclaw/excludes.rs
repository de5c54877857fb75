//! What a default backup of an OpenClaw install leaves out, and why.
//!
//! The state-dir rules follow what `openclaw backup create` (2026.9.6) itself leaves out
//! (src/commands/backup-resource-inventory.ts, src/infra/backup-volatile-filter.ts and the SQLite
//! classification in backup-create): its managed runtime roots (`dev/ git/ npm/ npm-runtime/ tmp/
//! tools/`, "managed state, regenerable"), the generated `plugin-skills/` index, agent temporary
//! trees, package content (`node_modules`), the gateway's unpacked Control UI
//! (`cache/control-ui-assets/`), sandbox skill copies, Chromium's singleton files, the outbound
//! delivery queues, SQLite lock and scratch databases, and transient names (`*.sock`, `*.pid`,
//! `*.tmp`, `*.tmp.*`) in every root. Where clawback differs it says so in the reason, and the
//! README lists each difference:
//! - it keeps live session transcripts, logs and cron run logs (OpenClaw skips them because tar
//!   races with appends; clawback re-reads a file that changes and stores a consistent prefix);
//! - it also leaves out rebuildable trees in workspaces (`node_modules/ .venv/ __pycache__/
//!   target/ .cache/`), Chromium's caches, `*.lock` files in the state dir and its own folder
//!   `<state>/clawback/`.
//!
//! SQLite `-wal`/`-shm`/`-journal` files are not patterns here: every database is stored as a
//! consistent image and its sidecars are then left out by the backup itself.
//!
//! Patterns are gitignore lines anchored at absolute paths, for a matcher rooted at `/` (see
//! `commands::backup::build_excludes`). A user overrides any of them with a later `!pattern`.

use std::path::Path;

use serde::Serialize;

use super::layout::Layout;

/// One exclude pattern and the reason `backup --dry-run` gives for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclude {
    pub pattern: String,
    pub reason: String,
}

/// Left out under the state dir (relative to it), as OpenClaw's own backup leaves them out.
pub const STATE_EXCLUDES: &[(&str, &str)] = &[
    ("dev/", "OpenClaw's managed developer checkout (managed state, regenerable: OpenClaw's backup skips it too)"),
    ("git/", "OpenClaw's managed git checkouts (managed state, regenerable: OpenClaw's backup skips it too)"),
    ("npm/", "installed npm packages (managed state, regenerable: OpenClaw's backup skips it too)"),
    ("npm-runtime/", "installed npm runtime (managed state, regenerable: OpenClaw's backup skips it too)"),
    (
        "tmp/",
        "OpenClaw's temporary files and gateway locks (managed state, regenerable: OpenClaw's backup skips it too)",
    ),
    ("tools/", "downloaded tool runtimes (managed state, regenerable: OpenClaw's backup skips it too)"),
    ("plugin-skills/", "generated index of plugin skills, rebuilt by OpenClaw (OpenClaw's backup skips it too)"),
    (
        "**/node_modules/",
        "installed package dependencies; reinstalled by `openclaw plugins update` (OpenClaw's backup skips them too)",
    ),
    ("cache/control-ui-assets/", "the Control UI the gateway unpacks at every start (OpenClaw's backup skips it too)"),
    (
        "sandbox/skills-workspaces/",
        "generated copies of skill sources for sandboxes (OpenClaw's backup skips them too)",
    ),
    ("agents/*/agent/**/tmp/", "agent temporary files (OpenClaw's backup skips them too)"),
    ("agents/*/agent/**/.tmp/", "agent temporary files (OpenClaw's backup skips them too)"),
    ("browser/*/user-data/SingletonLock", "Chromium's running-instance marker (OpenClaw's backup skips it too)"),
    ("browser/*/user-data/SingletonCookie", "Chromium's running-instance marker (OpenClaw's backup skips it too)"),
    ("browser/*/user-data/SingletonSocket", "Chromium's running-instance socket (OpenClaw's backup skips it too)"),
    (
        "delivery-queue/**/*.json",
        "outbound messages waiting for delivery; restored, they would be sent again (OpenClaw's backup skips them too)",
    ),
    ("delivery-queue/**/*.delivered", "delivery receipts of the outbound queue (OpenClaw's backup skips them too)"),
    ("delivery-queue/**/*.tmp", "outbound queue scratch files (OpenClaw's backup skips them too)"),
    (
        "session-delivery-queue/**/*.json",
        "session messages waiting for delivery; restored, they would be sent again (OpenClaw's backup skips them too)",
    ),
    (
        "session-delivery-queue/**/*.delivered",
        "delivery receipts of the session queue (OpenClaw's backup skips them too)",
    ),
    ("session-delivery-queue/**/*.tmp", "session queue scratch files (OpenClaw's backup skips them too)"),
    (
        "logs/.*.doctor-importing*",
        "`openclaw doctor`'s in-progress copy of a legacy audit log (OpenClaw's backup skips it too)",
    ),
    (
        "logs/*.doctor-scrub-*",
        "`openclaw doctor`'s in-progress copy of a legacy audit log (OpenClaw's backup skips it too)",
    ),
    (
        "audit/.*.doctor-importing*",
        "`openclaw doctor`'s in-progress copy of a legacy audit log (OpenClaw's backup skips it too)",
    ),
    (
        "audit/*.doctor-scrub-*",
        "`openclaw doctor`'s in-progress copy of a legacy audit log (OpenClaw's backup skips it too)",
    ),
    // clawback's own choices, not OpenClaw's.
    ("clawback/", "clawback's own run log and daemon state: about the backups, rewritten by every run (clawback only)"),
    ("**/*.lock", "lock file of a running OpenClaw process (clawback only; OpenClaw's backup keeps them)"),
];

/// Chromium's caches in browser profiles (`<state>/browser/<profile>/user-data/...`): rebuilt by
/// the browser. OpenClaw's backup keeps them; clawback leaves them out (the profiles' cookies,
/// logins and settings stay).
pub const BROWSER_CACHE_DIRS: &[&str] =
    &["Cache", "Code Cache", "GPUCache", "GrShaderCache", "ShaderCache", "DawnGraphiteCache", "DawnWebGPUCache"];

/// SQLite databases OpenClaw makes only to coordinate or as scratch, beside a database `X.sqlite`
/// (`SQLITE_MEMORY_TRANSIENT_PATH_PATTERN`), in the state dir and agent dirs; each with its
/// `-wal`, `-shm` and `-journal`. The `<uuid>` ones are written as `?` runs.
pub const SQLITE_TRANSIENT: &[&str] = &[
    "*.sqlite.generation-lock.sqlite",
    "*.sqlite.generation-writer.sqlite",
    "*.sqlite.reindex-lock.sqlite",
    "*.sqlite.backup-????????-????-????-????-????????????",
    "*.sqlite.memory-reindex-????????-????-????-????-????????????",
    "*.sqlite.tmp-????????-????-????-????-????????????",
];

/// Transient names, left out in every root as OpenClaw's backup does (`isTransientBackupPath`:
/// `.+\.(sock|pid|tmp)$` or `.+\.tmp\..*`, any case): (shown form, extension).
pub const TRANSIENT_NAMES: &[(&str, &str)] =
    &[("*.sock", "sock"), ("*.pid", "pid"), ("*.tmp", "tmp"), ("*.tmp.*", "tmp")];

/// Package-manager lockfiles end in `.lock` but are source files: kept despite `*.lock`.
pub const KEPT_LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "Gemfile.lock",
    "Pipfile.lock",
    "Podfile.lock",
    "bun.lock",
    "composer.lock",
    "deno.lock",
    "flake.lock",
    "mix.lock",
    "poetry.lock",
    "pubspec.lock",
    "uv.lock",
    "yarn.lock",
];

/// Left out in every workspace, at any depth: trees rebuilt from the project's own files. OpenClaw's
/// backup keeps them; clawback leaves them out whether or not `.gitignore` files are honoured.
pub const WORKSPACE_EXCLUDES: &[(&str, &str)] = &[
    ("node_modules/", "npm dependencies; reinstall with `npm install` (clawback only)"),
    ("__pycache__/", "Python bytecode cache, rebuilt on import (clawback only)"),
    (".venv/", "Python virtual environment; recreate it from the project's requirements (clawback only)"),
    ("target/", "build output (Rust, Maven); rebuilt from source (clawback only)"),
    (".cache/", "tool caches, rebuilt when needed (clawback only)"),
];

/// Escapes a path for a gitignore glob (`*?[]{}\` and a trailing space are special).
pub fn escape_glob(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// `dir` as an anchored gitignore prefix ending in `/`.
fn anchor(dir: &Path) -> String {
    let s = escape_glob(&dir.to_string_lossy());
    if s.ends_with('/') {
        s
    } else {
        format!("{s}/")
    }
}

/// `?*.ext` with the extension in either case, as a gitignore glob (`?*.[sS][oO][cC][kK]`).
fn any_case_ext(shown: &str, ext: &str) -> String {
    let class: String =
        ext.chars().map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())).collect();
    if shown.ends_with(".*") {
        format!("?*.{class}.*")
    } else {
        format!("?*.{class}")
    }
}

/// The default excludes for a layout: the state-dir rules anchored at its state dir (with
/// Chromium's caches and the SQLite scratch databases, also under agent dirs outside it), the
/// transient names anywhere, the package lockfiles kept, the workspace rules under each
/// workspace, and the sibling folder of private update captures. Patterns come in an order where
/// later lines may override earlier ones, as in gitignore.
pub fn default_excludes(layout: &Layout) -> Vec<Exclude> {
    let mut out: Vec<Exclude> = Vec::new();
    let mut push = |pattern: String, reason: String| {
        if !out.iter().any(|e| e.pattern == pattern) {
            out.push(Exclude { pattern, reason });
        }
    };
    let state = anchor(&layout.state_dir);
    for (rel, why) in STATE_EXCLUDES {
        push(format!("{state}{rel}"), format!("OpenClaw state: {why}"));
    }
    for dir in BROWSER_CACHE_DIRS {
        push(
            format!("{state}browser/*/user-data/**/{}/", escape_glob(dir)),
            "browser cache, rebuilt by the browser (clawback only; profiles' cookies and logins are kept)".into(),
        );
    }
    let mut db_roots = vec![state.clone()];
    for a in &layout.agents {
        if !super::layout::is_inside(&layout.state_dir, &a.agent_dir) {
            db_roots.push(anchor(&a.agent_dir));
        }
    }
    for root in &db_roots {
        for db in SQLITE_TRANSIENT {
            for side in ["", "-wal", "-shm", "-journal"] {
                push(
                    format!("{root}**/{db}{side}"),
                    "OpenClaw's SQLite lock or scratch database (OpenClaw's backup skips it too)".into(),
                );
            }
        }
    }
    for (shown, ext) in TRANSIENT_NAMES {
        push(
            any_case_ext(shown, ext),
            format!("transient file `{shown}` of a running process (OpenClaw's backup skips it too)"),
        );
    }
    for name in KEPT_LOCKFILES {
        push(format!("!{state}**/{name}"), "package lockfile: source, kept despite `*.lock`".into());
    }
    for ws in &layout.workspaces {
        let base = anchor(&ws.path);
        for (rel, why) in WORKSPACE_EXCLUDES {
            push(format!("{base}**/{rel}"), format!("workspace: {why}"));
        }
    }
    // `openclaw update` keeps private captures in a sibling of the state dir; OpenClaw never
    // exports them. Read only when a root holds the state dir's parent (a workspace at `~`).
    let captures = format!("{}.update-captures", layout.state_dir.to_string_lossy().trim_end_matches('/'));
    push(
        anchor(Path::new(&captures)),
        "OpenClaw's private update captures (OpenClaw's backup refuses them too)".into(),
    );
    out
}

/// The patterns alone, in order, for the gitignore matcher.
pub fn patterns(excludes: &[Exclude]) -> Vec<String> {
    excludes.iter().map(|e| e.pattern.clone()).collect()
}

/// The reason for a pattern (as the matcher reports it back, e.g. `Glob::original`).
pub fn reason_for<'a>(excludes: &'a [Exclude], pattern: &str) -> Option<&'a str> {
    excludes.iter().find(|e| e.pattern == pattern).map(|e| e.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::super::layout::{Agent, Workspace};
    use super::*;
    use ignore::gitignore::{Gitignore, GitignoreBuilder};
    use std::path::PathBuf;

    fn layout(state: &str, workspaces: &[&str]) -> Layout {
        Layout {
            state_dir: PathBuf::from(state),
            config_path: PathBuf::from(state).join("openclaw.json"),
            config_exists: false,
            config_files: vec![],
            workspaces: workspaces
                .iter()
                .map(|w| Workspace { agent_id: None, path: PathBuf::from(w), inside_state: w.starts_with(state) })
                .collect(),
            agent_ids: vec![],
            agents: vec![],
            openclaw_version: None,
            warnings: vec![],
        }
    }

    /// Built the way `commands::backup::build_excludes` builds it.
    fn matcher(ex: &[Exclude]) -> Gitignore {
        let mut b = GitignoreBuilder::new("/");
        for p in patterns(ex) {
            b.add_line(None, &p).unwrap();
        }
        b.build().unwrap()
    }

    fn ignored(g: &Gitignore, p: &str, dir: bool) -> bool {
        g.matched(p, dir).is_ignore()
    }

    #[test]
    fn state_dir_rules_are_anchored_at_the_state_dir() {
        let ex = default_excludes(&layout("/home/u/.openclaw", &[]));
        let g = matcher(&ex);
        for d in [
            "dev",
            "clawback",
            "git",
            "npm",
            "npm-runtime",
            "tmp",
            "tools",
            "plugin-skills",
            "cache/control-ui-assets",
            "sandbox/skills-workspaces",
            "extensions/voice/node_modules",
            "extensions/voice/sub/node_modules",
            "node_modules",
            "agents/main/agent/tmp",
            "agents/main/agent/runtime/.tmp",
            "browser/openclaw/user-data/Default/Cache",
            "browser/openclaw/user-data/Default/Code Cache",
            "browser/openclaw/user-data/GrShaderCache",
        ] {
            assert!(ignored(&g, &format!("/home/u/.openclaw/{d}"), true), "{d}");
        }
        for f in [
            "browser/openclaw/user-data/SingletonLock",
            "browser/openclaw/user-data/SingletonSocket",
            "delivery-queue/abc.json",
            "delivery-queue/sub/abc.delivered",
            "session-delivery-queue/x.json",
            "logs/.config-audit.jsonl.doctor-importing",
            "logs/config-audit.jsonl.migrated.raw.doctor-scrub-staging",
            "agents/main/sessions/sessions.json.lock",
        ] {
            assert!(ignored(&g, &format!("/home/u/.openclaw/{f}"), false), "{f}");
        }
        for d in [
            "sessions",
            "logs",
            "credentials",
            "agents",
            "agents/main/sessions",
            "extensions/voice",
            "browser/openclaw/user-data",
            "browser/openclaw/user-data/Default",
            "sandboxes",
            "cache",
            "media",
            "memory",
            "cron",
            "workspace/dev",
            "devx",
            "state",
        ] {
            assert!(!ignored(&g, &format!("/home/u/.openclaw/{d}"), true), "{d}");
        }
        for f in [
            "browser/openclaw/user-data/Default/Cookies",
            "agents/main/sessions/abc.jsonl",
            "logs/gateway.log",
            "logs/config-audit.jsonl",
            "cron/runs/nightly.jsonl",
            "delivery-queue-media/a.png",
            "extensions/voice/bun.lock",
        ] {
            assert!(!ignored(&g, &format!("/home/u/.openclaw/{f}"), false), "{f}");
        }
        // Only folders: a file named `tmp` stays.
        assert!(!ignored(&g, "/home/u/.openclaw/tmp", false));
        // Not outside the state dir.
        assert!(!ignored(&g, "/home/u/projects/dev", true));
        assert!(!ignored(&g, "/home/u/dev", true));
        assert!(!ignored(&g, "/home/u/proj/x.lock", false));
        assert!(!ignored(&g, "/home/u/proj/node_modules", true));
        // Private update captures beside the state dir.
        assert!(ignored(&g, "/home/u/.openclaw.update-captures", true));
    }

    #[test]
    fn sqlite_scratch_databases_in_the_state_and_outside_agent_dirs() {
        let mut l = layout("/s", &["/w"]);
        l.agents = vec![
            Agent { id: "a".into(), default: true, workspace: "/w".into(), agent_dir: "/s/agents/a/agent".into() },
            Agent { id: "b".into(), default: false, workspace: "/w".into(), agent_dir: "/elsewhere/b".into() },
        ];
        let g = matcher(&default_excludes(&l));
        for f in [
            "/s/agents/a/agent/openclaw-agent.sqlite.generation-lock.sqlite",
            "/s/agents/a/agent/openclaw-agent.sqlite.generation-writer.sqlite-wal",
            "/s/agents/a/agent/openclaw-agent.sqlite.reindex-lock.sqlite-shm",
            "/s/state/openclaw.sqlite.backup-0123abcd-0000-4000-8000-0123456789ab",
            "/s/x.sqlite.memory-reindex-0123abcd-0000-4000-8000-0123456789ab-journal",
            "/elsewhere/b/openclaw-agent.sqlite.tmp-0123abcd-0000-4000-8000-0123456789ab",
            "/elsewhere/b/openclaw-agent.sqlite.generation-lock.sqlite",
        ] {
            assert!(ignored(&g, f, false), "{f}");
        }
        for f in [
            "/s/agents/a/agent/openclaw-agent.sqlite",
            "/s/state/openclaw.sqlite",
            "/s/state/openclaw-quarantine.sqlite",
            "/s/x.sqlite.backup-short",
            "/w/notes.sqlite.generation-lock.sqlite",
        ] {
            assert!(!ignored(&g, f, false), "{f}");
        }
    }

    #[test]
    fn transient_names_anywhere_in_any_case() {
        let g = matcher(&default_excludes(&layout("/s", &["/w"])));
        for f in [
            "/s/gateway.sock",
            "/s/gateway.pid",
            "/w/x/file.tmp",
            "/w/x/FILE.TMP",
            "/w/openclaw.json.123.tmp",
            "/s/openclaw.json.tmp.4567",
            "/anywhere/a.Sock",
        ] {
            assert!(ignored(&g, f, false), "{f}");
        }
        for f in [
            "/w/.tmp",
            "/w/proj/Cargo.lock",
            "/w/proj/any.lock",
            "/s/extensions/p/Cargo.lock",
            "/w/template.tmpl",
            "/s/sessions/x.jsonl",
            "/s/logs/gateway.log",
            "/s/openclaw.json",
        ] {
            assert!(!ignored(&g, f, false), "{f}");
        }
    }

    #[test]
    fn workspace_rules_apply_at_any_depth_under_each_workspace() {
        let g = matcher(&default_excludes(&layout("/s", &["/s/workspace", "/home/u/ws"])));
        for d in [
            "/s/workspace/node_modules",
            "/s/workspace/app/node_modules",
            "/home/u/ws/node_modules",
            "/home/u/ws/__pycache__",
            "/home/u/ws/a/b/.venv",
            "/home/u/ws/proj/target",
            "/home/u/ws/.cache",
        ] {
            assert!(ignored(&g, d, true), "{d}");
        }
        assert!(!ignored(&g, "/home/u/other/node_modules", true));
        assert!(!ignored(&g, "/home/u/ws/target", false));
        assert!(!ignored(&g, "/home/u/ws/memory", true));
        assert!(!ignored(&g, "/home/u/ws/.env", false));
    }

    #[test]
    fn special_characters_in_paths_are_escaped() {
        let g = matcher(&default_excludes(&layout("/h/we*ird [s]{a,b}", &["/h/ws?"])));
        assert!(ignored(&g, "/h/we*ird [s]{a,b}/tmp", true));
        assert!(ignored(&g, "/h/we*ird [s]{a,b}/browser/p/user-data/Default/Code Cache", true));
        assert!(!ignored(&g, "/h/weXird [s]{a,b}/tmp", true));
        assert!(!ignored(&g, "/h/we*ird s/tmp", true));
        assert!(ignored(&g, "/h/ws?/node_modules", true));
        assert!(!ignored(&g, "/h/wsX/node_modules", true));
    }

    #[test]
    fn every_pattern_has_a_reason_and_patterns_are_unique() {
        let ex = default_excludes(&layout("/s", &["/w", "/w"]));
        let mut seen = std::collections::HashSet::new();
        for e in &ex {
            assert!(!e.reason.is_empty());
            assert!(seen.insert(e.pattern.clone()), "{}", e.pattern);
        }
        assert!(reason_for(&ex, "/s/dev/").unwrap().contains("developer checkout"));
        assert_eq!(reason_for(&ex, "nope"), None);
    }

    #[test]
    fn a_user_negation_overrides_a_default() {
        let mut pats = patterns(&default_excludes(&layout("/s", &[])));
        pats.push("!/s/tools/".into());
        let mut b = GitignoreBuilder::new("/");
        for p in &pats {
            b.add_line(None, p).unwrap();
        }
        let g = b.build().unwrap();
        assert!(!g.matched("/s/tools", true).is_ignore());
        assert!(g.matched("/s/dev", true).is_ignore());
    }
}
