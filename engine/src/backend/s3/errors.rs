//! What an S3 failure means to a user: the cause, read from the whole error chain of the SDK's
//! error (socket errors, DNS, TLS, timeouts, credential providers) and from the store's error
//! codes, as one line with its fix. The only place that knows how the SDK's errors nest.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// The causes of S3 failures a user can act on, each with its fix. `test` and `setup` map them to
/// their checks; everything else reads the one-line message of [`S3Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum S3Failure {
    /// Nothing listens at the endpoint's host and port.
    ConnectionRefused,
    /// The endpoint's host name does not resolve.
    Dns,
    /// The TLS handshake failed (plain HTTP server behind https://, bad certificate).
    Tls,
    /// No answer in time.
    Timeout,
    /// No access key found: not in the config, not in the environment, no AWS profile or role.
    NoCredentials,
    /// The access key id is not known to the store.
    UnknownAccessKey,
    /// The secret access key does not match the access key id.
    SignatureMismatch,
    /// This machine's clock is too far from the store's.
    ClockSkew,
    /// The key may not do what was asked.
    AccessDenied,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The bucket lives in another region than the one requests are signed for.
    WrongRegion,
    /// Anything else (the message says what the store or the network said).
    Other,
}

impl S3Failure {
    /// What the user should do about it, as the second half of the one-line message.
    pub fn fix(self) -> &'static str {
        match self {
            S3Failure::ConnectionRefused => "is the server running and the endpoint right?",
            S3Failure::Dns => "check the host name in the endpoint URL and this machine's DNS",
            S3Failure::Tls => {
                "if the server speaks plain HTTP, use http:// in the endpoint; else check its certificate"
            }
            S3Failure::Timeout => {
                "check the network and the endpoint, and whether the server is overloaded (CLAWBACK_S3_TIMEOUT sets the seconds per request)"
            }
            S3Failure::NoCredentials => {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.accessKeyId and storage.secretAccessKey in clawback's config"
            }
            S3Failure::UnknownAccessKey => "check storage.accessKeyId or AWS_ACCESS_KEY_ID",
            S3Failure::SignatureMismatch => "check storage.secretAccessKey or AWS_SECRET_ACCESS_KEY",
            S3Failure::ClockSkew => "set this machine's clock (enable NTP) and retry",
            S3Failure::AccessDenied => "give the key list, read, write and delete rights on the bucket (its policy)",
            S3Failure::NoSuchBucket => "create it with `clawback init --create-bucket`, or check the bucket name",
            S3Failure::WrongRegion => "set storage.region or AWS_REGION to the bucket's region",
            S3Failure::Other => "retry; if it persists, check the store's logs",
        }
    }

    /// The cause of `e`, if an S3 request failed (looks through the retry decorator's marker and
    /// any other wrapper that keeps the error as its source).
    pub fn of(e: &io::Error) -> Option<S3Failure> {
        s3_error_in(e).map(|s| s.failure)
    }

    /// The cause anywhere in an error chain (an engine `Error`, an `anyhow` chain's links).
    pub fn find(e: &(dyn StdError + 'static)) -> Option<S3Failure> {
        let mut cur = Some(e);
        while let Some(c) = cur {
            if let Some(s) = c.downcast_ref::<S3Error>() {
                return Some(s.failure);
            }
            if let Some(f) = c.downcast_ref::<io::Error>().and_then(S3Failure::of) {
                return Some(f);
            }
            cur = c.source();
        }
        None
    }
}

