//! Restore in place: compare with the disk, take a safety snapshot, then replace atomically.

use super::*;

fn mtime_ns(md: &std::fs::Metadata) -> i64 {
    md.mtime().saturating_mul(1_000_000_000).saturating_add(md.mtime_nsec())
}

/// Whether a file on disk is the snapshot's by its metadata: size, mtime, mode (and owner as root).
fn same_file(md: &std::fs::Metadata, n: &Node) -> bool {
    md.is_file()
        && md.len() == n.size
        && mtime_ns(md) == n.mtime_ns
        && md.mode() & 0o7777 == n.mode
        && (!is_root() || (md.uid() == n.uid && md.gid() == n.gid))
}

/// What the default backup of the snapshot's roots leaves out, so `delete` never removes it:
/// OpenClaw's default excludes (from the snapshot's metadata), the `protect` patterns,
/// `.gitignore` files in workspaces and `.clawbackignore` files anywhere.
struct Protector {
    patterns: Vec<String>,
    /// Never touched: the repository and the cache (a backup skips them too).
    skip: Vec<PathBuf>,
    fixed: Gitignore,
    workspaces: Vec<PathBuf>,
    cache: Mutex<HashMap<PathBuf, Option<std::sync::Arc<Gitignore>>>>,
}

impl Protector {
    fn new(meta: Option<&OpenclawMeta>, protect: &[String], skip: &[PathBuf]) -> Result<Protector> {
        let mut patterns = Vec::new();
        let mut workspaces = Vec::new();
        if let Some(m) = meta {
            workspaces = m.workspaces.iter().chain(m.agents.iter().map(|a| &a.workspace)).map(PathBuf::from).collect();
            let layout = crate::openclaw::Layout {
                state_dir: PathBuf::from(&m.state_dir),
                config_path: PathBuf::from(m.config_path.clone().unwrap_or_default()),
                config_exists: m.config_path.is_some(),
                config_files: Vec::new(),
                workspaces: workspaces
                    .iter()
                    .map(|w| crate::openclaw::Workspace {
                        agent_id: None,
                        path: w.clone(),
                        inside_state: w.starts_with(&m.state_dir),
                    })
                    .collect(),
                agent_ids: Vec::new(),
                agents: Vec::new(),
                openclaw_version: None,
                warnings: Vec::new(),
            };
            patterns.extend(crate::openclaw::excludes::patterns(&crate::openclaw::default_excludes(&layout)));
        }
        patterns.extend(protect.iter().cloned());
        Ok(Protector {
            fixed: build_excludes(&patterns)?,
            patterns,
            skip: skip.iter().filter_map(|p| absolute_clean(p).ok()).collect(),
            workspaces,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The ignore files of one folder (`.gitignore` only inside a workspace).
    fn dir_rules(&self, dir: &Path) -> Option<std::sync::Arc<Gitignore>> {
        if let Some(g) = self.cache.lock().get(dir) {
            return g.clone();
        }
        let mut b = GitignoreBuilder::new(dir);
        let mut any = false;
        let mut names = vec![".clawbackignore"];
        if self.workspaces.iter().any(|w| dir.starts_with(w)) {
            names.insert(0, ".gitignore");
        }
        for name in names {
            let f = dir.join(name);
            if std::fs::symlink_metadata(&f).is_ok_and(|m| m.is_file()) {
                any = true;
                let _ = b.add(&f);
            }
        }
        let g = if any { b.build().ok().map(std::sync::Arc::new) } else { None };
        self.cache.lock().insert(dir.to_path_buf(), g.clone());
        g
    }

    fn protected(&self, p: &Path, is_dir: bool) -> bool {
        if self.skip.iter().any(|s| p.starts_with(s)) {
            return true;
        }
        if self.fixed.matched_path_or_any_parents(p, is_dir).is_ignore() {
            return true;
        }
        // The deepest ignore file that says something decides.
        for dir in p.ancestors().skip(1) {
            if let Some(g) = self.dir_rules(dir) {
                match g.matched_path_or_any_parents(p, is_dir) {
                    ignore::Match::Ignore(_) => return true,
                    ignore::Match::Whitelist(_) => return false,
                    ignore::Match::None => {}
                }
            }
        }
        false
    }
}

/// What is on disk where an item goes, in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// Nothing (or below a folder that is created or replaced).
    Absent,
    /// Already the snapshot's entry.
    Same,
    /// A different entry that an atomic rename replaces.
    Differs,
    /// A kind conflict involving a folder; the bool: what is there is a folder.
    Conflict(bool),
}

pub(super) fn restore_in_place(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    sel: &Selection,
    items: Vec<Item>,
    images: Option<&units::Images>,
    progress: &Progress,
) -> Result<RestoreResult> {
    let root = Path::new("/");
    let snap_paths: Vec<PathBuf> = snap.paths.iter().map(PathBuf::from).collect();
    let below_snap = |abs: &Path| snap_paths.iter().any(|p| abs.starts_with(p));
    let scope = if opts.only.is_empty() && opts.rows.is_empty() {
        minimal_roots(snap_paths.clone())
    } else {
        minimal_roots(opts.only.clone())
    };
    let mut res = RestoreResult { scope: scope.clone(), ..Default::default() };

    // 1. Compare with the disk, parents first.
    let mut disk = vec![Disk::Absent; items.len()];
    let mut fresh: HashSet<&Path> = HashSet::new();
    for (i, it) in items.iter().enumerate() {
        let abs = root.join(&it.rel);
        let is_dir = it.node.kind == NodeKind::Dir;
        if it.rel.parent().is_some_and(|p| fresh.contains(p)) {
            if is_dir {
                fresh.insert(&it.rel);
            }
            continue;
        }
        // Above the snapshot's paths, folders resolve as they did for the backup.
        let scaffold = !below_snap(&abs);
        let md = if scaffold { std::fs::metadata(&abs) } else { std::fs::symlink_metadata(&abs) };
        let md = match md {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if is_dir {
                    fresh.insert(&it.rel);
                }
                continue;
            }
            Err(e) => return Err(Error::io("inspect", &abs, e)),
        };
        let ftype = md.file_type();
        disk[i] = match it.node.kind {
            NodeKind::Dir if md.is_dir() => Disk::Same,
            NodeKind::Dir if scaffold => {
                return Err(Error::UnsafePath(format!(
                    "{} is not a folder, but the snapshot's paths lie below it",
                    abs.display()
                )))
            }
            NodeKind::Dir => Disk::Conflict(false),
            _ if md.is_dir() => Disk::Conflict(true),
            NodeKind::File => {
                if same_file(&md, &it.node)
                    && (!opts.verify || write::verify_file(repo, &abs, &it.node.content).is_ok())
                {
                    Disk::Same
                } else {
                    Disk::Differs
                }
            }
            NodeKind::Symlink => {
                if ftype.is_symlink()
                    && std::fs::read_link(&abs).is_ok_and(|t| t.as_os_str().as_bytes() == it.node.target.as_slice())
                {
                    Disk::Same
                } else {
                    Disk::Differs
                }
            }
        };
        if is_dir && disk[i] != Disk::Same {
            fresh.insert(&it.rel);
        }
    }
    drop(fresh);

    let conflicts: Vec<usize> = (0..items.len()).filter(|&i| matches!(disk[i], Disk::Conflict(_))).collect();
    if !conflicts.is_empty() && !opts.delete {
        let mut list: Vec<String> = conflicts
            .iter()
            .take(3)
            .map(|&i| {
                let what = if disk[i] == Disk::Conflict(true) { "a folder" } else { "not a folder" };
                format!(
                    "{} is {what} where the snapshot has a {}",
                    root.join(&items[i].rel).display(),
                    kind_name(items[i].node.kind)
                )
            })
            .collect();
        if conflicts.len() > 3 {
            list.push(format!("and {} more", conflicts.len() - 3));
        }
        return Err(Error::Usage(format!(
            "restoring in place would replace entries of another kind: {}; rerun with --delete to replace them",
            list.join("; ")
        )));
    }

    // 2. What `delete` removes: entries under the roots that the selection covers and the
    // snapshot lacks, children before their folder.
    let skip = opts.safety.as_ref().map(|s| s.skip_paths.as_slice()).unwrap_or_default();
    let protector = Protector::new(snap.openclaw.as_ref(), &opts.protect, skip)?;
    let planned: HashMap<PathBuf, NodeKind> = items.iter().map(|it| (root.join(&it.rel), it.node.kind)).collect();
    let mut extras: Vec<(PathBuf, &'static str)> = Vec::new();
    if opts.delete {
        for r in &scope {
            if let Ok(md) = std::fs::symlink_metadata(r) {
                find_extras(r, &md, sel, &protector, &planned, &mut extras);
            }
        }
    }

    // Units of rows: what merging them into the databases on disk changes.
    let row_plans = match images {
        Some(images) => units::plan_in_place(images, opts.delete)?,
        None => Vec::new(),
    };
    // The databases (and sessions.json files) that change, and exist: the safety snapshot holds them.
    let row_files: Vec<PathBuf> = row_plans
        .iter()
        .filter(|p| !p.report.changes.is_empty() && std::fs::symlink_metadata(&p.db).is_ok())
        .map(|p| p.db.clone())
        .collect();

    // 3. The safety snapshot: the roots as they are, before anything changes.
    let touched: Vec<usize> =
        (0..items.len()).filter(|&i| matches!(disk[i], Disk::Differs | Disk::Conflict(_))).collect();
    if !opts.dry_run {
        if let Some(so) = &opts.safety {
            res.safety_paths = scope.iter().filter(|r| std::fs::symlink_metadata(r).is_ok()).cloned().collect();
            res.safety_paths.extend(row_files.iter().cloned());
            res.safety_paths = minimal_roots(std::mem::take(&mut res.safety_paths));
            if !res.safety_paths.is_empty() {
                // Take everything when the restore overwrites what a backup would leave out.
                let full = touched
                    .iter()
                    .any(|&i| disk[i] == Disk::Conflict(true) || protector.protected(&root.join(&items[i].rel), false));
                let mut excludes = opts.excludes.clone();
                if !full {
                    excludes.extend(protector.patterns.iter().cloned());
                }
                let bo = BackupOptions {
                    paths: res.safety_paths.clone(),
                    excludes,
                    skip_paths: so.skip_paths.clone(),
                    tags: so.tags.clone(),
                    host: so.host.clone(),
                    openclaw: snap.openclaw.clone(),
                    gitignore_roots: if full { Vec::new() } else { protector.workspaces.clone() },
                    ..Default::default()
                };
                let br = backup(repo, &bo, &Progress::default())?;
                let id = br.snapshot_id.ok_or_else(|| Error::Other("the safety snapshot was not saved".into()))?;
                res.safety_snapshot = Some(id);
                let (_, safety) = repo.find_snapshot(&id.to_hex(), |_| true)?;
                let held: HashSet<PathBuf> =
                    plan(repo, &safety, &Selection::new(&[], &[])?.with_roots(res.safety_paths.clone()))?
                        .into_iter()
                        .map(|it| root.join(&it.rel))
                        .collect();
                // A path the safety snapshot does not hold stops the restore, with the reason the
                // backup gave for it.
                let unsaved = |m: &Path| {
                    let why = br.errors.iter().find(|e| Path::new(&e.path) == m).map(|e| format!(": {}", e.error));
                    Error::Other(format!(
                        "{} could not be saved in the safety snapshot {}{}; nothing was changed",
                        m.display(),
                        id.short(),
                        why.unwrap_or_default()
                    ))
                };
                if let Some(m) = row_files.iter().find(|p| !held.contains(*p)) {
                    return Err(unsaved(m));
                }
                // Everything overwritten must be in it, or nothing changes.
                for &i in &touched {
                    let abs = root.join(&items[i].rel);
                    let mut missing = (!held.contains(&abs)).then(|| abs.clone());
                    if missing.is_none() && disk[i] == Disk::Conflict(true) {
                        missing = first_missing(&abs, &held);
                    }
                    if let Some(m) = missing {
                        return Err(unsaved(&m));
                    }
                }
                extras.retain(|(p, _)| {
                    let ok = held.contains(p);
                    if !ok {
                        res.kept.push(BackupIssue {
                            path: p.to_string_lossy().into_owned(),
                            error: "not in the safety snapshot; kept".into(),
                        });
                    }
                    ok
                });
            }
        }
    }

    // The changes, in order.
    for (i, it) in items.iter().enumerate() {
        let action = match disk[i] {
            Disk::Same => {
                if it.node.kind != NodeKind::Dir {
                    res.unchanged += 1;
                }
                continue;
            }
            Disk::Absent => Action::Create,
            Disk::Differs => Action::Update,
            Disk::Conflict(_) => Action::Replace,
        };
        match it.node.kind {
            NodeKind::File => {
                res.files += 1;
                res.bytes += it.node.size;
                progress.add_total(1, it.node.size);
            }
            NodeKind::Dir => res.dirs += 1,
            NodeKind::Symlink => res.symlinks += 1,
        }
        res.changes.push(Change {
            path: root.join(&it.rel).to_string_lossy().into_owned(),
            action,
            kind: kind_name(it.node.kind),
            row: None,
        });
    }
    for (p, kind) in &extras {
        res.changes.push(Change { path: p.to_string_lossy().into_owned(), action: Action::Delete, kind, row: None });
    }
    for p in &row_plans {
        res.changes.extend(p.changes());
        res.unchanged += p.report.unchanged;
    }
    progress.total_known.store(true, Relaxed);
    if opts.dry_run {
        res.deleted = extras.len() as u64;
        for p in &row_plans {
            for c in &p.report.changes {
                match c.action {
                    crate::openclaw::rows::RowAction::Delete => res.deleted += 1,
                    _ => res.rows += 1,
                }
            }
        }
        return Ok(res);
    }

    // Steps 4 to 9 change the disk; if one fails, say where what was there before is.
    let safety_id = res.safety_snapshot;
    let applied = (|| -> Result<()> {
        // 4. Kind conflicts: remove what stands in the way.
        for &i in &conflicts {
            let p = root.join(&items[i].rel);
            let r =
                if disk[i] == Disk::Conflict(true) { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.ctx("replace", &p)?;
        }

        // 5. Folders: created where missing; at and below the snapshot's paths never a symlink.
        let mut created: HashSet<usize> = HashSet::new();
        for (i, it) in items.iter().enumerate().filter(|(_, i)| i.node.kind == NodeKind::Dir) {
            let abs = root.join(&it.rel);
            if disk[i] == Disk::Same {
                continue;
            }
            if below_snap(&abs) {
                safe_mkdir(root, &it.rel)?;
            } else {
                match std::fs::create_dir(&abs) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && abs.is_dir() => {}
                    Err(e) => return Err(Error::io("create folder", &abs, e)),
                }
            }
            created.insert(i);
        }

        // 6. Files, hard links and symlinks, each under a temporary name renamed into place. A hard
        // link group is written whole when any of its files changed.
        let mut groups_changed: HashSet<(u64, u64)> = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            if it.node.kind == NodeKind::File && it.node.nlink > 1 && disk[i] != Disk::Same {
                groups_changed.insert((it.node.dev, it.node.ino));
            }
        }
        let to_write: Vec<usize> = (0..items.len())
            .filter(|&i| {
                let n = &items[i].node;
                n.kind == NodeKind::File
                    && (disk[i] != Disk::Same || (n.nlink > 1 && groups_changed.contains(&(n.dev, n.ino))))
            })
            .collect();
        let (write, link_to) = link_groups(&items, &to_write);
        let links: Vec<(PathBuf, PathBuf)> =
            link_to.iter().map(|&(i, f)| (items[i].rel.clone(), items[f].rel.clone())).collect();
        let mut errors = write::write_files(repo, root, &items, &write, opts.verify, Some(&planned), progress)?;
        res.hardlinks = write::make_links(root, &links, &mut errors, true)?;
        for (i, it) in items.iter().enumerate() {
            if it.node.kind == NodeKind::Symlink && disk[i] != Disk::Same {
                let p = root.join(&it.rel);
                make_symlink(&temp_name(&p), &p, &it.node)?;
            }
        }

        // 7. Deletions, children first.
        for (p, kind) in &extras {
            let r = if *kind == "dir" { std::fs::remove_dir(p) } else { std::fs::remove_file(p) };
            match r {
                Ok(()) => res.deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => res.kept.push(BackupIssue { path: p.to_string_lossy().into_owned(), error: e.to_string() }),
            }
        }
        if !res.kept.is_empty() {
            let kept: HashSet<&str> = res.kept.iter().map(|k| k.path.as_str()).collect();
            res.changes.retain(|c| c.action != Action::Delete || !kept.contains(c.path.as_str()));
        }

        // 8. Rows, one transaction per database.
        if let Some(images) = images {
            for r in units::apply_in_place(images, &row_plans, opts.delete)? {
                for c in &r.changes {
                    match c.action {
                        crate::openclaw::rows::RowAction::Delete => res.deleted += 1,
                        _ => res.rows += 1,
                    }
                }
            }
        }

        // 9. Folder metadata, deepest first: folders created here, and selected folders at or below
        // the snapshot's paths; never the folders above them.
        let mut synced: HashSet<PathBuf> = HashSet::new();
        for &i in to_write.iter().chain(created.iter()) {
            if let Some(parent) = root.join(&items[i].rel).parent() {
                synced.insert(parent.to_path_buf());
            }
        }
        for (i, it) in items.iter().enumerate().rev().filter(|(_, i)| i.node.kind == NodeKind::Dir) {
            let abs = root.join(&it.rel);
            if created.contains(&i) || (it.selected && below_snap(&abs)) {
                set_dir_meta(&abs, &it.node);
            }
        }
        // The renames are durable once their folders are synced.
        for d in synced {
            if let Ok(f) = File::open(&d) {
                let _ = f.sync_all();
            }
        }
        res.errors = errors;
        Ok(())
    })();
    match (applied, safety_id) {
        (Ok(()), _) => Ok(res),
        (Err(e), Some(id)) => Err(Error::Other(format!(
            "{e}; the restore stopped part way: what was there before is in safety snapshot {} (tag {})",
            id.to_hex(),
            opts.safety.as_ref().and_then(|s| s.tags.first()).map(String::as_str).unwrap_or("none")
        ))),
        (Err(e), None) => Err(e),
    }
}

/// The first entry under `dir` (on disk, not following symlinks) that `held` lacks.
fn first_missing(dir: &Path, held: &HashSet<PathBuf>) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
                continue;
            }
            if !held.contains(&p) {
                return Some(p);
            }
            if t.is_dir() {
                stack.push(p);
            }
        }
    }
    None
}

