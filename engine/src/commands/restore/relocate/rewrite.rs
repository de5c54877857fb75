//! The relocated restore: the snapshot's roots written at their new places with the in-place
//! rules, then every absolute path into the old places moved in what was restored (OpenClaw's
//! config and the files it includes and falls back to, its SQLite databases, symlinks), each
//! change reported.

use super::*;

/// The restore of [`restore`](super::restore) with `opts.relocate` set: `sel` selects in the
/// snapshot's paths.
pub(in crate::commands::restore) fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    rel: &Relocation,
    sel: &Selection,
    progress: &Progress,
) -> Result<RestoreResult> {
    if !opts.in_place {
        return Err(Error::Usage(
            "--relocate restores to the new places it maps; it cannot be combined with --target".into(),
        ));
    }
    let root = Path::new("/");
    let items = plan(repo, snap, sel)?;
    // What the rewrite may change: only files this restore writes, in the snapshot's paths.
    let written: HashSet<PathBuf> =
        items.iter().filter(|i| i.selected && i.node.kind == NodeKind::File).map(|i| root.join(&i.rel)).collect();
    let msnap = mapped_snapshot(snap, &rel.map);
    let (items, links) = map_items(items, &rel.map, &msnap)?;

    // The roots this restore writes to (all of them, unless `only` narrows it).
    let selected = |m: &Move| {
        let from = Path::new(&m.from);
        opts.only.is_empty() || opts.only.iter().any(|r| from.starts_with(r) || r.starts_with(from))
    };
    let moves: Vec<Move> = rel.moves.iter().filter(|m| selected(m)).cloned().collect();
    let mut report = Report { moves, warnings: rel.warnings.clone(), ..Default::default() };
    for m in &mut report.moves {
        m.occupied = occupied(Path::new(&m.to));
    }
    // Named once: not a workspace inside a state dir already named.
    let occupied_at: Vec<&Path> = report.moves.iter().filter(|m| m.occupied).map(|m| Path::new(&m.to)).collect();
    let taken: Vec<String> = report
        .moves
        .iter()
        .filter(|m| {
            m.occupied && !occupied_at.iter().any(|o| *o != Path::new(&m.to) && Path::new(&m.to).starts_with(o))
        })
        .map(|m| format!("{} ({})", m.to, m.what))
        .collect();
    if !taken.is_empty() && !rel.replace {
        return Err(Error::Usage(format!(
            "--relocate: {} already {} something; an existing install is not merged into: move it aside \
             (clawback leaves it alone), or pass --force to restore over it after a safety snapshot",
            taken.join(", "),
            if taken.len() == 1 { "holds" } else { "hold" }
        )));
    }
    report.rewrites.extend(links);

    // The folders the new places hang from (the new home, a parent of OPENCLAW_STATE_DIR).
    if !opts.dry_run {
        let listed: HashSet<&Path> = items.iter().map(|i| i.rel.as_path()).collect();
        for it in &items {
            if let Some(parent) = it.rel.parent().filter(|p| !listed.contains(p)) {
                let p = root.join(parent);
                std::fs::create_dir_all(&p).ctx("create folder", &p)?;
            }
        }
    }

    let mopts = RestoreOptions {
        only: opts.only.iter().map(|p| rel.map.map(p).unwrap_or_else(|| p.clone())).collect(),
        includes: opts.includes.iter().map(|p| map_pattern(p, &rel.map)).collect(),
        excludes: opts.excludes.iter().map(|p| map_pattern(p, &rel.map)).collect(),
        relocate: None,
        ..opts.clone()
    };
    let msel = Selection::new(&mopts.includes, &mopts.excludes)?.with_roots(minimal_roots(mopts.only.clone()));
    let mut res = in_place::restore_in_place(repo, &msnap, &mopts, &msel, items, None, progress)?;

    match rewrite_paths(repo, snap, rel, &written, opts.dry_run) {
        Ok(r) => {
            report.rewrites.extend(r.rewrites);
            report.left = r.left;
            report.warnings.extend(r.warnings);
        }
        Err(e) if opts.dry_run => return Err(Error::Other(format!("moving the paths would fail: {e}"))),
        Err(e) => {
            let held = res
                .safety_snapshot
                .map(|id| format!("; what was there before is in safety snapshot {}", id.to_hex()))
                .unwrap_or_default();
            return Err(Error::Other(format!(
                "the files are restored at their new places, but moving the paths in them failed: {e}{held}"
            )));
        }
    }
    res.relocation = Some(report);
    Ok(res)
}

