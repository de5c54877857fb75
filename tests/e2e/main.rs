//! End-to-end tests: they drive the built `clawback` binary (`CARGO_BIN_EXE_clawback`) against
//! real repositories and real trees in temporary folders. Each test has its own sandbox (HOME, XDG
//! folders, repository, cache), so they run in parallel and never touch the real home.
//!
//! Run with `cargo test -p clawback-cli --test e2e`.

mod proxy;
mod real_openclaw;
mod seaweed;
mod seaweed_cluster;
mod support;

mod anomalies;
mod append_only;
mod archive;
mod browse;
mod cache;
mod cli_json;
mod conventions;
mod copy;
mod crash;
mod daemon;
mod default_repo;
mod diff_dump;
mod dumps;
mod enospc;
mod errors;
mod first_run;
mod group;
mod hooks;
mod hostile;
mod hostile_more;
mod incremental;
mod keys;
mod kill_storm;
mod live;
mod maintenance;
mod mount;
mod notify;
mod object_lock;
mod oc_archive;
mod oc_backup;
mod oc_config;
mod oc_home;
mod oc_relocate;
mod oc_restore;
mod outage;
mod progress;
mod prune;
mod readme;
mod repair;
mod restore_openclaw;
mod retention;
mod roundtrip;
mod s3;
mod s3_cluster;
mod s3_errors;
mod s3_fleet;
mod s3_kill_rounds;
mod s3_proxy;
mod scheduled_env;
mod secrets;
mod setup;
mod status;
mod ui;
