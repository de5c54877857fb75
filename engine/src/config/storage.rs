//! The `storage` section: where backups go. Which backend kind (`provider`) and the settings
//! each kind reads; the location layer (`repo::location`) turns it into a repository location.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageConfig {
    /// The backend kind, one of the location registry's names ([`crate::repo::location::NAMES`]);
    /// checked and lower-cased when the file is read. Unset: `path` makes it a folder, else the
    /// embedded default repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The repository folder for `provider: "local"`; `~` expanded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// S3: path-style addressing (`host/bucket/key`, the default with an endpoint) or
    /// virtual-hosted (`bucket.host/key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// S3: storage class for data packs (e.g. `STANDARD_IA`); indexes and snapshots stay STANDARD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// S3: server-side encryption, `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_side_encryption: Option<String>,
    /// S3: the KMS key for `aws:kms`; unset uses the bucket's default key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// S3: object-lock retention on new objects, `GOVERNANCE` or `COMPLIANCE`, for `objectLockDays`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock_days: Option<u32>,
}

/// A bucket name as S3 takes it: 3 to 63 lower-case letters, digits, `-`, `.` (and `_`, which
/// some S3-compatible stores allow). The URL grammar and `setup` both hold names to it.
pub fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::valid_bucket;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.2", "under_score", &"a".repeat(63)] {
            assert!(valid_bucket(ok), "{ok}");
        }
        for bad in ["ab", "Upper", "sp ace", "slash/x", &"a".repeat(64), ""] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }
}
