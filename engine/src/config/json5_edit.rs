//! Removing one top-level key from a JSON5 document as text, so everything else in the file stays
//! as its owner wrote it: comments, key order, quoting, indentation, `$include`s. Used to take the
//! `backup` section out of openclaw.json without rewriting the rest of it.
//!
//! The scanner knows JSON5's lexical grammar (comments, single- and double-quoted strings with
//! escapes and line continuations, unquoted keys, nested objects and arrays); the caller parses
//! the result and compares it with the original minus the key, so a scanning mistake can never
//! be written.

/// A member of the top-level object: where its key starts, where its value ends, and the comma
/// after it, if any (byte offsets).
#[derive(Debug)]
struct Member {
    key: String,
    start: usize,
    value_end: usize,
    comma: Option<usize>,
}

struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a str) -> Self {
        Scanner { s, b: s.as_bytes(), i: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn err(&self, what: &str) -> String {
        let line = self.s[..self.i.min(self.s.len())].matches('\n').count() + 1;
        format!("{what} at line {line}")
    }

    /// Skips whitespace (JSON5 allows any Unicode space and the BOM) and comments.
    fn skip_blank(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == '\u{feff}' => self.i += c.len_utf8(),
                Some('/') if self.b.get(self.i + 1) == Some(&b'/') => {
                    while let Some(c) = self.peek() {
                        if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
                            break;
                        }
                        self.i += c.len_utf8();
                    }
                }
                Some('/') if self.b.get(self.i + 1) == Some(&b'*') => {
                    let end = self.s[self.i + 2..].find("*/").ok_or_else(|| self.err("unterminated comment"))?;
                    self.i += 2 + end + 2;
                }
                _ => return Ok(()),
            }
        }
    }

    /// A quoted string starting at the cursor; returns its text with escapes of the quote and
    /// backslash undone (enough to compare a key name).
    fn string(&mut self) -> Result<String, String> {
        let q = self.b[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
            self.i += c.len_utf8();
            match c {
                '\\' => {
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("bad \\u escape"))?;
                            let v = u32::from_str_radix(hex, 16).map_err(|_| self.err("bad \\u escape"))?;
                            out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                            self.i += 4;
                        }
                        other => out.push(other),
                    }
                }
                c if c as u32 == q as u32 => return Ok(out),
                c => out.push(c),
            }
        }
    }

    /// An unquoted key (an ECMAScript identifier name, as JSON5 allows).
    fn identifier(&mut self) -> Result<String, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '$' || c == '\\' || c == '\u{200c}' || c == '\u{200d}' {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
        if self.i == start {
            return Err(self.err("expected a key"));
        }
        Ok(self.s[start..self.i].to_string())
    }

    /// Skips one value of any kind; the cursor ends just after it.
    fn value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some('"') | Some('\'') => self.string().map(|_| ()),
            Some('{') | Some('[') => {
                let mut depth = 0usize;
                loop {
                    self.skip_blank()?;
                    let c = self.peek().ok_or_else(|| self.err("unterminated object or array"))?;
                    match c {
                        '"' | '\'' => {
                            self.string()?;
                        }
                        '{' | '[' => {
                            depth += 1;
                            self.i += 1;
                        }
                        '}' | ']' => {
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Ok(());
                            }
                        }
                        c => self.i += c.len_utf8(),
                    }
                }
            }
            Some(_) => {
                // A number, true/false/null, Infinity, NaN: runs to the next delimiter.
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c == ',' || c == '}' || c == ']' || c.is_whitespace() || c == '/' {
                        break;
                    }
                    self.i += c.len_utf8();
                }
                if self.i == start {
                    return Err(self.err("expected a value"));
                }
                Ok(())
            }
            None => Err(self.err("expected a value")),
        }
    }

    /// The members of the top-level object.
    fn members(&mut self) -> Result<Vec<Member>, String> {
        self.skip_blank()?;
        if self.peek() != Some('{') {
            return Err(self.err("the top level is not an object"));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                Some('}') => return Ok(out),
                None => return Err(self.err("unterminated object")),
                _ => {}
            }
            let start = self.i;
            let key = match self.peek() {
                Some('"') | Some('\'') => self.string()?,
                _ => self.identifier()?,
            };
            self.skip_blank()?;
            if self.peek() != Some(':') {
                return Err(self.err("expected `:`"));
            }
            self.i += 1;
            self.skip_blank()?;
            self.value()?;
            let value_end = self.i;
            self.skip_blank()?;
            let comma = match self.peek() {
                Some(',') => {
                    self.i += 1;
                    Some(self.i - 1)
                }
                Some('}') => None,
                _ => return Err(self.err("expected `,` or `}`")),
            };
            out.push(Member { key, start, value_end, comma });
            if comma.is_none() {
                self.skip_blank()?;
                return match self.peek() {
                    Some('}') => Ok(out),
                    _ => Err(self.err("expected `}`")),
                };
            }
        }
    }
}

