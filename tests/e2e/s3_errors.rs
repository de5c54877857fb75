//! One clear line per S3 or network failure, through the binary: each cause (server down, DNS,
//! TLS, timeout, no credentials, wrong secret, clock skew, access denied, no bucket) gives exactly
//! one stderr line that names it and its fix, never an SDK Debug fragment, with the documented
//! exit code. Causes a real SeaweedFS cannot produce on demand come from a tiny fake server in the
//! test that answers every request with the store's real XML error.

use crate::seaweed::{self, Seaweed};
use crate::support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// `clawback --repo URL snapshots` with the test keys and a short request timeout.
fn snapshots(sb: &Sandbox, url: &str) -> Run {
    seaweed::s3cb(sb, url).env("CLAWBACK_S3_TIMEOUT", "2").arg("snapshots").run()
}

/// Asserts the one-line rule: exit `code`, one stderr line holding every one of `words`, no
/// Debug fragment.
#[track_caller]
fn assert_line(r: Run, code: i32, words: &[&str]) -> String {
    let r = r.code(code);
    let line = r.one_error_line().to_string();
    for w in words {
        assert!(line.contains(w), "missing {w:?} in: {line}");
    }
    for bad in ["Unknown", "{", "}", "Error {", "dispatch failure"] {
        assert!(!line.contains(bad), "{bad:?} in: {line}");
    }
    line
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A fake S3 endpoint: answers every request with `status` and an S3 XML error of `code` (HEAD
/// requests get the status alone, as from a real store). Runs until the test process ends.
fn fake_s3(status: &'static str, code: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || answer(c, status, code));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn answer(mut c: TcpStream, status: &str, code: &str) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        // Not HTTP (a TLS handshake): answer as a plain HTTP server does.
        if !head[0].is_ascii_uppercase() {
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code} from the fake store</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"
    );
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head.starts_with(b"HEAD ") {
        resp.push_str(&body);
    }
    let _ = c.write_all(resp.as_bytes());
}

#[test]
fn server_down_is_connection_refused() {
    let sb = Sandbox::new();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let line = assert_line(
        snapshots(&sb, &format!("s3:{endpoint}/bucket")),
        1,
        &["cannot reach the S3 endpoint", &endpoint, "connection refused", "is the server running"],
    );
    assert!(!line.contains("permission"), "{line}");
}

#[test]
fn unknown_host_is_dns() {
    let sb = Sandbox::new();
    assert_line(
        snapshots(&sb, "s3:http://no-such-store.invalid:9000/bucket"),
        1,
        &["no-such-store.invalid", "does not resolve", "DNS", "check the host name"],
    );
}

#[test]
fn https_to_a_plain_http_port_is_tls() {
    let sb = Sandbox::new();
    let plain = fake_s3("403 Forbidden", "AccessDenied");
    let https = plain.replace("http://", "https://");
    assert_line(snapshots(&sb, &format!("s3:{https}/bucket")), 1, &["TLS handshake failed", "use http://"]);
}

#[test]
fn silent_server_is_a_timeout() {
    let sb = Sandbox::new();
    // Accepts connections and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    let start = Instant::now();
    assert_line(
        snapshots(&sb, &format!("s3:{endpoint}/bucket")),
        1,
        &[&endpoint, "no answer in time", "2 s per request", "check the network"],
    );
    // Before the store has ever answered, a timeout is retried briefly, not for minutes.
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
}

#[test]
fn no_credentials_anywhere() {
    let sb = Sandbox::new();
    let endpoint = fake_s3("403 Forbidden", "AccessDenied");
    // No keys in the environment or a config, no ~/.aws in the sandbox's HOME, no instance role.
    assert!(!sb.home.join(".aws").exists());
    let r = sb
        .bare()
        .args(["--repo", &format!("s3:{endpoint}/bucket"), "snapshots"])
        .env("CLAWBACK_PASSWORD", PASSWORD)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .run();
    assert_line(r, 1, &["no S3 credentials found", "AWS_ACCESS_KEY_ID", "storage.accessKeyId"]);
}

#[test]
fn wrong_secret_is_a_signature_mismatch() {
    let s3 = Seaweed::start();
    let sb = Sandbox::new();
    // The bucket exists (the server's readiness probe made it) and the key id is right; only the
    // secret is wrong.
    let r = seaweed::s3cb(&sb, &s3.url("ready-probe/repo"))
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
        .arg("snapshots")
        .run();
    let line = assert_line(r, 1, &["secret access key is wrong", "signature", "AWS_SECRET_ACCESS_KEY"]);
    assert!(!line.contains("permission"), "a wrong secret is not a permissions problem: {line}");
}

#[test]
fn clock_skew_is_named() {
    let sb = Sandbox::new();
    let endpoint = fake_s3("403 Forbidden", "RequestTimeTooSkewed");
    assert_line(
        snapshots(&sb, &format!("s3:{endpoint}/bucket")),
        1,
        &["clock is too far from the S3 server", "RequestTimeTooSkewed", "NTP"],
    );
}

#[test]
fn access_denied_names_the_permission() {
    let sb = Sandbox::new();
    let endpoint = fake_s3("403 Forbidden", "AccessDenied");
    assert_line(
        snapshots(&sb, &format!("s3:{endpoint}/bucket")),
        1,
        &["access denied", "bucket bucket", "permission", "policy"],
    );
}

#[test]
fn missing_bucket_is_exit_10() {
    let sb = Sandbox::new();
    let endpoint = fake_s3("404 Not Found", "NoSuchBucket");
    assert_line(
        snapshots(&sb, &format!("s3:{endpoint}/nobucket")),
        10,
        &["bucket nobucket does not exist", "--create-bucket"],
    );
}

#[test]
fn read_only_key_is_access_denied_on_a_real_store() {
    let s3 = Seaweed::start();
    let sb = Sandbox::new();
    let url = s3.url("ready-probe/ro");
    seaweed::s3cb(&sb, &url).args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"]).run().ok();
    let data = sb.path("data");
    write(&data.join("a.txt"), b"hello");
    // The read-only key opens and lists the repository, and cannot write to it.
    let ro = |c: Cmd| {
        c.env("AWS_ACCESS_KEY_ID", seaweed::READONLY_KEY).env("AWS_SECRET_ACCESS_KEY", seaweed::READONLY_SECRET)
    };
    ro(seaweed::s3cb(&sb, &url)).arg("snapshots").run().ok();
    let line = assert_line(
        ro(seaweed::s3cb(&sb, &url)).arg("backup").arg(&data).run(),
        1,
        &["access denied", "ready-probe", "permission to write"],
    );
    assert!(!line.contains("secret access key is wrong"), "{line}");
}
