//! A loopback TCP proxy the tests put between clawback and a server, to make the network misbehave:
//! latency per chunk, stalls (connections accepted, bytes held back), resets mid-transfer (RST, not
//! a clean close), and a bandwidth cap, each switchable while traffic flows. Plain std threads, two
//! per connection; everything stops when the `Proxy` is dropped.

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
                for (from, to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    let (sh, carried) = (sh.clone(), carried.clone());
                    std::thread::spawn(move || pump(from, to, &sh, &carried, reset_at));
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
}

/// Copies `from` to `to` under the faults in force, until either side closes or the proxy stops.
fn pump(mut from: TcpStream, mut to: TcpStream, sh: &Shared, carried: &AtomicU64, reset_at: Option<u64>) {
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
        if to.write_all(&buf[..n]).is_err() {
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
