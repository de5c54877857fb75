//! A loopback TCP proxy the tests put between clawback and a server, to make the network misbehave:
//! latency per chunk, stalls (connections accepted, bytes held back), resets mid-transfer (RST, not
//! a clean close), and a bandwidth cap, each switchable while traffic flows; and, reading the HTTP
//! it carries, bodies damaged on the way to the server and checksum headers taken out of the
//! server's answers. Plain std threads, two per connection; everything stops when the `Proxy` is
//! dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to the bytes it carries now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// A pause before each chunk is passed on, in each direction.
    pub latency: Duration,
    /// Hold every byte (connections are still accepted) until this is switched off.
    pub stall: bool,
    /// At most this many bytes per second per direction of each connection.
    pub bandwidth: Option<u64>,
    /// The share of new connections that are reset after a random number of bytes below
    /// `reset_within`.
    pub reset_chance: f64,
    pub reset_within: u64,
    /// Flip one byte in the middle of request bodies of at least 64 KiB until this many were
    /// damaged in all ([`Proxy::damaged`]): a store that checks what it receives refuses them.
    pub damage_bodies: u64,
    /// Take `x-amz-checksum-*` headers out of the server's answers, as from a store that ignores
    /// the checksums it is sent.
    pub hide_checksums: bool,
}

