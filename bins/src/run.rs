//! What each command does, independent of the adapter that moves the bytes.
//!
//! A binary implements [`Runtime`] with its adapter (blocking std, mio, smol) and calls
//! [`main`]; everything else (flags, keys, files, reports, exit codes) is shared.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_app::agent::{Agent, Job, Observer, Report};
use ferry_app::host::RunError;
use ferry_disk::{FsStore, Outgoing, Source, StdoutStore, Store};
use proto::dgram::TransportConfig;
use proto::{Config, FileMeta, Psk};

use crate::cli::{
    Cli, Command, DaytimeServeArgs, GetArgs, LsArgs, RecordArgs, Remote, SendArgs, ServeArgs,
};
use crate::output::{FileReport, Output, ProgressHandle};
use crate::{DEFAULT_LISTEN, DEFAULT_LISTEN_V4, EXIT_FAILURE, init_tracing, keyfile};

/// What an adapter provides to the shared command line.
pub trait Runtime {
    /// Serve `store` on `listener` and, when given, on the UDP socket `udp` (bound to the
    /// same address) forever, at most `max_connections` at once on each; UDP connections use
    /// `transport`. Returns when either server stops.
    ///
    /// # Errors
    /// When either server fails for good.
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &self,
        listener: TcpListener,
        udp: Option<UdpSocket>,
        psk: Psk,
        store: Arc<dyn Store>,
        max_connections: usize,
        config: Config,
        transport: TransportConfig,
    ) -> anyhow::Result<()>;

    /// Serve daytime (RFC 867) on both sockets (bound to the same address) forever.
    ///
    /// # Errors
    /// When a socket fails for good.
    fn daytime_serve(&self, tcp: TcpListener, udp: UdpSocket) -> anyhow::Result<()>;

    /// Connect to `remote` (retrying `retries` times with back-off) and run `agent`'s job to
    /// the end of the session.
    ///
    /// # Errors
    /// A one-line human message: why the connection or the session failed.
    fn run_client(
        &self,
        remote: &Remote,
        retries: u32,
        config: &Config,
        psk: &Psk,
        agent: &mut Agent,
    ) -> anyhow::Result<()>;

    /// Run one client session with `agent` over a connected `stream` (a short code through a
    /// relay).
    ///
    /// # Errors
    /// The session's or the socket's.
    fn run_client_on(
        &self,
        stream: std::net::TcpStream,
        config: &Config,
        psk: &Psk,
        agent: &mut Agent,
    ) -> Result<(), RunError>;

    /// Run one server session with `agent` over an accepted `stream` (a short-code send).
    ///
    /// # Errors
    /// The session's or the socket's.
    fn run_server(
        &self,
        stream: std::net::TcpStream,
        config: &Config,
        psk: &Psk,
        agent: &mut Agent,
    ) -> Result<(), RunError>;

    /// Run `agent`'s job over UDP against `remote` to the end of the session (one address, no
    /// retries: [`crate::transport::run_udp`] resolves and retries).
    ///
    /// # Errors
    /// The session's or the socket's; a handshake without answer is recognised by
    /// [`ferry_app::udp::is_no_answer`].
    fn run_udp_client(
        &self,
        remote: SocketAddr,
        config: &Config,
        transport: &TransportConfig,
        psk: &Psk,
        agent: &mut Agent,
    ) -> Result<(), RunError>;
}

/// Parse the command line, run the command with `rt`, and return the exit status: 0 when
/// every file was committed (or listed, or fetched), 1 otherwise, 2 for usage errors (clap
/// exits with 2 itself).
pub fn main(rt: &dyn Runtime) -> i32 {
    let cli = Cli::parse_validated();
    init_tracing(cli.verbose, cli.quiet);
    // A directory send keeps up to one open file per file in flight (1024 by default) on both
    // ends: make the usual soft limit of 1024 descriptors no obstacle.
    ferry_app::host::raise_open_file_limit();
    let mut out = Output::from_cli(&cli);
    if let Command::Get(args) = &cli.command
        && args.out_is_stdout()
    {
        out = out.stdout_is_data();
    }
    if let Some(t) = cli.command.transport() {
        let udp = t.use_udp().unwrap_or(false);
        out = out.with_transport(if udp { "udp" } else { "tcp" });
    }
    match run(rt, &cli, &out) {
        Ok(0) => 0,
        Ok(_) => EXIT_FAILURE,
        Err(e) => {
            out.error(format!("{e:#}"));
            EXIT_FAILURE
        }
    }
}

