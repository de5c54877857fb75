//! A SeaweedFS cluster on loopback, as a fleet runs it rather than `weed mini`: one master, three
//! volume servers in one rack, a filer and the S3 gateway, each its own process on free ports, with
//! replication `001` (every file on two volume servers of the rack). A volume server can be killed
//! (SIGKILL) and started again; everything is stopped when the `SeaweedCluster` is dropped.

#![allow(dead_code)]

use crate::seaweed::{free_ports, weed_binary, ACCESS_KEY, SECRET_KEY};
use clawback_engine::backend::s3::{S3Backend, S3Options};
use clawback_engine::backend::{Backend, ObjectName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const VOLUMES: usize = 3;

pub struct SeaweedCluster {
    dir: tempfile::TempDir,
    /// Ports: master http, grpc; volume i http, grpc at 2 + 2i; filer http, grpc; s3 http, grpc.
    ports: Vec<u16>,
    master: Option<Child>,
    volumes: Vec<Option<Child>>,
    filer: Option<Child>,
    s3: Option<Child>,
    pub endpoint: String,
}

impl SeaweedCluster {
    /// Starts every server and waits until the master knows all volume servers and a replicated
    /// object can be written through the S3 gateway.
    pub fn start() -> SeaweedCluster {
        let dir = tempfile::Builder::new().prefix("clawback-cluster-").tempdir().expect("temp dir");
        let identities = serde_json::json!({
            "identities": [{
                "name": "clawback-tests",
                "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            }]
        });
        std::fs::write(dir.path().join("s3.json"), serde_json::to_vec_pretty(&identities).unwrap()).unwrap();
        let ports = free_ports(2 + 2 * VOLUMES + 4);
        let s3_port = ports[2 + 2 * VOLUMES + 2];
        let mut c = SeaweedCluster {
            dir,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            ports,
            master: None,
            volumes: (0..VOLUMES).map(|_| None).collect(),
            filer: None,
            s3: None,
        };
        let d = c.dir.path().to_path_buf();
        let (mp, mg) = (c.ports[0], c.ports[1]);
        std::fs::create_dir_all(d.join("master")).unwrap();
        c.master = Some(c.spawn(
            "master",
            &[
                "master".into(),
                format!("-port={mp}"),
                format!("-port.grpc={mg}"),
                format!("-mdir={}", d.join("master").display()),
                "-defaultReplication=001".into(),
                // Small volumes, so a backup spreads over several of them and so over every server.
                "-volumeSizeLimitMB=16".into(),
                "-telemetry=false".into(),
            ],
        ));
        for i in 0..VOLUMES {
            c.start_volume(i);
        }
        let (fp, fg) = (c.ports[2 + 2 * VOLUMES], c.ports[3 + 2 * VOLUMES]);
        std::fs::create_dir_all(d.join("filer")).unwrap();
        c.filer = Some(c.spawn(
            "filer",
            &[
                "filer".into(),
                format!("-port={fp}"),
                format!("-port.grpc={fg}"),
                format!("-master=127.0.0.1:{mp}.{mg}"),
                format!("-defaultStoreDir={}", d.join("filer").display()),
                "-defaultReplicaPlacement=001".into(),
            ],
        ));
        let sg = c.ports[5 + 2 * VOLUMES];
        c.s3 = Some(c.spawn(
            "s3",
            &[
                "s3".into(),
                format!("-port={s3_port}"),
                format!("-port.grpc={sg}"),
                "-port.iceberg=0".into(),
                "-port.lance=0".into(),
                format!("-filer=127.0.0.1:{fp}.{fg}"),
                format!("-config={}", d.join("s3.json").display()),
            ],
        ));
        c.wait_ready(VOLUMES);
        c
    }

    /// Starts `weed ARGS` on loopback, its output in `<name>.log`; it dies with the test's thread.
    fn spawn(&self, name: &str, args: &[String]) -> Child {
        let d = self.dir.path();
        let mut c = Command::new(weed_binary());
        c.arg(&args[0])
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join(format!("{name}.log"))).unwrap())
            .stderr(std::fs::File::create(d.join(format!("{name}.err"))).unwrap());
        // SAFETY: prctl is async-signal-safe; the server is killed when the starting thread ends.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        c.spawn().unwrap_or_else(|e| panic!("cannot start weed {name}: {e}"))
    }

    fn start_volume(&mut self, i: usize) {
        let d = self.dir.path().join(format!("volume{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let (vp, vg) = (self.ports[2 + 2 * i], self.ports[3 + 2 * i]);
        let args = [
            "volume".into(),
            format!("-port={vp}"),
            format!("-port.grpc={vg}"),
            format!("-dir={}", d.display()),
            format!("-master=127.0.0.1:{}.{}", self.ports[0], self.ports[1]),
            "-dataCenter=dc1".into(),
            "-rack=rack1".into(),
            "-max=40".into(),
            "-minFreeSpace=64MiB".into(),
        ];
        self.volumes[i] = Some(self.spawn(&format!("volume{i}"), &args));
    }

    /// Kills volume server `i` as a crash would (SIGKILL), keeping its data.
    pub fn kill_volume(&mut self, i: usize) {
        if let Some(mut c) = self.volumes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts volume server `i` again on its ports and data, and waits until the master has it.
    pub fn restart_volume(&mut self, i: usize) {
        assert!(self.volumes[i].is_none(), "restart after kill");
        self.start_volume(i);
        self.wait_ready(VOLUMES);
    }

    /// The data nodes the master lists now.
    pub fn data_nodes(&self) -> usize {
        let body = http_get(&format!("127.0.0.1:{}", self.ports[0]), "/dir/status").unwrap_or_default();
        body.matches("\"Url\"").count()
    }

    /// Polls until the master lists `nodes` volume servers and a replicated object can be written
    /// and read back through the gateway; fails the test after 90 s with the logs.
    fn wait_ready(&mut self, nodes: usize) {
        let start = Instant::now();
        let mut o = self.options("ready-probe", "");
        o.create_bucket = true;
        let be = S3Backend::new(o).expect("S3 client");
        let mut last = String::new();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(90) {
            self.assert_running();
            if self.data_nodes() >= nodes {
                n += 1;
                let data = format!("probe {n} {:?}", Instant::now()).into_bytes();
                let name = ObjectName::of(&clawback_engine::format::id::PackId::of_bytes(&data));
                let r = be.create().and_then(|_| be.write(&name, &data)).and_then(|_| be.read(&name));
                match r {
                    Ok(d) if d == data => return,
                    Ok(_) => last = "probe read back different bytes".into(),
                    Err(e) => last = e.to_string(),
                }
            } else {
                last = format!("the master lists {} of {nodes} volume servers", self.data_nodes());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("the SeaweedFS cluster was not ready within 90 s ({last}):\n{}", self.log());
    }

    /// Fails the test if a server that should be running has exited.
    fn assert_running(&mut self) {
        let mut all: Vec<(&str, &mut Option<Child>)> =
            vec![("master", &mut self.master), ("filer", &mut self.filer), ("s3", &mut self.s3)];
        for v in self.volumes.iter_mut() {
            all.push(("volume", v));
        }
        let mut dead = Vec::new();
        for (name, c) in all {
            if let Some(Some(st)) = c.as_mut().map(|ch| ch.try_wait().unwrap()) {
                dead.push(format!("{name} exited ({st})"));
            }
        }
        assert!(dead.is_empty(), "{}:\n{}", dead.join(", "), self.log());
    }

    /// The last lines of every server's log.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["master", "volume0", "volume1", "volume2", "filer", "s3"] {
            let d = self.dir.path();
            let mut s = std::fs::read_to_string(d.join(format!("{name}.log"))).unwrap_or_default();
            s.push_str(&std::fs::read_to_string(d.join(format!("{name}.err"))).unwrap_or_default());
            let tail: Vec<&str> = s.lines().rev().take(8).collect();
            out.push_str(&format!("--- {name}\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
        }
        out
    }

    pub fn options(&self, bucket: &str, prefix: &str) -> S3Options {
        crate::seaweed::options_at(&self.endpoint, bucket, prefix)
    }

    /// The `--repo` URL of `bucket/prefix` on the cluster's S3 gateway.
    pub fn url(&self, bucket_and_prefix: &str) -> String {
        crate::seaweed::url_at(&self.endpoint, bucket_and_prefix)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A bare HTTP/1.0 GET (the master's status page), bounded to 5 s.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

impl Drop for SeaweedCluster {
    fn drop(&mut self) {
        let mut all: Vec<Child> = Vec::new();
        all.extend(self.s3.take());
        all.extend(self.filer.take());
        all.extend(self.volumes.iter_mut().filter_map(|v| v.take()));
        all.extend(self.master.take());
        for mut c in all {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
