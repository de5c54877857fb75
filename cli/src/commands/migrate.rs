//! The `backup` section in openclaw.json, which older clawback documentation suggested and
//! OpenClaw 2026.9 rejects (its gateway exits 78, `openclaw doctor --fix` deletes the section):
//! the warning `backup`, `status` and `test` give while it is there (with the installed OpenClaw's
//! own verdict when `openclaw` is on PATH), and `clawback setup --migrate-config`, which moves it
//! into clawback's own file (engine: `config::migrate`) and asks OpenClaw to confirm.
//!
//! Nothing here prints a setting's value: only key names and file paths.

use crate::openclaw_cli::{self, OpenClaw, Verdict};
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::config::migrate;
use clawback_engine::openclaw::Env;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

/// The command that fixes it.
pub const FIX: &str = "clawback setup --migrate-config";

/// A `backup` section found in openclaw.json, and what the installed OpenClaw makes of it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// openclaw.json.
    pub path: PathBuf,
    /// `true`: the installed OpenClaw rejects the key; `false`: it accepts it; `null`: not known
    /// (no `openclaw` on PATH, or it gave no verdict).
    pub openclaw_rejects: Option<bool>,
    /// OpenClaw's own words, when it rejects it.
    pub openclaw_says: Option<String>,
    /// The one-line warning.
    pub message: String,
    pub fix: &'static str,
}

impl Notice {
    /// Whether it deserves a warning: always, unless the installed OpenClaw accepts the key.
    pub fn warns(&self) -> bool {
        self.openclaw_rejects != Some(false)
    }
}

/// Looks for the section and, when `openclaw` is on PATH, asks it (once per run).
pub fn notice(_g: &GlobalArgs) -> Option<Notice> {
    let env = Env::from_process();
    let path = migrate::find_section(&env).ok().flatten()?;
    let p = path.display();
    let (rejects, says, message) = match OpenClaw::find().map(|oc| openclaw_cli::validate(&oc)) {
        Some(Verdict::Rejects(words)) => (
            Some(true),
            Some(words.clone()),
            format!(
                "{p} has a `backup` section, which the installed OpenClaw rejects ({words}): its gateway will not \
                 start and `openclaw doctor --fix` deletes the section; move it into clawback's own file with `{FIX}`"
            ),
        ),
        Some(Verdict::Accepts) | Some(Verdict::OtherIssues(_)) => (
            Some(false),
            None,
            format!(
                "{p} has a `backup` section; the installed OpenClaw accepts it, but OpenClaw 2026.9 and later reject \
                 the key (the gateway will not start); move it into clawback's own file with `{FIX}`"
            ),
        ),
        other => {
            let why = match other {
                Some(Verdict::Unknown(why)) => format!("the installed OpenClaw gave no verdict: {why}"),
                _ => "openclaw is not on PATH, so this was not checked".into(),
            };
            (
                None,
                None,
                format!(
                    "{p} has a `backup` section: clawback still reads it (below its own file), but it is deprecated \
                     and risky, since OpenClaw 2026.9 and later reject the key (the gateway will not start, `openclaw \
                     doctor --fix` deletes it) ({why}); move it into clawback's own file with `{FIX}`"
                ),
            )
        }
    };
    Some(Notice { path, openclaw_rejects: rejects, openclaw_says: says, message, fix: FIX })
}

/// [`notice`], with its one warning line on stderr unless `--quiet` (which, without `--json`,
/// also skips asking OpenClaw: nothing would be shown).
pub fn warn(g: &GlobalArgs) -> Option<Notice> {
    if g.quiet && !g.json {
        return None;
    }
    let n = notice(g)?;
    if n.warns() && !g.quiet {
        eprintln!("clawback: warning: {}", n.message);
    }
    Some(n)
}

