//! `${VAR}` substitution in config strings and the variables it sees, as OpenClaw does it
//! (src/config/env-substitution.ts, src/config/env-vars.ts, docs/gateway/configuration.md):
//! - only `${NAME}` with `NAME` matching `[A-Z_][A-Z0-9_]*` is substituted, in string values
//!   (never in keys); `$${NAME}` yields the literal `${NAME}`; anything else is left as written;
//! - a missing or empty variable stays visibly unresolved (the `${NAME}` text is kept) and is
//!   reported, so the caller can warn and treat the value as unavailable;
//! - variables come from the process, then `./.env`, then `<state>/.env`, then the config's own
//!   `env.vars` (and string entries directly under `env`); an earlier source always wins.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::env::Env;

/// One `${...}` reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The key path of the string holding it (`backup.storage.secretAccessKey`, `list[2]`).
    pub key: String,
    /// The variable name (or the `pass:`/`gopass:` reference, which clawback does not run).
    pub name: String,
}

impl Unresolved {
    /// A one-line warning naming the key, the variable and the file (never a value).
    pub fn warning(&self, file: &Path) -> String {
        if self.name.contains(':') {
            format!(
                "{}: `{}` uses the secret-store reference ${{{}}}, which clawback does not \
                 resolve; the value is treated as unset",
                file.display(),
                self.key,
                self.name
            )
        } else {
            format!(
                "{}: `{}` refers to ${{{}}}, which is not set (environment, .env or env.vars); \
                 the value is treated as unset",
                file.display(),
                self.key,
                self.name
            )
        }
    }
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `pass:path` / `gopass:path`: OpenClaw runs the password store for these; clawback does not.
fn is_secret_store_ref(s: &str) -> bool {
    matches!(s.split_once(':'), Some(("pass" | "gopass", rest)) if !rest.is_empty())
}

enum Token<'a> {
    Escaped(&'a str),
    Reference(&'a str),
}

/// The token at byte `i` (which holds `$`), and the byte index of its closing `}`.
fn token_at(s: &str, i: usize) -> Option<(Token<'_>, usize)> {
    let rest = &s[i..];
    let (start, escaped) = if rest.starts_with("$${") {
        (i + 3, true)
    } else if rest.starts_with("${") {
        (i + 2, false)
    } else {
        return None;
    };
    let end = start + s[start..].find('}')?;
    let name = &s[start..end];
    if !(is_var_name(name) || is_secret_store_ref(name)) {
        // `$${lower}`: not an escape; the scan goes on at the next `$`.
        return None;
    }
    Some((if escaped { Token::Escaped(name) } else { Token::Reference(name) }, end))
}

/// Substitutes one string; pushes each reference it cannot resolve onto `unresolved`.
pub fn substitute_str(s: &str, vars: &Env, key: &str, unresolved: &mut Vec<Unresolved>) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap();
        if c == '$' {
            match token_at(s, i) {
                Some((Token::Escaped(name), end)) => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                    i = end + 1;
                    continue;
                }
                Some((Token::Reference(name), end)) => {
                    match vars.get(name).filter(|_| !name.contains(':')) {
                        Some(v) => out.push_str(v),
                        None => {
                            unresolved.push(Unresolved { key: key.to_string(), name: name.to_string() });
                            out.push_str(&s[i..=end]);
                        }
                    }
                    i = end + 1;
                    continue;
                }
                None => {}
            }
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// True when the string holds a `${NAME}` reference (escaped `$${NAME}` does not count).
pub fn has_reference(s: &str) -> bool {
    let mut i = 0;
    while let Some(off) = s[i..].find('$') {
        let at = i + off;
        match token_at(s, at) {
            Some((Token::Reference(_), _)) => return true,
            Some((Token::Escaped(_), end)) => i = end + 1,
            None => i = at + 1,
        }
    }
    false
}

/// Substitutes every string value in a JSON tree; keys are left alone.
pub fn substitute(value: &Value, vars: &Env, unresolved: &mut Vec<Unresolved>) -> Value {
    substitute_at(value, vars, "", unresolved)
}

/// Like [`substitute`], with key paths reported relative to `prefix`.
pub fn substitute_at(value: &Value, vars: &Env, prefix: &str, unresolved: &mut Vec<Unresolved>) -> Value {
    match value {
        Value::String(s) => Value::String(substitute_str(s, vars, prefix, unresolved)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| substitute_at(v, vars, &format!("{prefix}[{i}]"), unresolved))
                .collect(),
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                out.insert(k.clone(), substitute_at(v, vars, &key, unresolved));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Parses a dotenv file (the `dotenv` package's format): `KEY=value` lines, optional `export `,
/// `#` comments, single/double/backtick quotes (double quotes expand `\n`, `\r`, `\t`), quoted
/// values may span lines, unquoted values end at ` #`. Returns the pairs and the line numbers it
/// could not read (never their text).
pub fn parse_dotenv(text: &str) -> (Vec<(String, String)>, Vec<usize>) {
    let mut pairs = Vec::new();
    let mut bad = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let lineno = n + 1;
        let line = lines[n].trim_start();
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some(eq) = line.find(['=', ':']) else {
            bad.push(lineno);
            continue;
        };
        let key = line[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            bad.push(lineno);
            continue;
        }
        let rest = line[eq + 1..].trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'' | '`')) => {
                // Collect until the closing quote, across lines if needed.
                let mut buf = rest[1..].to_string();
                let mut closed = buf.find(q);
                while closed.is_none() && n < lines.len() {
                    buf.push('\n');
                    buf.push_str(lines[n]);
                    n += 1;
                    closed = buf.find(q);
                }
                let Some(end) = closed else {
                    bad.push(lineno);
                    continue;
                };
                let inner = &buf[..end];
                if q == '"' {
                    inner.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
                } else {
                    inner.to_string()
                }
            }
            _ => {
                let v = match rest.find(" #") {
                    Some(c) => &rest[..c],
                    None => rest,
                };
                v.trim().to_string()
            }
        };
        pairs.push((key.to_string(), value));
    }
    (pairs, bad)
}

/// The variables config substitution sees: `env` itself wins; then `<cwd>/.env` (when
/// `env.cwd` is set), then `<state>/.env`, then the config's `env.vars` and string entries under
/// `env`. A source never overrides a variable an earlier one set (empty counts as unset).
/// Returns the merged environment and warnings about `.env` lines that could not be read.
pub fn effective_vars(env: &Env, state_dir: &Path, config: Option<&Value>) -> (Env, Vec<String>) {
    let mut out = env.clone();
    let mut warnings = Vec::new();
    let add = |out: &mut Env, k: String, v: String| {
        if out.get(&k).is_none() && !v.trim().is_empty() {
            out.vars.insert(k, v);
        }
    };
    let mut files = Vec::new();
    if let Some(cwd) = &env.cwd {
        files.push(cwd.join(".env"));
    }
    let state_env = state_dir.join(".env");
    if !files.contains(&state_env) {
        files.push(state_env);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let (pairs, bad) = parse_dotenv(&text);
        for (k, v) in pairs {
            add(&mut out, k, v);
        }
        if !bad.is_empty() {
            let lines: Vec<String> = bad.iter().map(|l| l.to_string()).collect();
            warnings.push(format!(
                "{}: cannot read line {} (expected KEY=value); ignored",
                f.display(),
                lines.join(", ")
            ));
        }
    }
    for (k, v) in config_env_vars(config) {
        add(&mut out, k, v);
    }
    (out, warnings)
}

/// OpenClaw's `collectConfigEnvVars`: `env.vars` entries, and string entries directly under
/// `env` other than `shellEnv` and `vars`.
pub fn config_env_vars(config: Option<&Value>) -> Vec<(String, String)> {
    let mut out: HashMap<String, String> = HashMap::new();
    let Some(Value::Object(envcfg)) = config.and_then(|c| c.get("env")) else {
        return Vec::new();
    };
    if let Some(Value::Object(vars)) = envcfg.get("vars") {
        for (k, v) in vars {
            if let Value::String(s) = v {
                if !s.is_empty() {
                    out.insert(k.clone(), s.clone());
                }
            }
        }
    }
    for (k, v) in envcfg {
        if k == "shellEnv" || k == "vars" {
            continue;
        }
        if let Value::String(s) = v {
            if !s.trim().is_empty() {
                out.insert(k.clone(), s.clone());
            }
        }
    }
    let mut v: Vec<_> = out.into_iter().collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(s: &str, env: &Env) -> (String, Vec<Unresolved>) {
        let mut u = Vec::new();
        let out = substitute_str(s, env, "k", &mut u);
        (out, u)
    }

    #[test]
    fn substitutes_uppercase_names() {
        let env = Env::from_pairs([("BASE", "https://api.example.com"), ("_X1", "y")]);
        assert_eq!(sub("${BASE}/v1", &env).0, "https://api.example.com/v1");
        assert_eq!(sub("a${_X1}b${_X1}", &env).0, "ayby");
        assert_eq!(sub("no refs", &env).0, "no refs");
        assert_eq!(sub("€${_X1}€", &env).0, "€y€");
    }

    #[test]
    fn escaped_references_are_literal() {
        let env = Env::from_pairs([("VAR", "value")]);
        assert_eq!(sub("$${VAR}", &env).0, "${VAR}");
        assert_eq!(sub("x $${VAR} ${VAR}", &env).0, "x ${VAR} value");
        let (out, u) = sub("$${MISSING}", &env);
        assert_eq!(out, "${MISSING}");
        assert!(u.is_empty());
    }

    #[test]
    fn lowercase_and_malformed_references_are_left_alone() {
        let env = Env::from_pairs([("var", "v"), ("VAR", "V")]);
        for s in ["${var}", "${Var}", "${1VAR}", "${VAR", "$VAR", "${}", "$${var}", "${VA-R}"] {
            let (out, u) = sub(s, &env);
            assert_eq!(out, s, "{s}");
            assert!(u.is_empty(), "{s}");
        }
    }

    #[test]
    fn missing_and_empty_variables_stay_unresolved_and_are_reported() {
        let env = Env::from_pairs([("EMPTY", "")]);
        let (out, u) = sub("a${MISSING}b${EMPTY}", &env);
        assert_eq!(out, "a${MISSING}b${EMPTY}");
        assert_eq!(
            u,
            vec![
                Unresolved { key: "k".into(), name: "MISSING".into() },
                Unresolved { key: "k".into(), name: "EMPTY".into() },
            ]
        );
        let w = u[0].warning(Path::new("/x/openclaw.json"));
        assert!(w.contains("MISSING") && w.contains("/x/openclaw.json") && w.contains("`k`"));
    }

    #[test]
    fn secret_store_references_are_reported_not_run() {
        let (out, u) = sub("${pass:openclaw/key}", &Env::default());
        assert_eq!(out, "${pass:openclaw/key}");
        assert_eq!(u[0].name, "pass:openclaw/key");
        assert!(u[0].warning(Path::new("f")).contains("secret-store"));
    }

    #[test]
    fn substitution_walks_values_not_keys() {
        let env = Env::from_pairs([("A", "1")]);
        let mut u = Vec::new();
        let v = substitute(&json!({"${A}": "${A}", "l": ["${A}", 2, {"x": "${B}"}], "n": null}), &env, &mut u);
        assert_eq!(v, json!({"${A}": "1", "l": ["1", 2, {"x": "${B}"}], "n": null}));
        assert_eq!(u, vec![Unresolved { key: "l[2].x".into(), name: "B".into() }]);
    }

    #[test]
    fn has_reference_ignores_escapes() {
        assert!(has_reference("${A}"));
        assert!(has_reference("x$${A}${B}"));
        assert!(!has_reference("$${A}"));
        assert!(!has_reference("${a} plain"));
    }

    #[test]
    fn dotenv_format() {
        let text = "# comment\nA=1\nexport B = two words \nC=\"quoted # not comment\\nnext\"\nD='single ${X}'\nE=unquoted # comment\nF=\"multi\nline\"\nbad line\nG=\n";
        let (pairs, bad) = parse_dotenv(text);
        let m: HashMap<_, _> = pairs.into_iter().collect();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "quoted # not comment\nnext");
        assert_eq!(m["D"], "single ${X}");
        assert_eq!(m["E"], "unquoted");
        assert_eq!(m["F"], "multi\nline");
        assert_eq!(m["G"], "");
        assert_eq!(bad, vec![9]);
    }

