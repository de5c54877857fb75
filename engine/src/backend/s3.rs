//! A repository in an S3-compatible object store (AWS S3, Cloudflare R2, Backblaze B2, MinIO,
//! DigitalOcean Spaces, SeaweedFS, Garage). Objects live at `<prefix>/<kind dir>/<name>`, the
//! config at `<prefix>/config`, packs fanned out as `<prefix>/data/<first 2 hex>/<name>`: the same
//! layout as a local repository, so a repository copied between a folder and a bucket (rclone,
//! `aws s3 sync`) opens from either. The `Backend` trait is synchronous: the backend owns a small tokio
//! runtime and blocks on it, so many threads can have requests in flight at once.
//!
//! Writes never overwrite: `If-None-Match: *` on every PUT (stores that honour it refuse a second
//! writer with 412), and a HEAD first for the objects whose names are not their content's hash
//! (config, locks), since a store that ignores the condition would otherwise replace them. Every
//! upload carries Content-MD5, so a body damaged on the way is refused by the store. Objects above
//! `multipart_threshold` go up in parts; an interrupted multipart upload is aborted and never
//! becomes visible. SDK errors become `io::Error`s with one clear line and a hint ([`S3Error`]);
//! retries are the job of the `retry` decorator, so the SDK's own are off.

mod errors;
pub mod location;

pub use errors::{S3Error, S3Failure};

use super::retry::{transient, transient_error};
use super::{check_name, Backend, Kind};
use aws_sdk_s3::config::{
    retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, SharedCredentialsProvider,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration, ObjectLockMode,
    ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use base64::Engine as _;
use errors::{network_cause, s3_error_in};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Applies what every new object carries (storage class for data packs, server-side encryption,
/// object-lock retention) to a PutObject or CreateMultipartUpload request builder.
macro_rules! new_object_options {
    ($s:expr, $kind:expr, $req:expr) => {{
        let mut req = $req;
        if let (Kind::Pack, Some(c)) = ($kind, &$s.opts.storage_class) {
            req = req.storage_class(StorageClass::from(c.as_str()));
        }
        match &$s.opts.sse {
            Some(Sse::Aes256) => req = req.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Sse::Kms(id)) => {
                req = req.server_side_encryption(ServerSideEncryption::AwsKms).set_ssekms_key_id(id.clone());
            }
            None => {}
        }
        if let Some((mode, until)) = $s.lock_until() {
            req = req.object_lock_mode(mode).object_lock_retain_until_date(until);
        }
        req
    }};
}

/// Server-side encryption asked of the store, on top of clawback's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    Aes256,
    /// SSE-KMS with an optional key id (else the bucket's default KMS key).
    Kms(Option<String>),
}

/// Object-lock retention put on every new object (the bucket must have object lock enabled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLock {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub days: u32,
}

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

    fn signing_region(&self) -> String {
        match self.region.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => "us-east-1".into(),
            Some(r) => r.to_string(),
        }
    }
}

/// Whether `e` says the bucket itself does not exist (not just one object).
pub fn is_missing_bucket(e: &io::Error) -> bool {
    S3Failure::of(e) == Some(S3Failure::NoSuchBucket)
}

/// An error whose message is `cause; fix` (the failure's own fix unless `fix` says otherwise),
/// marked for the retry decorator when `transient`.
fn fail(
    kind: io::ErrorKind,
    failure: S3Failure,
    code: &str,
    cause: String,
    fix: Option<String>,
    transient: bool,
) -> io::Error {
    let fix = fix.as_deref().unwrap_or(failure.fix());
    let e = S3Error { failure, code: code.into(), message: format!("{cause}; {fix}") };
    if transient {
        transient_error(kind, e)
    } else {
        io::Error::new(kind, e)
    }
}

/// An error whose message needs no fix (not found, exists: the caller decides what they mean).
fn s3_error(kind: io::ErrorKind, failure: S3Failure, code: &str, message: String) -> io::Error {
    io::Error::new(kind, S3Error { failure, code: code.into(), message })
}

/// How long a request may wait for the store's answer (sending its body included) before it is
/// abandoned and retried: `CLAWBACK_S3_TIMEOUT` seconds, else 300 (a 32 MiB pack on a slow uplink
/// must fit).
pub fn request_timeout() -> Duration {
    let secs = std::env::var("CLAWBACK_S3_TIMEOUT").ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|&s| s > 0);
    Duration::from_secs(secs.unwrap_or(300))
}