/// The snapshot as if it had been taken at the new places: its paths and OpenClaw layout mapped.
pub(super) fn mapped_snapshot(snap: &Snapshot, map: &PathMap) -> Snapshot {
    let ms = |s: &str| map.map(Path::new(s)).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| s.to_string());
    let mut m = snap.clone();
    m.paths = snap.paths.iter().map(|p| ms(p)).collect();
    if let Some(meta) = &mut m.openclaw {
        meta.state_dir = ms(&meta.state_dir);
        meta.config_path = meta.config_path.as_deref().map(ms);
        meta.workspaces = meta.workspaces.iter().map(|w| ms(w)).collect();
        for a in &mut meta.agents {
            a.workspace = ms(&a.workspace);
            a.agent_dir = ms(&a.agent_dir);
        }
    }
    m
}

/// A gitignore-style pattern on old absolute paths, on the new ones.
pub(super) fn map_pattern(p: &str, map: &PathMap) -> String {
    let (neg, rest) = match p.strip_prefix('!') {
        Some(r) => ("!", r),
        None => ("", p),
    };
    map.map_str(rest).map(|n| format!("{neg}{n}")).unwrap_or_else(|| p.to_string())
}

/// The plan's entries at their new places. Folders above the roots are dropped (their new
/// places have folders of their own) unless something lands below them; a symlink whose target
/// is an absolute old path points to the new one.
pub(super) fn map_items(items: Vec<Item>, map: &PathMap, msnap: &Snapshot) -> Result<(Vec<Item>, Vec<Rewrite>)> {
    let root = Path::new("/");
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    let mut links = Vec::new();
    for mut it in items {
        let abs = root.join(&it.rel);
        let Some(new) = map.map(&abs) else {
            if it.node.kind == NodeKind::Dir {
                continue;
            }
            return Err(Error::Other(format!("{} is not mapped by --relocate", abs.display())));
        };
        if it.node.kind == NodeKind::Symlink {
            if let Some(to) = std::str::from_utf8(&it.node.target).ok().and_then(|t| map.map_str(t)) {
                links.push(Rewrite {
                    file: new.to_string_lossy().into_owned(),
                    kind: "symlink",
                    location: "target".into(),
                    from: String::from_utf8_lossy(&it.node.target).into_owned(),
                    to: to.clone(),
                    rows: None,
                });
                it.node.target = to.into_bytes();
            }
        }
        it.rel = new.strip_prefix(root).map(Path::to_path_buf).unwrap_or(new);
        out.push(it);
    }
    let below_root = |rel: &Path| msnap.paths.iter().any(|p| root.join(rel).starts_with(p));
    let mut needed: HashSet<PathBuf> = HashSet::new();
    let mut keep = vec![false; out.len()];
    for (i, it) in out.iter().enumerate().rev() {
        if it.node.kind != NodeKind::Dir || below_root(&it.rel) || needed.contains(&it.rel) {
            keep[i] = true;
            if let Some(p) = it.rel.parent() {
                needed.insert(p.to_path_buf());
            }
        }
    }
    let mut k = keep.into_iter();
    out.retain(|_| k.next().unwrap_or(false));
    Ok((out, links))
}

/// Where the files to rewrite are: at their new places, or (dry run) copied out of the snapshot
/// into a private folder, on demand.
pub(super) struct Files<'a> {
    map: &'a PathMap,
    written: &'a HashSet<PathBuf>,
    stage: Option<Stage<'a>>,
}

