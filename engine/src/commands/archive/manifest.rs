//! `manifest.json`, both ways: what `import` reads of an `openclaw backup create` manifest
//! ([`Manifest`]), and the manifest `export` writes ([`ManifestOut`]), with the `clawback` key that
//! carries a snapshot's own time, host, tags and OpenClaw metadata through an archive.

use super::bad;
use crate::error::Result;
use crate::format::snapshot::OpenclawMeta;

/// Largest `manifest.json` accepted.
pub(super) const MAX_MANIFEST: u64 = 16 << 20;

/// `openclaw backup` manifest, as much of it as import and export use.
#[derive(Clone, Debug, Default)]
pub(super) struct Manifest {
    pub(super) created_at: chrono::DateTime<chrono::Utc>,
    pub(super) created_at_raw: String,
    pub(super) archive_root: Option<String>,
    pub(super) runtime_version: Option<String>,
    pub(super) state_dir: Option<String>,
    pub(super) config_path: Option<String>,
    pub(super) workspace_dirs: Vec<String>,
    /// `paths.agentRoots`: (agentId, sourcePath), each agent's dir as OpenClaw resolved it.
    pub(super) agent_roots: Vec<(String, String)>,
    /// (kind, sourcePath, archivePath)
    pub(super) assets: Vec<(String, String, String)>,
    pub(super) clawback: Option<ClawbackExt>,
}

/// What `export` adds under the manifest's `clawback` key.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct ClawbackExt {
    #[serde(default)]
    pub(super) snapshot_id: Option<String>,
    pub(super) snapshot_time: String,
    #[serde(default)]
    pub(super) hostname: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    #[serde(default)]
    pub(super) paths: Vec<String>,
    #[serde(default)]
    pub(super) openclaw: Option<OpenclawMeta>,
}

pub(super) fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let o = v.as_object().ok_or_else(|| bad("manifest.json is not an object"))?;
    match o.get("schemaVersion").and_then(|x| x.as_u64()) {
        Some(1) => {}
        other => return Err(bad(format!("unsupported manifest schemaVersion {other:?} (expected 1)"))),
    }
    let created_at_raw =
        o.get("createdAt").and_then(|x| x.as_str()).ok_or_else(|| bad("manifest.json has no createdAt"))?.to_string();
    let created_at = chrono::DateTime::parse_from_rfc3339(&created_at_raw)
        .map_err(|e| bad(format!("manifest createdAt {created_at_raw:?}: {e}")))?
        .with_timezone(&chrono::Utc);
    let s = |x: Option<&serde_json::Value>| x.and_then(|x| x.as_str()).map(str::to_string);
    let paths = o.get("paths").and_then(|p| p.as_object());
    let mut m = Manifest {
        created_at,
        created_at_raw,
        archive_root: s(o.get("archiveRoot")),
        runtime_version: s(o.get("runtimeVersion")).filter(|v| !v.is_empty() && v != "unknown"),
        state_dir: paths.and_then(|p| s(p.get("stateDir"))),
        config_path: paths.and_then(|p| s(p.get("configPath"))),
        workspace_dirs: paths
            .and_then(|p| p.get("workspaceDirs"))
            .and_then(|w| w.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        agent_roots: paths
            .and_then(|p| p.get("agentRoots"))
            .and_then(|w| w.as_array())
            .map(|a| a.iter().filter_map(|r| Some((s(r.get("agentId"))?, s(r.get("sourcePath"))?))).collect())
            .unwrap_or_default(),
        ..Manifest::default()
    };
    let assets = o.get("assets").and_then(|a| a.as_array()).ok_or_else(|| bad("manifest.json has no assets"))?;
    for a in assets {
        let kind = s(a.get("kind")).unwrap_or_default();
        let (Some(src), Some(ap)) = (s(a.get("sourcePath")), s(a.get("archivePath"))) else {
            return Err(bad("a manifest asset lacks sourcePath or archivePath"));
        };
        m.assets.push((kind, src, ap));
    }
    if let Some(x) = o.get("clawback") {
        m.clawback = serde_json::from_value(x.clone()).ok();
    }
    Ok(m)
}

/// The manifest `export` writes: the fields and order of `openclaw backup create`'s (its
/// `buildManifest`), without `externalSymbolicLinks` (so the verifier checks instead that every
/// symlink is relative and stays within the assets, which `portable_target` makes sure of), plus
/// the `clawback` key.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ManifestOut {
    pub(super) schema_version: u32,
    pub(super) created_at: String,
    pub(super) archive_root: String,
    pub(super) runtime_version: String,
    pub(super) platform: &'static str,
    pub(super) node_version: &'static str,
    pub(super) options: OptionsOut,
    pub(super) paths: PathsOut,
    pub(super) assets: Vec<AssetOut>,
    pub(super) skipped: Vec<serde_json::Value>,
    pub(super) clawback: ClawbackExt,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OptionsOut {
    pub(super) include_workspace: bool,
    pub(super) only_config: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PathsOut {
    pub(super) state_dir: String,
    pub(super) config_path: String,
    pub(super) oauth_dir: String,
    pub(super) workspace_dirs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) agent_roots: Vec<AgentRootOut>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AgentRootOut {
    pub(super) agent_id: String,
    pub(super) source_path: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AssetOut {
    pub(super) kind: &'static str,
    pub(super) source_path: String,
    pub(super) archive_path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_fields() {
        let m = parse_manifest(
            br#"{"schemaVersion":1,"createdAt":"2026-03-09T08:00:00.123Z","archiveRoot":"r",
                "runtimeVersion":"2026.3.1","paths":{"stateDir":"/h/.openclaw","workspaceDirs":["/h/ws"]},
                "assets":[{"kind":"state","sourcePath":"/h/.openclaw","archivePath":"r/payload/posix/h/.openclaw"}]}"#,
        )
        .unwrap();
        assert_eq!(m.created_at.timestamp_millis(), 1_773_043_200_123);
        assert_eq!(m.state_dir.as_deref(), Some("/h/.openclaw"));
        assert_eq!(m.assets.len(), 1);
        assert_eq!(m.runtime_version.as_deref(), Some("2026.3.1"));
        assert!(parse_manifest(br#"{"schemaVersion":2,"createdAt":"2026-03-09T08:00:00Z","assets":[]}"#).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1,"assets":[]}"#).is_err());
        assert!(parse_manifest(b"[]").is_err());
    }
}
