//! The ferry command line, shared by every adapter binary (`ferry-std`, later `ferry-mio` and
//! `ferry-smol`) so that all of them accept the same flags and print the same things.
//!
//! - [`cli`]: the clap definitions ([`Cli`], [`Command`] and the per-command arguments),
//!   [`parse_host`] and the [`validate`] rules clap cannot express. No behaviour.
//! - [`keyfile`]: the pre-shared key file: text format with a checksum, atomic 0600 creation,
//!   the ssh-like permission check, the default path and `--key` / `FERRY_KEY` resolution.
//! - [`transport`]: TCP and UDP side by side: `serve` binds both on one port and runs both
//!   servers; UDP clients resolve, retry and report a handshake without answer.
//! - [`output`]: what the user sees: result lines or JSON objects, errors, progress bars on a
//!   terminal, and the `tracing` subscriber.
//! - [`progress`], [`observer`], [`retry`], [`signals`]: a client run as a person sees it: one
//!   aggregate bar and a summary line, one-reason failures naming the side, reconnecting under
//!   `--retries`, SIGINT/SIGTERM with the resume hint (`client` and `collect` run the job and
//!   gather what `send` offers).
//!
//! A binary parses with [`Cli::parse_validated`] (usage errors exit 2), builds an [`Output`]
//! and calls [`init_tracing`], resolves the key with [`keyfile::resolve_path`], runs its
//! adapter, and exits 0 only when every file succeeded ([`EXIT_FAILURE`] otherwise).

pub mod bwlimit;
pub mod cli;
mod client;
pub mod code;
mod collect;
pub mod completions;
pub mod config;
pub mod exclude;
pub mod fingerprint;
pub mod identity;
pub mod json;
mod json_safe;
pub mod keyfile;
pub mod keysource;
pub mod known_hosts;
pub mod observer;
pub mod output;
pub mod partials;
pub mod progress;
pub mod relay;
pub mod remote_glob;
pub mod retry;
pub mod run;
pub mod seal;
pub mod secure;
pub mod serve_events;
pub mod signals;
pub mod transport;

pub use cli::{
    Cc, Cli, Command, Compress, DAYTIME_PORT, DEFAULT_LISTEN, DEFAULT_LISTEN_V4,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT, DEFAULT_RETRIES, DEFAULT_ROOT, DaytimeArgs,
    DaytimeServeArgs, EXIT_FAILURE, EXIT_USAGE, GetArgs, KeygenArgs, LsArgs, OpenArgs, RecordArgs,
    RecordFormatArg, Remote, SealArgs, SendArgs, ServeArgs, TRANSPORT_ENV, TransportArgs,
    parse_host, validate,
};
pub use keyfile::{DecodeError, KEY_LEN, KeyFileError};
pub use output::{FileReport, Output, ProgressHandle, format_bytes, format_utc, init_tracing};
pub use run::{Runtime, main};

#[doc(hidden)]
pub mod __private {
    //! Paths the [`adapter_main!`](crate::adapter_main) macro uses; not a public API.
    pub use {anyhow, ferry_app, ferry_disk, proto};
}

/// Defines `main` for an adapter binary: implements [`Runtime`] with the adapter crate
/// `$adapter`, which must provide `ServeOptions { max_connections, config, transport }`,
/// `serve(listener, psk, store, opts)`, `serve_udp(socket, psk, store, opts)`,
/// `connect(host, port, timeout, retries)`, `run_client(stream, config, psk, agent)`,
/// `run_udp_client(remote, config, transport, psk, agent)` and `daytime_serve(tcp, udp)`, and
/// runs [`main`] with it. Every binary is this one line, so they cannot drift apart.
#[macro_export]
macro_rules! adapter_main {
    ($adapter:ident) => {
        struct AdapterRuntime;

        impl $crate::Runtime for AdapterRuntime {
            fn name(&self) -> &'static str {
                let full: &'static str = stringify!($adapter);
                full.strip_prefix("ferry_adapter_").unwrap_or(full)
            }

            #[allow(clippy::too_many_arguments)]
            fn serve(
                &self,
                listener: ::std::net::TcpListener,
                udp: ::std::option::Option<::std::net::UdpSocket>,
                psk: $crate::__private::proto::Psk,
                store: ::std::sync::Arc<dyn $crate::__private::ferry_disk::Store>,
                max_connections: usize,
                config: $crate::__private::proto::Config,
                transport: $crate::__private::proto::dgram::TransportConfig,
            ) -> $crate::__private::anyhow::Result<()> {
                let opts = $adapter::ServeOptions {
                    max_connections,
                    config,
                    transport,
                };
                let udp = udp.map(|sock| {
                    let (psk, store, opts) = (psk.clone(), store.clone(), opts.clone());
                    move || $adapter::serve_udp(sock, psk, store, opts)
                });
                $crate::transport::serve_both(
                    move || $adapter::serve(listener, psk, store, opts),
                    udp,
                )
            }

            fn run_client(
                &self,
                remote: &$crate::Remote,
                retries: u32,
                config: &$crate::__private::proto::Config,
                psk: &$crate::__private::proto::Psk,
                agent: &mut $crate::__private::ferry_app::agent::Agent,
            ) -> $crate::__private::anyhow::Result<()> {
                use $crate::__private::anyhow::Context as _;
                let stream = $adapter::connect(
                    &remote.host,
                    remote.port,
                    ::std::time::Duration::from_secs(10),
                    retries,
                )
                .with_context(|| format!("cannot connect to {remote}"))?;
                $adapter::run_client(stream, config, psk, agent)
                    .map_err($crate::__private::anyhow::Error::from)
            }

            fn run_client_on(
                &self,
                stream: ::std::net::TcpStream,
                config: &$crate::__private::proto::Config,
                psk: &$crate::__private::proto::Psk,
                agent: &mut $crate::__private::ferry_app::agent::Agent,
            ) -> ::std::result::Result<(), $crate::__private::ferry_app::host::RunError> {
                $adapter::run_client(stream, config, psk, agent)
            }

            fn run_server(
                &self,
                stream: ::std::net::TcpStream,
                config: &$crate::__private::proto::Config,
                psk: &$crate::__private::proto::Psk,
                agent: &mut $crate::__private::ferry_app::agent::Agent,
            ) -> ::std::result::Result<(), $crate::__private::ferry_app::host::RunError> {
                $adapter::run_server(stream, config, psk, agent)
            }

            fn run_udp_client(
                &self,
                remote: ::std::net::SocketAddr,
                config: &$crate::__private::proto::Config,
                transport: &$crate::__private::proto::dgram::TransportConfig,
                psk: &$crate::__private::proto::Psk,
                agent: &mut $crate::__private::ferry_app::agent::Agent,
            ) -> ::std::result::Result<(), $crate::__private::ferry_app::host::RunError> {
                $adapter::run_udp_client(remote, config, transport, psk, agent)
            }

            fn daytime_serve(
                &self,
                tcp: ::std::net::TcpListener,
                udp: ::std::net::UdpSocket,
            ) -> $crate::__private::anyhow::Result<()> {
                use $crate::__private::anyhow::Context as _;
                $adapter::daytime_serve(tcp, udp).context("daytime server stopped")
            }
        }

        fn main() {
            ::std::process::exit($crate::main(&AdapterRuntime));
        }
    };
}
