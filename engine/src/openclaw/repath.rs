//! Moving OpenClaw's absolute paths from one place to another, for a restore onto another home:
//! - [`PathMap`]: old → new path prefixes, the longest one matching wins;
//! - [`rewrite_config`]: the paths in `openclaw.json` and its `$include`d files. The text is kept
//!   byte for byte (comments, quotes, order, JSON5 syntax) except the string literals that change;
//! - [`rewrite_database_paths`] and [`rewrite_database_hashes`]: the paths in OpenClaw's SQLite
//!   databases, and the sha256 identities OpenClaw derives from workspace paths.
//!
//! Which values move (the same rule everywhere, so a report can say what changed and why):
//! - a whole value that is an old path or lies below one (`/home/ann/.openclaw/cron/jobs.json`);
//! - in a SQLite text value that is a JSON document, each string in it that is such a path;
//! - in the config only, also an old path inside a longer string at a path boundary (after a
//!   space, `:`, `=`, a quote...: `PATH=/usr/bin:/home/ann/bin`), and a `~/...` value whose
//!   folder moved somewhere other than the new home's `~/...`;
//! - in a database, a 64-hex-digit value that is the sha256 of a moved path (OpenClaw's
//!   `createWorkspaceStateIdentity`: `workspace_key`, `alias_key`) becomes the sha256 of the new
//!   one.
//!
//! Prose that mentions an old path (transcripts, log lines in a database) is left as written and
//! counted, not rewritten: it records what happened where it happened.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::env::clean;
use super::error::ConfigError;
use super::include::{parse_json5, INCLUDE_KEY};

/// Old → new absolute path prefixes. A path moves with the longest old prefix it lies at or
/// below (component-wise: `/home/ann` does not match `/home/anna`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathMap {
    /// Longest old prefix first.
    pairs: Vec<(String, String)>,
}

/// Characters after which an old path may start inside a longer config string.
const BEFORE: &[char] = &[' ', '\t', '\n', '\r', ':', '=', ',', ';', '\'', '"', '`', '(', '[', '{'];
/// Characters that may follow an old path inside a longer config string (besides `/`).
const AFTER: &[char] = &[' ', '\t', '\n', '\r', ':', '=', ',', ';', '\'', '"', '`', '(', ')', '[', ']', '{', '}'];

impl PathMap {
    /// A map from (old, new) pairs, cleaned lexically; a later pair with the same old path
    /// replaces an earlier one.
    pub fn new(pairs: impl IntoIterator<Item = (PathBuf, PathBuf)>) -> PathMap {
        let mut v: Vec<(String, String)> = Vec::new();
        for (a, b) in pairs {
            let a = clean(&a).to_string_lossy().into_owned();
            let b = clean(&b).to_string_lossy().into_owned();
            v.retain(|(o, _)| *o != a);
            v.push((a, b));
        }
        v.sort_by(|x, y| y.0.len().cmp(&x.0.len()).then_with(|| x.0.cmp(&y.0)));
        PathMap { pairs: v }
    }

    /// The pairs, longest old prefix first.
    pub fn pairs(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.pairs.iter().map(|(a, b)| (Path::new(a), Path::new(b)))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Where `p` goes: `None` when it lies below no old prefix.
    pub fn map(&self, p: &Path) -> Option<PathBuf> {
        self.pairs.iter().find_map(|(old, new)| {
            let rest = p.strip_prefix(old).ok()?;
            Some(if rest.as_os_str().is_empty() { PathBuf::from(new) } else { Path::new(new).join(rest) })
        })
    }

    /// A whole string value that is an old path, or lies below one, moved.
    pub fn map_str(&self, s: &str) -> Option<String> {
        self.pairs.iter().find_map(|(old, new)| {
            let rest = s.strip_prefix(old.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{new}{rest}"))
        })
    }

    /// Whether `s` mentions an old path anywhere (as a whole or inside longer text).
    pub fn mentions(&self, s: &str) -> bool {
        self.pairs.iter().any(|(old, _)| {
            s.match_indices(old.as_str()).any(|(i, _)| {
                let after = s[i + old.len()..].chars().next();
                after.is_none_or(|c| c == '/' || !is_path_char(c))
            })
        })
    }

    /// Every old path inside `s` at a path boundary (see [`BEFORE`], [`AFTER`]), moved. Returns
    /// the new string and each (old path, new path) token, or `None` when nothing moved.
    pub fn map_embedded(&self, s: &str) -> Option<(String, Vec<(String, String)>)> {
        let mut out = String::with_capacity(s.len());
        let mut tokens = Vec::new();
        let mut i = 0;
        let mut prev: Option<char> = None;
        while i < s.len() {
            let at = &s[i..];
            if at.starts_with('/') && prev.is_none_or(|c| BEFORE.contains(&c)) {
                let hit = self.pairs.iter().find(|(old, _)| {
                    at.strip_prefix(old.as_str())
                        .is_some_and(|r| r.chars().next().is_none_or(|c| c == '/' || AFTER.contains(&c)))
                });
                if let Some((old, new)) = hit {
                    let tail_len = at[old.len()..].find(|c: char| token_end(c)).unwrap_or(at.len() - old.len());
                    let tail = &at[old.len()..old.len() + tail_len];
                    tokens.push((format!("{old}{tail}"), format!("{new}{tail}")));
                    out.push_str(new);
                    i += old.len();
                    prev = old.chars().last();
                    continue;
                }
            }
            let c = at.chars().next().expect("not at the end");
            out.push(c);
            prev = Some(c);
            i += c.len_utf8();
        }
        (!tokens.is_empty()).then_some((out, tokens))
    }
}

/// Characters that continue a path right after an old prefix (so `/home/ann` is not found in
/// `/home/anna`).
fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '~' | '+' | '@')
}

