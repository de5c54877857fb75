//! Text that looks and compresses like what an assistant's home holds: English-ish prose,
//! Markdown notes, source code, all drawn from a fixed word table with Zipf-like frequencies so
//! that zstd compresses it about as well as real chat transcripts (3-4x), at several hundred
//! MB/s per core.
//!
//! Every generator appends to a `Vec<u8>` and emits only ASCII without `"` or `\`, so its output
//! can be dropped into a JSON string as is.

use std::sync::OnceLock;

use crate::rng::Rng;

/// Ranked roughly by frequency: the head is function words, the tail the vocabulary of a
/// personal assistant's day (mail, calendars, servers, notes).
const WORDS: &[&str] = &[
    "the",
    "to",
    "and",
    "a",
    "of",
    "I",
    "you",
    "is",
    "in",
    "it",
    "that",
    "for",
    "on",
    "this",
    "with",
    "be",
    "can",
    "will",
    "we",
    "have",
    "are",
    "not",
    "at",
    "your",
    "if",
    "from",
    "as",
    "or",
    "so",
    "but",
    "my",
    "do",
    "an",
    "all",
    "just",
    "by",
    "about",
    "what",
    "me",
    "was",
    "up",
    "there",
    "now",
    "out",
    "one",
    "should",
    "which",
    "when",
    "it's",
    "would",
    "then",
    "also",
    "file",
    "here",
    "more",
    "let",
    "some",
    "need",
    "check",
    "like",
    "new",
    "get",
    "run",
    "session",
    "memory",
    "agent",
    "time",
    "today",
    "message",
    "update",
    "next",
    "into",
    "use",
    "they",
    "them",
    "how",
    "our",
    "no",
    "has",
    "been",
    "these",
    "still",
    "make",
    "sure",
    "any",
    "only",
    "first",
    "after",
    "before",
    "other",
    "could",
    "send",
    "note",
    "notes",
    "task",
    "project",
    "workspace",
    "looks",
    "good",
    "done",
    "work",
    "again",
    "last",
    "week",
    "tomorrow",
    "meeting",
    "calendar",
    "email",
    "reply",
    "draft",
    "summary",
    "reminder",
    "schedule",
    "please",
    "thanks",
    "okay",
    "right",
    "think",
    "know",
    "want",
    "see",
    "look",
    "found",
    "added",
    "changed",
    "fixed",
    "error",
    "config",
    "gateway",
    "channel",
    "script",
    "command",
    "output",
    "result",
    "results",
    "search",
    "query",
    "model",
    "token",
    "tokens",
    "context",
    "tool",
    "tools",
    "server",
    "deploy",
    "build",
    "test",
    "tests",
    "backup",
    "restore",
    "folder",
    "directory",
    "path",
    "logs",
    "status",
    "running",
    "failed",
    "passed",
    "warning",
    "install",
    "version",
    "release",
    "branch",
    "commit",
    "review",
    "open",
    "close",
    "start",
    "stop",
    "restart",
    "set",
    "keep",
    "move",
    "copy",
    "delete",
    "create",
    "read",
    "write",
    "edit",
    "list",
    "show",
    "find",
    "try",
    "said",
    "asked",
    "told",
    "called",
    "wrote",
    "saved",
    "sent",
    "got",
    "made",
    "took",
    "gave",
    "went",
    "came",
    "left",
    "kept",
    "because",
    "while",
    "until",
    "since",
    "without",
    "between",
    "through",
    "during",
    "around",
    "over",
    "under",
    "again",
    "every",
    "each",
    "both",
    "few",
    "many",
    "most",
    "several",
    "small",
    "large",
    "quick",
    "short",
    "long",
    "old",
    "recent",
    "daily",
    "weekly",
    "monthly",
    "morning",
    "afternoon",
    "evening",
    "night",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "March",
    "April",
    "June",
    "October",
    "November",
    "December",
    "trip",
    "flight",
    "hotel",
    "train",
    "booking",
    "invoice",
    "payment",
    "budget",
    "receipt",
    "bank",
    "account",
    "tax",
    "report",
    "document",
    "documents",
    "slides",
    "spreadsheet",
    "photo",
    "photos",
    "video",
    "voice",
    "call",
    "chat",
    "group",
    "family",
    "friend",
    "team",
    "client",
    "doctor",
    "dentist",
    "school",
    "kids",
    "dinner",
    "lunch",
    "groceries",
    "recipe",
    "garden",
    "weather",
    "rain",
    "sunny",
    "walk",
    "run",
    "gym",
    "sleep",
    "coffee",
    "book",
    "books",
    "article",
    "paper",
    "papers",
    "research",
    "source",
    "sources",
    "link",
    "links",
    "website",
    "page",
    "browser",
    "download",
    "upload",
    "attachment",
    "image",
    "audio",
    "transcript",
    "language",
    "english",
    "german",
    "translate",
    "explain",
    "compare",
    "plan",
    "plans",
    "idea",
    "ideas",
    "question",
    "answer",
    "problem",
    "solution",
    "option",
    "options",
    "default",
    "setting",
    "settings",
    "feature",
    "bug",
    "issue",
    "ticket",
    "fix",
    "patch",
    "code",
    "function",
    "module",
    "package",
    "library",
    "dependency",
    "database",
    "table",
    "index",
    "cache",
    "queue",
    "worker",
    "job",
    "cron",
    "heartbeat",
    "prompt",
    "reason",
    "careful",
    "important",
    "urgent",
    "later",
    "soon",
    "already",
    "maybe",
    "probably",
    "exactly",
    "really",
    "quite",
    "very",
    "much",
    "less",
    "better",
    "worse",
    "faster",
    "slower",
    "usual",
    "price",
    "cost",
    "hours",
    "minutes",
    "days",
    "weeks",
    "months",
    "year",
    "home",
    "office",
    "kitchen",
    "car",
    "bike",
    "package",
    "delivery",
    "order",
    "shop",
    "store",
    "list",
    "items",
    "address",
    "phone",
    "number",
    "contact",
    "contacts",
    "name",
    "names",
    "person",
    "people",
    "birthday",
    "gift",
    "party",
    "event",
    "ticket",
    "concert",
    "movie",
    "show",
    "series",
    "episode",
    "podcast",
    "playlist",
    "music",
    "song",
    "raspberry",
    "pi",
    "router",
    "network",
    "wifi",
    "printer",
    "laptop",
    "desktop",
    "disk",
    "storage",
    "snapshot",
    "encrypted",
    "key",
    "password",
    "login",
    "secure",
    "private",
    "public",
    "shared",
    "sync",
    "remote",
    "local",
];

