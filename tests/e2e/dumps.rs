//! `backup --stdin-from-command CMD --stdin-filename NAME`: a command's output stored as a file of
//! the snapshot, deduplicated like any file; a failing command fails the backup and writes no
//! snapshot; real `pg_dump` and `redis-cli --rdb -` against throwaway servers when the Debian
//! packages are installed (skipped with a note otherwise).

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Hex text of random bytes (text, so `dump` output compares exactly as a String).
fn hex_text(seed: u64, len: usize) -> Vec<u8> {
    let hex: String = random_bytes(seed, len / 2).iter().map(|b| format!("{b:02x}")).collect();
    hex.into_bytes()
}

fn stdin_backup(sb: &Sandbox, cmd: &str, name: &str, paths: &[&Path]) -> Run {
    sb.cb().args(["backup", "--json", "--stdin-from-command", cmd, "--stdin-filename", name]).args(paths).run()
}

#[test]
fn stdin_from_command_round_trips_and_dedups() {
    let sb = Sandbox::with_repo();
    let data = hex_text(7, 3_000_000);
    let src = sb.path("source.txt");
    write(&src, &data);
    let cmd = format!("head -c 3000000 {}", src.display());

    let first = stdin_backup(&sb, &cmd, "/dumps/data.txt", &[]).ok().json();
    let id = first["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(u(&first, "files_new"), 1, "{first}");
    assert_eq!(u(&first, "bytes_read"), 3_000_000);
    assert!(u(&first, "bytes_added") >= 3_000_000, "{first}");

    // dump gives the bytes back; restore writes them as a 0600 file.
    let dumped = sb.cb().args(["dump", &id, "/dumps/data.txt"]).run().ok();
    assert!(dumped.stdout.as_bytes() == data.as_slice(), "dump differs");
    let target = sb.path("restore");
    sb.restore(&id, &target);
    let restored_file = target.join("dumps/data.txt");
    assert_eq!(fs::read(&restored_file).unwrap(), data);
    assert_eq!(fs::metadata(&restored_file).unwrap().permissions().mode() & 0o777, 0o600);

    // The same output again: nothing new but the trees.
    let second = stdin_backup(&sb, &cmd, "/dumps/data.txt", &[]).ok().json();
    assert_eq!(u(&second, "files_unmodified"), 1, "{second}");
    assert_eq!(second["parent_id"].as_str(), Some(id.as_str()));
    assert!(u(&second, "bytes_added") < 4096, "second run stored new data: {second}");

    let snaps = sb.snapshots();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["paths"], serde_json::json!(["/dumps/data.txt"]));
}

#[test]
fn stdin_from_command_with_paths_in_one_snapshot() {
    let sb = Sandbox::with_repo();
    let dir = sb.path("files");
    write(&dir.join("a.txt"), b"alpha\n");
    write(&dir.join("sub/b.txt"), b"beta\n");
    // The stream lands beside the backed-up folder, inside a folder the walk made up.
    let name = dir.parent().unwrap().join("db.sql");
    let v = stdin_backup(&sb, "printf 'CREATE TABLE t (x int);\\n'", name.to_str().unwrap(), &[&dir]).ok().json();
    let id = v["snapshot_id"].as_str().unwrap().to_string();
    let target = sb.path("restore");
    sb.restore(&id, &target);
    assert_eq!(fs::read(restored(&target, &name)).unwrap(), b"CREATE TABLE t (x int);\n");
    assert_same_tree(&dir, &restored(&target, &dir));

    // A name inside a backed-up path is refused (usage error), nothing written.
    let inside = dir.join("x.sql");
    let r = stdin_backup(&sb, "echo x", inside.to_str().unwrap(), &[&dir]).code(2);
    assert!(r.one_error_line().contains("overlaps"), "{}", r.stderr);
    assert_eq!(sb.snapshots().len(), 1);
}

#[test]
fn failing_or_killed_command_fails_the_backup_and_writes_no_snapshot() {
    let sb = Sandbox::with_repo();
    let r = stdin_backup(
        &sb,
        "echo partial output; echo 'pg_dump: error: database \"gone\" does not exist' >&2; exit 7",
        "/dumps/db.sql",
        &[],
    )
    .code(1);
    let line = r.one_error_line();
    assert!(line.contains("exited with status 7"), "{line}");
    assert!(line.contains("database \"gone\" does not exist"), "{line}");
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    let r = stdin_backup(&sb, "head -c 100000 /dev/zero; kill -9 $$", "/dumps/db.sql", &[]).code(1);
    assert!(r.one_error_line().contains("killed by signal 9"), "{}", r.stderr);

    let r = sb.cb().args(["backup", "--stdin-from-command", "false"]).run().code(2);
    assert!(r.stderr.contains("--stdin-filename"), "{}", r.stderr);
    assert!(sb.snapshots().is_empty(), "a failed dump must not leave a snapshot");
}

// ---- real database servers ----

