//! Notifications about backup runs, from the config's `notify` section: a generic JSON webhook, a
//! Slack-compatible webhook, Telegram, email over SMTP and an OpenClaw system event.
//!
//! Who is told what: a failed or partial run when `onFailure` (default true), a good one when
//! `onSuccess`, and a run with anomaly warnings whenever either is on. Every channel has a bounded
//! timeout ([`TIMEOUT`]); a channel that fails comes back as one line (never with its URL or token)
//! for the caller to log. Payloads carry the host, the repository location without credentials,
//! the status, the error line, the counters and the snapshot id: never a password, key or token.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::{BackupConfig, EmailConfig, NotifyConfig, TelegramConfig};
use crate::run::runlog::{RunRecord, RunStatus};

/// The longest any one channel may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Overrides `https://api.telegram.org` (tests, or a Bot API server of one's own).
pub const TELEGRAM_API_ENV: &str = "CLAWBACK_TELEGRAM_API";

/// Whether `rec` is something the config asks to be told about.
pub fn wanted(cfg: &BackupConfig, rec: &RunRecord) -> bool {
    let alerts = cfg.notify_on_failure();
    match rec.status {
        RunStatus::Failed | RunStatus::Partial => alerts,
        RunStatus::Ok => cfg.notify_on_success() || (!rec.anomalies.is_empty() && (alerts || cfg.notify_on_success())),
    }
}

/// The channels configured, by name.
pub fn channels(n: &NotifyConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if n.webhook.as_ref().is_some_and(|w| !w.is_empty()) {
        out.push("webhook");
    }
    if n.slack.as_ref().is_some_and(|w| !w.is_empty()) {
        out.push("slack");
    }
    if n.telegram.as_ref().is_some_and(|t| t.bot_token.is_some() && t.chat_id.is_some()) {
        out.push("telegram");
    }
    if n.email.as_ref().is_some_and(|e| e.smtp_host.is_some() && !e.to.is_empty()) {
        out.push("email");
    }
    if n.openclaw_event == Some(true) {
        out.push("openclawEvent");
    }
    out
}

/// The one-paragraph message every text channel sends.
pub fn message(rec: &RunRecord) -> String {
    let repo = rec.repo.as_deref().map(|r| format!(" to {r}")).unwrap_or_default();
    let short = |id: &Option<String>| id.as_deref().map(|i| i.chars().take(8).collect::<String>()).unwrap_or_default();
    let mut text = match rec.status {
        RunStatus::Failed => {
            format!("clawback backup FAILED on {}{repo}: {}", rec.host, rec.error.as_deref().unwrap_or("unknown error"))
        }
        RunStatus::Partial => format!(
            "clawback backup on {}{repo} finished with unreadable files: snapshot {} saved without them (exit 3)",
            rec.host,
            short(&rec.snapshot_id)
        ),
        RunStatus::Ok => {
            let c = rec.counters.clone().unwrap_or_default();
            format!(
                "clawback backup ok on {}{repo}: snapshot {}, {} new and {} changed files, {} bytes added in {:.1}s",
                rec.host,
                short(&rec.snapshot_id),
                c.files_new,
                c.files_changed,
                c.bytes_added,
                rec.duration_s
            )
        }
    };
    for a in &rec.anomalies {
        text.push_str("\nWarning: ");
        text.push_str(&a.message);
    }
    text
}

