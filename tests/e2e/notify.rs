//! Notifications from real backup runs to a local HTTP server (webhook, Slack, Telegram through
//! an overridden API base), an OpenClaw event through a stand-in `openclaw`, anomaly warnings,
//! and a failing notifier that must not fail the backup. No secret may reach a payload.

use crate::support::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server received.
#[derive(Clone, Debug)]
struct Req {
    path: String,
    body: String,
}

/// A tiny HTTP/1.1 server answering 200 to every request and keeping what it got.
struct Server {
    port: u16,
    got: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                g.lock().unwrap().push(Req { path, body: String::from_utf8_lossy(&body).into_owned() });
            }
        });
        Server { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests so far, waiting briefly for `n` of them.
    fn requests(&self, n: usize) -> Vec<Req> {
        let t = Instant::now();
        while self.got.lock().unwrap().len() < n && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.got.lock().unwrap().clone()
    }
}

const TG_TOKEN: &str = "123456:AAE-telegram-token-e2e-SECRET";
const HOOK_TOKEN: &str = "hook-token-e2e-SECRET-77";

fn config(sb: &Sandbox, notify: &str) -> std::path::PathBuf {
    let p = sb.path("clawback.json");
    fs::write(&p, format!("{{ notify: {notify} }}")).unwrap();
    p
}

