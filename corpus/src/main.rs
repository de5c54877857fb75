//! `clawback-corpus`: generate a realistic OpenClaw home, or simulate activity in one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clawback_corpus::{generate, parse_size, tick, Era, Options};

const USAGE: &str = "usage:
  clawback-corpus generate --out DIR [--size 500M] [--files N] [--seed S] [--era file|sqlite|both]
                           [--small-files] [--agents N]
  clawback-corpus tick --home DIR [--seed S]

Sizes are decimal (500M = 500,000,000 bytes) unless written as KiB/MiB/GiB.";

enum Cmd {
    Generate(Options),
    Tick { home: PathBuf, seed: u64 },
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let (cmd, rest) = args.split_first().ok_or("missing command")?;
    let mut out: Option<PathBuf> = None;
    let mut size: Option<u64> = None;
    let mut files = None;
    let mut seed = 0u64;
    let mut era = Era::Both;
    let mut small = false;
    let mut agents = 2usize;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or(format!("{name} needs a value"));
        match name {
            "--out" | "--home" => out = Some(PathBuf::from(value()?)),
            "--size" => size = Some(parse_size(&value()?).map_err(|e| e.to_string())?),
            "--files" => files = Some(value()?.parse().map_err(|_| "--files needs a number".to_string())?),
            "--seed" => seed = value()?.parse().map_err(|_| "--seed needs a number".to_string())?,
            "--era" => era = value()?.parse().map_err(|e: anyhow::Error| e.to_string())?,
            "--agents" => agents = value()?.parse().map_err(|_| "--agents needs a number".to_string())?,
            "--small-files" => small = true,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    match cmd.as_str() {
        "generate" => {
            let root = out.ok_or("generate needs --out DIR")?;
            let total = size.unwrap_or(if small { 420_000_000 } else { 500_000_000 });
            Ok(Cmd::Generate(Options { root, total_bytes: total, files, seed, era, small_files: small, agents }))
        }
        "tick" => Ok(Cmd::Tick { home: out.ok_or("tick needs --home DIR")?, seed }),
        "-h" | "--help" | "help" => Err(String::new()),
        c => Err(format!("unknown command {c:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse(&args) {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("clawback-corpus: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = match cmd {
        Cmd::Generate(opts) => generate(&opts).map(|s| {
            for w in &s.warnings {
                eprintln!("clawback-corpus: warning: {w}");
            }
            let secs = started.elapsed().as_secs_f64();
            format!(
                "generated {} files, {:.1} MB in {:.2} s ({:.0} MB/s) at {}",
                s.files,
                s.bytes as f64 / 1e6,
                secs,
                s.bytes as f64 / 1e6 / secs.max(1e-9),
                opts.root.display()
            )
        }),
        Cmd::Tick { home, seed } => tick(&home, seed).map(|t| {
            format!(
                "tick: {} files changed, {} added, {:.1} MB added in {:.2} s",
                t.files_changed,
                t.files_added,
                t.bytes_added as f64 / 1e6,
                started.elapsed().as_secs_f64()
            )
        }),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clawback-corpus: {e:#}");
            ExitCode::from(1)
        }
    }
}
