//! ferry over UDP for the blocking std adapter: one socket, the datagram application of
//! [`ferry_app::udp`] (the server demultiplexes every connection on its socket).
//!
//! For now both entry points run the shared blocking loops of [`ferry_app::udp::socket`] on
//! the calling thread; a native loop replaces them here without changing the signatures.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use ferry_app::ServeOptions;
use ferry_app::agent::Agent;
use ferry_app::host::RunError;
use ferry_disk::Store;
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

/// Serve ferry over UDP on `sock` on this thread until the socket fails for good: every
/// connection on the one socket, `opts.max_connections` at most, files into and from `store`.
///
/// # Errors
/// The socket failed for good, or no OS randomness or commit threads.
pub fn serve_udp(
    sock: UdpSocket,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    ferry_app::udp::serve_blocking(sock, psk, store, opts)
}

/// Run `agent`'s job over UDP against `remote` on this thread; the agent comes back in
/// `agent` (its reports, its resume state).
///
/// # Errors
/// The socket failed, or the session did. A handshake that got no answer (silence until
/// `config.handshake_timeout`, or the port unreachable) is [`RunError::Io`] that
/// [`ferry_app::udp::is_no_answer`] recognises; the agent is then not finished (retry with it).
pub fn run_udp_client(
    remote: SocketAddr,
    config: &Config,
    transport: &TransportConfig,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    ferry_app::udp::run_client_blocking(remote, config, transport, psk, agent)
}
