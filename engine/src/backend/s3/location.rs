//! The S3 backend in the location registry: the URL grammar (`s3:http[s]://host[:port]/bucket[/prefix]`,
//! path-style, or `s3://bucket[/prefix]`), the config's `storage` section with `provider: "s3"`,
//! and the precedence that fills in the rest: flags, then `AWS_*` variables, then the config.

use std::sync::Arc;

use super::{ObjectLock, S3Backend, S3Options, Sse};
use crate::backend::kind::{BackendKind, Sources, Spec};
use crate::backend::Backend;
use crate::config::storage::{valid_bucket, StorageConfig};
use crate::error::{Error, Result};

pub const KIND: BackendKind = BackendKind {
    name: "s3",
    parse: |url, rest| Ok(Box::new(parse(url, rest)?)),
    from_config: |st| Ok(Box::new(from_config(st)?)),
    env_vars: &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ],
};

/// The S3 part of a URL: `rest` is what follows `s3:` in `url`.
pub fn parse(url: &str, rest: &str) -> Result<S3Options> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "repository {url}: {why}; write s3:http[s]://host[:port]/bucket[/prefix] or s3://bucket[/prefix]"
        ))
    };
    let (endpoint, path) = if let Some(p) = rest.strip_prefix("//") {
        (None, p)
    } else {
        let (scheme, after) = rest.split_once("://").ok_or_else(|| bad("no endpoint URL"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the endpoint must start with http:// or https://"));
        }
        let (host, path) = after.split_once('/').unwrap_or((after, ""));
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host in the endpoint (credentials go in the environment or config, not the URL)"));
        }
        (Some(format!("{scheme}://{host}")), path)
    };
    let path = path.trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket"));
    }
    if !valid_bucket(bucket) {
        return Err(bad(&format!("{bucket:?} is not a valid bucket name (3-63 lower-case letters, digits, - and .)")));
    }
    let mut o = S3Options::new(bucket);
    o.endpoint = endpoint;
    o.prefix = prefix.trim_matches('/').to_string();
    if o.prefix.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") && !o.prefix.is_empty() {
        return Err(bad("the prefix has an empty, `.` or `..` part"));
    }
    Ok(o)
}

/// The bucket and prefix of the config's storage section.
fn from_config(st: &StorageConfig) -> Result<S3Options> {
    let bucket = st
        .bucket
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Usage("the config's storage provider is s3 but storage.bucket is not set".into()))?;
    let mut o = S3Options::new(bucket);
    o.prefix = st.prefix.as_deref().unwrap_or("").trim_matches('/').to_string();
    Ok(o)
}

/// Fills in what the URL does not say, flags beating environment beating the config file: the
/// endpoint, region, credentials, addressing, storage class, server-side encryption and
/// object lock.
pub fn apply_settings(o: &mut S3Options, s: &Sources) -> Result<()> {
    let st = s.storage;
    let env = |k: &str| s.env.get_trimmed(k).map(str::to_string);
    let conf = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    if o.endpoint.is_none() {
        o.endpoint = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")).or_else(|| conf(&st.endpoint));
        if let Some(e) = &o.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Usage(format!("the S3 endpoint {e} must start with http:// or https://")));
            }
        }
    }
    o.region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).or_else(|| conf(&st.region));
    let secret = |v: &Option<crate::config::secret::Secret>| {
        v.as_ref().map(|s| s.expose().trim().to_string()).filter(|s| !s.is_empty())
    };
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(a), Some(k)) => {
            o.access_key_id = Some(a);
            o.secret_access_key = Some(k);
            o.session_token = env("AWS_SESSION_TOKEN");
        }
        _ => {
            o.access_key_id = secret(&st.access_key_id);
            o.secret_access_key = secret(&st.secret_access_key);
        }
    }
    // Path-style with an endpoint of one's own (every S3-compatible store takes it); AWS itself
    // prefers virtual-hosted names.
    o.path_style = st.path_style.unwrap_or(o.endpoint.is_some());
    o.storage_class = s.flags.storage_class.clone().or_else(|| conf(&st.storage_class)).map(|c| c.to_ascii_uppercase());
    o.sse = match conf(&st.server_side_encryption).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => None,
        Some("aes256") => Some(Sse::Aes256),
        Some("aws:kms") => Some(Sse::Kms(conf(&st.kms_key_id))),
        Some(other) => {
            return Err(Error::Usage(format!("storage.serverSideEncryption {other:?}: use \"AES256\" or \"aws:kms\"")))
        }
    };
    o.object_lock = match (conf(&st.object_lock_mode), st.object_lock_days) {
        (None, None) => None,
        (Some(mode), Some(days)) if days > 0 => {
            Some(ObjectLock::new(&mode, days).map_err(|e| Error::Usage(format!("storage.objectLockMode/Days: {e}")))?)
        }
        _ => {
            return Err(Error::Usage(
                "object lock needs both storage.objectLockMode (GOVERNANCE or COMPLIANCE) and storage.objectLockDays (1 or more)"
                    .into(),
            ))
        }
    };
    if let Some(n) = s.flags.connections {
        o.connections = n;
    }
    Ok(())
}