#[test]
fn a_failed_backup_notifies_every_channel_without_secrets() {
    let srv = Server::start();
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a.txt"), b"hello");
    let cfg = config(
        &sb,
        &format!(
            r#"{{ webhook: "{}", slack: "{}", telegram: {{ botToken: "${{TG_TOKEN}}", chatId: -1001 }} }}"#,
            srv.url("/hook?token=${HOOK_TOKEN}"),
            srv.url("/slack/T000/B000")
        ),
    );
    let wrong = "wrong-password-e2e-SECRET";
    let r = sb
        .cb()
        .env("CLAWBACK_PASSWORD", wrong)
        .env("TG_TOKEN", TG_TOKEN)
        .env("HOOK_TOKEN", HOOK_TOKEN)
        .env("CLAWBACK_TELEGRAM_API", srv.url(""))
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "-q"])
        .arg(&data)
        .run()
        .code(11);
    assert!(!r.stderr.contains("notification failed"), "{}", r.stderr);
    let reqs = srv.requests(3);
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let find = |prefix: &str| {
        reqs.iter().find(|q| q.path.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}: {reqs:?}"))
    };

    let hook: serde_json::Value = serde_json::from_str(&find("/hook").body).unwrap();
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["exit_code"], 11);
    assert!(hook["error"].as_str().unwrap().contains("wrong password"));
    assert!(hook["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(hook["repository"], sb.repo.display().to_string());

    let slack: serde_json::Value = serde_json::from_str(&find("/slack/").body).unwrap();
    assert!(slack["text"].as_str().unwrap().contains("FAILED"), "{slack}");

    let tg = find(&format!("/bot{TG_TOKEN}/sendMessage"));
    let tg: serde_json::Value = serde_json::from_str(&tg.body).unwrap();
    assert_eq!(tg["chat_id"], "-1001");
    assert!(tg["text"].as_str().unwrap().contains("FAILED"));

    for q in &reqs {
        for secret in [wrong, PASSWORD, TG_TOKEN, HOOK_TOKEN] {
            assert!(!q.body.contains(secret), "a secret reached a payload: {q:?}");
        }
    }
    let log = fs::read_to_string(sb.home.join(".openclaw/clawback/runs.jsonl")).unwrap();
    for secret in [wrong, PASSWORD, TG_TOKEN, HOOK_TOKEN] {
        assert!(!log.contains(secret), "a secret reached the run log");
    }
}

#[test]
fn success_is_quiet_unless_on_success_is_set() {
    let srv = Server::start();
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a.txt"), b"hello");
    let cfg = config(&sb, &format!(r#"{{ webhook: "{}" }}"#, srv.url("/hook")));
    sb.cb().arg("--config").arg(&cfg).args(["backup", "-q"]).arg(&data).run().ok();
    std::thread::sleep(Duration::from_millis(300));
    assert!(srv.requests(0).is_empty(), "a good run notified without onSuccess");

    let cfg = config(&sb, &format!(r#"{{ onSuccess: true, webhook: "{}" }}"#, srv.url("/hook")));
    let b = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&data).run().ok().json();
    let reqs = srv.requests(1);
    assert_eq!(reqs.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["snapshot_id"], b["snapshot_id"]);
    assert!(v["counters"]["files_unmodified"].as_u64().is_some());

    // onFailure: false silences failures.
    let cfg = config(&sb, &format!(r#"{{ onFailure: false, webhook: "{}" }}"#, srv.url("/hook")));
    sb.cb().env("CLAWBACK_PASSWORD", "nope").arg("--config").arg(&cfg).args(["backup", "-q"]).arg(&data).run().code(11);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.requests(1).len(), 1);
}

#[test]
fn an_unreachable_notifier_does_not_fail_the_backup() {
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    write(&data.join("a.txt"), b"hello");
    // Port 1 on loopback: connection refused at once.
    let cfg = config(&sb, r#"{ onSuccess: true, webhook: "http://127.0.0.1:1/hook" }"#);
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup"]).arg(&data).run().ok();
    assert!(r.stderr.contains("notification failed: webhook"), "{}", r.stderr);
    assert!(r.stdout.contains("saved"));
    let log = fs::read_to_string(sb.home.join(".openclaw/clawback/runs.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(rec["status"], "ok");
    assert!(rec["notify_errors"][0].as_str().unwrap().starts_with("webhook:"), "{rec}");
}

#[test]
fn openclaw_event_runs_the_openclaw_cli() {
    let sb = Sandbox::with_repo();
    let bindir = sb.path("bin");
    fs::create_dir_all(&bindir).unwrap();
    let args_file = sb.path("openclaw-args");
    write_executable(
        &bindir.join("openclaw"),
        &format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", args_file.display()),
    );
    let cfg = config(&sb, "{ openclawEvent: true }");
    sb.cb()
        .env("PATH", format!("{}:/usr/bin:/bin", bindir.display()))
        .env("CLAWBACK_PASSWORD", "nope")
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "-q"])
        .arg(sb.path("data-missing"))
        .run();
    let args = fs::read_to_string(&args_file).expect("openclaw was not run");
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(&lines[..3], &["system", "event", "--text"], "{args}");
    assert!(lines[3].contains("clawback backup FAILED"), "{args}");
    assert!(args.trim_end().ends_with("--mode\nnow"), "{args}");
}

#[test]
fn a_run_adding_twenty_times_the_usual_data_is_flagged_everywhere() {
    let srv = Server::start();
    let sb = Sandbox::with_repo();
    let data = sb.path("data");
    let cfg = config(&sb, &format!(r#"{{ webhook: "{}" }}"#, srv.url("/hook")));
    for i in 0..4u64 {
        write(&data.join(format!("small{i}")), &random_bytes(100 + i, 512 * 1024));
        let b = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&data).run().ok().json();
        assert_eq!(b["anomalies"], serde_json::json!([]), "run {i}: {b}");
    }
    assert!(srv.requests(0).is_empty());
    // 20 × the usual half MiB.
    write(&data.join("big"), &random_bytes(999, 10 * 1024 * 1024));
    let r = sb.cb().arg("--config").arg(&cfg).args(["backup", "--json"]).arg(&data).run().ok();
    let b = r.json();
    let kinds: Vec<&str> = b["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"bytes_added"), "{b}");
    assert!(r.stderr.contains("warning: anomaly: this run added"), "{}", r.stderr);

    let log = fs::read_to_string(sb.home.join(".openclaw/clawback/runs.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(rec["anomalies"][0]["kind"], "bytes_added");

    let st = sb.cb().arg("--config").arg(&cfg).args(["status", "--json"]).run().ok().json();
    assert_eq!(st["anomalies"][0]["kind"], "bytes_added", "{st}");
    let human = sb.cb().arg("--config").arg(&cfg).arg("status").run().ok();
    assert!(human.stdout.contains("anomaly:"), "{}", human.stdout);

    let reqs = srv.requests(1);
    assert_eq!(reqs.len(), 1, "the anomaly is notified even though the run succeeded");
    let v: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["anomalies"][0]["kind"], "bytes_added");
    assert!(v["text"].as_str().unwrap().contains("Warning:"));
}

/// A minimal SMTP server (no TLS, no auth) that keeps the envelope and the message of one mail.
fn smtp_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut transcript = String::new();
        let _ = s.write_all(b"220 e2e.local ESMTP\r\n");
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            transcript.push_str(&line);
            let cmd = line.trim().to_ascii_uppercase();
            let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                b"250-e2e.local\r\n250 8BITMIME\r\n"
            } else if cmd == "DATA" {
                let _ = s.write_all(b"354 go ahead\r\n");
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                        break;
                    }
                    transcript.push_str(&l);
                }
                b"250 queued\r\n"
            } else if cmd == "QUIT" {
                let _ = s.write_all(b"221 bye\r\n");
                break;
            } else {
                b"250 ok\r\n"
            };
            let _ = s.write_all(reply);
        }
        let _ = tx.send(transcript);
    });
    (port, rx)
}

#[test]
fn a_failed_backup_is_mailed_over_smtp() {
    let (port, rx) = smtp_server();
    let sb = Sandbox::with_repo();
    let cfg = config(
        &sb,
        &format!(
            r#"{{ email: {{ smtpHost: "127.0.0.1", smtpPort: {port}, starttls: false, from: "clawback@example.com",
                           to: ["ops@example.com"] }} }}"#
        ),
    );
    let wrong = "wrong-password-mail-SECRET";
    sb.cb().env("CLAWBACK_PASSWORD", wrong).arg("--config").arg(&cfg).args(["backup", "-q"]).arg(sb.path("x")).run();
    let mail = rx.recv_timeout(Duration::from_secs(15)).expect("no mail arrived");
    assert!(mail.contains("MAIL FROM:<clawback@example.com>"), "{mail}");
    assert!(mail.contains("RCPT TO:<ops@example.com>"), "{mail}");
    assert!(mail.contains("Subject: clawback backup FAILED on"), "{mail}");
    assert!(!mail.contains(wrong) && !mail.contains(PASSWORD), "a secret reached the mail");
}
