//! Output: progress bars on a TTY (stderr), human tables, JSON on stdout, and error lines.

use clawback_engine::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Prints an error as one line and returns its exit code.
pub fn report_error(e: &anyhow::Error) -> i32 {
    let code = exit_code(e);
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    let msg = msg.replace('\n', " ");
    eprintln!("clawback: {msg}");
    code
}

pub fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(ee) = cause.downcast_ref::<clawback_engine::Error>() {
            return ee.exit_code();
        }
        if let Some(u) = cause.downcast_ref::<UsageError>() {
            let _ = u;
            return 2;
        }
    }
    1
}

/// A usage error raised by the CLI itself (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

pub fn human_bytes(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", U[i])
    }
}

/// A progress bar fed from the engine's counters by a ticker thread; nothing when not on a TTY.
pub struct Bar {
    bar: Option<ProgressBar>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    pub fn start(quiet: bool, progress: Arc<Progress>, verb: &'static str) -> Bar {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return Bar { bar: None, stop, thread: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap(),
        );
        bar.set_prefix(verb);
        let (b, s) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                let total = progress.bytes_total.load(Relaxed);
                let done = progress.bytes_done.load(Relaxed);
                b.set_length(total.max(done));
                b.set_position(done);
                let files = progress.files_done.load(Relaxed);
                let ft = progress.files_total.load(Relaxed);
                b.set_message(if progress.total_known.load(Relaxed) {
                    format!("{files}/{ft} files")
                } else {
                    format!("{files} files")
                });
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Bar { bar: Some(bar), stop, thread: Some(thread) }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// When standard output is a regular file (`> archive.tar`), makes it private (0600): what is
/// dumped or exported there may hold the agent's credentials.
pub fn private_stdout() {
    use std::os::fd::AsRawFd;
    let fd = std::io::stdout().as_raw_fd();
    // SAFETY: fstat and fchmod on our own standard output descriptor, with a zeroed stat buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFREG {
            libc::fchmod(fd, 0o600);
        }
    }
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
}

/// Parses a `--time` value (RFC 3339), as `backup` and `import` take it.
pub fn parse_time(t: Option<&str>) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    t.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|e| usage(format!("--time {t:?}: {e} (expected RFC 3339, e.g. 2026-01-31T12:00:00Z)")))
    })
    .transpose()
}
