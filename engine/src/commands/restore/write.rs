//! Writing restored files: chunks grouped by pack and read in ranges, in parallel; hard links.

use super::*;
use std::sync::Arc;

/// Multi-chunk files kept open between their chunks, at most: the others are opened again for
/// each chunk (a file's chunks may lie in many packs, read far apart).
const KEEP_OPEN: usize = 256;

/// What the writers of one [`write_files`] share.
struct Writers<'a> {
    repo: &'a Repository,
    verify: bool,
    /// Running as root: owners are restored.
    root: bool,
    /// Files kept open now (at most [`KEEP_OPEN`]).
    kept: AtomicUsize,
}

/// A file being restored: created on first write, finished when its last chunk is written. In
/// atomic mode it is written under `tmp` and renamed to `path` when finished.
struct FileTask<'a> {
    path: PathBuf,
    tmp: Option<PathBuf>,
    /// SQLite sidecars (`-wal`, `-shm`, `-journal`) of `path` that the restore does not write: they
    /// belong to the file being replaced and are removed before a database is renamed into place,
    /// or SQLite would apply the old write-ahead log to the new database.
    sidecars: Vec<PathBuf>,
    node: &'a Node,
    remaining: AtomicUsize,
    state: Mutex<FileState>,
    failed: Mutex<Option<String>>,
    /// A chunk of zeros was left as a hole: the file is sized when finished (a hole at the end
    /// is no length).
    holes: AtomicBool,
}

#[derive(Default)]
struct FileState {
    created: bool,
    /// Kept open between chunks (counted in [`Writers::kept`]).
    open: Option<Arc<File>>,
}

impl FileTask<'_> {
    fn fail(&self, why: String) {
        let mut f = self.failed.lock();
        if f.is_none() {
            *f = Some(why);
        }
    }

    fn is_failed(&self) -> bool {
        self.failed.lock().is_some()
    }

    /// Where the bytes go: the temporary name, or the path itself.
    fn dest(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.path)
    }

    /// Opens the file for writing, creating (truncated) it the first time.
    fn open(&self, w: &Writers) -> Result<Arc<File>> {
        let mut st = self.state.lock();
        if let Some(f) = &st.open {
            return Ok(f.clone());
        }
        let dest = self.dest();
        let mut o = OpenOptions::new();
        o.write(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        if !st.created {
            if self.tmp.is_some() {
                o.create_new(true).mode(0o600);
            } else {
                o.create(true).truncate(true).mode(0o600);
            }
        }
        let f = match o.open(dest) {
            Ok(f) => Arc::new(f),
            // (Cheaper than a stat of every file first: opening a folder to write fails.)
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                return Err(Error::UnsafePath(format!("{} is a folder where the snapshot has a file", dest.display())))
            }
            Err(e) => return Err(Error::io("create", &self.path, e)),
        };
        st.created = true;
        if self.node.content.len() > 1 && self.remaining.load(Relaxed) > 1 {
            if w.kept.fetch_add(1, Relaxed) < KEEP_OPEN {
                st.open = Some(f.clone());
            } else {
                w.kept.fetch_sub(1, Relaxed);
            }
        }
        Ok(f)
    }

    /// Closes the file if it was kept open.
    fn close(&self, w: &Writers) {
        if self.state.lock().open.take().is_some() {
            w.kept.fetch_sub(1, Relaxed);
        }
    }

    /// After the last chunk: size (if it ends in a hole), verify if asked, then owner, mode and
    /// times, all on the open file; in atomic mode, sync and rename into place.
    fn finish(&self, w: &Writers, f: Option<Arc<File>>) -> Result<()> {
        let f = match f {
            Some(f) => f,
            None => self.open(w)?,
        };
        self.close(w);
        if self.holes.load(Relaxed) {
            f.set_len(self.node.size).ctx("size", &self.path)?;
        }
        let dest = self.dest();
        if w.verify {
            verify_file(w.repo, dest, &self.node.content)?;
        }
        if w.root {
            // A file created here is ours (or its folder's group): changed only when that differs.
            if f.metadata().map_or(true, |md| md.uid() != self.node.uid || md.gid() != self.node.gid) {
                let _ = std::os::unix::fs::fchown(&*f, Some(self.node.uid), Some(self.node.gid));
            }
        }
        f.set_permissions(std::fs::Permissions::from_mode(self.node.mode)).ctx("chmod", &self.path)?;
        let t = ft(self.node.mtime_ns);
        filetime::set_file_handle_times(&f, Some(t), Some(t)).ctx("set times", &self.path)?;
        if let Some(tmp) = &self.tmp {
            f.sync_all().ctx("sync", &self.path)?;
            if !self.sidecars.is_empty() && is_sqlite(tmp) {
                for sc in &self.sidecars {
                    if std::fs::symlink_metadata(sc).is_ok_and(|m| m.is_file()) {
                        std::fs::remove_file(sc).ctx("remove the old database's", sc)?;
                    }
                }
            }
            crate::failpoint::hit("restore:before-rename");
            std::fs::rename(tmp, &self.path).ctx("rename into place", &self.path)?;
            crate::failpoint::hit("restore:after-rename");
        }
        Ok(())
    }
}

