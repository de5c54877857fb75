//! One module per command; `run` dispatches and returns the exit code.

pub mod backup;
pub mod cat;
pub mod check;
pub mod copy;
pub mod daemon;
pub mod diff;
pub mod doctor;
pub mod dump;
pub mod export;
pub mod find;
pub mod forget;
pub mod history;
pub mod import;
pub mod init;
pub mod key;
pub mod ls;
pub mod manual;
pub mod migrate;
pub mod mount;
pub mod openclaw_job;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod rewrite;
pub mod schedule;
pub mod setup;
pub mod skill;
pub mod snapshots;
pub mod stats;
pub mod status;
pub mod tag;
pub mod ui;
pub mod unlock;

use crate::context::Ctx;
use crate::Command;

pub fn run(ctx: &Ctx, command: &Command) -> anyhow::Result<i32> {
    let g = &ctx.g;
    if g.low_priority {
        for p in crate::priority::lower() {
            eprintln!("clawback: warning: --low-priority: {p}");
        }
    }
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Backup(a) => backup::run(ctx, a),
        Command::Snapshots(a) => snapshots::run(ctx, a),
        Command::Ls(a) => ls::run(ctx, a),
        Command::Restore(a) => restore::run(ctx, a),
        Command::Cat(a) => cat::run(ctx, a),
        Command::Forget(a) => forget::run(ctx, a),
        Command::Check(a) => check::run(ctx, a),
        Command::Prune(a) => prune::run(ctx, a),
        Command::Repair(a) => repair::run(ctx, a),
        Command::Stats(a) => stats::run(ctx, a),
        Command::Diff(a) => diff::run(ctx, a),
        Command::Dump(a) => dump::run(ctx, a),
        Command::Mount(a) => mount::run(ctx, a),
        Command::Import(a) => import::run(ctx, a),
        Command::Export(a) => export::run(ctx, a),
        Command::Status(a) => status::run(ctx, a),
        Command::Ui(a) => ui::run(ctx, a),
        Command::Daemon(a) => daemon::run(g, a),
        Command::Schedule(a) => schedule::run(g, a),
        Command::Copy(a) => copy::run(ctx, a),
        Command::Key(a) => key::run(ctx, a),
        Command::Setup(a) => setup::run(ctx, a),
        Command::Test(a) => doctor::run(ctx, a),
        Command::Skill(a) => skill::run(g, a),
        Command::Version => manual::version(g),
        Command::Completions(a) => manual::completions(a),
        Command::Man(a) => manual::man(a),
        Command::Find(a) => find::run(ctx, a),
        Command::History(a) => history::run(ctx, a),
        Command::Tag(a) => tag::run(ctx, a),
        Command::Rewrite(a) => rewrite::run(ctx, a),
        Command::Unlock(a) => unlock::run(ctx, a),
    }
}

/// Snapshot JSON as docs/CONTRACT.md shapes it for `snapshots`.
pub fn snapshot_json(
    id: &clawback_engine::format::id::SnapshotId,
    s: &clawback_engine::format::snapshot::Snapshot,
) -> serde_json::Value {
    serde_json::json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time,
        "hostname": s.hostname,
        "username": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "parent_id": s.parent.map(|p| p.to_hex()),
        "tree": s.tree.to_hex(),
        "program_version": s.program_version,
        "summary": s.summary,
        "errors": s.errors,
        "skipped": s.skipped,
        "changed": s.changed,
        "openclaw": s.openclaw,
        "group": s.group,
        "original": s.original.map(|o| o.to_hex()),
    })
}
