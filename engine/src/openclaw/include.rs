//! JSON5 files and OpenClaw's `$include` directive (src/config/includes.ts), reproduced:
//! - `"$include": "file"` replaces the containing object with the file's content;
//! - `"$include": ["a", "b"]` deep-merges the files in order (later wins);
//! - sibling keys next to `$include` are merged after it, overriding included values;
//! - deep merge: objects merge recursively, arrays concatenate, anything else: the later wins;
//! - paths resolve relative to the including file; at most 10 levels of nesting; cycles fail.
//!
//! OpenClaw also refuses includes outside the config's folder unless `OPENCLAW_INCLUDE_ROOTS`
//! allows them. clawback only reads, and may run without the gateway's environment, so it reads
//! such a file anyway and returns a warning instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::env::{clean, Env};
use super::error::ConfigError;

pub const INCLUDE_KEY: &str = "$include";
/// OpenClaw's `MAX_INCLUDE_DEPTH`.
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// OpenClaw's cap on one included file.
pub const MAX_INCLUDE_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// OpenClaw's limit on an include path's length.
const MAX_INCLUDE_PATH_CHARS: usize = 4096;

/// A config document with its includes resolved (nothing substituted yet).
#[derive(Debug, Clone)]
pub struct Included {
    pub value: Value,
    /// The top file, then every included file, in the order they were read.
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Parses JSON5 text. A syntax error reports the position and what was expected, never the text.
pub fn parse_json5(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    json5::from_str::<Value>(text).map_err(|e| {
        let json5::Error::Message { msg, location } = e;
        let (line, column) = location.map(|l| (l.line, l.column)).unwrap_or((0, 0));
        // pest's message quotes the offending line; keep only its "= expected ..." summary.
        let detail =
            msg.lines().find_map(|l| l.trim().strip_prefix("= ")).map(|s| format!(": {s}")).unwrap_or_default();
        ConfigError::Syntax { path: path.to_path_buf(), line, column, detail }
    })
}

/// Reads and parses one JSON5 file.
pub fn read_json5(path: &Path) -> Result<Value, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_json5(path, &text)
}

/// Reads `path` as JSON5 and resolves its `$include`s. Extra roots that includes may reach come
/// from `OPENCLAW_INCLUDE_ROOTS` (`:`-separated).
pub fn load_with_includes(path: &Path, env: &Env) -> Result<Included, ConfigError> {
    let value = read_json5(path)?;
    let roots: Vec<PathBuf> = env
        .get("OPENCLAW_INCLUDE_ROOTS")
        .map(|s| s.split(':').filter(|p| !p.trim().is_empty()).map(|p| env.resolve_user_path(p)).collect())
        .unwrap_or_default();
    resolve_includes(value, path, &roots)
}

/// Resolves every `$include` in `value`, which was read from `path`.
pub fn resolve_includes(value: Value, path: &Path, extra_roots: &[PathBuf]) -> Result<Included, ConfigError> {
    let path = clean(path);
    let root_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut p = Processor {
        root_real: std::fs::canonicalize(&root_dir).unwrap_or_else(|_| root_dir.clone()),
        root_dir,
        extra_roots: extra_roots.to_vec(),
        files: vec![path.clone()],
        warnings: Vec::new(),
        warned: HashSet::new(),
    };
    let value = p.process(value, &path, std::slice::from_ref(&path), 0)?;
    Ok(Included { value, files: p.files, warnings: p.warnings })
}