/// `text` without the top-level member `key` (every occurrence of it), or `None` when the top
/// level has no such member. A line left blank by the removal goes too; a comma that would be
/// left trailing after the new last member is removed.
pub fn remove_top_level_key(text: &str, key: &str) -> Result<Option<String>, String> {
    let members = Scanner::new(text).members()?;
    if !members.iter().any(|m| m.key == key) {
        return Ok(None);
    }
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for (n, m) in members.iter().enumerate() {
        if m.key != key {
            continue;
        }
        match m.comma {
            Some(c) => cuts.push(widen(text, m.start, c + 1)),
            None => {
                cuts.push(widen(text, m.start, m.value_end));
                // The last member goes: the comma before it would be left trailing. Only the
                // comma itself, so a comment after it on its line stays.
                if let Some(prev) = members[..n].iter().rev().find(|p| p.key != key) {
                    if let Some(pc) = prev.comma {
                        cuts.push((pc, pc + 1));
                    }
                }
            }
        }
    }
    cuts.sort();
    cuts.dedup();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (a, b) in cuts {
        let a = a.max(at);
        if b <= a {
            continue;
        }
        out.push_str(&text[at..a]);
        at = b;
    }
    out.push_str(&text[at..]);
    Ok(Some(out))
}

/// Widens a cut to whole lines when only spaces surround it on its first and last line.
fn widen(text: &str, start: usize, end: usize) -> (usize, usize) {
    let line_start = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let before_blank = text[line_start..start].chars().all(|c| c == ' ' || c == '\t');
    let rest = &text[end..];
    let line_end = rest.find('\n').map(|i| end + i + 1).unwrap_or(text.len());
    let after_blank = text[end..line_end].chars().all(|c| c.is_whitespace());
    if before_blank && after_blank {
        (line_start, line_end)
    } else {
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::remove_top_level_key as rm;
    use serde_json::Value;

    fn parse(t: &str) -> Value {
        json5::from_str(t).unwrap_or_else(|e| panic!("{e}\n{t}"))
    }

    /// The result parses and equals the original without the key.
    fn check(text: &str) -> String {
        let out = rm(text, "backup").unwrap().expect("the key is there");
        let mut want = parse(text);
        want.as_object_mut().unwrap().remove("backup");
        assert_eq!(parse(&out), want, "{out}");
        out
    }

    #[test]
    fn as_openclaw_writes_it() {
        let t = "{\n  \"gateway\": {\n    \"port\": 1\n  },\n  \"backup\": {\n    \"schedule\": \"2h\"\n  },\n  \"tools\": {}\n}\n";
        assert_eq!(check(t), "{\n  \"gateway\": {\n    \"port\": 1\n  },\n  \"tools\": {}\n}\n");
    }

    #[test]
    fn last_member_takes_the_comma_before_it() {
        let t = "{\n  \"a\": 1, // about a\n  \"backup\": { \"x\": [1, \"}\"] }\n}\n";
        assert_eq!(check(t), "{\n  \"a\": 1 // about a\n}\n");
    }

    #[test]
    fn json5_with_comments_quotes_and_includes() {
        let t = r#"// my OpenClaw config
{
  $include: "./base.json5",   // shared parts
  /* the old way */ backup: {
    storage: { provider: 'local', path: "~/b\"k}" }, // a brace in a string
    retention: { keepLast: 3, },
  },
  'agents': { defaults: { workspace: "~/w" } },
}
"#;
        let out = check(t);
        assert!(out.contains("// my OpenClaw config") && out.contains("// shared parts"), "{out}");
        assert!(out.contains("$include: \"./base.json5\""), "{out}");
        assert!(!out.contains("keepLast"), "{out}");
    }

    #[test]
    fn the_only_member_and_duplicates() {
        assert_eq!(check("{ backup: {} }"), "{  }");
        let out = check("{\n  backup: 1,\n  a: 2,\n  \"backup\": 3\n}\n");
        assert_eq!(out, "{\n  a: 2\n}\n");
    }

    #[test]
    fn absent_nested_or_broken() {
        assert_eq!(rm("{ a: { backup: 1 } }", "backup").unwrap(), None);
        assert!(rm("{ backup: ", "backup").is_err());
        assert!(rm("[1]", "backup").is_err());
    }
}