/// Each word with a leading space, padded to 16 bytes: appending one is a fixed-size copy and
/// a truncate rather than a variable-length memcpy (text generation is a hot loop).
fn spaced() -> &'static [([u8; 16], u8)] {
    static TABLE: OnceLock<Vec<([u8; 16], u8)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        WORDS
            .iter()
            .map(|w| {
                assert!(w.len() < 16, "word {w:?} too long for the padded table");
                let mut b = [b' '; 16];
                b[1..=w.len()].copy_from_slice(w.as_bytes());
                (b, w.len() as u8 + 1)
            })
            .collect()
    })
}

/// Word indices repeated in proportion to a Zipf-Mandelbrot law; a 13-bit random index into it
/// picks a word with realistic skew.
fn zipf() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        const N: usize = 8192;
        let weights: Vec<f64> = (0..WORDS.len()).map(|r| 1.0 / (r as f64 + 2.7)).collect();
        let total: f64 = weights.iter().sum();
        let mut t = Vec::with_capacity(N);
        for (i, w) in weights.iter().enumerate() {
            let n = ((w / total) * N as f64).round().max(1.0) as usize;
            t.extend(std::iter::repeat_n(i as u16, n));
        }
        t.truncate(N);
        while t.len() < N {
            t.push((t.len() % WORDS.len()) as u16);
        }
        t
    })
}

/// A stream of Zipf-distributed words, four per 64-bit draw.
pub(crate) struct Words<'r> {
    rng: &'r mut Rng,
    bits: u64,
    left: u32,
    table: &'static [u16],
    spaced: &'static [([u8; 16], u8)],
}

impl<'r> Words<'r> {
    pub fn new(rng: &'r mut Rng) -> Self {
        Words { rng, bits: 0, left: 0, table: zipf(), spaced: spaced() }
    }

    /// Appends a space and the next word.
    #[inline]
    pub fn push_spaced(&mut self, out: &mut Vec<u8>) {
        let (b, n) = &self.spaced[self.next_index()];
        let at = out.len();
        out.extend_from_slice(b);
        out.truncate(at + *n as usize);
    }

