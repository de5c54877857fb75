//! The `clawback` binary: parses flags, resolves the repository and password, dispatches to one
//! module per command, and turns errors into one line on stderr and the documented exit code.

mod commands;
mod context;
mod envfile;
mod openclaw_cli;
mod priority;
mod relocate;
mod runs;
mod select;
mod ui;
mod web;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "clawback",
    version,
    about = "Encrypted, deduplicated backups of OpenClaw agents",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, shown apart from a command's own in `--help`.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Repository: a path, local:/path, s3:http://host:port/bucket/prefix or s3://bucket/prefix
    #[arg(long, short = 'r', global = true, env = "CLAWBACK_REPO", value_name = "R")]
    pub repo: Option<String>,
    /// Read the repository password from this file
    #[arg(long, short = 'p', global = true, value_name = "F")]
    pub password_file: Option<PathBuf>,
    /// Run this command (`sh -c`) and use what it prints as the repository password
    #[arg(long, global = true, value_name = "CMD", conflicts_with = "password_file")]
    pub password_command: Option<String>,
    /// clawback's config file
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Machine-readable output on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress, errors only
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// More detail
    #[arg(short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Folder for the local cache
    #[arg(long, global = true, env = "CLAWBACK_CACHE_DIR", value_name = "D")]
    pub cache_dir: Option<PathBuf>,
    /// Use no local cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Run gently: nice 10 and the idle I/O class (for scheduled runs)
    #[arg(long, global = true)]
    pub low_priority: bool,
    /// Requests kept in flight to the repository (default 5 for S3, 2 for a folder)
    #[arg(long, global = true, value_name = "N", value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=256), usize::from))]
    pub connections: Option<usize>,
    /// Upload rate limit, KiB/s
    #[arg(long, global = true, value_name = "KIB/S", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_upload: Option<u64>,
    /// Download rate limit, KiB/s
    #[arg(long, global = true, value_name = "KIB/S", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_download: Option<u64>,
    /// S3 storage class for data packs (e.g. STANDARD_IA); indexes and snapshots stay STANDARD
    #[arg(long, global = true, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Maintenance key of an append-only repository: lifts the mode for this run (forget, prune...)
    #[arg(long, global = true, env = "CLAWBACK_MAINTENANCE_KEY_FILE", value_name = "F")]
    pub maintenance_key_file: Option<PathBuf>,
    /// The OpenClaw profile, as `openclaw --profile NAME` selects it (state dir ~/.openclaw-NAME)
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a repository
    Init(commands::init::Args),
    /// Snapshot paths (default: the OpenClaw state dir and workspaces)
    #[command(alias = "now")]
    Backup(commands::backup::Args),
    /// List snapshots, newest last
    #[command(alias = "list")]
    Snapshots(commands::snapshots::Args),
    /// List the files in a snapshot
    Ls(commands::ls::Args),
    /// Restore a snapshot into a folder
    Restore(commands::restore::Args),
    /// Print decrypted repository internals as JSON
    Cat(commands::cat::Args),
    /// Remove snapshots by a retention policy, or by id (their data stays until prune)
    Forget(commands::forget::Args),
    /// Verify the repository; --read-data also reads and verifies every pack
    Check(commands::check::Args),
    /// Delete data no snapshot references; repack partly used packs (never blocks backups)
    Prune(commands::prune::Args),
    /// Rebuild the index from the packs, or rewrite snapshots that lost data
    Repair(commands::repair::Args),
    /// Repository size raw and stored, dedup and compression ratios, counts
    Stats(commands::stats::Args),
    /// What changed between two snapshots
    Diff(commands::diff::Args),
    /// Write one file of a snapshot to stdout, or a folder as tar
    Dump(commands::dump::Args),
    /// Browse the repository as a read-only folder (FUSE) until Ctrl-C or SIGTERM
    Mount(commands::mount::Args),
    /// Turn an `openclaw backup create` archive into a snapshot
    Import(commands::import::Args),
    /// Write a snapshot as an archive `openclaw backup restore` accepts
    Export(commands::export::Args),
    /// Health: last snapshot, its age, next due time, last run; exit 1 when stale or failing
    Status(commands::status::Args),
    /// Serve the local web console (health, timeline, browse, restore, back up now)
    Ui(commands::ui::Args),
    /// Run the schedule in the foreground: backup, retention, prune at most daily
    Daemon(commands::daemon::Args),
    /// Register the schedule with systemd, cron or OpenClaw (`schedule install`), or undo it
    Schedule(commands::schedule::Args),
    /// Copy snapshots to a second repository, re-encrypted under its keys
    Copy(commands::copy::Args),
    /// Manage the passwords (key files) that open the repository
    Key(commands::key::Args),
    /// Interactive first-time set-up: writes the config, runs init and test
    Setup(commands::setup::Args),
    /// Check config, storage, key, a round trip, the schedule and recent runs
    #[command(alias = "doctor")]
    Test(commands::doctor::Args),
    /// The OpenClaw skill: install it into the state dir, or show it
    Skill(commands::skill::Args),
    /// Print the program version (and, with --json, the format version and build)
    Version,
    /// Which snapshots hold files matching globs (or a blob or tree by id)
    Find(commands::find::Args),
    /// Every distinct version of one file across snapshots; --patch: what changed each time
    History(commands::history::Args),
    /// Add, remove or set snapshots' tags
    Tag(commands::tag::Args),
    /// Remove files from existing snapshots (e.g. a leaked credential); prune then frees them
    Rewrite(commands::rewrite::Args),
    /// Remove leases left by processes that are gone
    Unlock(commands::unlock::Args),
    /// Print shell completions for bash, zsh, fish, elvish or powershell
    Completions(commands::manual::CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a folder
    Man(commands::manual::ManArgs),
}

/// Buffers of 1 MiB and more (packs, read batches, restore ranges) are mapped for themselves and
/// given back when freed. By default glibc raises that threshold after the first such free, and
/// then keeps freed packs in its heaps: a first backup of 0.5 GB peaked at 111 MiB instead of 76.
///
/// And one malloc heap per core, not glibc's eight: each heap keeps what its threads freed, and a
/// backup runs more threads than cores (walkers, packer, read-ahead). On 2 cores, a first backup
/// of 1.9 GB peaked at 52-54 MiB with 2 heaps against 57-60 MiB with the default, in the same time.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 64);
        // SAFETY: sets malloc tunables before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_ARENA_MAX, cores as libc::c_int);
        }
    }
}

fn parse_or_exit() -> Cli {
    match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}

fn main() {
    tune_malloc();
    ui::quiet_on_closed_stdout();
    let mut cli = parse_or_exit();
    // `--profile`, as `openclaw --profile` does it: into this process's environment, before any
    // thread starts and before the environment file (a flag beats it), so discovery, the config's
    // location, hooks and scheduled jobs all see the profile's state dir.
    if let Some(p) = cli.global.profile.as_deref() {
        if let Err(e) = context::apply_profile(p) {
            std::process::exit(ui::report_error(&e));
        }
    }
    // The environment file, before the config is read and before any thread starts; parsed again
    // when it set something, so flags that read the environment (CLAWBACK_REPO) see it.
    match envfile::load_into_process(&envfile::path_for(cli.global.config.as_deref())) {
        Ok(true) => cli = parse_or_exit(),
        Ok(false) => {}
        Err(e) => std::process::exit(ui::report_error(&e)),
    }
    let ctx = context::Ctx::new(cli.global);
    let code = match commands::run(&ctx, &cli.command) {
        Ok(code) => code,
        Err(e) => ui::report_error(&e),
    };
    ctx.report_requests();
    std::process::exit(code);
}
