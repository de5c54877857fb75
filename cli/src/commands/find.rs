//! `clawback find PATTERN...`: which snapshots hold matching entries, grouped per snapshot with
//! size and mtime; or, with `--blob`/`--tree`, which hold a data blob or tree by id.

use crate::context::Ctx;
use crate::ui::{human_bytes, usage};
use anyhow::Result;
use clawback_engine::commands::find::{find, Query};
use clawback_engine::commands::forget::Within;
use clawback_engine::format::snapshot::{tag_lists, Filter};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Globs: without a `/` matched against names, with one against whole paths (`*` stays within
    /// one folder, `**` crosses folders)
    pub patterns: Vec<String>,
    /// Match this glob against entry names only (repeatable)
    #[arg(long = "name", value_name = "GLOB")]
    pub names: Vec<String>,
    /// Match this glob against whole absolute paths (repeatable; relative: at any depth)
    #[arg(long = "path", value_name = "GLOB")]
    pub paths: Vec<String>,
    /// Only entries modified after this time (RFC 3339, YYYY-MM-DD in UTC, or a duration back from now: 2d, 12h)
    #[arg(long, value_name = "TIME")]
    pub newer: Option<String>,
    /// Only entries modified before this time (RFC 3339, YYYY-MM-DD in UTC, or a duration back from now: 2d, 12h)
    #[arg(long, value_name = "TIME")]
    pub older: Option<String>,
    /// Find files holding data blobs with these ids (prefixes of 4+ hex digits) instead
    #[arg(long, conflicts_with_all = ["tree", "names", "paths", "newer", "older"])]
    pub blob: bool,
    /// Find folders whose tree has these ids (prefixes of 4+ hex digits) instead
    #[arg(long, conflicts_with_all = ["names", "paths", "newer", "older"])]
    pub tree: bool,
    /// Only snapshots of this host (repeatable: any of them)
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Only snapshots with these tags (a,b: both; repeatable: any of the lists)
    #[arg(long = "tag", value_name = "T[,T]")]
    pub tags: Vec<String>,
    /// Only the snapshots of this fleet group
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
}

/// `--newer`/`--older`: RFC 3339, a date (midnight UTC), or a duration back from now in restic's
/// units (`2d`, `12h`, `1m2d`: years, months, days, hours), as `forget --keep-within` takes.
fn time_ns(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    let t = chrono::DateTime::parse_from_rfc3339(v)
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
        })
        .ok()
        .or_else(|| Within::parse(v).ok().map(|w| w.before(chrono::Utc::now(), &chrono::Local)))
        .ok_or_else(|| {
            usage(format!(
                "--{flag} {v:?}: give RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31) or a duration back from now (2d, 12h, 1m2d)"
            ))
        })?;
    Ok(t.timestamp_nanos_opt())
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let g = &ctx.g;
    let q = if a.blob || a.tree {
        if a.patterns.is_empty() {
            return Err(usage("find --blob/--tree needs one or more ids (4+ hex digits each)"));
        }
        Query::ids(&a.patterns, a.tree)?
    } else {
        Query::glob(&a.patterns, &a.names, &a.paths, time_ns("newer", &a.newer)?, time_ns("older", &a.older)?)?
    };
    let repo = ctx.open()?;
    let filter = Filter { hosts: a.hosts.clone(), tags: tag_lists(&a.tags), paths: vec![], group: a.group.clone() };
    let snaps = repo.snapshots_matching(&filter)?;
    let r = find(&repo, &snaps, &q)?;
    if g.json {
        let snapshots: Vec<_> = r
            .snapshots
            .iter()
            .map(|s| {
                let found: Vec<_> = s
                    .found
                    .iter()
                    .map(|f| {
                        let mut v = serde_json::json!({
                            "path": f.path,
                            "type": f.kind,
                            "size": f.size,
                            "mtime": super::ls::mtime_rfc3339(f.mtime_ns),
                        });
                        if let Some(id) = &f.id {
                            v[if a.tree { "tree" } else { "blob" }] = id.clone().into();
                        }
                        v
                    })
                    .collect();
                serde_json::json!({
                    "snapshot": s.snapshot.to_hex(),
                    "short_id": s.snapshot.short(),
                    "time": s.time,
                    "hostname": s.hostname,
                    "tags": s.tags,
                    "matches": found,
                })
            })
            .collect();
        crate::ui::print_json(&serde_json::json!({
            "snapshots": snapshots,
            "snapshots_searched": r.snapshots_searched,
            "matches": r.snapshots.iter().map(|s| s.found.len()).sum::<usize>(),
            "trees_loaded": r.trees_loaded,
            "trees_reused": r.trees_reused,
        }));
        return Ok(0);
    }
    for s in &r.snapshots {
        println!("snapshot {} of {} at {}:", s.snapshot.short(), s.hostname, s.time);
        for f in &s.found {
            let t = super::ls::mtime_rfc3339(f.mtime_ns);
            let id = f.id.as_deref().map(|i| format!("  ({})", &i[..16])).unwrap_or_default();
            let size = if f.kind == "file" { human_bytes(f.size) } else { f.kind.to_string() };
            println!("  {:>10}  {}  {}{id}", size, &t[..19], f.path);
        }
    }
    if !g.quiet {
        let n: usize = r.snapshots.iter().map(|s| s.found.len()).sum();
        println!("{n} matches in {} of {} snapshots", r.snapshots.len(), r.snapshots_searched);
    }
    Ok(0)
}