/// Run one command; returns the number of failed files.
fn run(rt: &dyn Runtime, cli: &Cli, out: &Output) -> anyhow::Result<usize> {
    match &cli.command {
        Command::Keygen(args) => {
            let path = match &args.out {
                Some(p) => p.clone(),
                None => keyfile::resolve_path(cli.key.clone())?,
            };
            keyfile::write_new(&path, &keyfile::generate()?, args.force)?;
            out.info(format!("wrote a new key to {}", path.display()));
            Ok(0)
        }
        Command::Serve(args) => serve(rt, cli, args, out).map(|()| 0),
        Command::Send(args) if args.code_mode.code => crate::code::send(rt, args, out),
        Command::Send(args) => send(rt, cli, args, out),
        Command::Receive(args) => crate::code::receive(rt, args, out),
        Command::Relay(args) => crate::relay::run(args, out).map(|()| 0),
        Command::Get(args) => get(rt, cli, args, out),
        Command::Ls(args) => ls(rt, cli, args, out),
        Command::Record(args) => record(rt, cli, args, out),
        Command::Seal(args) => {
            let key = if args.passphrase {
                crate::seal::KeyChoice::Passphrase
            } else {
                crate::seal::KeyChoice::KeyFile(cli.key.clone())
            };
            crate::seal::seal(&args.input, &args.out, key, args.compress, args.force)?;
            Ok(0)
        }
        Command::Open(args) => {
            let limit = proto::seal::Argon2CostLimit {
                max_m_cost_kib: args.max_argon2_mib.saturating_mul(1024),
                max_t_cost: args.max_argon2_passes,
                ..proto::seal::Argon2CostLimit::DEFAULT
            };
            crate::seal::open(&args.input, &args.out, cli.key.clone(), args.force, &limit)?;
            Ok(0)
        }
        Command::DaytimeServe(args) => daytime_serve(rt, args, out).map(|()| 0),
        Command::Daytime(args) => {
            let line = ferry_app::host::daytime_query(
                &args.server.host,
                args.server.port,
                args.udp,
                Duration::from_secs(args.timeout),
            )
            .with_context(|| format!("no daytime answer from {}", args.server))?;
            println!("{}", crate::output::escape_line(&line));
            Ok(0)
        }
    }
}

fn psk_for_client(cli: &Cli) -> anyhow::Result<Psk> {
    let path = keyfile::resolve_path(cli.key.clone())?;
    Ok(Psk::from_key_bytes(&keyfile::load(&path)?))
}

fn serve(rt: &dyn Runtime, cli: &Cli, args: &ServeArgs, out: &Output) -> anyhow::Result<()> {
    if args.list_partials {
        return crate::partials::list(&args.root, out);
    }
    let key_path = keyfile::resolve_path(cli.key.clone())?;
    let key = keyfile::load_or_create(&key_path, |p| out.key_created(p))?;
    let mut store = FsStore::new(&args.root)
        .with_context(|| format!("cannot use {} as the root", args.root.display()))?
        .echo_records(args.print)
        .expire_partials(crate::partials::policy(
            args.partials_max_age,
            args.partials_max_bytes,
        ));
    if args.store_sealed {
        store = store.sealed(proto::seal::SealKey::from_key_bytes(&key));
    }
    store.sweep_partials_soon();
    let udp = !args.no_udp;
    let bind = |a: &str| crate::transport::bind_server(a.parse().expect("a valid default"), udp);
    let (listener, udp) = match args.listen {
        Some(addr) => crate::transport::bind_server(addr, udp)
            .with_context(|| format!("cannot listen on {addr}"))?,
        None => bind(DEFAULT_LISTEN)
            .or_else(|_| bind(DEFAULT_LISTEN_V4))
            .with_context(|| format!("cannot listen on {DEFAULT_LISTEN} or {DEFAULT_LISTEN_V4}"))?,
    };
    out.listening(listener.local_addr()?);
    let mut config = Config::default();
    config.compression = args.compress.into();
    config.handshake_timeout = Duration::from_secs(args.handshake_timeout);
    rt.serve(
        listener,
        udp,
        Psk::from_key_bytes(&key),
        Arc::new(store),
        args.max_connections as usize,
        config,
        crate::transport::client_transport(args.cc),
    )
}