/// The request types counted for `-v` and `--json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Get,
    Head,
    Put,
    List,
    Delete,
    Multipart,
    Bucket,
}

const REQS: [(Req, &str); 7] = [
    (Req::Get, "get"),
    (Req::Head, "head"),
    (Req::Put, "put"),
    (Req::List, "list"),
    (Req::Delete, "delete"),
    (Req::Multipart, "multipart"),
    (Req::Bucket, "bucket"),
];

pub struct S3Backend {
    rt: tokio::runtime::Runtime,
    client: Client,
    opts: S3Options,
    counts: [AtomicU64; 7],
    /// Sizes of objects seen in listings or written by us: content-addressed objects never change
    /// size, so `size()` needs no request for them.
    sizes: Mutex<HashMap<(Kind, String), u64>>,
    /// The config and key files, once read: written once, never changed in place.
    bodies: Mutex<HashMap<(Kind, String), Vec<u8>>>,
}

impl S3Backend {
    pub fn new(opts: S3Options) -> io::Result<Self> {
        if opts.bucket.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no bucket given"));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clawback-s3")
            .enable_all()
            .build()?;
        let client = rt.block_on(make_client(&opts))?;
        Ok(S3Backend {
            rt,
            client,
            opts,
            counts: Default::default(),
            sizes: Mutex::new(HashMap::new()),
            bodies: Mutex::new(HashMap::new()),
        })
    }

    pub fn options(&self) -> &S3Options {
        &self.opts
    }

    fn count(&self, r: Req) {
        let i = REQS.iter().position(|(q, _)| *q == r).unwrap();
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    fn key(&self, kind: Kind, name: &str) -> io::Result<String> {
        check_name(kind, name)?;
        Ok(self.key_unchecked(kind, name))
    }

    fn key_unchecked(&self, kind: Kind, name: &str) -> String {
        let mut k = String::new();
        if !self.opts.prefix.is_empty() {
            k.push_str(&self.opts.prefix);
            k.push('/');
        }
        if !kind.dir().is_empty() {
            k.push_str(kind.dir());
            k.push('/');
        }
        if kind == Kind::Pack && !name.is_empty() {
            k.push_str(name.get(..2).unwrap_or("00"));
            k.push('/');
        }
        k.push_str(name);
        k
    }

    fn endpoint_text(&self) -> String {
        self.opts.endpoint.clone().unwrap_or_else(|| format!("AWS S3 ({})", self.opts.signing_region()))
    }

    /// Turns an SDK error into an `io::Error` whose message is one line: the cause (read from the
    /// whole error chain and the store's error code) and its fix. The one place that knows what
    /// S3's error codes mean to a user; [`errors`] knows how the SDK's errors nest.
    fn map_err<E>(&self, what: &str, e: SdkError<E>) -> io::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        use io::ErrorKind as K;
        use S3Failure as F;
        let bucket = &self.opts.bucket;
        let endpoint = self.endpoint_text();
        let unreachable = |why: &str| format!("cannot reach the S3 endpoint {endpoint}: {why}");
        match &e {
            SdkError::TimeoutError(_) => {
                return fail(K::TimedOut, F::Timeout, "Timeout", unreachable(&self.no_answer(what)), None, true)
            }
            SdkError::DispatchFailure(d) => {
                let (mut cause, detail) = network_cause(&e);
                if d.is_timeout() {
                    cause = F::Timeout;
                }
                let with_detail = |s: &str| if detail.is_empty() { s.to_string() } else { format!("{s} ({detail})") };
                return match cause {
                    F::ConnectionRefused => {
                        fail(K::ConnectionRefused, cause, "ConnectionRefused", unreachable("connection refused"), None, false)
                    }
                    F::Dns => fail(
                        K::HostUnreachable,
                        cause,
                        "Dns",
                        unreachable(&format!("its host name {} does not resolve (DNS lookup failed)", self.host())),
                        None,
                        false,
                    ),
                    F::Tls => fail(K::Other, cause, "Tls", unreachable(&with_detail("the TLS handshake failed")), None, false),
                    F::Timeout => fail(K::TimedOut, cause, "Timeout", unreachable(&self.no_answer(what)), None, true),
                    F::NoCredentials => fail(
                        K::PermissionDenied,
                        cause,
                        "NoCredentials",
                        format!(
                            "{what}: no S3 credentials found for {endpoint} (none in clawback's config, the environment, ~/.aws or an instance role)"
                        ),
                        None,
                        false,
                    ),
                    _ if d.is_io() => fail(
                        K::ConnectionRefused,
                        F::ConnectionRefused,
                        "Unreachable",
                        unreachable(if detail.is_empty() { "the connection failed" } else { &detail }),
                        None,
                        false,
                    ),
                    _ => fail(
                        K::Other,
                        F::Other,
                        "Dispatch",
                        with_detail(&format!("{what}: the request to {endpoint} failed")),
                        None,
                        false,
                    ),
                };
            }
            SdkError::ResponseError(_) => {
                return fail(
                    K::ConnectionAborted,
                    F::Other,
                    "Response",
                    format!("{what}: the response from {endpoint} was cut off or malformed"),
                    None,
                    true,
                )
            }
            SdkError::ConstructionFailure(_) => {
                let (cause, detail) = network_cause(&e);
                if cause == F::NoCredentials {
                    return fail(
                        K::PermissionDenied,
                        cause,
                        "NoCredentials",
                        format!("{what}: no S3 credentials found for {endpoint}"),
                        None,
                        false,
                    );
                }
                let detail = if detail.is_empty() { String::new() } else { format!(" ({detail})") };
                return fail(
                    K::InvalidInput,
                    F::Other,
                    "Construction",
                    format!("{what}: the request to {endpoint} could not be built{detail}"),
                    Some("check the endpoint URL and the storage settings".into()),
                    false,
                );
            }
            _ => {}
        }
        let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
        let region_hdr = e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(str::to_string);
        let code = e.code().unwrap_or("").to_string();
        // The store's own words, when they are words (some stores answer with markup).
        let msg = e.message().unwrap_or("").trim().to_string();
        let msg = if msg.contains(['{', '}', '<', '\n']) { String::new() } else { msg };
        let says = if msg.is_empty() { String::new() } else { format!(" (S3 says: {msg})") };
        let code_name = if code.is_empty() { "Http" } else { code.as_str() };
        let plain = |kind, failure, text: String| fail(kind, failure, code_name, text, None, false);
        match (code.as_str(), status) {
            ("NoSuchBucket", _) => {
                plain(K::NotFound, F::NoSuchBucket, format!("bucket {bucket} does not exist at {endpoint}"))
            }
            ("NoSuchKey", _) | ("NotFound", _) | ("", 404) => {
                s3_error(K::NotFound, F::Other, code_name, format!("{what}: not found"))
            }
            ("PreconditionFailed", _) | (_, 412) | ("ConditionalRequestConflict", _) => {
                s3_error(K::AlreadyExists, F::Other, code_name, format!("{what}: the object already exists"))
            }
            ("InvalidAccessKeyId", _) => plain(
                K::PermissionDenied,
                F::UnknownAccessKey,
                format!("the S3 access key id is not known to {endpoint} (InvalidAccessKeyId)"),
            ),
            ("SignatureDoesNotMatch", _) => plain(
                K::PermissionDenied,
                F::SignatureMismatch,
                format!("the S3 secret access key is wrong: {endpoint} says the request signature does not match"),
            ),
            ("RequestTimeTooSkewed", _) => plain(
                K::Other,
                F::ClockSkew,
                format!("this machine's clock is too far from the S3 server's at {endpoint} (RequestTimeTooSkewed)"),
            ),
            ("PermanentRedirect", _)
            | ("AuthorizationHeaderMalformed", _)
            | ("IllegalLocationConstraintException", _)
            | ("", 301) => fail(
                K::Other,
                F::WrongRegion,
                code_name,
                format!("bucket {bucket} is in another region than {}{says}", self.opts.signing_region()),
                region_hdr.map(|r| format!("set storage.region or AWS_REGION to {r}")),
                false,
            ),
            ("AccessDenied", _) | ("AllAccessDisabled", _) | ("", 403) => fail(
                K::PermissionDenied,
                F::AccessDenied,
                code_name,
                format!("access denied: {what} in bucket {bucket} at {endpoint}{says}"),
                Some(format!(
                    "the key needs permission to {} objects there (check the key's policy){}",
                    permission_for(what),
                    if code.is_empty() { ", or the keys are wrong" } else { "" }
                )),
                false,
            ),
            ("InvalidRange", _) | (_, 416) => {
                s3_error(K::UnexpectedEof, F::Other, code_name, format!("{what}: the range is beyond the object's end"))
            }
            ("BadDigest", _) | ("InvalidDigest", _) | ("XAmzContentSHA256Mismatch", _) | ("IncompleteBody", _) => fail(
                K::InvalidData,
                F::Other,
                code_name,
                format!("{what}: the store refused a damaged upload ({code}){says}"),
                None,
                true,
            ),
            ("SlowDown", _)
            | ("Throttling", _)
            | ("ThrottlingException", _)
            | ("RequestLimitExceeded", _)
            | (_, 429) => {
                let why = if code.is_empty() { status.to_string() } else { code.clone() };
                fail(
                    K::Other,
                    F::Other,
                    code_name,
                    format!("{what}: the store asks to slow down ({why})"),
                    Some("retry later, or lower --connections".into()),
                    true,
                )
            }
            ("InternalError", _) | ("ServiceUnavailable", _) | ("RequestTimeout", _) | (_, 500..=599) | (_, 408) => {
                fail(
                    K::Other,
                    F::Other,
                    code_name,
                    format!("{what}: the store had a temporary failure (HTTP {status} {code}){says}"),
                    None,
                    true,
                )
            }
            _ => fail(
                K::Other,
                F::Other,
                code_name,
                format!(
                    "{what}: S3 error {} (HTTP {status}){says}",
                    if code.is_empty() { "without a code" } else { &code }
                ),
                None,
                false,
            ),
        }
    }

    /// The cause of a request that timed out (connecting, or waiting for the answer).
    fn no_answer(&self, what: &str) -> String {
        format!("no answer in time ({what}; at most 5 s to connect, {} s per request)", request_timeout().as_secs())
    }

    /// The endpoint's host name, for the DNS message.
    fn host(&self) -> String {
        let e = self.opts.endpoint.as_deref().unwrap_or("s3.amazonaws.com");
        let rest = e.split_once("://").map_or(e, |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6).to_string();
        }
        authority.split(':').next().unwrap_or(authority).to_string()
    }

    /// A HEAD request's failure carries no body, so no error code: a 403 may be a wrong secret,
    /// a skewed clock or a missing permission. Asks again with a one-byte GET (or, for the
    /// bucket, a one-key listing) to learn the code; keeps `e` when that tells nothing more.
    async fn explain_head(&self, key: Option<&str>, what: &str, e: io::Error) -> io::Error {
        let vague = s3_error_in(&e).is_some_and(|s| s.code == "Http" && s.failure == S3Failure::AccessDenied);
        if !vague {
            return e;
        }
        self.count(Req::Get);
        let better = match key {
            Some(k) => self
                .client
                .get_object()
                .bucket(&self.opts.bucket)
                .key(k)
                .range("bytes=0-0")
                .send()
                .await
                .err()
                .map(|x| self.map_err(what, x)),
            None => self
                .client
                .list_objects_v2()
                .bucket(&self.opts.bucket)
                .max_keys(1)
                .send()
                .await
                .err()
                .map(|x| self.map_err(what, x)),
        };
        match better {
            Some(b) if s3_error_in(&b).is_some_and(|s| s.code != "Http") => b,
            _ => e,
        }
    }

    fn md5_b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
    }

    fn lock_until(&self) -> Option<(ObjectLockMode, DateTime)> {
        let l = self.opts.object_lock.as_ref()?;
        let until = chrono::Utc::now().timestamp() + i64::from(l.days) * 86_400;
        Some((ObjectLockMode::from(l.mode.to_ascii_uppercase().as_str()), DateTime::from_secs(until)))
    }

    async fn head_size(&self, key: &str, what: &str) -> io::Result<Option<u64>> {
        self.count(Req::Head);
        match self.client.head_object().bucket(&self.opts.bucket).key(key).send().await {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => {
                let e = self.map_err(what, e);
                if e.kind() == io::ErrorKind::NotFound && !is_missing_bucket(&e) {
                    Ok(None)
                } else {
                    Err(self.explain_head(Some(key), what, e).await)
                }
            }
        }
    }

    async fn put(&self, kind: Kind, key: &str, data: &[u8], what: &str) -> io::Result<()> {
        // The config is not named by its content: a store that ignores If-None-Match must not let
        // a second writer replace it. (Lock names carry a random id, so they never collide.)
        if kind == Kind::Config && self.head_size(key, what).await?.is_some() {
            return Err(s3_error(
                io::ErrorKind::AlreadyExists,
                S3Failure::Other,
                "Exists",
                format!("{what}: the object already exists"),
            ));
        }
        if data.len() as u64 > self.opts.multipart_threshold {
            return self.put_multipart(kind, key, data, what).await;
        }
        self.count(Req::Put);
        let mut req = self
            .client
            .put_object()
            .bucket(&self.opts.bucket)
            .key(key)
            .content_length(data.len() as i64)
            .content_md5(Self::md5_b64(data))
            .if_none_match("*")
            .body(ByteStream::from(data.to_vec()));
        req = new_object_options!(self, kind, req);
        req.send().await.map_err(|e| self.map_err(what, e))?;
        Ok(())
    }

    async fn put_multipart(&self, kind: Kind, key: &str, data: &[u8], what: &str) -> io::Result<()> {
        self.count(Req::Multipart);
        let mut req = self.client.create_multipart_upload().bucket(&self.opts.bucket).key(key);
        req = new_object_options!(self, kind, req);
        let up = req.send().await.map_err(|e| self.map_err(what, e))?;
        let Some(upload_id) = up.upload_id().map(str::to_string) else {
            return Err(s3_error(
                io::ErrorKind::Other,
                S3Failure::Other,
                "NoUploadId",
                format!("{what}: the store gave no upload id"),
            ));
        };
        let res = async {
            let mut parts = Vec::new();
            let part = self.opts.part_size.max(5 << 20) as usize;
            for (i, chunk) in data.chunks(part).enumerate() {
                let n = i as i32 + 1;
                self.count(Req::Multipart);
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.opts.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .content_length(chunk.len() as i64)
                    .content_md5(Self::md5_b64(chunk))
                    .body(ByteStream::from(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| self.map_err(what, e))?;
                parts.push(CompletedPart::builder().part_number(n).set_e_tag(out.e_tag().map(str::to_string)).build());
            }
            self.count(Req::Multipart);
            self.client
                .complete_multipart_upload()
                .bucket(&self.opts.bucket)
                .key(key)
                .upload_id(&upload_id)
                .if_none_match("*")
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| self.map_err(what, e))?;
            Ok(())
        }
        .await;
        if res.is_err() {
            // Parts of an unfinished upload are invisible to readers; abort so they are not kept
            // (and billed) either.
            self.count(Req::Multipart);
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.opts.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        res
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>, what: &str) -> io::Result<Vec<u8>> {
        self.count(Req::Get);
        let mut req = self.client.get_object().bucket(&self.opts.bucket).key(key);
        if let Some((off, len)) = range {
            req = req.range(format!("bytes={}-{}", off, off + len - 1));
        }
        let out = req.send().await.map_err(|e| self.map_err(what, e))?;
        let expect = out.content_length().map(|l| l.max(0) as u64);
        let partial = out.content_range().is_some();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| {
                let why = errors::readable_cause(&e);
                transient(io::ErrorKind::UnexpectedEof, format!("{what}: the download was cut off ({why})"))
            })?
            .to_vec();
        if expect.is_some_and(|n| n != body.len() as u64) {
            return Err(transient(
                io::ErrorKind::UnexpectedEof,
                format!("{what}: got {} bytes of {}", body.len(), expect.unwrap_or(0)),
            ));
        }
        match range {
            // A store that ignores Range sends the whole object: cut the range out of it.
            Some((off, len)) if !partial && body.len() as u64 != len => {
                let end = off.checked_add(len).filter(|&e| e <= body.len() as u64).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{what}: range {off}+{len} beyond object size {}", body.len()),
                    )
                })?;
                Ok(body[off as usize..end as usize].to_vec())
            }
            Some((off, len)) if body.len() as u64 != len => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{what}: range {off}+{len}: got {} bytes", body.len()),
            )),
            _ => Ok(body),
        }
    }

    async fn list_prefix(&self, prefix: &str, what: &str) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.count(Req::List);
            let resp = self
                .client
                .list_objects_v2()
                .bucket(&self.opts.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.map_err(what, e))?;
            for o in resp.contents() {
                if let Some(k) = o.key().and_then(|k| k.strip_prefix(prefix)) {
                    out.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64));
                }
            }
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated().unwrap_or(false) && !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn bucket_exists(&self) -> io::Result<bool> {
        self.count(Req::Bucket);
        match self.client.head_bucket().bucket(&self.opts.bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = self.map_err("list the bucket", e);
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(false)
                } else {
                    Err(self.explain_head(None, "list the bucket", e).await)
                }
            }
        }
    }

    async fn create_bucket(&self) -> io::Result<()> {
        self.count(Req::Bucket);
        let mut req = self.client.create_bucket().bucket(&self.opts.bucket);
        let region = self.opts.signing_region();
        // us-east-1 (and `auto`) takes no location constraint; every other AWS region needs one.
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        if self.opts.object_lock.is_some() {
            req = req.object_lock_enabled_for_bucket(true);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            Err(e) if matches!(e.code(), Some("BucketAlreadyExists")) => Err(s3_error(
                io::ErrorKind::AlreadyExists,
                S3Failure::Other,
                "BucketAlreadyExists",
                format!("bucket name {} is taken by another account; choose another name", self.opts.bucket),
            )),
            Err(e) => Err(self.map_err("create the bucket", e)),
        }
    }
}

