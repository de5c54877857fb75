//! The keys clawback's config knows, and the check that runs on each file before its values are
//! used: unknown keys become warnings (with a "did you mean"), wrong types become errors naming
//! the file and key (never the value), and secrets written literally into a file become warnings
//! suggesting `${VAR}`.

use std::path::Path;

use serde_json::Value;

use crate::openclaw::error::ConfigError;
use crate::openclaw::include::kind_name;
use crate::openclaw::vars::has_reference;

pub(super) enum Kind {
    Bool,
    Str,
    /// A whole number from 0 to 2³²−1.
    UInt,
    /// A list of strings (a single string counts as a list of one).
    StrList,
    /// A string or a number, kept as a string (chat ids).
    StrOrNum,
    /// One of these words, case-insensitive, kept lower-case.
    OneOf(&'static [&'static str]),
    /// A secret string; `var` is the variable to suggest instead of a literal; `url` means only a
    /// URL carrying a credential counts as a literal secret.
    Secret {
        var: &'static str,
        url: bool,
    },
    Object(&'static [(&'static str, Kind)]),
}

use Kind::*;

/// The `backup` section (and clawback's own file), as docs/CONTRACT.md lists it.
pub(super) static SECTION: Kind = Object(&[
    ("$schema", Str),
    ("enabled", Bool),
    ("schedule", Str),
    ("include", Object(&[("stateDir", Bool), ("workspace", Bool), ("extraPaths", StrList), ("gitignore", Bool)])),
    (
        "storage",
        Object(&[
            ("provider", OneOf(&crate::backend::registry::NAMES)),
            ("endpoint", Str),
            ("bucket", Str),
            ("region", Str),
            ("accessKeyId", Secret { var: "AWS_ACCESS_KEY_ID", url: false }),
            ("secretAccessKey", Secret { var: "AWS_SECRET_ACCESS_KEY", url: false }),
            ("prefix", Str),
            ("path", Str),
            ("pathStyle", Bool),
            ("storageClass", Str),
            ("serverSideEncryption", OneOf(&["aes256", "aws:kms"])),
            ("kmsKeyId", Str),
            ("objectLockMode", OneOf(&["governance", "compliance"])),
            ("objectLockDays", UInt),
        ]),
    ),
    (
        "encryption",
        Object(&[
            ("enabled", Bool),
            ("algorithm", Str),
            ("passphrase", Secret { var: "CLAWBACK_PASSWORD", url: false }),
            ("keyFile", Str),
            ("passwordCommand", Str),
        ]),
    ),
    (
        "retention",
        Object(&[
            ("maxBackups", UInt),
            ("maxAgeDays", UInt),
            ("keepLast", UInt),
            ("keepHourly", UInt),
            ("keepDaily", UInt),
            ("keepWeekly", UInt),
            ("keepMonthly", UInt),
            ("keepYearly", UInt),
            ("keepWithin", Str),
            ("pruneEvery", Str),
        ]),
    ),
    ("exclude", StrList),
    (
        "notify",
        Object(&[
            ("onFailure", Bool),
            ("onSuccess", Bool),
            ("webhook", Secret { var: "CLAWBACK_WEBHOOK_URL", url: true }),
            (
                "telegram",
                Object(&[("botToken", Secret { var: "TELEGRAM_BOT_TOKEN", url: false }), ("chatId", StrOrNum)]),
            ),
            ("openclawEvent", Bool),
            ("slack", Secret { var: "CLAWBACK_SLACK_WEBHOOK_URL", url: true }),
            (
                "email",
                Object(&[
                    ("smtpHost", Str),
                    ("smtpPort", UInt),
                    ("username", Str),
                    ("password", Secret { var: "CLAWBACK_SMTP_PASSWORD", url: false }),
                    ("from", Str),
                    ("to", StrList),
                    ("starttls", Bool),
                ]),
            ),
        ]),
    ),
    ("notifyOnFailure", Bool),
    ("hooks", Object(&[("before", StrList), ("after", StrList), ("timeout", UInt), ("abortOnFailure", Bool)])),
    ("envFile", Str),
]);

