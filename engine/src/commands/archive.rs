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
//! Blobs and trees are written through the repository's one writer session
//! ([`crate::repo::writer`]); a database is cut as backup cuts its images.

use crate::commands::backup::ReadErr;
use crate::commands::dump::{self, TarMeta, PAX_CTIME, PAX_DEV, PAX_INO, PAX_NLINK, PAX_TARGET};
use crate::commands::stdin::made_up_node;
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::chunker::Chunker;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::{BackupIssue, OpenclawMeta, Snapshot, Summary};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::openclaw::paths::{
    normalize_agent_id, CONFIG_FILENAME, LEGACY_CONFIG_FILENAMES, LEGACY_STATE_DIRNAMES, STATE_DIRNAME,
};
use crate::openclaw::{include, layout, sqlite, vars, Env, OpenClawConfig};
use crate::progress::Progress;
use crate::repo::writer::{Writer, WriterOptions};
use crate::repo::Repository;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Largest `manifest.json` accepted.
const MAX_MANIFEST: u64 = 16 << 20;
/// Largest PAX or GNU long-name header accepted.
const MAX_EXT_HEADER: u64 = 1 << 20;
/// Longest entry path (after the archive root) and symlink target accepted, in bytes.
const MAX_PATH: usize = 4096;
/// Longest single name.
const MAX_NAME: usize = 255;
/// Most entries an archive may hold (the tree is held in memory until the end).
const MAX_ENTRIES: u64 = 4_000_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 1024;
/// Skipped entries listed one by one; past this they are only counted.
const MAX_LISTED_SKIPS: usize = 200;

/// Largest file read as OpenClaw's config, and how many candidates are held (see
/// `config_candidate`).
const MAX_CONFIG: u64 = 4 << 20;
const MAX_CONFIG_CANDIDATES: usize = 16;

/// Bytes of file data per chunking batch.
const BATCH: usize = 8 << 20;

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Host name to record (default: the one an export recorded, else this machine's).
    pub host: Option<String>,
    /// Tags to add.
    pub tags: Vec<String>,
    /// Snapshot time instead of the manifest's `createdAt`.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone, Debug)]
pub struct ImportResult {
    pub snapshot_id: SnapshotId,
    pub snapshot: Snapshot,
    pub archive_root: String,
    pub created_at: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Entries left out (devices, fifos, Windows paths, entries outside the payload).
    pub skipped: Vec<BackupIssue>,
    /// What the import could not read as it should (an archived config that does not parse).
    pub warnings: Vec<BackupIssue>,
}

/// `openclaw backup` manifest, as much of it as import and export use.
#[derive(Clone, Debug, Default)]
struct Manifest {
    created_at: chrono::DateTime<chrono::Utc>,
    created_at_raw: String,
    archive_root: Option<String>,
    runtime_version: Option<String>,
    state_dir: Option<String>,
    config_path: Option<String>,
    workspace_dirs: Vec<String>,
    /// `paths.agentRoots`: (agentId, sourcePath), each agent's dir as OpenClaw resolved it.
    agent_roots: Vec<(String, String)>,
    /// (kind, sourcePath, archivePath)
    assets: Vec<(String, String, String)>,
    clawback: Option<ClawbackExt>,
}

/// What `export` adds under the manifest's `clawback` key.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct ClawbackExt {
    #[serde(default)]
    snapshot_id: Option<String>,
    snapshot_time: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    openclaw: Option<OpenclawMeta>,
}

/// A refused archive: exit code 1, like damaged data (the archive is not the repository's, so
/// not `Corrupt`).
fn bad(why: impl std::fmt::Display) -> Error {
    Error::Other(format!("not a usable OpenClaw backup archive: {why}"))
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let o = v.as_object().ok_or_else(|| bad("manifest.json is not an object"))?;
    match o.get("schemaVersion").and_then(|x| x.as_u64()) {
        Some(1) => {}
        other => return Err(bad(format!("unsupported manifest schemaVersion {other:?} (expected 1)"))),
    }
    let created_at_raw =
        o.get("createdAt").and_then(|x| x.as_str()).ok_or_else(|| bad("manifest.json has no createdAt"))?.to_string();
    let created_at = chrono::DateTime::parse_from_rfc3339(&created_at_raw)
        .map_err(|e| bad(format!("manifest createdAt {created_at_raw:?}: {e}")))?
        .with_timezone(&chrono::Utc);
    let s = |x: Option<&serde_json::Value>| x.and_then(|x| x.as_str()).map(str::to_string);
    let paths = o.get("paths").and_then(|p| p.as_object());
    let mut m = Manifest {
        created_at,
        created_at_raw,
        archive_root: s(o.get("archiveRoot")),
        runtime_version: s(o.get("runtimeVersion")).filter(|v| !v.is_empty() && v != "unknown"),
        state_dir: paths.and_then(|p| s(p.get("stateDir"))),
        config_path: paths.and_then(|p| s(p.get("configPath"))),
        workspace_dirs: paths
            .and_then(|p| p.get("workspaceDirs"))
            .and_then(|w| w.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        agent_roots: paths
            .and_then(|p| p.get("agentRoots"))
            .and_then(|w| w.as_array())
            .map(|a| a.iter().filter_map(|r| Some((s(r.get("agentId"))?, s(r.get("sourcePath"))?))).collect())
            .unwrap_or_default(),
        ..Manifest::default()
    };
    let assets = o.get("assets").and_then(|a| a.as_array()).ok_or_else(|| bad("manifest.json has no assets"))?;
    for a in assets {
        let kind = s(a.get("kind")).unwrap_or_default();
        let (Some(src), Some(ap)) = (s(a.get("sourcePath")), s(a.get("archivePath"))) else {
            return Err(bad("a manifest asset lacks sourcePath or archivePath"));
        };
        m.assets.push((kind, src, ap));
    }
    if let Some(x) = o.get("clawback") {
        m.clawback = serde_json::from_value(x.clone()).ok();
    }
    Ok(m)
}

/// Splits an archive path into components: relative, no `..`, no NUL; `.` and empty components
/// (a trailing slash) dropped.
fn split_path(p: &[u8]) -> Result<Vec<&[u8]>> {
    if p.first() == Some(&b'/') {
        return Err(bad(format!("absolute entry path {:?}", String::from_utf8_lossy(p))));
    }
    if p.contains(&0) {
        return Err(bad("entry path with a NUL byte"));
    }
    let mut out = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(bad(format!("entry path with `..`: {:?}", String::from_utf8_lossy(p)))),
            c if c.len() > MAX_NAME => return Err(bad("entry name longer than 255 bytes")),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return Err(bad("empty entry path"));
    }
    Ok(out)
}

/// Parses PAX extended-header records (`<len> <key>=<value>\n`); values may hold any byte.
fn parse_pax(data: &[u8]) -> Result<HashMap<String, Vec<u8>>> {
    let mut out = HashMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(|| bad("malformed PAX header"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= rest.len())
            .ok_or_else(|| bad("malformed PAX header length"))?;
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").ok_or_else(|| bad("PAX record not ended by a newline"))?;
        let eq = rec.iter().position(|&b| b == b'=').ok_or_else(|| bad("PAX record without `=`"))?;
        let key = String::from_utf8_lossy(&rec[..eq]).into_owned();
        out.insert(key, rec[eq + 1..].to_vec());
        rest = &rest[len..];
    }
    Ok(out)
}

