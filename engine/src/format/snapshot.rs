//! Snapshots: JSON, sealed, stored under `snapshots/`, written last so an unfinished backup leaves
//! none. They name the root tree and carry the summary counters of the backup that made them.

use crate::error::{Error, Result};
use crate::format::canonical;
use crate::format::codec;
use crate::format::crypto::{Keys, AAD_SNAPSHOT};
use crate::format::id::{SnapshotId, TreeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub bytes_stored: u64,
    pub duration_s: f64,
    #[serde(default)]
    pub total_files: u64,
    #[serde(default)]
    pub total_bytes: u64,
}

/// A file or entry the backup could not read or did not store, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackupIssue {
    pub path: String,
    pub error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub version: u32,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
    pub hostname: String,
    pub username: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub parent: Option<SnapshotId>,
    pub tree: TreeId,
    pub summary: Summary,
    pub program_version: String,
    /// Files that could not be read (the snapshot lacks them).
    #[serde(default)]
    pub errors: Vec<BackupIssue>,
    /// Entries left out on purpose: sockets, fifos, devices.
    #[serde(default)]
    pub skipped: Vec<BackupIssue>,
    /// Things worth knowing that did not stop a file being stored (e.g. a database stored as a
    /// plain copy because it could not be imaged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<BackupIssue>,
    /// Files that kept changing while they were read; the snapshot holds a consistent prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<BackupIssue>,
    /// What the backup knew of OpenClaw: its state dir, workspaces and agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openclaw: Option<OpenclawMeta>,
    /// Fleet group: snapshots taken together by several hosts share it (`backup --group`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// For a snapshot made by `copy`: the id of the snapshot it was copied from (in the first
    /// repository it was copied from, when copied again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<SnapshotId>,
}

/// OpenClaw's layout at backup time, so listings can show it and restore can find the state dir,
/// the workspaces or one agent's files.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OpenclawMeta {
    pub state_dir: String,
    #[serde(default)]
    pub config_path: Option<String>,
    /// The config file and every file it `$include`s (empty in snapshots made before this was
    /// recorded: then the config file alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_files: Vec<String>,
    #[serde(default)]
    pub workspaces: Vec<String>,
    #[serde(default)]
    pub agents: Vec<AgentMeta>,
    #[serde(default)]
    pub openclaw_version: Option<String>,
    /// Where `openclaw_version` came from; absent in snapshots older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openclaw_version_source: Option<VersionSource>,
}

/// Where a snapshot's OpenClaw version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionSource {
    /// `openclaw --version` of the OpenClaw installed (on `PATH`) when the backup ran.
    Cli,
    /// The config's `meta.lastTouchedVersion` (the OpenClaw that last wrote it).
    Config,
    /// The `runtimeVersion` of an imported `openclaw backup create` archive.
    Archive,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentMeta {
    pub id: String,
    #[serde(default)]
    pub default: bool,
    pub workspace: String,
    pub agent_dir: String,
}

const MAX_SNAPSHOT_PLAIN: usize = 64 << 20;

/// Which snapshots a command considers, as restic's `--host`, `--tag` and `--path` select them:
/// any of the hosts; every tag of at least one tag list (`--tag a,b` is one list, a repeated
/// `--tag` another); every one of the paths; and the fleet group. Empty parts select everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub hosts: Vec<String>,
    pub tags: Vec<Vec<String>>,
    pub paths: Vec<String>,
    pub group: Option<String>,
}

/// The tag of the safety snapshot an in-place restore takes before it changes anything. Such a
/// snapshot is not a backup: `latest` passes over it unless the tags ask for it, and `forget`
/// keeps it for a week whatever the policy.
pub const PRE_RESTORE_TAG: &str = "pre-restore";

impl Filter {
    /// Whether the tag lists ask for safety snapshots (`--tag pre-restore`).
    pub fn names_pre_restore(&self) -> bool {
        self.tags.iter().any(|l| l.iter().any(|t| t == PRE_RESTORE_TAG))
    }

    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && (self.tags.is_empty() || self.tags.iter().any(|l| l.iter().all(|t| s.tags.contains(t))))
            && self.paths.iter().all(|p| s.paths.contains(p))
            && (self.group.is_none() || s.group == self.group)
    }

    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// Splits `--tag` values into tag lists: `a,b` is the list [a, b]; empty names are dropped.
