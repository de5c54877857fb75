//! Turning the SDK's failures into one line a user can act on: the cause (from the error chain and
//! the store's code) and its fix, the retry mark for transient ones, and a second look at a HEAD
//! request's bare 403.

use super::errors::{network_cause, s3_error_in};
use super::{request_timeout, Req, S3Backend, S3Error, S3Failure};
use crate::backend::retry::transient_error;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::io;

/// Whether `e` says the bucket itself does not exist (not just one object).
pub fn is_missing_bucket(e: &io::Error) -> bool {
    S3Failure::of(e) == Some(S3Failure::NoSuchBucket)
}

/// An error whose message is `cause; fix` (the failure's own fix unless `fix` says otherwise),
/// marked for the retry decorator when `transient`.
pub(super) fn fail(
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
pub(super) fn s3_error(kind: io::ErrorKind, failure: S3Failure, code: &str, message: String) -> io::Error {
    io::Error::new(kind, S3Error { failure, code: code.into(), message })
}

impl S3Backend {
    /// Turns an SDK error into an `io::Error` whose message is one line: the cause (read from the
    /// whole error chain and the store's error code) and its fix. The one place that knows what
    /// S3's error codes mean to a user; [`errors`] knows how the SDK's errors nest.
    pub(super) fn map_err<E>(&self, what: &str, e: SdkError<E>) -> io::Error
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
                    // A connection dropped in the middle of the exchange (hyper's "connection
                    // closed before message completed"), as a server that crashes or restarts
                    // does to its keep-alive connections: another attempt may well succeed.
                    _ if d.as_other() == Some(aws_smithy_types::retry::ErrorKind::TransientError) => fail(
                        K::ConnectionAborted,
                        F::Other,
                        "Dispatch",
                        with_detail(&format!("{what}: the request to {endpoint} failed")),
                        None,
                        true,
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
    pub(super) fn no_answer(&self, what: &str) -> String {
        format!("no answer in time ({what}; at most 5 s to connect, {} s per request)", request_timeout().as_secs())
    }

    /// The endpoint's host name, for the DNS message.
    pub(super) fn host(&self) -> String {
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
    pub(super) async fn explain_head(&self, key: Option<&str>, what: &str, e: io::Error) -> io::Error {
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
}

/// The permission a failed operation needed, for the access-denied hint.
pub(super) fn permission_for(what: &str) -> &'static str {
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
