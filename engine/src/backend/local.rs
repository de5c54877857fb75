//! A repository in a local directory. Objects are written to a temporary file in the destination
//! folder, fsynced, then hard-linked to their final name (which fails if it exists, so nothing is
//! overwritten) and the temporary name removed; the folder is fsynced after. Files are 0600,
//! folders 0700.

pub mod location;

use super::{Backend, Kind, ObjectName};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, kind: Kind, name: &str) -> PathBuf {
        match kind {
            Kind::Config => self.root.clone(),
            // Packs fan out into 256 folders by their first two hex digits.
            Kind::Pack => self.root.join("data").join(name.get(..2).unwrap_or("00")),
            k => self.root.join(k.dir()),
        }
    }

    /// Stores `name` atomically: `fill` writes and syncs a temporary file beside it, which is then
    /// linked to the final name (an existing name stays as it was: `AlreadyExists`) and removed.
    fn place(&self, name: &ObjectName, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        let dest = self.path(name);
        let dir = dest.parent().unwrap().to_path_buf();
        if !dir.exists() {
            mkdir(&dir)?;
        }
        let tmp = dir.join(format!(".tmp-{}-{}", name, rand::random::<u64>()));
        let res = fill(&tmp).and_then(|()| {
            crate::failpoint::hit("local:before-link");
            fs::hard_link(&tmp, &dest)
        });
        let _ = fs::remove_file(&tmp);
        res?;
        fsync_dir(&dir);
        Ok(())
    }

    fn path(&self, name: &ObjectName) -> PathBuf {
        self.dir_of(name.kind(), name.as_str()).join(name.as_str())
    }
}

fn mkdir(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

fn fsync_dir(p: &Path) {
    if let Ok(d) = File::open(p) {
        let _ = d.sync_all();
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> io::Result<()> {
        if self.root.join("config").exists() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "config exists"));
        }
        mkdir(&self.root)?;
        for k in [Kind::Key, Kind::Pack, Kind::Index, Kind::Snapshot, Kind::Lock] {
            mkdir(&self.root.join(k.dir()))?;
        }
        for i in 0..256 {
            mkdir(&self.root.join("data").join(format!("{i:02x}")))?;
        }
        Ok(())
    }

    fn read(&self, name: &ObjectName) -> io::Result<Vec<u8>> {
        fs::read(self.path(name))
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_range_into(name, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(&self, name: &ObjectName, offset: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut f = File::open(self.path(name))?;
        let size = f.metadata()?.len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len} beyond object size {size}"),
            ));
        }
        f.seek(SeekFrom::Start(offset))?;
        // Into the buffer's own memory, which is neither zeroed nor given back first.
        buf.clear();
        buf.reserve_exact(len as usize);
        (&mut f).take(len).read_to_end(buf)?;
        if buf.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len}: the object ended after {} bytes", buf.len()),
            ));
        }
        Ok(())
    }

    fn write(&self, name: &ObjectName, data: &[u8]) -> io::Result<()> {
        self.place(name, |tmp| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
            if data.len() > 1 {
                // A crash mid-write leaves half a temporary file.
                f.write_all(&data[..data.len() / 2])?;
                crate::failpoint::hit("local:mid-write");
                f.write_all(&data[data.len() / 2..])?;
            } else {
                f.write_all(data)?;
            }
            f.sync_all()
        })
    }

    /// Links the file into place when it is on the repository's filesystem (no copy), else copies
    /// it a block at a time; either way through a temporary name, as `write`.
    fn write_file(&self, name: &ObjectName, path: &Path) -> io::Result<()> {
        self.place(name, |tmp| {
            if fs::hard_link(path, tmp).is_ok() {
                crate::failpoint::hit("local:mid-write");
                File::open(tmp)?.sync_all()
            } else {
                let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
                io::copy(&mut File::open(path)?, &mut f)?;
                crate::failpoint::hit("local:mid-write");
                f.sync_all()
            }
        })
    }

    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        let mut out = Vec::new();
        let mut scan = |dir: &Path| -> io::Result<()> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for e in rd {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let Some(name) = ObjectName::listed(kind, name) else { continue };
                let md = e.metadata()?;
                if md.is_file() {
                    out.push((name, md.len()));
                }
            }
            Ok(())
        };
        match kind {
            Kind::Config => {
                if let Ok(md) = fs::metadata(self.root.join("config")) {
                    out.push((ObjectName::config(), md.len()));
                }
            }
            Kind::Pack => {
                let data = self.root.join("data");
                if let Ok(rd) = fs::read_dir(&data) {
                    for sub in rd.flatten() {
                        if sub.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                            scan(&sub.path())?;
                        }
                    }
                }
            }
            k => scan(&self.root.join(k.dir()))?,
        }
        out.sort();
        Ok(out)
    }

    fn size(&self, name: &ObjectName) -> io::Result<u64> {
        Ok(fs::metadata(self.path(name))?.len())
    }

    fn delete(&self, name: &ObjectName) -> io::Result<()> {
        let p = self.path(name);
        fs::remove_file(&p)?;
        fsync_dir(p.parent().unwrap());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_read_list_delete() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path().join("repo"));
        b.create().unwrap();
        let name = ObjectName::of(&crate::format::id::PackId([0xab; 32]));
        b.write(&name, b"hello world").unwrap();
        assert_eq!(b.write(&name, b"other").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(b.read(&name).unwrap(), b"hello world");
        assert_eq!(b.read_range(&name, 6, 5).unwrap(), b"world");
        assert!(b.read_range(&name, 6, 50).is_err());
        assert_eq!(b.list(Kind::Pack).unwrap(), vec![(name.clone(), 11)]);
        let mode = fs::metadata(d.path().join("repo/data/ab").join(name.as_str())).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
        b.delete(&name).unwrap();
        assert!(b.list(Kind::Pack).unwrap().is_empty());
        // Files whose names could not be an object are not listed.
        fs::write(d.path().join("repo/index/.tmp-x"), b"x").unwrap();
        fs::write(d.path().join("repo/index/a b"), b"x").unwrap();
        assert!(b.list(Kind::Index).unwrap().is_empty());
    }

    #[test]
    fn a_range_is_read_into_the_callers_buffer() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path().join("repo"));
        b.create().unwrap();
        let name = ObjectName::of(&crate::format::id::PackId([0xcd; 32]));
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        b.write(&name, &body).unwrap();
        // A buffer holding more than the range before: afterwards exactly the range, in the same
        // memory.
        let mut buf = vec![7u8; 4096];
        let at = buf.as_ptr();
        b.read_range_into(&name, 100, 3000, &mut buf).unwrap();
        assert_eq!(buf, &body[100..3100]);
        assert_eq!(buf.as_ptr(), at, "read into the buffer it was given");
        b.read_range_into(&name, 4990, 10, &mut buf).unwrap();
        assert_eq!(buf, &body[4990..]);
        let e = b.read_range_into(&name, 4990, 11, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // Through the retry decorator, as a repository opens it.
        let r = crate::backend::retry::Retry::new(
            std::sync::Arc::new(LocalBackend::new(d.path().join("repo"))),
            crate::backend::retry::RetryPolicy::from_env(),
        );
        let mut buf = Vec::with_capacity(64);
        let at = buf.as_ptr();
        r.read_range_into(&name, 0, 64, &mut buf).unwrap();
        assert_eq!((&buf[..], buf.as_ptr()), (&body[..64], at));
    }
}
