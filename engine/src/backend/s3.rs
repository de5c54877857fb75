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
//! upload carries a checksum the store checks (CRC32C where it can, else Content-MD5:
//! [`integrity`]), so a body damaged on the way is refused by the store. Objects above
//! `multipart_threshold` go up in parts; an interrupted multipart upload is aborted and never
//! becomes visible. SDK errors become `io::Error`s with one clear line and a hint ([`S3Error`]);
//! retries are the job of the `retry` decorator, so the SDK's own are off.

mod client;
mod errors;
mod explain;
mod integrity;
pub mod location;
mod options;

use client::make_client;
pub use errors::{S3Error, S3Failure};
pub use explain::is_missing_bucket;
use explain::{fail, s3_error};
use integrity::{Check, Hasher, Integrity, Sums};
pub use options::{ObjectLock, S3Options, Sse, DEFAULT_CONNECTIONS};

use super::retention::{DeletedObject, Versioned};
use super::retry::transient;
use super::{Backend, Kind, ObjectName};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, DateTime, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration, ObjectLockMode,
    ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::io::{self, Read, Seek};
use std::path::Path;
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
        if let Some((mode, until)) = $s.lock_until($kind) {
            req = req.object_lock_mode(mode).object_lock_retain_until_date(until);
        }
        req
    }};
}

/// Where an upload's bytes come from: memory the caller holds, or a local file of `len` bytes
/// that is read a part at a time.
#[derive(Clone, Copy)]
enum Body<'a> {
    Mem(&'a [u8]),
    File(&'a Path, u64),
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Mem(d) => d.len() as u64,
            Body::File(_, n) => *n,
        }
    }

    /// The checksums `check` asks for and a body of bytes `off..off + len`.
    async fn part(&self, off: u64, len: u64, check: Check) -> io::Result<(Sums, ByteStream)> {
        match *self {
            Body::Mem(d) => {
                let s = &d[off as usize..(off + len) as usize];
                Ok((Hasher::of(check, s), ByteStream::from(s.to_vec())))
            }
            Body::File(path, _) => {
                let mut f = std::fs::File::open(path)?;
                f.seek(io::SeekFrom::Start(off))?;
                let (mut sums, mut buf, mut left) = (Hasher::new(check), vec![0u8; 1 << 20], len);
                while left > 0 {
                    let n = f.read(&mut buf[..left.min(1 << 20) as usize])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{}: shorter than {} bytes", path.display(), off + len),
                        ));
                    }
                    sums.update(&buf[..n]);
                    left -= n as u64;
                }
                // Read 256 KiB at a time (the default, 64 KiB, hands each read to tokio's blocking
                // threads four times as often: 256 hand-offs for a 16 MiB pack).
                let stream = ByteStream::read_from()
                    .path(path)
                    .offset(off)
                    .length(Length::Exact(len))
                    .buffer_size(UPLOAD_READ)
                    .build()
                    .await
                    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
                Ok((sums.finish(), stream))
            }
        }
    }
}