/// OpenClaw's include merge: objects merge recursively, arrays concatenate, otherwise `source`
/// wins. Keys that would pollute a JavaScript prototype are dropped, as OpenClaw drops them.
pub fn deep_merge(target: Value, source: Value) -> Value {
    match (target, source) {
        (Value::Array(mut a), Value::Array(b)) => {
            a.extend(b);
            Value::Array(a)
        }
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                if matches!(k.as_str(), "__proto__" | "prototype" | "constructor") {
                    continue;
                }
                let merged = match a.remove(&k) {
                    Some(old) => deep_merge(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (_, source) => source,
    }
}

struct Processor {
    root_dir: PathBuf,
    root_real: PathBuf,
    extra_roots: Vec<PathBuf>,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
    warned: HashSet<PathBuf>,
}

impl Processor {
    fn process(&mut self, value: Value, cur: &Path, visited: &[PathBuf], depth: usize) -> Result<Value, ConfigError> {
        match value {
            Value::Array(items) => Ok(Value::Array(
                items.into_iter().map(|v| self.process(v, cur, visited, depth)).collect::<Result<_, _>>()?,
            )),
            Value::Object(mut map) => {
                let Some(include) = map.remove(INCLUDE_KEY) else {
                    let mut out = Map::new();
                    for (k, v) in map {
                        out.insert(k, self.process(v, cur, visited, depth)?);
                    }
                    return Ok(Value::Object(out));
                };
                let label = match &include {
                    Value::String(s) => s.clone(),
                    _ => INCLUDE_KEY.to_string(),
                };
                let included = self.resolve(include, cur, visited, depth)?;
                if map.is_empty() {
                    return Ok(included);
                }
                if !included.is_object() {
                    return Err(ConfigError::Include {
                        path: cur.to_path_buf(),
                        include: label,
                        why: "keys beside $include need the included content to be an object".into(),
                    });
                }
                let mut rest = Map::new();
                for (k, v) in map {
                    rest.insert(k, self.process(v, cur, visited, depth)?);
                }
                Ok(deep_merge(included, Value::Object(rest)))
            }
            other => Ok(other),
        }
    }

    fn resolve(&mut self, include: Value, cur: &Path, visited: &[PathBuf], depth: usize) -> Result<Value, ConfigError> {
        match include {
            Value::String(s) => self.load(&s, cur, visited, depth),
            Value::Array(items) => {
                let mut merged = Value::Object(Map::new());
                for item in items {
                    let Value::String(s) = item else {
                        return Err(ConfigError::Include {
                            path: cur.to_path_buf(),
                            include: INCLUDE_KEY.into(),
                            why: format!(
                                "every item of an $include list must be a path string, found {}",
                                kind_name(&item)
                            ),
                        });
                    };
                    let v = self.load(&s, cur, visited, depth)?;
                    merged = deep_merge(merged, v);
                }
                Ok(merged)
            }
            other => Err(ConfigError::Include {
                path: cur.to_path_buf(),
                include: INCLUDE_KEY.into(),
                why: format!("must be a path string or a list of them, found {}", kind_name(&other)),
            }),
        }
    }

    fn load(&mut self, include: &str, cur: &Path, visited: &[PathBuf], depth: usize) -> Result<Value, ConfigError> {
        let err = |why: String| ConfigError::Include { path: cur.to_path_buf(), include: include.to_string(), why };
        if include.contains('\0') {
            return Err(err("the path contains a NUL byte".into()));
        }
        if include.chars().count() >= MAX_INCLUDE_PATH_CHARS {
            return Err(err(format!("the path is longer than {} characters", MAX_INCLUDE_PATH_CHARS - 1)));
        }
        let resolved = if Path::new(include).is_absolute() {
            clean(Path::new(include))
        } else {
            clean(&cur.parent().unwrap_or(Path::new("/")).join(include))
        };
        if visited.contains(&resolved) {
            let chain: Vec<String> =
                visited.iter().chain(std::iter::once(&resolved)).map(|p| p.display().to_string()).collect();
            return Err(ConfigError::IncludeCycle { path: cur.to_path_buf(), chain: chain.join(" -> ") });
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::IncludeDepth {
                path: cur.to_path_buf(),
                include: include.to_string(),
                max: MAX_INCLUDE_DEPTH,
            });
        }
        self.check_confinement(include, &resolved);
        let md = std::fs::metadata(&resolved).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                err(format!("file {} not found", resolved.display()))
            } else {
                err(format!("cannot read {}: {e}", resolved.display()))
            }
        })?;
        if !md.is_file() {
            return Err(err(format!("{} is not a regular file", resolved.display())));
        }
        if md.len() > MAX_INCLUDE_FILE_BYTES {
            return Err(err(format!("{} is larger than OpenClaw's 2 MB limit for included files", resolved.display())));
        }
        let parsed = read_json5(&resolved)?;
        if !self.files.contains(&resolved) {
            self.files.push(resolved.clone());
        }
        let mut nested = visited.to_vec();
        nested.push(resolved.clone());
        self.process(parsed, &resolved, &nested, depth + 1)
    }

    fn check_confinement(&mut self, include: &str, resolved: &Path) {
        let real = std::fs::canonicalize(resolved).unwrap_or_else(|_| resolved.to_path_buf());
        let inside = |p: &Path| {
            p.starts_with(&self.root_dir)
                || p.starts_with(&self.root_real)
                || self.extra_roots.iter().any(|r| p.starts_with(r))
        };
        if inside(resolved) && inside(&real) {
            return;
        }
        if self.warned.insert(resolved.to_path_buf()) {
            self.warnings.push(format!(
                "$include {include:?} resolves to {}, outside the config folder {}: OpenClaw \
                 refuses it unless OPENCLAW_INCLUDE_ROOTS lists its folder (clawback reads it anyway)",
                resolved.display(),
                self.root_dir.display()
            ));
        }
    }
}

