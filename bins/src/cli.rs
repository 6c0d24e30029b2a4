//! The command line every ferry binary accepts (clap derive). Definitions only: no I/O beyond
//! what [`validate`] needs to tell a directory from a file.
//!
//! ```text
//! ferry-std [-v...|-q] [--json] [--key PATH] <COMMAND>
//!   keygen [--out PATH] [--force]
//!   serve  [--listen ADDR] [--root DIR] [--max-connections N] [--compress auto|on|off] [--no-udp]
//!   send   PATH... --to HOST[:PORT] [--as NAME] [--compress auto|on|off] [--overwrite] [--retries N]
//!   get    NAME... --from HOST[:PORT] [--out DIR|-] [--overwrite] [--retries N]
//!   ls     [-h] [PREFIX] --from HOST[:PORT] [--retries N]
//!   key fingerprint | completions SHELL | man
//! ```
//!
//! `send` also takes `--exclude PATTERN`, `--no-gitignore`, `--bwlimit RATE` and `--dry-run`
//! ([`SendOptions`]); `get` takes globs and `--dry-run`. [`command_for`] names the command
//! after the binary and its runtime; [`crate::config`] turns the config file into defaults.
//!
//! Every client command also takes `--udp` (or `FERRY_TRANSPORT=udp`) and
//! `--cc cubic|newreno|bbr` ([`TransportArgs`]).
//!
//! `--key` falls back to the `FERRY_KEY` environment variable (clap reads it), then to
//! [`crate::keyfile::default_path`]: use [`crate::keyfile::resolve_path`] on [`Cli::key`].
//! `keygen` writes to `--out`, else to that same resolved key path.
//!
//! Exit statuses: 0 success, [`EXIT_FAILURE`] (1) any failed file or connection,
//! [`EXIT_USAGE`] (2) usage errors, which clap itself uses for parse errors.
//! [`Cli::parse_validated`] parses and runs [`validate`], exiting 2 with clap's usage
//! message on either kind of mistake.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

mod conventions;
mod remote;
mod tools;
mod transfer;

pub use conventions::{CompletionsArgs, KeyArgs, KeyCommand, Shell};
pub use remote::{Remote, parse_host};
use remote::{parse_listen, parse_remote};
pub use tools::{DAYTIME_PORT, DaytimeArgs, DaytimeServeArgs, OpenArgs, SealArgs};
pub use transfer::{SendOptions, parse_rate};

use clap::{
    ArgAction, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum,
};

/// Default TCP port of a ferry server.
pub const DEFAULT_PORT: u16 = 6868;

/// What `serve` listens on by default: every IPv6 and (dual-stack) IPv4 address.
pub const DEFAULT_LISTEN: &str = "[::]:6868";

/// What `serve` listens on when binding [`DEFAULT_LISTEN`] fails (no IPv6 on the host).
pub const DEFAULT_LISTEN_V4: &str = "0.0.0.0:6868";

/// Default directory `serve` receives into and serves from (created if missing).
pub const DEFAULT_ROOT: &str = "./ferry-inbox";

/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 256;

/// Default `--retries`.
pub const DEFAULT_RETRIES: u32 = 3;

/// Exit status when any file, listing or connection failed.
pub const EXIT_FAILURE: i32 = 1;

/// Exit status for usage errors (clap's own status for parse errors).
pub const EXIT_USAGE: i32 = 2;