/// How long `send` keeps offering again the files the server refused as busy (another
/// transfer of the same name in progress: typically our own interrupted run, which the server
/// lets go of or takes over within a second or two).
const BUSY_RETRY_FOR: Duration = Duration::from_secs(10);
/// The first pause before offering busy files again; it doubles up to [`BUSY_RETRY_MAX_PAUSE`].
const BUSY_RETRY_PAUSE: Duration = Duration::from_millis(100);
const BUSY_RETRY_MAX_PAUSE: Duration = Duration::from_secs(1);

/// Bridges agent reports and progress to the user's output.
pub(crate) struct CliObserver {
    out: Output,
    /// The peer, for messages.
    server: String,
    bars: Arc<Mutex<Vec<(String, ProgressHandle)>>>,
    /// When set, files refused as busy are noted here (to offer again) instead of printed.
    busy: Option<Arc<Mutex<Vec<String>>>>,
}

impl CliObserver {
    pub(crate) fn new(out: &Output, server: &Remote) -> Self {
        CliObserver {
            out: out.clone(),
            server: server.to_string(),
            bars: Arc::new(Mutex::new(Vec::new())),
            busy: None,
        }
    }

    fn end_bar(&self, name: &str) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(i) = bars.iter().position(|(n, _)| n == name)
        {
            bars.swap_remove(i).1.finish();
        }
    }
}

impl Observer for CliObserver {
    fn started(&mut self, name: &str, total: Option<u64>, from: u64) {
        let bar = self.out.progress_start(name, total);
        bar.set_position(from);
        if let Ok(mut bars) = self.bars.lock() {
            bars.push((name.to_string(), bar));
        }
    }

    fn advanced(&mut self, name: &str, n: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some((_, bar)) = bars.iter().find(|(b, _)| b == name)
        {
            bar.advance(n);
        }
    }

    fn report(&mut self, report: &Report) {
        match report {
            Report::Sent(r) | Report::Received(r) => {
                self.end_bar(&r.name);
                let outcome = match report {
                    _ if r.up_to_date => FileReport::UP_TO_DATE,
                    Report::Sent(_) => FileReport::SENT,
                    _ => FileReport::RECEIVED,
                };
                self.out.file_done(&FileReport {
                    name: r.name.clone(),
                    bytes: r.bytes,
                    resumed_from: r.resumed_from,
                    blake3: hex(&r.blake3),
                    seconds: r.seconds,
                    outcome,
                });
            }
            Report::Failed { name, problem } => {
                self.end_bar(name);
                if problem.reason == proto::Reason::Busy
                    && let Some(busy) = &self.busy
                {
                    tracing::debug!(%name, "busy on the server; offering it again shortly");
                    busy.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(name.clone());
                    return;
                }
                self.out.file_failed(name, &describe(problem));
            }
            Report::Entry(e) => self.out.listed(e),
            Report::RecordStored => self.out.record_stored(&self.server),
            // Servers print records through their store (`serve --print`).
            Report::RecordReceived(_) => {}
        }
    }
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A human reason for a file failure.
fn describe(p: &proto::Problem) -> String {
    use proto::Reason;
    let what = match p.reason {
        Reason::Exists => {
            "exists with different content on the other side (use --overwrite to replace it)"
        }
        Reason::UpToDate => "already up to date",
        Reason::Denied => "permission denied",
        Reason::BadName => "invalid name",
        Reason::NotFound => "not found",
        Reason::NoSpace => "no space left on the receiving side",
        Reason::Io => "I/O error",
        Reason::HashMismatch => "received bytes do not match the sender's hash",
        Reason::Cancelled => "cancelled",
        Reason::Unsupported => "not supported by the other side",
        Reason::Busy => "busy on the other side",
        _ => "failed",
    };
    if p.detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {}", p.detail)
    }
}

pub(crate) fn client_config(compress: proto::Compression) -> Config {
    let mut c = Config::default();
    c.compression = compress;
    c
}

/// Where and how a client connects.
struct Dial<'a> {
    remote: &'a Remote,
    retries: u32,
    config: Config,
    /// `Some`: over UDP with these settings.
    udp: Option<TransportConfig>,
}

impl<'a> Dial<'a> {
    fn new(
        remote: &'a Remote,
        retries: u32,
        config: Config,
        t: &crate::cli::TransportArgs,
    ) -> anyhow::Result<Self> {
        let udp = t.use_udp().map_err(anyhow::Error::msg)?;
        Ok(Dial {
            remote,
            retries,
            config,
            udp: udp.then(|| crate::transport::client_transport(t.cc)),
        })
    }
}

