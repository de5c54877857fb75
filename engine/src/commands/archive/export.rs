//! `export`: a snapshot written as an `openclaw backup create` archive (tar.gz) that OpenClaw's
//! `backup verify` and `backup restore` accept: its layout and manifest, PAX records for what a
//! tar header cannot carry, and symlinks made to stay within the archived paths.

use super::manifest::{AgentRootOut, AssetOut, ClawbackExt, ManifestOut, OptionsOut, PathsOut};
use crate::commands::dump::{self, TarMeta};
use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::{BackupIssue, OpenclawMeta, Snapshot};
use crate::format::tree::{NodeKind, Tree};
use crate::openclaw::paths::normalize_agent_id;
use crate::progress::Progress;
use crate::repo::Repository;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// `paths.agentRoots`: each agent's dir, for the agents whose id and dir OpenClaw's manifest
/// parser accepts (a canonical id, an absolute normalized path, each once); it refuses the whole
/// archive over one bad entry.
pub(super) fn agent_roots(m: &OpenclawMeta) -> Vec<AgentRootOut> {
    let mut out: Vec<AgentRootOut> = Vec::new();
    for a in &m.agents {
        let dir = Path::new(&a.agent_dir);
        let normalized = clean_abs(dir).is_some_and(|c| c.as_os_str() == dir.as_os_str()) && a.agent_dir.len() > 1;
        let canonical = !a.id.is_empty() && normalize_agent_id(&a.id) == a.id;
        if normalized && canonical && !out.iter().any(|o| o.agent_id == a.id || o.source_path == a.agent_dir) {
            out.push(AgentRootOut { agent_id: a.id.clone(), source_path: a.agent_dir.clone() });
        }
    }
    out
}

/// This system as Node's `process.platform` names it, which OpenClaw records and reads.
pub(super) fn node_platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        os => os,
    }
}

/// `createdAt` as JavaScript's `toISOString` writes it.
pub(super) fn js_iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The archive's root folder name, from the snapshot's time, as OpenClaw 2026.9 names it
/// (`formatBackupArchiveTimestamp`: the time with its UTC offset, here always UTC's).
pub fn archive_root_name(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}-openclaw-backup", t.format("%Y-%m-%dT%H-%M-%S%.3f+00-00"))
}

/// OpenClaw's asset kind for a snapshot path.
pub(super) fn asset_kind(p: &Path, meta: Option<&OpenclawMeta>) -> &'static str {
    if let Some(m) = meta {
        if Path::new(&m.state_dir) == p {
            return "state";
        }
        if m.config_path.as_deref().map(Path::new) == Some(p) {
            return "config";
        }
        if m.workspaces.iter().any(|w| Path::new(w) == p) {
            return "workspace";
        }
        if m.agents.iter().any(|a| Path::new(&a.agent_dir) == p) {
            return "agent";
        }
    }
    let name = p.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if name == b"credentials" {
        "credentials"
    } else if name == b"openclaw.json" {
        "config"
    } else if name == b".openclaw" || name.starts_with(b".openclaw-") {
        "state"
    } else {
        "workspace"
    }
}