/// A JSON value's kind, for messages that must not quote the value.
pub fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
        p
    }

    fn load(p: &Path) -> Result<Included, ConfigError> {
        load_with_includes(p, &Env::default())
    }

    #[test]
    fn json5_syntax_is_accepted() {
        let t = tempfile::tempdir().unwrap();
        let p = write(
            t.path(),
            "a.json5",
            "\u{feff}// comment\n{ unquoted: 'single', trailing: [1, 2,], /* block */ hex: 0x10, }\n",
        );
        let v = read_json5(&p).unwrap();
        assert_eq!(v, json!({"unquoted": "single", "trailing": [1, 2], "hex": 16}));
    }

    #[test]
    fn syntax_errors_name_file_and_position_but_not_the_text() {
        let t = tempfile::tempdir().unwrap();
        let p = write(t.path(), "bad.json", "{\n  token: \"sk-secret-value\",\n  oops here\n}\n");
        let e = read_json5(&p).unwrap_err().to_string();
        assert!(e.contains("bad.json"), "{e}");
        assert!(e.contains("at line "), "{e}");
        assert!(!e.contains("sk-secret-value"), "{e}");
        assert!(!e.contains("oops"), "{e}");
    }

    #[test]
    fn single_include_replaces_the_object() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "agents.json5", "{ defaults: { workspace: '~/w' } }");
        let top = write(t.path(), "openclaw.json", "{ gateway: { port: 1 }, agents: { $include: './agents.json5' } }");
        let inc = load(&top).unwrap();
        assert_eq!(inc.value, json!({"gateway": {"port": 1}, "agents": {"defaults": {"workspace": "~/w"}}}));
        assert_eq!(inc.files, vec![top.clone(), t.path().join("agents.json5")]);
        assert!(inc.warnings.is_empty());
    }

    #[test]
    fn include_list_deep_merges_in_order_and_concatenates_arrays() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "clients/a.json5", "{ x: 1, nested: { keep: 'a', over: 'a' }, list: [1] }");
        write(t.path(), "clients/b.json5", "{ y: 2, nested: { over: 'b' }, list: [2] }");
        let top =
            write(t.path(), "openclaw.json", "{ broadcast: { $include: ['./clients/a.json5', './clients/b.json5'] } }");
        assert_eq!(
            load(&top).unwrap().value,
            json!({"broadcast": {"x": 1, "y": 2, "nested": {"keep": "a", "over": "b"}, "list": [1, 2]}})
        );
    }

    #[test]
    fn sibling_keys_override_included_values() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "base.json5", "{ a: 1, b: { c: 1, d: 1 }, l: ['x'] }");
        let top = write(t.path(), "openclaw.json", "{ $include: './base.json5', b: { d: 2 }, e: 3, l: ['y'] }");
        assert_eq!(load(&top).unwrap().value, json!({"a": 1, "b": {"c": 1, "d": 2}, "e": 3, "l": ["x", "y"]}));
    }

    #[test]
    fn sibling_keys_need_an_object() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "list.json5", "[1, 2]");
        let top = write(t.path(), "openclaw.json", "{ k: { $include: './list.json5', x: 1 } }");
        let e = load(&top).unwrap_err().to_string();
        assert!(e.contains("openclaw.json") && e.contains("list.json5"), "{e}");
        // Without siblings a non-object include is fine.
        let top = write(t.path(), "ok.json", "{ k: { $include: './list.json5' } }");
        assert_eq!(load(&top).unwrap().value, json!({"k": [1, 2]}));
    }

    #[test]
    fn nested_includes_resolve_relative_to_the_including_file() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "sub/deeper/leaf.json5", "{ leaf: true }");
        write(t.path(), "sub/mid.json5", "{ mid: { $include: './deeper/leaf.json5' } }");
        let top = write(t.path(), "openclaw.json", "{ top: { $include: 'sub/mid.json5' } }");
        let inc = load(&top).unwrap();
        assert_eq!(inc.value, json!({"top": {"mid": {"leaf": true}}}));
        assert_eq!(inc.files.len(), 3);
    }

    fn chain(dir: &Path, n: usize) -> PathBuf {
        // top -> f1 -> f2 -> ... -> fn, each one level deeper.
        for i in 1..=n {
            let body = if i == n {
                "{ end: true }".to_string()
            } else {
                format!("{{ next: {{ $include: './f{}.json5' }} }}", i + 1)
            };
            write(dir, &format!("f{i}.json5"), &body);
        }
        write(dir, "openclaw.json", "{ next: { $include: './f1.json5' } }")
    }

    #[test]
    fn ten_levels_of_includes_are_allowed() {
        let t = tempfile::tempdir().unwrap();
        let top = chain(t.path(), 10);
        let v = load(&top).unwrap().value;
        let mut cur = &v;
        for _ in 0..10 {
            cur = &cur["next"];
        }
        assert_eq!(cur, &json!({"end": true}));
    }

    #[test]
    fn eleven_levels_of_includes_fail() {
        let t = tempfile::tempdir().unwrap();
        let top = chain(t.path(), 11);
        let e = load(&top).unwrap_err();
        assert!(matches!(e, ConfigError::IncludeDepth { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("f10.json5") && msg.contains("f11.json5"), "{msg}");
    }

    #[test]
    fn cycles_fail_with_the_chain() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "a.json5", "{ b: { $include: './b.json5' } }");
        write(t.path(), "b.json5", "{ a: { $include: './a.json5' } }");
        let top = write(t.path(), "openclaw.json", "{ $include: './a.json5' }");
        let e = load(&top).unwrap_err();
        assert!(matches!(e, ConfigError::IncludeCycle { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("a.json5 -> ") && msg.contains("b.json5"), "{msg}");

        let selfref = write(t.path(), "self.json", "{ x: { $include: './self.json' } }");
        assert!(matches!(load(&selfref).unwrap_err(), ConfigError::IncludeCycle { .. }));
    }

    #[test]
    fn the_same_file_twice_is_not_a_cycle() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "common.json5", "{ c: 1 }");
        let top = write(
            t.path(),
            "openclaw.json",
            "{ a: { $include: './common.json5' }, b: { $include: './common.json5' } }",
        );
        assert_eq!(load(&top).unwrap().value, json!({"a": {"c": 1}, "b": {"c": 1}}));
    }

    #[test]
    fn missing_and_malformed_includes_name_the_files() {
        let t = tempfile::tempdir().unwrap();
        let top = write(t.path(), "openclaw.json", "{ a: { $include: './nope.json5' } }");
        let e = load(&top).unwrap_err().to_string();
        assert!(e.contains("openclaw.json") && e.contains("nope.json5") && e.contains("not found"), "{e}");
        write(t.path(), "broken.json5", "{ secret: 'abc', ");
        let top = write(t.path(), "o2.json", "{ a: { $include: './broken.json5' } }");
        let e = load(&top).unwrap_err().to_string();
        assert!(e.contains("broken.json5") && !e.contains("abc"), "{e}");
        let top = write(t.path(), "o3.json", "{ a: { $include: 42 } }");
        assert!(load(&top).unwrap_err().to_string().contains("found a number"));
        let top = write(t.path(), "o4.json", "{ a: { $include: [1, './x'] } }");
        assert!(load(&top).unwrap_err().to_string().contains("path string"));
    }

    #[test]
    fn includes_outside_the_config_folder_warn() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "shared/common.json5", "{ c: 1 }");
        let top = write(t.path(), "cfg/openclaw.json", "{ a: { $include: '../shared/common.json5' } }");
        let inc = load(&top).unwrap();
        assert_eq!(inc.value, json!({"a": {"c": 1}}));
        assert_eq!(inc.warnings.len(), 1);
        assert!(inc.warnings[0].contains("OPENCLAW_INCLUDE_ROOTS"));
        // Allowed by OPENCLAW_INCLUDE_ROOTS: no warning.
        let env = Env::from_pairs([("OPENCLAW_INCLUDE_ROOTS", t.path().join("shared").to_str().unwrap())]);
        assert!(load_with_includes(&top, &env).unwrap().warnings.is_empty());
    }

    #[test]
    fn deep_merge_rules() {
        assert_eq!(
            deep_merge(json!({"a": [1], "o": {"x": 1}, "s": 1}), json!({"a": [2], "o": {"y": 2}, "s": "t"})),
            json!({"a": [1, 2], "o": {"x": 1, "y": 2}, "s": "t"})
        );
        assert_eq!(deep_merge(json!({"a": 1}), json!([1])), json!([1]));
        assert_eq!(deep_merge(json!({}), json!({"__proto__": {"x": 1}, "ok": 1})), json!({"ok": 1}));
    }
}
