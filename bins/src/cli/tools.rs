//! The arguments of the commands that move no files: `seal`, `open` (encryption at rest) and
//! the RFC 867 daytime pair.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::remote::{Remote, parse_host, parse_listen};

/// `seal IN -o OUT [--passphrase] [--compress] [--force]`.
#[derive(Debug, Clone, Args)]
pub struct SealArgs {
    /// The file to seal (`-` for standard input).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the sealed file (`-` for standard output).
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Use a passphrase (prompted, or FERRY_PASSPHRASE) stretched with Argon2id instead of the
    /// key file.
    #[arg(long)]
    pub passphrase: bool,
    /// Deflate before sealing.
    #[arg(long)]
    pub compress: bool,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `open IN -o OUT [--force] [--max-argon2-mib MIB] [--max-argon2-passes N]`.
#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    /// The sealed file (`-` for standard input).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the plaintext (`-` for standard output), only once the whole file verified.
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Refuse a passphrase-sealed file whose (unauthenticated) header asks Argon2id for more
    /// memory than this, in MiB (ferry seals with 64).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_argon2_mib: u32,
    /// Refuse a passphrase-sealed file whose header asks Argon2id for more passes than this
    /// (ferry seals with 3; lanes are capped at 16).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_argon2_passes: u32,
}

/// The daytime port (needs privileges; use `--listen` with a high port otherwise).
pub const DAYTIME_PORT: u16 = 13;

/// `daytime-serve [--listen ADDR]`.
#[derive(Debug, Clone, Args)]
pub struct DaytimeServeArgs {
    /// Address for both TCP and UDP [default: `[::]:13`, else `0.0.0.0:13`; port 13 needs
    /// root, so e.g. `--listen 127.0.0.1:1313`]. Port 0 picks a free one (the same for UDP).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
}

/// `daytime HOST[:PORT] [--udp]`.
#[derive(Debug, Clone, Args)]
pub struct DaytimeArgs {
    /// The server: `HOST`, `HOST:PORT` or `[IPv6]:PORT` (default port 13).
    #[arg(value_name = "HOST[:PORT]", value_parser = parse_daytime_remote)]
    pub server: Remote,

    /// Ask over UDP instead of TCP.
    #[arg(long)]
    pub udp: bool,

    /// Seconds to wait for the whole answer (a deadline, not a bound on each read).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
}

fn parse_daytime_remote(s: &str) -> Result<Remote, String> {
    let (host, port) = parse_host(s, DAYTIME_PORT)?;
    Ok(Remote { host, port })
}