/// Lexically cleans an absolute path; `None` if `..` climbs above `/`.
pub(super) fn clean_abs(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// The relative path from folder `from` to `to` (both clean and absolute).
pub(super) fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The target a symlink at `link` can have in an archive OpenClaw accepts: its own when it is
/// relative and stays within the assets, made relative when it is absolute and points into the
/// assets, and `None` (left out) otherwise.
pub(super) fn portable_target(link: &Path, target: &[u8], assets: &[PathBuf]) -> Option<Vec<u8>> {
    if target.is_empty() || target.contains(&b'\\') {
        return None;
    }
    let parent = link.parent().unwrap_or(Path::new("/"));
    let t = Path::new(OsStr::from_bytes(target));
    let within = |p: &Path| assets.iter().any(|a| p.starts_with(a));
    if t.is_absolute() {
        let abs = clean_abs(t)?;
        within(&abs).then(|| relative(parent, &abs).into_os_string().into_encoded_bytes())
    } else {
        let abs = clean_abs(&parent.join(t))?;
        (within(&abs) && within(link)).then(|| target.to_vec())
    }
}

#[derive(Clone, Debug, Default)]
pub struct ExportResult {
    pub archive_root: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Symlinks left out because OpenClaw refuses links that leave the archive's assets.
    pub skipped: Vec<BackupIssue>,
}

/// Whether an archive of `snap` carries secrets: the OpenClaw state dir holds openclaw.json (gateway
/// and provider tokens), `.env` and `credentials/`.
pub fn holds_secrets(snap: &Snapshot) -> bool {
    snap.paths
        .iter()
        .any(|p| matches!(asset_kind(Path::new(p), snap.openclaw.as_ref()), "state" | "config" | "credentials"))
}

/// Writes snapshot `snap` as an `openclaw backup` archive (tar.gz) to `out`.
pub fn export<W: Write>(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    out: W,
    progress: &Progress,
) -> Result<(ExportResult, W)> {
    let werr = |e: std::io::Error| Error::io("write", "the archive", e);
    let time = snap.time();
    let root = archive_root_name(time);
    let meta = snap.openclaw.as_ref();
    let assets: Vec<PathBuf> = snap.paths.iter().map(PathBuf::from).collect();
    let archive_path = |p: &Path| -> String {
        let rest = p.to_string_lossy();
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            format!("{root}/payload/posix")
        } else {
            format!("{root}/payload/posix/{rest}")
        }
    };
    let state_dir = meta
        .map(|m| m.state_dir.clone())
        .or_else(|| assets.iter().find(|p| asset_kind(p, None) == "state").map(|p| p.to_string_lossy().into_owned()))
        .or_else(|| snap.paths.first().cloned())
        .unwrap_or_default();
    let manifest = ManifestOut {
        schema_version: 1,
        created_at: js_iso(time),
        archive_root: root.clone(),
        runtime_version: meta.and_then(|m| m.openclaw_version.clone()).unwrap_or_else(|| "unknown".into()),
        platform: node_platform(),
        node_version: "unknown",
        options: OptionsOut {
            include_workspace: assets.iter().any(|p| asset_kind(p, meta) == "workspace"),
            only_config: false,
        },
        paths: PathsOut {
            config_path: meta
                .and_then(|m| m.config_path.clone())
                .unwrap_or_else(|| Path::new(&state_dir).join("openclaw.json").to_string_lossy().into_owned()),
            oauth_dir: Path::new(&state_dir).join("credentials").to_string_lossy().into_owned(),
            workspace_dirs: meta.map(|m| m.workspaces.clone()).unwrap_or_default(),
            agent_roots: meta.map(agent_roots).unwrap_or_default(),
            state_dir,
        },
        assets: assets
            .iter()
            .map(|p| AssetOut {
                kind: asset_kind(p, meta),
                source_path: p.to_string_lossy().into_owned(),
                archive_path: archive_path(p),
            })
            .collect(),
        skipped: Vec::new(),
        clawback: ClawbackExt {
            snapshot_id: Some(id.to_hex()),
            snapshot_time: snap.time.clone(),
            hostname: Some(snap.hostname.clone()),
            username: Some(snap.username.clone()),
            tags: snap.tags.clone(),
            paths: snap.paths.clone(),
            openclaw: snap.openclaw.clone(),
        },
    };
    let mut mbytes = serde_json::to_vec_pretty(&manifest).expect("manifest JSON");
    mbytes.push(b'\n');

    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(time.timestamp().max(0) as u64);
    h.set_size(mbytes.len() as u64);
    b.append_data(&mut h, format!("{root}/manifest.json"), mbytes.as_slice()).map_err(werr)?;

    let mut res = ExportResult { archive_root: root.clone(), ..ExportResult::default() };
    let t = repo.load_tree(&snap.tree)?;
    let prefix = format!("{root}/payload/posix");
    export_tree(&mut b, repo, &t, Path::new("/"), &prefix, &assets, &mut res, progress, 0)?;
    let gz = b.into_inner().map_err(werr)?;
    let mut out = gz.finish().map_err(werr)?;
    out.flush().map_err(werr)?;
    Ok((res, out))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn export_tree<W: Write>(
    b: &mut tar::Builder<W>,
    repo: &Repository,
    t: &Tree,
    at: &Path,
    prefix: &str,
    assets: &[PathBuf],
    res: &mut ExportResult,
    progress: &Progress,
    depth: usize,
) -> Result<()> {
    crate::format::tree::check_depth(depth)?;
    for n in &t.nodes {
        let p = at.join(OsStr::from_bytes(&n.name));
        let mut name = prefix.as_bytes().to_vec();
        name.extend_from_slice(p.as_os_str().as_bytes());
        let mut link = None;
        if n.kind == NodeKind::Symlink {
            match portable_target(&p, &n.target, assets) {
                Some(t) => link = Some(t),
                None => {
                    res.skipped.push(BackupIssue {
                        path: p.to_string_lossy().into_owned(),
                        error: format!(
                            "symlink to {} leaves the archived paths; OpenClaw refuses such links",
                            String::from_utf8_lossy(&n.target)
                        ),
                    });
                    continue;
                }
            }
        }
        dump::append_node(b, repo, &name, n, TarMeta::Full, link.as_deref())?;
        match n.kind {
            NodeKind::File => {
                res.files += 1;
                res.bytes += n.size;
                progress.add_done(1, n.size);
            }
            NodeKind::Dir => res.dirs += 1,
            NodeKind::Symlink => res.symlinks += 1,
        }
        if let Some(id) = &n.subtree {
            let sub = repo.load_tree(id)?;
            export_tree(b, repo, &sub, &p, prefix, assets, res, progress, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_for_openclaw() {
        let assets = vec![PathBuf::from("/h/.openclaw"), PathBuf::from("/h/ws")];
        let l = Path::new("/h/.openclaw/skills/x");
        assert_eq!(portable_target(l, b"../cfg", &assets), Some(b"../cfg".to_vec()));
        assert_eq!(portable_target(l, b"/h/ws/skill", &assets), Some(b"../../ws/skill".to_vec()));
        assert_eq!(portable_target(l, b"/etc/passwd", &assets), None);
        assert_eq!(portable_target(l, b"../../../etc", &assets), None);
        assert_eq!(portable_target(l, b"../../../../../..", &assets), None);
        assert_eq!(portable_target(Path::new("/h/.openclaw/a"), b"/h/.openclaw", &assets), Some(b".".to_vec()));
    }

    #[test]
    fn agent_roots_are_those_openclaw_accepts() {
        let a = |id: &str, dir: &str| crate::format::snapshot::AgentMeta {
            id: id.into(),
            default: false,
            workspace: "/w".into(),
            agent_dir: dir.into(),
        };
        let meta = OpenclawMeta {
            state_dir: "/h/.openclaw".into(),
            agents: vec![
                a("molty", "/h/.openclaw/agents/molty/agent"),
                a("Upper", "/h/.openclaw/agents/upper/agent"),
                a("rel", "agents/rel/agent"),
                a("dots", "/h/.openclaw/agents/../x"),
                a("slash", "/h/.openclaw/agents/slash/"),
                a("again", "/h/.openclaw/agents/molty/agent"),
            ],
            ..Default::default()
        };
        let roots: Vec<(String, String)> =
            agent_roots(&meta).into_iter().map(|r| (r.agent_id, r.source_path)).collect();
        assert_eq!(roots, [("molty".to_string(), "/h/.openclaw/agents/molty/agent".to_string())]);
    }

    #[test]
    fn names_follow_openclaw() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-09T08:00:00.5Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(archive_root_name(t), "2026-03-09T08-00-00.500+00-00-openclaw-backup");
        assert_eq!(js_iso(t), "2026-03-09T08:00:00.500Z");
        let meta =
            OpenclawMeta { state_dir: "/h/.openclaw".into(), workspaces: vec!["/h/ws".into()], ..Default::default() };
        assert_eq!(asset_kind(Path::new("/h/.openclaw"), Some(&meta)), "state");
        assert_eq!(asset_kind(Path::new("/h/ws"), Some(&meta)), "workspace");
        assert_eq!(asset_kind(Path::new("/etc/x/credentials"), None), "credentials");
    }
}
