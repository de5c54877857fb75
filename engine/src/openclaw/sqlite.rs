//! Live SQLite databases, snapshotted consistently.
//!
//! OpenClaw keeps sessions, memory and cron jobs in SQLite databases that the gateway writes while a
//! backup runs, most of them in WAL mode. Copying such a file byte by byte can tear a transaction
//! in half, and its committed tail may sit in the `-wal` file, not in the database file at all. So
//! every file that starts with SQLite's header ("SQLite format 3\0", whatever its name) is read
//! through SQLite itself, inside a single read transaction, so the image holds exactly the
//! transactions committed when that transaction began. [`with_image`] hands it to the caller as a
//! reader of the database's pages in order, one of two ways:
//! - **A WAL database is streamed** through the `sqlite_dbpage` table (this build of SQLite has it:
//!   `SQLITE_ENABLE_DBPAGE_VTAB`, set in `.cargo/config.toml`): page 1 to the last, read through
//!   the pager inside one read transaction, so pages whose newest version is in the `-wal` come
//!   from there. A WAL writer never waits for a reader, so the transaction may stay open while the
//!   caller chunks and stores the pages; nothing is copied to disk.
//! - **Any other database** (rollback journal) is first copied with SQLite's online backup API:
//!   one `sqlite3_backup_step(-1)` copies every page inside one read transaction into a private
//!   temporary folder (`$TMPDIR/clawback-sqlite-…`, mode 0700), and the copy is read and deleted.
//!   A rollback-mode writer waits for every reader, so it waits only as long as the copy takes, not
//!   as long as storing it. The same copy is taken when the streaming table is missing.
//!
//! The two give the same pages except in page 1's header, which the backup API rewrites (change
//! counter, schema cookie); both open the same way.
//!
//! How the source is opened, so the backup changes nothing on disk:
//! - A WAL database with neither `-wal` nor `-shm` beside it (nobody has it open) is opened
//!   read-write with `PRAGMA query_only`: SQLite needs the two files to read a WAL database, and a
//!   read-write connection that is the last one to close removes them again, as if it had never
//!   been there. (A read-only connection would create them and leave them behind.) If the file is
//!   write-protected SQLite opens it read-only instead.
//! - Any other database is opened with `SQLITE_OPEN_READ_ONLY`: its sidecars exist already (or it
//!   is in rollback mode and needs none), and a read-only connection never checkpoints, rolls back
//!   or writes anything.
//! - When that fails because the sidecars cannot be created (a read-only folder) the database is
//!   opened `immutable=1` and its metadata (and its `-wal`'s) is compared before and after the read;
//!   if it moved, the image is refused.
//!
//! What the caller does with failures: see `commands::backup` (the file is then stored as a plain
//! copy together with its sidecars, and listed in the backup's warnings).

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The first 16 bytes of every SQLite 3 database file.
pub const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The files SQLite keeps beside a database `X`: `X-wal`, `X-shm`, `X-journal`.
pub const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// How long an image waits for the locks it needs (a rollback-mode writer in the middle of a
/// commit) before it gives up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(20);

/// What the first 100 bytes (the database header) say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    pub page_size: u32,
    /// The file is in WAL mode (read and write format versions 2).
    pub wal: bool,
}

/// Parses a database header: the magic string, a valid page size and known format versions.
/// `None` for anything else (a plain file, or one that only starts like a database).
pub fn parse_header(buf: &[u8]) -> Option<HeaderInfo> {
    if buf.len() < 20 || &buf[..16] != HEADER {
        return None;
    }
    let raw = u16::from_be_bytes([buf[16], buf[17]]) as u32;
    let page_size = if raw == 1 { 65536 } else { raw };
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let (w, r) = (buf[18], buf[19]);
    if !(1..=2).contains(&w) || !(1..=2).contains(&r) {
        return None;
    }
    Some(HeaderInfo { page_size, wal: w == 2 && r == 2 })
}

/// Reads the header of an open file without moving its position (so it can be read on from 0).
/// `None` when the file is not a SQLite database.
pub fn sniff(f: &File) -> Option<HeaderInfo> {
    let mut buf = [0u8; 20];
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_header(&buf[..n])
}