pub(super) struct Checker<'a> {
    pub file: &'a Path,
    /// Where `.env` lives, for the literal-secret advice.
    pub state_dir: &'a Path,
    pub warnings: Vec<String>,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, why: String) -> ConfigError {
        ConfigError::Invalid { path: self.file.to_path_buf(), key: key.to_string(), why }
    }

    /// Checks `v` (the raw value, before substitution) against `kind`, normalizing lenient forms
    /// in place (a string where a list is expected, a number chat id, provider case).
    pub fn check(&mut self, v: &mut Value, kind: &Kind, key: &str) -> Result<(), ConfigError> {
        if v.is_null() {
            return Ok(());
        }
        let found = kind_name(v);
        match kind {
            Bool if !v.is_boolean() => Err(self.invalid(key, format!("should be true or false, found {found}"))),
            Str if !v.is_string() => Err(self.invalid(key, format!("should be a string, found {found}"))),
            UInt if v.as_u64().is_none_or(|n| n > u32::MAX as u64) => {
                Err(self.invalid(key, format!("should be a whole number, 0 or more, found {}", describe_number(v))))
            }
            StrList => {
                if v.is_string() {
                    *v = Value::Array(vec![v.take()]);
                }
                let Value::Array(items) = v else {
                    return Err(self.invalid(key, format!("should be a list of strings, found {found}")));
                };
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        return Err(self.invalid(
                            &format!("{key}[{i}]"),
                            format!("should be a string, found {}", kind_name(item)),
                        ));
                    }
                }
                Ok(())
            }
            StrOrNum => match v {
                Value::String(_) => Ok(()),
                Value::Number(n) => {
                    *v = Value::String(n.to_string());
                    Ok(())
                }
                _ => Err(self.invalid(key, format!("should be a string or number, found {found}"))),
            },
            OneOf(words) => {
                let ok = v.as_str().map(|s| s.trim().to_ascii_lowercase()).filter(|s| words.contains(&s.as_str()));
                match ok {
                    Some(s) => {
                        *v = Value::String(s);
                        Ok(())
                    }
                    None => {
                        let list: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
                        Err(self.invalid(key, format!("should be one of {}", list.join(", "))))
                    }
                }
            }
            Secret { var, url } => {
                let Some(s) = v.as_str() else {
                    return Err(self.invalid(key, format!("should be a string, found {found}")));
                };
                let literal = !s.trim().is_empty() && !has_reference(s);
                if literal && (!url || url_has_credential(s)) {
                    self.warnings.push(format!(
                        "{}: `{key}` holds a secret written into the file; put it in an \
                         environment variable or {} and write \"${{{var}}}\" here instead",
                        self.file.display(),
                        self.state_dir.join(".env").display()
                    ));
                }
                Ok(())
            }
            Object(fields) => {
                let Value::Object(map) = v else {
                    return Err(self.invalid(key, format!("should be an object, found {found}")));
                };
                for (k, child) in map.iter_mut() {
                    let child_key = if key.is_empty() { k.clone() } else { format!("{key}.{k}") };
                    match fields.iter().find(|(name, _)| name == k) {
                        Some((_, kind)) => self.check(child, kind, &child_key)?,
                        None => {
                            let hint = suggest(k, fields.iter().map(|(n, _)| *n))
                                .map(|s| format!("; did you mean `{s}`?"))
                                .unwrap_or_default();
                            self.warnings
                                .push(format!("{}: unknown key `{child_key}` ignored{hint}", self.file.display()));
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A number is described by its shape only ("a negative number", "a fraction"), never echoed.
fn describe_number(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() && n.as_i64().is_some_and(|x| x < 0) => "a negative number".into(),
        Value::Number(n) if n.is_f64() => "a fraction".into(),
        Value::Number(_) => "a number that is too large".into(),
        other => kind_name(other).into(),
    }
}

/// The known key closest to an unknown one: same letters in another case, or at most two edits.
fn suggest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .filter(|k| !k.starts_with('$'))
        .map(|k| {
            let d = if k.to_ascii_lowercase() == lower { 0 } else { edit_distance(&lower, &k.to_ascii_lowercase()) };
            (d, k)
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether a URL carries a credential: a password in it, a query parameter named like a token
/// (`token`, `key`, `secret`, `sig`, `auth`, `pass`...), a known webhook service whose path is
/// the token (Slack, Discord, Telegram, Teams, IFTTT), or a long random-looking path segment.
pub fn url_has_credential(url: &str) -> bool {
    let url = url.trim();
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let (authority, path_query) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()) {
            return true;
        }
    }
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority).to_ascii_lowercase();
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, q.split('#').next().unwrap_or("")),
        None => (path_query.split('#').next().unwrap_or(""), ""),
    };
    const NAMES: &[&str] = &["token", "key", "secret", "sig", "auth", "pass", "pwd", "code", "credential"];
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = name.to_ascii_lowercase();
        if !value.is_empty() && NAMES.iter().any(|n| name.contains(n)) {
            return true;
        }
    }
    let known = (host.ends_with("hooks.slack.com") && path.starts_with("/services/"))
        || ((host.ends_with("discord.com") || host.ends_with("discordapp.com")) && path.starts_with("/api/webhooks/"))
        || (host == "api.telegram.org" && path.starts_with("/bot"))
        || host.ends_with("webhook.office.com")
        || host == "maker.ifttt.com";
    if known {
        return true;
    }
    path.split('/').any(|seg| {
        seg.len() >= 24
            && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && seg.chars().any(|c| c.is_ascii_digit())
            && seg.chars().any(|c| c.is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials() {
        for u in [
            "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            "https://discord.com/api/webhooks/123/abcDEF",
            "https://api.telegram.org/bot123:ABC/sendMessage",
            "https://example.com/hook?token=abc",
            "https://example.com/hook?x=1&api_key=abc",
            "https://user:pw@example.com/hook",
            "https://example.com/hooks/3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
        ] {
            assert!(url_has_credential(u), "{u}");
        }
        for u in [
            "https://example.com/hook",
            "https://ntfy.sh/backups",
            "https://example.com/hook?token=",
            "https://user@example.com/x",
            "not a url",
            "https://example.com/a-very-long-but-plain-words-path",
        ] {
            assert!(!url_has_credential(u), "{u}");
        }
    }

    #[test]
    fn suggestions() {
        let known = ["storage", "schedule", "$schema"];
        assert_eq!(suggest("storag", known.into_iter()), Some("storage"));
        assert_eq!(suggest("Schedule", known.into_iter()), Some("schedule"));
        assert_eq!(suggest("zzz", known.into_iter()), None);
        assert_eq!(suggest("schema", known.into_iter()), None);
    }
}
