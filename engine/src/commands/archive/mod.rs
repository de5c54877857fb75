//! Migration both ways between clawback snapshots and the archives of `openclaw backup create`.
//!
//! The archive layout, from OpenClaw's `docs/cli/backup.md` and `src/commands/backup.ts`,
//! `backup-shared.ts` and `backup-verify.ts`: a `.tar.gz` whose entries all live under one root
//! folder `<archiveRoot>/` (named like `2026-03-09T08-00-00.000+00-00-openclaw-backup`, the
//! local time with its offset; releases before 2026.9 wrote `...000Z-openclaw-backup`), holding
//!
//! - `<archiveRoot>/manifest.json`: `schemaVersion` (1), `createdAt` (ISO 8601), `archiveRoot`,
//!   `runtimeVersion`, `platform`, `nodeVersion`, `options {includeWorkspace, onlyConfig}`,
//!   `paths {stateDir, configPath, oauthDir, workspaceDirs, agentRoots [{agentId, sourcePath}]}`,
//!   `assets [{kind, sourcePath, archivePath}]` (kinds `state`, `config`, `credentials`,
//!   `workspace`, `agent`), `skipped` and, optionally, `externalSymbolicLinks`;
//! - `<archiveRoot>/payload/posix/<absolute source path without its leading slash>/...`: each
//!   asset's tree (`payload/windows/<DRIVE>/...` and `payload/relative/...` for paths that are not
//!   POSIX-absolute, which a snapshot cannot hold and `import` leaves out).
//!
//! So a payload entry maps back to its original absolute path by dropping the prefix up to
//! `posix` and putting back the leading `/`, and an imported snapshot has the same paths as a
//! clawback backup of the same machine. Its time is the manifest's `createdAt`, its paths are the
//! assets' source paths, and its OpenClaw metadata is what the archive declares: the archived
//! openclaw.json (at `paths.configPath`) resolved by the layout code discovery uses, so each agent
//! has the workspace its config gives it, completed by `paths.agentRoots` and `workspaceDirs`.
//!
//! `import` streams the archive: each file's content goes through the chunker into packs as it is
//! read, nothing is extracted to disk, and only the tree (names and chunk ids) is held in memory.
//! Hostile archives are refused: entries outside the one root, `..`, absolute paths, names that are
//! not single safe components, oversized names, headers, manifests or entry counts; symlinks are
//! kept as symlinks and never followed.
//!
//! `export` writes the same layout from a snapshot's trees, with the manifest OpenClaw's
//! `backup verify` and `backup restore` read (the fields `openclaw backup create` writes). The tar
//! is read by node-tar there, so every header has a name, PAX headers included (see
//! `dump::append_pax`). What a tar header cannot carry goes into standard PAX keys: nanosecond `mtime`, `ctime`, and for hard-linked files `SCHILY.dev`, `SCHILY.ino` and
//! `SCHILY.nlink`; the manifest gets a `clawback` key with the snapshot's own time, host, tags and
//! OpenClaw metadata. So `import` of an export rebuilds the same content, modes, owners, times,
//! symlinks and hard links; only the device and inode numbers of singly linked files (which no
//! archive reader but clawback would want) are not carried, so the trees get new ids.
//!
//! The modules: [`import`] (with [`tar`], reading the stream safely, [`tree`], the entries'
//! tree, and [`layout`], OpenClaw as the archive declares it), [`export`], and [`manifest`] both ways. Blobs and trees are written
//! through the repository's one writer session ([`crate::repo::writer`]); a database is cut as
//! backup cuts its images.

mod export;
mod import;
mod layout;
mod manifest;
mod tar;
mod tree;

pub use export::{archive_root_name, export, holds_secrets, ExportResult};
pub use import::{import, ImportOptions, ImportResult};

use crate::error::Error;

/// A refused archive: exit code 1, like damaged data (the archive is not the repository's, so
/// not `Corrupt`).
fn bad(why: impl std::fmt::Display) -> Error {
    Error::Other(format!("not a usable OpenClaw backup archive: {why}"))
}
