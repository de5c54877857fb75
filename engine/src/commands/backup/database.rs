//! SQLite databases (found by their header, whatever their name) are stored as consistent images
//! read through SQLite in one read transaction ([`crate::openclaw::sqlite`]), not copied as files.
//! The node keeps the file's own metadata, with the image's size; the `-wal`, `-shm` and
//! `-journal` files are then not stored (they are listed in `skipped`): what they hold that matters
//! is in the image. A database is reused from the parent snapshot when its mtime and inode, and its
//! change stamp ([`sqlite::change_stamp`]: the newest of its ctime and its `-wal`/`-journal`
//! mtimes, recorded as the node's ctime), are unchanged. One that cannot be imaged (damaged, locked
//! for longer than [`sqlite::BUSY_TIMEOUT`], unreadable sidecars) is stored as a plain copy with its
//! sidecars, so a restore gives back what was on disk, and is listed in `warnings`.

use super::file::ReadErr;
use super::node::now_ns;
use super::Ctx;
use crate::error::Result;
use crate::format::chunker::ChunkParams;
use crate::format::tree::{Node, NodeKind};
use crate::openclaw::sqlite;
use std::fs::Metadata;
use std::path::Path;

/// A database whose change stamp is this close to the moment its image began may have been
/// written again within the same timestamp tick; it is marked so the next backup images it again.
const RACY_NS: i64 = 2_000_000_000;

/// What became of a database.
pub(super) enum DbOutcome {
    Node(Node),
    /// Not imaged: store it as a plain file (the warning is recorded).
    Plain,
}

impl Ctx<'_> {
    /// A SQLite database: reused from the parent when its change stamp says nothing was written
    /// since, else stored as a consistent image. `node` carries the file's own metadata.
    pub(super) fn process_database(
        &self,
        path: &Path,
        mut node: Node,
        md: &Metadata,
        pnode: Option<&Node>,
    ) -> Result<DbOutcome> {
        let stamp = sqlite::change_stamp(path, md);
        if let Some(p) = pnode {
            if !self.force
                && p.kind == NodeKind::File
                && p.mtime_ns == node.mtime_ns
                && p.ino == node.ino
                && p.ctime_ns == stamp
                && p.content.iter().all(|id| self.reusable_blob(id))
            {
                node.ctime_ns = stamp;
                self.imaged.lock().insert(path.to_path_buf());
                return Ok(DbOutcome::Node(self.reuse(node, p)));
            }
        }
        let began = now_ns();
        let plain = |e: &dyn std::fmt::Display| {
            self.issue(
                &self.warnings,
                path,
                format!("no consistent SQLite image ({e}); stored as a plain copy, with its -wal/-journal files"),
            );
            Ok(DbOutcome::Plain)
        };
        let params = self.chunker.params();
        let read = sqlite::with_image(path, &self.sqlite_tmp, |r, info| {
            self.read_chunked(r, path, Some(page_chunk_size(params, info.page_size)), Some(info.size))
        });
        let (ids, len) = match read {
            Ok(Ok(r)) => r,
            Err(e) => return plain(&e),
            Ok(Err(ReadErr::Io(e))) => return plain(&e),
            Ok(Err(ReadErr::Fatal(e))) => return Err(e),
        };
        node.content = ids;
        node.size = len;
        // The stamp goes into the node's ctime (ctime is never restored). When it is too recent to
        // trust, a value the next backup cannot see makes it take a new image.
        node.ctime_ns = if stamp >= began.saturating_sub(RACY_NS) { stamp - 1 } else { stamp };
        self.imaged.lock().insert(path.to_path_buf());
        self.count_read(&node, pnode);
        Ok(DbOutcome::Node(node))
    }
}

/// The fixed chunk size of a database image: whole pages (pages never move, so a changed page
/// changes only its chunk), about the chunker's smallest chunk. Import cuts databases the same
/// way, so an imported database and a later backup of it share their chunks.
pub(crate) fn page_chunk_size(params: ChunkParams, page_size: u32) -> usize {
    let page = page_size.max(512) as usize;
    (params.min as usize).div_ceil(page).max(1) * page
}
