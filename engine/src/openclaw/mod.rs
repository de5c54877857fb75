//! Knowing OpenClaw: where its state dir, config and workspaces are, resolved the way OpenClaw
//! resolves them, and what a default backup of them leaves out.
//!
//! - [`env`](mod@env): the environment as a value ([`Env`]), so tests never touch the process's.
//! - [`paths`]: the state dir (`OPENCLAW_STATE_DIR`, the legacy `~/.clawdbot`), config path and
//!   credentials folder; [`profile`]: what `openclaw --profile NAME` does to the environment.
//! - [`include`](mod@include), [`vars`], [`config`]: reading `openclaw.json` (JSON5,
//!   `$include`, `${VAR}`, `.env`) exactly as the gateway does.
//! - [`layout`]: agents, workspaces and the folders a default backup reads ([`discover`]).
//! - [`excludes`]: the default exclude patterns, each with its reason.
//! - [`gateway`]: whether a gateway is running on a state dir (before an in-place restore): its
//!   locks in `<state>/tmp/openclaw-<uid>/`, its process, its port.
//! - [`cron`]: its cron jobs, from `openclaw cron list --json` or, without a gateway, its store.
//! - [`repath`]: moving the absolute paths in the config and databases to another home (a
//!   relocating restore).
//! - [`program`]: running the installed `openclaw` with a time limit.
//! - [`version`]: the OpenClaw version a snapshot records, and where it came from.
//! - [`parts`]: where each part `restore --only` names (sessions, cron, memory, config,
//!   credentials) lives, in the file era and the SQLite era.
//! - [`rows`]: those parts as units of rows in OpenClaw's shared databases, merged one by one.
//! - [`sqlite`]: consistent images of live SQLite databases (the online backup API), their
//!   sidecars, and their change stamps.

pub mod config;
pub mod cron;
pub mod env;
pub mod error;
pub mod excludes;
pub mod gateway;
pub mod include;
pub mod layout;
pub mod parts;
pub mod paths;
pub mod profile;
pub mod program;
pub mod repath;
pub mod rows;
pub mod sqlite;
pub mod vars;
pub mod version;

pub use config::OpenClawConfig;
pub use env::Env;
pub use error::ConfigError;
pub use excludes::{default_excludes, Exclude};
pub use layout::{discover, Agent, Layout, Workspace};
pub use paths::{config_path, state_dir};