/// The ferry command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Move files between machines over an encrypted, authenticated, resumable connection",
    propagate_version = true,
    max_term_width = 100,
    after_help = conventions::MAIN_EXAMPLES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr: no progress bars, notices or per-file lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// One JSON object per line on stdout for every finished file, listed entry or error.
    #[arg(long, global = true)]
    pub json: bool,

    /// Pre-shared key file [default: ~/.config/ferry/key, or $XDG_CONFIG_HOME/ferry/key].
    #[arg(long, global = true, env = "FERRY_KEY", value_name = "PATH")]
    pub key: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Write a new random key file (mode 0600) to share with the other side; prints its path
    /// and fingerprint.
    #[command(after_help = conventions::KEYGEN_EXAMPLES)]
    Keygen(KeygenArgs),
    /// Receive and serve files under a root directory (creates the key on first run).
    #[command(after_help = conventions::SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Send files and directories (recursively) to a server; `-` sends standard input.
    /// With --code: no key, no server: the receiver types a short code.
    #[command(after_help = conventions::SEND_EXAMPLES)]
    Send(SendArgs),
    /// Receive what a `send --code` offers, with its code (asks before writing anything).
    Receive(crate::code::ReceiveArgs),
    /// Pair `send --code --relay` and `receive --relay` by the code's number and forward their
    /// encrypted bytes (never sees the words, a name or a byte of plaintext).
    Relay(crate::relay::RelayArgs),
    /// Fetch files or directories from a server; a NAME with `*`, `?` or `[...]` is a glob
    /// matched against the server's listing.
    #[command(after_help = conventions::GET_EXAMPLES)]
    Get(GetArgs),
    /// List the files a server holds: size, modification time, name.
    #[command(after_help = conventions::LS_EXAMPLES, disable_help_flag = true)]
    Ls(LsArgs),
    /// Send one structured record (a JSON object) for the server to store in records.jsonl.
    Record(RecordArgs),
    /// Encrypt a file at rest (C2SP chunked encryption) with the key file or a passphrase.
    Seal(SealArgs),
    /// Decrypt a sealed file; nothing is written unless the whole file verifies.
    Open(OpenArgs),
    /// Serve the time of day (RFC 867) on TCP and UDP.
    DaytimeServe(DaytimeServeArgs),
    /// Ask a daytime (RFC 867) server for the time.
    Daytime(DaytimeArgs),
    /// Work with the key file (`key fingerprint`).
    Key(KeyArgs),
    /// Write a shell completion script to standard output.
    Completions(CompletionsArgs),
    /// Write the manual page (roff) to standard output: `ferry man | man -l -`.
    Man,
}

impl Command {
    /// The identity flags of a client command.
    pub fn ident(&self) -> Option<&IdentityArgs> {
        match self {
            Command::Send(a) => Some(&a.ident),
            Command::Get(a) => Some(&a.ident),
            Command::Ls(a) => Some(&a.ident),
            Command::Record(a) => Some(&a.ident),
            _ => None,
        }
    }

    /// The transport flags of a client command (`send`, `get`, `ls`, `record`).
    pub fn transport(&self) -> Option<&TransportArgs> {
        match self {
            Command::Send(a) => Some(&a.transport),
            Command::Get(a) => Some(&a.transport),
            Command::Ls(a) => Some(&a.transport),
            Command::Record(a) => Some(&a.transport),
            Command::Receive(a) => Some(&a.transport),
            _ => None,
        }
    }
}

/// `keygen [--out PATH] [--force]`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the key [default: the --key / FERRY_KEY / default key path].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// Replace an existing key file.
    #[arg(long)]
    pub force: bool,

    /// Make a client identity (a long-term key pair) instead of a key file: written to
    /// --out (mode 0600); its public key, in the form `serve --clients` lists, is printed.
    #[arg(long, requires = "out")]
    pub identity: bool,
}

/// `serve [--listen ADDR] [--root DIR] [--max-connections N] [--compress auto|on|off]`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on, TCP and UDP alike; port 0 picks a free one (the same for both).
    /// The first stdout line is `listening on ADDR` with the bound address [default:
    /// `[::]:6868`, else `0.0.0.0:6868`].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Directory to receive into and serve from (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,

    /// Most authenticated connections served at once; further clients hear "server busy"
    /// (connections still in the handshake have a smaller quota of their own).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,

    /// Compression of the files this server sends (answers to `get`).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Compress::Auto)]
    pub compress: Compress,

    /// Also print each record on standard output as it is stored (one JSON line each).
    #[arg(long)]
    pub print: bool,

    /// Keep received files sealed at rest under the server's key (`get` still returns
    /// plaintext; sizes in `ls` are plaintext sizes).
    #[arg(long)]
    pub store_sealed: bool,

    /// Seconds a new connection has to complete the handshake before it is closed.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub handshake_timeout: u64,

    /// Remove partial files (interrupted transfers) not written for this long: `7d`, `12h`,
    /// `30m`; `0` keeps them for ever. Checked at start and at most once a minute.
    #[arg(long, value_name = "DURATION", default_value = crate::partials::DEFAULT_MAX_AGE,
          value_parser = crate::partials::parse_duration)]
    pub partials_max_age: std::time::Duration,

    /// Remove the oldest partial files while all together hold more than this: `10G`, `500M`;
    /// `0` sets no limit.
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = crate::partials::parse_size)]
    pub partials_max_bytes: u64,

    /// Print the partial files under the root (bytes held, age, name) and exit.
    #[arg(long)]
    pub list_partials: bool,

    /// Listen on TCP only (by default UDP too, at the same address and port).
    #[arg(long)]
    pub no_udp: bool,

    /// Congestion controller for what this server sends over UDP (answers to `get`).
    #[arg(long, value_enum, value_name = "CC", default_value_t = Cc::Cubic)]
    pub cc: Cc,

    /// Server identity file (created 0600 on first use): clients pin its fingerprint (mode
    /// PINNED; with --key as well, PINNED+PSK).
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,

    /// Allow list of client keys (`NAME PUBLIC-KEY RIGHTS DIR` a line), reloaded on SIGHUP
    /// or when it changes; needs --identity.
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub clients: Option<PathBuf>,
}