    #[inline]
    pub fn next(&mut self) -> &'static str {
        WORDS[self.next_index()]
    }

    #[inline]
    fn next_index(&mut self) -> usize {
        if self.left == 0 {
            self.bits = self.rng.next_u64();
            self.left = 4;
        }
        let i = (self.bits & 8191) as usize;
        self.bits >>= 16;
        self.left -= 1;
        self.table[i] as usize
    }

    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }
}

/// A word from the tail of the table (a "content" word), for names and identifiers.
pub(crate) fn noun(rng: &mut Rng) -> &'static str {
    let start = 60;
    WORDS[start + rng.below((WORDS.len() - start) as u64) as usize]
}

fn push_capitalized(out: &mut Vec<u8>, w: &str) {
    let at = out.len();
    out.extend_from_slice(w.as_bytes());
    out[at] = out[at].to_ascii_uppercase();
}

/// Appends one sentence with its closing punctuation, no trailing space.
pub(crate) fn sentence(words: &mut Words, out: &mut Vec<u8>) {
    let r = words.rng().next_u64();
    let n = 4 + (r & 15) as usize;
    push_capitalized(out, words.next());
    for i in 1..n {
        words.push_spaced(out);
        if i + 2 < n && (r >> (8 + i)) & 31 == 0 {
            out.push(b',');
        }
    }
    // Occasionally a concrete detail: numbers, times, paths. Real text is full of them.
    match (r >> 40) & 31 {
        0 => {
            let v = words.rng().below(10_000);
            out.extend_from_slice(format!(" ({v})").as_bytes());
        }
        1 => {
            let (h, m) = (words.rng().below(24), words.rng().below(60));
            out.extend_from_slice(format!(" at {h:02}:{m:02}").as_bytes());
        }
        2 => {
            let a = words.next();
            let b = words.next();
            out.extend_from_slice(format!(" in ~/projects/{a}/{b}.md").as_bytes());
        }
        3 => {
            let v = words.rng().below(100_000);
            out.extend_from_slice(format!(" #{v}").as_bytes());
        }
        _ => {}
    }
    out.push(match (r >> 48) & 15 {
        0 => b'?',
        1 => b'!',
        2 => b':',
        _ => b'.',
    });
}

/// Exactly `len` bytes of prose.
pub(crate) fn prose(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let target = out.len() + len;
    let mut w = Words::new(rng);
    while out.len() < target {
        sentence(&mut w, out);
        out.push(b' ');
    }
    out.truncate(target);
}

/// Exactly `len` bytes of chat-style text: paragraphs separated by escaped newlines (`\n`
/// as two characters), ready for a JSON string.
pub(crate) fn chat_text(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let target = out.len() + len;
    let mut w = Words::new(rng);
    while out.len() < target {
        let r = w.rng().next_u64();
        match r & 7 {
            0 => {
                for _ in 0..(2 + (r >> 8) % 4) {
                    out.extend_from_slice(b"- ");
                    sentence(&mut w, out);
                    out.extend_from_slice(b"\\n");
                }
                out.extend_from_slice(b"\\n");
            }
            1 if len > 400 => {
                out.extend_from_slice(b"**");
                push_capitalized(out, w.next());
                out.push(b' ');
                out.extend_from_slice(w.next().as_bytes());
                out.extend_from_slice(b"**\\n");
            }
            _ => {
                for _ in 0..(1 + (r >> 8) % 4) {
                    sentence(&mut w, out);
                    out.push(b' ');
                }
                out.extend_from_slice(b"\\n\\n");
            }
        }
    }
    out.truncate(target);
    fix_escape_tail(out);
}

/// After truncating escaped text, a lone trailing backslash would escape the closing quote.
pub(crate) fn fix_escape_tail(out: &mut [u8]) {
    if let Some(last) = out.last_mut() {
        if *last == b'\\' {
            *last = b' ';
        }
    }
}

/// `Title Case Words`.
pub(crate) fn title(rng: &mut Rng, n: usize) -> String {
    let mut out = Vec::new();
    for i in 0..n {
        if i > 0 {
            out.push(b' ');
        }
        push_capitalized(&mut out, noun(rng));
    }
    String::from_utf8(out).expect("ascii")
}

/// `kebab-case-name`.
pub(crate) fn slug(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| noun(rng).to_ascii_lowercase().replace('\'', "")).collect::<Vec<_>>().join("-")
}