/// Whether the file at `path` is a SQLite database (by its header).
pub fn is_database(path: &Path) -> bool {
    File::open(path).ok().as_ref().and_then(sniff).is_some()
}

/// `X-wal`, `X-shm`, `X-journal`: the database name and which sidecar it is, else `None`.
pub fn sidecar_base(name: &[u8]) -> Option<(&[u8], &'static str)> {
    for s in SIDECARS {
        if let Some(base) = name.strip_suffix(s.as_bytes()) {
            if !base.is_empty() {
                return Some((base, s));
            }
        }
    }
    None
}

/// The path of a database's sidecar (`suffix` one of [`SIDECARS`]).
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn ctime_ns(md: &Metadata) -> i64 {
    md.ctime().saturating_mul(1_000_000_000).saturating_add(md.ctime_nsec())
}

/// The change-detection stamp of a database: the newest of the file's ctime and the mtimes of its
/// `-wal` and `-journal`. Every commit moves it (into the WAL, or into the file itself), so a
/// database whose stamp, mtime and inode are those recorded for it last time holds the same
/// transactions. (The sidecars' ctime would not do: SQLite running as root `fchown`s them each
/// time it opens them, a reader included.) `md` is the database file's own metadata.
pub fn change_stamp(db: &Path, md: &Metadata) -> i64 {
    let mut t = ctime_ns(md);
    for s in ["-wal", "-journal"] {
        if let Ok(m) = std::fs::symlink_metadata(sidecar(db, s)) {
            t = t.max(m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()));
        }
    }
    t
}

/// A private temporary folder for images, created on first use (0700) and removed with
/// everything in it when dropped.
pub struct TempDir {
    path: PathBuf,
    created: OnceLock<Result<(), String>>,
    next: AtomicU64,
}

impl TempDir {
    /// A folder named `clawback-sqlite-<pid>-<random>` under `base` (not created yet).
    pub fn new_in(base: &Path) -> TempDir {
        let name = format!("clawback-sqlite-{}-{:016x}", std::process::id(), rand::random::<u64>());
        TempDir { path: base.join(name), created: OnceLock::new(), next: AtomicU64::new(0) }
    }

    /// Under `$TMPDIR` (else `/tmp`), after removing the folders of clawback processes that died
    /// before they could (they hold copies of databases).
    pub fn new() -> TempDir {
        let base = std::env::temp_dir();
        sweep_stale(&base);
        Self::new_in(&base)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh file name in the folder, creating the folder if needed.
    pub fn file(&self) -> Result<PathBuf, String> {
        self.created
            .get_or_init(|| {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&self.path)
                    .map_err(|e| format!("cannot create temporary folder {}: {e}", self.path.display()))
            })
            .clone()?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(self.path.join(format!("image-{n}.sqlite")))
    }
}

/// Removes `clawback-sqlite-<pid>-…` folders of ours whose process no longer exists.
fn sweep_stale(base: &Path) {
    let Ok(rd) = std::fs::read_dir(base) else { return };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("clawback-sqlite-")) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        if pid <= 0 || pid as u32 == std::process::id() {
            continue;
        }
        match e.path().symlink_metadata() {
            Ok(md) if md.is_dir() && md.uid() == uid => {}
            _ => continue,
        }
        // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
        let gone =
            unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(Ok(())) = self.created.get() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// How the source database was opened for its image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenedAs {
    ReadOnly,
    /// Read-write with `PRAGMA query_only` (a closed WAL database; see the module docs).
    QueryOnly,
    /// `immutable=1`, after the normal ways failed (a read-only folder).
    Immutable,
}

/// A consistent copy of a database in a temporary file, deleted on drop.
#[derive(Debug)]
pub struct Image {
    path: PathBuf,
    pub size: u64,
    pub pages: u64,
    /// The database's page size (the image's pages are the database's).
    pub page_size: u32,
    pub opened_as: OpenedAs,
}

impl Image {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        for s in SIDECARS {
            let _ = std::fs::remove_file(sidecar(&self.path, s));
        }
    }
}

/// Why a database could not be imaged.
#[derive(Debug)]
pub struct ImageError(pub String);

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImageError {}

