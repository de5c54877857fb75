//! The mount model without FUSE: top folders, names, attributes, reads across chunk boundaries,
//! the chunk cache's cap, and new snapshots showing up.

use super::*;
use crate::backend::local::LocalBackend;
use crate::commands::backup::{backup, BackupOptions};
use crate::format::chunker::ChunkParams;
use crate::progress::Progress;
use crate::repo::{CacheOptions, InitOptions, Secret};
use chrono::{TimeZone, Utc};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn repo(t: &Path) -> Repository {
    let be: Arc<dyn crate::backend::Backend> = Arc::new(LocalBackend::new(t.join("repo")));
    let pw = Secret(b"pw".to_vec());
    let mut opts = InitOptions::default();
    opts.kdf.m_cost = 1024;
    opts.kdf.t_cost = 1;
    // Small chunks, so a file of a few hundred KiB spans several.
    opts.chunker = ChunkParams { min: 16 << 10, avg: 32 << 10, max: 64 << 10 };
    Repository::init(be.clone(), &pw, &opts).unwrap();
    Repository::open(be, &pw, &CacheOptions { dir: None, disabled: true }).unwrap()
}

fn snap(repo: &Repository, src: &Path, host: &str, tags: &[&str], secs: i64) {
    let bo = BackupOptions {
        paths: vec![src.to_path_buf()],
        host: Some(host.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        time: Some(Utc.timestamp_opt(1_780_000_000 + secs, 0).unwrap()),
        ..Default::default()
    };
    backup(repo, &bo, &Progress::default()).unwrap();
}

/// Follows `path` (components) from the root.
fn walk(b: &Browse, path: &str) -> FsResult<Attr> {
    let mut a = b.getattr(ROOT)?;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        a = b.lookup(a.ino, c.as_bytes())?;
    }
    Ok(a)
}

fn names(b: &Browse, path: &str) -> Vec<String> {
    let a = walk(b, path).unwrap();
    b.readdir(a.ino).unwrap().1.into_iter().map(|(_, n)| String::from_utf8(n).unwrap()).collect()
}

fn read_all(b: &Browse, ino: u64, step: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let d = b.read(ino, out.len() as u64, step).unwrap();
        if d.is_empty() {
            return out;
        }
        out.extend_from_slice(&d);
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn top_folders_name_snapshots_by_time_host_tag_and_id() {
    let t = tempfile::tempdir().unwrap();
    let r = repo(t.path());
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"one").unwrap();
    snap(&r, &src, "alpha", &["daily"], 0);
    snap(&r, &src, "beta", &["daily", "weekly"], 0); // the same second: disambiguated
    snap(&r, &src, "alpha", &[], 65);
    let ids: Vec<String> = r.snapshots().unwrap().iter().map(|(id, _)| id.to_hex()).collect();
    let b = Browse::new(r, DEFAULT_CACHE_BYTES);

    assert_eq!(names(&b, "/"), ["hosts", "ids", "snapshots", "tags"]);
    let t0 = "2026-05-28T20:26:40Z";
    let t1 = "2026-05-28T20:27:45Z";
    let mut snaps = names(&b, "snapshots");
    snaps.sort();
    assert_eq!(snaps, [t0.to_string(), format!("{t0}-1"), t1.into(), "latest".into()]);
    assert_eq!(names(&b, "hosts"), ["alpha", "beta"]);
    assert_eq!(names(&b, "hosts/alpha").len(), 3, "two snapshots and latest");
    assert_eq!(names(&b, "tags"), ["daily", "weekly"]);
    assert_eq!(names(&b, "tags/weekly").len(), 2);
    let mut short = names(&b, "ids");
    short.sort();
    let mut want: Vec<String> = ids.iter().map(|h| h[..8].to_string()).collect();
    want.sort();
    assert_eq!(short, want);

    let latest = walk(&b, "snapshots/latest").unwrap();
    assert_eq!(latest.kind, EntryKind::Symlink);
    assert_eq!(b.readlink(latest.ino).unwrap(), t1.as_bytes());
    let tl = walk(&b, "tags/daily/latest").unwrap();
    assert!(b.readlink(tl.ino).unwrap().starts_with(t0.as_bytes()));
    let root = walk(&b, &format!("snapshots/{t1}")).unwrap();
    assert_eq!((root.kind, root.mtime_ns), (EntryKind::Dir, (1_780_000_065i64) * 1_000_000_000));
    // The same path keeps its inode; a missing name is ENOENT; a file is no folder.
    assert_eq!(walk(&b, &format!("snapshots/{t1}")).unwrap().ino, root.ino);
    assert!(matches!(walk(&b, "snapshots/nope"), Err(FsError::NotFound)));
    let p = format!("ids/{}{}/a", &ids[0][..8], src.display());
    let a = walk(&b, &p).unwrap();
    assert!(matches!(b.lookup(a.ino, b"x"), Err(FsError::NotDir)));
    assert!(matches!(b.read(root.ino, 0, 10), Err(FsError::IsDir)));
    assert_eq!(read_all(&b, a.ino, 4096), b"one");
}