impl Files<'_> {
    /// The file on disk that holds the snapshot's `old`, when this restore writes it.
    fn locate(&mut self, old: &Path) -> Result<Option<PathBuf>> {
        if !self.written.contains(old) {
            return Ok(None);
        }
        match &mut self.stage {
            Some(s) => s.fetch(old).map(Some),
            None => Ok(self.map.map(old)),
        }
    }
}

/// A private folder (0700) holding files restored from the snapshot for a dry run; removed when
/// dropped.
pub(super) struct Stage<'a> {
    repo: &'a Repository,
    snap: &'a Snapshot,
    dir: PathBuf,
    done: HashSet<PathBuf>,
}

impl<'a> Stage<'a> {
    fn new(repo: &'a Repository, snap: &'a Snapshot) -> Result<Stage<'a>> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "clawback-relocate-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).ctx("create temporary folder", &dir)?;
        Ok(Stage { repo, snap, dir, done: HashSet::new() })
    }

    fn fetch(&mut self, old: &Path) -> Result<PathBuf> {
        if self.done.insert(old.to_path_buf()) {
            let sel = Selection::new(&[], &[])?.with_roots(vec![old.to_path_buf()]);
            let o = RestoreOptions { target: self.dir.clone(), ..Default::default() };
            restore_to_target(self.repo, self.snap, &o, &sel, &Progress::default(), BATCH)?;
        }
        Ok(self.dir.join(old.strip_prefix("/").unwrap_or(old)))
    }
}

impl Drop for Stage<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Default)]
pub(super) struct Rewritten {
    rewrites: Vec<Rewrite>,
    left: Vec<Left>,
    warnings: Vec<String>,
}

