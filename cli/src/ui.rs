//! Output: progress bars on a TTY (stderr), human tables, JSON on stdout, and error lines.

use clawback_engine::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Prints an error as one line and returns its exit code.
/// A reader that stops early (`clawback ls latest | head`) closes our stdout; `println!` then
/// panics with "Broken pipe". That is not a crash: exit quietly with 141 (128 + SIGPIPE, what a
/// shell reports for a program killed by it). Every other panic keeps the default report.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

pub fn report_error(e: &anyhow::Error) -> i32 {
    eprintln!("clawback: {}", error_line(e));
    exit_code(e)
}

/// The error and the causes it does not already say, as one line (what `main` prints, and what the
/// run log and `test` record).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg.replace('\n', " ")
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

/// The one progress display of every long command: a bar on stderr fed from the engine's
/// counters by a ticker thread; nothing when stderr is not a terminal or with `--quiet`. It shows
/// the operation's current step, bytes (or items, for steps that count no bytes), and, for
/// operations that upload, the bytes stored as well as read, so it is never full while packs are
/// still on their way.
pub struct Bar {
    bar: Option<ProgressBar>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the bar shows, chosen on each tick from the counters in use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Bytes,
    ReadAndUpload,
    Items,
    /// Items counted with no total known yet (a walk).
    Count,
}

/// One frame of the bar, computed from the counters.
struct View {
    shape: Shape,
    prefix: String,
    len: u64,
    pos: u64,
    msg: String,
}

impl View {
    fn of(p: &Progress, verb: &str) -> View {
        let phase = p.phase();
        let prefix = if phase.is_empty() { verb.to_string() } else { format!("{verb}: {phase}") };
        let total = p.bytes_total.load(Relaxed);
        let done = p.bytes_done.load(Relaxed);
        let files = p.files_done.load(Relaxed);
        let files_total = p.files_total.load(Relaxed);
        let known = p.total_known.load(Relaxed);
        let unit = p.unit();
        let files_text = if known { format!("{files}/{files_total} {unit}") } else { format!("{files} {unit}") };
        let queued = p.upload.queued.load(Relaxed);
        let uploaded = p.upload.done.load(Relaxed).min(queued);
        if queued > 0 {
            // Reading and uploading are both work left: the bar is full only when both are done.
            let msg = format!(
                "read {}/{}, uploaded {}/{}, {files_text}",
                human_bytes(done),
                human_bytes(total.max(done)),
                human_bytes(uploaded),
                human_bytes(queued)
            );
            return View {
                shape: Shape::ReadAndUpload,
                prefix,
                len: total.max(done) + queued,
                pos: done + uploaded,
                msg,
            };
        }
        if total == 0 && done == 0 {
            // Nothing counted in bytes (yet): items (trees, snapshots), with or without a total.
            let shape = if known { Shape::Items } else { Shape::Count };
            return View { shape, prefix, len: files_total.max(files), pos: files, msg: unit.to_string() };
        }
        View { shape: Shape::Bytes, prefix, len: total.max(done), pos: done, msg: files_text }
    }
}

impl Shape {
    fn style(self) -> ProgressStyle {
        let t = match self {
            Shape::Bytes => {
                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}"
            }
            Shape::ReadAndUpload => "{prefix} [{elapsed_precise}] {wide_bar} {percent}% ETA {eta} {msg}",
            Shape::Items => "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {msg}",
            Shape::Count => "{prefix} [{elapsed_precise}] {spinner} {human_pos} {msg}",
        };
        ProgressStyle::with_template(t).expect("progress template")
    }
}

impl Bar {
    /// Starts the display of `progress` for the operation `verb` ("check", "restore"...).
    pub fn start(quiet: bool, progress: Arc<Progress>, verb: &'static str) -> Bar {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return Bar { bar: None, stop, thread: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
        let mut shape = Shape::Count;
        bar.set_style(shape.style());
        bar.set_prefix(verb);
        // Drawn at once, so even a short run shows what it is doing.
        bar.tick();
        let (b, s) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                let v = View::of(&progress, verb);
                // Length before position and the layout last: a frame drawn in between never
                // shows a full bar for work that has only grown.
                b.set_length(v.len);
                b.set_position(v.pos);
                b.set_message(v.msg);
                b.set_prefix(v.prefix);
                if v.shape != shape {
                    shape = v.shape;
                    b.set_style(shape.style());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Bar { bar: Some(bar), stop, thread: Some(thread) }
    }

    /// Stops the ticker and clears the bar (dropping the `Bar` does the same).
    pub fn finish(self) {}
}

impl Drop for Bar {
    /// A command that fails half-way still clears its bar before its one error line.
    fn drop(&mut self) {
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

/// Where `schedule` says what it did: stdout, unless `--json` (then stdout carries the JSON
/// report only).
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// What was written and how to check it.
    pub fn say(self, msg: impl AsRef<str>) {
        if !self.json {
            println!("{}", msg.as_ref());
        }
    }
}