/// The `S3Error` inside `e`, if any.
pub(crate) fn s3_error_in(e: &io::Error) -> Option<&S3Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = e.get_ref().map(|i| i as &(dyn StdError + 'static));
    while let Some(c) = cur {
        if let Some(s) = c.downcast_ref::<S3Error>() {
            return Some(s);
        }
        cur = c.source();
    }
    None
}

/// An S3 failure as the user reads it: one line, cause then fix. Holds no SDK error, so nothing
/// prints a Debug dump of one.
#[derive(Debug)]
pub struct S3Error {
    pub failure: S3Failure,
    /// The store's error code (`NoSuchBucket`, `SignatureDoesNotMatch`...) or a name of ours.
    pub code: String,
    pub message: String,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for S3Error {}

/// What a request that got no answer from the store failed on, read from the error chain.
pub(crate) fn network_cause(e: &(dyn StdError + 'static)) -> (S3Failure, String) {
    let mut texts = Vec::new();
    let mut cur = Some(e);
    let mut found = None;
    while let Some(c) = cur {
        if c.downcast_ref::<aws_credential_types::provider::error::CredentialsError>().is_some() {
            return (S3Failure::NoCredentials, "no S3 credentials found".into());
        }
        if let Some(io) = c.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => found = found.or(Some(S3Failure::ConnectionRefused)),
                io::ErrorKind::TimedOut => found = found.or(Some(S3Failure::Timeout)),
                _ => {}
            }
        }
        let t = c.to_string();
        let l = t.to_ascii_lowercase();
        if l.contains("dns error") || l.contains("failed to lookup address") || l.contains("name or service not known")
        {
            found = found.or(Some(S3Failure::Dns));
        } else if l.contains("connection refused") {
            found = found.or(Some(S3Failure::ConnectionRefused));
        } else if l.contains("tls")
            || l.contains("certificate")
            || l.contains("handshake")
            || l.contains("invalidcontenttype")
            || l.contains("corrupt message")
        {
            found = found.or(Some(S3Failure::Tls));
        } else if l.contains("credential") {
            return (S3Failure::NoCredentials, "no S3 credentials found".into());
        }
        texts.push(t);
        cur = c.source();
    }
    let detail = plain_detail(&texts);
    (found.unwrap_or(S3Failure::Other), detail)
}

/// The most specific readable message of a chain: the innermost that is prose, not a Debug dump
/// (the SDK's outer layers say only "dispatch failure", "io error"; some inner ones print structs).
fn plain_detail(texts: &[String]) -> String {
    const VAGUE: [&str; 6] = ["dispatch failure", "io error", "other", "timeout", "user error", "service error"];
    texts
        .iter()
        .rev()
        .map(|t| t.trim())
        .find(|t| {
            !t.is_empty()
                && !VAGUE.contains(t)
                && !t.contains(['{', '}'])
                && !t.contains("Unknown")
                && !t.contains('\n')
        })
        .map(|t| t.trim_end_matches(|c: char| c.is_ascii_whitespace() || c == '.').to_string())
        .unwrap_or_default()
}

/// The innermost readable cause of `e` (for failures with no better name).
pub(crate) fn readable_cause(e: &(dyn StdError + 'static)) -> String {
    let mut texts = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        texts.push(c.to_string());
        cur = c.source();
    }
    plain_detail(&texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<dyn StdError + Send + Sync>>);
    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_ref().map(|b| b.as_ref() as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn causes_from_the_chain() {
        let refused = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)"))),
            ))),
        );
        assert_eq!(network_cause(&refused).0, S3Failure::ConnectionRefused);
        let dns = Layer(
            "dispatch failure",
            Some(Box::new(Layer("client error (Connect)", Some(Box::new(Layer("dns error", None)))))),
        );
        assert_eq!(network_cause(&dns).0, S3Failure::Dns);
        let debug = Layer("dispatch failure", Some(Box::new(Layer("Unknown } }))", None))));
        let (f, detail) = network_cause(&debug);
        assert_eq!(f, S3Failure::Other);
        assert_eq!(detail, "");
    }

    #[test]
    fn found_through_wrappers() {
        let io = io::Error::new(
            io::ErrorKind::PermissionDenied,
            S3Error {
                failure: S3Failure::SignatureMismatch,
                code: "SignatureDoesNotMatch".into(),
                message: "m".into(),
            },
        );
        assert_eq!(S3Failure::of(&io), Some(S3Failure::SignatureMismatch));
        let marked = crate::backend::retry::transient_error(
            io::ErrorKind::TimedOut,
            S3Error { failure: S3Failure::Timeout, code: "Timeout".into(), message: "m".into() },
        );
        assert_eq!(S3Failure::of(&marked), Some(S3Failure::Timeout));
        let engine = crate::Error::Backend { op: "read", name: "config".into(), source: io };
        assert_eq!(S3Failure::find(&engine), Some(S3Failure::SignatureMismatch));
        assert_eq!(engine.to_string(), "m", "a store-wide failure reads as its own line");
        assert_eq!(S3Failure::find(&io::Error::other("plain")), None);
    }

    #[test]
    fn every_fix_is_one_clean_line() {
        use S3Failure::*;
        for f in [
            ConnectionRefused,
            Dns,
            Tls,
            Timeout,
            NoCredentials,
            UnknownAccessKey,
            SignatureMismatch,
            ClockSkew,
            AccessDenied,
            NoSuchBucket,
            WrongRegion,
            Other,
        ] {
            assert!(!f.fix().contains('\n') && !f.fix().contains('{'), "{f:?}");
        }
    }
}