fn sql_err(e: rusqlite::Error) -> ImageError {
    ImageError(e.to_string())
}

/// `file:` URI for a path, percent-encoding what a URI cannot hold literally.
fn uri(path: &Path, query: &str) -> String {
    let mut s = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push('?');
    s.push_str(query);
    s
}

fn open_source(src: &Path, how: OpenedAs) -> rusqlite::Result<Connection> {
    let base = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = match how {
        OpenedAs::ReadOnly => Connection::open_with_flags(src, base | OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        OpenedAs::QueryOnly => {
            let c = Connection::open_with_flags(src, base | OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            c.pragma_update(None, "query_only", true)?;
            c
        }
        OpenedAs::Immutable => Connection::open_with_flags(
            uri(src, "immutable=1"),
            base | OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )?,
    };
    c.busy_timeout(BUSY_TIMEOUT)?;
    Ok(c)
}

/// Copies every page of `src` into a new database at `dest` in one read transaction.
fn copy(src: &Connection, dest: &Path) -> rusqlite::Result<u64> {
    let mut d = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A scratch file: no journal, no fsync.
    d.query_row("PRAGMA journal_mode=OFF", [], |_| Ok(()))?;
    d.pragma_update(None, "synchronous", "OFF")?;
    let pages;
    {
        let b = Backup::new(src, &mut d)?;
        let start = Instant::now();
        loop {
            // -1: every page in one step, hence one read transaction and a consistent image.
            match b.step(-1)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if start.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed locked".into()),
                    ))
                }
                _ => {}
            }
        }
        pages = b.progress().pagecount.max(0) as u64;
    }
    d.close().map_err(|(_, e)| e)?;
    Ok(pages)
}

/// The metadata that must not move while an `immutable` copy is taken.
fn stamp(src: &Path) -> Vec<(u64, i64, i64, u64)> {
    let one = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), ctime_ns(&m), m.ino()))
            .unwrap_or((u64::MAX, 0, 0, 0))
    };
    vec![one(src), one(&sidecar(src, "-wal"))]
}

/// Opens `src` the way the module docs say, `first` and then, when the sidecars cannot be
/// created, `immutable`, and runs `f` on the connection. For `immutable` the file's metadata must
/// not move while `f` runs. `f` must read the database, so that opening errors show.
fn opened<R>(
    src: &Path,
    header: HeaderInfo,
    mut f: impl FnMut(Connection, OpenedAs) -> rusqlite::Result<R>,
) -> Result<R, ImageError> {
    let closed_wal = header.wal && !sidecar(src, "-wal").exists() && !sidecar(src, "-shm").exists();
    let first = if closed_wal { OpenedAs::QueryOnly } else { OpenedAs::ReadOnly };
    // `immutable` reads the file alone: right only when no journal is waiting to be rolled back
    // and no WAL holds committed pages.
    let file_alone = || {
        !sidecar(src, "-journal").exists()
            && std::fs::symlink_metadata(sidecar(src, "-wal")).map(|m| m.len() == 0).unwrap_or(true)
    };
    match open_source(src, first).and_then(|c| f(c, first)) {
        Ok(r) => Ok(r),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
            ) && file_alone() =>
        {
            // Most likely the sidecars cannot be created here. Nobody can be writing through
            // them either, unless as another user: check that nothing moved during the read.
            let before = stamp(src);
            let r = open_source(src, OpenedAs::Immutable)
                .and_then(|c| f(c, OpenedAs::Immutable))
                .map_err(|e2| ImageError(format!("{e}; read as immutable: {e2}")))?;
            if stamp(src) != before {
                return Err(ImageError(format!("{e}; and it changed while read as immutable")));
            }
            Ok(r)
        }
        Err(e) => Err(sql_err(e)),
    }
}

fn header_of(src: &Path) -> Result<HeaderInfo, ImageError> {
    File::open(src).ok().as_ref().and_then(sniff).ok_or_else(|| ImageError("not a SQLite database".into()))
}