/// OpenClaw's lock files next to its databases: SQLite files, but no data.
pub(super) fn is_lock_file(name: &str) -> bool {
    [".generation-lock.sqlite", ".generation-writer.sqlite", ".reindex-lock.sqlite", ".lock.sqlite"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Moves the paths in the config files and databases this restore wrote (see the module docs).
pub(super) fn rewrite_paths(
    repo: &Repository,
    snap: &Snapshot,
    rel: &Relocation,
    written: &HashSet<PathBuf>,
    dry_run: bool,
) -> Result<Rewritten> {
    let mut out = Rewritten::default();
    let Some(m) = &snap.openclaw else { return Ok(out) };
    let map = &rel.map;
    let shown = |old: &Path| map.map(old).unwrap_or_else(|| old.to_path_buf());
    let mut files = Files { map, written, stage: if dry_run { Some(Stage::new(repo, snap)?) } else { None } };

    // The config and what it includes, then the copies OpenClaw falls back to.
    let old_state = PathBuf::from(&m.state_dir);
    let old_config = m.config_path.clone().map(PathBuf::from).unwrap_or_else(|| old_state.join("openclaw.json"));
    let name = old_config.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut copies: Vec<&PathBuf> = written
        .iter()
        .filter(|p| p.parent() == old_config.parent())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.strip_prefix(&name).is_some_and(|r| r.starts_with(".bak") || r == ".last-good")
        })
        .collect();
    copies.sort();
    // A stack: the config first, then what it includes, then the copies.
    let mut queue: Vec<(PathBuf, bool)> = copies.into_iter().rev().map(|p| (p.clone(), false)).collect();
    queue.push((old_config.clone(), true));
    let mut seen: HashSet<PathBuf> = HashSet::new();
    while let Some((old, follow)) = queue.pop() {
        if !seen.insert(old.clone()) {
            continue;
        }
        let Some(disk) = files.locate(&old)? else { continue };
        let new = shown(&old);
        let text = std::fs::read_to_string(&disk).ctx("read", &new)?;
        let old_dir = old.parent().unwrap_or(Path::new("/"));
        let new_dir = new.parent().unwrap_or(Path::new("/"));
        let r = match repath::rewrite_config(&new, &text, map, &rel.homes, old_dir, new_dir) {
            Ok(r) => r,
            // A damaged fallback copy is not worth stopping for; the config itself is.
            Err(e) if !follow => {
                out.warnings.push(format!("{e}; its paths were not moved"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if follow {
            // Included files are rewritten next.
            queue.extend(r.includes.iter().rev().map(|p| (p.clone(), true)));
            for inc in &r.includes {
                let moved = shown(inc);
                if !moved.starts_with(new_dir) && !env_allows_include(&moved) {
                    out.warnings.push(format!(
                        "{} includes {}, outside its folder: OpenClaw reads it only when OPENCLAW_INCLUDE_ROOTS lists {}",
                        new.display(),
                        moved.display(),
                        moved.parent().unwrap_or(Path::new("/")).display()
                    ));
                }
            }
        }
        out.warnings.extend(r.warnings);
        if r.text != text && !dry_run {
            write_atomic(&disk, r.text.as_bytes())?;
        }
        let file = new.to_string_lossy().into_owned();
        out.rewrites.extend(r.edits.into_iter().map(|e| Rewrite {
            file: file.clone(),
            kind: "config",
            location: e.key,
            from: e.from,
            to: e.to,
            rows: None,
        }));
    }

    // OpenClaw's databases in the state dir: the paths, then the keys derived from them.
    let mut dbs: Vec<&PathBuf> = written
        .iter()
        .filter(|p| p.starts_with(&old_state))
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.ends_with(".sqlite") && !is_lock_file(&n)
        })
        .collect();
    dbs.sort();
    let mut moved: Vec<(String, String)> = rel.moves.iter().map(|m| (m.from.clone(), m.to.clone())).collect();
    for a in &m.agents {
        for p in [&a.workspace, &a.agent_dir] {
            if let Some(n) = map.map_str(p) {
                moved.push((p.clone(), n));
            }
        }
    }
    let mut on_disk: Vec<(PathBuf, String)> = Vec::new();
    for old in dbs {
        let Some(disk) = files.locate(old)? else { continue };
        if !crate::openclaw::sqlite::is_database(&disk) {
            continue;
        }
        let file = shown(old).to_string_lossy().into_owned();
        let r = repath::rewrite_database_paths(&disk, map)?;
        out.rewrites.extend(r.edits.into_iter().map(|e| Rewrite {
            file: file.clone(),
            kind: "database",
            location: e.location,
            from: e.from,
            to: e.to,
            rows: Some(e.rows),
        }));
        out.left.extend(r.left.into_iter().map(|l| Left { file: file.clone(), location: l.location, rows: l.rows }));
        moved.extend(r.moved);
        on_disk.push((disk, file));
    }
    moved.sort();
    moved.dedup();
    for (disk, file) in on_disk {
        for e in repath::rewrite_database_hashes(&disk, &moved)? {
            out.rewrites.push(Rewrite {
                file: file.clone(),
                kind: "database",
                location: e.location,
                from: e.from,
                to: e.to,
                rows: Some(e.rows),
            });
        }
    }
    Ok(out)
}

/// Whether `OPENCLAW_INCLUDE_ROOTS` in this process's environment lets OpenClaw read `p`.
pub(super) fn env_allows_include(p: &Path) -> bool {
    let env = Env::from_process();
    env.get("OPENCLAW_INCLUDE_ROOTS")
        .map(|s| s.split(':').filter(|r| !r.trim().is_empty()).any(|r| p.starts_with(env.resolve_user_path(r))))
        .unwrap_or(false)
}

/// Replaces `path`'s content: a temporary file next to it with the same mode (and owner, as
/// root), synced, renamed over it.
pub(super) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let md = std::fs::metadata(path).ctx("inspect", path)?;
    let tmp = temp_name(path);
    let res = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(md.mode() & 0o7777)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(data).ctx("write", &tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777)).ctx("chmod", &tmp)?;
        if is_root() {
            std::os::unix::fs::fchown(&f, Some(md.uid()), Some(md.gid())).ctx("chown", &tmp)?;
        }
        f.sync_all().ctx("sync", &tmp)?;
        std::fs::rename(&tmp, path).ctx("rename into place", path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
