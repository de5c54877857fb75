//! The web console's server (`clawback ui`): a small synchronous HTTP server (tiny_http), the
//! security gate every request passes (Host and Origin against the listen address, the session
//! token on every API call), the embedded page, and the routes. What each route answers is in
//! `api`; backups and restores started from the page run in `jobs`, through the CLI's own paths.

mod api;
mod jobs;
mod render;

use crate::context::Ctx;
use anyhow::{anyhow, Result};
use clawback_engine::repo::Repository;
use parking_lot::Mutex;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tiny_http::{Header, Method, Request, Response};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How the console was started.
pub struct Options {
    pub listen: SocketAddr,
    pub read_only: bool,
    /// Folders a restore may write into (besides in place, to the OpenClaw home's own paths).
    pub allow_targets: Vec<PathBuf>,
}

/// Everything the request handlers share.
pub struct Server<'a> {
    pub ctx: &'a Ctx,
    pub opts: Options,
    /// The address the server listens on (the port chosen when 0 was asked for).
    pub addr: SocketAddr,
    /// The one-time token of the access link; taken by the first session.
    one_time: Mutex<Option<String>>,
    /// Session tokens handed out (kept in the page's memory, sent as `Authorization: Bearer`).
    sessions: Mutex<Vec<String>>,
    pub jobs: jobs::Jobs,
    /// The repository, opened once: every request would otherwise pay the key derivation (by
    /// design slow) again. Each use first picks up index files that came or went.
    repo: Mutex<Option<Arc<Repository>>>,
}

/// A random token: 32 bytes from the OS generator, hex.
fn token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An answer refused or failed: the HTTP status and one line saying why and what to do.
pub struct Refusal {
    pub status: u16,
    pub error: String,
}

impl Refusal {
    pub fn new(status: u16, error: impl Into<String>) -> Refusal {
        Refusal { status, error: error.into() }
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Refusal {
        let status = match crate::ui::exit_code(&e) {
            2 => 400,
            10 => 404,
            12 => 409,
            _ => 500,
        };
        Refusal { status, error: crate::ui::error_line(&e) }
    }
}

impl From<clawback_engine::Error> for Refusal {
    fn from(e: clawback_engine::Error) -> Refusal {
        anyhow::Error::from(e).into()
    }
}

pub type Answer = std::result::Result<Reply, Refusal>;

/// What a route answers with (streams write their own response).
pub enum Reply {
    Json(serde_json::Value),
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

/// The headers every response carries: nothing cached, nothing framed, scripts only from here.
fn common_headers() -> Vec<Header> {
    vec![
        header("Cache-Control", "no-store"),
        header("X-Content-Type-Options", "nosniff"),
        header("X-Frame-Options", "DENY"),
        header("Referrer-Policy", "no-referrer"),
        header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    ]
}

fn respond(rq: Request, status: u16, content_type: &str, body: Vec<u8>) {
    let mut r = Response::from_data(body).with_status_code(status);
    for h in common_headers() {
        r.add_header(h);
    }
    r.add_header(header("Content-Type", content_type));
    // The client may have gone away; nothing to tell it then.
    let _ = rq.respond(r);
}

fn respond_json(rq: Request, status: u16, v: &serde_json::Value) {
    respond(rq, status, "application/json", serde_json::to_vec(v).unwrap_or_default());
}

/// Writes the status line and headers of a streamed response (no length: it ends when the
/// connection closes) and hands back the connection.
pub fn start_stream(rq: Request, content_type: &str, extra: &[(&str, String)]) -> Box<dyn Write + Send> {
    let mut w = rq.into_writer();
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n");
    for h in common_headers() {
        head.push_str(&format!("{}: {}\r\n", h.field, h.value));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = w.write_all(head.as_bytes()).and_then(|_| w.flush());
    w
}

fn header_value<'r>(rq: &'r Request, name: &str) -> Option<&'r str> {
    rq.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

impl<'a> Server<'a> {
    /// The open repository, its index brought up to date (a backup or prune since adds or
    /// removes index files; snapshots are read anew by each request anyway).
    pub fn repo(&self) -> Result<Arc<Repository>> {
        let kept = self.repo.lock().clone();
        if let Some(r) = kept {
            r.refresh_index()?;
            return Ok(r);
        }
        let r = Arc::new(self.ctx.open()?);
        *self.repo.lock() = Some(r.clone());
        Ok(r)
    }