/// The identity flags every client command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct IdentityArgs {
    /// This client's identity (from `keygen --identity`), for servers with an allow list.
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,

    /// The server's identity fingerprint: pin it explicitly instead of trusting first use.
    #[arg(long, value_name = "FP")]
    pub fingerprint: Option<String>,
}

/// `send PATH... --to HOST[:PORT] [--as NAME] [--compress auto|on|off] [--overwrite] [--retries N]`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Files or directories to send; `-` reads standard input (needs --as).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The server: `HOST`, `HOST:PORT` or `[IPv6]:PORT` (default port 6868).
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote, conflicts_with = "code")]
    pub to: Option<Remote>,

    /// No key and no server: print a short code, wait for one receiver
    /// (`receive CODE --from THIS-HOST`) and send it the files.
    #[command(flatten)]
    pub code_mode: crate::code::SendCodeArgs,

    /// Name to store the single file (or standard input) under on the server.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,

    /// Compress chunks before encryption: auto compresses only while it is faster (slow
    /// links, compressible data), never on data that does not compress.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Compress::Auto)]
    pub compress: Compress,

    /// Replace files the server holds with different content (same content is skipped).
    #[arg(long)]
    pub overwrite: bool,

    /// Attempts after the first (1 s, 2 s, 4 s, 8 s apart): after a failed connect, a busy
    /// server, or a session dropped mid-transfer (the next attempt resumes).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// Excludes, `--bwlimit`, `--dry-run`.
    #[command(flatten)]
    pub options: SendOptions,
    /// Identities (`--identity`, `--fingerprint`).
    #[command(flatten)]
    pub ident: IdentityArgs,

    /// TCP or UDP (`--udp`, `--cc`).
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// `get NAME... --from HOST[:PORT] [--out DIR] [--overwrite] [--retries N]`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Names of files or directories on the server.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,

    /// The server: `HOST`, `HOST:PORT` or `[IPv6]:PORT` (default port 6868).
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote)]
    pub from: Remote,

    /// Directory to write into; `-` writes the one NAME to standard output.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    /// Replace a local file whose content differs (without it such a file is kept and
    /// reported). The server's offer never decides this.
    #[arg(long)]
    pub overwrite: bool,

    /// Attempts after the first (1 s, 2 s, 4 s, 8 s apart): after a failed connect, a busy
    /// server, or a session dropped mid-transfer (the next attempt resumes).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// Print what would be fetched (name and size, from the server's listing) and exit:
    /// write nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Identities (`--identity`, `--fingerprint`).
    #[command(flatten)]
    pub ident: IdentityArgs,

    /// TCP or UDP (`--udp`, `--cc`).
    #[command(flatten)]
    pub transport: TransportArgs,
}

impl GetArgs {
    /// `--out -`: the file goes to standard output.
    pub fn out_is_stdout(&self) -> bool {
        self.out.as_os_str() == "-"
    }
}

