//! What each command does, independent of the adapter that moves the bytes.
//!
//! A binary implements [`Runtime`] with its adapter (blocking std, mio, smol) and calls
//! [`main`]; everything else (flags, keys, files, reports, exit codes) is shared.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_app::agent::{Agent, Job};
use ferry_app::host::RunError;
use ferry_disk::{FsStore, Outgoing, StdoutStore, Store};
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

use crate::cli::{
    Cli, Command, DaytimeServeArgs, GetArgs, LsArgs, RecordArgs, Remote, SendArgs, ServeArgs,
};
use crate::client::{ClientRun, Dial, Remake, client_config};
use crate::collect::collect_all;
use crate::observer::{RunState, Side, lock};
use crate::output::Output;
use crate::progress::Progress;
use crate::{DEFAULT_LISTEN, DEFAULT_LISTEN_V4, EXIT_FAILURE, init_tracing};

mod commands;

/// What an adapter provides to the shared command line.
pub trait Runtime {
    /// The runtime's name for `--version` (`std`, `mio`, `smol`).
    fn name(&self) -> &'static str;

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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match commands::parse(rt.name(), &args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
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
    if let Command::Ls(a) = &cli.command
        && a.human
    {
        out = out.with_human_listing();
    }
    match &cli.command {
        Command::Completions(_) | Command::Man => {
            return commands::generated(rt.name(), args.first(), &cli, &out);
        }
        Command::Send(_)
        | Command::Get(_)
        | Command::Ls(_)
        | Command::Record(_)
        | Command::Receive(_) => {
            crate::signals::install(&out, crate::signals::Role::Client);
        }
        Command::Serve(_) | Command::DaytimeServe(_) | Command::Relay(_) => {
            crate::signals::install(&out, crate::signals::Role::Server);
        }
        _ => {}
    }
    let result = run(rt, &cli, &out);
    let code = if let Some(code) = crate::signals::interrupted() {
        crate::signals::announce(&out, code)
    } else {
        match result {
            Ok(0) => 0,
            Ok(_) => EXIT_FAILURE,
            // The reader of standard output went away (`| head`): end quietly, as coreutils do.
            Err(e) if e.downcast_ref::<crate::signals::StdoutClosed>().is_some() => {
                crate::signals::EXIT_PIPE
            }
            Err(e) => {
                out.error_with(crate::json::error_reason(&e), format!("{e:#}"));
                EXIT_FAILURE
            }
        }
    };
    out.json_summary(crate::json::command_name(&cli.command), code);
    code
}

/// Run one command; returns the number of failed files.
fn run(rt: &dyn Runtime, cli: &Cli, out: &Output) -> anyhow::Result<usize> {
    match &cli.command {
        Command::Keygen(args) => commands::keygen(cli, args, out).map(|()| 0),
        Command::Key(args) => commands::key(cli, args, out).map(|()| 0),
        Command::Completions(_) | Command::Man => Ok(0),
        Command::Serve(args) => serve(rt, cli, args, out).map(|()| 0),
        Command::Send(args) if args.code_mode.code => crate::code::send(rt, cli, args, out),
        Command::Send(args) => send(rt, cli, args, out),
        Command::Receive(args) => crate::code::receive(rt, cli, args, out),
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
            commands::sealed("sealed", &args.input, &args.out, out);
            Ok(0)
        }
        Command::Open(args) => {
            let limit = proto::seal::Argon2CostLimit {
                max_m_cost_kib: args.max_argon2_mib.saturating_mul(1024),
                max_t_cost: args.max_argon2_passes,
                ..proto::seal::Argon2CostLimit::DEFAULT
            };
            crate::seal::open(&args.input, &args.out, cli.key.clone(), args.force, &limit)?;
            commands::sealed("opened", &args.input, &args.out, out);
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
            .map_err(|e| {
                let reason = crate::json::io_reason(&e);
                crate::json::tagged(reason, daytime_error(&e, &args.server))
            })?;
            commands::daytime(&args.server, &line, out);
            Ok(0)
        }
    }
}

