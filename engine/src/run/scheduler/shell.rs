//! Shell words as clawback writes them into crontab lines and OpenClaw's job commands, and reads
//! them back: POSIX quoting, splitting a line the way sh does for those words, and the `K=V`
//! assignments in front of a command.

use std::ffi::OsString;

/// POSIX shell quoting.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A command line of shell-quoted words.
pub fn sh_line(argv: &[OsString]) -> String {
    argv.iter().map(|a| sh_quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

/// Splits a command line as sh does for the words clawback writes (plain, '...', "...", \x).
pub fn sh_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                has = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                has = true;
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => match it.next()? {
                            x @ ('"' | '\\' | '$' | '`') => cur.push(x),
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.push(it.next()?);
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    Some(out)
}

/// `K=V` words at the front of a command line, and the rest.
pub fn split_assignments(words: Vec<String>) -> (Vec<(String, String)>, Vec<OsString>) {
    let mut env = Vec::new();
    let mut rest = words.into_iter().peekable();
    while let Some(w) = rest.peek() {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                env.push((k.to_string(), v.to_string()));
                rest.next();
            }
            _ => break,
        }
    }
    (env, rest.map(OsString::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_read_back() {
        for w in ["plain", "a b", "it's", "$HOME", "", "x=\"y\""] {
            let line = format!("cmd {}", sh_quote(w));
            assert_eq!(sh_words(&line).unwrap(), vec!["cmd".to_string(), w.to_string()], "{line}");
        }
        assert_eq!(sh_quote("/opt/clawback"), "/opt/clawback");
        assert!(sh_words("'unterminated").is_none());
        let (env, argv) = split_assignments(sh_words("A=1 B='x y' /bin/prog A=2").unwrap());
        assert_eq!(env, vec![("A".to_string(), "1".to_string()), ("B".to_string(), "x y".to_string())]);
        assert_eq!(argv, vec![OsString::from("/bin/prog"), OsString::from("A=2")]);
    }
}
