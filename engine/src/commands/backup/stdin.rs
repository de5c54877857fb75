//! A command's standard output stored as one file of a snapshot (`backup --stdin-from-command CMD
//! --stdin-filename NAME`), for database dumps: the command runs under `sh -c`, its output is cut
//! into chunks as it arrives (never held whole in memory) and the file is grafted into the
//! snapshot's tree at NAME. A command that exits non-zero or is killed fails the backup.

use super::file::ReadErr;
use super::node::now_ns;
use super::Ctx;
use crate::error::{Error, Result};
use crate::format::id::{DataId, TreeId};
use crate::format::tree::{Node, NodeKind, Tree};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;

/// One command whose output becomes the file `filename` in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StdinCommand {
    /// Run with `sh -c`.
    pub command: String,
    /// Where the file goes in the snapshot: an absolute path (a relative one is taken from `/`).
    pub filename: String,
}

/// How much of the command's standard error is kept for the error message.
const STDERR_TAIL: usize = 4096;

impl StdinCommand {
    /// The file's path in the snapshot, cleaned: absolute, no `.`/`..`, at least one component.
    pub fn path(&self) -> Result<PathBuf> {
        let mut out = PathBuf::from("/");
        for c in Path::new(&self.filename).components() {
            match c {
                Component::Normal(n) => {
                    Node::check_name(n.as_bytes()).map_err(|_| {
                        Error::Usage(format!("--stdin-filename {:?} is not a usable path", self.filename))
                    })?;
                    out.push(n)
                }
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::Usage(format!(
                        "--stdin-filename {:?} must not contain `..`; give a path like /dumps/db.sql",
                        self.filename
                    )))
                }
            }
        }
        if out == Path::new("/") {
            return Err(Error::Usage("--stdin-filename needs a file name, like /dumps/db.sql".into()));
        }
        Ok(out)
    }

    /// The path's components as bytes (for grafting into the tree).
    pub fn components(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self.path()?.components().skip(1).map(|c| c.as_os_str().as_bytes().to_vec()).collect())
    }

    /// Starts the command: stdin from /dev/null, stdout piped to the reader, stderr kept (its last
    /// line goes into the error if the command fails). It gets its own process group so that a
    /// failed backup can stop everything it started.
    pub fn spawn(&self) -> Result<Running> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Other(format!("cannot run --stdin-from-command {:?}: {e}", self.command)))?;
        let stdout = File::from(OwnedFd::from(child.stdout.take().expect("piped stdout")));
        let mut err = child.stderr.take().expect("piped stderr");
        let tail = std::thread::spawn(move || {
            let mut tail: Vec<u8> = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 2 * STDERR_TAIL {
                            tail.drain(..tail.len() - STDERR_TAIL);
                        }
                    }
                }
            }
            tail
        });
        Ok(Running { command: self.command.clone(), child, stdout: Some(stdout), tail: Some(tail) })
    }
}

/// A started command: read [`Running::stdout`] to its end, then [`Running::finish`].
pub struct Running {
    command: String,
    child: Child,
    stdout: Option<File>,
    tail: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Running {
    /// The command's standard output (a pipe).
    pub fn stdout(&self) -> &File {
        self.stdout.as_ref().expect("stdout taken only by finish")
    }

    /// Waits for the command and fails unless it exited with status 0. The message names the
    /// command, its exit status (or signal) and the last line it wrote to standard error.
    pub fn finish(mut self) -> Result<()> {
        self.stdout = None; // a command still writing gets EPIPE instead of blocking forever
        let status = self.child.wait().map_err(|e| Error::Other(format!("waiting for {:?}: {e}", self.command)))?;
        let tail = self.tail.take().and_then(|t| t.join().ok()).unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => format!("failed ({status})"),
        };
        let last = last_line(&tail);
        let said =
            if last.is_empty() { String::from("it wrote nothing to stderr") } else { format!("its stderr: {last}") };
        Err(Error::Other(format!("--stdin-from-command {:?} {how} ({said}); no snapshot was written", self.command)))
    }
}

impl Drop for Running {
    /// A backup that stops early (repository error) does not leave the command running.
    fn drop(&mut self) {
        if self.tail.is_some() {
            self.stdout = None;
            if let Ok(None) = self.child.try_wait() {
                // SAFETY: kill(2) on the process group the child leads; no memory is involved.
                unsafe { libc::kill(-(self.child.id() as i32), libc::SIGTERM) };
            }
            let _ = self.child.wait();
        }
    }
}

/// The last non-empty line of `bytes`, trimmed, at most 300 characters.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("");
    line.chars().take(300).collect()
}

/// A stream's file node: mode 0600, owned by the current user, mtime now.
pub(crate) fn file_node(name: Vec<u8>, content: Vec<DataId>, size: u64, now_ns: i64) -> Node {
    Node { mode: 0o600, size, content, ..dir_or_file(name, NodeKind::File, now_ns) }
}