/// `ls [PREFIX] --from HOST[:PORT] [--retries N]`.
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Only names under this directory or starting with this prefix.
    #[arg(value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// Human sizes (`1.2 MiB`) and local time instead of byte counts and UTC.
    #[arg(short = 'h', long = "human-readable")]
    pub human: bool,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// The server: `HOST`, `HOST:PORT` or `[IPv6]:PORT` (default port 6868).
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote)]
    pub from: Remote,

    /// Attempts after the first (1 s, 2 s, 4 s, 8 s apart): after a failed connect, a busy
    /// server, or a session dropped mid-transfer (the next attempt resumes).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// Identities (`--identity`, `--fingerprint`).
    #[command(flatten)]
    pub ident: IdentityArgs,

    /// TCP or UDP (`--udp`, `--cc`).
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// `record --to HOST[:PORT] [--format postcard|json] [--max-size BYTES] [FILE|-|key=value|key:=json...]`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// The record: a file holding one JSON object, `-` for standard input, or `key=value`
    /// (string) and `key:=json` (any JSON value) pairs. Nothing reads standard input.
    #[arg(value_name = "FILE|-|key=value")]
    pub input: Vec<String>,

    /// The server: `HOST`, `HOST:PORT` or `[IPv6]:PORT` (default port 6868).
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_remote)]
    pub to: Remote,

    /// The encoding the record travels in.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = RecordFormatArg::Postcard)]
    pub format: RecordFormatArg,

    /// Refuse records larger than this many bytes once encoded (at most 15360).
    #[arg(long, value_name = "BYTES", default_value_t = 15 * 1024)]
    pub max_size: usize,

    /// Attempts after the first (1 s, 2 s, 4 s, 8 s apart): after a failed connect, a busy
    /// server, or a session dropped mid-transfer (the next attempt resumes).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// Identities (`--identity`, `--fingerprint`).
    #[command(flatten)]
    pub ident: IdentityArgs,

    /// TCP or UDP (`--udp`, `--cc`).
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// `record --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormatArg {
    /// Compact binary (serde + postcard).
    Postcard,
    /// JSON text.
    Json,
}

impl From<RecordFormatArg> for proto::RecordFormat {
    fn from(f: RecordFormatArg) -> Self {
        match f {
            RecordFormatArg::Postcard => proto::RecordFormat::Postcard,
            RecordFormatArg::Json => proto::RecordFormat::Json,
        }
    }
}

/// The transport flags every client command takes.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct TransportArgs {
    /// Connect over UDP instead of TCP (also `FERRY_TRANSPORT=udp`; the flag wins). The
    /// server listens on both at the same port unless started with `--no-udp`.
    #[arg(long)]
    pub udp: bool,

    /// Congestion controller over UDP (ignored over TCP): cubic is TCP-fair; bbr keeps its
    /// rate on lossy long paths but is not loss-fair.
    #[arg(long, value_enum, value_name = "CC", default_value_t = Cc::Cubic)]
    pub cc: Cc,
}

/// The environment variable that picks the transport when `--udp` is not given: `udp` or
/// `tcp` (unset: TCP).
pub const TRANSPORT_ENV: &str = "FERRY_TRANSPORT";

impl TransportArgs {
    /// Whether to use UDP: `--udp`, else [`TRANSPORT_ENV`] (`udp` or `tcp`, any case).
    ///
    /// # Errors
    /// The variable holds something else.
    pub fn use_udp(&self) -> Result<bool, String> {
        if self.udp {
            return Ok(true);
        }
        match std::env::var_os(TRANSPORT_ENV) {
            None => Ok(false),
            Some(v) => match v.to_str().map(str::to_ascii_lowercase).as_deref() {
                Some("udp") => Ok(true),
                Some("tcp" | "") => Ok(false),
                _ => Err(format!(
                    "{TRANSPORT_ENV}={} is not a transport: use tcp or udp",
                    v.to_string_lossy()
                )),
            },
        }
    }
}

/// `--cc` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Cc {
    /// CUBIC (RFC 9438): TCP-fair, the default.
    #[default]
    Cubic,
    /// NewReno (RFC 9002): TCP-fair, the reference controller.
    Newreno,
    /// A BBR-style bandwidth and round-trip model for dedicated or lossy long paths: random
    /// loss is not read as congestion (not loss-fair).
    Bbr,
}

impl From<Cc> for proto::dgram::CongestionControl {
    fn from(c: Cc) -> Self {
        match c {
            Cc::Cubic => Self::Cubic,
            Cc::Newreno => Self::NewReno,
            Cc::Bbr => Self::Bbr,
        }
    }
}