/// Run a client job and print what happened; returns the number of failures.
fn run_job(
    rt: &dyn Runtime,
    cli: &Cli,
    dial: Dial<'_>,
    store: Arc<dyn Store>,
    job: Job,
    out: &Output,
) -> anyhow::Result<usize> {
    run_job_noting_busy(rt, cli, &dial, store, job, out, None)
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RunError>().is_some_and(RunError::is_busy)
}

/// [`run_job`]; with `busy`, files refused as busy are noted there, not printed nor counted.
fn run_job_noting_busy(
    rt: &dyn Runtime,
    cli: &Cli,
    dial: &Dial<'_>,
    store: Arc<dyn Store>,
    job: Job,
    out: &Output,
    busy: Option<Arc<Mutex<Vec<String>>>>,
) -> anyhow::Result<usize> {
    let psk = psk_for_client(cli)?;
    let mut observer = CliObserver::new(out, dial.remote);
    observer.busy.clone_from(&busy);
    let mut agent = Agent::client(store, Box::new(observer), job);
    // A busy server started nothing: try again with the same agent, backing off.
    let (mut attempt, mut delay) = (0, Duration::from_millis(250));
    loop {
        let run = match &dial.udp {
            None => rt.run_client(dial.remote, dial.retries, &dial.config, &psk, &mut agent),
            Some(t) => crate::transport::run_udp(
                rt,
                dial.remote,
                dial.retries,
                &dial.config,
                t,
                &psk,
                &mut agent,
            ),
        };
        match run {
            Err(e) if attempt < dial.retries && is_busy(&e) => {
                attempt += 1;
                tracing::info!(attempt, ?delay, "server busy; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(4));
            }
            r => break r?,
        }
    }
    let noted = busy.map_or(0, |b| {
        b.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    });
    Ok(agent.failures() - noted)
}

/// Send the files; those the server refuses as busy (another transfer of the same name in
/// progress, e.g. our own run that was just killed) are offered again with back-off for up to
/// [`BUSY_RETRY_FOR`], quietly, and reported as failed only after that.
fn send(rt: &dyn Runtime, cli: &Cli, args: &SendArgs, out: &Output) -> anyhow::Result<usize> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, args.as_name.as_deref(), args.overwrite, &mut files)?;
    }
    if files.is_empty() {
        bail!("nothing to send: no regular files under the given paths");
    }
    let to = args.to.as_ref().context("send needs --to HOST or --code")?;
    let dial = Dial::new(
        to,
        args.retries,
        client_config(args.compress.into()),
        &args.transport,
    )?;
    // Standard input cannot be read twice: no offering it again.
    let replayable = !args.paths.iter().any(|p| p.as_os_str() == "-");
    let deadline = Instant::now() + BUSY_RETRY_FOR;
    let mut pause = BUSY_RETRY_PAUSE;
    let mut failures = 0;
    loop {
        let busy =
            (replayable && Instant::now() + pause < deadline).then(|| Arc::new(Mutex::new(vec![])));
        // A send receives nothing (a client session refuses offers it did not ask for); a
        // store that takes at most one file keeps the agent's contract.
        let store: Arc<dyn Store> = Arc::new(StdoutStore::new());
        failures +=
            run_job_noting_busy(rt, cli, &dial, store, Job::Send(files), out, busy.clone())?;
        let again: Vec<String> = match busy {
            Some(b) => {
                std::mem::take(&mut *b.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            }
            None => Vec::new(),
        };
        if again.is_empty() {
            return Ok(failures);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(BUSY_RETRY_MAX_PAUSE);
        let mut all = Vec::new();
        for path in &args.paths {
            collect(path, args.as_name.as_deref(), args.overwrite, &mut all)?;
        }
        files = all
            .into_iter()
            .filter(|f| again.contains(&f.meta.path))
            .collect();
        if files.is_empty() {
            // Gone from the local disk meanwhile: nothing left to offer.
            return Ok(failures + again.len());
        }
    }
}

fn get(rt: &dyn Runtime, cli: &Cli, args: &GetArgs, out: &Output) -> anyhow::Result<usize> {
    let store: Arc<dyn Store> = if args.out_is_stdout() {
        Arc::new(StdoutStore::new())
    } else {
        Arc::new(
            FsStore::new(&args.out)
                .with_context(|| format!("cannot write into {}", args.out.display()))?,
        )
    };
    let dial = Dial::new(
        &args.from,
        args.retries,
        client_config(proto::Compression::Off),
        &args.transport,
    )?;
    let job = Job::Get {
        names: args.names.clone(),
        overwrite: args.overwrite,
    };
    run_job(rt, cli, dial, store, job, out)
}

fn ls(rt: &dyn Runtime, cli: &Cli, args: &LsArgs, out: &Output) -> anyhow::Result<usize> {
    let dial = Dial::new(
        &args.from,
        args.retries,
        client_config(proto::Compression::Off),
        &args.transport,
    )?;
    let store: Arc<dyn Store> = Arc::new(StdoutStore::new());
    let job = Job::List(args.prefix.clone().unwrap_or_default());
    run_job(rt, cli, dial, store, job, out)
}

fn record(rt: &dyn Runtime, cli: &Cli, args: &RecordArgs, out: &Output) -> anyhow::Result<usize> {
    use ferry_app::records;
    // Everything is checked before anything is sent.
    let value = match args.input.as_slice() {
        [one] if one == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the record from standard input")?;
            serde_json::from_str(&text).context("standard input is not valid JSON")?
        }
        [one] if !one.contains('=') => {
            let text =
                std::fs::read_to_string(one).with_context(|| format!("cannot read {one}"))?;
            serde_json::from_str(&text).with_context(|| format!("{one} is not valid JSON"))?
        }
        [] => bail!("no record given: pass a JSON file, - for standard input, or key=value pairs"),
        pairs => records::from_pairs(pairs)?,
    };
    let format = args.format.into();
    let body = records::encode(&value, format, args.max_size)?;
    let dial = Dial::new(
        &args.to,
        args.retries,
        client_config(proto::Compression::Off),
        &args.transport,
    )?;
    let store: Arc<dyn Store> = Arc::new(StdoutStore::new());
    run_job(rt, cli, dial, store, Job::Record(format, body), out)
}