/// Exactly `len` bytes of Markdown (headings, paragraphs, lists, code), ending in a newline.
pub(crate) fn markdown(rng: &mut Rng, out: &mut Vec<u8>, len: usize, heading: &str) {
    let target = out.len() + len;
    out.extend_from_slice(b"# ");
    out.extend_from_slice(heading.as_bytes());
    out.extend_from_slice(b"\n\n");
    while out.len() < target {
        let r = rng.next_u64();
        match r % 10 {
            0 | 1 => {
                let t = title(rng, 1 + (r >> 8) as usize % 3);
                out.extend_from_slice(format!("## {t}\n\n").as_bytes());
            }
            2 | 3 => {
                let mut w = Words::new(rng);
                for _ in 0..(2 + (r >> 8) % 5) {
                    out.extend_from_slice(if (r >> 16) & 1 == 0 { b"- " } else { b"- [ ] " });
                    sentence(&mut w, out);
                    out.push(b'\n');
                }
                out.push(b'\n');
            }
            4 => {
                out.extend_from_slice(b"```bash\n");
                for _ in 0..(1 + (r >> 8) % 4) {
                    shell_line(rng, out);
                    out.push(b'\n');
                }
                out.extend_from_slice(b"```\n\n");
            }
            _ => {
                let mut w = Words::new(rng);
                for _ in 0..(2 + (r >> 8) % 5) {
                    sentence(&mut w, out);
                    out.push(b' ');
                }
                out.pop();
                out.extend_from_slice(b"\n\n");
            }
        }
    }
    end_with_newline(out, target);
}

/// Truncates to `target` and makes the last byte a newline.
pub(crate) fn end_with_newline(out: &mut Vec<u8>, target: usize) {
    out.truncate(target);
    if let Some(last) = out.last_mut() {
        *last = b'\n';
    }
}

/// A daily memory note: timestamped bullets under a few headings, exactly `len` bytes.
pub(crate) fn daily_note(rng: &mut Rng, out: &mut Vec<u8>, len: usize, date: &str) {
    let target = out.len() + len;
    out.extend_from_slice(format!("# {date}\n\n").as_bytes());
    let mut minute = 6 * 60 + rng.below(180);
    let sections = ["## Log", "## Decisions", "## Follow-ups", "## People", "## Notes"];
    let mut s = 0;
    while out.len() < target {
        if s < sections.len() && (s == 0 || rng.chance(0.2)) {
            out.extend_from_slice(sections[s].as_bytes());
            out.extend_from_slice(b"\n\n");
            s += 1;
        }
        minute = (minute + 5 + rng.below(50)) % (24 * 60);
        out.extend_from_slice(format!("- {:02}:{:02} ", minute / 60, minute % 60).as_bytes());
        let mut w = Words::new(rng);
        sentence(&mut w, out);
        if w.rng().chance(0.4) {
            out.push(b' ');
            sentence(&mut w, out);
        }
        out.push(b'\n');
        if rng.chance(0.15) {
            out.push(b'\n');
        }
    }
    end_with_newline(out, target);
}

const SHELL: &[&str] = &[
    "git status --short",
    "git log --oneline -n 20",
    "ls -la",
    "rg -n 'TODO' src",
    "python3 scripts/fetch.py --since 7d",
    "npm run build",
    "npm test -- --watch=false",
    "curl -s https://api.example.com/v1/status",
    "openclaw cron list",
    "openclaw memory status --deep",
    "openclaw sessions list --active 60",
    "du -sh ~/.openclaw",
    "tail -n 200 ~/.openclaw/logs/gateway.log",
    "jq '.items | length' data.json",
    "sqlite3 notes.db 'select count(*) from notes'",
    "docker compose ps",
    "systemctl --user status openclaw-gateway",
    "ffmpeg -i input.ogg -ar 16000 output.wav",
];

/// One shell command line (no newline).
pub(crate) fn shell_line(rng: &mut Rng, out: &mut Vec<u8>) {
    out.extend_from_slice(shell_command(rng).as_bytes());
}

pub(crate) fn shell_command(rng: &mut Rng) -> &'static str {
    SHELL[rng.below(SHELL.len() as u64) as usize]
}

/// The word table as identifier parts: lowercase, apostrophes dropped.
fn ident_words() -> &'static [String] {
    static TABLE: OnceLock<Vec<String>> = OnceLock::new();
    TABLE.get_or_init(|| WORDS.iter().map(|w| w.replace('\'', "").to_ascii_lowercase()).collect())
}