/// Where a reported path token ends inside longer text (reports never quote more than the path,
/// in case the rest is a secret).
fn token_end(c: char) -> bool {
    c.is_whitespace() || "'\"`:;,()[]{}?#&=".contains(c)
}

/// The hex sha256 of a path: OpenClaw's workspace identity key (`createWorkspaceStateIdentity`).
pub fn path_key(p: &str) -> String {
    hex::encode(Sha256::digest(p.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// JSON5 string literals

/// One string literal in a JSON5 (or JSON) text: where it is, what it says, and where in the
/// document it sits.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    /// Byte range of the literal, quotes included.
    start: usize,
    end: usize,
    value: String,
    quote: u8,
    /// Dotted key path of the value (`agents.list[0].workspace`), or of the key itself.
    key: String,
    is_key: bool,
    /// The value of an `$include` (or an item of an `$include` list).
    include: bool,
}

enum Frame {
    Object { key: Option<String>, want_key: bool },
    Array { index: usize },
}

fn key_path(stack: &[Frame]) -> String {
    let mut out = String::new();
    for f in stack {
        match f {
            Frame::Object { key: Some(k), .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Every string literal of a text the JSON5 parser accepted, in order. Comments, numbers and
/// bare words are skipped; bare (unquoted) keys are tracked for the key paths.
fn string_literals(text: &str) -> Vec<Literal> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map(|n| i + n + 1).unwrap_or(b.len());
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map(|n| i + 2 + n + 2).unwrap_or(b.len());
            }
            b'{' => {
                stack.push(Frame::Object { key: None, want_key: true });
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Object { key, want_key }) => {
                        *key = None;
                        *want_key = true;
                    }
                    Some(Frame::Array { index }) => *index += 1,
                    None => {}
                }
                i += 1;
            }
            b'"' | b'\'' => {
                let (value, end) = decode_string(text, i);
                let in_include = |stack: &[Frame]| match stack {
                    [.., Frame::Object { key: Some(k), want_key: false }] => k == INCLUDE_KEY,
                    [.., Frame::Object { key: Some(k), want_key: false }, Frame::Array { .. }] => k == INCLUDE_KEY,
                    _ => false,
                };
                if let Some(Frame::Object { key, want_key: true }) = stack.last_mut() {
                    *key = Some(value.clone());
                    out.push(Literal {
                        start: i,
                        end,
                        value,
                        quote: c,
                        key: key_path(&stack),
                        is_key: true,
                        include: false,
                    });
                } else {
                    out.push(Literal {
                        start: i,
                        end,
                        value,
                        quote: c,
                        key: key_path(&stack),
                        is_key: false,
                        include: in_include(&stack),
                    });
                }
                i = end;
            }
            _ => {
                let ch = text[i..].chars().next().expect("in range");
                if ch.is_whitespace() || ch == '\u{feff}' {
                    i += ch.len_utf8();
                    continue;
                }
                // A bare word: a number, true/false/null, or an unquoted key.
                let len = text[i..]
                    .find(|c: char| c.is_whitespace() || ",:[]{}/\"'".contains(c))
                    .unwrap_or(text.len() - i)
                    .max(ch.len_utf8());
                if let Some(Frame::Object { key, want_key: true }) = stack.last_mut() {
                    *key = Some(text[i..i + len].to_string());
                }
                i += len;
            }
        }
    }
    out
}