/// A folder made up to hold a stream's file (no such folder was backed up): mode 0700, mtime now.
pub(crate) fn virtual_dir(name: Vec<u8>, now_ns: i64) -> Node {
    Node { mode: 0o700, ..dir_or_file(name, NodeKind::Dir, now_ns) }
}

fn dir_or_file(name: Vec<u8>, kind: NodeKind, now_ns: i64) -> Node {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    super::node::made_up_node(name, kind, 0, uid, gid, now_ns)
}

/// Refuses a stream whose file would land inside (or on, or above) a backed-up path: the two
/// would fight over the same entries of the tree.
pub(crate) fn check_overlap(streams: &[StdinCommand], paths: &[PathBuf]) -> Result<()> {
    let mut seen: Vec<PathBuf> = Vec::new();
    for s in streams {
        let p = s.path()?;
        if let Some(b) = paths.iter().find(|b| p.starts_with(b) || b.starts_with(&p)) {
            return Err(Error::Usage(format!(
                "--stdin-filename {} overlaps the backed-up path {}; choose a name outside it (like /dumps/db.sql)",
                p.display(),
                b.display()
            )));
        }
        if seen.iter().any(|q| p.starts_with(q) || q.starts_with(&p)) {
            return Err(Error::Usage(format!("--stdin-filename {} is given twice", p.display())));
        }
        seen.push(p);
    }
    Ok(())
}

/// Puts `file` into `tree` at `comps` (the last one is the file's name), making the folders on
/// the way. A folder already in the tree is opened with `load` and stored again with `store`.
pub(crate) fn graft(
    mut tree: Tree,
    comps: &[Vec<u8>],
    file: Node,
    now_ns: i64,
    load: &dyn Fn(&TreeId) -> Result<Tree>,
    store: &dyn Fn(&Tree) -> Result<TreeId>,
) -> Result<Tree> {
    let (first, rest) = comps.split_first().ok_or_else(|| Error::Usage("empty --stdin-filename".into()))?;
    let at = tree.nodes.iter().position(|n| &n.name == first);
    if rest.is_empty() {
        if at.is_some() {
            return Err(Error::Usage(format!(
                "--stdin-filename: {} is already in the snapshot",
                String::from_utf8_lossy(first)
            )));
        }
        let mut nodes = tree.nodes;
        nodes.push(Node { name: first.clone(), ..file });
        return Ok(Tree::new(nodes));
    }
    let (mut dir, sub) = match at {
        Some(i) => {
            let n = tree.nodes.remove(i);
            let Some(id) = n.subtree.filter(|_| n.kind == NodeKind::Dir) else {
                return Err(Error::Usage(format!(
                    "--stdin-filename: {} is a file in the snapshot, not a folder",
                    n.name_lossy()
                )));
            };
            let sub = load(&id)?;
            (n, sub)
        }
        None => (virtual_dir(first.clone(), now_ns), Tree::new(Vec::new())),
    };
    let sub = graft(sub, rest, file, now_ns, load, store)?;
    dir.subtree = Some(store(&sub)?);
    let mut nodes = tree.nodes;
    nodes.push(dir);
    Ok(Tree::new(nodes))
}

/// The file at `comps` in a snapshot's tree, if there is one (to count the stream as new,
/// changed or unmodified against the parent snapshot).
pub(crate) fn find_file(root: &Tree, comps: &[Vec<u8>], load: &dyn Fn(&TreeId) -> Result<Tree>) -> Option<Node> {
    let (first, rest) = comps.split_first()?;
    let n = root.find(first)?;
    if rest.is_empty() {
        return (n.kind == NodeKind::File).then(|| n.clone());
    }
    let sub = load(n.subtree.as_ref()?).ok()?;
    find_file(&sub, rest, load)
}