/// `camelCase` from two words.
fn ident(w: &mut Words, out: &mut Vec<u8>) {
    let t = ident_words();
    out.extend_from_slice(t[w.next_index()].as_bytes());
    push_capitalized(out, &t[w.next_index()]);
}

/// Exactly `len` bytes of JavaScript/TypeScript-looking source. `nl` is the line separator:
/// `b"\n"` for files, `b"\\n"` for text embedded in JSON.
pub(crate) fn code(rng: &mut Rng, out: &mut Vec<u8>, len: usize, nl: &[u8]) {
    let target = out.len() + len;
    let mut w = Words::new(rng);
    let mut depth = 0usize;
    while out.len() < target {
        let r = w.rng().next_u64();
        for _ in 0..depth {
            out.extend_from_slice(b"  ");
        }
        match r % 16 {
            0 if depth == 0 => {
                out.extend_from_slice(b"const ");
                ident(&mut w, out);
                out.extend_from_slice(b" = require('./");
                out.extend_from_slice(ident_words()[w.next_index()].as_bytes());
                out.extend_from_slice(b"');");
            }
            1 | 2 if depth < 3 => {
                out.extend_from_slice(if depth == 0 { b"export async function " } else { b"function " });
                ident(&mut w, out);
                out.push(b'(');
                ident(&mut w, out);
                out.extend_from_slice(b", options = {}) {");
                depth += 1;
            }
            3 if depth < 4 => {
                out.extend_from_slice(b"for (const ");
                ident(&mut w, out);
                out.extend_from_slice(b" of ");
                ident(&mut w, out);
                out.extend_from_slice(b") {");
                depth += 1;
            }
            4 if depth < 4 => {
                out.extend_from_slice(b"if (!");
                ident(&mut w, out);
                out.extend_from_slice(b".length) {");
                depth += 1;
            }
            5..=7 if depth > 0 => {
                out.truncate(out.len() - 2);
                out.push(b'}');
                depth -= 1;
            }
            8 => {
                out.extend_from_slice(b"// ");
                let mut s = Vec::new();
                sentence(&mut w, &mut s);
                out.extend_from_slice(&s);
            }
            9 => {
                out.extend_from_slice(b"return ");
                ident(&mut w, out);
                out.push(b'.');
                ident(&mut w, out);
                out.extend_from_slice(b"(options);");
            }
            _ => {
                out.extend_from_slice(b"const ");
                ident(&mut w, out);
                out.extend_from_slice(b" = await ");
                ident(&mut w, out);
                out.push(b'.');
                ident(&mut w, out);
                out.push(b'(');
                ident(&mut w, out);
                out.extend_from_slice(if r & (1 << 20) == 0 { b", 'utf8');" } else { b", { retries: 3 });" });
            }
        }
        out.extend_from_slice(nl);
    }
    out.truncate(target);
    if nl == b"\n" {
        if let Some(last) = out.last_mut() {
            *last = b'\n';
        }
    } else {
        fix_escape_tail(out);
    }
}

/// A fixed MIT licence text; identical in every package, as in a real `node_modules`.
pub(crate) const MIT: &str = "MIT License\n\nCopyright (c) Contributors\n\n\
Permission is hereby granted, free of charge, to any person obtaining a copy\n\
of this software and associated documentation files (the \"Software\"), to deal\n\
in the Software without restriction, including without limitation the rights\n\
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell\n\
copies of the Software, and to permit persons to whom the Software is\n\
furnished to do so, subject to the following conditions:\n\n\
The above copyright notice and this permission notice shall be included in all\n\
copies or substantial portions of the Software.\n\n\
THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\n\
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,\n\
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE\n\
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER\n\
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,\n\
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE\n\
SOFTWARE.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_hit_exact_lengths_and_stay_json_safe() {
        let mut rng = Rng::new(7);
        for len in [1usize, 17, 500, 10_000] {
            let mut out = Vec::new();
            prose(&mut rng, &mut out, len);
            assert_eq!(out.len(), len);
            out.clear();
            chat_text(&mut rng, &mut out, len);
            assert_eq!(out.len(), len);
            assert!(!out.contains(&b'"'));
            assert_ne!(out.last(), Some(&b'\\'));
            out.clear();
            code(&mut rng, &mut out, len, b"\\n");
            assert_eq!(out.len(), len);
            assert!(!out.contains(&b'"'));
            out.clear();
            markdown(&mut rng, &mut out, len, "Title");
            assert_eq!(out.len(), len);
        }
    }
}