/// Whether a file starts with the SQLite database header.
fn is_sqlite(p: &Path) -> bool {
    let mut h = [0u8; 16];
    File::open(p).and_then(|f| f.read_exact_at(&mut h, 0)).is_ok() && &h == b"SQLite format 3\0"
}

/// The SQLite sidecars of `path` that exist on disk and that `planned` (what the restore writes)
/// does not hold.
pub(super) fn stale_sidecars(path: &Path, planned: &HashMap<PathBuf, NodeKind>) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|sfx| {
            let mut s = path.as_os_str().to_os_string();
            s.push(sfx);
            PathBuf::from(s)
        })
        .filter(|p| !planned.contains_key(p) && std::fs::symlink_metadata(p).is_ok())
        .collect()
}

/// Writes the files' contents. Chunks are grouped by pack; packs are processed in parallel, each
/// read with as few ranged reads as possible (one for a pack whose blobs are all needed), so the
/// repository is read sequentially whatever the order of files. Returns the files that failed,
/// after removing them: a partial file is never left where it could pass for whole. `atomic`
/// (in place; with what the restore writes) writes each file under a temporary name renamed into
/// place when complete: on failure only the temporary file is removed, and what was there stays.
pub(super) fn write_files(
    repo: &Repository,
    target: &Path,
    items: &[Item],
    write: &[usize],
    verify: bool,
    atomic: Option<&HashMap<PathBuf, NodeKind>>,
    progress: &Progress,
) -> Result<Vec<BackupIssue>> {
    let tasks: Vec<FileTask> = write
        .iter()
        .map(|&i| {
            let path = target.join(&items[i].rel);
            FileTask {
                tmp: atomic.map(|_| temp_name(&path)),
                sidecars: atomic.map(|planned| stale_sidecars(&path, planned)).unwrap_or_default(),
                path,
                node: &items[i].node,
                remaining: AtomicUsize::new(items[i].node.content.len()),
                state: Mutex::new(FileState::default()),
                failed: Mutex::new(None),
                holes: AtomicBool::new(false),
            }
        })
        .collect();

    // Where each needed blob goes, (task, offset in file), and the blobs grouped by pack.
    let mut targets: HashMap<BlobId, Vec<(u32, u64)>> = HashMap::new();
    let mut by_pack: HashMap<u32, Vec<(BlobId, BlobLoc)>> = HashMap::new();
    {
        let index = repo.index();
        for (t, task) in tasks.iter().enumerate() {
            let mut off = 0u64;
            for id in &task.node.content {
                let Some(loc) = index.get(&id.blob()) else {
                    task.fail(format!("data blob {} is missing from the repository", id.short()));
                    break;
                };
                let e = targets.entry(id.blob()).or_default();
                if e.is_empty() {
                    by_pack.entry(loc.pack).or_default().push((id.blob(), loc));
                }
                e.push((t as u32, off));
                off += loc.raw_length as u64;
            }
            if !task.is_failed() && off != task.node.size {
                task.fail(format!("content is {off} bytes, the tree says {}", task.node.size));
            }
        }
    }

    let w = Writers { repo, verify, root: is_root(), kept: AtomicUsize::new(0) };
    // Files without content (empty) are finished here.
    tasks.par_iter().filter(|t| t.node.content.is_empty() && !t.is_failed()).for_each(|t| {
        if let Err(e) = t.finish(&w, None) {
            t.fail(e.to_string());
        }
        progress.files_done.fetch_add(1, Relaxed);
    });

    // Each pack's blobs, in pack order, cut into ranges: blobs separated by small gaps are read
    // together, in ranges of at most MAX_RANGE (one blob beyond it), so each reader holds about
    // one MiB, not a whole pack. The ranges are read in parallel, each pack's mostly in order.
    const MAX_RANGE: u64 = 1 << 20;
    const MAX_GAP: u64 = 256 << 10;
    let mut packs: Vec<(u32, Vec<(BlobId, BlobLoc)>)> = by_pack.into_iter().collect();
    packs.sort_by_key(|(p, _)| *p);
    let mut ranges: Vec<(u32, &[(BlobId, BlobLoc)])> = Vec::new();
    for (_, blobs) in &mut packs {
        blobs.sort_by_key(|(_, l)| l.offset);
    }
    for (pack, blobs) in &packs {
        let mut rest = &blobs[..];
        while !rest.is_empty() {
            let start = rest[0].1.offset as u64;
            let mut end = 1;
            while end < rest.len() {
                let prev = &rest[end - 1].1;
                let prev_end = prev.offset as u64 + prev.length as u64;
                if (rest[end].1.offset as u64).saturating_sub(prev_end) > MAX_GAP || prev_end - start >= MAX_RANGE {
                    break;
                }
                end += 1;
            }
            ranges.push((*pack, &rest[..end]));
            rest = &rest[end..];
        }
    }
    // Pack reads wait on the store more than on the CPU: keep as many in flight as the backend
    // takes (`--connections`), each a ranged read of the blobs needed.
    // As many requests in flight as the store takes, and more threads than cores besides: each
    // blocks in turn on a read or on the file system's journal while creating a file, and the
    // others keep the cores busy meanwhile.
    let readers = repo.backend().connections() + 2 * rayon::current_num_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(readers)
        .build()
        .map_err(|e| Error::Other(format!("cannot start the restore threads: {e}")))?;
    // A store that stopped answering (the retry decorator has spent the run's bound on it) ends the
    // restore with that one error, not a line per file it would have held.
    let outage: Mutex<Option<(String, std::io::Error)>> = Mutex::new(None);
    thread_local! {
        /// Each reader's range buffer, kept from range to range: a new one for every range (about
        /// 1 MiB, above malloc's mapping threshold) had the kernel map and zero fresh pages, 5% of
        /// a restore's CPU.
        static RANGE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    pool.install(|| {
        ranges.par_iter().for_each(|&(pack, blobs)| {
            let name = ObjectName::of(&repo.index().pack_id(pack));
            let first = blobs[0].1.offset as u64;
            let last = &blobs[blobs.len() - 1].1;
            let len = last.offset as u64 + last.length as u64 - first;
            let mut buf = RANGE.with(|b| std::mem::take(&mut *b.borrow_mut()));
            let data = repo.backend().read_range_into(&name, first, len, &mut buf).map(|()| &buf[..]);
            if let Err(e) = &data {
                if crate::backend::retry::is_transient(e) {
                    outage
                        .lock()
                        .get_or_insert_with(|| (name.to_string(), std::io::Error::new(e.kind(), e.to_string())));
                }
            }
            for (id, loc) in blobs {
                let plain = match &data {
                    Ok(d) => {
                        let s = (loc.offset as u64 - first) as usize;
                        repo.decode_blob(BlobType::Data, id, &d[s..s + loc.length as usize], loc.raw_length as usize)
                            .map_err(|e| format!("pack {name} is damaged: {e}"))
                    }
                    Err(e) => Err(format!("cannot read pack {name}: {e}")),
                };
                for &(t, off) in &targets[id] {
                    let task = &tasks[t as usize];
                    if task.is_failed() {
                        continue;
                    }
                    let res = match &plain {
                        Err(e) => Err(e.clone()),
                        Ok(p) => write_chunk(&w, task, p, off).map_err(|e| e.to_string()),
                    };
                    match res {
                        Err(e) => task.fail(e),
                        Ok(f) => {
                            progress.bytes_done.fetch_add(loc.raw_length as u64, Relaxed);
                            if task.remaining.fetch_sub(1, Relaxed) == 1 {
                                if let Err(e) = task.finish(&w, Some(f)) {
                                    task.fail(e.to_string());
                                }
                                progress.files_done.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            }
            drop(data);
            RANGE.with(|b| *b.borrow_mut() = buf);
        })
    });

    let mut errors = Vec::new();
    for t in &tasks {
        t.close(&w);
        if let Some(why) = t.failed.lock().take() {
            if t.state.lock().created || t.tmp.is_none() {
                let _ = std::fs::remove_file(t.dest());
            }
            let rel = t.path.strip_prefix(target).unwrap_or(&t.path);
            errors.push(BackupIssue { path: Path::new("/").join(rel).to_string_lossy().into_owned(), error: why });
        }
    }
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some((name, source)) = outage.into_inner() {
        return Err(Error::Backend { op: "read", name, source });
    }
    Ok(errors)
}

/// Writes one chunk at `off`. Zero chunks stay holes (the file is sized when finished), so sparse
/// files stay sparse. Returns the open file so the last chunk's writer can finish it.
fn write_chunk(w: &Writers, task: &FileTask, data: &[u8], off: u64) -> Result<Arc<File>> {
    let f = task.open(w)?;
    if is_zeros(data) {
        task.holes.store(true, Relaxed);
    } else {
        f.write_all_at(data, off).ctx("write", &task.path)?;
    }
    crate::failpoint::hit("restore:after-chunk");
    Ok(f)
}

/// Whether every byte is zero (16 at a time: a chunk of zeros is scanned whole).
fn is_zeros(data: &[u8]) -> bool {
    let words = data.chunks_exact(16);
    let tail = words.remainder();
    words.into_iter().all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0) && tail.iter().all(|&b| b == 0)
}

/// Re-reads a restored file and checks every chunk's id.
pub(super) fn verify_file(repo: &Repository, path: &Path, content: &[DataId]) -> Result<()> {
    let f = std::fs::File::open(path).ctx("open for verify", path)?;
    let mut off = 0u64;
    let mut buf = Vec::new();
    for id in content {
        let len = repo
            .index()
            .get(&id.blob())
            .map(|l| l.raw_length as usize)
            .ok_or_else(|| Error::Missing { what: "blob", id: id.to_hex() })?;
        buf.resize(len, 0);
        f.read_exact_at(&mut buf, off).ctx("verify", path)?;
        if repo.keys().data_id(&buf) != *id {
            return Err(Error::corrupt(
                "restored file",
                path.display(),
                format!("bytes at offset {off} differ from the snapshot"),
            ));
        }
        off += len as u64;
    }
    if f.metadata().ctx("verify", path)?.len() != off {
        return Err(Error::corrupt("restored file", path.display(), "its length differs from the snapshot"));
    }
    Ok(())
}

/// Makes the hard links, (link, first file of its group) relative to `target`; a link to a file
/// that failed is reported and not made.
pub(super) fn make_links(
    target: &Path,
    links: &[(PathBuf, PathBuf)],
    errors: &mut Vec<BackupIssue>,
    atomic: bool,
) -> Result<u64> {
    let failed: HashMap<String, String> = errors.iter().map(|e| (e.path.clone(), e.error.clone())).collect();
    let mut n = 0;
    for (link, first) in links {
        let src = target.join(first);
        let dst = target.join(link);
        let first = Path::new("/").join(first).to_string_lossy().into_owned();
        if let Some(why) = failed.get(&first) {
            // A hard link to a file that could not be restored is lost too: name it.
            errors.push(BackupIssue {
                path: Path::new("/").join(link).to_string_lossy().into_owned(),
                error: format!("hard link to {first}, which could not be restored: {why}"),
            });
            if !atomic {
                let _ = std::fs::remove_file(&dst);
            }
            continue;
        }
        if atomic {
            let tmp = temp_name(&dst);
            std::fs::hard_link(&src, &tmp).ctx("hard link", &dst)?;
            if let Err(e) = std::fs::rename(&tmp, &dst) {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io("rename into place", &dst, e));
            }
        } else {
            let _ = std::fs::remove_file(&dst);
            std::fs::hard_link(&src, &dst).ctx("hard link", &dst)?;
        }
        n += 1;
    }
    Ok(n)
}