#[test]
fn files_read_back_with_their_metadata_across_chunks() {
    let t = tempfile::tempdir().unwrap();
    let r = repo(t.path());
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    let big = noise(700 << 10, 7);
    std::fs::write(src.join("d/big"), &big).unwrap();
    std::fs::set_permissions(src.join("d/big"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::hard_link(src.join("d/big"), src.join("twin")).unwrap();
    std::os::unix::fs::symlink("d/big", src.join("link")).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    filetime::set_file_mtime(src.join("empty"), filetime::FileTime::from_unix_time(1_600_000_000, 5)).unwrap();
    snap(&r, &src, "h", &[], 0);
    let b = Browse::new(r, 256 << 10);
    let at = format!("snapshots/latest/{}", src.display());
    // `latest` is a symlink: the model follows it the way the kernel would, by its target's name.
    let latest = b.readlink(walk(&b, "snapshots/latest").unwrap().ino).unwrap();
    let at = at.replace("latest", std::str::from_utf8(&latest).unwrap());

    let f = walk(&b, &format!("{at}/d/big")).unwrap();
    let meta = std::fs::metadata(src.join("d/big")).unwrap();
    assert_eq!((f.kind, f.size, f.perm, f.nlink), (EntryKind::File, big.len() as u64, 0o640, 2));
    assert_eq!((f.uid, f.gid), (meta.uid(), meta.gid()));
    assert_eq!(f.mtime_ns, meta.mtime() * 1_000_000_000 + meta.mtime_nsec());
    b.open(f.ino).unwrap();
    assert!(b.node(f.ino).map(|(_, _, c)| matches!(c, Content::File(ref x) if x.ids.len() > 4)).unwrap());
    // Odd read sizes cross chunk boundaries; reads past the end are empty.
    assert_eq!(read_all(&b, f.ino, 131_071), big);
    assert_eq!(b.read(f.ino, 100_000, 50_000).unwrap(), &big[100_000..150_000]);
    assert!(b.read(f.ino, big.len() as u64, 10).unwrap().is_empty());
    assert!(b.chunks.lock().bytes <= 256 << 10, "the chunk cache keeps to its cap");

    let l = walk(&b, &format!("{at}/link")).unwrap();
    assert_eq!((l.kind, l.size), (EntryKind::Symlink, 5));
    assert_eq!(b.readlink(l.ino).unwrap(), b"d/big");
    let e = walk(&b, &format!("{at}/empty")).unwrap();
    assert_eq!((e.size, e.mtime_ns), (0, 1_600_000_000_000_000_005));
    assert!(b.read(e.ino, 0, 10).unwrap().is_empty());
    let (_, list) = b.readdir(walk(&b, &at).unwrap().ino).unwrap();
    let listed: Vec<&[u8]> = list.iter().map(|(_, n)| n.as_slice()).collect();
    assert_eq!(listed, [&b"d"[..], b"empty", b"link", b"twin"]);
}

#[test]
fn new_snapshots_appear_after_the_refresh_interval() {
    let t = tempfile::tempdir().unwrap();
    let be: Arc<dyn crate::backend::Backend> = Arc::new(LocalBackend::new(t.path().join("repo")));
    let r = repo(t.path());
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"one").unwrap();
    snap(&r, &src, "h", &[], 0);
    let b = Browse::new(r, DEFAULT_CACHE_BYTES);
    assert_eq!(names(&b, "snapshots").len(), 2);
    // Another process adds one.
    let other = Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap();
    snap(&other, &src, "h", &[], 10);
    std::thread::sleep(REFRESH);
    assert_eq!(names(&b, "snapshots").len(), 3);
    let l = walk(&b, "snapshots/latest").unwrap();
    assert_eq!(b.readlink(l.ino).unwrap(), b"2026-05-28T20:26:50Z");
}

#[test]
fn the_chunk_cache_drops_the_least_recently_used() {
    let mut c = ChunkCache::new(10);
    let id = |n: u8| DataId([n; 32]);
    c.put(id(1), Arc::new(vec![0; 4]));
    c.put(id(2), Arc::new(vec![0; 4]));
    assert!(c.get(&id(1)).is_some());
    c.put(id(3), Arc::new(vec![0; 4])); // 12 > 10: the least recently used (2) goes
    assert!(c.get(&id(2)).is_none());
    assert!(c.get(&id(1)).is_some() && c.get(&id(3)).is_some());
    assert_eq!(c.bytes, 8);
}