/// Collects the entries at or below `p` that `delete` removes, children before their folder.
/// Returns whether `p` itself is removed (so its folder can be).
fn find_extras(
    p: &Path,
    md: &std::fs::Metadata,
    sel: &Selection,
    protector: &Protector,
    planned: &HashMap<PathBuf, NodeKind>,
    out: &mut Vec<(PathBuf, &'static str)>,
) -> bool {
    let t = md.file_type();
    let is_dir = t.is_dir();
    if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
        return false; // never backed up, never deleted
    }
    // Excluded, protected, or another agent's (carved out of the roots): never deleted.
    if sel.excluded(p, is_dir) || sel.carved_out(p) || protector.protected(p, is_dir) {
        return false;
    }
    match planned.get(p) {
        Some(NodeKind::Dir) if is_dir => {
            visit_children(p, sel, protector, planned, out);
            false
        }
        Some(_) => false, // the restore writes or replaces it
        None => {
            let all = !is_dir || visit_children(p, sel, protector, planned, out);
            if all && sel.selects(p, is_dir) {
                let kind = if is_dir {
                    "dir"
                } else if t.is_symlink() {
                    "symlink"
                } else {
                    "file"
                };
                out.push((p.to_path_buf(), kind));
                true
            } else {
                false
            }
        }
    }
}

fn visit_children(
    dir: &Path,
    sel: &Selection,
    protector: &Protector,
    planned: &HashMap<PathBuf, NodeKind>,
    out: &mut Vec<(PathBuf, &'static str)>,
) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut all = true;
    for p in names {
        match std::fs::symlink_metadata(&p) {
            Ok(md) => all &= find_extras(&p, &md, sel, protector, planned, out),
            Err(_) => all = false,
        }
    }
    all
}

/// Splits the files among `which` into those written and (hard link, first of its group) pairs:
/// the first file of each (dev, inode) group is written, the rest linked to it.
fn link_groups(items: &[Item], which: &[usize]) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut first_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut link_to = Vec::new();
    let mut write = Vec::new();
    for &i in which {
        let n = &items[i].node;
        if n.kind != NodeKind::File {
            continue;
        }
        if n.nlink > 1 {
            match first_of.get(&(n.dev, n.ino)) {
                Some(&f) => {
                    link_to.push((i, f));
                    continue;
                }
                None => {
                    first_of.insert((n.dev, n.ino), i);
                }
            }
        }
        write.push(i);
    }
    (write, link_to)
}
