//! The FUSE side of `mount` (the `fuser` crate, its own mount code through `fusermount3`: no
//! libfuse at build time): kernel requests become calls on [`Browse`], its errors errnos. Mounts
//! read-only and serves until the caller's stop flag is set or someone unmounts it.

use super::{Attr, Browse, EntryKind, FsError};
use crate::error::{Error, Result};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// How long the kernel may keep what it was told. The top folders change as snapshots come and
/// go; a snapshot's own entries never change, but their inodes are shared with the top folders'
/// answers, so one short time for all keeps it simple and correct.
const TTL: Duration = Duration::from_secs(1);

/// Threads answering the kernel: a slow chunk fetch must not hold up a listing.
const THREADS: usize = 4;

struct Adapter(Arc<Browse>);

fn errno(e: &FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::IsDir => Errno::EISDIR,
        FsError::NotLink => Errno::EINVAL,
        FsError::Io(_) => Errno::EIO,
    }
}

fn kind(k: EntryKind) -> FileType {
    match k {
        EntryKind::Dir => FileType::Directory,
        EntryKind::File => FileType::RegularFile,
        EntryKind::Symlink => FileType::Symlink,
    }
}

fn time(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: time(a.mtime_ns),
        mtime: time(a.mtime_ns),
        ctime: time(a.ctime_ns),
        crtime: time(a.mtime_ns),
        kind: kind(a.kind),
        perm: a.perm as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

impl Filesystem for Adapter {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.0.lookup(parent.0, name.as_bytes()) {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.0.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.0.open(ino.0) {
            // A file's content never changes under its inode: the kernel may keep its pages.
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.read(ino.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let (parent, entries) = match self.0.readdir(ino.0) {
            Ok(x) => x,
            Err(e) => return reply.error(errno(&e)),
        };
        let dots = [(ino.0, FileType::Directory, &b"."[..]), (parent, FileType::Directory, &b".."[..])];
        let all = dots.into_iter().chain(entries.iter().map(|(a, n)| (a.ino, kind(a.kind), n.as_slice())));
        for (i, (ino, k, name)) in all.enumerate().skip(offset as usize) {
            // The offset given is where the next call starts.
            if reply.add(INodeNo(ino), i as u64 + 1, k, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }
}

/// How the mount ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// `stop` said so; the mount was taken down.
    Stopped,
    /// Someone else unmounted it (`fusermount3 -u`, `umount`).
    Unmounted,
}

/// Mounts `fs` read-only at `mountpoint` and serves it until `stop` says so (checked ten times a
/// second; then it unmounts) or it is unmounted from outside.
pub fn serve(fs: Browse, mountpoint: &Path, stop: &dyn Fn() -> bool) -> Result<Ended> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName("clawback".into()),
        MountOption::Subtype("clawback".into()),
    ];
    config.n_threads = Some(THREADS);
    let session = fuser::spawn_mount(Adapter(Arc::new(fs)), mountpoint, &config).map_err(|e| {
        Error::Other(format!(
            "cannot mount at {}: {e}; FUSE needs /dev/fuse and, when not root, fusermount3 (Debian: apt-get install fuse3)",
            mountpoint.display()
        ))
    })?;
    loop {
        if session.guard.is_finished() {
            session.join().map_err(|e| Error::Other(format!("serving {}: {e}", mountpoint.display())))?;
            return Ok(Ended::Unmounted);
        }
        if stop() {
            session.umount_and_join().map_err(|e| Error::Other(format!("unmounting {}: {e}", mountpoint.display())))?;
            return Ok(Ended::Stopped);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
