//! What a default backup of an OpenClaw install leaves out, and why. The state-dir rules follow
//! what `openclaw backup create` itself skips (docs/cli/backup.md: installer-managed runtime
//! roots, plugin `node_modules`, the generated `plugin-skills/` index, agent temporary trees,
//! sandbox skill copies); the rest are caches that are large and rebuildable. Session
//! transcripts, logs and credentials are kept: they are what users lose.
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

/// Left out under the state dir (relative to it).
pub const STATE_EXCLUDES: &[(&str, &str)] = &[
    ("dev/", "OpenClaw's managed developer checkout; recreated by updating OpenClaw"),
    ("git/", "OpenClaw's managed git checkouts; recreated by updating OpenClaw"),
    ("npm/", "installed npm packages; recreated by reinstalling OpenClaw and its plugins"),
    ("npm-runtime/", "installed npm runtime (older OpenClaw); recreated by reinstalling"),
    ("tmp/", "OpenClaw's temporary files"),
    ("clawback/", "clawback's own run log and daemon state: about the backups, rewritten by every run"),
    ("tools/", "downloaded tool runtimes; downloaded again when needed"),
    ("plugin-skills/", "generated symlink index of plugin skills; rebuilt by `openclaw skills list`"),
    ("sandboxes/", "sandbox working copies; recreated for each sandboxed session"),
    ("sandbox/skills-workspaces/", "generated copies of skill sources for sandboxes; recreated when needed"),
    ("extensions/**/node_modules/", "plugin dependencies; reinstall with `openclaw plugins update <id>`"),
    ("browser/*/user-data/", "browser profile data (caches, often gigabytes); recreated when the browser starts"),
    ("agents/*/agent/**/tmp/", "agent temporary files; regenerable (OpenClaw's own backup skips them)"),
    ("agents/*/agent/**/.tmp/", "agent temporary files; regenerable (OpenClaw's own backup skips them)"),
];

/// Left out wherever they are.
pub const ANYWHERE_EXCLUDES: &[(&str, &str)] = &[
    ("*.sock", "socket of a running process"),
    ("*.pid", "process id file of a running process"),
    ("*.tmp", "temporary file"),
    ("*.lock", "lock file held by a running process"),
];

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

/// Left out in every workspace, at any depth.
pub const WORKSPACE_EXCLUDES: &[(&str, &str)] = &[
    ("node_modules/", "npm dependencies; reinstall with `npm install`"),
    ("__pycache__/", "Python bytecode cache"),
    (".venv/", "Python virtual environment; recreate it from the project's requirements"),
    ("target/", "build output (Rust, Maven); rebuilt from source"),
    (".cache/", "cache folder"),
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

/// The default excludes for a layout: the state-dir rules anchored at its state dir, the
/// anywhere rules (with package lockfiles kept), and the workspace rules under each workspace.
/// Patterns come in an order where later lines may override earlier ones, as in gitignore.
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
    for (pat, why) in ANYWHERE_EXCLUDES {
        push(pat.to_string(), why.to_string());
    }
    for name in KEPT_LOCKFILES {
        push(format!("!{name}"), "package lockfile: source, kept despite `*.lock`".into());
    }
    for ws in &layout.workspaces {
        let base = anchor(&ws.path);
        for (rel, why) in WORKSPACE_EXCLUDES {
            push(format!("{base}**/{rel}"), format!("workspace: {why}"));
        }
    }
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
    use super::super::layout::Workspace;
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
            "sandboxes",
            "sandbox/skills-workspaces",
            "extensions/voice/node_modules",
            "extensions/voice/sub/node_modules",
            "browser/openclaw/user-data",
            "agents/main/agent/tmp",
            "agents/main/agent/runtime/.tmp",
        ] {
            assert!(ignored(&g, &format!("/home/u/.openclaw/{d}"), true), "{d}");
        }
        for d in [
            "sessions",
            "logs",
            "credentials",
            "agents",
            "agents/main/sessions",
            "extensions/voice",
            "browser/openclaw",
            "memory",
            "cron",
            "workspace/dev",
            "devx",
            "state",
        ] {
            assert!(!ignored(&g, &format!("/home/u/.openclaw/{d}"), true), "{d}");
        }
        // Only folders: a file named `tmp` stays.
        assert!(!ignored(&g, "/home/u/.openclaw/tmp", false));
        // Not outside the state dir.
        assert!(!ignored(&g, "/home/u/projects/dev", true));
        assert!(!ignored(&g, "/home/u/dev", true));
    }

    #[test]
    fn anywhere_rules_and_kept_lockfiles() {
        let g = matcher(&default_excludes(&layout("/s", &["/w"])));
        for f in ["/s/gateway.sock", "/s/gateway.pid", "/w/x/file.tmp", "/anywhere/a.lock", "/s/openclaw.json.123.tmp"]
        {
            assert!(ignored(&g, f, false), "{f}");
        }
        for f in [
            "/w/proj/Cargo.lock",
            "/w/yarn.lock",
            "/w/flake.lock",
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
            "/home/u/ws/__pycache__",
            "/home/u/ws/a/b/.venv",
            "/home/u/ws/proj/target",
            "/home/u/ws/.cache",
        ] {
            assert!(ignored(&g, d, true), "{d}");
        }
        assert!(!ignored(&g, "/home/u/other/node_modules", true));
        assert!(!ignored(&g, "/s/node_modules", true));
        assert!(!ignored(&g, "/home/u/ws/target", false));
        assert!(!ignored(&g, "/home/u/ws/memory", true));
    }

    #[test]
    fn special_characters_in_paths_are_escaped() {
        let g = matcher(&default_excludes(&layout("/h/we*ird [s]{a,b}", &["/h/ws?"])));
        assert!(ignored(&g, "/h/we*ird [s]{a,b}/tmp", true));
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
