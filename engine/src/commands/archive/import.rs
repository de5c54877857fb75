//! `import`: an `openclaw backup create` archive (gzip or plain tar) streamed into a snapshot.
//! Each file's content goes through the chunker into packs as it is read, nothing is extracted to
//! disk, and only the tree (names and chunk ids) is held in memory. Hostile archives are refused:
//! entries outside the one root, `..`, absolute paths, names that are not single safe components,
//! oversized names, headers, manifests or entry counts; symlinks are kept as symlinks and never
//! followed.

use super::bad;
use super::layout::{archived_config, config_candidate, openclaw_meta, MAX_CONFIG, MAX_CONFIG_CANDIDATES};
use super::manifest::{parse_manifest, Manifest, MAX_MANIFEST};
use super::tar::{decompress, num, parse_pax, read_bounded, split_path, MAX_EXT_HEADER, MAX_PATH};
use super::tree::{abs_path, build_tree, comps_of, DirB};
use crate::commands::backup::database::page_chunk_size;
use crate::commands::backup::file::{ReadErr, BATCH};
use crate::commands::backup::node::made_up_node;
use crate::commands::dump::{self, PAX_CTIME, PAX_DEV, PAX_INO, PAX_NLINK, PAX_TARGET};
use crate::error::Result;
use crate::format::blob::BlobType;
use crate::format::chunker::Chunker;
use crate::format::dict::Family;
use crate::format::id::{BlobId, DataId, SnapshotId, TreeId};
use crate::format::snapshot::{BackupIssue, Snapshot, Summary};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::openclaw::sqlite;
use crate::progress::Progress;
use crate::repo::writer::{Writer, WriterOptions};
use crate::repo::Repository;
use rayon::prelude::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Most entries an archive may hold (the tree is held in memory until the end).
pub(super) const MAX_ENTRIES: u64 = 4_000_000;
/// Deepest nesting accepted.
pub(super) const MAX_DEPTH: usize = 1024;
/// Skipped entries listed one by one; past this they are only counted.
pub(super) const MAX_LISTED_SKIPS: usize = 200;

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

/// Writes an archive's files and trees into the repository (the encryption of a batch's chunks
/// runs in parallel).
pub(super) struct Sink<'a> {
    level: i32,
    writer: Writer<'a>,
}

impl<'a> Sink<'a> {
    pub(super) fn new(repo: &'a Repository) -> Self {
        Sink { level: repo.config().compression, writer: Writer::new(repo, WriterOptions::default()) }
    }

    pub(super) fn store_tree(&self, t: &Tree) -> Result<TreeId> {
        self.writer.store_tree(t)
    }

    /// Reads `r` to its end, storing the chunks that are new. Returns the chunk ids and the length.
    /// A SQLite database (known by its header) is cut into page-aligned chunks of fixed size, as
    /// backup cuts its database images, so an imported database and a later backup of the same
    /// one share their chunks; anything else goes through the content-defined chunker.
    pub(super) fn store_content<R: Read>(
        &self,
        chunker: &Chunker,
        mut r: R,
        buf: &mut Vec<u8>,
        progress: &Progress,
        family: Family,
    ) -> Result<(Vec<DataId>, u64), ReadErr> {
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
        let fixed = sqlite::parse_header(&head[..got]).map(|h| page_chunk_size(chunker.params(), h.page_size));
        let family = if fixed.is_some() { Family::Other } else { family };
        let r = std::io::Cursor::new(&head[..got]).chain(r);
        let w = &self.writer;
        let keys = self.writer.repo().keys();
        let level = self.level;
        let mut ids = Vec::new();
        let each = |data: &[u8], cuts: &[std::ops::Range<usize>]| -> Result<(), ReadErr> {
            let hashed: Vec<DataId> = cuts.par_iter().map(|c| keys.data_id(&data[c.clone()])).collect();
            let mut new = Vec::new();
            for (id, c) in hashed.iter().zip(cuts) {
                if w.claim(BlobType::Data, &id.blob()) {
                    new.push((id.blob(), c.clone()));
                }
            }
            let encoded: Vec<(BlobId, Vec<u8>, usize)> = new
                .par_iter()
                .map(|(id, c)| (*id, w.encode(BlobType::Data, id, &data[c.clone()], level, family), c.len()))
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

    pub(super) fn finish(self) -> Result<u64> {
        self.writer.finish()
    }
}

/// Where an archive entry goes.
pub(super) enum Place<'p> {
    /// The archive root, `payload/`, `payload/posix/`: nothing to store.
    Ignore,
    Manifest,
    /// Components of the original absolute path.
    Tree(Vec<&'p [u8]>),
    /// Left out, with the reason.
    Skip(&'static str),
}

pub(super) fn place<'p>(comps: &[&'p [u8]], root: &[u8]) -> Result<Place<'p>> {
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
pub(super) fn archive_path_to_abs(ap: &str, root: &str) -> Option<PathBuf> {
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
                let family = Family::of_name(abs.file_name().map(|n| n.as_bytes()).unwrap_or_default());
                let stored = if size <= MAX_CONFIG
                    && configs.len() < MAX_CONFIG_CANDIDATES
                    && config_candidate(&abs, manifest.as_ref())
                {
                    let data = read_bounded(&mut e, size, MAX_CONFIG, &format!("{shown:?}"))?;
                    let r = sink.store_content(&chunker, data.as_slice(), &mut buf, progress, family);
                    configs.push((abs, data));
                    r
                } else {
                    sink.store_content(&chunker, &mut e, &mut buf, progress, family)
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
    let tree = build_tree(&sink.writer, children, &default_dir, 0)?;
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
}