fn read_bounded<R: Read>(r: &mut R, size: u64, max: u64, what: &str) -> Result<Vec<u8>> {
    if size > max {
        return Err(bad(format!("{what} of {size} bytes (at most {max} accepted)")));
    }
    let mut v = Vec::with_capacity(size as usize);
    r.take(max + 1).read_to_end(&mut v).map_err(|e| bad(format!("reading {what}: {e}")))?;
    if v.len() as u64 != size {
        return Err(bad(format!("{what} is truncated")));
    }
    Ok(v)
}

/// A folder being assembled from archive entries.
#[derive(Default)]
struct DirB {
    /// Its metadata, once its own entry was seen.
    node: Option<Node>,
    children: BTreeMap<Vec<u8>, Child>,
}

enum Child {
    Dir(DirB),
    Leaf(Node),
}

impl DirB {
    /// Inserts `node` at `comps` (its name is the last component), creating folders on the way.
    fn insert(&mut self, comps: &[&[u8]], node: Node, shown: &str) -> Result<()> {
        let mut d = self;
        for c in &comps[..comps.len() - 1] {
            let e = d.children.entry(c.to_vec()).or_insert_with(|| Child::Dir(DirB::default()));
            d = match e {
                Child::Dir(x) => x,
                Child::Leaf(_) => return Err(bad(format!("{shown} is inside something that is not a folder"))),
            };
        }
        let name = comps[comps.len() - 1].to_vec();
        match (d.children.get_mut(&name), node.kind) {
            (None, NodeKind::Dir) => {
                d.children.insert(name, Child::Dir(DirB { node: Some(node), children: BTreeMap::new() }));
            }
            (None, _) => {
                d.children.insert(name, Child::Leaf(node));
            }
            (Some(Child::Dir(x)), NodeKind::Dir) if x.node.is_none() => x.node = Some(node),
            _ => return Err(bad(format!("{shown} appears twice, or as both a folder and a file"))),
        }
        Ok(())
    }

    fn find_leaf_mut(&mut self, comps: &[&[u8]]) -> Option<&mut Node> {
        let mut d = self;
        for c in &comps[..comps.len().checked_sub(1)?] {
            d = match d.children.get_mut(*c)? {
                Child::Dir(x) => x,
                Child::Leaf(_) => return None,
            };
        }
        match d.children.get_mut(comps[comps.len() - 1])? {
            Child::Leaf(n) => Some(n),
            Child::Dir(_) => None,
        }
    }

    fn contains(&self, comps: &[&[u8]]) -> bool {
        let mut d = self;
        for (i, c) in comps.iter().enumerate() {
            match d.children.get(*c) {
                None => return false,
                Some(Child::Dir(x)) => d = x,
                Some(Child::Leaf(_)) => return i + 1 == comps.len(),
            }
        }
        true
    }

    /// The names of the sub-folders at `comps`.
    fn subdirs(&self, comps: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut d = self;
        for c in comps {
            match d.children.get(*c) {
                Some(Child::Dir(x)) => d = x,
                _ => return Vec::new(),
            }
        }
        d.children.iter().filter(|(_, c)| matches!(c, Child::Dir(_))).map(|(n, _)| n.clone()).collect()
    }
}

/// Writes an archive's files and trees into the repository (the encryption of a batch's chunks
/// runs in parallel).
struct Sink<'a> {
    level: i32,
    writer: Writer<'a>,
}

impl<'a> Sink<'a> {
    fn new(repo: &'a Repository) -> Self {
        Sink { level: repo.config().compression, writer: Writer::new(repo, WriterOptions::default()) }
    }

    fn store_tree(&self, t: &Tree) -> Result<BlobId> {
        self.writer.store_tree(t)
    }

    /// Reads `r` to its end, storing the chunks that are new. Returns the chunk ids and the length.
    /// A SQLite database (known by its header) is cut into page-aligned chunks of fixed size, as
    /// backup cuts its database images, so an imported database and a later backup of the same
    /// one share their chunks; anything else goes through the content-defined chunker.
    fn store_content<R: Read>(
        &self,
        chunker: &Chunker,
        mut r: R,
        buf: &mut Vec<u8>,
        progress: &Progress,
    ) -> Result<(Vec<BlobId>, u64), ReadErr> {
        let mut head = [0u8; 100];
        let mut got = 0;
        while got < head.len() {
            match r.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let fixed = sqlite::parse_header(&head[..got]).map(|h| {
            let page = h.page_size.max(512) as usize;
            (chunker.params().min as usize).div_ceil(page).max(1) * page
        });
        let r = std::io::Cursor::new(&head[..got]).chain(r);
        let w = &self.writer;
        let keys = self.writer.repo().keys();
        let level = self.level;
        let mut ids = Vec::new();
        let each = |data: &[u8], cuts: &[std::ops::Range<usize>]| -> Result<(), ReadErr> {
            let hashed: Vec<BlobId> = cuts.par_iter().map(|c| keys.blob_id(&data[c.clone()])).collect();
            let mut new = Vec::new();
            for (id, c) in hashed.iter().zip(cuts) {
                if w.claim(BlobType::Data, id) {
                    new.push((*id, c.clone()));
                }
            }
            let encoded: Vec<(BlobId, Vec<u8>, usize)> = new
                .par_iter()
                .map(|(id, c)| (*id, w.encode(BlobType::Data, id, &data[c.clone()], level), c.len()))
                .collect();
            for (id, stored, len) in encoded {
                w.add(BlobType::Data, id, stored, len).map_err(ReadErr::Fatal)?;
            }
            progress.bytes_done.fetch_add(cuts.last().map(|c| c.end).unwrap_or(0) as u64, Relaxed);
            ids.extend(hashed);
            Ok(())
        };
        let n = match fixed {
            Some(size) => crate::format::chunker::for_each_fixed(r, buf, BATCH, size, each)?,
            None => chunker.for_each_batch::<_, ReadErr>(r, buf, BATCH, each)?,
        };
        Ok((ids, n))
    }

    fn finish(self) -> Result<u64> {
        self.writer.finish()
    }
}

/// Opens an archive stream: gzip if it starts with gzip's magic bytes, plain tar otherwise.
fn decompress<'r, R: Read + 'r>(r: R) -> Result<Box<dyn Read + 'r>> {
    let mut br = BufReader::with_capacity(1 << 20, r);
    let head = br.fill_buf().map_err(|e| bad(format!("cannot read the archive: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else {
        Ok(Box::new(br))
    }
}

/// Where an archive entry goes.
enum Place<'p> {
    /// The archive root, `payload/`, `payload/posix/`: nothing to store.
    Ignore,
    Manifest,
    /// Components of the original absolute path.
    Tree(Vec<&'p [u8]>),
    /// Left out, with the reason.
    Skip(&'static str),
}

fn place<'p>(comps: &[&'p [u8]], root: &[u8]) -> Result<Place<'p>> {
    if comps[0] != root {
        return Err(bad(format!(
            "entry {:?} is outside the archive root {:?}",
            String::from_utf8_lossy(&comps.join(&b'/')),
            String::from_utf8_lossy(root)
        )));
    }
    Ok(match comps.get(1).copied() {
        None => Place::Ignore,
        Some(b"manifest.json") if comps.len() == 2 => Place::Manifest,
        Some(b"payload") => match comps.get(2).copied() {
            None => Place::Ignore,
            Some(b"posix") if comps.len() == 3 => Place::Ignore,
            Some(b"posix") => Place::Tree(comps[3..].to_vec()),
            Some(b"windows") => Place::Skip("a Windows path, which a POSIX snapshot cannot hold"),
            Some(_) => Place::Skip("a relative source path, which has no place in a snapshot"),
        },
        Some(_) => Place::Skip("not part of the archive's payload"),
    })
}

