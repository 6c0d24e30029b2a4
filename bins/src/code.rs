//! Short-code transfers: `send PATH... --code` and `receive CODE`, no key file at all.
//!
//! The sender makes a code `N-word-word-word-word` (N routes; four words of the EFF short word
//! list, 4 × log2(1295) ≈ 41.4 bits, are the password), listens (or waits at a relay) and
//! serves exactly its files to one receiver. The receiver connects, both run SPAKE2 over the
//! code inside the handshake (mode CODE), the receiver lists what is offered, shows it, asks,
//! and only then fetches it. A wrong code fails both sides and burns the code: the sender
//! exits. Over TCP by default; `--udp` (or `FERRY_TRANSPORT=udp`) on both sides runs the same
//! over the datagram transport (module `udp`).

mod store;
mod udp;

use std::io::{BufRead as _, Write as _};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use clap::Args;
use ferry_app::agent::{Agent, Job, Report};
use ferry_app::host::RunError;
use proto::{Code, HandshakeError, ListEntry, Psk, SessionError};

use crate::cli::{Cli, Remote, SendArgs, TransportArgs};
use crate::client::client_config;
use crate::collect::collect_all;
use crate::observer::{CliObserver, RunState, Shared, Side, lock};
use crate::output::{Output, escape_line, format_bytes};
use crate::progress::Progress;
use crate::run::Runtime;
use crate::{DEFAULT_LISTEN, DEFAULT_LISTEN_V4, DEFAULT_PORT, DEFAULT_RETRIES};
use store::{Deferred, Offered};

/// The word list: the EFF short word list (public), less `yo-yo` (a dash separates words, and
/// `yoyo` is in the list already): 1 295 words.
const WORD_LIST: &str = include_str!("code/eff_short_wordlist.txt");
/// Words in a generated code.
const CODE_WORDS: usize = 4;
/// Generated nameplates are 1..=NAMEPLATES.
const NAMEPLATES: u32 = 999;
/// Names shown before asking (the count and total size are always shown).
const SHOWN_NAMES: usize = 20;

/// `HOST`, `HOST:PORT` or `[IPv6]:PORT`, default port 6868.
fn parse_remote(s: &str) -> Result<Remote, String> {
    crate::cli::parse_host(s, DEFAULT_PORT).map(|(host, port)| Remote { host, port })
}

/// `send --code` flags (flattened into `send`).
#[derive(Debug, Clone, Args)]
pub struct SendCodeArgs {
    /// No key and no server: make a short code, print it with the command for the other side,
    /// and wait for that one receiver.
    #[arg(long)]
    pub code: bool,

    /// With --code: where to wait for the receiver (default `[::]:6868`, else `0.0.0.0:6868`;
    /// port 0 picks a free port).
    #[arg(long, value_name = "ADDR", requires = "code", conflicts_with = "relay")]
    pub listen: Option<SocketAddr>,

    /// With --code: meet the receiver at this relay (`ferry relay`) instead of listening.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote, requires = "code")]
    pub relay: Option<Remote>,
}

/// `receive [CODE] (--from HOST[:PORT] | --relay HOST[:PORT]) [--out DIR] [--yes]`.
#[derive(Debug, Clone, Args)]
pub struct ReceiveArgs {
    /// The code the sender printed. Better left out: it is then read from FERRY_CODE or asked
    /// for on the terminal (a command line is visible to other local users).
    #[arg(value_name = "CODE")]
    pub code: Option<String>,

    /// The sender: `HOST`, `HOST:PORT` or `[IPv6]:PORT` (default port 6868).
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote,
          required_unless_present = "relay", conflicts_with = "relay")]
    pub from: Option<Remote>,

    /// Meet the sender at this relay (`ferry relay`).
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote)]
    pub relay: Option<Remote>,

    /// Directory to write into (created when the first file arrives).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    /// Accept what is offered without asking (for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Replace local files whose content differs.
    #[arg(long)]
    pub overwrite: bool,

    /// Connection attempts after the first, with backoff.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// TCP or UDP (`--udp`, `--cc`): the sender's transport.
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// The word list as words.
fn words() -> Vec<&'static str> {
    WORD_LIST.lines().filter(|l| !l.is_empty()).collect()
}

