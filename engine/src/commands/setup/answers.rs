//! The checks `setup` holds each answer to, whether it came from a flag or the terminal: each
//! gives the value as written into the config, or one line saying what is wrong with it.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::config::{valid_bucket, Schedule};
use crate::error::Result;
use crate::openclaw::Env;

/// An absolute, clean path (`~` expanded): the config resolves relative paths against its own
/// folder, so everything written into it is absolute.
pub fn absolute(env: &Env, p: &Path) -> Result<PathBuf> {
    crate::repo::host::absolute_clean(&env.expand(&p.to_string_lossy()))
}

/// An environment variable name a `${VAR}` reference can use.
pub fn check_var(v: &str) -> std::result::Result<String, String> {
    let v = v.trim();
    let ok = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(format!(
            "{v:?} is not an environment variable name (upper-case letters, digits and _, as ${{VAR}} references need)"
        ));
    }
    Ok(v.to_string())
}

/// An endpoint URL, without a trailing `/`.
pub fn check_endpoint(e: &str) -> std::result::Result<String, String> {
    let e = e.trim().trim_end_matches('/');
    if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 10 {
        return Err(format!("{e:?}: the endpoint is a URL starting with http:// or https://"));
    }
    Ok(e.to_string())
}

pub fn check_bucket(b: &str) -> std::result::Result<String, String> {
    let b = b.trim();
    if !valid_bucket(b) {
        return Err(format!("{b:?} is not a bucket name (3-63 lower-case letters, digits, - and .)"));
    }
    Ok(b.to_string())
}

/// `"2h"`, `"1d"` or a cron expression.
pub fn check_schedule(s: &str) -> std::result::Result<String, String> {
    Schedule::parse(s.trim()).map(|_| s.trim().to_string()).map_err(|e| format!("schedule {s:?}: {e}"))
}

/// A folder or file, made absolute.
pub fn check_path(env: &Env, p: &str) -> std::result::Result<PathBuf, String> {
    if p.trim().is_empty() {
        return Err("give a folder".into());
    }
    absolute(env, Path::new(p.trim())).map_err(|e| format!("{p:?}: {e}"))
}

/// The retention `setup` suggests.
pub const DEFAULT_KEEP: &str = "hourly=24 daily=7 weekly=4 monthly=12";

/// A retention answer like `daily=7 weekly=4` (spaces or commas between) as the config's
/// `retention` object.
pub fn parse_keep(s: &str) -> std::result::Result<Value, String> {
    let mut m = Map::new();
    for tok in s.split([' ', ',']).filter(|t| !t.is_empty()) {
        let (k, v) = tok.split_once('=').ok_or(format!("{tok:?}: write it as name=N, like daily=7"))?;
        let key = match k.trim().to_ascii_lowercase().as_str() {
            "last" => "keepLast",
            "hourly" => "keepHourly",
            "daily" => "keepDaily",
            "weekly" => "keepWeekly",
            "monthly" => "keepMonthly",
            "yearly" => "keepYearly",
            _ => return Err(format!("{k:?}: use last, hourly, daily, weekly, monthly or yearly")),
        };
        let n: u32 = v.trim().parse().map_err(|_| format!("{v:?} is not a whole number"))?;
        m.insert(key.into(), json!(n));
    }
    if m.is_empty() {
        return Err("keep at least one snapshot, e.g. last=10".into());
    }
    Ok(Value::Object(m))
}

/// The `--keep-*` flags given, as the config's `retention` object; None when none was given.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepFlags {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
}

impl KeepFlags {
    pub fn retention(&self) -> Option<Value> {
        let given = [
            ("keepLast", self.last),
            ("keepHourly", self.hourly),
            ("keepDaily", self.daily),
            ("keepWeekly", self.weekly),
            ("keepMonthly", self.monthly),
            ("keepYearly", self.yearly),
        ];
        let m: Map<String, Value> = given.into_iter().filter_map(|(k, v)| Some((k.to_string(), json!(v?)))).collect();
        (!m.is_empty()).then_some(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names() {
        assert_eq!(check_var(" AWS_KEY_2 ").unwrap(), "AWS_KEY_2");
        for bad in ["lower", "2X", "", "A-B", "A B"] {
            let e = check_var(bad).unwrap_err();
            assert!(
                e.ends_with(
                    "is not an environment variable name (upper-case letters, digits and _, as ${VAR} references need)"
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn endpoints_buckets_schedules() {
        assert_eq!(check_endpoint(" https://s3.example.com/ ").unwrap(), "https://s3.example.com");
        assert_eq!(
            check_endpoint("http://a").unwrap_err(),
            "\"http://a\": the endpoint is a URL starting with http:// or https://"
        );
        assert!(check_endpoint("s3.example.com").is_err());
        assert_eq!(check_bucket(" my-bucket ").unwrap(), "my-bucket");
        assert_eq!(
            check_bucket("B").unwrap_err(),
            "\"B\" is not a bucket name (3-63 lower-case letters, digits, - and .)"
        );
        assert_eq!(check_schedule(" 2h ").unwrap(), "2h");
        assert_eq!(check_schedule("0 3 * * *").unwrap(), "0 3 * * *");
        assert!(check_schedule("soon").unwrap_err().starts_with("schedule \"soon\": "));
    }

    #[test]
    fn paths_are_absolute_with_home_expanded() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(check_path(&env, " ~/backups/../repo ").unwrap(), PathBuf::from("/home/u/repo"));
        assert_eq!(check_path(&env, "/a/./b").unwrap(), PathBuf::from("/a/b"));
        assert_eq!(check_path(&env, "  ").unwrap_err(), "give a folder");
        let rel = check_path(&env, "rel").unwrap();
        assert!(rel.is_absolute() && rel.ends_with("rel"));
    }

    #[test]
    fn retention_answers() {
        assert_eq!(
            parse_keep(DEFAULT_KEEP).unwrap(),
            json!({ "keepHourly": 24, "keepDaily": 7, "keepWeekly": 4, "keepMonthly": 12 })
        );
        assert_eq!(parse_keep("Last=3,yearly=1").unwrap(), json!({ "keepLast": 3, "keepYearly": 1 }));
        assert_eq!(parse_keep("daily").unwrap_err(), "\"daily\": write it as name=N, like daily=7");
        assert_eq!(
            parse_keep("minutely=3").unwrap_err(),
            "\"minutely\": use last, hourly, daily, weekly, monthly or yearly"
        );
        assert_eq!(parse_keep("daily=x").unwrap_err(), "\"x\" is not a whole number");
        assert_eq!(parse_keep(" ").unwrap_err(), "keep at least one snapshot, e.g. last=10");
        assert_eq!(KeepFlags::default().retention(), None);
        let k = KeepFlags { daily: Some(7), last: Some(0), ..KeepFlags::default() };
        assert_eq!(k.retention().unwrap(), json!({ "keepLast": 0, "keepDaily": 7 }));
    }
}