/// Maps a manifest `archivePath` to the original absolute path, if it is a POSIX payload path.
fn archive_path_to_abs(ap: &str, root: &str) -> Option<PathBuf> {
    let comps = split_path(ap.as_bytes()).ok()?;
    if comps.len() < 3 || comps[0] != root.as_bytes() || comps[1] != b"payload" || comps[2] != b"posix" {
        return None;
    }
    let mut p = PathBuf::from("/");
    for c in &comps[3..] {
        p.push(OsStr::from_bytes(c));
    }
    Some(p)
}

/// The absolute path whose components (below `/`) are `comps`.
fn abs_path(comps: &[&[u8]]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

fn comps_of(p: &Path) -> Vec<&[u8]> {
    p.components().skip(1).map(|c| c.as_os_str().as_bytes()).collect()
}

fn num<T: std::str::FromStr>(pax: &HashMap<String, Vec<u8>>, k: &str) -> Option<T> {
    pax.get(k).and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.trim().parse().ok())
}

/// Imports an `openclaw backup create` archive (gzip or plain tar) as a snapshot.
pub fn import<R: Read>(repo: &Repository, input: R, opts: &ImportOptions, progress: &Progress) -> Result<ImportResult> {
    let start = Instant::now();
    // Like a backup: the lease goes up before the index is used, so a concurrent prune keeps the
    // packs this import may reuse (format spec, "Prune, leases and condemned packs").
    let lease = crate::repo::lease::Lease::backup(repo.backend().clone())?;
    repo.refresh_index()?;
    let reader = decompress(input)?;
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().map_err(|e| bad(format!("cannot read the archive: {e}")))?.raw(true);
    let chunker = Chunker::new(repo.config().chunker, repo.keys().chunker_seed);
    let sink = Sink::new(repo);
    let mut buf = Vec::new();

    let mut root_name: Option<Vec<u8>> = None;
    let mut manifest: Option<Manifest> = None;
    let mut top = DirB::default();
    let mut skipped: Vec<BackupIssue> = Vec::new();
    let mut skipped_more = 0u64;
    let (mut files, mut dirs, mut symlinks, mut bytes, mut count) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut pax: Option<HashMap<String, Vec<u8>>> = None;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut next_ino: u64 = 1 << 48;
    // Files that may be OpenClaw's config, held to read the agents from (see `config_candidate`).
    let mut configs: Vec<(PathBuf, Vec<u8>)> = Vec::new();

    for e in entries {
        let mut e = e.map_err(|e| bad(format!("cannot read the archive: {e}")))?;
        let ty = e.header().entry_type();
        let size = e.header().entry_size().map_err(|e| bad(format!("bad entry size: {e}")))?;
        if ty.is_pax_local_extensions() {
            if pax.is_some() {
                return Err(bad("two PAX headers for one entry"));
            }
            pax = Some(parse_pax(&read_bounded(&mut e, size, MAX_EXT_HEADER, "a PAX header")?)?);
            continue;
        }
        if ty.is_pax_global_extensions() {
            read_bounded(&mut e, size, MAX_EXT_HEADER, "a global PAX header")?;
            continue;
        }
        if ty.is_gnu_longname() || ty.is_gnu_longlink() {
            let mut v = read_bounded(&mut e, size, MAX_PATH as u64 + 1, "a long name")?;
            while v.last() == Some(&0) {
                v.pop();
            }
            let slot = if ty.is_gnu_longname() { &mut long_name } else { &mut long_link };
            if slot.replace(v).is_some() {
                return Err(bad("two long names for one entry"));
            }
            continue;
        }
        let ext = pax.take().unwrap_or_default();
        let ln = long_name.take();
        let ll = long_link.take();
        count += 1;
        if count > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        if let Some(s) = num::<u64>(&ext, "size") {
            if s != size {
                return Err(bad("a PAX size that differs from the header's is not supported"));
            }
        }
        let path_bytes: Vec<u8> =
            ext.get("path").cloned().or(ln).unwrap_or_else(|| e.header().path_bytes().into_owned());
        if path_bytes.len() > MAX_PATH {
            return Err(bad("entry path longer than 4096 bytes"));
        }
        let comps = split_path(&path_bytes)?;
        let root = root_name.get_or_insert_with(|| comps[0].to_vec()).clone();
        let shown = String::from_utf8_lossy(&path_bytes).into_owned();
        let mut skip = |why: &str| {
            if skipped.len() < MAX_LISTED_SKIPS {
                skipped.push(BackupIssue { path: shown.clone(), error: why.to_string() });
            } else {
                skipped_more += 1;
            }
        };
        let comps = match place(&comps, &root)? {
            Place::Ignore => continue,
            Place::Skip(why) => {
                skip(why);
                continue;
            }
            Place::Manifest => {
                if manifest.is_some() {
                    return Err(bad("two manifest.json entries"));
                }
                if !matches!(ty, tar::EntryType::Regular | tar::EntryType::Continuous) {
                    return Err(bad("manifest.json is not a regular file"));
                }
                manifest = Some(parse_manifest(&read_bounded(&mut e, size, MAX_MANIFEST, "manifest.json")?)?);
                continue;
            }
            Place::Tree(c) => c,
        };
        if comps.len() > MAX_DEPTH {
            return Err(bad("entries nested too deeply"));
        }
        for c in &comps {
            Node::check_name(c).map_err(|_| bad(format!("unsafe name in {shown:?}")))?;
        }
        let h = e.header();
        let mtime_ns =
            ext.get("mtime").and_then(|v| std::str::from_utf8(v).ok()).and_then(dump::parse_pax_time).unwrap_or_else(
                || (h.mtime().unwrap_or(0).min(i64::MAX as u64 / 1_000_000_000) as i64) * 1_000_000_000,
            );
        let mut node = Node {
            name: comps[comps.len() - 1].to_vec(),
            kind: NodeKind::File,
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: num::<u32>(&ext, "uid").unwrap_or_else(|| h.uid().unwrap_or(0).min(u32::MAX as u64) as u32),
            gid: num::<u32>(&ext, "gid").unwrap_or_else(|| h.gid().unwrap_or(0).min(u32::MAX as u64) as u32),
            mtime_ns,
            ctime_ns: ext
                .get(PAX_CTIME)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(dump::parse_pax_time)
                .unwrap_or(mtime_ns),
            dev: num(&ext, PAX_DEV).unwrap_or(0),
            ino: num(&ext, PAX_INO).unwrap_or(0),
            nlink: num(&ext, PAX_NLINK).unwrap_or(1),
            size: 0,
            content: Vec::new(),
            subtree: None,
            target: Vec::new(),
        };
        let link = ext.get("linkpath").cloned().or(ll).or_else(|| h.link_name_bytes().map(|c| c.into_owned()));
        match ty {
            tar::EntryType::Directory => {
                node.kind = NodeKind::Dir;
                dirs += 1;
            }
            tar::EntryType::Symlink => {
                node.kind = NodeKind::Symlink;
                let t = ext.get(PAX_TARGET).cloned().or(link).unwrap_or_default();
                if t.is_empty() || t.len() > MAX_PATH || t.contains(&0) {
                    return Err(bad(format!("symlink {shown:?} has an empty, oversized or invalid target")));
                }
                node.target = t;
                symlinks += 1;
            }
            tar::EntryType::Link => {
                // A hard link to a file met earlier: the same content, and an inode shared with it
                // so restore links them again.
                let t = link.unwrap_or_default();
                let tcomps = split_path(&t)?;
                let target = match place(&tcomps, &root)? {
                    Place::Tree(tc) => top.find_leaf_mut(&tc).filter(|n| n.kind == NodeKind::File),
                    _ => None,
                };
                let Some(target) = target else {
                    skip("a hard link to a file not earlier in the archive");
                    continue;
                };
                if target.nlink <= 1 || target.ino == 0 {
                    target.dev = 0;
                    target.ino = next_ino;
                    target.nlink = 1;
                    next_ino += 1;
                }
                target.nlink += 1;
                node.content = target.content.clone();
                node.size = target.size;
                node.dev = target.dev;
                node.ino = target.ino;
                node.nlink = target.nlink;
                files += 1;
                bytes += node.size;
                progress.files_done.fetch_add(1, Relaxed);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let abs = abs_path(&comps);
                let stored = if size <= MAX_CONFIG
                    && configs.len() < MAX_CONFIG_CANDIDATES
                    && config_candidate(&abs, manifest.as_ref())
                {
                    let data = read_bounded(&mut e, size, MAX_CONFIG, &format!("{shown:?}"))?;
                    let r = sink.store_content(&chunker, data.as_slice(), &mut buf, progress);
                    configs.push((abs, data));
                    r
                } else {
                    sink.store_content(&chunker, &mut e, &mut buf, progress)
                };
                let (content, n) = match stored {
                    Ok(x) => x,
                    Err(ReadErr::Io(err)) => return Err(bad(format!("reading {shown:?}: {err}"))),
                    Err(ReadErr::Fatal(err)) => return Err(err),
                };
                if n != size {
                    return Err(bad(format!("the archive is truncated inside {shown:?}")));
                }
                node.content = content;
                node.size = n;
                files += 1;
                bytes += n;
                progress.files_done.fetch_add(1, Relaxed);
            }
            tar::EntryType::GNUSparse => return Err(bad(format!("sparse file {shown:?} is not supported"))),
            tar::EntryType::Char | tar::EntryType::Block => {
                skip("device not imported");
                continue;
            }
            tar::EntryType::Fifo => {
                skip("fifo not imported");
                continue;
            }
            _ => {
                skip("entry of an unknown type not imported");
                continue;
            }
        }
        top.insert(&comps, node, &shown)?;
    }
    if pax.is_some() || long_name.is_some() || long_link.is_some() {
        return Err(bad("the archive ends with a header that describes no entry"));
    }
    let root = root_name.ok_or_else(|| bad("the archive is empty"))?;
    let root = String::from_utf8(root).map_err(|_| bad("the archive root is not UTF-8"))?;
    let m = manifest.ok_or_else(|| bad(format!("no {root}/manifest.json")))?;
    if let Some(r) = &m.archive_root {
        if r != &root {
            return Err(bad(format!("the manifest names archive root {r:?} but the entries are under {root:?}")));
        }
    }
    if skipped_more > 0 {
        skipped
            .push(BackupIssue { path: format!("{root}/..."), error: format!("{skipped_more} more entries left out") });
    }

    // The snapshot's paths: the assets, as they map back to absolute paths.
    let mut paths: Vec<PathBuf> = Vec::new();
    let ext = m.clawback.clone();
    match ext.as_ref().filter(|x| !x.paths.is_empty()) {
        Some(x) => paths.extend(x.paths.iter().map(PathBuf::from)),
        None => {
            for (_, src, ap) in &m.assets {
                match archive_path_to_abs(ap, &root) {
                    Some(p) => paths.push(p),
                    None => skipped.push(BackupIssue {
                        path: src.clone(),
                        error: "asset outside the archive's POSIX payload, not imported".into(),
                    }),
                }
            }
        }
    }
    paths.retain(|p| {
        let ok = top.contains(&comps_of(p));
        if !ok {
            skipped.push(BackupIssue {
                path: p.to_string_lossy().into_owned(),
                error: "listed in the manifest but not in the archive".into(),
            });
        }
        ok
    });
    paths.sort();
    paths.dedup();
    let covered: Vec<PathBuf> = paths.clone();
    paths.retain(|p| !covered.iter().any(|q| q != p && p.starts_with(q)));
    if paths.is_empty() {
        return Err(bad("the archive holds none of the paths its manifest lists"));
    }

    let default_dir =
        made_up_node(Vec::new(), NodeKind::Dir, 0o755, 0, 0, m.created_at.timestamp_nanos_opt().unwrap_or(0));
    let mut warnings = Vec::new();
    let openclaw = match ext.as_ref().and_then(|x| x.openclaw.clone()) {
        Some(o) => Some(o),
        None => openclaw_meta(&m, archived_config(&m, &configs), &top, &mut warnings),
    };
    let DirB { children, .. } = top;
    let tree = build_tree(&sink, children, &default_dir, 0)?;
    let tree_id = sink.store_tree(&tree)?;
    let bytes_added = sink.writer.bytes_added();
    let stored = sink.finish()?;

    let time = opts
        .time
        .or_else(|| {
            ext.as_ref()
                .and_then(|x| chrono::DateTime::parse_from_rfc3339(&x.snapshot_time).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
        })
        .unwrap_or(m.created_at);
    let mut tags = ext.as_ref().map(|x| x.tags.clone()).unwrap_or_default();
    for t in &opts.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let mut snap = Snapshot {
        version: 1,
        time: time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        hostname: opts
            .host
            .clone()
            .or_else(|| ext.as_ref().and_then(|x| x.hostname.clone()))
            .unwrap_or_else(crate::repo::host::hostname),
        username: ext.as_ref().and_then(|x| x.username.clone()).unwrap_or_else(crate::repo::host::username),
        paths: paths.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
        tags,
        parent: None,
        tree: tree_id,
        summary: Summary {
            files_new: files,
            files_changed: 0,
            files_unmodified: 0,
            dirs,
            bytes_read: bytes,
            bytes_added,
            bytes_stored: stored,
            duration_s: start.elapsed().as_secs_f64(),
            total_files: files,
            total_bytes: bytes,
        },
        program_version: format!("clawback {}", env!("CARGO_PKG_VERSION")),
        errors: Vec::new(),
        skipped: skipped.clone(),
        changed: Vec::new(),
        warnings: warnings.clone(),
        openclaw,
        group: None,
        original: None,
    };
    snap.summary.bytes_stored = stored;
    lease.ensure_held()?;
    let snapshot_id = repo.save_snapshot_counting_itself(&mut snap)?;
    lease.release();
    Ok(ImportResult {
        snapshot_id,
        snapshot: snap,
        archive_root: root,
        created_at: m.created_at_raw,
        files,
        dirs,
        symlinks,
        bytes,
        skipped,
        warnings,
    })
}

/// Stores the trees below a folder, deepest first, and returns the folder's own tree.
fn build_tree(sink: &Sink, children: BTreeMap<Vec<u8>, Child>, default_dir: &Node, depth: usize) -> Result<Tree> {
    if depth > MAX_DEPTH {
        return Err(bad("entries nested too deeply"));
    }
    let mut nodes = Vec::with_capacity(children.len());
    for (name, c) in children {
        match c {
            Child::Leaf(n) => nodes.push(n),
            Child::Dir(d) => {
                let mut n = d.node.unwrap_or_else(|| default_dir.clone());
                n.name = name;
                n.kind = NodeKind::Dir;
                n.size = 0;
                let t = build_tree(sink, d.children, default_dir, depth + 1)?;
                n.subtree = Some(sink.store_tree(&t)?);
                nodes.push(n);
            }
        }
    }
    Ok(Tree::new(nodes))
}

/// The state dir an archive declares: the manifest's `paths.stateDir`, else its `state` asset.
fn manifest_state(m: &Manifest) -> Option<PathBuf> {
    let abs = |s: &String| s.starts_with('/').then(|| PathBuf::from(s));
    m.state_dir
        .as_ref()
        .and_then(abs)
        .or_else(|| m.assets.iter().find(|(k, s, _)| k == "state" && s.starts_with('/')).map(|(_, s, _)| s.into()))
}

/// Whether an archived file may be OpenClaw's config: the path the manifest names (once read:
/// OpenClaw writes the manifest last, clawback first), or any file with one of the config's names.
/// Such files are held in memory until the end, when `archived_config` picks the one the
/// manifest names.
fn config_candidate(abs: &Path, m: Option<&Manifest>) -> bool {
    let named = m.into_iter().flat_map(|m| {
        let ext = m.clawback.as_ref().and_then(|x| x.openclaw.as_ref()).and_then(|o| o.config_path.as_deref());
        m.config_path.as_deref().into_iter().chain(ext)
    });
    if named.into_iter().any(|p| Path::new(p) == abs) {
        return true;
    }
    abs.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == CONFIG_FILENAME || LEGACY_CONFIG_FILENAMES.contains(&n))
}

