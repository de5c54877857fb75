//! The real OpenClaw's home, as the other `oc_` tests rely on it: made by OpenClaw's own CLI, found
//! by clawback's discovery (the default agent named at onboarding, a workspace outside the state dir,
//! a nested role agent), and backed up with its live databases.

use crate::real_openclaw::{agents, cron_names, RealHome, CRON_JOB};

#[test]
fn a_home_made_by_openclaw_is_discovered_and_backed_up() {
    let h = RealHome::new();
    let mut ids: Vec<String> = agents(h.home()).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ["molty", "scribe", "worker"]);
    assert!(cron_names(h.home()).iter().any(|n| n == CRON_JOB), "the copy keeps the template's cron job");
    let r = h.cb().args(["backup", "--json"]).run().ok();
    let v = r.json();
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    let snaps = h.sb.snapshots();
    let meta = &snaps[0]["openclaw"];
    let mut found: Vec<(String, String)> = meta["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["workspace"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    let mut want: Vec<(String, String)> =
        agents(h.home()).into_iter().map(|(id, w)| (id, w.to_string_lossy().into_owned())).collect();
    want.sort();
    assert_eq!(found, want, "clawback's agents and workspaces are OpenClaw's own");
    let paths: Vec<&str> = snaps[0]["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(paths.iter().any(|p| p.ends_with("/work/worker")), "the outside workspace is a root: {paths:?}");
}