impl Spec for S3Options {
    fn settle(&mut self, sources: &Sources) -> Result<()> {
        apply_settings(self, sources)
    }

    fn name(&self) -> String {
        self.url()
    }

    fn key(&self) -> String {
        // Debug leaves the secrets out; which key is used is part of what was opened.
        format!("{self:?} {:?}", self.access_key_id)
    }

    fn create_container(&mut self) -> bool {
        self.create_bucket = true;
        true
    }

    fn open(&self) -> Result<Arc<dyn Backend>> {
        let be = S3Backend::new(self.clone())
            .map_err(|e| Error::Other(format!("cannot set up the S3 client for {}: {e}", self.url())))?;
        Ok(Arc::new(be))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::Secret;
    use crate::openclaw::Env;
    use crate::repo::location::{self, Overrides};

    fn s3(url: &str) -> S3Options {
        parse(url, url.strip_prefix("s3:").unwrap()).unwrap()
    }

    fn refused(url: &str) -> String {
        let e = location::parse(url).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{url}");
        e.to_string()
    }

    #[test]
    fn good_urls() {
        let o = s3("s3:http://127.0.0.1:8333/bucket/some/prefix/");
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!((o.bucket.as_str(), o.prefix.as_str()), ("bucket", "some/prefix"));
        assert_eq!(o.url(), "s3:http://127.0.0.1:8333/bucket/some/prefix");
        let o = s3("s3:https://s3.example.com/b-1.x");
        assert_eq!(
            (o.endpoint.as_deref(), o.bucket.as_str(), o.prefix.as_str()),
            (Some("https://s3.example.com"), "b-1.x", "")
        );
        let o = s3("s3://my_bucket/p");
        assert_eq!((o.endpoint, o.bucket.as_str(), o.prefix.as_str()), (None, "my_bucket", "p"));
        let loc = location::parse("s3://bkt").unwrap();
        assert_eq!((loc.kind(), loc.name(), loc.local_path()), ("s3", "s3://bkt".to_string(), None));
    }

    #[test]
    fn bad_urls_say_why_and_how_to_write_one() {
        let how = "write s3:http[s]://host[:port]/bucket[/prefix] or s3://bucket[/prefix]";
        for (url, why) in [
            ("s3:bucket", "no endpoint URL"),
            ("s3:ftp://host/b", "the endpoint must start with http:// or https://"),
            ("s3:http:///b", "no host in the endpoint (credentials go in the environment or config, not the URL)"),
            ("s3:http://key:secret@host/b", "no host in the endpoint"),
            ("s3://", "no bucket"),
            ("s3:http://host", "no bucket"),
            ("s3://Bucket", "\"Bucket\" is not a valid bucket name (3-63 lower-case letters, digits, - and .)"),
            ("s3://ab", "\"ab\" is not a valid bucket name"),
            ("s3://bkt/a//b", "the prefix has an empty, `.` or `..` part"),
            ("s3://bkt/a/../b", "the prefix has an empty, `.` or `..` part"),
        ] {
            let m = refused(url);
            assert!(m.starts_with(&format!("repository {url}: {why}")), "{url}: {m}");
            assert!(m.ends_with(how), "{url}: {m}");
        }
    }

    fn settled(storage: &StorageConfig, env: &[(&str, &str)], flags: &Overrides) -> Result<S3Options> {
        let env = Env::from_pairs(env.iter().copied());
        let mut o = S3Options::new("bkt");
        apply_settings(&mut o, &Sources { storage, env: &env, flags })?;
        Ok(o)
    }

    fn full_config() -> StorageConfig {
        StorageConfig {
            endpoint: Some("https://conf.example".into()),
            region: Some("conf-region".into()),
            access_key_id: Some(Secret::new("conf-key")),
            secret_access_key: Some(Secret::new("conf-secret")),
            storage_class: Some("standard_ia".into()),
            ..StorageConfig::default()
        }
    }

    #[test]
    fn the_config_fills_what_nothing_else_says() {
        let o = settled(&full_config(), &[], &Overrides::default()).unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("https://conf.example"));
        assert_eq!(o.region.as_deref(), Some("conf-region"));
        assert_eq!(
            (o.access_key_id.as_deref(), o.secret_access_key.as_deref()),
            (Some("conf-key"), Some("conf-secret"))
        );
        assert_eq!(o.session_token, None);
        assert_eq!(o.storage_class.as_deref(), Some("STANDARD_IA"));
        assert!(o.path_style, "an endpoint of one's own means path-style");
        assert_eq!(o.connections, super::super::DEFAULT_CONNECTIONS);
    }