/// The archived config: the file at the manifest's `configPath`, else `<state>/openclaw.json` (or
/// a legacy name), if the archive holds it.
fn archived_config<'c>(m: &Manifest, configs: &'c [(PathBuf, Vec<u8>)]) -> Option<(&'c Path, &'c [u8])> {
    let state = manifest_state(m)?;
    let mut want: Vec<PathBuf> = m.config_path.iter().filter(|p| p.starts_with('/')).map(PathBuf::from).collect();
    want.push(state.join(CONFIG_FILENAME));
    want.extend(LEGACY_CONFIG_FILENAMES.iter().map(|n| state.join(n)));
    want.iter().find_map(|w| configs.iter().find(|(p, _)| p == w)).map(|(p, d)| (p.as_path(), d.as_slice()))
}

/// OpenClaw's layout as the archive declares it. Its config (`config`, the archived
/// openclaw.json) is resolved by the layout code discovery uses (`agents.entries` / `agents.list`
/// with each agent's `workspace` and `agentDir`, `agents.defaults.workspace`), as on the machine
/// it came from (HOME the state dir's parent); the manifest's `agentRoots` (each agent's dir as
/// OpenClaw resolved it) and `workspaceDirs` complete it. Without a config the agents are those of
/// `agentRoots`, else the folders under `<state>/agents/`, placed by OpenClaw's defaults.
fn openclaw_meta(
    m: &Manifest,
    config: Option<(&Path, &[u8])>,
    top: &DirB,
    warnings: &mut Vec<BackupIssue>,
) -> Option<OpenclawMeta> {
    let state = manifest_state(m)?;
    let held = |p: &Path| top.contains(&comps_of(p));
    let home = state
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n == STATE_DIRNAME || LEGACY_STATE_DIRNAMES.contains(n))
        .and_then(|_| state.parent());
    let mut env = Env::from_pairs([("OPENCLAW_STATE_DIR", state.to_string_lossy().into_owned())]);
    if let Some(h) = home {
        env = env.with("HOME", h.to_string_lossy().into_owned());
    }
    // Relative settings resolve against the archived machine's folders, never this process's.
    env.cwd = Some(home.unwrap_or(&state).to_path_buf());

    let config_path = match config {
        Some((p, _)) => p.to_path_buf(),
        None => m
            .config_path
            .as_ref()
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from)
            .unwrap_or_else(|| state.join(CONFIG_FILENAME)),
    };
    let parsed = config.and_then(|(p, bytes)| {
        let v = std::str::from_utf8(bytes)
            .map_err(|_| "it is not UTF-8".to_string())
            .and_then(|t| include::parse_json5(p, t).map_err(|e| e.to_string()))
            .and_then(|v| if v.is_object() { Ok(v) } else { Err("it is not a JSON object".into()) });
        match v {
            Ok(v) => Some(v),
            Err(why) => {
                warnings.push(BackupIssue {
                    path: p.to_string_lossy().into_owned(),
                    error: format!(
                        "cannot read the archived config ({why}); its agents were placed by OpenClaw's defaults"
                    ),
                });
                None
            }
        }
    });
    let exists = parsed.is_some();
    let raw = parsed.unwrap_or_else(|| {
        // No config: the agents the manifest or the state dir names, with their folders.
        let mut entries = serde_json::Map::new();
        for (id, dir) in &m.agent_roots {
            entries.insert(id.clone(), serde_json::json!({ "agentDir": dir }));
        }
        if entries.is_empty() {
            let mut ac = comps_of(&state);
            ac.push(b"agents");
            for id in top.subdirs(&ac) {
                entries.insert(String::from_utf8_lossy(&id).into_owned(), serde_json::json!({}));
            }
        }
        serde_json::json!({ "agents": { "entries": entries } })
    });
    let mut unresolved = Vec::new();
    let value = vars::substitute(&raw, &env, &mut unresolved);
    let cfg = OpenClawConfig {
        state_dir: state.clone(),
        path: config_path.clone(),
        exists,
        raw,
        value,
        vars: env.clone(),
        files: vec![config_path],
        unresolved,
        warnings: Vec::new(),
    };
    let defaults_ws = cfg
        .get("agents.defaults.workspace")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .map(|s| env.resolve_user_path(s));
    let lay = layout::layout_from(&cfg, &env);
    let mut meta = lay.to_meta();

    let declared: Vec<PathBuf> = m.workspace_dirs.iter().filter(|p| p.starts_with('/')).map(PathBuf::from).collect();
    for a in &mut meta.agents {
        if let Some((_, dir)) =
            m.agent_roots.iter().find(|(id, d)| normalize_agent_id(id) == a.id && d.starts_with('/'))
        {
            a.agent_dir = dir.clone();
        }
        // An agent without a workspace of its own lives in `<state>/workspace-<id>` or, in newer
        // releases, `<agents.defaults.workspace>/<id>`; discovery tells them apart on disk, an
        // archive by what it declares and holds.
        let ws = PathBuf::from(&a.workspace);
        let fallbacks = [Some(state.join(format!("workspace-{}", a.id))), defaults_ws.as_ref().map(|d| d.join(&a.id))];
        let known = |p: &Path| declared.iter().any(|d| d == p) || held(p);
        if !known(&ws) && fallbacks.iter().flatten().any(|f| *f == ws) {
            if let Some(f) = fallbacks.iter().flatten().find(|f| **f != ws && known(f)) {
                a.workspace = f.to_string_lossy().into_owned();
            }
        }
    }
    // The default agent's workspace first, as discovery orders them, then what the manifest adds.
    let mut workspaces: Vec<String> = Vec::new();
    let by_default = meta.agents.iter().filter(|a| a.default).chain(meta.agents.iter().filter(|a| !a.default));
    let also = declared.iter().map(|d| d.to_string_lossy().into_owned());
    for w in by_default.map(|a| a.workspace.clone()).chain(also) {
        if !workspaces.contains(&w) {
            workspaces.push(w);
        }
    }
    meta.workspaces = workspaces;
    if m.runtime_version.is_some() {
        meta.openclaw_version = m.runtime_version.clone();
        meta.openclaw_version_source = Some(crate::format::snapshot::VersionSource::Archive);
    } else if meta.openclaw_version.is_some() {
        meta.openclaw_version_source = Some(crate::format::snapshot::VersionSource::Config);
    }
    Some(meta)
}

