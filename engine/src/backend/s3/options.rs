//! What an S3 location is opened with: bucket, prefix, endpoint, region, credentials, addressing,
//! storage class, server-side encryption and object-lock retention, and the URL it prints as.

use std::fmt;

/// Server-side encryption asked of the store, on top of clawback's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    Aes256,
    /// SSE-KMS with an optional key id (else the bucket's default KMS key).
    Kms(Option<String>),
}

/// Object-lock retention put on every new object but leases (the bucket must have object lock
/// enabled).
pub use crate::backend::retention::ObjectLock;

/// Everything needed to reach a bucket. Secrets are kept out of `Debug`.
#[derive(Clone)]
pub struct S3Options {
    /// `http[s]://host[:port]`; `None` for AWS S3 itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// `auto` and unset sign as `us-east-1`.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Path-style (`host/bucket/key`) rather than virtual-hosted (`bucket.host/key`) addressing.
    pub path_style: bool,
    /// Storage class for data packs; everything else stays STANDARD.
    pub storage_class: Option<String>,
    pub sse: Option<Sse>,
    pub object_lock: Option<ObjectLock>,
    /// `create()` makes the bucket when it does not exist (`init --create-bucket`).
    pub create_bucket: bool,
    /// Requests the caller should keep in flight (`--connections`).
    pub connections: usize,
    /// Objects larger than this go up in parts of `part_size`.
    pub multipart_threshold: u64,
    pub part_size: u64,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "<set>"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<set>"))
            .field("path_style", &self.path_style)
            .field("storage_class", &self.storage_class)
            .field("sse", &self.sse)
            .field("object_lock", &self.object_lock)
            .field("connections", &self.connections)
            .finish()
    }
}

/// Requests in flight by default: like restic's 5; more buys little on one link and costs memory
/// (every pack upload holds its pack, every ranged read its range).
pub const DEFAULT_CONNECTIONS: usize = 5;
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 << 20;
pub const DEFAULT_PART_SIZE: u64 = 16 << 20;

impl S3Options {
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Options {
            endpoint: None,
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            path_style: true,
            storage_class: None,
            sse: None,
            object_lock: None,
            create_bucket: false,
            connections: DEFAULT_CONNECTIONS,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// The repository's URL as the user writes it: `s3:http://host:port/bucket/prefix` or
    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        let path =
            if self.prefix.is_empty() { self.bucket.clone() } else { format!("{}/{}", self.bucket, self.prefix) };
        match &self.endpoint {
            Some(e) => format!("s3:{}/{}", e.trim_end_matches('/'), path),
            None => format!("s3://{path}"),
        }
    }

    pub(super) fn signing_region(&self) -> String {
        match self.region.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => "us-east-1".into(),
            Some(r) => r.to_string(),
        }
    }
}
