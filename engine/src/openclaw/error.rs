//! Errors from reading OpenClaw's and clawback's config files. Each names the file and what is
//! wrong with it; none ever quotes a value from the file (a value may be a secret), only key
//! paths, line/column positions and `$include` paths.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid JSON5 at line {line}, column {column}{detail}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        /// What the parser expected there, without quoting the file (`": expected ..."` or empty).
        detail: String,
    },
    #[error("config file {path}: $include {include:?}: {why}")]
    Include { path: PathBuf, include: String, why: String },
    #[error("config file {path}: circular $include: {chain}")]
    IncludeCycle { path: PathBuf, chain: String },
    #[error(
        "config file {path}: $include {include:?} is nested more than {max} levels deep \
         (OpenClaw's limit); flatten the includes"
    )]
    IncludeDepth { path: PathBuf, include: String, max: usize },
    #[error("config file {path}: `{key}` {why}")]
    Invalid { path: PathBuf, key: String, why: String },
    #[error("config file {path} does not exist{hint}")]
    Missing { path: PathBuf, hint: String },
}

impl From<ConfigError> for crate::Error {
    fn from(e: ConfigError) -> Self {
        crate::Error::Usage(e.to_string())
    }
}
