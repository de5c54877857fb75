//! `clawback ui` in a real browser: Debian's headless Chromium, driven through the DevTools
//! protocol (a small client over a WebSocket), on a generated OpenClaw home. It loads the home
//! page, backs up from the page and watches the progress reach done (a second click is refused),
//! finds the run in the timeline, opens MEMORY.md in the snapshot and its diff to the previous
//! version, restores the workspace to a folder watching its progress reach done (a second restore
//! and a backup refused meanwhile) and checks the files on disk; then plain HTTP
//! requests check the refusals (no token, a cross-site Origin, a foreign Host, a target outside
//! the allowed places, read-only) and that no response carries the repository password. The
//! repository-size plot goes down after a forget and prune.
//! Screenshots of each page go to `$CARGO_TARGET_TMPDIR/ui-screenshots/`. Chromium must be
//! installed (`chromium` on PATH or /usr/bin/chromium): without it the test fails.

use crate::support::*;
use clawback_corpus::{generate, Era, Options};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MEMORY_V1: &str = "# Memory\n\n- the user likes tea\n- deploys happen on Fridays\n";
const MEMORY_V2: &str = "# Memory\n\n- the user likes tea\n- deploys happen on Fridays\n- learned: the console works\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `clawback ui`, stopped when dropped.
struct Console {
    child: Child,
    url: String,
    port: u16,
}

impl Console {
    fn start(cmd: Cmd) -> Console {
        let mut c = cmd.into_command();
        c.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = c.spawn().expect("start clawback ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read the access link");
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("`clawback ui --json` printed {line:?}: {e}"));
        let url = v["url"].as_str().expect("url").to_string();
        let port: u16 = url.split(':').nth(2).unwrap().split('/').next().unwrap().parse().unwrap();
        Console { child, url, port }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request (`Connection: close`): the status and the body.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Read the head, then the body by its Content-Length (Chromium keeps the connection open),
    // or to the end (streams and the console, which closes it).
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    let mut out = Vec::new();
    match len {
        Some(n) => {
            out.resize(n, 0);
            r.read_exact(&mut out).unwrap();
        }
        None => {
            r.read_to_end(&mut out).unwrap();
        }
    }
    let body = String::from_utf8_lossy(&out).into_owned();
    (status, body)
}