    #[test]
    fn the_environment_beats_the_config_and_flags_beat_both() {
        let env = [
            ("AWS_ENDPOINT_URL", "http://env-generic:1"),
            ("AWS_ENDPOINT_URL_S3", " http://env-s3:2 "),
            ("AWS_DEFAULT_REGION", "env-default-region"),
            ("AWS_ACCESS_KEY_ID", "env-key"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_SESSION_TOKEN", "env-token"),
        ];
        let flags = Overrides { storage_class: Some("glacier_ir".into()), connections: Some(9) };
        let o = settled(&full_config(), &env, &flags).unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://env-s3:2"));
        assert_eq!(o.region.as_deref(), Some("env-default-region"));
        assert_eq!(o.access_key_id.as_deref(), Some("env-key"));
        assert_eq!(o.secret_access_key.as_deref(), Some("env-secret"));
        assert_eq!(o.session_token.as_deref(), Some("env-token"));
        assert_eq!(o.storage_class.as_deref(), Some("GLACIER_IR"));
        assert_eq!(o.connections, 9);
        // AWS_REGION beats AWS_DEFAULT_REGION; AWS_ENDPOINT_URL serves when the S3 one is unset.
        let o = settled(
            &full_config(),
            &[("AWS_REGION", "r1"), ("AWS_DEFAULT_REGION", "r2"), ("AWS_ENDPOINT_URL", "http://g")],
            &flags,
        )
        .unwrap();
        assert_eq!((o.region.as_deref(), o.endpoint.as_deref()), (Some("r1"), Some("http://g")));
    }

    #[test]
    fn keys_come_as_a_pair() {
        // One of the two in the environment is not a pair: the config's pair is used.
        let o = settled(&full_config(), &[("AWS_ACCESS_KEY_ID", "env-key")], &Overrides::default()).unwrap();
        assert_eq!(
            (o.access_key_id.as_deref(), o.secret_access_key.as_deref()),
            (Some("conf-key"), Some("conf-secret"))
        );
        let o = settled(&StorageConfig::default(), &[], &Overrides::default()).unwrap();
        assert_eq!((o.access_key_id, o.secret_access_key), (None, None));
    }

    #[test]
    fn the_url_endpoint_is_kept_and_aws_itself_is_virtual_hosted() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "http://env:1")]);
        let mut o = s3("s3:http://url-host:9/bkt");
        apply_settings(&mut o, &Sources { storage: &full_config(), env: &env, flags: &Overrides::default() }).unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://url-host:9"));
        let o = settled(&StorageConfig::default(), &[], &Overrides::default()).unwrap();
        assert_eq!((o.endpoint, o.path_style), (None, false));
        let st = StorageConfig { path_style: Some(false), ..full_config() };
        assert!(!settled(&st, &[], &Overrides::default()).unwrap().path_style);
    }

    #[test]
    fn encryption_and_object_lock() {
        let st = StorageConfig {
            server_side_encryption: Some("AWS:KMS".into()),
            kms_key_id: Some("k1".into()),
            object_lock_mode: Some("governance".into()),
            object_lock_days: Some(30),
            ..StorageConfig::default()
        };
        let o = settled(&st, &[], &Overrides::default()).unwrap();
        assert_eq!(o.sse, Some(Sse::Kms(Some("k1".into()))));
        assert_eq!(o.object_lock, Some(ObjectLock { mode: "GOVERNANCE".into(), days: 30 }));
        let st = StorageConfig { server_side_encryption: Some("aes256".into()), ..StorageConfig::default() };
        assert_eq!(settled(&st, &[], &Overrides::default()).unwrap().sse, Some(Sse::Aes256));
    }

    #[test]
    fn bad_settings_are_usage_errors() {
        for (st, env, msg) in [
            (StorageConfig::default(), vec![("AWS_ENDPOINT_URL", "host:9000")], "the S3 endpoint host:9000 must start with http:// or https://"),
            (StorageConfig { endpoint: Some("ftp://x".into()), ..StorageConfig::default() }, vec![], "the S3 endpoint ftp://x must start with http:// or https://"),
            (StorageConfig { server_side_encryption: Some("des".into()), ..StorageConfig::default() }, vec![], "storage.serverSideEncryption \"des\": use \"AES256\" or \"aws:kms\""),
            (StorageConfig { object_lock_days: Some(3), ..StorageConfig::default() }, vec![], "object lock needs both storage.objectLockMode (GOVERNANCE or COMPLIANCE) and storage.objectLockDays (1 or more)"),
            (StorageConfig { object_lock_mode: Some("compliance".into()), object_lock_days: Some(0), ..StorageConfig::default() }, vec![], "object lock needs both"),
        ] {
            let e = settled(&st, &env, &Overrides::default()).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().starts_with(msg), "{e}");
        }
    }

    #[test]
    fn the_config_names_a_bucket() {
        let st = StorageConfig {
            provider: Some("s3".into()),
            bucket: Some(" bkt ".into()),
            prefix: Some("/a/b/".into()),
            ..StorageConfig::default()
        };
        let o = from_config(&st).unwrap();
        assert_eq!((o.bucket.as_str(), o.prefix.as_str()), ("bkt", "a/b"));
        let e = from_config(&StorageConfig { provider: Some("s3".into()), ..StorageConfig::default() }).unwrap_err();
        assert_eq!(e.to_string(), "the config's storage provider is s3 but storage.bucket is not set");
    }

    #[test]
    fn the_key_names_the_access_key_but_no_secret() {
        let mut o = S3Options::new("bkt");
        o.access_key_id = Some("AKIAEXAMPLE".into());
        o.secret_access_key = Some("very-secret".into());
        let k = Spec::key(&o);
        assert!(k.contains("AKIAEXAMPLE") && !k.contains("very-secret"), "{k}");
    }
}
