//! The local cache: a SQLite database holding the blob index, the snapshot list and decrypted trees
//! (the per-file metadata that change detection compares against). It is only a cache: every table
//! is rebuilt from the repository when missing or out of date, so deleting it loses nothing.

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::{BlobLoc, Index, IndexFile};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub struct Cache {
    conn: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA_VERSION: i64 = 1;

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
        Ok(Cache { conn: Mutex::new(c), path })
    }

    fn open_db(path: &Path) -> Result<Connection> {
        let e = |source| Error::Cache { path: path.to_path_buf(), source };
        let c = Connection::open(path).map_err(e)?;
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;").map_err(e)?;
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(e)?;
        if v != SCHEMA_VERSION {
            c.execute_batch(
                "DROP TABLE IF EXISTS indexes; DROP TABLE IF EXISTS packs; DROP TABLE IF EXISTS blobs;
                 DROP TABLE IF EXISTS snapshots; DROP TABLE IF EXISTS trees;
                 CREATE TABLE indexes (id TEXT PRIMARY KEY);
                 CREATE TABLE packs (pid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, size INTEGER NOT NULL);
                 CREATE TABLE blobs (id BLOB PRIMARY KEY, pack INTEGER NOT NULL, type INTEGER NOT NULL,
                     offset INTEGER NOT NULL, length INTEGER NOT NULL, raw_length INTEGER NOT NULL) WITHOUT ROWID;
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

    pub fn known_indexes(&self) -> Result<HashSet<String>> {
        let c = self.conn.lock();
        let mut st = c.prepare("SELECT id FROM indexes").map_err(self.err())?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Forgets every index entry (when an index file the cache knew has gone, e.g. after prune).
    pub fn clear_index(&self) -> Result<()> {
        self.conn.lock().execute_batch("DELETE FROM indexes; DELETE FROM blobs; DELETE FROM packs;").map_err(self.err())
    }

    pub fn add_index(&self, id: &str, f: &IndexFile) -> Result<()> {
        let mut c = self.conn.lock();
        let tx = c.transaction().map_err(self.err())?;
        {
            let mut ins_pack =
                tx.prepare_cached("INSERT OR IGNORE INTO packs (id, size) VALUES (?1, ?2)").map_err(self.err())?;
            let mut get_pack = tx.prepare_cached("SELECT pid FROM packs WHERE id = ?1").map_err(self.err())?;
            let mut ins_blob = tx
                .prepare_cached("INSERT OR IGNORE INTO blobs (id, pack, type, offset, length, raw_length) VALUES (?1,?2,?3,?4,?5,?6)")
                .map_err(self.err())?;
            for p in &f.packs {
                ins_pack.execute(params![&p.id.0[..], p.size as i64]).map_err(self.err())?;
                let pid: i64 = get_pack.query_row(params![&p.id.0[..]], |r| r.get(0)).map_err(self.err())?;
                for b in &p.blobs {
                    ins_blob
                        .execute(params![&b.id.0[..], pid, b.ty as u8, b.offset, b.length, b.raw_length])
                        .map_err(self.err())?;
                }
            }
            tx.execute("INSERT OR IGNORE INTO indexes (id) VALUES (?1)", params![id]).map_err(self.err())?;
        }
        tx.commit().map_err(self.err())
    }

    pub fn load_index(&self) -> Result<Index> {
        let c = self.conn.lock();
        let mut idx = Index::default();
        let mut map = std::collections::HashMap::new();
        {
            let mut st = c.prepare("SELECT pid, id, size FROM packs").map_err(self.err())?;
            let mut rows = st.query([]).map_err(self.err())?;
            while let Some(r) = rows.next().map_err(self.err())? {
                let pid: i64 = r.get(0).map_err(self.err())?;
                let id: Vec<u8> = r.get(1).map_err(self.err())?;
                let size: i64 = r.get(2).map_err(self.err())?;
                let id = crate::id::ObjectId(id.try_into().map_err(|_| Error::Other("cache: bad pack id".into()))?);
                map.insert(pid, idx.insert_pack(id, size as u64));
            }
        }
        let n: i64 = c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0)).map_err(self.err())?;
        idx.reserve(n as usize);
        let mut st = c.prepare("SELECT id, pack, type, offset, length, raw_length FROM blobs").map_err(self.err())?;
        let mut rows = st.query([]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let id: Vec<u8> = r.get(0).map_err(self.err())?;
            let pid: i64 = r.get(1).map_err(self.err())?;
            let ty: u8 = r.get(2).map_err(self.err())?;
            let (Ok(id), Some(&pack), Some(ty)) = (<[u8; 32]>::try_from(id), map.get(&pid), BlobType::from_u8(ty))
            else {
                return Err(Error::Other("cache: malformed blob row".into()));
            };
            idx.insert_blob(
                BlobId(id),
                BlobLoc {
                    pack,
                    ty,
                    offset: r.get(3).map_err(self.err())?,
                    length: r.get(4).map_err(self.err())?,
                    raw_length: r.get(5).map_err(self.err())?,
                },
            );
        }
        Ok(idx)
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

    pub fn get_tree(&self, id: &BlobId) -> Result<Option<Vec<u8>>> {
        let c = self.conn.lock();
        let mut st = c.prepare_cached("SELECT data FROM trees WHERE id = ?1").map_err(self.err())?;
        st.query_row(params![&id.0[..]], |r| r.get(0)).optional().map_err(self.err())
    }

    pub fn put_tree(&self, id: &BlobId, data: &[u8]) -> Result<()> {
        let c = self.conn.lock();
        let mut st = c.prepare_cached("INSERT OR IGNORE INTO trees (id, data) VALUES (?1, ?2)").map_err(self.err())?;
        st.execute(params![&id.0[..], data]).map(|_| ()).map_err(self.err())
    }
}