/// Takes a consistent image of the database at `src` into a new file in `tmp`.
pub fn image(src: &Path, tmp: &TempDir) -> Result<Image, ImageError> {
    let header = header_of(src)?;
    let dest = tmp.file().map_err(ImageError)?;
    let r = opened(src, header, |c, how| {
        let _ = std::fs::remove_file(&dest);
        let pages = copy(&c, &dest);
        // Closing may report an error (a busy checkpoint); the image is complete by then.
        let _ = c.close();
        let pages = pages?;
        let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        Ok(Image { path: dest.clone(), size, pages, page_size: header.page_size, opened_as: how })
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&dest);
    }
    r
}

/// What [`with_image`] tells its reader's consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub page_size: u32,
    /// The image's length in bytes, as of the read transaction.
    pub size: u64,
    pub opened_as: OpenedAs,
    /// Read through `sqlite_dbpage`, not from a scratch copy.
    pub streamed: bool,
}

/// Hands a consistent image of the database at `src` to `consume`, as a reader of its pages in
/// order (see the module docs for the two ways). The outer error: no image could be taken (the
/// caller stores the file as it is); the inner one is `consume`'s, and a read error of the image
/// reaches `consume` as an `io::Error` from the reader.
pub fn with_image<T, E>(
    src: &Path,
    tmp: &TempDir,
    consume: impl FnOnce(&mut dyn Read, ImageInfo) -> Result<T, E>,
) -> Result<Result<T, E>, ImageError> {
    let header = header_of(src)?;
    if header.wal && dbpage_available() {
        let mut consume = Some(consume);
        let mut out = None;
        opened(src, header, |c, how| {
            // Each page is read once, in order: a page cache would only hold memory.
            c.pragma_update(None, "cache_size", 8)?;
            // The read transaction: every page below comes from the same snapshot.
            c.execute_batch("BEGIN")?;
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let mut stmt = c.prepare("SELECT pgno, data FROM sqlite_dbpage")?;
            let rows = stmt.query([])?;
            let info = ImageInfo {
                page_size: page_size as u32,
                size: (pages.max(0) as u64) * page_size as u64,
                opened_as: how,
                streamed: true,
            };
            let mut r =
                PageReader { rows, pending: Vec::new(), at: 0, next: 1, last: pages, page_size: page_size as usize };
            let consume = consume.take().expect("consumed once: opening errors come before it");
            out = Some(consume(&mut r, info));
            Ok(())
        })?;
        return Ok(out.expect("set when opened succeeds"));
    }
    let img = image(src, tmp)?;
    let mut f = File::open(img.path()).map_err(|e| ImageError(format!("cannot read the image: {e}")))?;
    let info = ImageInfo { page_size: img.page_size, size: img.size, opened_as: img.opened_as, streamed: false };
    Ok(consume(&mut f, info))
}

/// Whether this build of SQLite has the `sqlite_dbpage` table.
fn dbpage_available() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        Connection::open_in_memory().map(|c| c.prepare("SELECT pgno, data FROM sqlite_dbpage").is_ok()).unwrap_or(false)
    })
}

/// The pages of `sqlite_dbpage` as one stream of bytes, checked to be pages 1 to `last` in order,
/// each `page_size` long.
struct PageReader<'s> {
    rows: rusqlite::Rows<'s>,
    /// The rest of a page that did not fit the last read.
    pending: Vec<u8>,
    at: usize,
    next: i64,
    last: i64,
    page_size: usize,
}

impl Read for PageReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let mut n = 0;
        while n < out.len() {
            if self.at < self.pending.len() {
                let k = (self.pending.len() - self.at).min(out.len() - n);
                out[n..n + k].copy_from_slice(&self.pending[self.at..self.at + k]);
                self.at += k;
                n += k;
                continue;
            }
            let Some(row) = self.rows.next().map_err(std::io::Error::other)? else {
                if self.next <= self.last {
                    return Err(bad(format!("the database ended at page {} of {}", self.next - 1, self.last)));
                }
                break;
            };
            let pgno: i64 = row.get(0).map_err(std::io::Error::other)?;
            let data = row.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(std::io::Error::other)?;
            if pgno != self.next || pgno > self.last || data.len() != self.page_size {
                return Err(bad(format!(
                    "page {pgno} of {} bytes where page {} of {} bytes was due",
                    data.len(),
                    self.next,
                    self.page_size
                )));
            }
            let k = data.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&data[..k]);
            n += k;
            if k < data.len() {
                self.pending.clear();
                self.pending.extend_from_slice(&data[k..]);
                self.at = 0;
            }
            self.next += 1;
        }
        Ok(n)
    }
}