fn pg_bin() -> Option<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
    v.sort();
    v.into_iter()
        .rev()
        .find(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file() && b.join("pg_dump").is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A throwaway PostgreSQL cluster on a unix socket in a temporary folder (as the `postgres` user
/// when running as root, since initdb refuses root).
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(prog));
            c
        } else {
            Command::new(self.bin.join(prog))
        };
        c.current_dir(&self.dir);
        c
    }

    fn start(bin: PathBuf, dir: PathBuf) -> Postgres {
        let as_postgres = is_root();
        if as_postgres {
            // The folder and its parents must be reachable by the postgres user.
            let out = Command::new("id").args(["-u", "postgres"]).output().unwrap();
            let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a postgres user");
            fs::create_dir_all(&dir).unwrap();
            let mut p = dir.clone();
            while let Some(parent) = p.parent() {
                if parent == Path::new("/") || parent == Path::new("/tmp") {
                    break;
                }
                let m = fs::metadata(parent).unwrap().permissions().mode();
                fs::set_permissions(parent, fs::Permissions::from_mode(m | 0o711)).unwrap();
                p = parent.to_path_buf();
            }
            std::os::unix::fs::chown(&dir, Some(uid), None).unwrap();
        } else {
            fs::create_dir_all(&dir).unwrap();
        }
        let pg = Postgres { bin, port: free_port(), dir, as_postgres };
        let data = pg.dir.join("data");
        let st = pg
            .cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        let opts = format!("-k {} -c listen_addresses='' -p {}", pg.dir.display(), pg.port);
        let st = pg
            .cmd("pg_ctl")
            .args(["-w", "-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(pg.dir.join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start failed: {}", fs::read_to_string(pg.dir.join("log")).unwrap_or_default());
        pg
    }

    /// Connection flags for psql/pg_dump.
    fn conn(&self) -> String {
        format!("-h {} -p {} -U postgres", self.dir.display(), self.port)
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", self.dir.to_str().unwrap(), "-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn pg_dump_of_a_real_database_restores() {
    let Some(bin) = pg_bin() else {
        panic!("PostgreSQL server binaries are not under /usr/lib/postgresql: run the tests with tests/run, which installs postgresql-15");
    };
    let sb = Sandbox::with_repo();
    let pg = Postgres::start(bin.clone(), sb.path("pg"));
    pg.psql("postgres", "CREATE DATABASE app");
    pg.psql(
        "app",
        "CREATE TABLE notes (id int primary key, body text); \
         INSERT INTO notes SELECT g, 'note ' || g || ' ' || md5(g::text) FROM generate_series(1, 20000) g",
    );
    let pg_dump = bin.join("pg_dump");
    let cmd = format!("{} {} --no-owner app", pg_dump.display(), pg.conn());
    let v = stdin_backup(&sb, &cmd, "/dumps/app.sql", &[]).ok().json();
    let id = v["snapshot_id"].as_str().unwrap().to_string();
    assert!(u(&v, "bytes_read") > 500_000, "{v}");

    let target = sb.path("restore");
    sb.restore(&id, &target);
    let sql = target.join("dumps/app.sql");
    let text = fs::read_to_string(&sql).unwrap();
    assert!(text.contains("CREATE TABLE public.notes"), "not a pg_dump: {}", &text[..text.len().min(400)]);

    // The restored dump loads into a fresh database with the same rows.
    pg.psql("postgres", "CREATE DATABASE app2");
    let mut perm = fs::metadata(&sql).unwrap().permissions();
    perm.set_mode(0o644);
    fs::set_permissions(&sql, perm).unwrap();
    let out = Command::new(bin.join("psql"))
        .args(["-h", pg.dir.to_str().unwrap(), "-p", &pg.port.to_string(), "-U", "postgres", "-d", "app2"])
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&sql)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "loading the dump: {}", String::from_utf8_lossy(&out.stderr));
    let q = "SELECT count(*) || ' ' || md5(string_agg(body, ',' ORDER BY id)) FROM notes";
    assert_eq!(pg.psql("app2", q), pg.psql("app", q));

    // A dump of a database that does not exist fails the backup with pg_dump's own words.
    let bad = format!("{} {} nosuchdb", pg_dump.display(), pg.conn());
    let r = stdin_backup(&sb, &bad, "/dumps/bad.sql", &[]).code(1);
    let line = r.one_error_line();
    assert!(line.contains("exited with status 1") && line.contains("nosuchdb"), "{line}");
    assert_eq!(sb.snapshots().len(), 1);
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path, dbfile: Option<&str>) -> Redis {
        fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut c = Command::new("redis-server");
        c.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(f) = dbfile {
            c.args(["--dbfilename", f]);
        }
        let child = c.spawn().unwrap();
        let r = Redis { child, port };
        let start = Instant::now();
        while r.cli(&["PING"]) != "PONG" {
            assert!(start.elapsed() < Duration::from_secs(20), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_rdb_dump_restores() {
    assert!(
        Command::new("redis-server").arg("--version").output().is_ok(),
        "redis-server is not installed: run the tests with tests/run, which installs it"
    );
    let sb = Sandbox::with_repo();
    let redis = Redis::start(&sb.path("redis1"), None);
    assert_eq!(redis.cli(&["SET", "agent:memory", "remember the milk"]), "OK");
    for i in 0..500 {
        redis.cli(&["RPUSH", "log", &format!("entry {i}")]);
    }
    let cmd = format!("redis-cli -p {} --rdb -", redis.port);
    let v = stdin_backup(&sb, &cmd, "/dumps/redis.rdb", &[]).ok().json();
    let id = v["snapshot_id"].as_str().unwrap().to_string();
    let target = sb.path("restore");
    sb.restore(&id, &target);
    let rdb = fs::read(target.join("dumps/redis.rdb")).unwrap();
    assert!(rdb.starts_with(b"REDIS"), "not an RDB file");

    // A second server started on the restored file has the data.
    let dir2 = sb.path("redis2");
    fs::create_dir_all(&dir2).unwrap();
    fs::write(dir2.join("restored.rdb"), &rdb).unwrap();
    let redis2 = Redis::start(&dir2, Some("restored.rdb"));
    assert_eq!(redis2.cli(&["GET", "agent:memory"]), "remember the milk");
    assert_eq!(redis2.cli(&["LLEN", "log"]), "500");
}