/// The manifest `export` writes: the fields and order of `openclaw backup create`'s (its
/// `buildManifest`), without `externalSymbolicLinks` (so the verifier checks instead that every
/// symlink is relative and stays within the assets, which `portable_target` makes sure of), plus
/// the `clawback` key.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestOut {
    schema_version: u32,
    created_at: String,
    archive_root: String,
    runtime_version: String,
    platform: &'static str,
    node_version: &'static str,
    options: OptionsOut,
    paths: PathsOut,
    assets: Vec<AssetOut>,
    skipped: Vec<serde_json::Value>,
    clawback: ClawbackExt,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OptionsOut {
    include_workspace: bool,
    only_config: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PathsOut {
    state_dir: String,
    config_path: String,
    oauth_dir: String,
    workspace_dirs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    agent_roots: Vec<AgentRootOut>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentRootOut {
    agent_id: String,
    source_path: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AssetOut {
    kind: &'static str,
    source_path: String,
    archive_path: String,
}

/// `paths.agentRoots`: each agent's dir, for the agents whose id and dir OpenClaw's manifest
/// parser accepts (a canonical id, an absolute normalized path, each once); it refuses the whole
/// archive over one bad entry.
fn agent_roots(m: &OpenclawMeta) -> Vec<AgentRootOut> {
    let mut out: Vec<AgentRootOut> = Vec::new();
    for a in &m.agents {
        let dir = Path::new(&a.agent_dir);
        let normalized = clean_abs(dir).is_some_and(|c| c.as_os_str() == dir.as_os_str()) && a.agent_dir.len() > 1;
        let canonical = !a.id.is_empty() && normalize_agent_id(&a.id) == a.id;
        if normalized && canonical && !out.iter().any(|o| o.agent_id == a.id || o.source_path == a.agent_dir) {
            out.push(AgentRootOut { agent_id: a.id.clone(), source_path: a.agent_dir.clone() });
        }
    }
    out
}

/// This system as Node's `process.platform` names it, which OpenClaw records and reads.
fn node_platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        os => os,
    }
}

/// `createdAt` as JavaScript's `toISOString` writes it.
fn js_iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The archive's root folder name, from the snapshot's time, as OpenClaw 2026.9 names it
/// (`formatBackupArchiveTimestamp`: the time with its UTC offset, here always UTC's).
pub fn archive_root_name(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}-openclaw-backup", t.format("%Y-%m-%dT%H-%M-%S%.3f+00-00"))
}

