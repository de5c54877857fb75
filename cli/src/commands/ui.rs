//! `clawback ui`: the local web console. Parses the flags, opens the repository once (so a
//! password prompt happens here, not in the page), prints the one-time access link and serves
//! until stopped (`web`). Loopback only unless `--listen` names another address together with
//! `--insecure-listen`: the server speaks plain HTTP, so wider access belongs behind a TLS proxy.

use crate::context::{Ctx, Settings};
use crate::ui::usage;
use crate::web;
use anyhow::Result;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port to listen on (default: a free one)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
    /// Address to listen on (default 127.0.0.1); anything but loopback needs --insecure-listen
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<IpAddr>,
    /// Allow --listen on an address other than loopback, without TLS (put a TLS proxy in front)
    #[arg(long)]
    pub insecure_listen: bool,
    /// Show everything, change nothing: no backup or restore from the page
    #[arg(long)]
    pub read_only: bool,
    /// A folder restores from the page may write into (repeatable; default: restores/ in
    /// clawback's folder of the OpenClaw state dir)
    #[arg(long = "allow-target", value_name = "DIR")]
    pub allow_targets: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let ip = a.listen.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !ip.is_loopback() && !a.insecure_listen {
        return Err(usage(format!(
            "--listen {ip} is not loopback: the console speaks plain HTTP; add --insecure-listen to accept that \
             (and put a TLS proxy in front), or leave --listen out"
        )));
    }
    let mut allow_targets = Vec::new();
    for t in &a.allow_targets {
        let t = clawback_engine::repo::host::absolute_clean(t)?;
        allow_targets.push(t);
    }
    if allow_targets.is_empty() {
        allow_targets.push(crate::runs::clawback_dir().join("restores"));
    }
    // The page runs every command quietly: what it would print goes to the page instead.
    let web_ctx = Ctx::new(crate::GlobalArgs { quiet: true, json: false, ..ctx.g.clone() });
    // Open once now: a wrong password or a missing repository fails here, and a typed password
    // is kept for the page's requests.
    let s = Settings::load(&ctx.g)?;
    drop(web_ctx.open_with(&s)?);
    let opts = web::Options { listen: SocketAddr::new(ip, a.port), read_only: a.read_only, allow_targets };
    let json = ctx.g.json;
    web::serve(&web_ctx, opts, |link| {
        if json {
            // One line, so a program reading the link needs to read no further.
            println!("{}", serde_json::json!({ "url": link }));
        } else {
            println!("clawback web console: open {link}");
            println!("(the link works once; stop with Ctrl-C)");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })?;
    Ok(0)
}