struct Shared {
    faults: Mutex<Faults>,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
    rng: Mutex<u64>,
    /// Counters the tests read to show a fault was really met.
    pub accepted: AtomicU64,
    pub resets: AtomicU64,
    pub bytes: AtomicU64,
    /// Request bodies damaged so far, and checksum headers hidden.
    pub damaged: AtomicU64,
    pub hidden: AtomicU64,
    /// PUT requests that carried `Content-MD5`, and `x-amz-checksum-crc32c`.
    pub puts_md5: AtomicU64,
    pub puts_crc32c: AtomicU64,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// Aborts a connection with a TCP reset: SO_LINGER 0, then close.
fn reset(s: &TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a socket we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = s.shutdown(Shutdown::Both);
}

impl Shared {
    fn faults(&self) -> Faults {
        *self.faults.lock().unwrap()
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }
}

/// A SeaweedFS server with a proxy in front of it (`seed` as for [`Proxy::start`]), and the
/// endpoints through the proxy and straight to the server.
pub fn seaweed_behind_proxy(seed: u64) -> (crate::seaweed::Seaweed, Proxy, String, String) {
    let srv = crate::seaweed::Seaweed::start();
    let proxy = Proxy::start(srv.endpoint.trim_start_matches("http://").parse().unwrap(), seed);
    let (via, direct) = (proxy.endpoint(), srv.endpoint.clone());
    (srv, proxy, via, direct)
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`; `seed` makes
    /// the choice of which connections to reset repeatable.
    pub fn start(upstream: SocketAddr, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            faults: Mutex::new(Faults::default()),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            rng: Mutex::new(seed | 1),
            accepted: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            hidden: AtomicU64::new(0),
            puts_md5: AtomicU64::new(0),
            puts_crc32c: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let acceptor = std::thread::spawn(move || {
            for client in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    reset(&client);
                    continue;
                };
                sh.accepted.fetch_add(1, Ordering::Relaxed);
                let f = sh.faults();
                let reset_at = (f.reset_chance > 0.0
                    && (sh.next_random() % 1_000_000) as f64 / 1_000_000.0 < f.reset_chance)
                    .then(|| sh.next_random() % f.reset_within.max(1));
                {
                    let mut c = sh.conns.lock().unwrap();
                    c.retain(|s| s.peer_addr().is_ok());
                    c.push(client.try_clone().unwrap());
                    c.push(server.try_clone().unwrap());
                }
                let carried = Arc::new(AtomicU64::new(0));
                let (requests, answers) = Tap::pair();
                let pairs =
                    [(client.try_clone().unwrap(), server.try_clone().unwrap(), requests), (server, client, answers)];
                for (from, to, tap) in pairs {
                    let (sh, carried) = (sh.clone(), carried.clone());
                    std::thread::spawn(move || pump(from, to, &sh, &carried, reset_at, tap));
                }
            }
        });
        Proxy { addr, shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give clawback instead of the server's.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, f: Faults) {
        *self.shared.faults.lock().unwrap() = f;
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Resets every connection open now.
    pub fn reset_all(&self) {
        for s in self.shared.conns.lock().unwrap().drain(..) {
            reset(&s);
        }
        self.shared.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    pub fn damaged(&self) -> u64 {
        self.shared.damaged.load(Ordering::Relaxed)
    }

    pub fn hidden(&self) -> u64 {
        self.shared.hidden.load(Ordering::Relaxed)
    }

    /// PUT requests so far that carried `Content-MD5`, and `x-amz-checksum-crc32c`.
    pub fn puts_with_checksums(&self) -> (u64, u64) {
        (self.shared.puts_md5.load(Ordering::Relaxed), self.shared.puts_crc32c.load(Ordering::Relaxed))
    }
}

/// Follows the HTTP/1.1 messages of one direction (a header block, then a body of
/// `Content-Length` bytes) to change them as the faults say.
struct Tap {
    requests: bool,
    /// Per request sent and not yet answered: whether its answer has no body (HEAD).
    bodiless: Arc<Mutex<std::collections::VecDeque<bool>>>,
    /// The header block read so far, while in one.
    head: Vec<u8>,
    /// Body bytes still to come, and the offset (counted down) of the byte to flip in them.
    body_left: u64,
    flip_at: Option<u64>,
}

impl Tap {
    /// The taps of a connection's requests and of its answers.
    fn pair() -> (Tap, Tap) {
        let bodiless = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let tap =
            |requests| Tap { requests, bodiless: bodiless.clone(), head: Vec::new(), body_left: 0, flip_at: None };
        (tap(true), tap(false))
    }

    /// `input` as it is passed on.
    fn pass(&mut self, mut input: &[u8], sh: &Shared) -> Vec<u8> {
        let f = sh.faults();
        let mut out = Vec::with_capacity(input.len());
        while !input.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left.min(input.len() as u64)) as usize;
                let at = out.len();
                out.extend_from_slice(&input[..n]);
                if let Some(k) = self.flip_at.filter(|k| *k < n as u64) {
                    out[at + k as usize] ^= 0x5a;
                    self.flip_at = None;
                } else if let Some(k) = &mut self.flip_at {
                    *k -= n as u64;
                }
                self.body_left -= n as u64;
                input = &input[n..];
                continue;
            }
            // In a header block: up to its blank line.
            self.head.push(input[0]);
            input = &input[1..];
            if !self.head.ends_with(b"\r\n\r\n") {
                continue;
            }
            let raw = std::mem::take(&mut self.head);
            let head = String::from_utf8_lossy(&raw).into_owned();
            let len = head
                .lines()
                .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            self.body_left = len;
            if self.requests {
                self.bodiless.lock().unwrap().push_back(head.starts_with("HEAD "));
            } else if head.starts_with("HTTP/1.1 1") {
                self.body_left = 0; // an interim answer ("100 Continue"): the final one follows
            } else if head.starts_with("HTTP/") && self.bodiless.lock().unwrap().pop_front() == Some(true) {
                self.body_left = 0;
            }
            let mut lines: Vec<&str> = head.split("\r\n").collect();
            let before = lines.len();
            if !self.requests && f.hide_checksums {
                lines.retain(|l| !l.to_ascii_lowercase().starts_with("x-amz-checksum-"));
                sh.hidden.fetch_add((before - lines.len()) as u64, Ordering::Relaxed);
            }
            if self.requests && head.starts_with("PUT ") {
                let has = |name: &str| lines.iter().any(|l| l.to_ascii_lowercase().starts_with(name));
                if has("content-md5:") {
                    sh.puts_md5.fetch_add(1, Ordering::Relaxed);
                }
                if has("x-amz-checksum-crc32c:") {
                    sh.puts_crc32c.fetch_add(1, Ordering::Relaxed);
                }
            }
            if self.requests && head.starts_with("PUT ") && len >= 64 * 1024 {
                let quota = f.damage_bodies;
                if sh
                    .damaged
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| (d < quota).then_some(d + 1))
                    .is_ok()
                {
                    self.flip_at = Some(len / 2);
                }
            }
            if lines.len() == before {
                out.extend_from_slice(&raw);
            } else {
                out.extend_from_slice(lines.join("\r\n").as_bytes());
            }
        }
        out
    }
}

/// Copies `from` to `to` under the faults in force, until either side closes or the proxy stops.
fn pump(mut from: TcpStream, mut to: TcpStream, sh: &Shared, carried: &AtomicU64, reset_at: Option<u64>, mut tap: Tap) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let f = sh.faults();
        // A small read under a bandwidth cap, so the pace is even rather than bursts and pauses.
        let want = f.bandwidth.map_or(buf.len(), |b| ((b / 20).max(1) as usize).min(buf.len()));
        let n = match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Stalled: the bytes are held (the connection stays open) until the stall is lifted.
        while sh.faults().stall && !sh.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if sh.stop.load(Ordering::SeqCst) {
            break;
        }
        if !f.latency.is_zero() {
            std::thread::sleep(f.latency);
        }
        let total = carried.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if reset_at.is_some_and(|at| total > at) {
            sh.resets.fetch_add(1, Ordering::Relaxed);
            reset(&from);
            reset(&to);
            return;
        }
        if to.write_all(&tap.pass(&buf[..n], sh)).is_err() {
            break;
        }
        sh.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(b) = f.bandwidth {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / b.max(1) as f64));
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in self.shared.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the acceptor so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}
