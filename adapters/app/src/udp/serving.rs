//! What every adapter's UDP server loop shares: building the [`UdpServer`] of a serve socket,
//! and one turn of the loop (read a batch, let the agents act, send what is due). An adapter
//! adds only its way of waiting between turns.

use std::io;
use std::sync::Arc;

use ferry_disk::Store;
use proto::Psk;
use proto::dgram::Endpoint;

use super::UdpServer;
use super::socket::{READ_BATCH, UdpIo};
use crate::ServeOptions;
use crate::agent::LogObserver;
use crate::host::{Clock, fresh_seed};
use crate::pool::{CommitPool, Notify};

impl UdpServer {
    /// The server of a serve socket read through `io`: an endpoint with the transport `io`
    /// supports, `opts.max_connections` at most, files into and from `store`, commits on a
    /// pool whose finished work calls `notify` (which must wake the loop).
    ///
    /// # Errors
    /// No OS randomness, or no pool threads.
    pub fn serving(
        io: &UdpIo<'_>,
        psk: &Psk,
        store: Arc<dyn Store>,
        opts: &ServeOptions,
        notify: Notify,
    ) -> io::Result<Self> {
        let endpoint = Endpoint::new(
            &opts.config,
            &io.transport(&opts.transport),
            psk,
            fresh_seed()?,
            opts.max_connections,
        );
        Ok(UdpServer::new(
            endpoint,
            store,
            Box::new(|_| Box::new(LogObserver)),
            Some((CommitPool::new(crate::pool::SERVER_THREADS)?, notify)),
            Clock::new(),
        ))
    }

    /// One turn of a serve loop: read up to [`READ_BATCH`] datagrams, let every connection
    /// act, and send what is due through `io` (`tx` holds one transmit,
    /// [`super::TRANSMIT_BUF`] bytes). Returns whether the socket may hold more: then turn
    /// again before waiting (an edge-triggered loop must, to see the socket empty).
    ///
    /// ICMP errors about some client's address (`ConnectionRefused`/`ConnectionReset`) and
    /// signals are not the socket's end (the batch stops there, and more may follow); a send
    /// that fails is dropped as the network would drop it (recovery resends).
    ///
    /// # Errors
    /// The socket failed for good.
    pub fn turn(&mut self, io: &mut UdpIo<'_>, tx: &mut [u8]) -> io::Result<bool> {
        let more = match io.recv_up_to(READ_BATCH, |from, d| self.handle_datagram(from, d)) {
            Ok(n) => n >= READ_BATCH,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                true
            }
            Err(e) => return Err(e),
        };
        self.step();
        while let Some(t) = self.poll_transmit(tx) {
            if let Err(e) = io.send(&t, tx) {
                tracing::debug!(error = %e, peer = %t.destination, "send failed");
            }
        }
        Ok(more)
    }
}