/// Decodes the JSON5 string literal starting at byte `start` (its quote); returns its value and
/// the byte just past its closing quote.
fn decode_string(text: &str, start: usize) -> (String, usize) {
    let q = text.as_bytes()[start] as char;
    let mut out = String::new();
    let mut it = text[start + 1..].char_indices().peekable();
    let base = start + 1;
    while let Some((off, c)) = it.next() {
        if c == q {
            return (out, base + off + 1);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = it.next() else { break };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' => out.push('\0'),
            'x' => {
                let h: String = (0..2).filter_map(|_| it.next().map(|(_, c)| c)).collect();
                if let Some(ch) = u32::from_str_radix(&h, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            'u' => {
                let h: String = (0..4).filter_map(|_| it.next().map(|(_, c)| c)).collect();
                let Ok(mut cp) = u32::from_str_radix(&h, 16) else { continue };
                if (0xD800..0xDC00).contains(&cp) {
                    // A high surrogate: the low one follows as another \u escape.
                    let mut look = it.clone();
                    if let (Some((_, '\\')), Some((_, 'u'))) = (look.next(), look.next()) {
                        let h2: String = (0..4).filter_map(|_| look.next().map(|(_, c)| c)).collect();
                        if let Ok(lo) = u32::from_str_radix(&h2, 16) {
                            if (0xDC00..0xE000).contains(&lo) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                it = look;
                            }
                        }
                    }
                }
                out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
            }
            // Line continuations.
            '\n' | '\u{2028}' | '\u{2029}' => {}
            '\r' => {
                if it.peek().is_some_and(|(_, c)| *c == '\n') {
                    it.next();
                }
            }
            other => out.push(other),
        }
    }
    (out, text.len())
}

/// A string literal for `v` in the quote style `q`, as JSON.stringify would write it for `"`.
fn encode_string(v: &str, q: u8) -> String {
    let q = q as char;
    let mut out = String::with_capacity(v.len() + 2);
    out.push(q);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

// ---------------------------------------------------------------------------------------------
// The config

/// The homes `~` means, for config values written as `~/...`.
#[derive(Clone, Debug, Default)]
pub struct Homes {
    /// The snapshot's home, when known.
    pub old: Option<PathBuf>,
    /// OpenClaw's home on this machine (`OPENCLAW_HOME`, else `HOME`).
    pub new: PathBuf,
}

impl Homes {
    /// A `~` or `~/...` value whose folder moved somewhere other than the new home's `~/...`:
    /// the new absolute path.
    fn retarget_tilde(&self, v: &str, map: &PathMap) -> Option<String> {
        let rest = if v == "~" { "" } else { v.strip_prefix("~/")? };
        let old_abs = clean(&self.old.as_ref()?.join(rest));
        let new_abs = map.map(&old_abs)?;
        let here = clean(&self.new.join(rest));
        (new_abs != here).then(|| new_abs.to_string_lossy().into_owned())
    }
}

/// One change to a config file: the key and the path before and after (never the whole value,
/// which may hold more than a path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub key: String,
    pub from: String,
    pub to: String,
}

/// A config text with its paths moved.
#[derive(Clone, Debug)]
pub struct ConfigRewrite {
    pub text: String,
    pub edits: Vec<Edit>,
    /// The files its `$include`s name, where they were (to be rewritten in turn).
    pub includes: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Moves the paths in one config file's text. `old_dir`/`new_dir`: the folder the file was in
/// and the one it is in now (relative `$include`s resolve against them: one whose file moved
/// elsewhere relative to the config is rewritten as the new absolute path). `shown`: the file's
/// name in messages. A text the JSON5 parser refuses is refused, as OpenClaw would refuse it.
pub fn rewrite_config(
    shown: &Path,
    text: &str,
    map: &PathMap,
    homes: &Homes,
    old_dir: &Path,
    new_dir: &Path,
) -> Result<ConfigRewrite, ConfigError> {
    parse_json5(shown, text)?;
    let resolve =
        |v: &str, dir: &Path| if Path::new(v).is_absolute() { clean(Path::new(v)) } else { clean(&dir.join(v)) };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut edits = Vec::new();
    let mut includes = Vec::new();
    let mut warnings = Vec::new();
    for lit in string_literals(text) {
        let mut v = lit.value.clone();
        let mut mine: Vec<(String, String)> = Vec::new();
        if let Some(n) = homes.retarget_tilde(&v, map) {
            mine.push((v.clone(), n.clone()));
            v = n;
        } else if let Some((n, tokens)) = map.map_embedded(&v) {
            mine = tokens;
            v = n;
        }
        if lit.include {
            let old_target = resolve(&lit.value, old_dir);
            match map.map(&old_target) {
                Some(expected) => {
                    if resolve(&v, new_dir) != expected {
                        let e = expected.to_string_lossy().into_owned();
                        mine = vec![(lit.value.clone(), e.clone())];
                        v = e;
                    }
                }
                None => warnings.push(format!(
                    "{}: `{}` includes {}, which is not among the paths moved; left as it is",
                    shown.display(),
                    lit.key,
                    old_target.display()
                )),
            }
            includes.push(old_target);
        }
        if v != lit.value {
            out.push_str(&text[last..lit.start]);
            out.push_str(&encode_string(&v, lit.quote));
            last = lit.end;
            let key = if lit.is_key { format!("{} (key)", lit.key) } else { lit.key.clone() };
            edits.extend(mine.into_iter().map(|(from, to)| Edit { key: key.clone(), from, to }));
        }
    }
    out.push_str(&text[last..]);
    // The result must read back as the same kind of document.
    parse_json5(shown, &out)?;
    Ok(ConfigRewrite { text: out, edits, includes, warnings })
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// Paths moved in one column of a database table: the path before and after, and the rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DbEdit {
    /// `table.column`.
    pub location: String,
    pub from: String,
    pub to: String,
    pub rows: u64,
}

/// Rows of one column that mention an old path inside longer text, left as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DbLeft {
    pub location: String,
    pub rows: u64,
}

#[derive(Clone, Debug, Default)]
pub struct DbPaths {
    pub edits: Vec<DbEdit>,
    pub left: Vec<DbLeft>,
    /// Every whole path moved (old, new), for [`rewrite_database_hashes`].
    pub moved: Vec<(String, String)>,
}

fn db_err(db: &Path, e: rusqlite::Error) -> crate::Error {
    crate::Error::Other(format!("cannot move the paths in database {}: {e}", db.display()))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The ordinary tables of a database and their columns: not views, not virtual tables (a
/// full-text index) nor their shadow tables, which only the index's own code may write.
fn tables(c: &Connection) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for t in names {
        let cols: Vec<String> = c
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&t], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.push((t, cols));
    }
    Ok(out)
}

/// Opens a database for the rewrite, in one transaction; foreign keys are not enforced while
/// keys and the rows referring to them are moved one after the other (the check at the end
/// compares).
fn open(db: &Path) -> Result<Connection, crate::Error> {
    let c = Connection::open(db).map_err(|e| db_err(db, e))?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| db_err(db, e))?;
    c.pragma_update(None, "foreign_keys", false).map_err(|e| db_err(db, e))?;
    Ok(c)
}