/// `clawback setup --migrate-config`.
pub fn run(g: &GlobalArgs) -> Result<i32> {
    let env = Env::from_process();
    let explicit = g.config.clone().or_else(|| env.get("CLAWBACK_CONFIG").filter(|c| !c.is_empty()).map(PathBuf::from));
    let say = |m: String| {
        if !g.quiet && !g.json {
            println!("{m}");
        }
    };
    let Some(plan) = migrate::plan(&env, explicit.as_deref())? else {
        let oc = clawback_engine::openclaw::config_path(&env, &clawback_engine::openclaw::state_dir(&env));
        say(format!("nothing to migrate: {} has no `backup` section", oc.display()));
        if g.json {
            crate::ui::print_json(&json!({ "migrated": false, "openclaw_config": oc }));
        }
        return Ok(0);
    };
    let before = clawback_engine::config::load(&env, explicit.as_deref()).map(|l| l.config).ok();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let applied = migrate::apply(&plan, &stamp)?;
    // The clawback file now found is the one just written (a new one next to openclaw.json).
    let after = clawback_engine::config::load(&env, explicit.as_deref()).map(|l| l.config).ok();
    let unchanged = match (&before, &after) {
        (Some(b), Some(a)) => Some(b == a),
        _ => None,
    };

    say(format!("copied {} to {} (same mode)", plan.openclaw_path.display(), applied.openclaw_copy.display()));
    let cb = plan.clawback_path.display();
    if plan.moved.is_empty() {
        say(format!("{cb} already has every setting of the section"));
    } else {
        let verb = if plan.clawback_exists { "merged into" } else { "wrote" };
        say(format!("{verb} {cb}: {}", plan.moved.join(", ")));
    }
    if !plan.kept.is_empty() {
        say(format!(
            "kept {cb}'s own value for {} (openclaw.json's differed and was never in effect: clawback's file wins)",
            plan.kept.join(", ")
        ));
    }
    if !plan.made_absolute.is_empty() {
        say(format!(
            "made relative paths absolute (as they were read from openclaw.json's folder): {}",
            plan.made_absolute.join(", ")
        ));
    }
    if plan.section_had_includes {
        say("the section used `$include`: what it included was copied in; those files were left in place".into());
    }
    if let Some(c) = &applied.clawback_copy {
        say(format!(
            "{cb} had comments or JSON5 syntax, which its rewrite as JSON does not keep; the original is at {}",
            c.display()
        ));
    }
    say(format!("removed the `backup` key from {} (the rest of the file is unchanged)", plan.openclaw_path.display()));
    if unchanged == Some(false) {
        eprintln!(
            "clawback: warning: the settings clawback reads changed with the move; compare {cb} with {}",
            applied.openclaw_copy.display()
        );
    }

    let verdict = OpenClaw::find().map(|oc| openclaw_cli::validate_now(&oc));
    let (valid, issues): (Option<bool>, Vec<String>) = match &verdict {
        Some(Verdict::Accepts) => {
            say(format!(
                "OpenClaw accepts {} now (`openclaw config validate`); start the gateway again if it stopped \
                 (`openclaw gateway run`, or `openclaw gateway restart` for its service)",
                plan.openclaw_path.display()
            ));
            (Some(true), Vec::new())
        }
        Some(Verdict::OtherIssues(list)) => {
            eprintln!(
                "clawback: warning: the `backup` key is gone, but OpenClaw still finds problems in {} that clawback did \
                 not touch: {}; see `openclaw config validate`",
                plan.openclaw_path.display(),
                list.join("; ")
            );
            (Some(false), list.clone())
        }
        Some(Verdict::Rejects(words)) => {
            return Err(clawback_engine::Error::Other(format!(
                "OpenClaw still rejects {} ({words}) after the move; the original is at {}",
                plan.openclaw_path.display(),
                applied.openclaw_copy.display()
            ))
            .into())
        }
        Some(Verdict::Unknown(why)) => {
            say(format!("could not ask OpenClaw to confirm ({why}); check with `openclaw config validate`"));
            (None, Vec::new())
        }
        None => {
            say("openclaw is not on PATH: check with `openclaw config validate` where the gateway runs".into());
            (None, Vec::new())
        }
    };
    if g.json {
        crate::ui::print_json(&json!({
            "migrated": true,
            "openclaw_config": plan.openclaw_path,
            "openclaw_config_copy": applied.openclaw_copy,
            "clawback_config": plan.clawback_path,
            "clawback_config_copy": applied.clawback_copy,
            "created": !plan.clawback_exists,
            "moved": plan.moved,
            "kept": plan.kept,
            "same": plan.same,
            "made_absolute": plan.made_absolute,
            "settings_unchanged": unchanged,
            "openclaw_valid": valid,
            "openclaw_issues": issues,
        }));
    }
    Ok(0)
}
