//! Files of a snapshot turned into something a page shows safely: Markdown to HTML with raw HTML
//! shown as text and only http(s), mailto and relative links kept; a JSONL transcript to a list of
//! messages (the page puts them in as text, never as HTML).

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};
use serde_json::{json, Value};

/// Whether a link or image target is harmless in the page (no `javascript:`, `data:` and the like).
fn safe_url(u: &str) -> bool {
    let l = u.trim().to_ascii_lowercase();
    match l.split_once(':') {
        Some((scheme, _)) if !scheme.contains('/') => matches!(scheme, "http" | "https" | "mailto"),
        _ => true,
    }
}

/// Markdown rendered to HTML; raw HTML in it appears as text.
pub fn markdown(text: &str) -> String {
    let parser =
        Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS).map(
            |ev| match ev {
                Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
                Event::Start(Tag::Link { link_type, dest_url, title, id }) if !safe_url(&dest_url) => {
                    Event::Start(Tag::Link { link_type, dest_url: CowStr::from(""), title, id })
                }
                Event::Start(Tag::Image { link_type, dest_url, title, id }) if !safe_url(&dest_url) => {
                    Event::Start(Tag::Image { link_type, dest_url: CowStr::from(""), title, id })
                }
                e => e,
            },
        );
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

/// The text of a message's `content`: a string, or the text parts of a list of parts.
fn content_text(c: &Value) -> Option<String> {
    match c {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let t: Vec<String> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.clone()),
                    _ => p.get("text").and_then(Value::as_str).map(str::to_string),
                })
                .collect();
            (!t.is_empty()).then(|| t.join("\n"))
        }
        _ => None,
    }
}

/// A JSONL transcript as messages `{role, text}`: lines with a role (at the top or under
/// `message`) and some text; other lines (events, metadata) are counted as `event`.
pub fn conversation(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            out.push(json!({"role": "unreadable", "text": line}));
            continue;
        };
        let m = v.get("message").filter(|m| m.is_object()).unwrap_or(&v);
        let role = m.get("role").or_else(|| v.get("type")).and_then(Value::as_str).unwrap_or("event");
        let text = m
            .get("content")
            .and_then(content_text)
            .or_else(|| m.get("text").and_then(Value::as_str).map(str::to_string));
        match text {
            Some(t) => out.push(json!({"role": role, "text": t})),
            None => out.push(json!({"role": "event", "text": role})),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_links_do_not_survive() {
        let h = markdown("# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://e.org)");
        assert!(h.contains("<h1>Hi</h1>"), "{h}");
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
        assert!(!h.contains("javascript:"), "{h}");
        assert!(h.contains("href=\"https://e.org\""), "{h}");
    }

    #[test]
    fn transcript_lines_become_messages() {
        let t = "{\"type\":\"session\",\"id\":\"s\"}\n\
                 {\"type\":\"message\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}}\n\
                 {\"role\":\"assistant\",\"content\":\"hi there\"}\n";
        let m = conversation(t);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1], json!({"role": "user", "text": "hello"}));
        assert_eq!(m[2], json!({"role": "assistant", "text": "hi there"}));
    }
}
