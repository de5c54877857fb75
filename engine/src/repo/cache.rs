//! The local cache: a SQLite database holding the index files, the snapshot list and decrypted trees
//! (the per-file metadata that change detection compares against); the blob table built from the
//! index files lives beside it ([`crate::repo::blobtable`]). It is only a cache: every table is
//! rebuilt from the repository when missing or out of date, so deleting it loses nothing.

use crate::error::{Error, Result};
use crate::format::id::TreeId;
use crate::format::index::IndexFile;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Where caches live unless `--cache-dir` says: `$XDG_CACHE_HOME/clawback`, else
/// `~/.cache/clawback`.
pub fn default_cache_base() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("clawback");
    }
    crate::repo::host::home_dir().join(".cache").join("clawback")
}

pub struct Cache {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Trees put but not written yet: they go in one transaction per [`TREE_BATCH`] bytes (a
    /// transaction per folder was a tenth of a first backup's CPU time with 64,000 folders).
    trees: Mutex<PendingTrees>,
}

#[derive(Default)]
struct PendingTrees {
    trees: Vec<(TreeId, Vec<u8>)>,
    bytes: usize,
}

/// 1 MiB: a few dozen transactions for a first backup of 100,000 files, and at most 1 MiB (plus
/// the batch being written) of a backup's memory (4 MiB batches held 6 MiB at its peak).
const TREE_BATCH: usize = 1 << 20;

/// 2: index files are kept whole, one row each (1 had a row per blob: inserting 200,000 rows at
/// random places in a B-tree took a sixth of a first backup's CPU time).
const SCHEMA_VERSION: i64 = 2;

impl Cache {
    /// Opens (creating if needed) the cache database in `dir` (created 0700).
    pub fn open(dir: &Path) -> Result<Cache> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create cache folder", dir, e))?;
        let path = dir.join("cache.db");
        // The cache holds decrypted trees and snapshots: private to its owner, like the folder.
        // SQLite gives its -wal and -shm files the database's permissions.
        let private = |p: &Path| {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let _ = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(p);
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
        };
        private(&path);
        let c = Self::open_db(&path);
        let c = match c {
            Ok(c) => c,
            // A damaged cache is thrown away and rebuilt: it only ever holds copies.
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                private(&path);
                Self::open_db(&path)?
            }
        };
        Ok(Cache { conn: Mutex::new(c), path, trees: Mutex::default() })
    }

    /// The cache's folder (`<cache base>/<repo id>/`): besides `cache.db` it holds the blob table
    /// (`repo::blobtable`) and the sealed compression dictionaries (`dicts/`, see `repo::dicts`).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn open_db(path: &Path) -> Result<Connection> {
        let e = |source| Error::Cache { path: path.to_path_buf(), source };
        let c = Connection::open(path).map_err(e)?;
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;").map_err(e)?;
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(e)?;
        if v != SCHEMA_VERSION {
            c.execute_batch(
                "DROP TABLE IF EXISTS indexes; DROP TABLE IF EXISTS packs; DROP TABLE IF EXISTS blobs;
                 DROP TABLE IF EXISTS index_files; DROP TABLE IF EXISTS snapshots; DROP TABLE IF EXISTS trees;
                 CREATE TABLE index_files (id TEXT PRIMARY KEY, blobs INTEGER NOT NULL, data BLOB NOT NULL);
                 CREATE TABLE snapshots (id TEXT PRIMARY KEY, json BLOB NOT NULL);
                 CREATE TABLE trees (id BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;",
            )
            .map_err(e)?;
            c.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(e)?;
        }
        Ok(c)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Cache { path: self.path.clone(), source }
    }

    /// The names of the cached index files.
    pub fn index_names(&self) -> Result<Vec<String>> {
        let c = self.conn.lock();
        let mut st = c.prepare("SELECT id FROM index_files").map_err(self.err())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// A cached index file; `None` when it is not cached or its row does not decode (the caller
    /// reads it from the repository again).
    pub fn index_file(&self, id: &str) -> Result<Option<IndexFile>> {
        let c = self.conn.lock();
        let mut st = c.prepare_cached("SELECT data FROM index_files WHERE id = ?1").map_err(self.err())?;
        let data: Option<Vec<u8>> = st.query_row(params![id], |r| r.get(0)).optional().map_err(self.err())?;
        Ok(data.and_then(|d| postcard::from_bytes::<IndexFile>(&d).ok()))
    }

    /// Forgets these index files (gone from the repository, e.g. after a prune, or unreadable).
    pub fn forget_indexes(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.lock();
        let tx = c.transaction().map_err(self.err())?;
        {
            let mut del = tx.prepare_cached("DELETE FROM index_files WHERE id = ?1").map_err(self.err())?;
            for id in ids {
                del.execute(params![id]).map_err(self.err())?;
            }
        }
        tx.commit().map_err(self.err())
    }

    pub fn add_index(&self, id: &str, f: &IndexFile) -> Result<()> {
        self.add_index_plain(id, f, &f.plain())
    }

    /// [`Cache::add_index`] with the file's plain encoding made already.
    pub fn add_index_plain(&self, id: &str, f: &IndexFile, data: &[u8]) -> Result<()> {
        let blobs = f.packs.iter().map(|p| p.blobs.len() as i64).sum::<i64>();
        self.conn
            .lock()
            .execute(
                "INSERT OR REPLACE INTO index_files (id, blobs, data) VALUES (?1, ?2, ?3)",
                params![id, blobs, data],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn snapshots(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let c = self.conn.lock();
        let mut st = c.prepare("SELECT id, json FROM snapshots").map_err(self.err())?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    pub fn put_snapshot(&self, id: &str, json: &[u8]) -> Result<()> {
        self.conn
            .lock()
            .execute("INSERT OR REPLACE INTO snapshots (id, json) VALUES (?1, ?2)", params![id, json])
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        self.conn.lock().execute("DELETE FROM snapshots WHERE id = ?1", params![id]).map(|_| ()).map_err(self.err())
    }

    pub fn get_tree(&self, id: &TreeId) -> Result<Option<Vec<u8>>> {
        self.flush_trees()?;
        let c = self.conn.lock();
        let mut st = c.prepare_cached("SELECT data FROM trees WHERE id = ?1").map_err(self.err())?;
        st.query_row(params![&id.0[..]], |r| r.get(0)).optional().map_err(self.err())
    }

    /// Keeps a tree; it is written with the next batch (at the latest when the cache is dropped).
    pub fn put_tree(&self, id: &TreeId, data: &[u8]) -> Result<()> {
        let full = {
            let mut p = self.trees.lock();
            p.trees.push((*id, data.to_vec()));
            p.bytes += data.len();
            p.bytes >= TREE_BATCH
        };
        if full {
            self.flush_trees()?;
        }
        Ok(())
    }

    /// Writes the trees put so far, in one transaction.
    pub fn flush_trees(&self) -> Result<()> {
        let PendingTrees { trees, .. } = std::mem::take(&mut *self.trees.lock());
        if trees.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.lock();
        let tx = c.transaction().map_err(self.err())?;
        {
            let mut st =
                tx.prepare_cached("INSERT OR IGNORE INTO trees (id, data) VALUES (?1, ?2)").map_err(self.err())?;
            for (id, data) in &trees {
                st.execute(params![&id.0[..], data]).map_err(self.err())?;
            }
        }
        tx.commit().map_err(self.err())
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        // Only a cache: trees that cannot be written are read from the repository next time.
        let _ = self.flush_trees();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob::BlobType;
    use crate::format::id::{BlobId, PackId};
    use crate::format::index::IndexPack;
    use crate::format::pack::PackEntry;

    fn file(n: u8) -> IndexFile {
        let blobs = (0..3)
            .map(|i| PackEntry {
                ty: BlobType::Data,
                id: BlobId([n + i; 32]),
                offset: 10 * i as u32,
                length: 10,
                raw_length: 9,
            })
            .collect();
        IndexFile { version: 1, supersedes: vec![], packs: vec![IndexPack { id: PackId([n; 32]), size: 30, blobs }] }
    }

    fn cached(c: &Cache) -> Vec<(String, Option<IndexFile>)> {
        let mut v: Vec<_> =
            c.index_names().unwrap().into_iter().map(|n| (n.clone(), c.index_file(&n).unwrap())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn index_files_are_kept_whole_and_forgotten_by_name() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        assert_eq!(c.dir(), d.path());
        c.add_index("a", &file(1)).unwrap();
        c.add_index("b", &file(7)).unwrap();
        c.add_index("b", &file(7)).unwrap();
        assert_eq!(cached(&c), vec![("a".into(), Some(file(1))), ("b".into(), Some(file(7)))]);
        assert_eq!(c.index_file("c").unwrap(), None);

        // A row that does not decode is reported as such, for the caller to read the file again.
        c.conn.lock().execute("UPDATE index_files SET data = x'ff' WHERE id = 'b'", []).unwrap();
        assert_eq!(cached(&c)[1], ("b".into(), None));
        c.forget_indexes(&["b".into()]).unwrap();
        assert_eq!(cached(&c), vec![("a".into(), Some(file(1)))]);

        // Reopened, it holds the same; a cache of another schema version is emptied.
        drop(c);
        let c = Cache::open(d.path()).unwrap();
        assert_eq!(cached(&c).len(), 1);
        c.conn.lock().pragma_update(None, "user_version", 1).unwrap();
        drop(c);
        assert!(cached(&Cache::open(d.path()).unwrap()).is_empty());
    }

    #[test]
    fn trees_put_are_read_back_before_and_after_they_are_written() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        c.put_tree(&TreeId([1; 32]), b"one").unwrap();
        assert_eq!(c.get_tree(&TreeId([1; 32])).unwrap().as_deref(), Some(&b"one"[..]));
        c.put_tree(&TreeId([2; 32]), b"two").unwrap();
        drop(c);
        let c = Cache::open(d.path()).unwrap();
        assert_eq!(c.get_tree(&TreeId([2; 32])).unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(c.get_tree(&TreeId([3; 32])).unwrap(), None);
        // A batch is written once it is large.
        let big = vec![7u8; TREE_BATCH];
        c.put_tree(&TreeId([4; 32]), &big).unwrap();
        assert!(c.trees.lock().trees.is_empty());
    }
}
