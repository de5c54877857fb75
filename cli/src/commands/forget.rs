//! `clawback forget`: apply a retention policy (restic's `--keep-*` rules, or the config's
//! `retention`) and delete the snapshots it does not keep; or, given SNAPSHOT ids, delete those.
//! Their data stays until `prune`.

use crate::context::{self, Ctx};
use crate::ui::usage;
use anyhow::Result;
use clawback_engine::commands::forget::{self, GfsPolicy, GroupBy, Policy, Within};
use clawback_engine::format::snapshot::tag_lists;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Forget these snapshots (ids or prefixes) instead of applying a policy
    pub snapshots: Vec<String>,
    /// Keep the newest N snapshots (-1: all)
    #[arg(long, short = 'l', value_name = "N", allow_negative_numbers = true)]
    pub keep_last: Option<i64>,
    /// Keep the newest snapshot of each of the last N hours (-1: all)
    #[arg(long, short = 'H', value_name = "N", allow_negative_numbers = true)]
    pub keep_hourly: Option<i64>,
    /// Keep the newest snapshot of each of the last N days (-1: all)
    #[arg(long, short = 'd', value_name = "N", allow_negative_numbers = true)]
    pub keep_daily: Option<i64>,
    /// Keep the newest snapshot of each of the last N ISO weeks (-1: all)
    #[arg(long, short = 'w', value_name = "N", allow_negative_numbers = true)]
    pub keep_weekly: Option<i64>,
    /// Keep the newest snapshot of each of the last N months (-1: all)
    #[arg(long, short = 'm', value_name = "N", allow_negative_numbers = true)]
    pub keep_monthly: Option<i64>,
    /// Keep the newest snapshot of each of the last N years (-1: all)
    #[arg(long, short = 'y', value_name = "N", allow_negative_numbers = true)]
    pub keep_yearly: Option<i64>,
    /// Keep snapshots newer than DUR before the newest snapshot (e.g. 2d, 1y2m3d4h)
    #[arg(long, value_name = "DUR")]
    pub keep_within: Option<String>,
    /// Keep snapshots with these tags (T1,T2: all of them; repeatable: any of the lists)
    #[arg(long, value_name = "T")]
    pub keep_tag: Vec<String>,
    /// Only consider the snapshots these select
    #[command(flatten)]
    pub filter: crate::select::SnapshotFilter,
    /// Group snapshots by host, paths and/or tags before applying the policy ("" for one group)
    #[arg(long, short = 'g', value_name = "G", default_value = "host,paths")]
    pub group_by: String,
    /// Only show what would be removed
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Then run `prune` to free the space of what was removed
    #[arg(long)]
    pub prune: bool,
    /// With --prune: repack partly used packs while unused space exceeds P%
    #[arg(long, value_name = "P%", default_value = "5%", requires = "prune")]
    pub max_unused: String,
}

/// `forget ID...`: these snapshots, no policy.
fn run_ids(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    if a.flag_policy()?.is_some() {
        return Err(usage("give either SNAPSHOT ids or --keep-* flags, not both"));
    }
    let repo = ctx.open()?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        if spec.starts_with("latest") {
            return Err(usage(format!(
                "forget {spec}: give snapshot ids or prefixes (`clawback snapshots` lists them)"
            )));
        }
        let (id, _) = crate::select::find(&repo, spec, &a.filter, |_| true)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if !a.dry_run {
        forget::forget_ids(&repo, &ids)?;
    }
    let pruned = if a.prune && !a.dry_run {
        let opts = clawback_engine::commands::prune::PruneOptions {
            dry_run: false,
            max_unused: super::prune::parse_max_unused(&a.max_unused)?,
        };
        Some(super::prune::run_on(&repo, &opts)?)
    } else {
        None
    };
    if g.json {
        crate::ui::print_json(&serde_json::json!({
            "remove": ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            "dry_run": a.dry_run,
            "prune": pruned.as_ref().map(super::prune::json),
        }));
        return Ok(0);
    }
    if !g.quiet {
        for id in &ids {
            println!("{} {}", if a.dry_run { "would remove" } else { "removed" }, id.short());
        }
        match &pruned {
            Some(p) => super::prune::print(p),
            None if !a.dry_run => println!("{} snapshots removed; run `clawback prune` to free their space", ids.len()),
            None => println!("{} snapshots would be removed (dry run)", ids.len()),
        }
    }
    Ok(0)
}

fn count(name: &str, v: Option<i64>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(n) if n >= -1 => Ok(n),
        Some(n) => Err(usage(format!("--{name} {n}: give a count, or -1 for all"))),
    }
}

