//! Change detection and reading a file into chunks. A file whose size, mtime, ctime and inode
//! match the parent snapshot's node is not read again. A file whose size, mtime or ctime moves
//! while it is read (a transcript being appended) is read again, at most [`MAX_REREADS`] times;
//! if it keeps moving, what the last read got is stored (for an appended file, a prefix holding
//! at least what was there when the backup reached it), its node's size is that length, and it is
//! listed in `changed`. The chunks of each read batch are hashed, compressed and encrypted in
//! parallel; formats that are compressed already are stored without trying zstd.

use super::database::DbOutcome;
use super::node::{ctime_ns, mtime_ns, node_from_meta};
use super::Ctx;
use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::dict::Family;
use crate::format::id::DataId;
use crate::format::tree::{Node, NodeKind};
use crate::openclaw::sqlite;
use crate::repo::prefetch::ReadAhead;
use rayon::prelude::*;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

/// How many times a file that changed while it was read is read again.
pub const MAX_REREADS: usize = 3;

/// Bytes of file read per batch; the chunks of a batch are processed in parallel. Each walker
/// thread holds one batch: 1 MiB (8 chunks of the average size, enough for 2 cores, and two
/// maximal chunks) keeps that at 4 MiB with four workers (2 MiB batches held 8.4 MiB of a first
/// backup's peak, and 8 MiB batches 40 MiB).
pub(crate) const BATCH: usize = 1 << 20;

/// What one stable (or last) read of a file gave.
pub(super) struct ReadOut {
    ids: Vec<DataId>,
    len: u64,
    /// The file's metadata when the last read began.
    meta: Metadata,
    reads: usize,
    stable: bool,
}

