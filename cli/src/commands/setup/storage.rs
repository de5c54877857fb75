//! `setup`'s storage questions: where backups go (a folder, or an S3-compatible store with its
//! region, endpoint, bucket, folder and the variables holding its keys), from the flags or asked.
//! The providers, their defaults and the checks are the engine's (`commands::setup`).

use super::ask::Asker;
use super::Args;
use crate::ui::usage;
use crate::GlobalArgs;
use anyhow::Result;
use clawback_engine::commands::setup::answers::{check_bucket, check_endpoint, check_path, check_var};
use clawback_engine::commands::setup::providers::{self, Endpoint, Provider, PROVIDERS};
use clawback_engine::commands::setup::{self as plan, BucketAnswers, StorageAnswers};
use clawback_engine::openclaw::Env;
use clawback_engine::repo::location;

/// The provider: `--storage`, else asked (default: a folder).
pub fn provider(a: &Args, asker: &Asker) -> Result<&'static Provider> {
    if let Some(p) = a.storage.as_deref().and_then(providers::find) {
        return Ok(p);
    }
    let opts: Vec<(&str, &str)> = PROVIDERS.iter().map(|p| (p.name, p.what)).collect();
    Ok(&PROVIDERS[asker.choose("Where should backups go?", &opts, 0)?])
}

/// The storage answers for `provider`.
pub fn answers(g: &GlobalArgs, a: &Args, asker: &Asker, provider: &Provider, env: &Env) -> Result<StorageAnswers> {
    let check_path = |p: &str| check_path(env, p);
    if provider.is_folder() {
        let p = match &a.path {
            Some(p) => check_path(&p.to_string_lossy()).map_err(|e| usage(format!("--path {e}")))?,
            None => asker.ask_valid(
                "Repository folder",
                &location::default_repo_path(env).to_string_lossy(),
                "--path",
                check_path,
            )?,
        };
        return Ok(StorageAnswers::Folder(p));
    }
    let region = match &a.region {
        Some(r) => r.clone(),
        None => asker.ask("Region", provider.region)?,
    };
    let endpoint = match (&a.endpoint, provider.endpoint) {
        (Some(e), _) => Some(check_endpoint(e).map_err(|e| usage(format!("--endpoint {e}")))?),
        (None, Endpoint::Aws | Endpoint::Folder) => None,
        (None, Endpoint::R2Account) => Some(asker.ask_valid(
            "Cloudflare account id (from the R2 page)",
            "",
            "--endpoint",
            providers::r2_endpoint,
        )?),
        (None, Endpoint::B2Region) => {
            Some(asker.ask_valid("Endpoint", &providers::b2_endpoint(&region), "--endpoint", check_endpoint)?)
        }
        (None, Endpoint::Suggest(default)) => {
            Some(asker.ask_valid("Endpoint", default, "--endpoint", check_endpoint)?)
        }
    };
    let bucket = match &a.bucket {
        Some(b) => check_bucket(b).map_err(|e| usage(format!("--bucket {e}")))?,
        None if asker.tty => asker.ask_valid("Bucket", "", "--bucket", check_bucket)?,
        None => return Err(usage("--bucket is needed (or run setup on a terminal to be asked)")),
    };
    let prefix = match &a.prefix {
        Some(p) => p.clone(),
        None => asker.ask("Folder inside the bucket (empty: none)", plan::DEFAULT_PREFIX)?,
    };
    let access_key_var = match &a.access_key_env {
        Some(v) => check_var(v).map_err(usage)?,
        None => asker.ask_valid(
            "Environment variable holding the access key id",
            plan::DEFAULT_ACCESS_KEY_VAR,
            "--access-key-env",
            check_var,
        )?,
    };
    let secret_key_var = match &a.secret_key_env {
        Some(v) => check_var(v).map_err(usage)?,
        None => asker.ask_valid(
            "Environment variable holding the secret access key",
            plan::DEFAULT_SECRET_KEY_VAR,
            "--secret-key-env",
            check_var,
        )?,
    };
    for v in [&access_key_var, &secret_key_var] {
        if std::env::var_os(v).is_none() && !g.quiet {
            eprintln!(
                "clawback: note: {v} is not set here; set it in this shell and run setup again, or add it to {} \
                 (scheduled runs read it there)",
                crate::envfile::display(&crate::envfile::path_for(g.config.as_deref()))
            );
        }
    }
    Ok(StorageAnswers::Bucket(BucketAnswers { bucket, region, endpoint, prefix, access_key_var, secret_key_var }))
}