fn fk_violations(c: &Connection) -> rusqlite::Result<u64> {
    let mut s = c.prepare("PRAGMA foreign_key_check")?;
    let mut rows = s.query([])?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Applies `updates` (old value → new value) to one column; returns the rows changed.
fn apply(c: &Connection, t: &str, col: &str, old: &str, new: &str) -> rusqlite::Result<u64> {
    let sql = format!(
        "UPDATE {t} SET {col} = ?2 WHERE {col} = ?1 AND typeof({col}) = 'text'",
        t = quote_ident(t),
        col = quote_ident(col)
    );
    Ok(c.execute(&sql, [old, new])? as u64)
}

/// Runs `f` in a transaction on `db`, refusing a result with more foreign-key violations than
/// before.
fn in_transaction<T>(db: &Path, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, crate::Error> {
    let mut c = open(db)?;
    let tx = c.transaction().map_err(|e| db_err(db, e))?;
    let before = fk_violations(&tx).map_err(|e| db_err(db, e))?;
    let out = f(&tx).map_err(|e| db_err(db, e))?;
    let after = fk_violations(&tx).map_err(|e| db_err(db, e))?;
    if after > before {
        return Err(crate::Error::Other(format!(
            "cannot move the paths in database {}: it would break {} foreign-key references; nothing was changed in it",
            db.display(),
            after - before
        )));
    }
    tx.commit().map_err(|e| db_err(db, e))?;
    Ok(out)
}

/// Moves the paths in every text value of every ordinary table of `db` (see the module docs).
pub fn rewrite_database_paths(db: &Path, map: &PathMap) -> Result<DbPaths, crate::Error> {
    in_transaction(db, |c| {
        let mut res = DbPaths::default();
        let olds: Vec<&str> = map.pairs.iter().map(|(o, _)| o.as_str()).collect();
        for (t, cols) in tables(c)? {
            for col in cols {
                let location = format!("{t}.{col}");
                let cond: Vec<String> =
                    (1..=olds.len()).map(|i| format!("instr({}, ?{i}) > 0", quote_ident(&col))).collect();
                let sql = format!(
                    "SELECT {col}, count(*) FROM {t} WHERE typeof({col}) = 'text' AND ({cond}) GROUP BY {col}",
                    col = quote_ident(&col),
                    t = quote_ident(&t),
                    cond = cond.join(" OR ")
                );
                let found: Vec<(String, u64)> = c
                    .prepare(&sql)?
                    .query_map(rusqlite::params_from_iter(olds.iter()), |r| {
                        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let mut left = 0;
                let mut edits: Vec<DbEdit> = Vec::new();
                for (v, n) in found {
                    let (new, tokens) = match move_value(&v, map) {
                        Moved::Whole(new) => (new.clone(), vec![(v.clone(), new)]),
                        Moved::Json(new, tokens, mentioned) => {
                            if mentioned {
                                left += n;
                            }
                            (new, tokens)
                        }
                        Moved::Mentioned => {
                            left += n;
                            continue;
                        }
                        Moved::Nothing => continue,
                    };
                    let rows = apply(c, &t, &col, &v, &new)?;
                    for (from, to) in tokens {
                        res.moved.push((from.clone(), to.clone()));
                        match edits.iter_mut().find(|e| e.from == from && e.to == to) {
                            Some(e) => e.rows += rows,
                            None => edits.push(DbEdit { location: location.clone(), from, to, rows }),
                        }
                    }
                }
                res.edits.extend(edits);
                if left > 0 {
                    res.left.push(DbLeft { location, rows: left });
                }
            }
        }
        res.moved.sort();
        res.moved.dedup();
        Ok(res)
    })
}

enum Moved {
    /// The value is an old path: its new value.
    Whole(String),
    /// A JSON document with old paths as strings: the new document, each path moved, and
    /// whether other strings in it mention an old path inside longer text (left).
    Json(String, Vec<(String, String)>, bool),
    /// An old path inside longer text: left.
    Mentioned,
    Nothing,
}

fn move_value(v: &str, map: &PathMap) -> Moved {
    if let Some(n) = map.map_str(v) {
        return Moved::Whole(n);
    }
    let t = v.trim_start();
    if (t.starts_with('{') || t.starts_with('[') || t.starts_with('"'))
        && serde_json::from_str::<serde::de::IgnoredAny>(v).is_ok()
    {
        let mut out = String::with_capacity(v.len());
        let mut last = 0;
        let mut tokens = Vec::new();
        let mut mentioned = false;
        for lit in string_literals(v) {
            match map.map_str(&lit.value) {
                Some(n) => {
                    out.push_str(&v[last..lit.start]);
                    out.push_str(&encode_string(&n, b'"'));
                    last = lit.end;
                    tokens.push((lit.value, n));
                }
                None => mentioned |= map.mentions(&lit.value),
            }
        }
        if tokens.is_empty() {
            return if mentioned { Moved::Mentioned } else { Moved::Nothing };
        }
        out.push_str(&v[last..]);
        return Moved::Json(out, tokens, mentioned);
    }
    if map.mentions(v) {
        Moved::Mentioned
    } else {
        Moved::Nothing
    }
}

/// Replaces, in every text column of every ordinary table of `db`, each value that is the
/// [`path_key`] of a moved path with the key of its new path.
pub fn rewrite_database_hashes(db: &Path, moved: &[(String, String)]) -> Result<Vec<DbEdit>, crate::Error> {
    let keys: HashMap<String, (String, &str, &str)> =
        moved.iter().map(|(a, b)| (path_key(a), (path_key(b), a.as_str(), b.as_str()))).collect();
    in_transaction(db, |c| {
        let mut edits = Vec::new();
        for (t, cols) in tables(c)? {
            for col in cols {
                let sql = format!(
                    "SELECT DISTINCT {col} FROM {t} WHERE typeof({col}) = 'text' AND length({col}) = 64",
                    col = quote_ident(&col),
                    t = quote_ident(&t)
                );
                let found: Vec<String> =
                    c.prepare(&sql)?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                for v in found {
                    let Some((new, from, to)) = keys.get(&v) else { continue };
                    let rows = apply(c, &t, &col, &v, new)?;
                    edits.push(DbEdit {
                        location: format!("{t}.{col}"),
                        from: format!("sha256({from})"),
                        to: format!("sha256({to})"),
                        rows,
                    });
                }
            }
        }
        Ok(edits)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> PathMap {
        PathMap::new(pairs.iter().map(|(a, b)| (PathBuf::from(a), PathBuf::from(b))))
    }

    #[test]
    fn longest_prefix_wins_component_wise() {
        let map = m(&[("/home/ann", "/home/bob"), ("/home/ann/work/worker", "/data/w"), ("/home/ann/.openclaw", "/s")]);
        assert_eq!(map.map(Path::new("/home/ann/x")).unwrap(), PathBuf::from("/home/bob/x"));
        assert_eq!(map.map(Path::new("/home/ann/work/worker/n.md")).unwrap(), PathBuf::from("/data/w/n.md"));
        assert_eq!(map.map(Path::new("/home/ann/.openclaw")).unwrap(), PathBuf::from("/s"));
        assert_eq!(map.map(Path::new("/home/anna/x")), None);
        assert_eq!(map.map_str("/home/ann"), Some("/home/bob".into()));
        assert_eq!(map.map_str("/home/ann/work/worker"), Some("/data/w".into()));
        assert_eq!(map.map_str("/home/anna"), None);
        assert_eq!(map.map_str("x /home/ann"), None);
        // A later pair for the same old path replaces the earlier one.
        let map = m(&[("/a", "/b"), ("/a/", "/c")]);
        assert_eq!(map.map_str("/a/x"), Some("/c/x".into()));
    }

    #[test]
    fn paths_inside_longer_strings_move_at_path_boundaries_only() {
        let map = m(&[("/home/ann", "/home/bob")]);
        let (s, t) = map.map_embedded("PATH=/usr/bin:/home/ann/bin:/home/anna/bin").unwrap();
        assert_eq!(s, "PATH=/usr/bin:/home/bob/bin:/home/anna/bin");
        assert_eq!(t, vec![("/home/ann/bin".to_string(), "/home/bob/bin".to_string())]);
        let (s, t) = map.map_embedded("node /home/ann/x.js --token=s3cret").unwrap();
        assert_eq!(s, "node /home/bob/x.js --token=s3cret");
        assert_eq!(t[0].0, "/home/ann/x.js", "the report stops at the path");
        assert_eq!(map.map_embedded("http://host/home/ann/x"), None);
        assert_eq!(map.map_embedded("see /home/annex"), None);
        assert!(map.mentions("see /home/ann."));
        assert!(!map.mentions("see /home/annex"));
    }

    #[test]
    fn literals_of_json5_with_their_key_paths() {
        let text = r#"// top comment "not a string"
{
  agents: { defaults: { workspace: '/home/ann/ws', /* "nor this" */ },
    list: [ { id: "a", "workspace": "/home/ann/ws-a" }, {id:"b"} ] },
  "$include": ["./x.json5", '/home/ann/y.json5'],
  esc: "a\"b\\c\u00e9\ud83d\ude00",
  n: 12, t: true,
}"#;
        let lits = string_literals(text);
        let got: Vec<(String, String, bool, bool)> =
            lits.iter().map(|l| (l.key.clone(), l.value.clone(), l.is_key, l.include)).collect();
        let want = [
            ("agents.defaults.workspace", "/home/ann/ws", false, false),
            ("agents.list[0].id", "a", false, false),
            ("agents.list[0].workspace", "workspace", true, false),
            ("agents.list[0].workspace", "/home/ann/ws-a", false, false),
            ("agents.list[1].id", "b", false, false),
            ("$include", "$include", true, false),
            ("$include[0]", "./x.json5", false, true),
            ("$include[1]", "/home/ann/y.json5", false, true),
            ("esc", "a\"b\\cé😀", false, false),
        ];
        let want: Vec<(String, String, bool, bool)> =
            want.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), *c, *d)).collect();
        assert_eq!(got, want);
        for l in &lits {
            assert_eq!(text.as_bytes()[l.start], l.quote);
            assert_eq!(text.as_bytes()[l.end - 1], l.quote);
        }
        // Encoding round-trips through the parser, in both quote styles.
        for v in ["plain", "q\"uo'te", "back\\slash", "line\nbreak", "tab\tctl\u{1}", "é😀"] {
            for q in [b'"', b'\''] {
                let enc = encode_string(v, q);
                assert_eq!(json5::from_str::<String>(&enc).unwrap(), v, "{enc}");
                assert_eq!(decode_string(&enc, 0), (v.to_string(), enc.len()));
            }
        }
    }

    #[test]
    fn config_rewrite_keeps_the_text_and_reports_each_path() {
        let map = m(&[("/home/ann", "/home/bob"), ("/home/ann/.openclaw", "/srv/oc")]);
        let homes = Homes { old: Some("/home/ann".into()), new: "/home/bob".into() };
        let text = r#"{
  // where the agents work
  agents: {
    defaults: { workspace: '/home/ann/.openclaw/workspace' },
    entries: {
      worker: { workspace: "/home/ann/work/worker", agentDir: "/home/ann/.openclaw/agents/worker/agent" },
      tilde: { workspace: "~/.openclaw/workspace-t" },
      same: { workspace: "~/elsewhere" },
    },
  },
  env: { vars: { PATH: "/usr/bin:/home/ann/bin", OTHER: "/home/anna/x", TOKEN: "${TOKEN}" } },
  "/home/ann/keyed": 1,
  $include: "../shared/extra.json5",
}
"#;
        let r = rewrite_config(
            Path::new("/home/bob/.openclaw/openclaw.json"),
            text,
            &map,
            &homes,
            Path::new("/home/ann/.openclaw"),
            Path::new("/srv/oc"),
        )
        .unwrap();
        let want = text
            .replace("'/home/ann/.openclaw/workspace'", "'/srv/oc/workspace'")
            .replace("\"/home/ann/work/worker\"", "\"/home/bob/work/worker\"")
            .replace("\"/home/ann/.openclaw/agents/worker/agent\"", "\"/srv/oc/agents/worker/agent\"")
            .replace("\"~/.openclaw/workspace-t\"", "\"/srv/oc/workspace-t\"")
            .replace("/usr/bin:/home/ann/bin", "/usr/bin:/home/bob/bin")
            .replace("\"/home/ann/keyed\"", "\"/home/bob/keyed\"")
            .replace("\"../shared/extra.json5\"", "\"/home/bob/shared/extra.json5\"");
        assert_eq!(r.text, want);
        let edits: Vec<(&str, &str, &str)> =
            r.edits.iter().map(|e| (e.key.as_str(), e.from.as_str(), e.to.as_str())).collect();
        assert_eq!(
            edits,
            [
                ("agents.defaults.workspace", "/home/ann/.openclaw/workspace", "/srv/oc/workspace"),
                ("agents.entries.worker.workspace", "/home/ann/work/worker", "/home/bob/work/worker"),
                (
                    "agents.entries.worker.agentDir",
                    "/home/ann/.openclaw/agents/worker/agent",
                    "/srv/oc/agents/worker/agent"
                ),
                ("agents.entries.tilde.workspace", "~/.openclaw/workspace-t", "/srv/oc/workspace-t"),
                ("env.vars.PATH", "/home/ann/bin", "/home/bob/bin"),
                ("/home/ann/keyed (key)", "/home/ann/keyed", "/home/bob/keyed"),
                ("$include", "../shared/extra.json5", "/home/bob/shared/extra.json5"),
            ]
        );
        assert_eq!(r.includes, vec![PathBuf::from("/home/ann/shared/extra.json5")]);
        // Nothing to move: the same text, no edits; an include that still resolves stays relative.
        let plain = "{\"a\": \"/elsewhere\", \"$include\": \"./x.json\"}";
        let r = rewrite_config(Path::new("c"), plain, &map, &homes, Path::new("/home/ann/d"), Path::new("/home/bob/d"))
            .unwrap();
        assert_eq!(r.text, plain);
        assert!(r.edits.is_empty());
        assert_eq!(r.includes, vec![PathBuf::from("/home/ann/d/x.json")]);
        // What OpenClaw could not read is refused, naming the file and the place.
        let e =
            rewrite_config(Path::new("/x/oc.json"), "{a: }", &map, &homes, Path::new("/"), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("/x/oc.json") && e.to_string().contains("line 1"), "{e}");
    }

    fn db_with(path: &Path, sql: &str) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(sql).unwrap();
    }

    #[test]
    fn database_paths_whole_values_json_strings_and_identity_keys() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("state.sqlite");
        let ws = "/home/ann/.openclaw/workspace";
        let k = path_key(ws);
        db_with(
            &db,
            &format!(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE cron_jobs (store_key TEXT NOT NULL, job_id TEXT NOT NULL, job_json TEXT,
                   PRIMARY KEY (store_key, job_id)) STRICT;
                 CREATE TABLE cron_job_scratch (store_key TEXT NOT NULL, job_id TEXT NOT NULL,
                   FOREIGN KEY (store_key, job_id) REFERENCES cron_jobs(store_key, job_id));
                 INSERT INTO cron_jobs VALUES ('/home/ann/.openclaw/cron/jobs.json', 'j1', '{{\"cwd\":\"/home/ann/work\",\"msg\":\"look in /home/ann/x\"}}'),
                                              ('/home/ann/.openclaw/cron/jobs.json', 'j2', NULL),
                                              ('/home/anna/.openclaw/cron/jobs.json', 'j3', NULL);
                 INSERT INTO cron_job_scratch VALUES ('/home/ann/.openclaw/cron/jobs.json', 'j1');
                 CREATE TABLE workspace_path_aliases (alias_key TEXT PRIMARY KEY, alias_path TEXT, workspace_key TEXT, workspace_path TEXT) STRICT;
                 INSERT INTO workspace_path_aliases VALUES ('{k}', '{ws}', '{k}', '{ws}');
                 CREATE TABLE notes (body TEXT, blob BLOB, n INTEGER);
                 INSERT INTO notes VALUES ('we moved /home/ann/.openclaw yesterday', x'2f686f6d652f616e6e', 1);
                 CREATE VIRTUAL TABLE fts USING fts5(body);
                 INSERT INTO fts VALUES ('/home/ann/.openclaw/workspace');"
            ),
        );
        let map = m(&[("/home/ann", "/home/bob")]);
        let r = rewrite_database_paths(&db, &map).unwrap();
        let edits: Vec<(&str, &str, &str, u64)> =
            r.edits.iter().map(|e| (e.location.as_str(), e.from.as_str(), e.to.as_str(), e.rows)).collect();
        assert_eq!(
            edits,
            [
                (
                    "cron_job_scratch.store_key",
                    "/home/ann/.openclaw/cron/jobs.json",
                    "/home/bob/.openclaw/cron/jobs.json",
                    1
                ),
                ("cron_jobs.store_key", "/home/ann/.openclaw/cron/jobs.json", "/home/bob/.openclaw/cron/jobs.json", 2),
                ("cron_jobs.job_json", "/home/ann/work", "/home/bob/work", 1),
                ("workspace_path_aliases.alias_path", ws, "/home/bob/.openclaw/workspace", 1),
                ("workspace_path_aliases.workspace_path", ws, "/home/bob/.openclaw/workspace", 1),
            ]
        );
        assert_eq!(
            r.left,
            vec![
                DbLeft { location: "cron_jobs.job_json".into(), rows: 1 },
                DbLeft { location: "notes.body".into(), rows: 1 }
            ]
        );
        let h = rewrite_database_hashes(&db, &r.moved).unwrap();
        let nk = path_key("/home/bob/.openclaw/workspace");
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.iter().all(|e| e.from == format!("sha256({ws})") && e.rows == 1), "{h:?}");

        let c = Connection::open(&db).unwrap();
        let row: (String, String, String, String) = c
            .query_row("SELECT * FROM workspace_path_aliases", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        assert_eq!(
            row,
            (nk.clone(), "/home/bob/.openclaw/workspace".into(), nk, "/home/bob/.openclaw/workspace".into())
        );
        let job: String = c.query_row("SELECT job_json FROM cron_jobs WHERE job_id = 'j1'", [], |r| r.get(0)).unwrap();
        assert_eq!(job, r#"{"cwd":"/home/bob/work","msg":"look in /home/ann/x"}"#, "prose is left");
        let other: String =
            c.query_row("SELECT store_key FROM cron_jobs WHERE job_id = 'j3'", [], |r| r.get(0)).unwrap();
        assert_eq!(other, "/home/anna/.openclaw/cron/jobs.json");
        let fts: String = c.query_row("SELECT body FROM fts", [], |r| r.get(0)).unwrap();
        assert_eq!(fts, "/home/ann/.openclaw/workspace", "full-text indexes are not written behind their back");
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        // Run again: nothing left to move.
        let again = rewrite_database_paths(&db, &map).unwrap();
        assert!(again.edits.is_empty(), "{:?}", again.edits);
    }

    #[test]
    fn a_rewrite_that_would_collide_changes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("s.sqlite");
        db_with(
            &db,
            "CREATE TABLE t (p TEXT PRIMARY KEY); INSERT INTO t VALUES ('/home/ann/a'), ('/home/bob/a'), ('/home/ann/b');",
        );
        let e = rewrite_database_paths(&db, &m(&[("/home/ann", "/home/bob")])).unwrap_err();
        assert!(e.to_string().contains("s.sqlite") && e.to_string().contains("UNIQUE"), "{e}");
        let c = Connection::open(&db).unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM t WHERE p LIKE '/home/ann/%'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2, "rolled back");
    }
}