/// A uniform random number below `n` (rejection sampling over 32 random bits).
fn below(n: u32) -> anyhow::Result<u32> {
    let zone = u32::MAX - u32::MAX % n;
    loop {
        let x = getrandom::u32().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        if x < zone {
            return Ok(x % n);
        }
    }
}

/// A fresh random code.
fn generate() -> anyhow::Result<Code> {
    let list = words();
    let mut picked = Vec::with_capacity(CODE_WORDS);
    for _ in 0..CODE_WORDS {
        picked.push(list[below(list.len() as u32)? as usize]);
    }
    Ok(Code::new(below(NAMEPLATES)? + 1, &picked)?)
}

/// This program's name, for the command printed for the other side.
fn program() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "ferry".into())
}

/// How the receiver reaches `addr`: the address itself, or this host's name when bound to all
/// addresses; the port only when it is not the default.
fn reach(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "THIS-HOST".into())
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    if addr.port() == DEFAULT_PORT {
        host
    } else if addr.ip().is_unspecified() && host.contains(':') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    }
}

/// The first stdout line(s) of `send --code`: the code and the other side's command (JSON:
/// one object with `code`, `listen`, `transport` and `command`), flushed at once for scripts.
fn announce(out: &Output, code: &Code, listen: &str, command: &str, udp: bool) {
    let mut stdout = std::io::stdout().lock();
    if out.is_json() {
        let v = serde_json::json!({
            "event": "code",
            "code": code.to_string(),
            "listen": listen,
            "transport": if udp { "udp" } else { "tcp" },
            "command": command,
        });
        let _ = writeln!(stdout, "{v}");
    } else {
        let _ = writeln!(stdout, "code: {code}");
        let _ = writeln!(stdout, "on the other side run: {command}");
    }
    let _ = stdout.flush();
}

/// Failures before the PAKE (a port scanner, another protocol): not a guess, keep waiting.
fn not_a_receiver(e: &RunError) -> bool {
    matches!(
        e,
        RunError::Session(SessionError::Handshake(
            HandshakeError::NotFerry
                | HandshakeError::UnsupportedVersion(_)
                | HandshakeError::UnsupportedMode(_)
                | HandshakeError::UnsupportedSuite(_)
                | HandshakeError::WrongTransport(_)
        ))
    )
}