    /// The names a browser may use for this server: its address, and `localhost` for loopback.
    fn host_allowed(&self, host: &str) -> bool {
        let port = self.addr.port();
        let mut ok = vec![self.addr.to_string()];
        if self.addr.ip().is_loopback() {
            ok.push(format!("localhost:{port}"));
            ok.push(format!("127.0.0.1:{port}"));
        }
        ok.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The gate: DNS rebinding (a foreign Host), cross-site requests (a foreign Origin), and,
    /// for the API, the session token.
    fn gate(&self, rq: &Request, api: bool) -> std::result::Result<(), Refusal> {
        let host = header_value(rq, "Host").unwrap_or("");
        if !self.host_allowed(host) {
            return Err(Refusal::new(
                403,
                format!("Host {host:?} is not this console's address; open http://{}/ instead", self.addr),
            ));
        }
        if let Some(origin) = header_value(rq, "Origin") {
            let same = origin
                .strip_prefix("http://")
                .map(|h| self.host_allowed(h) && h.eq_ignore_ascii_case(host))
                .unwrap_or(false);
            if !same {
                return Err(Refusal::new(
                    403,
                    format!("cross-site request from {origin} refused; use the console's own page"),
                ));
            }
        }
        if !api {
            return Ok(());
        }
        let bearer = header_value(rq, "Authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
        if bearer.is_empty() {
            return Err(Refusal::new(401, "no session token; open the access link `clawback ui` printed"));
        }
        if self.sessions.lock().iter().any(|s| same_token(s, bearer)) {
            return Ok(());
        }
        Err(Refusal::new(401, "session token not valid; open the access link `clawback ui` printed"))
    }

    /// Trades the one-time token of the access link for a session token (once).
    fn new_session(&self, rq: &Request) -> Answer {
        let given = header_value(rq, "Authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
        let mut once = self.one_time.lock();
        match once.as_deref() {
            Some(t) if same_token(t, given) => {
                *once = None;
                let s = token();
                self.sessions.lock().push(s.clone());
                Ok(Reply::Json(serde_json::json!({ "session": s })))
            }
            Some(_) => Err(Refusal::new(401, "access token not valid; open the access link `clawback ui` printed")),
            None => Err(Refusal::new(401, "the access link was used already; restart `clawback ui` for a new one")),
        }
    }

    fn handle<'s>(&'s self, scope: &'s std::thread::Scope<'s, '_>, rq: Request) {
        let url = rq.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let path = path.to_string();
        let api = path.starts_with("/api/");
        // The session exchange carries the link's one-time token instead of a session.
        if let Err(r) = self.gate(&rq, api && path != "/api/session") {
            return respond_json(rq, r.status, &serde_json::json!({ "error": r.error }));
        }
        if !api {
            let (ct, body) = match path.as_str() {
                "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
                "/app.js" => ("text/javascript; charset=utf-8", APP_JS),
                "/app.css" => ("text/css; charset=utf-8", APP_CSS),
                _ => return respond_json(rq, 404, &serde_json::json!({ "error": format!("no page {path}") })),
            };
            return respond(rq, 200, ct, body.as_bytes().to_vec());
        }
        let q = api::Query::parse(query);
        let method = rq.method().clone();
        let mut rq = rq;
        let answer = match (&method, path.as_str()) {
            (Method::Post, "/api/session") => self.new_session(&rq),
            (Method::Get, "/api/info") => api::info(self),
            (Method::Get, "/api/status") => api::status(self),
            (Method::Get, "/api/timeline") => api::timeline(self),
            (Method::Get, "/api/snapshots") => api::snapshot_list(self),
            (Method::Get, "/api/tree") => api::tree(self, &q),
            (Method::Get, "/api/file") => api::file(self, &q),
            (Method::Get, "/api/versions") => api::versions(self, &q),
            (Method::Get, "/api/diff") => api::diff(self, &q),
            (Method::Get, "/api/download") => return api::download(self, &q, rq),
            (Method::Get, "/api/backup") => Ok(Reply::Json(self.jobs.state("backup"))),
            (Method::Post, "/api/backup") => jobs::start_backup(self, scope),
            (Method::Get, "/api/backup/events") => return jobs::events(self, rq, "backup"),
            (Method::Get, "/api/restore") => Ok(Reply::Json(self.jobs.state("restore"))),
            (Method::Get, "/api/restore/events") => return jobs::events(self, rq, "restore"),
            (Method::Post, "/api/restore") => {
                let mut body = String::new();
                match std::io::Read::read_to_string(&mut rq.as_reader().take(1 << 20), &mut body) {
                    Ok(_) => jobs::start_restore(self, scope, &body),
                    Err(e) => Err(Refusal::new(400, format!("cannot read the request: {e}"))),
                }
            }
            _ => Err(Refusal::new(404, format!("no API {method} {path}"))),
        };
        match answer {
            Ok(Reply::Json(v)) => respond_json(rq, 200, &v),
            Err(r) => respond_json(rq, r.status, &serde_json::json!({ "error": r.error })),
        }
    }
}

use std::io::Read as _;

/// Serves the console until the process is stopped; `ready` gets the access link first.
pub fn serve(ctx: &Ctx, opts: Options, ready: impl FnOnce(&str)) -> Result<()> {
    let server = tiny_http::Server::http(opts.listen)
        .map_err(|e| anyhow!("cannot listen on {}: {e}; choose another --port or --listen", opts.listen))?;
    let addr = server.server_addr().to_ip().ok_or_else(|| anyhow!("the server has no IP address"))?;
    let one_time = token();
    let s = Server {
        ctx,
        opts,
        addr,
        one_time: Mutex::new(Some(one_time.clone())),
        sessions: Mutex::new(Vec::new()),
        jobs: jobs::Jobs::default(),
        repo: Mutex::new(None),
    };
    ready(&format!("http://{addr}/#token={one_time}"));
    std::thread::scope(|scope| {
        for rq in server.incoming_requests() {
            let s = &s;
            scope.spawn(move || s.handle(scope, rq));
        }
    });
    Ok(())
}
