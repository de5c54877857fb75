//! The SDK client an S3 backend drives: TLS through rustls, the region, the credentials (the
//! config, then the environment, then the SDK's providers), no SDK retries, bounded timeouts.

use super::explain::fail;
use super::{request_timeout, S3Failure, S3Options};
use aws_sdk_s3::config::{
    retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, SharedCredentialsProvider,
};
use aws_sdk_s3::Client;
use std::io;
use std::time::Duration;

pub(super) async fn make_client(opts: &S3Options) -> io::Result<Client> {
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
        // Upload checksums are ours, sent as plain headers (`integrity`); the SDK's streaming
        // trailer checksums are not honoured by every S3-compatible store.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(e) = &opts.endpoint {
        b = b.endpoint_url(e.trim_end_matches('/'));
    }
    Ok(Client::from_conf(b.build()))
}