/// `send PATH... --code`. Returns the number of failed files.
pub(crate) fn send(
    rt: &dyn Runtime,
    cli: &Cli,
    args: &SendArgs,
    out: &Output,
) -> anyhow::Result<usize> {
    // Names and sizes only (metadata): nothing is read or hashed before a receiver joined.
    let mut notice = |m: String| out.info(m);
    let filter = crate::exclude::Filter {
        patterns: args.options.exclude.clone(),
        gitignore: !args.options.no_gitignore,
    };
    let found = collect_all(
        &args.paths,
        args.as_name.as_deref(),
        args.overwrite,
        &filter,
        Some(&mut notice),
    )?;
    for (path, why) in &found.missing {
        out.file_failed(&path.display().to_string(), "not_found", why);
    }
    let files = found.files;
    if files.is_empty() {
        bail!("nothing to send: no regular files under the given paths");
    }
    let bytes = files.iter().filter_map(|f| f.meta.size).sum();
    let state = RunState::shared(Progress::new(
        out,
        Some((files.len(), bytes)),
        cli.verbose > 0,
    ));
    let offered = Arc::new(Offered::new(files));
    let mut code = generate()?;
    let config = client_config(args.compress.into());
    let peer = |addr: SocketAddr| Remote {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let agent = |remote: &Remote| {
        let observer = CliObserver::new(out, remote, Side::Server, state.clone());
        Agent::server(offered.clone(), Box::new(observer))
    };
    let udp = args.transport.use_udp().map_err(anyhow::Error::msg)?;
    let (agent, result) = if udp {
        let transport = crate::transport::client_transport(args.transport.cc);
        let serve_one = |sock: &UdpSocket, first, psk: &Psk, remote: Option<&Remote>| {
            udp::serve_one(sock, first, &config, &transport, psk, &|from| {
                agent(remote.unwrap_or(&peer(from)))
            })
        };
        if let Some(relay) = &args.code_mode.relay {
            let announce = |c: &Code| {
                let command = format!("{} receive {c} --relay {relay} --udp", program());
                announce(out, c, &relay.to_string(), &command, true);
            };
            let serve =
                |sock: &UdpSocket, first, psk: &Psk| serve_one(sock, first, psk, Some(relay));
            udp::send_relayed(relay, &mut code, generate, &announce, &serve)??
        } else {
            let sock = udp::bind(args.code_mode.listen)?;
            let bound = sock.local_addr()?;
            let command = format!("{} receive {code} --from {} --udp", program(), reach(bound));
            announce(out, &code, &bound.to_string(), &command, true);
            serve_one(&sock, None, &code.psk(), None)?
        }
    } else if let Some(relay) = &args.code_mode.relay {
        let mut tries = 0;
        let stream = loop {
            let command = format!("{} receive {code} --relay {relay}", program());
            let waiting = || announce(out, &code, &relay.to_string(), &command, false);
            match crate::relay::connect(relay, crate::relay::Role::Send, &code, waiting)? {
                Some(s) => break s,
                // The number is in use at the relay: another code.
                None if tries < 8 => {
                    tries += 1;
                    code = generate()?;
                }
                None => bail!("the relay {relay} refused every code number tried"),
            }
        };
        let mut a = agent(relay);
        let r = rt.run_server(stream, &config, &code.psk(), &mut a);
        (a, r)
    } else {
        let psk = code.psk();
        let listener = match args.code_mode.listen {
            Some(addr) => {
                TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?
            }
            None => TcpListener::bind(DEFAULT_LISTEN)
                .or_else(|_| TcpListener::bind(DEFAULT_LISTEN_V4))
                .with_context(|| {
                    format!("cannot listen on {DEFAULT_LISTEN} or {DEFAULT_LISTEN_V4}")
                })?,
        };
        let bound = listener.local_addr()?;
        let command = format!("{} receive {code} --from {}", program(), reach(bound));
        announce(out, &code, &bound.to_string(), &command, false);
        loop {
            let (stream, from) = listener.accept().context("cannot accept a receiver")?;
            let mut a = agent(&peer(from));
            match rt.run_server(stream, &config, &psk, &mut a) {
                Err(e) if not_a_receiver(&e) => {
                    out.info(format_args!(
                        "{from} is not a ferry receiver ({e}); still waiting"
                    ));
                }
                r => break (a, r),
            }
        }
    };
    result?;
    let failed = lock(&state).finish(out, &Side::Server);
    let sent = agent
        .reports()
        .iter()
        .filter(|r| matches!(r, Report::Sent(_)))
        .count();
    if sent == 0 && failed == 0 {
        bail!("the receiver declined: nothing was sent");
    }
    Ok(found.missing.len() + failed.max(offered.len().saturating_sub(sent)))
}

/// The code: from the command line (with a warning), `FERRY_CODE`, or the terminal.
fn read_code(args: &ReceiveArgs, out: &Output) -> anyhow::Result<Code> {
    let text = if let Some(c) = &args.code {
        out.info(
            "warning: a code on the command line is visible to other local users (ps); \
             prefer FERRY_CODE or typing it at the prompt",
        );
        c.clone()
    } else if let Ok(c) = std::env::var("FERRY_CODE") {
        c
    } else {
        rpassword::prompt_password("code: ")
            .context("no code given: pass it, set FERRY_CODE, or run on a terminal")?
    };
    Ok(Code::parse(&text)?)
}

/// What is offered, for the user (stderr) or the script (`--json`: one `offer` object).
fn show(out: &Output, entries: &[ListEntry]) {
    let total: u64 = entries.iter().map(|e| e.size).sum();
    if out.is_json() {
        let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let v = serde_json::json!({
            "event": "offer", "files": entries.len(), "bytes": total, "names": names,
        });
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{v}");
        let _ = stdout.flush();
        return;
    }
    let mut text = format!(
        "offered: {} file{}, {}",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" },
        format_bytes(total)
    );
    for e in entries.iter().take(SHOWN_NAMES) {
        text.push_str(&format!(
            "\n  {:>10}  {}",
            format_bytes(e.size),
            escape_line(&e.path)
        ));
    }
    if entries.len() > SHOWN_NAMES {
        text.push_str(&format!("\n  ... and {} more", entries.len() - SHOWN_NAMES));
    }
    eprintln!("{text}");
}

/// Ask on the terminal; `false` without one.
fn ask() -> bool {
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let mut w = &tty;
    let _ = write!(w, "accept? [y/N] ");
    let _ = w.flush();
    let mut line = String::new();
    let _ = std::io::BufReader::new(&tty).read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// `receive CODE ...`. Returns the number of failed files.
pub(crate) fn receive(
    rt: &dyn Runtime,
    cli: &Cli,
    args: &ReceiveArgs,
    out: &Output,
) -> anyhow::Result<usize> {
    let code = read_code(args, out)?;
    let psk = code.psk();
    let remote = args
        .from
        .as_ref()
        .or(args.relay.as_ref())
        .context("receive needs --from HOST or --relay HOST")?;
    let store = Arc::new(Deferred::new(args.out.clone()));
    let declined = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(Mutex::new(0usize));
    let confirm = {
        let (out, yes, declined, offered) =
            (out.clone(), args.yes, declined.clone(), offered.clone());
        Box::new(move |entries: &[ListEntry]| {
            show(&out, entries);
            *offered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = entries.len();
            let ok = yes || ask();
            declined.store(!ok, Ordering::Relaxed);
            ok
        })
    };
    let job = Job::Fetch {
        overwrite: args.overwrite,
        confirm,
    };
    let side = Side::Local(args.out.display().to_string());
    let state: Shared = RunState::shared(Progress::new(out, None, cli.verbose > 0));
    let observer = CliObserver::new(out, remote, side.clone(), state.clone());
    let mut agent = Agent::client(store, Box::new(observer), job);
    let config = client_config(proto::Compression::Off);
    let run = if args.transport.use_udp().map_err(anyhow::Error::msg)? {
        let transport = crate::transport::client_transport(args.transport.cc);
        udp::receive(rt, args, &config, &transport, &code, &mut agent)
    } else if let Some(relay) = &args.relay {
        let stream = crate::relay::connect(relay, crate::relay::Role::Receive, &code, || {})?
            .context("the relay refused: a receiver for this code is there already")?;
        rt.run_client_on(stream, &config, &psk, &mut agent)
            .map_err(anyhow::Error::from)
    } else {
        rt.run_client(remote, args.retries, &config, &psk, &mut agent)
    };
    if let Err(e) = run {
        if let Some(RunError::Session(SessionError::Handshake(HandshakeError::Refused))) =
            e.downcast_ref::<RunError>()
        {
            bail!(
                "the sender closed the connection during the handshake: wrong code, or the code was used already"
            );
        }
        return Err(e);
    }
    let failed = lock(&state).finish(out, &side);
    if declined.load(Ordering::Relaxed) {
        bail!("declined: nothing was received (--yes accepts without asking)");
    }
    let received = agent
        .reports()
        .iter()
        .filter(|r| matches!(r, Report::Received(_)))
        .count();
    let want = *offered
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(failed.max(want.saturating_sub(received)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_list_is_the_eff_short_list() {
        let w = words();
        assert_eq!(w.len(), 1295);
        let mut u = w.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), 1295, "no duplicates");
        assert!(w.iter().all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
        // 4 words of 1295: more than 40 bits.
        assert!(CODE_WORDS as f64 * (w.len() as f64).log2() >= 40.0);
    }

    #[test]
    fn generated_codes_parse_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.to_string(), b.to_string());
        let s = a.to_string();
        assert_eq!(Code::parse(&s).unwrap(), a);
        assert_eq!(s.split('-').count(), 1 + CODE_WORDS);
        assert!((1..=NAMEPLATES).contains(&a.nameplate()));
    }

    #[test]
    fn the_other_side_is_told_where() {
        assert_eq!(reach("127.0.0.1:6868".parse().unwrap()), "127.0.0.1");
        assert_eq!(reach("127.0.0.1:7000".parse().unwrap()), "127.0.0.1:7000");
        assert_eq!(reach("[::1]:7000".parse().unwrap()), "[::1]:7000");
    }
}
