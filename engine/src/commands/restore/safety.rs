//! The rules a restore follows before it writes anything: which modes go together, when an
//! OpenClaw gateway running on what it restores stops it, how the safety snapshot of an in-place
//! restore is taken, and what undoing the restore from that snapshot selects.

use super::relocate::Relocation;
use super::{Only, RestoreResult};
use crate::error::{Error, Result};
use crate::format::snapshot::{Snapshot, PRE_RESTORE_TAG};
use crate::openclaw::gateway::{Evidence, Probe};
use crate::openclaw::{self, Env};
use std::path::PathBuf;

/// How the safety snapshot of an in-place restore is taken.
#[derive(Clone, Debug, Default)]
pub struct SafetyOptions {
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Never backed up, and never deleted or replaced (the repository, the cache).
    pub skip_paths: Vec<PathBuf>,
}

impl SafetyOptions {
    /// The safety snapshot every in-place restore takes: tagged `pre-restore` (which `latest`
    /// passes over and `forget` keeps for a week), on this host, and never holding the repository
    /// (`local_repo`, when it is a folder here) or the cache (`cache_dir`, else the default
    /// place), as a backup leaves them out.
    pub fn pre_restore(local_repo: Option<PathBuf>, cache_dir: Option<PathBuf>) -> SafetyOptions {
        let cache = cache_dir.unwrap_or_else(crate::repo::cache::default_cache_base);
        SafetyOptions {
            tags: vec![PRE_RESTORE_TAG.into()],
            host: None,
            skip_paths: local_repo.into_iter().chain([cache]).collect(),
        }
    }
}

/// Refuses modes that do not go together: `delete` restores in place only (without a target
/// folder), and a relocation writes to the new places it maps, never into a target folder.
pub fn check_modes(target: bool, delete: bool, relocate: bool) -> Result<()> {
    if delete && target {
        return Err(Error::Usage("--delete applies only to a restore in place (without --target)".into()));
    }
    if relocate && target {
        return Err(Error::Usage("--relocate restores to the new places it maps; leave out --target".into()));
    }
    Ok(())
}

/// An OpenClaw gateway found running where a restore would write.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningGateway {
    /// How it was found.
    pub evidence: Evidence,
    /// Relocating: the new state dir it runs on. `None`: in place, on the state dir restored.
    pub relocated_to: Option<PathBuf>,
}

/// Looks for a gateway running where the restore writes: relocating, on the new state dir (where
/// nothing is yet, whatever listens on the default port is not its gateway); in place, on the
/// state dir the snapshot recorded (else the current one). Into a target folder, none matters.
pub fn running_gateway(
    env: &Env,
    snap: &Snapshot,
    relocation: Option<&Relocation>,
    in_place: bool,
) -> Option<RunningGateway> {
    if let Some(r) = relocation {
        let state = r.state_dir.as_ref()?;
        let mut probe = Probe::new(env, state, r.config_path.as_deref());
        if !state.exists() {
            probe.port = None;
        }
        let evidence = probe.detect().into_iter().next()?;
        return Some(RunningGateway { evidence, relocated_to: Some(state.clone()) });
    }
    if !in_place {
        return None;
    }
    let (state, config) = match &snap.openclaw {
        Some(m) => (PathBuf::from(&m.state_dir), m.config_path.as_ref().map(PathBuf::from)),
        None => (openclaw::state_dir(env), None),
    };
    let evidence = Probe::new(env, &state, config.as_deref()).detect().into_iter().next()?;
    Some(RunningGateway { evidence, relocated_to: None })
}

/// What a running gateway means for the restore: a relocation under a running gateway is refused
/// (`force` means restoring over an existing install, not under a running one); in place, it is
/// refused unless `force`. A dry run is never refused. Returns the warning to show, if any.
pub fn gateway_rule(running: Option<&RunningGateway>, dry_run: bool, force: bool) -> Result<Option<String>> {
    let Some(g) = running else { return Ok(None) };
    let ev = &g.evidence;
    match &g.relocated_to {
        Some(state) if dry_run => Ok(Some(format!(
            "an OpenClaw gateway is running on {} ({ev}); relocating would be refused",
            state.display()
        ))),
        Some(state) => Err(Error::Other(format!(
            "an OpenClaw gateway is running on {} ({ev}); stop it first (`openclaw gateway stop`), then relocate",
            state.display()
        ))),
        None if dry_run => {
            Ok(Some(format!("an OpenClaw gateway is running ({ev}); restoring in place would need --force")))
        }
        None if !force => Err(Error::Other(format!(
            "an OpenClaw gateway is running ({ev}); stop it first (`openclaw gateway stop`) or pass --force to \
             restore in place anyway"
        ))),
        None => Ok(Some(format!("restoring in place while an OpenClaw gateway is running ({ev}), as --force asks"))),
    }
}