/// Headless Chromium and one page of it, over the DevTools protocol.
struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next: u64,
    _profile: tempfile::TempDir,
}

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("Chromium is missing: install Debian's `chromium` (tests/run installs it); the web console tests need it")
}

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut c = Command::new(chromium());
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // Debian's /usr/bin/chromium is a wrapper script: the browser and its helpers get a process
        // group of their own, killed whole when the test ends.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let child = c.spawn().expect("start chromium");
        // Chromium writes the port it chose into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let t = Instant::now();
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.lines().next()?.parse().ok()) {
                break p;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "chromium wrote no DevToolsActivePort");
            std::thread::sleep(Duration::from_millis(100));
        };
        let list = loop {
            let (code, body) = http(port, "GET", "/json/list", &[], "");
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if code == 200 && v.as_array().is_some_and(|a| a.iter().any(|t| t["type"] == "page")) {
                break v;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "chromium lists no page: {body}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let page = list.as_array().unwrap().iter().find(|t| t["type"] == "page").unwrap();
        let (ws, _) =
            tungstenite::connect(page["webSocketDebuggerUrl"].as_str().unwrap()).expect("connect to the page");
        let mut b = Browser { child, ws, next: 0, _profile: profile };
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b
    }

    /// Sends one command and waits for its answer (events in between are dropped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// `call`, with Chromium's error answer (a page navigating away meanwhile...) returned.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(tungstenite::Message::Text(msg.into())).unwrap();
        loop {
            let m = self.ws.read().expect("read from chromium");
            let Ok(text) = m.into_text() else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                return match v.get("error") {
                    Some(_) => Err(v),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Evaluates `expr` in the page (promises awaited); its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "awaitPromise": true, "returnByValue": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is true in the page, or fails showing `show` (evaluated then).
    fn wait_for(&mut self, expr: &str, limit: Duration, show: &str) {
        let t = Instant::now();
        loop {
            // While a page loads, the document may not be there yet, or the page may be navigating
            // (Chromium answers with an error): that counts as not yet.
            let probe = format!("(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()");
            let r = self.try_call("Runtime.evaluate", json!({"expression": probe, "returnByValue": true}));
            if r.is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return;
            }
            if t.elapsed() > limit {
                let seen = self.eval(show);
                panic!("timed out waiting for {expr}; the page shows {seen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Goes to a page of the console (`#/timeline`...) and waits until it has loaded.
    fn page(&mut self, hash: &str, name: &str) -> Duration {
        let t = Instant::now();
        self.eval(&format!("document.body.dataset.loaded = ''; location.hash = {}; true", json!(hash)));
        self.wait_for(
            &format!("document.body.dataset.loaded === {}", json!(name)),
            Duration::from_secs(60),
            "document.getElementById('error').textContent",
        );
        t.elapsed()
    }

    fn screenshot(&mut self, name: &str) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    fn text(&mut self, id: &str) -> String {
        self.eval(&format!("document.getElementById({}).textContent", json!(id))).as_str().unwrap_or("").to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this test started; no memory is touched.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A generated OpenClaw home with a first snapshot, and MEMORY.md changed since; its repository
/// is local, or on a SeaweedFS server the home keeps running.
struct Home {
    sb: Sandbox,
    ws: PathBuf,
    config: PathBuf,
    gateway_port: u16,
    s3: Option<(crate::seaweed::Seaweed, String)>,
}

impl Home {
    fn new() -> Home {
        Self::with_repo(false)
    }

    fn with_repo(on_s3: bool) -> Home {
        let sb = if on_s3 { Sandbox::new() } else { Sandbox::with_repo() };
        let s3 = on_s3.then(|| {
            let sw = crate::seaweed::Seaweed::start();
            let url = sw.url("ui-console/repo");
            crate::seaweed::s3cb(&sb, &url)
                .args(["init", "--create-bucket", "--kdf-memory", "1", "--kdf-iterations", "1"])
                .run()
                .ok();
            (sw, url)
        });
        let gen = generate(&Options {
            root: sb.home.clone(),
            total_bytes: 3_000_000,
            files: Some(150),
            seed: 19,
            era: Era::Both,
            small_files: false,
            agents: 1,
        })
        .expect("generate an OpenClaw home");
        let ws = gen.workspaces[0].clone();
        write(&ws.join("MEMORY.md"), MEMORY_V1.as_bytes());
        // The hook keeps the page's backup running long enough to click twice and see progress.
        let config = sb.path("clawback.json");
        let cfg = json!({"schedule": "2h", "hooks": {"before": ["sleep 2"]}, "retention": {"keepLast": 5}});
        std::fs::write(&config, cfg.to_string()).unwrap();
        let h = Home { sb, ws, config, gateway_port: free_port(), s3 };
        h.cb().args(["backup", "--json"]).run().ok();
        write(&h.ws.join("MEMORY.md"), MEMORY_V2.as_bytes());
        h
    }

    fn cb(&self) -> Cmd {
        let c = match &self.s3 {
            Some((_, url)) => crate::seaweed::s3cb(&self.sb, url),
            None => self.sb.cb(),
        };
        c.arg("--config").arg(&self.config).env("OPENCLAW_GATEWAY_PORT", self.gateway_port.to_string())
    }

    fn snapshots(&self) -> Vec<Value> {
        self.cb().args(["snapshots", "--json"]).run().ok().json().as_array().unwrap().clone()
    }

    fn allowed(&self) -> PathBuf {
        self.sb.path("restores")
    }

    fn console(&self, extra: &[&str]) -> Console {
        Console::start(self.cb().args(["ui", "--json", "--allow-target"]).arg(self.allowed()).args(extra))
    }
}

#[test]
fn web_console_in_headless_chromium() {
    console_flows(&Home::new());
}

#[test]
fn web_console_on_s3_in_headless_chromium() {
    console_flows(&Home::with_repo(true));
}

/// Every page driven in the browser, then the refusals and the secrets check, as plain requests.
fn console_flows(home: &Home) {
    let console = home.console(&["--limit-download", "256"]);
    let mut b = Browser::start();

    // Home: the health of the first backup.
    let t = Instant::now();
    b.navigate(&console.url);
    b.wait_for("document.body.dataset.loaded === 'home'", Duration::from_secs(60), "document.body.innerText");
    let home_load = t.elapsed();
    let state = b.eval("document.getElementById('health').dataset.state");
    assert_eq!(state, json!("healthy"), "health: {}", b.text("health-details"));
    assert!(b.text("health-details").contains("every 2h") || b.text("health-details").contains("2h"));
    b.screenshot("home");
    let session = b.eval("sessionStorage.getItem('clawback-session')").as_str().unwrap().to_string();
    assert!(!console.url.contains(&session), "the session token is not the link's");

    // Back up now: progress pushed to the page, a second click refused, then done.
    b.eval("document.getElementById('backup-now').click(); true");
    b.wait_for(
        "document.getElementById('backup-bar').dataset.state === 'running' && \
         document.getElementById('backup-progress').textContent.startsWith('backup')",
        Duration::from_secs(20),
        "document.getElementById('backup-bar').innerText",
    );
    b.eval("document.getElementById('backup-now').click(); true");
    b.wait_for(
        "document.getElementById('error').textContent.includes('already running')",
        Duration::from_secs(10),
        "document.getElementById('error').textContent",
    );
    b.wait_for(
        "document.getElementById('backup-status').dataset.state !== ''",
        Duration::from_secs(120),
        "document.getElementById('backup-progress').textContent",
    );
    let status = b.text("backup-status");
    assert!(status.starts_with("backup done: snapshot "), "{status}");
    b.screenshot("backup-done");
    let snaps = home.snapshots();
    assert_eq!(snaps.len(), 2, "the page's backup added a snapshot");
    let newest = snaps.iter().max_by_key(|s| s["time"].as_str().unwrap().to_string()).unwrap();
    let new_id = newest["id"].as_str().unwrap().to_string();
    assert!(status.contains(&new_id[..8]), "{status} names {new_id}");

    // Timeline: the run in the history, one dot per snapshot, the retention plan.
    let timeline_load = b.page("#/timeline", "timeline");
    assert!(b.text("runs").contains(&new_id[..8]), "runs: {}", b.text("runs"));
    assert_eq!(b.eval("document.querySelectorAll('#snap-timeline circle.snap').length"), json!(2));
    assert!(b.text("retention-note").contains("would keep 2 and forget 0"), "{}", b.text("retention-note"));
    b.screenshot("timeline");

    // Browse: the workspace folder of the newest snapshot, MEMORY.md, its diff to the previous version.
    let ws = home.ws.to_str().unwrap().to_string();
    let browse_load = b.page(&format!("#/browse?snap={new_id}&path={ws}"), "browse");
    let memory = format!("{ws}/MEMORY.md");
    b.eval(&format!(
        "Array.from(document.querySelectorAll('#tree tr.entry')).find((r) => r.dataset.path === {}).click(); true",
        json!(memory)
    ));
    b.wait_for(
        "document.getElementById('file-body').dataset.kind === 'markdown' && \
         document.querySelector('#versions tr:nth-child(3)') !== null",
        Duration::from_secs(30),
        "document.getElementById('error').textContent",
    );
    assert_eq!(b.eval("document.querySelector('#file-body h1').textContent"), json!("Memory"));
    assert!(b.text("file-body").contains("learned: the console works"));
    b.eval("document.getElementById('diff-prev').click(); true");
    b.wait_for(
        "document.getElementById('diff').dataset.ready === '1'",
        Duration::from_secs(30),
        "document.getElementById('error').textContent",
    );
    let diff = b.text("diff");
    assert!(diff.contains("+- learned: the console works"), "{diff}");
    assert!(!diff.contains("-- the user likes tea"), "{diff}");
    b.screenshot("browse-diff");

    // Restore the workspace to a folder among the allowed targets: its progress pushed to the
    // page (the console reads at 256 KiB/s, so it runs long enough to watch), a second restore
    // and a backup refused while it runs; then the files on disk.
    let auth = format!("Bearer {session}");
    let restore_load = b.page("#/restore", "restore");
    let target = home.allowed().join("ws");
    b.eval(&format!(
        "document.getElementById('r-snapshot').value = {}; document.getElementById('r-what').value = 'workspace'; \
         document.getElementById('r-target').value = {}; document.getElementById('r-go').click(); true",
        json!(new_id),
        json!(target.to_str().unwrap())
    ));
    b.wait_for(
        "document.getElementById('r-progress').dataset.state === 'running' && \
         document.getElementById('r-progress').textContent.startsWith('restore')",
        Duration::from_secs(30),
        "document.getElementById('r-progress').textContent + ' / ' + document.getElementById('error').textContent",
    );
    b.screenshot("restore-progress");
    let again = json!({"snapshot": new_id, "target": home.allowed().join("again"), "only": ["workspace"]}).to_string();
    for (path, body) in [("/api/restore", again.as_str()), ("/api/backup", "")] {
        let (code, body) = http(console.port, "POST", path, &[("Authorization", &auth)], body);
        assert_eq!(code, 409, "{path} while a restore runs: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let line = v["error"].as_str().unwrap();
        assert!(line.contains("a restore is already running") && !line.contains('\n'), "{line}");
    }
    assert!(!home.allowed().join("again").exists(), "the refused restore wrote nothing");
    b.wait_for(
        "['done', 'failed'].includes(document.getElementById('r-result').dataset.state)",
        Duration::from_secs(120),
        "document.getElementById('r-progress').textContent + ' / ' + document.getElementById('error').textContent",
    );
    assert_eq!(b.eval("document.getElementById('r-result').dataset.state"), json!("done"), "{}", b.text("error"));
    assert_eq!(b.eval("document.getElementById('r-progress').dataset.state"), json!("done"));
    let line = b.text("r-progress");
    assert!(line.starts_with("restore") && line.ends_with("— done") && line.contains("/s"), "{line}");
    // The last progress counts every file the restore reports.
    let result = b.text("r-result");
    let n = result.strip_prefix("restored ").and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("{result}"));
    assert!(line.contains(&format!(": {n}/{n} files")), "{line} / {result}");
    b.screenshot("restore");
    let restored_ws = restored(&target, &home.ws);
    assert_eq!(std::fs::read_to_string(restored_ws.join("MEMORY.md")).unwrap(), MEMORY_V2);
    // Every file the snapshot holds in the workspace is on disk, at its size.
    let listed = home.cb().args(["ls", "--json", &new_id]).arg(&home.ws).run().ok().json();
    let mut files = 0;
    for e in listed.as_array().unwrap().iter().filter(|e| e["type"] == "file") {
        let p = restored(&target, Path::new(e["path"].as_str().unwrap()));
        let md = std::fs::metadata(&p).unwrap_or_else(|err| panic!("{} not restored: {err}", p.display()));
        assert_eq!(md.len(), e["size"].as_u64().unwrap(), "{}", p.display());
        files += 1;
    }
    assert!(files > 1, "the workspace holds files: {listed}");

    // Refusals, as plain requests.
    let port = console.port;
    let (code, body) = http(port, "GET", "/api/status", &[], "");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("no session token"), "{body}");
    let (code, body) = http(port, "GET", "/api/status", &[("Authorization", "Bearer 00ff")], "");
    assert_eq!(code, 401, "{body}");
    let (code, body) =
        http(port, "GET", "/api/status", &[("Authorization", &auth), ("Origin", "http://evil.example")], "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("cross-site"), "{body}");
    let (code, body) =
        http(port, "GET", "/api/status", &[("Authorization", &auth), ("Host", &format!("evil.example:{port}"))], "");
    assert_eq!(code, 403, "{body}");
    let (code, _) = http(port, "GET", "/", &[("Host", "rebound.example")], "");
    assert_eq!(code, 403, "DNS rebinding: the page itself is refused to a foreign Host");
    let outside = home.sb.path("outside");
    let req = json!({"snapshot": new_id, "target": outside, "only": ["workspace"]}).to_string();
    let (code, body) = http(port, "POST", "/api/restore", &[("Authorization", &auth)], &req);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("outside the allowed places"), "{body}");
    assert!(!outside.exists(), "nothing written outside the allowed places");
    let sneaky = format!("{}/../outside", home.allowed().display());
    let req = json!({"snapshot": new_id, "target": sneaky}).to_string();
    let (code, body) = http(port, "POST", "/api/restore", &[("Authorization", &auth)], &req);
    assert_eq!(code, 403, "{body}");
    let (code, _) = http(port, "POST", "/api/session", &[("Authorization", "Bearer 1234")], "");
    assert_eq!(code, 401, "the access link works once");

    // No secret in any answer: every API the pages use, with the session.
    let mut bodies = Vec::new();
    for p in [
        "/api/info".to_string(),
        "/api/status".to_string(),
        "/api/timeline".to_string(),
        "/api/snapshots".to_string(),
        "/api/restore".to_string(),
        "/api/backup".to_string(),
        format!("/api/tree?snapshot={new_id}&path={ws}"),
        format!("/api/file?snapshot={new_id}&path={memory}"),
        format!("/api/versions?path={memory}"),
    ] {
        let (code, body) = http(port, "GET", &p, &[("Authorization", &auth)], "");
        assert_eq!(code, 200, "{p}: {body}");
        bodies.push(body);
    }
    for body in &bodies {
        assert!(!body.contains(PASSWORD), "the repository password appears in an answer: {body}");
        assert!(!body.contains(crate::seaweed::SECRET_KEY), "the S3 secret key appears in an answer: {body}");
    }
    eprintln!(
        "page load times: home {home_load:?}, timeline {timeline_load:?}, browse {browse_load:?}, restore {restore_load:?}; \
         screenshots in {}",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots").display()
    );
}

/// The repository-size plot is what the repository holds after each backup and prune (the size
/// log), not a running sum: a big file backed up, then forgotten and pruned, takes it up and down.
#[test]
fn size_plot_goes_down_after_forget_and_prune() {
    let home = Home::new();
    let big = home.ws.join("big.bin");
    write(&big, &random_bytes(5, 3 << 20));
    let with_big = home.cb().args(["backup", "--json"]).run().ok().json();
    std::fs::remove_file(&big).unwrap();
    let without = home.cb().args(["backup", "--json"]).run().ok().json();
    let listed_then = home.cb().args(["status", "--json"]).run().json()["repo_bytes"].as_u64();
    home.cb().args(["forget", "--keep-last", "1", "--prune", "--json"]).run().ok();

    let console = home.console(&[]);
    let mut b = Browser::start();
    b.navigate(&console.url);
    b.wait_for("document.body.dataset.loaded === 'home'", Duration::from_secs(60), "document.body.innerText");
    let session = b.eval("sessionStorage.getItem('clawback-session')").as_str().unwrap().to_string();

    // The JSON the plot is drawn from.
    let (code, body) =
        http(console.port, "GET", "/api/timeline", &[("Authorization", &format!("Bearer {session}"))], "");
    assert_eq!(code, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    let sizes = t["sizes"].as_array().unwrap();
    let events: Vec<&str> = sizes.iter().map(|p| p["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["backup", "backup", "backup", "prune", "now"], "{body}");
    let bytes: Vec<u64> = sizes.iter().map(|p| p["bytes"].as_u64().unwrap()).collect();
    let mib = 1 << 20;
    assert!(bytes[1] > bytes[0] + 2 * mib, "the big file's backup adds its 3 MiB: {bytes:?}");
    assert!(bytes[2] < bytes[1] + mib / 4, "the backup without it adds little: {bytes:?}");
    assert!(bytes[3] + 2 * mib < bytes[2], "prune frees the big file's 3 MiB: {bytes:?}");
    assert_eq!(bytes[4], bytes[3], "nothing changed since the prune: {bytes:?}");
    // The first backup and the prune list the repository; the backups between add what they
    // stored (no listing of every pack after every run).
    let listed: Vec<bool> = sizes.iter().map(|p| p["listed"].as_bool().unwrap()).collect();
    assert_eq!(listed, [true, false, false, true, true], "{body}");
    let stored = |b: &Value| b["bytes_stored"].as_u64().unwrap();
    assert_eq!(bytes[1], bytes[0] + stored(&with_big), "{bytes:?}");
    assert_eq!(bytes[2], bytes[1] + stored(&without), "{bytes:?}");
    assert_eq!(listed_then, Some(bytes[2]), "what the backups added is what a listing finds");
    let times: Vec<&str> = sizes.iter().map(|p| p["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    // What `status` reports now is the plot's last point.
    let status = home.cb().args(["status", "--json"]).run().json();
    assert_eq!(status["repo_bytes"].as_u64(), Some(bytes[4]), "{status}");

    // The plot in the page: up, then down.
    b.page("#/timeline", "timeline");
    let drawn = b.eval("document.getElementById('plot-size').dataset.bytes");
    let want = bytes.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(drawn, json!(want));
    assert_eq!(b.eval("document.querySelectorAll('#plot-size circle').length"), json!(5));
    b.screenshot("timeline-after-prune");
}

#[test]
fn read_only_console_refuses_backup_and_restore() {
    let home = Home::new();
    let console = home.console(&["--read-only"]);
    // The session comes from the one-time token, as the page gets it.
    let token = console.url.split("#token=").nth(1).unwrap().to_string();
    let (code, body) = http(console.port, "POST", "/api/session", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(code, 200, "{body}");
    let session: Value = serde_json::from_str(&body).unwrap();
    let auth = format!("Bearer {}", session["session"].as_str().unwrap());
    let (code, body) = http(console.port, "POST", "/api/backup", &[("Authorization", &auth)], "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("read-only"), "{body}");
    let req = json!({"snapshot": "latest", "target": home.allowed().join("x")}).to_string();
    let (code, body) = http(console.port, "POST", "/api/restore", &[("Authorization", &auth)], &req);
    assert_eq!(code, 403, "{body}");
    assert_eq!(home.snapshots().len(), 1);
    let (_, info) = http(console.port, "GET", "/api/info", &[("Authorization", &auth)], "");
    assert!(info.contains("\"read_only\":true"), "{info}");
}

#[test]
fn listening_beyond_loopback_needs_the_explicit_flag() {
    let home = Home::new();
    let r = home.cb().args(["ui", "--listen", "0.0.0.0"]).run().code(2);
    assert!(r.one_error_line().contains("--insecure-listen"), "{}", r.stderr);
}

/// Load times at a month's scale: 360 two-hourly snapshots (`backup --time`) of a small generated
/// home whose MEMORY.md changes daily, then each page loaded afresh in headless Chromium (home,
/// timeline, browse a snapshot, restore) and a file opened with its versions, timed by the marks the
/// page sets once its data is drawn. A benchmark, not a check of speed: `benches/ui` runs it
/// (`--ignored`) and reports the figures; it fails only if a page does not load.
#[test]
#[ignore = "a benchmark of several minutes: run by benches/ui"]
fn month_of_snapshots_page_load_times() {
    let n: usize = std::env::var("CLAWBACK_UI_BENCH_SNAPSHOTS").ok().and_then(|v| v.parse().ok()).unwrap_or(360);
    let sb = Sandbox::with_repo();
    let gen = generate(&Options {
        root: sb.home.clone(),
        total_bytes: 400_000,
        files: Some(60),
        seed: 30,
        era: Era::Both,
        small_files: false,
        agents: 1,
    })
    .expect("generate an OpenClaw home");
    let ws = gen.workspaces[0].clone();
    let config = sb.path("clawback.json");
    // A retention policy that keeps the month (the timeline still draws its plan).
    let cfg = json!({"schedule": "2h", "retention": {"keepLast": 1000}});
    std::fs::write(&config, cfg.to_string()).unwrap();
    let home = Home { sb, ws, config, gateway_port: free_port(), s3: None };
    let first = chrono::Utc::now() - chrono::Duration::hours(2 * n as i64);
    let t = Instant::now();
    let mut memory = String::from("# Memory\n");
    let mut notes = String::new();
    for i in 0..n {
        if i % 12 == 0 {
            memory.push_str(&format!("- day {}: learned something\n", i / 12));
            write(&home.ws.join("MEMORY.md"), memory.as_bytes());
        }
        notes.push_str(&format!("tick {i}\n"));
        write(&home.ws.join("notes.md"), notes.as_bytes());
        let at = (first + chrono::Duration::hours(2 * i as i64)).to_rfc3339();
        home.cb().args(["backup", "--quiet", "--time", &at]).run().ok();
    }
    let made = t.elapsed();
    let snaps = home.snapshots();
    assert_eq!(snaps.len(), n);
    let newest = snaps.iter().max_by_key(|s| s["time"].as_str().unwrap().to_string()).unwrap();
    let id = newest["id"].as_str().unwrap().to_string();
    let ws = home.ws.to_str().unwrap().to_string();

    let console = home.console(&[]);
    let mut b = Browser::start();
    b.navigate(&console.url);
    b.wait_for("document.body.dataset.loaded === 'home'", Duration::from_secs(120), "document.body.innerText");
    let mark =
        |b: &mut Browser, k: &str| -> f64 { b.eval(&format!("Number(document.body.dataset.{k})")).as_f64().unwrap() };
    let mut rows = Vec::new();
    let pages = [
        ("home", "#/home".to_string()),
        ("timeline", "#/timeline".to_string()),
        ("browse", format!("#/browse?snap={id}&path={ws}")),
        ("restore", "#/restore".to_string()),
    ];
    for round in 0..2 {
        for (name, hash) in &pages {
            // A fresh load of the page (the session stays in the tab), timed from the navigation.
            let reload =
                format!("document.body.dataset.loaded = ''; location.hash = {}; location.reload(); true", json!(hash));
            // The answer may come after the page began to reload (an error then): either is fine.
            let _ = b.try_call("Runtime.evaluate", json!({"expression": reload}));
            b.wait_for(
                &format!("document.body.dataset.loaded === {}", json!(name)),
                Duration::from_secs(120),
                "document.getElementById('error').textContent",
            );
            assert_eq!(b.text("error"), "", "{name} loads without an error");
            let (nav, route) = (mark(&mut b, "sinceNavMs"), mark(&mut b, "routeMs"));
            rows.push(format!(
                "{name:<9} round {round}: {nav:>8.1} ms from navigation, {route:>8.1} ms drawing its data"
            ));
            if round == 0 {
                b.screenshot(&format!("month-{name}"));
            }
        }
        // A file with its versions: MEMORY.md (one version a day) in the newest snapshot.
        b.eval(&format!("location.hash = {}; true", json!(format!("#/browse?snap={id}&path={ws}"))));
        b.wait_for(
            "document.body.dataset.loaded === 'browse'",
            Duration::from_secs(120),
            "document.getElementById('error').textContent",
        );
        let memory_path = format!("{ws}/MEMORY.md");
        b.eval(&format!(
            "Array.from(document.querySelectorAll('#tree tr.entry')).find((r) => r.dataset.path === {}).click(); true",
            json!(memory_path)
        ));
        b.wait_for(
            "Number(document.getElementById('viewer').dataset.loadMs) > 0",
            Duration::from_secs(120),
            "document.getElementById('error').textContent",
        );
        let versions = b.eval("document.querySelectorAll('#versions tr').length").as_u64().unwrap() - 1;
        assert_eq!(versions as usize, n.div_ceil(12), "one MEMORY.md version a day");
        let ms = b.eval("Number(document.getElementById('viewer').dataset.loadMs)").as_f64().unwrap();
        rows.push(format!("file+versions round {round}: {ms:>8.1} ms ({versions} versions)"));
        if round == 0 {
            b.screenshot("month-file-versions");
        }
    }
    eprintln!("{n} snapshots made in {made:?}; page loads (debug or release as built):");
    for r in &rows {
        eprintln!("  {r}");
    }
}