fn serve(rt: &dyn Runtime, cli: &Cli, args: &ServeArgs, out: &Output) -> anyhow::Result<()> {
    if args.list_partials {
        return crate::partials::list(&args.root, out);
    }
    if args.root.exists() && !args.root.is_dir() {
        bail!(
            "cannot use {0} as the root: it is a file, not a directory (give --root a \
             directory; it is created if missing)",
            args.root.display()
        );
    }
    let key = crate::keysource::load_or_create(cli.key.clone(), |p| out.key_created(p))?;
    let open =
        {
            // With --json, records are printed as `record` objects by commands::serve_store.
            let (args, key, echo) = (args.clone(), key, args.print && !cli.json);
            move |root: &Path| -> std::io::Result<FsStore> {
                let mut store = FsStore::new(root)?.echo_records(echo).expire_partials(
                    crate::partials::policy(args.partials_max_age, args.partials_max_bytes),
                );
                if args.store_sealed {
                    store = store.sealed(proto::seal::SealKey::from_key_bytes(&key));
                }
                Ok(store)
            }
        };
    let store = open(&args.root)
        .with_context(|| format!("cannot use {} as the root", args.root.display()))?;
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
    crate::secure::serve_identity(cli, args, &mut config, out)?;
    let store: Arc<dyn Store> = match &args.clients {
        None => Arc::new(store),
        Some(list) => {
            let root = args.root.clone();
            let folder = move |dir: &Path| -> std::io::Result<Arc<dyn Store>> {
                Ok(Arc::new(open(&root.join(dir))?))
            };
            crate::secure::serve_clients(list, Box::new(folder), out)?
        }
    };
    rt.serve(
        listener,
        udp,
        Psk::from_key_bytes(&key),
        commands::serve_store(store, out, args.print),
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

/// Send the files; those the server refuses as busy (another transfer of the same name in
/// progress, e.g. our own run that was just killed) are offered again with back-off for up to
/// [`BUSY_RETRY_FOR`], quietly, and reported as failed only after that. A PATH that cannot be
/// read is reported and the rest is sent (it counts as a failure).
fn send(rt: &dyn Runtime, cli: &Cli, args: &SendArgs, out: &Output) -> anyhow::Result<usize> {
    let (as_name, overwrite) = (args.as_name.as_deref(), args.overwrite);
    let filter = commands::filter(&args.options);
    let mut notice = |m: String| out.info(m);
    let found = collect_all(&args.paths, as_name, overwrite, &filter, Some(&mut notice))?;
    for (path, why) in &found.missing {
        let reason = if why.contains("ermission denied") {
            "permission"
        } else {
            "not_found"
        };
        out.file_failed(&path.display().to_string(), reason, why);
    }
    let missing = found.missing.len();
    let mut files = found.files;
    if files.is_empty() {
        if missing > 0 {
            return Ok(missing);
        }
        bail!("nothing to send: no regular files under the given paths");
    }
    if args.options.dry_run {
        return Ok(commands::plan_send(&files, out) + missing);
    }
    let to = args.to.as_ref().context("send needs --to HOST or --code")?;
    let mut dial = Dial::new(
        to,
        args.retries,
        client_config(args.compress.into()),
        &args.transport,
    )?;
    dial.bwlimit = args.options.bwlimit;
    let bytes = files.iter().filter_map(|f| f.meta.size).sum();
    let progress = Progress::new(out, Some((files.len(), bytes)), cli.verbose > 0);
    let run = ClientRun {
        rt,
        cli,
        dial: &dial,
        out,
        side: Side::Server,
        state: RunState::shared(progress),
    };
    // Standard input cannot be read twice: no offering it again.
    let replayable = !args.paths.iter().any(|p| p.as_os_str() == "-");
    // The files of the PATHs (read again: an offer consumes its source) that `keep` names.
    let recollect = |keep: &dyn Fn(&str) -> bool| -> anyhow::Result<Vec<Outgoing>> {
        let all = collect_all(&args.paths, as_name, overwrite, &filter, None)?.files;
        Ok(all.into_iter().filter(|f| keep(&f.meta.path)).collect())
    };
    let mut remake = |st: &RunState| -> anyhow::Result<Option<Job>> {
        let left = recollect(&|n| !st.finished.contains(n))?;
        Ok((!left.is_empty()).then_some(Job::Send(left)))
    };
    // A send receives nothing (a client session refuses offers it did not ask for); a
    // store that takes at most one file keeps the agent's contract.
    let store: Arc<dyn Store> = Arc::new(StdoutStore::new());
    let deadline = Instant::now() + BUSY_RETRY_FOR;
    let mut pause = BUSY_RETRY_PAUSE;
    let mut gone = 0;
    let result = loop {
        lock(&run.state).busy = (replayable && Instant::now() + pause < deadline).then(Vec::new);
        let remake = replayable.then_some(&mut remake as Remake<'_>);
        if let Err(e) = run.run(&store, Job::Send(files), remake) {
            break Err(e);
        }
        let again = lock(&run.state).busy.take().unwrap_or_default();
        if again.is_empty() || crate::signals::interrupted().is_some() {
            break Ok(());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(BUSY_RETRY_MAX_PAUSE);
        files = recollect(&|n| again.iter().any(|a| a == n))?;
        if files.is_empty() {
            // Gone from the local disk meanwhile: nothing left to offer.
            gone = again.len();
            break Ok(());
        }
    };
    let failures = lock(&run.state).finish(out, &run.side);
    result.map(|()| failures + missing + gone)
}

fn get(rt: &dyn Runtime, cli: &Cli, args: &GetArgs, out: &Output) -> anyhow::Result<usize> {
    let (names, failures) = match commands::expand_get(rt, cli, args, out)? {
        commands::GetPlan::Fetch(names, failures) => (names, failures),
        commands::GetPlan::Done(failures) => return Ok(failures),
    };
    if names.is_empty() {
        return Ok(failures);
    }
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
    let job = || Job::Get {
        names: names.clone(),
        overwrite: args.overwrite,
    };
    let side = Side::Local(args.out.display().to_string());
    // Standard output cannot take a file twice: no reconnecting there.
    let replayable = !args.out_is_stdout();
    let mut remake = |_: &RunState| Ok(Some(job()));
    let remake = replayable.then_some(&mut remake as Remake<'_>);
    Ok(failures + run_job(rt, cli, &dial, (side, None), &store, job(), remake, out)?)
}

fn ls(rt: &dyn Runtime, cli: &Cli, args: &LsArgs, out: &Output) -> anyhow::Result<usize> {
    let dial = Dial::new(
        &args.from,
        args.retries,
        client_config(proto::Compression::Off),
        &args.transport,
    )?;
    let store: Arc<dyn Store> = Arc::new(StdoutStore::new());
    let job = || Job::List(args.prefix.clone().unwrap_or_default());
    // Entries already printed are not printed again.
    let mut remake = |_: &RunState| Ok(Some(job()));
    let side = (Side::Listing, None);
    run_job(rt, cli, &dial, side, &store, job(), Some(&mut remake), out)
}

/// Run one client job (see [`ClientRun::run`]) and finish it: failed files, summary line.
/// Returns the number of failures.
#[allow(clippy::too_many_arguments)]
fn run_job(
    rt: &dyn Runtime,
    cli: &Cli,
    dial: &Dial<'_>,
    (side, expected): (Side, Option<(usize, u64)>),
    store: &Arc<dyn Store>,
    job: Job,
    remake: Option<Remake<'_>>,
    out: &Output,
) -> anyhow::Result<usize> {
    let progress = Progress::new(out, expected, cli.verbose > 0);
    let run = ClientRun {
        rt,
        cli,
        dial,
        out,
        side,
        state: RunState::shared(progress),
    };
    let result = run.run(store, job, remake);
    let failures = lock(&run.state).finish(out, &run.side);
    result.map(|()| failures)
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
    // A record whose session dropped may have been stored: not sent again.
    let job = Job::Record(format, body);
    run_job(rt, cli, &dial, (Side::Server, None), &store, job, None, out)
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

/// `daytime`'s failure: the server, the cause and what to check.
fn daytime_error(e: &std::io::Error, server: &Remote) -> anyhow::Error {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => anyhow::anyhow!(
            "no daytime answer from {server}: {e} (is a daytime server running there? \
             `daytime-serve` runs one)"
        ),
        ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "no daytime answer from {server}: nothing listens there (is `daytime-serve` \
             running, on this port?)"
        ),
        _ => anyhow::anyhow!("no daytime answer from {server}: {e}"),
    }
}
