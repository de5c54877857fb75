//! Restoring parts of OpenClaw's state kept as rows inside shared databases (and entries of a
//! file-era `sessions.json`), see [`crate::openclaw::rows`]: in place, merged into what is on disk
//! (one transaction per database); into a folder, written as the file-era files OpenClaw imports.

use super::*;
use crate::openclaw::rows::{self, MergeReport, RowAction, RowKind, RowSet};
use crate::openclaw::sqlite::TempDir;
use serde_json::Value as Json;

/// The snapshot's copies of the files the row sets read, in a private temporary folder (removed
/// when dropped), and the row sets they serve.
pub(super) struct Images {
    _tmp: TempDir,
    paths: HashMap<PathBuf, PathBuf>,
    /// The row sets whose database has the kind's table: a file of that name without it is not
    /// where this OpenClaw keeps those units, and is left out.
    pub sets: Vec<RowSet>,
}

impl Images {
    pub(super) fn load(repo: &Repository, snap: &Snapshot, sets: &[RowSet]) -> Result<Images> {
        let tmp = TempDir::new();
        let mut paths: HashMap<PathBuf, PathBuf> = HashMap::new();
        let mut usable = Vec::new();
        for s in sets {
            if let Some(image) = paths.get(&s.db) {
                if s.kind == RowKind::SessionEntry || rows::has_table(image, s.kind.table())? {
                    usable.push(s.clone());
                }
                continue;
            }
            let node = match crate::commands::dump::find(repo, snap, &s.db)? {
                crate::commands::dump::Found::Node(n) if n.kind == NodeKind::File => n,
                _ => return Err(snap.path_not_held(&s.db)),
            };
            let image = tmp.file().map_err(Error::Other)?;
            let mut f =
                OpenOptions::new().write(true).create_new(true).mode(0o600).open(&image).ctx("write", &image)?;
            crate::commands::dump::dump_file(repo, &node, &s.db, &mut f)?;
            drop(f);
            if s.kind == RowKind::SessionEntry || rows::has_table(&image, s.kind.table())? {
                usable.push(s.clone());
            }
            paths.insert(s.db.clone(), image);
        }
        Ok(Images { _tmp: tmp, paths, sets: usable })
    }

    fn get(&self, db: &Path) -> &Path {
        self.paths.get(db).map(PathBuf::as_path).expect("every row set's file is loaded")
    }
}

/// The row sets of one database (or `sessions.json`) and what restoring them does.
pub(super) struct DbPlan {
    pub db: PathBuf,
    pub sets: Vec<RowSet>,
    pub report: MergeReport,
}

impl DbPlan {
    /// The changes, as an in-place restore lists them.
    pub(super) fn changes(&self) -> Vec<Change> {
        self.report
            .changes
            .iter()
            .map(|c| Change {
                path: self.db.to_string_lossy().into_owned(),
                action: match c.action {
                    RowAction::Create => Action::Create,
                    RowAction::Update => Action::Update,
                    RowAction::Delete => Action::Delete,
                },
                kind: "row",
                row: Some(format!("{} {}", c.kind.noun(), c.label)),
            })
            .collect()
    }
}

fn group(sets: &[RowSet]) -> Vec<(PathBuf, Vec<RowSet>)> {
    let mut out: Vec<(PathBuf, Vec<RowSet>)> = Vec::new();
    for s in sets {
        match out.iter_mut().find(|(db, _)| db == &s.db) {
            Some((_, v)) => v.push(s.clone()),
            None => out.push((s.db.clone(), vec![s.clone()])),
        }
    }
    out
}