impl Ctx<'_> {
    /// Runs each stream command and stores its output, cut into chunks as it arrives. Returns each
    /// file's path components and node; a command that fails fails the backup.
    pub(super) fn read_streams(
        &self,
        cmds: &[StdinCommand],
        parent: Option<&Tree>,
    ) -> Result<Vec<(Vec<Vec<u8>>, Node)>> {
        let mut out = Vec::new();
        for c in cmds {
            let comps = c.components()?;
            let path = c.path()?;
            let running = c.spawn()?;
            let (ids, len) = match self.read_chunked(running.stdout(), &path, None, None) {
                Ok(r) => r,
                Err(ReadErr::Io(e)) => return Err(Error::Other(format!("reading the output of {:?}: {e}", c.command))),
                Err(ReadErr::Fatal(e)) => return Err(e),
            };
            running.finish()?;
            self.c.total_files.fetch_add(1, Relaxed);
            let load = |id: &TreeId| self.repo.load_tree(id);
            let pnode = parent.and_then(|t| find_file(t, &comps, &load));
            let node = file_node(Vec::new(), ids, len, now_ns());
            match &pnode {
                Some(p) if p.content == node.content => {
                    self.c.files_unmodified.fetch_add(1, Relaxed);
                    self.c.total_bytes.fetch_add(len, Relaxed);
                    self.progress.files_done.fetch_add(1, Relaxed);
                }
                _ => self.count_read(&node, pnode.as_ref()),
            }
            out.push((comps, node));
        }
        Ok(out)
    }

    /// Puts the streams' files into the root tree.
    pub(super) fn graft_streams(&self, mut root: Tree, streams: Vec<(Vec<Vec<u8>>, Node)>) -> Result<Tree> {
        let load = |id: &TreeId| match self.virtual_trees.lock().get(id) {
            Some(t) => Ok(t.clone()),
            None => self.repo.load_tree(id),
        };
        let store = |t: &Tree| self.store_tree(t, None);
        for (comps, node) in streams {
            root = graft(root, &comps, node, now_ns(), &load, &store)?;
        }
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn cmd(c: &str, f: &str) -> StdinCommand {
        StdinCommand { command: c.into(), filename: f.into() }
    }

    #[test]
    fn paths_are_cleaned_and_checked() {
        assert_eq!(cmd("x", "dumps/pg.sql").path().unwrap(), PathBuf::from("/dumps/pg.sql"));
        assert_eq!(cmd("x", "/a/./b").path().unwrap(), PathBuf::from("/a/b"));
        assert!(cmd("x", "/a/../b").path().is_err());
        assert!(cmd("x", "/").path().is_err());
        assert!(cmd("x", "").path().is_err());
    }

    #[test]
    fn overlaps_are_refused() {
        let paths = vec![PathBuf::from("/data/x")];
        assert!(check_overlap(&[cmd("x", "/data/x/db.sql")], &paths).is_err());
        assert!(check_overlap(&[cmd("x", "/data")], &paths).is_err());
        assert!(check_overlap(&[cmd("x", "/data/db.sql")], &paths).is_ok());
        assert!(check_overlap(&[cmd("x", "/a/b"), cmd("y", "/a/b")], &[]).is_err());
    }

    #[test]
    fn streams_output_and_reports_failure() {
        let r = cmd("printf 'hello'; echo oops >&2", "/x").spawn().unwrap();
        let mut out = String::new();
        r.stdout().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        r.finish().unwrap();

        let r = cmd("echo partial; echo 'first'>&2; echo 'pg_dump: error: no such database' >&2; exit 3", "/x")
            .spawn()
            .unwrap();
        let mut out = String::new();
        r.stdout().read_to_string(&mut out).unwrap();
        let e = r.finish().unwrap_err().to_string();
        assert!(e.contains("exited with status 3"), "{e}");
        assert!(e.contains("pg_dump: error: no such database"), "{e}");

        let r = cmd("kill -9 $$", "/x").spawn().unwrap();
        let e = r.finish().unwrap_err().to_string();
        assert!(e.contains("killed by signal 9"), "{e}");
    }

    #[test]
    fn grafts_into_existing_and_new_folders() {
        let store_map: RefCell<HashMap<TreeId, Tree>> = RefCell::new(HashMap::new());
        let counter = RefCell::new(0u8);
        let store = |t: &Tree| -> Result<TreeId> {
            *counter.borrow_mut() += 1;
            let id = TreeId([*counter.borrow(); 32]);
            store_map.borrow_mut().insert(id, t.clone());
            Ok(id)
        };
        let load = |id: &TreeId| -> Result<Tree> { Ok(store_map.borrow().get(id).cloned().unwrap()) };
        let existing = Tree::new(vec![file_node(b"keep".to_vec(), vec![], 0, 1)]);
        let eid = store(&existing).unwrap();
        let mut d = virtual_dir(b"dumps".to_vec(), 1);
        d.subtree = Some(eid);
        let root = Tree::new(vec![d]);
        let f = file_node(Vec::new(), vec![], 5, 2);
        let root = graft(root, &[b"dumps".to_vec(), b"pg.sql".to_vec()], f.clone(), 2, &load, &store).unwrap();
        let sub = load(&root.find(b"dumps").unwrap().subtree.unwrap()).unwrap();
        assert!(sub.find(b"keep").is_some());
        assert_eq!(sub.find(b"pg.sql").unwrap().size, 5);
        let found = find_file(&root, &[b"dumps".to_vec(), b"pg.sql".to_vec()], &load).unwrap();
        assert_eq!(found.mode, 0o600);
        let root = graft(root, &[b"new".to_vec(), b"r.rdb".to_vec()], f.clone(), 2, &load, &store).unwrap();
        assert_eq!(root.find(b"new").unwrap().mode, 0o700);
        assert!(graft(root, &[b"dumps".to_vec(), b"pg.sql".to_vec()], f, 2, &load, &store).is_err());
    }
}