/// The permission a failed operation needed, for the access-denied hint.
fn permission_for(what: &str) -> &'static str {
    if what.starts_with("list") {
        "list"
    } else if what.starts_with("delete") {
        "delete"
    } else if what.starts_with("write") || what.starts_with("create") {
        "write"
    } else {
        "read"
    }
}

async fn make_client(opts: &S3Options) -> io::Result<Client> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let region = Region::new(opts.signing_region());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let creds: SharedCredentialsProvider = match (&opts.access_key_id, &opts.secret_access_key) {
        (Some(a), Some(s)) => {
            SharedCredentialsProvider::new(Credentials::new(a, s, opts.session_token.clone(), None, "clawback-config"))
        }
        _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(a), Some(s)) => {
                SharedCredentialsProvider::new(Credentials::new(a, s, env("AWS_SESSION_TOKEN"), None, "clawback-env"))
            }
            // The usual AWS chain: profile files, web identity, container and instance roles.
            _ => aws_config::defaults(BehaviorVersion::latest())
                .http_client(http.clone())
                .region(region.clone())
                .load()
                .await
                .credentials_provider()
                .ok_or_else(|| {
                    fail(
                        io::ErrorKind::PermissionDenied,
                        S3Failure::NoCredentials,
                        "NoCredentials",
                        "no S3 credentials found".into(),
                        None,
                        false,
                    )
                })?,
        },
    };
    let mut b = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(region)
        .credentials_provider(creds)
        .force_path_style(opts.path_style)
        // One retry policy, ours (the `retry` decorator), so attempts are bounded in one place.
        .retry_config(RetryConfig::disabled())
        // A server that accepts and never answers must fail the request, not hang the backup.
        .timeout_config(
            TimeoutConfig::builder().connect_timeout(Duration::from_secs(5)).read_timeout(request_timeout()).build(),
        )
        // Content-MD5 is computed by us and honoured by every S3-compatible store; the SDK's
        // streaming trailer checksums are not.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(e) = &opts.endpoint {
        b = b.endpoint_url(e.trim_end_matches('/'));
    }
    Ok(Client::from_conf(b.build()))
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.opts.url()
    }

    fn create(&self) -> io::Result<()> {
        self.rt.block_on(async {
            if !self.bucket_exists().await? {
                if !self.opts.create_bucket {
                    return Err(fail(
                        io::ErrorKind::NotFound,
                        S3Failure::NoSuchBucket,
                        "NoSuchBucket",
                        format!("bucket {} does not exist at {}", self.opts.bucket, self.endpoint_text()),
                        None,
                        false,
                    ));
                }
                self.create_bucket().await?;
            }
            let key = self.key_unchecked(Kind::Config, "config");
            if self.head_size(&key, "read config").await?.is_some() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "config exists"));
            }
            Ok(())
        })
    }

    fn read(&self, kind: Kind, name: &str) -> io::Result<Vec<u8>> {
        let key = self.key(kind, name)?;
        let immutable = matches!(kind, Kind::Config | Kind::Key);
        if immutable {
            if let Some(b) = self.bodies.lock().get(&(kind, name.to_string())) {
                return Ok(b.clone());
            }
        }
        let data = self.rt.block_on(self.get(&key, None, &format!("read {key}")))?;
        if immutable {
            self.bodies.lock().insert((kind, name.to_string()), data.clone());
        }
        self.sizes.lock().insert((kind, name.to_string()), data.len() as u64);
        Ok(data)
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let key = self.key(kind, name)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        if offset.checked_add(len).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("range {offset}+{len} overflows")));
        }
        self.rt.block_on(self.get(&key, Some((offset, len)), &format!("read {key}")))
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> io::Result<()> {
        let key = self.key(kind, name)?;
        self.rt.block_on(self.put(kind, &key, data, &format!("write {key}")))?;
        self.sizes.lock().insert((kind, name.to_string()), data.len() as u64);
        Ok(())
    }

    fn list(&self, kind: Kind) -> io::Result<Vec<(String, u64)>> {
        if kind.dir().is_empty() {
            // The config sits beside the folders: a HEAD, not a listing of the whole prefix.
            let key = self.key_unchecked(kind, "config");
            return Ok(match self.rt.block_on(self.head_size(&key, "read config"))? {
                Some(n) => vec![("config".to_string(), n)],
                None => vec![],
            });
        }
        let prefix = self.key_unchecked(kind, "");
        let mut out = self.rt.block_on(self.list_prefix(&prefix, &format!("list {prefix}")))?;
        if kind == Kind::Pack {
            // `ab/abcd...`: keep the name, and only where the folder matches it.
            out.retain_mut(|(n, _)| match n.split_once('/') {
                Some((fan, name)) if name.get(..2).unwrap_or("00") == fan => {
                    *n = name.to_string();
                    true
                }
                _ => false,
            });
        }
        out.retain(|(n, _)| !n.contains('/') && check_name(kind, n).is_ok());
        out.sort();
        let mut sizes = self.sizes.lock();
        for (n, s) in &out {
            sizes.insert((kind, n.clone()), *s);
        }
        Ok(out)
    }

    fn size(&self, kind: Kind, name: &str) -> io::Result<u64> {
        let key = self.key(kind, name)?;
        if let Some(&n) = self.sizes.lock().get(&(kind, name.to_string())) {
            return Ok(n);
        }
        match self.rt.block_on(self.head_size(&key, &format!("read {key}")))? {
            Some(n) => {
                self.sizes.lock().insert((kind, name.to_string()), n);
                Ok(n)
            }
            None => Err(io::Error::new(io::ErrorKind::NotFound, format!("{key} not found"))),
        }
    }

    fn delete(&self, kind: Kind, name: &str) -> io::Result<()> {
        let key = self.key(kind, name)?;
        self.count(Req::Delete);
        self.rt.block_on(async {
            self.client
                .delete_object()
                .bucket(&self.opts.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| self.map_err(&format!("delete {key}"), e))
        })?;
        self.sizes.lock().remove(&(kind, name.to_string()));
        self.bodies.lock().remove(&(kind, name.to_string()));
        Ok(())
    }

    fn connections(&self) -> usize {
        self.opts.connections.max(1)
    }

    fn requests(&self) -> Vec<(&'static str, u64)> {
        REQS.iter()
            .zip(&self.counts)
            .map(|((_, n), c)| (*n, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_keys() {
        let mut o = S3Options::new("b");
        o.endpoint = Some("http://127.0.0.1:9000".into());
        o.prefix = "team/host".into();
        assert_eq!(o.url(), "s3:http://127.0.0.1:9000/b/team/host");
        o.endpoint = None;
        o.prefix.clear();
        assert_eq!(o.url(), "s3://b");
        o.region = Some("auto".into());
        assert_eq!(o.signing_region(), "us-east-1");
        o.region = Some("eu-central-1".into());
        assert_eq!(o.signing_region(), "eu-central-1");
        o.secret_access_key = Some("hunter2".into());
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn key_layout() {
        let mut o = S3Options::new("b");
        o.endpoint = Some("http://127.0.0.1:1".into());
        o.prefix = "p".into();
        let be = S3Backend::new(o).unwrap();
        assert_eq!(be.key(Kind::Config, "config").unwrap(), "p/config");
        assert_eq!(be.key(Kind::Pack, "abcd").unwrap(), "p/data/ab/abcd");
        assert_eq!(be.key(Kind::Snapshot, "ef").unwrap(), "p/snapshots/ef");
        assert!(be.key(Kind::Index, "../x").is_err());
        assert!(be.key(Kind::Config, "other").is_err());
    }
}