fn daytime_serve(rt: &dyn Runtime, args: &DaytimeServeArgs, out: &Output) -> anyhow::Result<()> {
    let bind = |addr: SocketAddr| -> std::io::Result<(TcpListener, UdpSocket)> {
        let tcp = TcpListener::bind(addr)?;
        // The same port for UDP (a port 0 request is fixed by the TCP bind).
        let udp = UdpSocket::bind(tcp.local_addr()?)?;
        Ok((tcp, udp))
    };
    let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, crate::DAYTIME_PORT));
    let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, crate::DAYTIME_PORT));
    let (tcp, udp) = match args.listen {
        Some(addr) => bind(addr).with_context(|| format!("cannot listen on {addr}"))?,
        None => bind(v6)
            .or_else(|_| bind(v4))
            .context("cannot listen on port 13 (it needs root: use --listen with a high port)")?,
    };
    out.listening(tcp.local_addr()?);
    rt.daytime_serve(tcp, udp)
}

/// The files to offer for one command-line PATH: `-` (standard input), a file, or every regular
/// file under a directory (named `<dir name>/<relative path>`).
pub(crate) fn collect(
    path: &Path,
    as_name: Option<&str>,
    overwrite: bool,
    files: &mut Vec<Outgoing>,
) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let name = as_name.context("sending standard input needs --as NAME")?;
        let mut meta = FileMeta::new(name, None);
        meta.overwrite = overwrite;
        files.push(Outgoing {
            meta,
            source: Source::Reader(Box::new(std::io::stdin())),
        });
        return Ok(());
    }
    let md = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if md.is_file() {
        let name = match as_name {
            Some(n) => n.to_string(),
            None => file_name(path)?,
        };
        files.push(Outgoing::from_file(path.to_path_buf(), &name, overwrite)?);
        return Ok(());
    }
    if !md.is_dir() {
        bail!("{}: not a regular file or directory", path.display());
    }
    let base = path
        .canonicalize()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut found: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    for entry in walkdir::WalkDir::new(path)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(path)?;
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{}: name is not UTF-8", entry.path().display()))?
            .join("/");
        let name = match &base {
            Some(b) => format!("{b}/{rel}"),
            None => rel,
        };
        found.push((name, entry.path().to_path_buf(), entry.metadata()?));
    }
    for (name, p, _md) in found {
        files.push(Outgoing::from_file(p, &name, overwrite)?);
    }
    Ok(())
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{}: no usable file name (use --as NAME)", path.display()))
}