/// The tables of the database image at `db` and the rows each holds, by name (`history`'s
/// comparison of two versions, the web console's view of one). Opened read-only and immutable (no
/// lock, no journal, nothing written beside it): meant for a private copy. A virtual table whose
/// module is not built in cannot be counted and is left out.
pub fn table_rows(db: &Path) -> Result<Vec<(String, u64)>, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let uri = format!("file:{}?immutable=1", db.display());
    let c = Connection::open_with_flags(uri, flags).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let err = |e: rusqlite::Error| format!("cannot read {}: {e}", db.display());
    let mut st = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(err)?;
    let names: Vec<String> = st.query_map([], |r| r.get(0)).map_err(err)?.collect::<Result<_, _>>().map_err(err)?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let q = format!("SELECT count(*) FROM \"{}\"", n.replace('"', "\"\""));
        if let Ok(rows) = c.query_row(&q, [], |r| r.get::<_, i64>(0)) {
            out.push((n, rows.max(0) as u64));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch() -> PathBuf {
        let d = std::env::temp_dir().join(format!("clawback-sqlite-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn make_db(p: &Path, wal: bool, rows: usize) -> Connection {
        let c = Connection::open(p).unwrap();
        if wal {
            c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        }
        c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..rows {
            tx.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i} {}", "x".repeat(100))]).unwrap();
        }
        tx.commit().unwrap();
        c
    }

    /// A WAL database of 550 rows in a scratch folder, its writer kept open, the last 50 rows
    /// only in the `-wal`: (folder, database, writer).
    fn live_wal_db() -> (PathBuf, PathBuf, Connection) {
        let d = scratch();
        let db = d.join("state.sqlite");
        let w = make_db(&db, true, 500);
        w.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
        for i in 0..50 {
            w.execute("INSERT INTO t(v) VALUES (?1)", [format!("late {i}")]).unwrap();
        }
        assert!(std::fs::metadata(sidecar(&db, "-wal")).unwrap().len() > 0);
        (d, db, w)
    }

    fn count(p: &Path) -> i64 {
        let c = Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn headers_are_recognised_and_plain_files_are_not() {
        let mut h = HEADER.to_vec();
        h.extend_from_slice(&[0x10, 0x00, 2, 2]);
        assert_eq!(parse_header(&h), Some(HeaderInfo { page_size: 4096, wal: true }));
        h[16..18].copy_from_slice(&[0, 1]);
        h[18] = 1;
        h[19] = 1;
        assert_eq!(parse_header(&h), Some(HeaderInfo { page_size: 65536, wal: false }));
        h[16..18].copy_from_slice(&[0x03, 0x00]); // 768: not a power of two
        assert_eq!(parse_header(&h), None);
        assert_eq!(parse_header(b"SQLite format 3\0"), None, "too short to hold a page size");
        assert_eq!(parse_header(b"SQLite format 2\0\x10\0\x01\x01"), None);
        assert_eq!(parse_header(b"{\"hello\": \"world\"}\n"), None);
    }

    #[test]
    fn sidecar_names() {
        assert_eq!(sidecar_base(b"openclaw.sqlite-wal"), Some((&b"openclaw.sqlite"[..], "-wal")));
        assert_eq!(sidecar_base(b"m.db-shm"), Some((&b"m.db"[..], "-shm")));
        assert_eq!(sidecar_base(b"x-journal"), Some((&b"x"[..], "-journal")));
        assert_eq!(sidecar_base(b"-wal"), None);
        assert_eq!(sidecar_base(b"notes.md"), None);
        assert_eq!(sidecar(Path::new("/a/b.sqlite"), "-wal"), Path::new("/a/b.sqlite-wal"));
    }

    #[test]
    fn a_live_wal_database_is_imaged_with_its_uncheckpointed_transactions() {
        let (d, db, w) = live_wal_db();
        let tmp = TempDir::new_in(&d);
        let img = image(&db, &tmp).unwrap();
        assert_eq!(img.opened_as, OpenedAs::ReadOnly);
        assert_eq!(count(img.path()), 550);
        assert_eq!(img.size, std::fs::metadata(img.path()).unwrap().len());
        assert!(sniff(&File::open(img.path()).unwrap()).is_some());
        let p = img.path().to_path_buf();
        drop(img);
        assert!(!p.exists(), "the image is deleted with its handle");
        drop(w);
        let tmp_path = tmp.path().to_path_buf();
        drop(tmp);
        assert!(!tmp_path.exists(), "the temporary folder is removed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The image [`with_image`] hands over, read whole.
    fn read_whole(db: &Path, tmp: &TempDir) -> Result<std::io::Result<(Vec<u8>, ImageInfo)>, ImageError> {
        with_image(db, tmp, |r, info| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| (v, info))
        })
    }

    /// The image [`with_image`] hands over, read whole, written to `out`.
    fn take(db: &Path, tmp: &TempDir, out: &Path) -> ImageInfo {
        let (bytes, info) = read_whole(db, tmp).unwrap().unwrap();
        assert_eq!(bytes.len() as u64, info.size);
        std::fs::write(out, bytes).unwrap();
        info
    }

    #[test]
    fn a_live_wal_database_streams_with_its_uncheckpointed_transactions() {
        let (d, db, w) = live_wal_db();
        let tmp = TempDir::new_in(&d);
        let out = d.join("out.sqlite");
        let info = take(&db, &tmp, &out);
        // Fails in a build of SQLite without `sqlite_dbpage` (see .cargo/config.toml).
        assert!(info.streamed, "a WAL database is streamed, not copied");
        assert_eq!((info.opened_as, info.page_size), (OpenedAs::ReadOnly, 4096));
        assert_eq!(count(&out), 550);
        assert!(!tmp.path().exists(), "no scratch copy was made");
        drop(w);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_streamed_image_holds_what_was_committed_when_it_began() {
        // A writer rewrites every row, adds more and checkpoints while the image is half read:
        // the image must still be the database as it was, whole and consistent.
        let d = scratch();
        let db = d.join("memory.sqlite");
        let w = make_db(&db, true, 3000);
        w.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=4").unwrap();
        let tmp = TempDir::new_in(&d);
        let (bytes, info) = with_image(&db, &tmp, |r, info| -> std::io::Result<_> {
            let mut v = vec![0u8; info.size as usize / 2];
            r.read_exact(&mut v)?;
            let tx = w.unchecked_transaction().unwrap();
            tx.execute("UPDATE t SET v = 'rewritten ' || v", []).unwrap();
            for i in 0..3000 {
                tx.execute("INSERT INTO t(v) VALUES (?1)", [format!("new {i} {}", "y".repeat(200))]).unwrap();
            }
            tx.commit().unwrap();
            w.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).unwrap();
            r.read_to_end(&mut v)?;
            Ok((v, info))
        })
        .unwrap()
        .unwrap();
        assert!(info.streamed);
        assert_eq!(bytes.len() as u64, info.size);
        let out = d.join("out.sqlite");
        std::fs::write(&out, bytes).unwrap();
        assert_eq!(count(&out), 3000);
        let c = Connection::open_with_flags(&out, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM t WHERE v LIKE 'rewritten %'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "nothing of the later transaction");
        drop(c);
        assert_eq!(count(&db), 6000, "the writer was not held up");
        drop(w);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_rollback_journal_database_goes_through_a_scratch_copy() {
        let d = scratch();
        let db = d.join("jobs.db");
        let w = make_db(&db, false, 200);
        let tmp = TempDir::new_in(&d);
        let out = d.join("out.db");
        let info = take(&db, &tmp, &out);
        assert!(!info.streamed, "a rollback-mode writer would wait for as long as the stream");
        assert_eq!(info.size, std::fs::metadata(&db).unwrap().len());
        assert_eq!(count(&out), 200);
        assert_eq!(names(tmp.path()), Vec::<String>::new(), "the scratch copy is deleted once read");
        drop((w, tmp));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_closed_wal_database_streams_and_is_left_as_it_was() {
        let d = scratch();
        let db = d.join("memory.sqlite");
        drop(make_db(&db, true, 100));
        let before = names(&d);
        let md = std::fs::metadata(&db).unwrap();
        let tmp = TempDir::new_in(&std::env::temp_dir());
        // (In a folder of its own: reading the copy back leaves its -wal and -shm beside it.)
        let o = scratch();
        let out = o.join("out.sqlite");
        let info = take(&db, &tmp, &out);
        assert_eq!((info.opened_as, info.streamed), (OpenedAs::QueryOnly, true));
        assert_eq!(count(&out), 100);
        assert_eq!(names(&d), before, "no -wal or -shm left behind");
        let md2 = std::fs::metadata(&db).unwrap();
        assert_eq!((md.len(), md.mtime(), md.mtime_nsec()), (md2.len(), md2.mtime(), md2.mtime_nsec()));
        std::fs::remove_dir_all(&o).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_closed_wal_database_is_left_as_it_was() {
        let d = scratch();
        let db = d.join("memory.sqlite");
        drop(make_db(&db, true, 100));
        let before = names(&d);
        assert_eq!(before, vec!["memory.sqlite"], "SQLite removes its sidecars on the last close");
        let md = std::fs::metadata(&db).unwrap();
        let tmp = TempDir::new_in(&std::env::temp_dir());
        let img = image(&db, &tmp).unwrap();
        assert_eq!(img.opened_as, OpenedAs::QueryOnly);
        assert_eq!(count(img.path()), 100);
        assert_eq!(names(&d), before, "no -wal or -shm left behind");
        let md2 = std::fs::metadata(&db).unwrap();
        assert_eq!((md.len(), md.mtime(), md.mtime_nsec()), (md2.len(), md2.mtime(), md2.mtime_nsec()));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_rollback_journal_database_is_imaged_read_only() {
        let d = scratch();
        let db = d.join("jobs.db");
        let w = make_db(&db, false, 200);
        let tmp = TempDir::new_in(&d);
        let img = image(&db, &tmp).unwrap();
        assert_eq!(img.opened_as, OpenedAs::ReadOnly);
        assert_eq!(count(img.path()), 200);
        assert_eq!(img.size, std::fs::metadata(&db).unwrap().len(), "same pages, same size");
        drop(img);
        drop(w);
        drop(tmp);
        assert_eq!(names(&d), vec!["jobs.db"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Root ignores permission bits, so a read-only folder is not read-only for it. As root (CI
    /// runs as root), runs the test `name` again in a child process of this test binary that drops
    /// to uid and gid 65534 before the test body, asserts that it ran and passed, and returns false
    /// (the caller has nothing left to do). Otherwise, and in that child, returns true.
    fn unprivileged(name: &str) -> bool {
        const VAR: &str = "CLAWBACK_TEST_UNPRIVILEGED";
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return true;
        }
        if std::env::var_os(VAR).is_some() {
            // SAFETY: plain syscalls with constant arguments (glibc applies them to every thread):
            // supplementary groups first, then the group, then the user, for good.
            let dropped = unsafe {
                libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(65534) == 0 && libc::setuid(65534) == 0
            };
            assert!(dropped, "cannot drop to uid 65534: {}", std::io::Error::last_os_error());
            return true;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(&exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(VAR, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} as uid 65534 ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        false
    }

    #[test]
    fn a_wal_database_in_a_read_only_folder_is_imaged_immutable() {
        if !unprivileged("openclaw::sqlite::tests::a_wal_database_in_a_read_only_folder_is_imaged_immutable") {
            return;
        }
        // SAFETY: geteuid has no preconditions.
        assert_ne!(unsafe { libc::geteuid() }, 0, "permission bits bind only a user other than root");
        let d = scratch();
        let ro = d.join("ro");
        std::fs::create_dir(&ro).unwrap();
        let db = ro.join("a.sqlite");
        drop(make_db(&db, true, 50));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let tmp = TempDir::new_in(&d);
        let r = image(&db, &tmp);
        let out = d.join("out.sqlite");
        let streamed = read_whole(&db, &tmp);
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        let img = r.unwrap();
        assert_eq!(img.opened_as, OpenedAs::Immutable);
        assert_eq!(count(img.path()), 50);
        drop(img);
        let (bytes, info) = streamed.unwrap().unwrap();
        assert_eq!((info.opened_as, info.streamed), (OpenedAs::Immutable, true));
        std::fs::write(&out, bytes).unwrap();
        assert_eq!(count(&out), 50);
        drop(tmp);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_database_with_a_hot_journal_is_not_imaged() {
        // A writer that died mid-transaction: half its pages in the file, the old ones in the
        // journal. Only a read-write connection may roll it back; reading the file alone
        // (immutable) would see half a transaction. The caller stores both files as they are.
        let d = scratch();
        let live = d.join("live.db");
        let c = make_db(&live, false, 2000);
        c.execute_batch("PRAGMA cache_size=2; BEGIN; UPDATE t SET v = 'changed ' || v;").unwrap();
        let crash = d.join("crash");
        std::fs::create_dir(&crash).unwrap();
        std::fs::copy(&live, crash.join("a.db")).unwrap();
        std::fs::copy(sidecar(&live, "-journal"), crash.join("a.db-journal")).unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        let before = (std::fs::read(crash.join("a.db")).unwrap(), std::fs::read(crash.join("a.db-journal")).unwrap());
        let tmp = TempDir::new_in(&d);
        let e = image(&crash.join("a.db"), &tmp).unwrap_err();
        assert!(e.0.contains("readonly"), "{e}");
        let after = (std::fs::read(crash.join("a.db")).unwrap(), std::fs::read(crash.join("a.db-journal")).unwrap());
        assert!(before == after, "both files are untouched");
        drop((c, tmp));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_that_only_looks_like_a_database_is_refused() {
        let d = scratch();
        let p = d.join("fake.db");
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&[0x10, 0x00, 1, 1]);
        bytes.extend(std::iter::repeat_n(0xA5u8, 8192));
        std::fs::write(&p, &bytes).unwrap();
        let tmp = TempDir::new_in(&d);
        let e = image(&p, &tmp).unwrap_err();
        assert!(!e.0.is_empty());
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "the file is untouched");
        drop(tmp);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_change_stamp_moves_with_the_wal() {
        let d = scratch();
        let db = d.join("s.sqlite");
        let w = make_db(&db, true, 10);
        w.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
        let s1 = change_stamp(&db, &std::fs::symlink_metadata(&db).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        w.execute("INSERT INTO t(v) VALUES ('more')", []).unwrap();
        let md = std::fs::symlink_metadata(&db).unwrap();
        let s2 = change_stamp(&db, &md);
        assert!(s2 > s1, "a commit into the WAL moves the stamp ({s1} -> {s2})");
        assert!(s2 > ctime_ns(&md), "the database file itself did not change");
        drop(w);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_immutable_copy_reads_through_the_uri_with_an_awkward_name() {
        // The fallback path, forced, on a name the URI must escape.
        let d = scratch();
        let db = d.join("we?ird #name %1.sqlite");
        drop(make_db(&db, false, 30));
        let c = open_source(&db, OpenedAs::Immutable).unwrap();
        let dest = d.join("copy.sqlite");
        assert!(copy(&c, &dest).unwrap() > 0);
        assert_eq!(count(&dest), 30);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn folders_left_by_dead_processes_are_swept() {
        let d = scratch();
        // A pid far above any pid_max is never alive; our own pid is.
        let dead = d.join("clawback-sqlite-2147483000-00000000000000aa");
        let alive = d.join(format!("clawback-sqlite-{}-00000000000000bb", std::process::id()));
        let other = d.join("clawback-sqlite-notapid");
        for p in [&dead, &alive, &other] {
            std::fs::create_dir_all(p).unwrap();
            std::fs::write(p.join("image-0.sqlite"), b"x").unwrap();
        }
        sweep_stale(&d);
        assert!(!dead.exists());
        assert!(alive.exists() && other.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn uris_escape_what_they_must() {
        assert_eq!(uri(Path::new("/a b/c?d#e%.db"), "immutable=1"), "file:/a%20b/c%3Fd%23e%25.db?immutable=1");
    }
}
