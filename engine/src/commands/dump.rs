//! Dump: write one file of a snapshot to a stream, chunk by chunk, or a folder as a tar stream,
//! without restoring anything to disk. Also the pieces `export` shares: a reader over a file's
//! chunks (a few fetched ahead, in parallel) and the writing of one tree node as a tar entry.

use crate::error::{Error, Result};
use crate::format::id::DataId;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::Repository;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a path names in a snapshot.
pub enum Found {
    /// The snapshot's root (`/`), which has no node of its own.
    Root(Tree),
    Node(Node),
}

/// Looks `path` (absolute, clean) up in the snapshot.
pub fn find(repo: &Repository, snap: &Snapshot, path: &Path) -> Result<Found> {
    let mut tree = repo.load_tree(&snap.tree)?;
    let comps: Vec<&[u8]> = path.components().skip(1).map(|c| c.as_os_str().as_bytes()).collect();
    if comps.is_empty() {
        return Ok(Found::Root(tree));
    }
    for (i, name) in comps.iter().enumerate() {
        let n = tree.find(name).cloned().ok_or_else(|| snap.path_not_held(path))?;
        if i + 1 == comps.len() {
            return Ok(Found::Node(n));
        }
        match &n.subtree {
            Some(id) => tree = repo.load_tree(id)?,
            None => {
                let at: PathBuf = comps[..=i].iter().fold(PathBuf::from("/"), |p, c| p.join(OsStr::from_bytes(c)));
                return Err(Error::Usage(format!("{} is not a folder in the snapshot", at.display())));
            }
        }
    }
    unreachable!()
}

/// How many chunks a `ContentReader` fetches at once.
const READ_AHEAD: usize = 8;

/// Reads a file's content from the repository, a few chunks at a time (fetched in parallel), so
/// memory stays at a few chunks whatever the file's size. Fails if the chunks do not add up to
/// the size the tree records, so a tar stream can never be misaligned.
pub struct ContentReader<'a> {
    repo: &'a Repository,
    ids: &'a [DataId],
    next: usize,
    ready: VecDeque<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    expect: u64,
    done: u64,
    what: String,
}

impl<'a> ContentReader<'a> {
    pub fn new(repo: &'a Repository, node: &'a Node, what: impl Into<String>) -> Self {
        ContentReader {
            repo,
            ids: &node.content,
            next: 0,
            ready: VecDeque::new(),
            cur: Vec::new(),
            pos: 0,
            expect: node.size,
            done: 0,
            what: what.into(),
        }
    }

    fn fill(&mut self) -> Result<()> {
        let end = (self.next + READ_AHEAD).min(self.ids.len());
        let batch = &self.ids[self.next..end];
        let got: Vec<Result<Vec<u8>>> = if batch.len() > 1 {
            batch.par_iter().map(|id| self.repo.read_data(id)).collect()
        } else {
            batch.iter().map(|id| self.repo.read_data(id)).collect()
        };
        for g in got {
            self.ready.push_back(g?);
        }
        self.next = end;
        Ok(())
    }

    fn mismatch(&self) -> std::io::Error {
        std::io::Error::other(format!(
            "{}: its chunks hold {} bytes, its tree entry says {}",
            self.what, self.done, self.expect
        ))
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.ready.is_empty() {
                if self.next == self.ids.len() {
                    if self.done != self.expect {
                        return Err(self.mismatch());
                    }
                    return Ok(0);
                }
                self.fill().map_err(std::io::Error::other)?;
            }
            self.cur = self.ready.pop_front().unwrap_or_default();
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        if self.done + n as u64 > self.expect {
            self.done += n as u64;
            return Err(self.mismatch());
        }
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.done += n as u64;
        Ok(n)
    }
}

/// Writes a file's content to `out`, chunk by chunk. Returns the bytes written.
pub fn dump_file(repo: &Repository, node: &Node, path: &Path, out: &mut dyn Write) -> Result<u64> {
    let mut r = ContentReader::new(repo, node, path.display().to_string());
    std::io::copy(&mut r, out).map_err(|e| match e.kind() {
        std::io::ErrorKind::Other => Error::Other(format!("reading {}: {e}", path.display())),
        _ => Error::io("write", "standard output", e),
    })
}

/// Decimal seconds with a nanosecond fraction, as PAX wants times (`-1.5` is 1.5 s before 1970).
pub fn pax_time(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = (ns as i128).unsigned_abs();
    let (s, f) = (a / 1_000_000_000, a % 1_000_000_000);
    if f == 0 {
        format!("{sign}{s}")
    } else {
        format!("{sign}{s}.{f:09}")
    }
}

/// Parses a PAX time (`123`, `123.5`, `-1.25`) into nanoseconds.
pub fn parse_pax_time(v: &str) -> Option<i64> {
    let (neg, v) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (s, f) = v.split_once('.').unwrap_or((v, ""));
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = s.parse().ok()?;
    let mut frac = 0i64;
    for (i, d) in f.bytes().take(9).enumerate() {
        frac += (d - b'0') as i64 * 10i64.pow(8 - i as u32);
    }
    let ns = secs.checked_mul(1_000_000_000)?.checked_add(frac)?;
    Some(if neg { -ns } else { ns })
}