/// OpenClaw's asset kind for a snapshot path.
fn asset_kind(p: &Path, meta: Option<&OpenclawMeta>) -> &'static str {
    if let Some(m) = meta {
        if Path::new(&m.state_dir) == p {
            return "state";
        }
        if m.config_path.as_deref().map(Path::new) == Some(p) {
            return "config";
        }
        if m.workspaces.iter().any(|w| Path::new(w) == p) {
            return "workspace";
        }
        if m.agents.iter().any(|a| Path::new(&a.agent_dir) == p) {
            return "agent";
        }
    }
    let name = p.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if name == b"credentials" {
        "credentials"
    } else if name == b"openclaw.json" {
        "config"
    } else if name == b".openclaw" || name.starts_with(b".openclaw-") {
        "state"
    } else {
        "workspace"
    }
}

/// Lexically cleans an absolute path; `None` if `..` climbs above `/`.
fn clean_abs(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// The relative path from folder `from` to `to` (both clean and absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The target a symlink at `link` can have in an archive OpenClaw accepts: its own when it is
/// relative and stays within the assets, made relative when it is absolute and points into the
/// assets, and `None` (left out) otherwise.
fn portable_target(link: &Path, target: &[u8], assets: &[PathBuf]) -> Option<Vec<u8>> {
    if target.is_empty() || target.contains(&b'\\') {
        return None;
    }
    let parent = link.parent().unwrap_or(Path::new("/"));
    let t = Path::new(OsStr::from_bytes(target));
    let within = |p: &Path| assets.iter().any(|a| p.starts_with(a));
    if t.is_absolute() {
        let abs = clean_abs(t)?;
        within(&abs).then(|| relative(parent, &abs).into_os_string().into_encoded_bytes())
    } else {
        let abs = clean_abs(&parent.join(t))?;
        (within(&abs) && within(link)).then(|| target.to_vec())
    }
}

#[derive(Clone, Debug, Default)]
pub struct ExportResult {
    pub archive_root: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Symlinks left out because OpenClaw refuses links that leave the archive's assets.
    pub skipped: Vec<BackupIssue>,
}

/// Whether an archive of `snap` carries secrets: the OpenClaw state dir holds openclaw.json (gateway
/// and provider tokens), `.env` and `credentials/`.
pub fn holds_secrets(snap: &Snapshot) -> bool {
    snap.paths
        .iter()
        .any(|p| matches!(asset_kind(Path::new(p), snap.openclaw.as_ref()), "state" | "config" | "credentials"))
}

/// Writes snapshot `snap` as an `openclaw backup` archive (tar.gz) to `out`.
pub fn export<W: Write>(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    out: W,
    progress: &Progress,
) -> Result<(ExportResult, W)> {
    let werr = |e: std::io::Error| Error::io("write", "the archive", e);
    let time = snap.time();
    let root = archive_root_name(time);
    let meta = snap.openclaw.as_ref();
    let assets: Vec<PathBuf> = snap.paths.iter().map(PathBuf::from).collect();
    let archive_path = |p: &Path| -> String {
        let rest = p.to_string_lossy();
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            format!("{root}/payload/posix")
        } else {
            format!("{root}/payload/posix/{rest}")
        }
    };
    let state_dir = meta
        .map(|m| m.state_dir.clone())
        .or_else(|| assets.iter().find(|p| asset_kind(p, None) == "state").map(|p| p.to_string_lossy().into_owned()))
        .or_else(|| snap.paths.first().cloned())
        .unwrap_or_default();
    let manifest = ManifestOut {
        schema_version: 1,
        created_at: js_iso(time),
        archive_root: root.clone(),
        runtime_version: meta.and_then(|m| m.openclaw_version.clone()).unwrap_or_else(|| "unknown".into()),
        platform: node_platform(),
        node_version: "unknown",
        options: OptionsOut {
            include_workspace: assets.iter().any(|p| asset_kind(p, meta) == "workspace"),
            only_config: false,
        },
        paths: PathsOut {
            config_path: meta
                .and_then(|m| m.config_path.clone())
                .unwrap_or_else(|| Path::new(&state_dir).join("openclaw.json").to_string_lossy().into_owned()),
            oauth_dir: Path::new(&state_dir).join("credentials").to_string_lossy().into_owned(),
            workspace_dirs: meta.map(|m| m.workspaces.clone()).unwrap_or_default(),
            agent_roots: meta.map(agent_roots).unwrap_or_default(),
            state_dir,
        },
        assets: assets
            .iter()
            .map(|p| AssetOut {
                kind: asset_kind(p, meta),
                source_path: p.to_string_lossy().into_owned(),
                archive_path: archive_path(p),
            })
            .collect(),
        skipped: Vec::new(),
        clawback: ClawbackExt {
            snapshot_id: Some(id.to_hex()),
            snapshot_time: snap.time.clone(),
            hostname: Some(snap.hostname.clone()),
            username: Some(snap.username.clone()),
            tags: snap.tags.clone(),
            paths: snap.paths.clone(),
            openclaw: snap.openclaw.clone(),
        },
    };
    let mut mbytes = serde_json::to_vec_pretty(&manifest).expect("manifest JSON");
    mbytes.push(b'\n');

    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(time.timestamp().max(0) as u64);
    h.set_size(mbytes.len() as u64);
    b.append_data(&mut h, format!("{root}/manifest.json"), mbytes.as_slice()).map_err(werr)?;

    let mut res = ExportResult { archive_root: root.clone(), ..ExportResult::default() };
    let t = repo.load_tree(&snap.tree)?;
    let prefix = format!("{root}/payload/posix");
    export_tree(&mut b, repo, &t, Path::new("/"), &prefix, &assets, &mut res, progress, 0)?;
    let gz = b.into_inner().map_err(werr)?;
    let mut out = gz.finish().map_err(werr)?;
    out.flush().map_err(werr)?;
    Ok((res, out))
}