impl Args {
    /// The policy the flags give, if any keep flag is set.
    fn flag_policy(&self) -> Result<Option<Policy>> {
        let p = GfsPolicy {
            last: count("keep-last", self.keep_last)?,
            hourly: count("keep-hourly", self.keep_hourly)?,
            daily: count("keep-daily", self.keep_daily)?,
            weekly: count("keep-weekly", self.keep_weekly)?,
            monthly: count("keep-monthly", self.keep_monthly)?,
            yearly: count("keep-yearly", self.keep_yearly)?,
            within: match &self.keep_within {
                Some(w) => Within::parse(w)?,
                None => Within::default(),
            },
            keep_tags: tag_lists(&self.keep_tag),
        };
        let any_flag = self.keep_last.is_some()
            || self.keep_hourly.is_some()
            || self.keep_daily.is_some()
            || self.keep_weekly.is_some()
            || self.keep_monthly.is_some()
            || self.keep_yearly.is_some()
            || self.keep_within.is_some()
            || !self.keep_tag.is_empty();
        if !any_flag {
            return Ok(None);
        }
        if p.is_empty() {
            return Err(usage("the keep flags given keep nothing (all zero): give a count above 0, or -1 for all"));
        }
        Ok(Some(Policy::Gfs(p)))
    }
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    if !a.snapshots.is_empty() {
        return run_ids(ctx, a);
    }
    let group_by = GroupBy::parse(&a.group_by)?;
    let settings = context::Settings::load(g)?;
    let (policy, note) =
        match a.flag_policy()? {
            Some(p) => (p, None),
            None => match Policy::from_config(&settings.config.retention)? {
                (Some(p), note) => (p, note),
                (None, _) => return Err(usage(
                    "no retention policy: give --keep-last/--keep-hourly/--keep-daily/--keep-weekly/--keep-monthly/\
                     --keep-yearly/--keep-within/--keep-tag, or set `retention` in clawback's config file",
                )),
            },
        };
    if let Some(n) = &note {
        if !g.quiet {
            eprintln!("clawback: note: {n}");
        }
    }
    let repo = ctx.open_with(&settings)?;
    let snaps = repo.snapshots()?;
    let filter = a.filter.filter()?;
    let plan = forget::plan(&snaps, &filter, group_by, &policy, chrono::Utc::now(), &chrono::Local);
    let max_unused = super::prune::parse_max_unused(&a.max_unused)?;
    if !a.dry_run {
        forget::apply(&repo, &plan)?;
    }
    let pruned = if a.prune && !a.dry_run {
        let opts = clawback_engine::commands::prune::PruneOptions { dry_run: false, max_unused };
        Some(super::prune::run_on(&repo, &opts)?)
    } else {
        None
    };
    let by_id: std::collections::HashMap<_, _> = snaps.iter().map(|(id, s)| (*id, s)).collect();
    if g.json {
        let reasons: serde_json::Map<String, serde_json::Value> =
            plan.reasons.iter().map(|(id, r)| (id.to_hex(), serde_json::json!(r))).collect();
        let hex = |v: &[clawback_engine::format::id::SnapshotId]| v.iter().map(|i| i.to_hex()).collect::<Vec<_>>();
        let groups: Vec<_> = plan
            .groups
            .iter()
            .map(|gp| serde_json::json!({"key": gp.key, "keep": hex(&gp.keep), "remove": hex(&gp.remove)}))
            .collect();
        crate::ui::print_json(&serde_json::json!({
            "keep": hex(&plan.keep()),
            "remove": hex(&plan.remove()),
            "reasons": reasons,
            "groups": groups,
            "dry_run": a.dry_run,
            "prune": pruned.as_ref().map(super::prune::json),
        }));
        return Ok(0);
    }
    if g.quiet {
        return Ok(0);
    }
    for gp in &plan.groups {
        let mut what = Vec::new();
        if let Some(h) = &gp.key.hostname {
            what.push(format!("host {h}"));
        }
        if let Some(p) = &gp.key.paths {
            what.push(format!("paths [{}]", p.join(", ")));
        }
        if let Some(t) = &gp.key.tags {
            what.push(format!("tags [{}]", t.join(", ")));
        }
        println!("snapshots of {}:", if what.is_empty() { "all".to_string() } else { what.join(", ") });
        let line = |id: &clawback_engine::format::id::SnapshotId, tail: String| {
            let t = by_id[id].time().with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S");
            println!("  {:<9} {:<20} {}", id.short(), t, tail);
        };
        for id in &gp.keep {
            line(id, format!("keep   {}", plan.reasons[id].join(", ")));
        }
        for id in &gp.remove {
            line(id, if a.dry_run { "would remove".into() } else { "removed".into() });
        }
    }
    let (k, r) = (plan.keep().len(), plan.remove().len());
    if a.dry_run {
        println!("{k} snapshots kept, {r} would be removed (dry run)");
    } else {
        match &pruned {
            Some(p) => {
                println!("{k} snapshots kept, {r} removed; pruning:");
                super::prune::print(p);
            }
            None => println!("{k} snapshots kept, {r} removed; run `clawback prune` to free their space"),
        }
    }
    Ok(0)
}