/// The generic webhook's JSON body.
pub fn payload(rec: &RunRecord) -> serde_json::Value {
    json!({
        "event": "clawback.backup",
        "status": rec.status.as_str(),
        "host": rec.host,
        "repository": rec.repo,
        "start": rec.start,
        "end": rec.end,
        "duration_s": rec.duration_s,
        "exit_code": rec.exit_code,
        "snapshot_id": rec.snapshot_id,
        "error": rec.error,
        "counters": rec.counters,
        "anomalies": rec.anomalies,
        "text": message(rec),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Sends `rec` on every configured channel if the config wants it; returns one line per channel
/// that failed ("telegram: HTTP status 401").
pub fn notify(cfg: &BackupConfig, rec: &RunRecord) -> Vec<String> {
    if !wanted(cfg, rec) {
        return Vec::new();
    }
    send_all(&cfg.notify, rec)
}

/// Sends on every configured channel, whatever the status.
pub fn send_all(n: &NotifyConfig, rec: &RunRecord) -> Vec<String> {
    let mut errors = Vec::new();
    let text = message(rec);
    if let Some(url) = n.webhook.as_ref().filter(|w| !w.is_empty()) {
        if let Err(e) = post_json(url.expose(), &payload(rec), &[url.expose()]) {
            errors.push(format!("webhook: {e}"));
        }
    }
    if let Some(url) = n.slack.as_ref().filter(|w| !w.is_empty()) {
        if let Err(e) = post_json(url.expose(), &json!({ "text": text }), &[url.expose()]) {
            errors.push(format!("slack: {e}"));
        }
    }
    if let Some(t) = &n.telegram {
        if let Err(e) = telegram(t, &text) {
            errors.push(format!("telegram: {e}"));
        }
    }
    if let Some(m) = &n.email {
        if let Err(e) = email(m, rec, &text) {
            errors.push(format!("email: {e}"));
        }
    }
    if n.openclaw_event == Some(true) {
        if let Err(e) = openclaw_event(&text) {
            errors.push(format!("openclaw event: {e}"));
        }
    }
    errors
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(true).build().into()
}

/// POSTs JSON; the error names what went wrong but never the URL or any of `secrets`.
fn post_json(url: &str, body: &serde_json::Value, secrets: &[&str]) -> Result<(), String> {
    let r = agent().post(url).header("Content-Type", "application/json").send(body.to_string());
    match r {
        Ok(mut resp) => {
            // Drain a little of the body so the connection closes cleanly; its content is unused.
            let mut sink = [0u8; 1024];
            let _ = resp.body_mut().as_reader().read(&mut sink);
            Ok(())
        }
        Err(ureq::Error::StatusCode(code)) => Err(format!("HTTP status {code}")),
        Err(ureq::Error::Timeout(_)) => Err(format!("no answer within {}s", TIMEOUT.as_secs())),
        Err(ureq::Error::Io(e)) => Err(format!("cannot connect ({})", e.kind())),
        Err(e) => Err(redact(&e.to_string(), secrets)),
    }
}

fn redact(msg: &str, secrets: &[&str]) -> String {
    let mut m = msg.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        m = m.replace(s, "<redacted>");
    }
    // URLs in messages can carry tokens in their paths: keep only the scheme and host.
    m.split_whitespace()
        .map(|w| match w.find("://") {
            Some(i) => {
                let rest = &w[i + 3..];
                let host = rest.split(['/', '?']).next().unwrap_or("");
                let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
                format!("{}{}", &w[..i + 3], host)
            }
            None => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn telegram(t: &TelegramConfig, text: &str) -> Result<(), String> {
    let token = t.bot_token.as_ref().filter(|s| !s.is_empty()).ok_or("botToken is not set")?;
    let chat = t.chat_id.as_deref().filter(|s| !s.is_empty()).ok_or("chatId is not set")?;
    let base = std::env::var(TELEGRAM_API_ENV).ok().filter(|s| !s.is_empty());
    let base = base.as_deref().unwrap_or("https://api.telegram.org").trim_end_matches('/');
    let url = format!("{base}/bot{}/sendMessage", token.expose());
    post_json(&url, &json!({ "chat_id": chat, "text": text, "disable_web_page_preview": true }), &[token.expose()])
}

fn email(m: &EmailConfig, rec: &RunRecord, text: &str) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{Message, SmtpTransport, Transport};

    let host = m.smtp_host.as_deref().filter(|h| !h.is_empty()).ok_or("smtpHost is not set")?;
    if m.to.is_empty() {
        return Err("no recipient (`to`)".into());
    }
    let from = m.from.clone().unwrap_or_else(|| format!("clawback@{}", rec.host));
    let subject = match rec.status {
        RunStatus::Failed => format!("clawback backup FAILED on {}", rec.host),
        RunStatus::Partial => format!("clawback backup on {}: some files unreadable", rec.host),
        RunStatus::Ok if !rec.anomalies.is_empty() => format!("clawback backup on {}: anomaly warning", rec.host),
        RunStatus::Ok => format!("clawback backup ok on {}", rec.host),
    };
    let mut b = Message::builder()
        .from(from.parse().map_err(|_| "`from` is not an email address".to_string())?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &m.to {
        b = b.to(to.parse().map_err(|_| "a `to` entry is not an email address".to_string())?);
    }
    let msg = b.body(text.to_string()).map_err(|e| format!("cannot build the message: {e}"))?;
    let port = m.smtp_port.map(|p| p as u16);
    let mut t = match (port, m.starttls) {
        (Some(465), _) => SmtpTransport::relay(host).map_err(|e| format!("TLS setup: {e}"))?,
        (_, Some(false)) => SmtpTransport::builder_dangerous(host),
        _ => SmtpTransport::starttls_relay(host).map_err(|e| format!("TLS setup: {e}"))?,
    };
    if let Some(p) = port {
        t = t.port(p);
    }
    if let (Some(u), Some(p)) = (&m.username, &m.password) {
        t = t.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    let mailer = t.timeout(Some(TIMEOUT)).build();
    let secrets: Vec<&str> = m.password.iter().map(|p| p.expose()).collect();
    mailer.send(&msg).map(|_| ()).map_err(|e| redact(&e.to_string(), &secrets))
}

/// `openclaw system event --text ... --mode now`, when `openclaw` is on PATH.
fn openclaw_event(text: &str) -> Result<(), String> {
    let bin = find_on_path("openclaw").ok_or("the openclaw command is not on PATH")?;
    let mut child = Command::new(bin)
        .args(["system", "event", "--text", text, "--mode", "now"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run openclaw: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("openclaw system event exited with {s}")),
            Ok(None) if started.elapsed() >= TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("openclaw system event took more than {}s", TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for openclaw: {e}")),
        }
    }
}

/// The first executable `name` in `PATH`.
pub fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_hosts_only() {
        let m = redact("failed https://api.telegram.org/bot123:SECRET/sendMessage: boom 123:SECRET", &["123:SECRET"]);
        assert!(!m.contains("SECRET"), "{m}");
        assert!(m.contains("https://api.telegram.org"));
    }
}