/// `--compress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    /// Deflate, but back off on chunks that do not shrink.
    Auto,
    /// Try deflate on every chunk.
    On,
    /// Never compress.
    Off,
}

impl From<Compress> for proto::Compression {
    fn from(c: Compress) -> Self {
        match c {
            Compress::Auto => Self::Auto,
            Compress::On => Self::On,
            Compress::Off => Self::Off,
        }
    }
}

/// Checks clap cannot express; `Err` is a usage message (exit [`EXIT_USAGE`]):
/// - `send --as NAME` needs exactly one PATH, a file or `-` (not a directory), and a
///   non-empty NAME;
/// - `send -` (standard input) needs `--as NAME`;
/// - `get --out -` needs exactly one NAME and cannot be combined with `--json` (both would
///   use standard output).
///
/// # Errors
/// The first violated rule, as a one-line message.
pub fn validate(cli: &Cli) -> Result<(), String> {
    if let Some(t) = cli.command.transport() {
        t.use_udp()?;
    }
    match &cli.command {
        Command::Send(a) => {
            if a.to.is_none() && !a.code_mode.code {
                return Err("send needs --to HOST[:PORT] (or --code: no key, no server)".to_owned());
            }
            let is_stdin = |p: &PathBuf| p.as_os_str() == "-";
            if let Some(name) = &a.as_name {
                if a.paths.len() != 1 {
                    return Err(format!(
                        "--as NAME needs exactly one PATH (a file or -), got {}",
                        a.paths.len()
                    ));
                }
                let path = &a.paths[0];
                if !is_stdin(path) && path.is_dir() {
                    return Err(format!(
                        "--as NAME needs a file or -, and {} is a directory",
                        path.display()
                    ));
                }
                if name.is_empty() {
                    return Err("--as NAME must not be empty".to_owned());
                }
            } else if a.paths.iter().any(is_stdin) {
                return Err("sending standard input (-) needs --as NAME".to_owned());
            }
        }
        Command::Get(a) if a.out_is_stdout() => {
            if a.names.len() != 1 {
                return Err(format!(
                    "--out - (standard output) takes exactly one NAME, got {}",
                    a.names.len()
                ));
            }
            if cli.json {
                return Err(
                    "--json cannot be combined with --out - (both use standard output)".to_owned(),
                );
            }
        }
        _ => {}
    }
    Ok(())
}

impl Cli {
    /// Parse the process arguments and [`validate`] them. On `--help`/`--version` print and
    /// exit 0; on any usage error print clap's message with the usage line and exit 2.
    pub fn parse_validated() -> Self {
        Self::try_parse_validated_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// [`Cli::parse_validated`] without exiting: the first item is the program name. A
    /// validation failure is a clap error of kind `ArgumentConflict` (exit code 2).
    ///
    /// # Errors
    /// The clap error to print (`e.exit()`), including help and version "errors".
    pub fn try_parse_validated_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_with(Self::command(), args)
    }

    /// [`Cli::try_parse_validated_from`] with `cmd` (from [`command_for`], with the config
    /// file's defaults applied).
    ///
    /// # Errors
    /// As [`Cli::try_parse_validated_from`].
    pub fn try_parse_with<I, T>(mut cmd: clap::Command, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut matches = cmd.try_get_matches_from_mut(args)?;
        let sub = matches.subcommand_name().map(str::to_owned);
        let cli = Self::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))?;
        validate(&cli).map_err(|msg| {
            // Show the subcommand's usage line (`Usage: ferry-std send ...`).
            let kind = clap::error::ErrorKind::ArgumentConflict;
            match sub.and_then(|s| cmd.find_subcommand_mut(s)) {
                Some(sub) => sub.error(kind, msg),
                None => cmd.error(kind, msg),
            }
        })?;
        Ok(cli)
    }
}

/// The clap command of a binary: named after the program (`ferry`, `ferry-mio`...) with a
/// version naming the runtime (`ferry-mio 0.1.0 (mio)`).
#[must_use]
pub fn command_for(runtime: &str, program: Option<&std::ffi::OsStr>) -> clap::Command {
    let name = program
        .and_then(|p| std::path::Path::new(p).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("ferry");
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Cli::command()
        .name(leak(name.to_owned()))
        .version(leak(format!("{} ({runtime})", env!("CARGO_PKG_VERSION"))))
}

#[cfg(test)]
mod tests;
