//! `ferry-std`: the ferry command line on blocking `std::net` sockets (a thread per
//! connection). Same commands and flags as `ferry-mio` and `ferry-smol`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_adapter_std as adapter;
use ferry_cli::Remote;
use ferry_disk::Store;
use ferry_disk::agent::Agent;
use proto::{Config, Psk};

struct Std;

impl ferry_cli::Runtime for Std {
    fn serve(
        &self,
        listener: TcpListener,
        psk: Psk,
        store: Arc<dyn Store>,
        max_connections: usize,
        config: Config,
    ) -> anyhow::Result<()> {
        let opts = adapter::ServeOptions {
            max_connections,
            config,
        };
        adapter::serve(listener, psk, store, opts).context("server stopped")
    }

    fn run_client(
        &self,
        remote: &Remote,
        retries: u32,
        config: &Config,
        psk: &Psk,
        agent: &mut Agent,
    ) -> anyhow::Result<()> {
        let stream = adapter::connect(&remote.host, remote.port, Duration::from_secs(10), retries)
            .with_context(|| format!("cannot connect to {remote}"))?;
        adapter::run_client(stream, config, psk, agent).map_err(anyhow::Error::from)
    }
}

fn main() {
    std::process::exit(ferry_cli::main(&Std));
}