/// PAX keys under which `export` keeps what a tar header cannot hold: the standard `ctime`, and
/// for hard-linked files star's `SCHILY.*` keys (libarchive and node-tar read them; GNU tar warns
/// that it does not know them, which is why only hard links carry them).
pub const PAX_CTIME: &str = "ctime";
pub const PAX_DEV: &str = "SCHILY.dev";
pub const PAX_INO: &str = "SCHILY.ino";
pub const PAX_NLINK: &str = "SCHILY.nlink";
/// A symlink's own target when the tar entry's had to be rewritten (see `export`); other readers
/// ignore it (GNU tar with a warning).
pub const PAX_TARGET: &str = "CLAWBACK.target";

/// How much of a node's metadata goes into its tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TarMeta {
    /// Mode, owner and mtime (to the nanosecond, in a PAX header when it has a fraction).
    Plain,
    /// Also ctime, and the device, inode and link count of hard-linked files, as PAX keys.
    Full,
}

/// Appends a PAX extended header (`x`) with `records` for the entry named `name`. Its own header
/// is named as GNU tar names it, `<dir>/PaxHeaders/<file>` (in the ustar prefix and name fields,
/// else `PaxHeaders/<file>` cut to the 100-byte name field): node-tar, which `openclaw backup
/// verify` and `restore` read archives with, refuses any header without a name, and the tar
/// crate's `append_pax_extensions` leaves it empty.
/// PAX extended-header records: `<len> <key>=<value>\n` each, where len counts itself.
pub fn pax_records<'a>(records: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut data = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    data
}

pub fn append_pax<W: Write>(b: &mut tar::Builder<W>, name: &[u8], records: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    let data = pax_records(records.iter().map(|(k, v)| (*k, v.as_slice())));
    let name = name.strip_suffix(b"/").unwrap_or(name);
    let (dir, file) = match name.iter().rposition(|&c| c == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&b""[..], name),
    };
    let mut h = tar::Header::new_ustar();
    let mut own = [dir, b"PaxHeaders/", file].concat();
    if h.set_path(Path::new(OsStr::from_bytes(&own))).is_err() {
        h = tar::Header::new_ustar();
        own = [&b"PaxHeaders/"[..], file].concat();
        own.truncate(100);
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..own.len()].copy_from_slice(&own);
    }
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data.as_slice())
}

/// Largest value a GNU header's 8-byte octal owner field holds.
const MAX_OCTAL_ID: u64 = 0o7777777;

/// Appends one node as a tar entry named `name` (relative, `/`-separated; folders get a trailing
/// slash). `link_target` replaces a symlink's target in the entry (its own goes to a PAX key).
pub fn append_node<W: Write>(
    b: &mut tar::Builder<W>,
    repo: &Repository,
    name: &[u8],
    node: &Node,
    meta: TarMeta,
    link_target: Option<&[u8]>,
) -> Result<()> {
    let werr = |e: std::io::Error| Error::io("write", "the tar stream", e);
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if node.mtime_ns.rem_euclid(1_000_000_000) != 0 || node.mtime_ns < 0 {
        pax.push(("mtime", pax_time(node.mtime_ns).into_bytes()));
    }
    if node.uid as u64 > MAX_OCTAL_ID {
        pax.push(("uid", node.uid.to_string().into_bytes()));
    }
    if node.gid as u64 > MAX_OCTAL_ID {
        pax.push(("gid", node.gid.to_string().into_bytes()));
    }
    if meta == TarMeta::Full {
        pax.push((PAX_CTIME, pax_time(node.ctime_ns).into_bytes()));
        if node.kind == NodeKind::File && node.nlink > 1 {
            pax.push((PAX_DEV, node.dev.to_string().into_bytes()));
            pax.push((PAX_INO, node.ino.to_string().into_bytes()));
            pax.push((PAX_NLINK, node.nlink.to_string().into_bytes()));
        }
        if let (NodeKind::Symlink, Some(t)) = (node.kind, link_target) {
            if t != node.target.as_slice() {
                pax.push((PAX_TARGET, node.target.clone()));
            }
        }
    }
    if !pax.is_empty() {
        append_pax(b, name, &pax).map_err(werr)?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(node.mode & 0o7777);
    h.set_uid(if node.uid as u64 > MAX_OCTAL_ID { 0 } else { node.uid as u64 });
    h.set_gid(if node.gid as u64 > MAX_OCTAL_ID { 0 } else { node.gid as u64 });
    h.set_mtime(node.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    let path = Path::new(OsStr::from_bytes(name));
    match node.kind {
        NodeKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            let mut n = name.to_vec();
            n.push(b'/');
            b.append_data(&mut h, Path::new(OsStr::from_bytes(&n)), std::io::empty()).map_err(werr)?;
        }
        NodeKind::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let t = link_target.unwrap_or(&node.target);
            b.append_link(&mut h, path, Path::new(OsStr::from_bytes(t))).map_err(werr)?;
        }
        NodeKind::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(node.size);
            let r = ContentReader::new(repo, node, String::from_utf8_lossy(name).into_owned());
            b.append_data(&mut h, path, r).map_err(|e| match e.kind() {
                std::io::ErrorKind::Other => Error::Other(format!("reading {}: {e}", String::from_utf8_lossy(name))),
                _ => werr(e),
            })?;
        }
    }
    Ok(())
}