/// The `--only` values that undo a restore through its safety snapshot (empty: everything the
/// safety snapshot holds). Parts are undone through the files and databases they resolved to that
/// the safety snapshot holds (a database whose rows changed goes back whole, as it was just
/// before); values that named no part are kept as given; parts of which the safety snapshot holds
/// nothing undo every root it holds. A relocation is undone at its new places, which the safety
/// snapshot holds as they are. When the restore covered roots that did not exist (so are not
/// among the safety snapshot's paths), every root it covered is named, so the undo also removes
/// what the restore created there.
pub fn undo_selection(only: &Only, only_given: bool, relocated: bool, r: &RestoreResult) -> Vec<String> {
    let lossy = |p: &PathBuf| p.to_string_lossy().into_owned();
    let mut sel: Vec<String> = Vec::new();
    if !relocated {
        sel = only.named.clone();
        sel.extend(only.part_paths.iter().filter(|p| r.safety_paths.iter().any(|s| p.starts_with(s))).map(lossy));
        if sel.is_empty() && only_given {
            sel = r.safety_paths.iter().map(lossy).collect();
        }
    }
    if sel.is_empty() && r.scope != r.safety_paths {
        sel = r.scope.iter().map(lossy).collect();
    }
    sel
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn modes_that_do_not_go_together_are_refused() {
        assert!(check_modes(false, true, false).is_ok(), "delete in place");
        assert!(check_modes(true, false, false).is_ok(), "into a folder");
        assert!(check_modes(false, true, true).is_ok(), "relocating with delete");
        let e = check_modes(true, true, false).unwrap_err();
        assert_eq!((e.exit_code(), e.to_string().contains("--delete applies only")), (2, true));
        let e = check_modes(true, false, true).unwrap_err();
        assert_eq!((e.exit_code(), e.to_string().contains("leave out --target")), (2, true));
    }

    #[test]
    fn a_running_gateway_stops_a_restore_unless_forced_and_never_a_dry_run() {
        let ev = Evidence::Port { port: 18789 };
        let here = RunningGateway { evidence: ev.clone(), relocated_to: None };
        assert_eq!(gateway_rule(None, false, false).unwrap(), None);
        let e = gateway_rule(Some(&here), false, false).unwrap_err();
        assert!(e.to_string().contains("or pass --force to restore in place anyway"), "{e}");
        assert_eq!(e.exit_code(), 1);
        let w = gateway_rule(Some(&here), false, true).unwrap().unwrap();
        assert!(
            w.starts_with("restoring in place while an OpenClaw gateway is running (something is listening"),
            "{w}"
        );
        let w = gateway_rule(Some(&here), true, false).unwrap().unwrap();
        assert!(w.ends_with("restoring in place would need --force"), "{w}");

        // Relocating: refused even with force, a warning on a dry run.
        let there = RunningGateway { evidence: ev, relocated_to: Some(PathBuf::from("/home/u/.openclaw")) };
        for force in [false, true] {
            let e = gateway_rule(Some(&there), false, force).unwrap_err().to_string();
            assert!(
                e.starts_with("an OpenClaw gateway is running on /home/u/.openclaw (") && e.ends_with("then relocate")
            );
        }
        let w = gateway_rule(Some(&there), true, true).unwrap().unwrap();
        assert!(w.ends_with("relocating would be refused"), "{w}");
    }

    #[test]
    fn into_a_folder_no_gateway_is_looked_for() {
        let snap = Snapshot::for_test("h", &["/p"], "2026-01-01T00:00:00Z");
        let env = Env::from_pairs([("HOME", "/nonexistent-home")]);
        assert_eq!(running_gateway(&env, &snap, None, false), None);
    }

    #[test]
    fn the_safety_snapshot_is_tagged_and_leaves_out_the_repository_and_cache() {
        let s = SafetyOptions::pre_restore(Some("/r".into()), Some("/c".into()));
        assert_eq!(s.tags, vec![PRE_RESTORE_TAG.to_string()]);
        assert_eq!(s.skip_paths, pb(&["/r", "/c"]));
        assert_eq!(s.host, None);
        let s = SafetyOptions::pre_restore(None, None);
        assert_eq!(s.skip_paths, vec![crate::repo::cache::default_cache_base()]);
    }

    #[test]
    fn undo_names_what_the_safety_snapshot_holds() {
        let only = Only {
            named: vec!["agent:main".into()],
            part_paths: pb(&["/s/agents/main/sessions/a.jsonl", "/elsewhere/x.db"]),
            ..Default::default()
        };
        let r = RestoreResult { scope: pb(&["/s"]), safety_paths: pb(&["/s"]), ..Default::default() };
        assert_eq!(undo_selection(&only, true, false, &r), vec!["agent:main", "/s/agents/main/sessions/a.jsonl"]);
        // Parts of which the safety snapshot holds nothing: every root it holds.
        let parts = Only { part_paths: pb(&["/elsewhere/x.db"]), ..Default::default() };
        assert_eq!(undo_selection(&parts, true, false, &r), vec!["/s"]);
        // No --only: everything the safety snapshot holds.
        assert!(undo_selection(&Only::default(), false, false, &r).is_empty());
        // A root that did not exist is named with the others, so the undo removes it.
        let r2 = RestoreResult { scope: pb(&["/s", "/w"]), safety_paths: pb(&["/s"]), ..Default::default() };
        assert_eq!(undo_selection(&Only::default(), false, false, &r2), vec!["/s", "/w"]);
        // Relocated: the selections name the snapshot's paths, not the new places.
        assert!(undo_selection(&only, true, true, &r).is_empty());
        assert_eq!(undo_selection(&only, true, true, &r2), vec!["/s", "/w"]);
    }
}