impl Ctx<'_> {
    /// The parent's node for this file when its content can be reused as is.
    pub(super) fn reusable<'p>(&self, node: &Node, pnode: Option<&'p Node>) -> Option<&'p Node> {
        pnode.filter(|p| !self.force && p.same_file_meta(node) && p.content.iter().all(|id| self.reusable_blob(id)))
    }

    pub(super) fn reuse(&self, mut node: Node, p: &Node) -> Node {
        node.content = p.content.clone();
        node.size = p.size;
        self.c.files_unmodified.fetch_add(1, Relaxed);
        self.c.total_bytes.fetch_add(node.size, Relaxed);
        self.progress.add_done(1, node.size);
        node
    }

    /// A regular file. `has_sidecar`: a `-wal`/`-shm`/`-journal` sits beside it, so if it is a
    /// database its own metadata cannot tell whether it changed, and its sidecars wait to learn
    /// whether it was stored as an image.
    pub(super) fn process_file(
        &self,
        path: &Path,
        name: Vec<u8>,
        md: &Metadata,
        pnode: Option<&Node>,
        has_sidecar: bool,
    ) -> Result<Option<Node>> {
        if self.progress.stopped() {
            return Err(Error::Interrupted);
        }
        let node = node_from_meta(name, NodeKind::File, md);
        self.c.total_files.fetch_add(1, Relaxed);
        if !has_sidecar {
            if let Some(p) = self.reusable(&node, pnode) {
                return Ok(Some(self.reuse(node, p)));
            }
        }
        let f: File = match crate::repo::prefetch::open_to_read(path, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.issue(&self.skipped, path, "vanished during the backup");
                return Ok(None);
            }
            Err(e) => {
                self.issue(&self.errors, path, e);
                return Ok(None);
            }
        };
        // A database is at least one 512-byte page: smaller files are not sniffed.
        if md.len() >= 512 && sqlite::sniff(&f).is_some() {
            match self.process_database(path, node.clone(), md, pnode)? {
                DbOutcome::Node(n) => return Ok(Some(n)),
                DbOutcome::Plain => {}
            }
        } else if has_sidecar {
            if let Some(p) = self.reusable(&node, pnode) {
                return Ok(Some(self.reuse(node, p)));
            }
        }
        let out = match self.read_stable(&f, path, md) {
            Ok(o) => o,
            Err(ReadErr::Io(e)) => {
                self.issue(&self.errors, path, e);
                return Ok(None);
            }
            Err(ReadErr::Fatal(e)) => return Err(e),
        };
        let mut node = node_from_meta(node.name, NodeKind::File, &out.meta);
        node.content = out.ids;
        node.size = out.len;
        if !out.stable {
            self.issue(
                &self.changed,
                path,
                format!(
                    "changed while being read ({} reads); stored the {} bytes the last read got (for a file being \
                     appended, a prefix)",
                    out.reads, out.len
                ),
            );
        }
        self.count_read(&node, pnode);
        Ok(Some(node))
    }

    pub(super) fn count_read(&self, node: &Node, pnode: Option<&Node>) {
        if let Some(p) = pnode {
            self.c.files_changed.fetch_add(1, Relaxed);
            if p.content != node.content {
                self.c.files_content_changed.fetch_add(1, Relaxed);
            }
        } else {
            self.c.files_new.fetch_add(1, Relaxed);
        }
        self.c.total_bytes.fetch_add(node.size, Relaxed);
        self.progress.files_done.fetch_add(1, Relaxed);
    }

    /// Reads a file, again while its size, mtime or ctime moved during the read (at most
    /// [`MAX_REREADS`] times more). `md`, the file's metadata from before it was opened, stands
    /// for the first read's "before": a change since shows as one during the read.
    pub(super) fn read_stable(&self, f: &File, path: &Path, md: &Metadata) -> Result<ReadOut, ReadErr> {
        let mut reads = 0;
        loop {
            reads += 1;
            let before = if reads == 1 { md.clone() } else { f.metadata()? };
            if reads > 1 {
                let mut r = f;
                r.seek(SeekFrom::Start(0))?;
            }
            // A file longer than a batch: the next batches are asked for while this one is cut.
            let ahead = if before.len() > BATCH as u64 { 2 * BATCH as u64 } else { 0 };
            let (ids, len) = self.read_chunked(ReadAhead::new(f, ahead), path, None, Some(before.len()))?;
            let after = f.metadata()?;
            let stable = same_stat(&before, &after);
            if stable || reads > MAX_REREADS {
                return Ok(ReadOut { ids, len, meta: before, reads, stable });
            }
        }
    }

    /// Reads a file to its end, storing the chunks that are new; cuts fixed-size chunks when
    /// `fixed` is given (database images: pages never move, so page-aligned chunks keep a changed
    /// page from changing more than its chunk). `len`: how long the stream is expected to be, if
    /// known (it sizes the batches). Returns the chunk ids and the number of bytes read.
    pub(super) fn read_chunked(
        &self,
        r: impl Read,
        path: &Path,
        fixed: Option<usize>,
        len: Option<u64>,
    ) -> Result<(Vec<DataId>, u64), ReadErr> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let batch = len.map_or(BATCH, |l| l.min(BATCH as u64) as usize).max(64 << 10);
        let mut ids = Vec::new();
        let keys = self.repo.keys();
        // Compression is skipped for formats that are compressed already, and for the rest of a
        // file whose first new chunk did not compress (media, archives, encrypted data).
        let mut level = if incompressible_name(path) { 0 } else { self.level };
        let mut decided = level == 0;
        // Database images are pages, not text: not the family their name would say, and at the
        // default level one level lower (`PAGE_LEVEL`).
        let family = match fixed {
            Some(_) => {
                if level == crate::repo::DEFAULT_COMPRESSION {
                    level = PAGE_LEVEL;
                }
                Family::Other
            }
            None => Family::of_name(path.file_name().map(|n| n.as_bytes()).unwrap_or_default()),
        };
        let read = BUF.with(|b| {
            // Take the buffer out so nested rayon work on this thread gets its own.
            let mut buf = std::mem::take(&mut *b.borrow_mut());
            let each = |data: &[u8], cuts: &[std::ops::Range<usize>]| -> Result<(), ReadErr> {
                if self.progress.stopped() {
                    return Err(ReadErr::Fatal(Error::Interrupted));
                }
                self.c.bytes_read.fetch_add(cuts.last().map(|r| r.end).unwrap_or(0) as u64, Relaxed);
                let work = |r: &std::ops::Range<usize>| -> Result<(DataId, Option<bool>)> {
                    let chunk = &data[r.clone()];
                    let id = keys.data_id(chunk);
                    let compressed = self
                        .writer
                        .store_as(BlobType::Data, id.blob(), chunk, level, family)?
                        .map(|n| n < chunk.len() + crate::format::crypto::OVERHEAD + 1);
                    self.progress.bytes_done.fetch_add(chunk.len() as u64, Relaxed);
                    Ok((id, compressed))
                };
                let got: Vec<Result<(DataId, Option<bool>)>> =
                    if cuts.len() > 1 { cuts.par_iter().map(work).collect() } else { cuts.iter().map(work).collect() };
                for g in got {
                    let (id, compressed) = g.map_err(ReadErr::Fatal)?;
                    if let (false, Some(c)) = (decided, compressed) {
                        decided = true;
                        if !c {
                            level = 0;
                        }
                    }
                    ids.push(id);
                }
                Ok(())
            };
            let r = match fixed {
                Some(size) => crate::format::chunker::for_each_fixed(r, &mut buf, batch, size, each),
                None => self.chunker.for_each_batch::<_, ReadErr>(r, &mut buf, batch, each),
            };
            // (A larger buffer, from a file whose chunks came out maximal, is given back.)
            if buf.capacity() <= BATCH {
                *b.borrow_mut() = buf;
            }
            r
        })?;
        Ok((ids, read))
    }
}