fn read_json(p: &Path) -> Result<Option<Json>> {
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            Error::Usage(format!("{} is not valid JSON ({e}); fix or move it, then restore again", p.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", p, e)),
    }
}

fn entry_keys(sets: &[RowSet]) -> Vec<String> {
    let mut keys: Vec<String> = sets.iter().flat_map(|s| s.keys.iter().cloned()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What restoring the row sets in place does (nothing is written). A database that is not on
/// disk is an error: its rows have nowhere to go but a whole file.
pub(super) fn plan_in_place(images: &Images, delete: bool) -> Result<Vec<DbPlan>> {
    let mut out = Vec::new();
    for (db, sets) in group(&images.sets) {
        let report = if sets[0].kind == RowKind::SessionEntry {
            let snap = read_json(images.get(&db))?.unwrap_or(Json::Null);
            rows::merge_entries(read_json(&db)?.as_ref(), &snap, &entry_keys(&sets)).1
        } else {
            if std::fs::symlink_metadata(&db).is_err() {
                return Err(Error::Usage(format!(
                    "{} does not exist, so there is no database to restore rows into: start OpenClaw once so it \
                     creates it, or restore the whole file with --only {}",
                    db.display(),
                    db.display()
                )));
            }
            let refs: Vec<&RowSet> = sets.iter().collect();
            rows::merge(&db, images.get(&db), &refs, delete, false)?
        };
        out.push(DbPlan { db, sets, report });
    }
    Ok(out)
}

/// Restores the planned row sets in place. Returns what was done, per database.
pub(super) fn apply_in_place(images: &Images, plans: &[DbPlan], delete: bool) -> Result<Vec<MergeReport>> {
    let mut out = Vec::new();
    for p in plans.iter().filter(|p| !p.report.changes.is_empty()) {
        if p.sets[0].kind == RowKind::SessionEntry {
            let snap = read_json(images.get(&p.db))?.unwrap_or(Json::Null);
            let (merged, report) = rows::merge_entries(read_json(&p.db)?.as_ref(), &snap, &entry_keys(&p.sets));
            replace_file(&p.db, &json_bytes(&merged))?;
            out.push(report);
        } else {
            let refs: Vec<&RowSet> = p.sets.iter().collect();
            out.push(rows::merge(&p.db, images.get(&p.db), &refs, delete, true)?);
        }
    }
    Ok(out)
}

fn json_bytes(v: &Json) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("serialize JSON");
    b.push(b'\n');
    b
}

/// Replaces `dst` atomically (temporary file, synced, renamed), keeping its mode (0600 if new).
fn replace_file(dst: &Path, bytes: &[u8]) -> Result<()> {
    let mode = std::fs::metadata(dst).map(|m| m.mode() & 0o7777).unwrap_or(0o600);
    let tmp = temp_name(dst);
    let written = (|| -> std::io::Result<()> {
        let mut f =
            OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dst)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", dst, e));
    }
    Ok(())
}

/// Writes the row sets under `target` as the file-era files that hold them (see
/// [`rows::export`]); `sessions.json` files merge with one already there. Returns (files, bytes),
/// counted but not written on a dry run.
pub(super) fn export_to_target(images: &Images, target: &Path, dry_run: bool) -> Result<(u64, u64)> {
    let mut docs: Vec<rows::Document> = Vec::new();
    for s in &images.sets {
        if s.kind == RowKind::SessionEntry {
            let snap = read_json(images.get(&s.db))?.unwrap_or(Json::Null);
            let (picked, _) = rows::merge_entries(None, &snap, &s.keys);
            docs.push(rows::Document { path: s.db.clone(), bytes: json_bytes(&picked) });
        } else {
            docs.extend(rows::export(images.get(&s.db), s)?);
        }
    }
    // Documents for the same file (two row sets' sessions.json) merge, in order.
    let mut merged: Vec<rows::Document> = Vec::new();
    for d in docs {
        match merged.iter_mut().find(|m| m.path == d.path) {
            Some(m) => m.bytes = merge_index(&m.bytes, &d.bytes),
            None => merged.push(d),
        }
    }
    let (mut files, mut bytes) = (0u64, 0u64);
    if !dry_run && !merged.is_empty() {
        std::fs::create_dir_all(target).ctx("create target folder", target)?;
    }
    for d in &merged {
        let rel = d.path.strip_prefix("/").unwrap_or(&d.path);
        let dst = target.join(rel);
        let mut content = d.bytes.clone();
        if d.path.file_name().is_some_and(|n| n == "sessions.json") {
            if let Ok(old) = std::fs::read(&dst) {
                content = merge_index(&old, &content);
            }
        }
        files += 1;
        bytes += content.len() as u64;
        if dry_run {
            continue;
        }
        let mut at = PathBuf::new();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            at.push(c);
            safe_mkdir(target, &at)?;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&dst)
            .ctx("write", &dst)?;
        std::io::Write::write_all(&mut f, &content).ctx("write", &dst)?;
    }
    Ok((files, bytes))
}

/// Two `sessions.json` documents as one (the second's entries win).
fn merge_index(a: &[u8], b: &[u8]) -> Vec<u8> {
    match (serde_json::from_slice::<Json>(a), serde_json::from_slice::<Json>(b)) {
        (Ok(Json::Object(mut x)), Ok(Json::Object(y))) => {
            x.extend(y);
            json_bytes(&Json::Object(x))
        }
        _ => b.to_vec(),
    }
}