pub fn tag_lists(values: &[String]) -> Vec<Vec<String>> {
    values
        .iter()
        .map(|l| l.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

impl Snapshot {
    /// Whether this is the safety snapshot of an in-place restore (tag `pre-restore`).
    pub fn is_pre_restore(&self) -> bool {
        self.tags.iter().any(|t| t == PRE_RESTORE_TAG)
    }

    /// A snapshot of `paths` on `host` at `time` with an empty tree, for the engine's unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(host: &str, paths: &[&str], time: &str) -> Snapshot {
        Snapshot {
            version: 1,
            time: time.to_string(),
            hostname: host.into(),
            username: "u".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            tags: vec![],
            parent: None,
            tree: TreeId([0; 32]),
            summary: Summary::default(),
            program_version: "t".into(),
            errors: vec![],
            skipped: vec![],
            warnings: vec![],
            changed: vec![],
            openclaw: None,
            group: None,
            original: None,
        }
    }

    /// The error for a path this snapshot does not hold: it names what the snapshot backed up and,
    /// when the path lies outside all of that, how to pick a snapshot that has it.
    pub fn path_not_held(&self, path: &std::path::Path) -> Error {
        let outside = !self.paths.iter().any(|p| path.starts_with(p));
        let hint = if outside {
            "; `latest --path P` picks the newest snapshot that backed up P (`clawback snapshots` lists them)"
        } else {
            ""
        };
        Error::Usage(format!("{} is not in the snapshot (it backed up {}){hint}", path.display(), self.paths.join(" ")))
    }

    pub fn encode(&self, keys: &Keys) -> Vec<u8> {
        self.encode_level(keys, codec::METADATA_LEVEL)
    }

    /// Encodes with this zstd level (0: stored raw).
    pub fn encode_level(&self, keys: &Keys, level: i32) -> Vec<u8> {
        let plain = serde_json::to_vec(self).expect("serialize snapshot");
        codec::seal_object(keys, &[AAD_SNAPSHOT], &plain, level)
    }

    pub fn decode(keys: &Keys, id: &str, sealed: &[u8]) -> Result<Self> {
        let plain = codec::open_object(keys, &[AAD_SNAPSHOT], sealed, "snapshot", id, MAX_SNAPSHOT_PLAIN)?;
        Self::from_json(id, &plain)
    }

    /// Parses and checks a snapshot's JSON (format-spec §11): no key twice in an object, version 1,
    /// every required key of its type, and a `time` in RFC 3339.
    pub fn from_json(id: &str, plain: &[u8]) -> Result<Self> {
        let s: Snapshot = canonical::json(plain).map_err(|e| Error::corrupt("snapshot", id, e))?;
        if s.version != 1 {
            return Err(Error::corrupt("snapshot", id, format!("unsupported version {}", s.version)));
        }
        if chrono::DateTime::parse_from_rfc3339(&s.time).is_err() {
            return Err(Error::corrupt("snapshot", id, format!("time {:?} is not an RFC 3339 time", s.time)));
        }
        Ok(s)
    }

    /// When the snapshot was taken. A snapshot read from a repository has a valid `time`
    /// (`from_json` refuses others); one built in memory with a malformed time reads as 1970.
    pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(&self.time).map(|t| t.with_timezone(&chrono::Utc)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn json_of(s: &Snapshot) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn snapshots_read_back_and_hostile_json_is_refused() {
        let s = Snapshot::for_test("h", &["/p"], "2026-01-01T00:00:00.123456789Z");
        let good = json_of(&s);
        assert_eq!(Snapshot::from_json("x", good.as_bytes()).unwrap(), s);
        let err = |j: &str| Snapshot::from_json("x", j.as_bytes()).unwrap_err().to_string();

        // A key twice, known or not.
        let e = err(&good.replacen('{', "{\"later\":1,\"later\":2,", 1));
        assert!(e.starts_with("snapshot x is damaged") && e.contains("\"later\" twice"), "{e}");
        assert!(err(&good.replacen('{', "{\"hostname\":\"h\",", 1)).contains("duplicate field"));

        // A time that is not RFC 3339 is refused rather than read as 1970.
        for bad in ["2026-01-01T00:00:00", "yesterday", "", "2026-13-01T00:00:00Z"] {
            let j = good.replace("2026-01-01T00:00:00.123456789Z", bad);
            let e = err(&j);
            assert!(e.contains("is not an RFC 3339 time"), "{bad}: {e}");
            assert!(matches!(Snapshot::from_json("x", j.as_bytes()), Err(Error::Corrupt { what: "snapshot", .. })));
        }
        let offset = good.replace("2026-01-01T00:00:00.123456789Z", "2026-01-01T01:00:00+01:00");
        let t = Snapshot::from_json("x", offset.as_bytes()).unwrap().time();
        assert_eq!(t, Snapshot::from_json("x", good.as_bytes()).unwrap().time().with_nanosecond(0).unwrap());
    }
}