/// The zstd level of database pages when the repository has the default level (3). Measured on
/// the 87 MB of pages (OpenClaw's agent, memory and state databases, embeddings included) of a
/// 500 MB generated home, each 32 KiB page chunk compressed on one core with the home's "other"
/// dictionary: level 3 stored 41.39 MB in 0.34-0.35 s, level 2 41.84 MB (+1.1%) in 0.24-0.25 s
/// (three runs each). Pages are numbers and short rows, where level 3's second hash table finds
/// little that level 2 misses; on text it finds much more (JSON transcripts: +5% at level 2).
const PAGE_LEVEL: i32 = 2;

/// The same file, unchanged: inode, size, mtime and ctime.
pub(super) fn same_stat(a: &Metadata, b: &Metadata) -> bool {
    a.ino() == b.ino() && a.len() == b.len() && mtime_ns(a) == mtime_ns(b) && ctime_ns(a) == ctime_ns(b)
}

/// File types that are compressed already; zstd would only burn time on them.
pub(super) fn incompressible_name(path: &Path) -> bool {
    const EXT: &[&str] = &[
        "jpg", "jpeg", "png", "gif", "webp", "heic", "avif", "mp3", "mp4", "m4a", "m4v", "mov", "mkv", "webm", "ogg",
        "oga", "opus", "flac", "aac", "zip", "gz", "tgz", "zst", "xz", "bz2", "7z", "rar", "jar", "whl", "apk",
        "woff2",
    ];
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) => EXT.iter().any(|x| e.eq_ignore_ascii_case(x)),
        None => false,
    }
}

/// A read that failed: `Io` on the file (the file is skipped and listed), `Fatal` in the
/// repository (the operation stops). Shared by backup and import.
pub(crate) enum ReadErr {
    Io(std::io::Error),
    Fatal(Error),
}

impl From<std::io::Error> for ReadErr {
    fn from(e: std::io::Error) -> Self {
        ReadErr::Io(e)
    }
}