/// What `dump_tar` wrote.
#[derive(Clone, Debug, Default)]
pub struct TarStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Writes `path` (a folder, or `/`) and everything under it as a tar stream. Entries are named by
/// their original path without the leading `/` (as `restore --target` lays them out), with modes,
/// owners, mtimes and symlinks; hard links are written as separate files.
pub fn dump_tar<W: Write>(repo: &Repository, snap: &Snapshot, path: &Path, out: W) -> Result<TarStats> {
    let mut b = tar::Builder::new(out);
    let mut st = TarStats::default();
    let rel = |p: &Path| -> Vec<u8> { p.as_os_str().as_bytes().strip_prefix(b"/").unwrap_or_default().to_vec() };
    match find(repo, snap, path)? {
        Found::Root(t) => write_tree(&mut b, repo, &t, Path::new("/"), &rel, &mut st, 0)?,
        Found::Node(n) => {
            append_node(&mut b, repo, &rel(path), &n, TarMeta::Plain, None)?;
            count(&mut st, &n);
            if let Some(id) = &n.subtree {
                let t = repo.load_tree(id)?;
                write_tree(&mut b, repo, &t, path, &rel, &mut st, 1)?;
            }
        }
    }
    let mut out = b.into_inner().map_err(|e| Error::io("write", "the tar stream", e))?;
    out.flush().map_err(|e| Error::io("write", "the tar stream", e))?;
    Ok(st)
}

fn count(st: &mut TarStats, n: &Node) {
    match n.kind {
        NodeKind::File => {
            st.files += 1;
            st.bytes += n.size;
        }
        NodeKind::Dir => st.dirs += 1,
        NodeKind::Symlink => st.symlinks += 1,
    }
}

fn write_tree<W: Write>(
    b: &mut tar::Builder<W>,
    repo: &Repository,
    t: &Tree,
    at: &Path,
    rel: &dyn Fn(&Path) -> Vec<u8>,
    st: &mut TarStats,
    depth: usize,
) -> Result<()> {
    crate::format::tree::check_depth(depth)?;
    for n in &t.nodes {
        let p = at.join(OsStr::from_bytes(&n.name));
        append_node(b, repo, &rel(&p), n, TarMeta::Plain, None)?;
        count(st, n);
        if let Some(id) = &n.subtree {
            let sub = repo.load_tree(id)?;
            write_tree(b, repo, &sub, &p, rel, st, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_headers_are_named_as_gnu_tar_names_them() {
        let long_dir = format!("root/{}", "d".repeat(150));
        let longer_dir = format!("root/{}/{}", "d".repeat(150), "e".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        for dir in ["root/payload", long_dir.as_str(), longer_dir.as_str()] {
            let name = format!("{dir}/file.md");
            append_pax(&mut b, name.as_bytes(), &[("mtime", b"1.5".to_vec()), ("comment", b"a=b".to_vec())]).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for e in ar.entries().unwrap().raw(true) {
            let mut e = e.unwrap();
            assert_eq!(e.header().entry_type(), tar::EntryType::XHeader);
            names.push(e.path_bytes().into_owned());
            let recs: Vec<(String, Vec<u8>)> = e
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap())
                .map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec()))
                .collect();
            assert_eq!(recs, [("mtime".into(), b"1.5".to_vec()), ("comment".into(), b"a=b".to_vec())]);
        }
        assert_eq!(names[0], b"root/payload/PaxHeaders/file.md");
        // In the ustar prefix and name fields when it fits them, else cut to the name field.
        assert_eq!(names[1], format!("{long_dir}/PaxHeaders/file.md").as_bytes());
        assert_eq!(names[2], b"PaxHeaders/file.md");
        assert!(names.iter().all(|n| !n.is_empty()));
    }

    #[test]
    fn pax_times_round_trip() {
        for ns in [0i64, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789, -1, -1_500_000_000, -3_000_000_000] {
            assert_eq!(parse_pax_time(&pax_time(ns)), Some(ns), "{ns} -> {}", pax_time(ns));
        }
        assert_eq!(pax_time(1_500_000_000), "1.500000000");
        assert_eq!(pax_time(-1_500_000_000), "-1.500000000");
        assert_eq!(parse_pax_time("12.5"), Some(12_500_000_000));
        assert_eq!(parse_pax_time("12.1234567899"), Some(12_123_456_789));
        for bad in ["", "x", "1.x", "--1", ".5", "1e3"] {
            assert_eq!(parse_pax_time(bad), None, "{bad:?}");
        }
    }
}