    #[test]
    fn precedence_process_then_dotenv_then_config() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join(".env"), "FROM_FILE=file\nBOTH=file\nCFG_TOO=file\n").unwrap();
        let cwd = t.path().join("cwd");
        std::fs::create_dir(&cwd).unwrap();
        std::fs::write(cwd.join(".env"), "CWD_ONLY=cwd\nCFG_TOO=cwd\n").unwrap();
        let mut env = Env::from_pairs([("BOTH", "process"), ("EMPTY_IN_PROCESS", "")]);
        env.cwd = Some(cwd);
        let cfg = json!({"env": {"vars": {"CFG_TOO": "cfg", "CFG_ONLY": "cfg", "EMPTY_IN_PROCESS": "cfg"}, "INLINE": "inline", "shellEnv": {"enabled": true}}});
        let (vars, warnings) = effective_vars(&env, &state, Some(&cfg));
        assert!(warnings.is_empty());
        assert_eq!(vars.get("BOTH"), Some("process"));
        assert_eq!(vars.get("FROM_FILE"), Some("file"));
        assert_eq!(vars.get("CWD_ONLY"), Some("cwd"));
        assert_eq!(vars.get("CFG_TOO"), Some("cwd"));
        assert_eq!(vars.get("CFG_ONLY"), Some("cfg"));
        assert_eq!(vars.get("INLINE"), Some("inline"));
        assert_eq!(vars.get("EMPTY_IN_PROCESS"), Some("cfg"));
    }

    #[test]
    fn bad_dotenv_lines_warn_by_number_only() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(".env"), "OK=1\nsk-live-abcdef\n").unwrap();
        let (vars, warnings) = effective_vars(&Env::default(), t.path(), None);
        assert_eq!(vars.get("OK"), Some("1"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("line 2") && !warnings[0].contains("sk-live"));
    }
}