/// Bytes read from a spooled file per piece of an upload's body: up to two pieces per upload
/// are in memory at once.
const UPLOAD_READ: usize = 256 << 10;

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
    /// Which checksum uploads carry.
    integrity: Integrity,
    /// The retention new objects carry: the options' at first, then what the repository's config
    /// records ([`Versioned::set_object_lock`]).
    lock: RwLock<Option<ObjectLock>>,
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
            lock: RwLock::new(opts.object_lock.clone()),
            opts,
            counts: Default::default(),
            sizes: Mutex::new(HashMap::new()),
            bodies: Mutex::new(HashMap::new()),
            integrity: Integrity::new(),
        })
    }

    pub fn options(&self) -> &S3Options {
        &self.opts
    }

    fn count(&self, r: Req) {
        let i = REQS.iter().position(|(q, _)| *q == r).unwrap();
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    fn key(&self, obj: &ObjectName) -> String {
        self.key_unchecked(obj.kind(), obj.as_str())
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

    fn lock_until(&self, kind: Kind) -> Option<(ObjectLockMode, DateTime)> {
        if !ObjectLock::applies_to(kind) {
            return None;
        }
        let l = self.lock.read().clone()?;
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

    async fn put(&self, kind: Kind, key: &str, body: Body<'_>, what: &str) -> io::Result<()> {
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
        if body.len() > self.opts.multipart_threshold {
            return self.put_multipart(kind, key, body, what).await;
        }
        loop {
            self.count(Req::Put);
            let learnt = self.integrity.check();
            // An upload that sets object-lock retention keeps Content-MD5: AWS S3 has asked for it
            // on such PUTs.
            let check = if learnt == Check::Crc32c && self.lock_until(kind).is_some() { Check::Both } else { learnt };
            let (sums, stream) = body.part(0, body.len(), check).await?;
            let mut req = self
                .client
                .put_object()
                .bucket(&self.opts.bucket)
                .key(key)
                .content_length(body.len() as i64)
                .set_content_md5(sums.md5.clone())
                .set_checksum_crc32_c(sums.crc32c.clone())
                .if_none_match("*")
                .body(stream);
            req = new_object_options!(self, kind, req);
            // Sent with an unsigned payload (`x-amz-content-sha256: UNSIGNED-PAYLOAD`), as are
            // parts: the SDK would otherwise hash every pack with SHA-256 to sign it, besides the
            // checksum the store checks. What arrives is still checked twice: the store refuses a
            // body whose checksum differs from the header's, which the signature covers; and every
            // object is sealed (AES-256-GCM-SIV) and named by its hash, so a body changed on the
            // way fails when it is read.
            match req.customize().disable_payload_signing().send().await {
                Ok(out) => {
                    if learnt == Check::Both {
                        self.integrity.learn(&sums, out.checksum_crc32_c());
                    }
                    return Ok(());
                }
                Err(e) => {
                    let e = self.map_err(what, e);
                    // A store that refuses the CRC32C header (rather than ignoring it) is asked
                    // again with Content-MD5 alone; an error with another cause comes back the same.
                    if learnt == Check::Both
                        && !super::retry::is_transient(&e)
                        && e.kind() != io::ErrorKind::AlreadyExists
                    {
                        self.integrity.refused_crc32c();
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn put_multipart(&self, kind: Kind, key: &str, body: Body<'_>, what: &str) -> io::Result<()> {
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
            let part = self.opts.part_size.max(5 << 20);
            let (mut off, mut n) = (0u64, 1i32);
            while off < body.len() {
                let len = part.min(body.len() - off);
                let (sums, stream) = body.part(off, len, Check::Md5).await?;
                self.count(Req::Multipart);
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.opts.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .content_length(len as i64)
                    .set_content_md5(sums.md5)
                    .body(stream)
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| self.map_err(what, e))?;
                parts.push(CompletedPart::builder().part_number(n).set_e_tag(out.e_tag().map(str::to_string)).build());
                off += len;
                n += 1;
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

    /// Largest body a download reserves room for up front, whatever the server announces.
    const MAX_PRESIZE: u64 = 64 << 20;

    async fn get(&self, key: &str, range: Option<(u64, u64)>, what: &str) -> io::Result<Vec<u8>> {
        self.count(Req::Get);
        let mut req = self.client.get_object().bucket(&self.opts.bucket).key(key);
        if let Some((off, len)) = range {
            req = req.range(format!("bytes={}-{}", off, off + len - 1));
        }
        let out = req.send().await.map_err(|e| self.map_err(what, e))?;
        let expect = out.content_length().map(|l| l.max(0) as u64);
        let partial = out.content_range().is_some();
        // Into one buffer of the announced size as the body arrives: a collected body copied out
        // would hold every byte twice.
        let mut body = Vec::with_capacity(expect.unwrap_or(0).min(Self::MAX_PRESIZE) as usize);
        let mut stream = out.body;
        while let Some(part) = stream.next().await {
            let part = part.map_err(|e| {
                let why = errors::readable_cause(&e);
                transient(io::ErrorKind::UnexpectedEof, format!("{what}: the download was cut off ({why})"))
            })?;
            body.extend_from_slice(&part);
        }
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

    /// Refuses a bucket without object lock up front: every write with retention would fail there.
    async fn require_object_lock(&self) -> io::Result<()> {
        self.count(Req::Bucket);
        let enabled = match self.client.get_object_lock_configuration().bucket(&self.opts.bucket).send().await {
            Ok(o) => o
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| e.as_str() == "Enabled"),
            Err(e) if matches!(e.code(), Some("ObjectLockConfigurationNotFoundError")) => false,
            Err(e) => return Err(self.map_err("read the bucket's object lock configuration", e)),
        };
        if enabled {
            return Ok(());
        }
        Err(s3_error(
            io::ErrorKind::InvalidInput,
            S3Failure::Other,
            "ObjectLockNotEnabled",
            format!(
                "bucket {} has no object lock; name a new bucket and add --create-bucket (object lock is \
                 enabled when a bucket is created)",
                self.opts.bucket
            ),
        ))
    }

    /// The repository's object kind and name for a bucket key under the prefix; None for keys that
    /// are not the repository's.
    fn object_of_key(&self, key: &str) -> Option<(Kind, String)> {
        let rel =
            if self.opts.prefix.is_empty() { key } else { key.strip_prefix(&self.opts.prefix)?.strip_prefix('/')? };
        if rel == "config" {
            return Some((Kind::Config, rel.to_string()));
        }
        let (dir, rest) = rel.split_once('/')?;
        let kind = [Kind::Key, Kind::Pack, Kind::Index, Kind::Snapshot, Kind::Lock, Kind::Condemned, Kind::Dict]
            .into_iter()
            .find(|k| k.dir() == dir)?;
        let name = match (kind, rest.split_once('/')) {
            (Kind::Pack, Some((fan, name))) if name.get(..2) == Some(fan) => name,
            (Kind::Pack, _) => return None,
            (_, Some(_)) => return None,
            (_, None) => rest,
        };
        let obj = ObjectName::listed(kind, name.to_string())?;
        Some((kind, obj.as_str().to_string()))
    }

    async fn deleted_objects_async(&self) -> io::Result<Vec<DeletedObject>> {
        let prefix = if self.opts.prefix.is_empty() { String::new() } else { format!("{}/", self.opts.prefix) };
        let what = format!("list the versions under {}/{prefix}", self.opts.bucket);
        /// What one key has: its kept versions (last modified, size), its delete markers, and
        /// whether a marker is the current version.
        #[derive(Default)]
        struct Seen {
            kept: Vec<(DateTime, u64)>,
            markers: Vec<String>,
            marker_current: bool,
        }
        let mut by_key: std::collections::BTreeMap<String, Seen> = Default::default();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            self.count(Req::List);
            let resp = self
                .client
                .list_object_versions()
                .bucket(&self.opts.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| self.map_err(&what, e))?;
            for v in resp.versions() {
                if let Some(k) = v.key() {
                    let t = v.last_modified().copied().unwrap_or(DateTime::from_secs(0));
                    by_key.entry(k.to_string()).or_default().kept.push((t, v.size().unwrap_or(0).max(0) as u64));
                }
            }
            for m in resp.delete_markers() {
                if let Some(k) = m.key() {
                    let seen = by_key.entry(k.to_string()).or_default();
                    seen.markers.push(m.version_id().unwrap_or("null").to_string());
                    seen.marker_current |= m.is_latest().unwrap_or(false);
                }
            }
            if !resp.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = resp.next_key_marker().map(str::to_string);
            version_marker = resp.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() && version_marker.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for (key, seen) in by_key {
            let Some((kind, name)) = self.object_of_key(&key) else { continue };
            // Every marker goes, not only the newest: one that is not current hides nothing, and
            // removing them all needs no ordering of versions by time.
            let Some(&(_, size)) = seen.kept.iter().max_by_key(|(t, _)| (t.secs(), t.subsec_nanos())) else { continue };
            if seen.marker_current {
                out.push(DeletedObject { kind, name, key, size, markers: seen.markers });
            }
        }
        Ok(out)
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
        if self.lock.read().is_some() {
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
            } else if self.lock.read().is_some() {
                self.require_object_lock().await?;
            }
            let key = self.key_unchecked(Kind::Config, "config");
            if self.head_size(&key, "read config").await?.is_some() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "config exists"));
            }
            Ok(())
        })
    }

    fn read(&self, obj: &ObjectName) -> io::Result<Vec<u8>> {
        let (kind, name, key) = (obj.kind(), obj.as_str(), self.key(obj));
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

    fn read_range(&self, obj: &ObjectName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let key = self.key(obj);
        if len == 0 {
            return Ok(Vec::new());
        }
        if offset.checked_add(len).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("range {offset}+{len} overflows")));
        }
        self.rt.block_on(self.get(&key, Some((offset, len)), &format!("read {key}")))
    }

    fn write(&self, obj: &ObjectName, data: &[u8]) -> io::Result<()> {
        let (kind, name, key) = (obj.kind(), obj.as_str(), self.key(obj));
        self.rt.block_on(self.put(kind, &key, Body::Mem(data), &format!("write {key}")))?;
        self.sizes.lock().insert((kind, name.to_string()), data.len() as u64);
        Ok(())
    }

    /// Streams the file up: a part at a time from disk, so a pack spooled by the packer never
    /// sits in memory whole (the body is read once for its checksum and once more as it is sent).
    fn write_file(&self, obj: &ObjectName, path: &Path) -> io::Result<()> {
        let (kind, name, key) = (obj.kind(), obj.as_str(), self.key(obj));
        let len = std::fs::metadata(path)?.len();
        self.rt.block_on(self.put(kind, &key, Body::File(path, len), &format!("write {key}")))?;
        self.sizes.lock().insert((kind, name.to_string()), len);
        Ok(())
    }

    fn list(&self, kind: Kind) -> io::Result<Vec<(ObjectName, u64)>> {
        if kind.dir().is_empty() {
            // The config sits beside the folders: a HEAD, not a listing of the whole prefix.
            let key = self.key_unchecked(kind, "config");
            return Ok(match self.rt.block_on(self.head_size(&key, "read config"))? {
                Some(n) => vec![(ObjectName::config(), n)],
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
        let mut out: Vec<(ObjectName, u64)> =
            out.into_iter().filter_map(|(n, s)| Some((ObjectName::listed(kind, n)?, s))).collect();
        out.sort();
        let mut sizes = self.sizes.lock();
        for (n, s) in &out {
            sizes.insert((kind, n.as_str().to_string()), *s);
        }
        Ok(out)
    }

    fn size(&self, obj: &ObjectName) -> io::Result<u64> {
        let (kind, name, key) = (obj.kind(), obj.as_str(), self.key(obj));
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

    fn delete(&self, obj: &ObjectName) -> io::Result<()> {
        let (kind, name, key) = (obj.kind(), obj.as_str(), self.key(obj));
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

    fn versioned(&self) -> Option<&dyn Versioned> {
        Some(self)
    }

    fn requests(&self) -> Vec<(&'static str, u64)> {
        REQS.iter()
            .zip(&self.counts)
            .map(|((_, n), c)| (*n, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }
}

impl Versioned for S3Backend {
    fn set_object_lock(&self, lock: Option<ObjectLock>) {
        *self.lock.write() = lock;
    }

    fn object_lock(&self) -> Option<ObjectLock> {
        self.lock.read().clone()
    }

    fn deleted_objects(&self) -> io::Result<Vec<DeletedObject>> {
        self.rt.block_on(self.deleted_objects_async())
    }

    fn undelete(&self, obj: &DeletedObject) -> io::Result<()> {
        self.rt.block_on(async {
            for m in &obj.markers {
                self.count(Req::Delete);
                self.client
                    .delete_object()
                    .bucket(&self.opts.bucket)
                    .key(&obj.key)
                    .version_id(m)
                    .send()
                    .await
                    .map_err(|e| self.map_err(&format!("remove the delete marker of {}", obj.key), e))?;
            }
            Ok::<(), io::Error>(())
        })?;
        self.sizes.lock().remove(&(obj.kind, obj.name.clone()));
        Ok(())
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
    fn a_connection_dropped_mid_request_is_retried_and_a_user_error_is_not() {
        use aws_sdk_s3::error::SdkError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::retry::ErrorKind;
        let mut o = S3Options::new("b");
        o.endpoint = Some("http://127.0.0.1:1".into());
        let be = S3Backend::new(o).unwrap();
        let dispatch = |c: ConnectorError| -> SdkError<aws_sdk_s3::operation::get_object::GetObjectError> {
            SdkError::dispatch_failure(c)
        };
        let dropped =
            ConnectorError::other("connection closed before message completed".into(), Some(ErrorKind::TransientError));
        let e = be.map_err("read x", dispatch(dropped));
        assert!(super::super::retry::is_transient(&e), "{e}");
        assert!(e.to_string().contains("connection closed before message completed"), "{e}");
        let user = ConnectorError::user("bad request body".into());
        assert!(!super::super::retry::is_transient(&be.map_err("read x", dispatch(user))));
    }

    #[test]
    fn key_layout() {
        let mut o = S3Options::new("b");
        o.endpoint = Some("http://127.0.0.1:1".into());
        o.prefix = "p".into();
        let be = S3Backend::new(o).unwrap();
        use crate::format::id::{PackId, SnapshotId};
        assert_eq!(be.key(&ObjectName::config()), "p/config");
        assert_eq!(be.key(&ObjectName::of(&PackId([0xab; 32]))), format!("p/data/ab/{}", "ab".repeat(32)));
        assert_eq!(be.key(&ObjectName::of(&SnapshotId([0xef; 32]))), format!("p/snapshots/{}", "ef".repeat(32)));
        // Keys from a version listing map back to the repository's objects, and only those.
        for (kind, name) in
            [(Kind::Config, "config"), (Kind::Pack, "abcd"), (Kind::Snapshot, "ef"), (Kind::Lock, "l-1")]
        {
            let obj = ObjectName::listed(kind, name.to_string()).unwrap();
            assert_eq!(be.object_of_key(&be.key(&obj)), Some((kind, name.to_string())));
        }
        for other in
            ["config", "p/data/cd/abcd", "p/data/abcd", "p/snapshots/a/b", "p/other/x", "p/keys/../x", "pp/config"]
        {
            assert_eq!(be.object_of_key(other), None, "{other}");
        }
    }
}