#[allow(clippy::too_many_arguments)]
fn export_tree<W: Write>(
    b: &mut tar::Builder<W>,
    repo: &Repository,
    t: &Tree,
    at: &Path,
    prefix: &str,
    assets: &[PathBuf],
    res: &mut ExportResult,
    progress: &Progress,
    depth: usize,
) -> Result<()> {
    crate::format::tree::check_depth(depth)?;
    for n in &t.nodes {
        let p = at.join(OsStr::from_bytes(&n.name));
        let mut name = prefix.as_bytes().to_vec();
        name.extend_from_slice(p.as_os_str().as_bytes());
        let mut link = None;
        if n.kind == NodeKind::Symlink {
            match portable_target(&p, &n.target, assets) {
                Some(t) => link = Some(t),
                None => {
                    res.skipped.push(BackupIssue {
                        path: p.to_string_lossy().into_owned(),
                        error: format!(
                            "symlink to {} leaves the archived paths; OpenClaw refuses such links",
                            String::from_utf8_lossy(&n.target)
                        ),
                    });
                    continue;
                }
            }
        }
        dump::append_node(b, repo, &name, n, TarMeta::Full, link.as_deref())?;
        match n.kind {
            NodeKind::File => {
                res.files += 1;
                res.bytes += n.size;
                progress.add_done(1, n.size);
            }
            NodeKind::Dir => res.dirs += 1,
            NodeKind::Symlink => res.symlinks += 1,
        }
        if let Some(id) = &n.subtree {
            let sub = repo.load_tree(id)?;
            export_tree(b, repo, &sub, &p, prefix, assets, res, progress, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_map_back_to_absolute_paths() {
        let r = "2026-03-09T08-00-00.000Z-openclaw-backup";
        assert_eq!(
            archive_path_to_abs(&format!("{r}/payload/posix/home/u/.openclaw"), r),
            Some(PathBuf::from("/home/u/.openclaw"))
        );
        assert_eq!(archive_path_to_abs(&format!("{r}/payload/posix"), r), Some(PathBuf::from("/")));
        assert_eq!(archive_path_to_abs(&format!("{r}/payload/windows/C/Users"), r), None);
        assert_eq!(archive_path_to_abs("other/payload/posix/x", r), None);
        assert_eq!(archive_path_to_abs(&format!("{r}/payload/posix/../../etc"), r), None);
    }

    #[test]
    fn hostile_entry_paths_are_refused() {
        assert!(split_path(b"/etc/passwd").is_err());
        assert!(split_path(b"root/../../etc").is_err());
        assert!(split_path(b"root/a\0b").is_err());
        assert!(split_path(b"").is_err());
        assert!(split_path(b"./").is_err());
        assert!(split_path(&[b'x'; 300]).is_err());
        assert_eq!(split_path(b"./root//payload/./posix/").unwrap(), vec![&b"root"[..], b"payload", b"posix"]);
        let root = b"root".as_slice();
        assert!(place(&[b"other", b"payload"], root).is_err(), "a second root");
        assert!(matches!(place(&[b"root", b"manifest.json"], root), Ok(Place::Manifest)));
        assert!(matches!(place(&[b"root", b"payload", b"posix", b"a"], root), Ok(Place::Tree(_))));
        assert!(matches!(place(&[b"root", b"payload", b"windows", b"C"], root), Ok(Place::Skip(_))));
        assert!(matches!(place(&[b"root", b"notes.txt"], root), Ok(Place::Skip(_))));
    }

    #[test]
    fn pax_records_parse_with_any_bytes() {
        let data =
            crate::commands::dump::pax_records([("path", &b"a\nb"[..]), ("mtime", b"1.5"), ("CLAWBACK.ino", b"42")]);
        let m = parse_pax(&data).unwrap();
        assert_eq!(m["path"], b"a\nb");
        assert_eq!(m["mtime"], b"1.5");
        assert_eq!(m["CLAWBACK.ino"], b"42");
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"5 p=x").is_err());
    }

    #[test]
    fn manifest_fields() {
        let m = parse_manifest(
            br#"{"schemaVersion":1,"createdAt":"2026-03-09T08:00:00.123Z","archiveRoot":"r",
                "runtimeVersion":"2026.3.1","paths":{"stateDir":"/h/.openclaw","workspaceDirs":["/h/ws"]},
                "assets":[{"kind":"state","sourcePath":"/h/.openclaw","archivePath":"r/payload/posix/h/.openclaw"}]}"#,
        )
        .unwrap();
        assert_eq!(m.created_at.timestamp_millis(), 1_773_043_200_123);
        assert_eq!(m.state_dir.as_deref(), Some("/h/.openclaw"));
        assert_eq!(m.assets.len(), 1);
        assert_eq!(m.runtime_version.as_deref(), Some("2026.3.1"));
        assert!(parse_manifest(br#"{"schemaVersion":2,"createdAt":"2026-03-09T08:00:00Z","assets":[]}"#).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1,"assets":[]}"#).is_err());
        assert!(parse_manifest(b"[]").is_err());
    }

    #[test]
    fn symlinks_for_openclaw() {
        let assets = vec![PathBuf::from("/h/.openclaw"), PathBuf::from("/h/ws")];
        let l = Path::new("/h/.openclaw/skills/x");
        assert_eq!(portable_target(l, b"../cfg", &assets), Some(b"../cfg".to_vec()));
        assert_eq!(portable_target(l, b"/h/ws/skill", &assets), Some(b"../../ws/skill".to_vec()));
        assert_eq!(portable_target(l, b"/etc/passwd", &assets), None);
        assert_eq!(portable_target(l, b"../../../etc", &assets), None);
        assert_eq!(portable_target(l, b"../../../../../..", &assets), None);
        assert_eq!(portable_target(Path::new("/h/.openclaw/a"), b"/h/.openclaw", &assets), Some(b".".to_vec()));
    }

    /// An archive tree holding `paths` as folders.
    fn tree_with(paths: &[&str]) -> DirB {
        let mut top = DirB::default();
        for p in paths {
            let comps = comps_of(Path::new(p));
            for i in 1..=comps.len() {
                let name = comps[i - 1].to_vec();
                let _ = top.insert(&comps[..i], made_up_node(name, NodeKind::Dir, 0o755, 0, 0, 0), p);
            }
        }
        top
    }

    #[test]
    fn import_reads_the_agents_the_archived_config_declares() {
        let m = parse_manifest(
            br#"{"schemaVersion":1,"createdAt":"2026-03-09T08:00:00Z","archiveRoot":"r","runtimeVersion":"2026.9.6",
                "paths":{"stateDir":"/h/.openclaw","configPath":"/h/.openclaw/openclaw.json",
                         "workspaceDirs":["/h/.openclaw/workspace","/h/work/worker","/h/ws/helper"],
                         "agentRoots":[{"agentId":"worker","sourcePath":"/data/worker-agent"}]},
                "assets":[{"kind":"state","sourcePath":"/h/.openclaw","archivePath":"r/payload/posix/h/.openclaw"}]}"#,
        )
        .unwrap();
        assert_eq!(m.agent_roots, [("worker".to_string(), "/data/worker-agent".to_string())]);
        let config = br#"{
            // JSON5, as OpenClaw reads it
            agents: {
                defaults: { workspace: "~/ws" },
                entries: { molty: { default: true }, worker: { workspace: "~/work/worker" }, helper: {} },
            },
            meta: { lastTouchedVersion: "2026.9.1" },
        }"#;
        let top = tree_with(&["/h/.openclaw/agents/molty", "/h/work/worker"]);
        let mut warnings = Vec::new();
        let cfg = Path::new("/h/.openclaw/openclaw.json");
        let meta = openclaw_meta(&m, Some((cfg, config.as_slice())), &top, &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(&str, bool, &str, &str)> = meta
            .agents
            .iter()
            .map(|a| (a.id.as_str(), a.default, a.workspace.as_str(), a.agent_dir.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                // The default agent: agents.defaults.workspace; `~` is the archived machine's home.
                ("helper", false, "/h/ws/helper", "/h/.openclaw/agents/helper/agent"),
                ("molty", true, "/h/ws", "/h/.openclaw/agents/molty/agent"),
                // Its own workspace, and its dir as the manifest's agentRoots has it.
                ("worker", false, "/h/work/worker", "/data/worker-agent"),
            ]
        );
        assert_eq!(meta.config_path.as_deref(), Some("/h/.openclaw/openclaw.json"));
        assert_eq!(meta.openclaw_version.as_deref(), Some("2026.9.6"), "the manifest's runtime version");
        assert_eq!(meta.workspaces[0], "/h/ws", "the default agent's first");
        for w in ["/h/ws/helper", "/h/work/worker", "/h/.openclaw/workspace"] {
            assert!(meta.workspaces.iter().any(|x| x == w), "{w} in {:?}", meta.workspaces);
        }

        // A config that does not parse: a warning, and the agents the manifest names.
        let meta = openclaw_meta(&m, Some((cfg, b"{ agents: ".as_slice())), &top, &mut warnings).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].error.contains("cannot read the archived config"), "{warnings:?}");
        let ids: Vec<&str> = meta.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["worker"]);
        assert_eq!(meta.agents[0].agent_dir, "/data/worker-agent");
        assert_eq!(meta.config_path, None);
    }

    #[test]
    fn agent_roots_are_those_openclaw_accepts() {
        let a = |id: &str, dir: &str| crate::format::snapshot::AgentMeta {
            id: id.into(),
            default: false,
            workspace: "/w".into(),
            agent_dir: dir.into(),
        };
        let meta = OpenclawMeta {
            state_dir: "/h/.openclaw".into(),
            agents: vec![
                a("molty", "/h/.openclaw/agents/molty/agent"),
                a("Upper", "/h/.openclaw/agents/upper/agent"),
                a("rel", "agents/rel/agent"),
                a("dots", "/h/.openclaw/agents/../x"),
                a("slash", "/h/.openclaw/agents/slash/"),
                a("again", "/h/.openclaw/agents/molty/agent"),
            ],
            ..Default::default()
        };
        let roots: Vec<(String, String)> =
            agent_roots(&meta).into_iter().map(|r| (r.agent_id, r.source_path)).collect();
        assert_eq!(roots, [("molty".to_string(), "/h/.openclaw/agents/molty/agent".to_string())]);
    }

    #[test]
    fn names_follow_openclaw() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-09T08:00:00.5Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(archive_root_name(t), "2026-03-09T08-00-00.500+00-00-openclaw-backup");
        assert_eq!(js_iso(t), "2026-03-09T08:00:00.500Z");
        let meta =
            OpenclawMeta { state_dir: "/h/.openclaw".into(), workspaces: vec!["/h/ws".into()], ..Default::default() };
        assert_eq!(asset_kind(Path::new("/h/.openclaw"), Some(&meta)), "state");
        assert_eq!(asset_kind(Path::new("/h/ws"), Some(&meta)), "workspace");
        assert_eq!(asset_kind(Path::new("/etc/x/credentials"), None), "credentials");
    }
}
