//! ferry in async Rust: the sans-IO core driven by `async-io` futures, an async [`Client`] and
//! [`Server`] to embed in any program, and the blocking entry points of the `ferry-smol` binary.
//!
//! # Example
//! A server and a client in one program, on 127.0.0.1 (any executor works; this one uses
//! `smol`):
//!
//! ```
//! use std::sync::Arc;
//! use ferry_adapter_smol::{Client, Config, FsStore, Psk, ServeOptions, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let dir = tempfile::tempdir()?;
//!     // Both sides hold the same 32-byte key (a key file's bytes).
//!     let psk = Psk::from_key_bytes(&[7; 32]);
//!
//!     let store = Arc::new(FsStore::new(dir.path().join("inbox"))?);
//!     let server = Server::bind("127.0.0.1:0".parse()?, store, &psk, ServeOptions::default())?;
//!     let addr = server.local_addr()?;
//!     let stop = server.shutdown_handle();
//!     let serving = smol::spawn(server.run());
//!
//!     let client = Client::connect(addr, &psk, Config::default()).await?;
//!     std::fs::write(dir.path().join("notes.txt"), "hello, ferry")?;
//!     let sent = client.send_file(dir.path().join("notes.txt"), "docs/notes.txt").await?;
//!     // A stream of unknown length: anything `AsyncRead`.
//!     let piped = futures_lite::io::Cursor::new(vec![42u8; 100_000]);
//!     client.send_reader("piped.bin", piped).await?;
//!
//!     let names: Vec<String> = client.list("").await?.into_iter().map(|e| e.path).collect();
//!     assert_eq!(names, ["docs/notes.txt", "piped.bin"]);
//!     let got = client.get("docs", dir.path().join("copy")).await?;
//!     assert_eq!(got[0].blake3, sent.blake3);
//!     assert_eq!(std::fs::read(dir.path().join("copy/docs/notes.txt"))?, b"hello, ferry");
//!
//!     stop.shutdown();
//!     serving.await?;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # The driving loop
//! One connection is one future (a task on the server): it owns the socket
//! (`Async<TcpStream>`), one `async-io` [`Timer`](async_io::Timer) armed at the session's
//! [`Session::poll_timeout`](proto::Session::poll_timeout), and optionally a command channel
//! (the server's shutdown). Each round it
//! 1. *steps*: feeds buffered input to the session, lets due timers fire, pumps the
//!    [`Agent`](ferry_app::agent::Agent) (which answers events and moves file bytes), and
//!    drains `poll_transmit` into its output buffer;
//! 2. *exchanges*: writes the output, reads more input, and — when the step found nothing more
//!    to do — waits for whichever comes first: the socket, the deadline, a command.
//!
//! That loop exists once, in the private `conn` module; [`Client`], [`Server`], [`serve`] and
//! [`run_client`] all run through it. No protocol decision lives here: the core decides, the
//! agent applies the application's choices.
//!
//! # File I/O never blocks the executor
//! The step runs on the [`blocking`] thread pool (`blocking::unblock`): the connection's
//! session, agent and buffers move to a pool thread for the step and back for the exchange.
//! The agent's work is bounded per step (a few 64 KiB chunks per pump), but some of it is
//! not: hashing an existing file to decide "up to date" or to resume, opening files, walking
//! a directory for a listing, and the commit (file fsync, rename, directory fsync), which
//! takes milliseconds. A bounded inline pump with commits on a
//! [`CommitPool`](ferry_app::pool::CommitPool), as the mio adapter does, would still run
//! those hashes and walks on the executor, which an embedding program's other tasks would
//! feel. So the whole step goes to the pool — the session's sealing, opening and deflating
//! too. A server's connections also hand their disk work (creating, syncing and renaming
//! received files; opening and hashing files to send) to a shared
//! [`CommitPool`](ferry_app::pool::CommitPool) of four threads, whose finished work wakes the
//! connection: the step's thread decrypts the next files while the last ones are created and
//! committed. The cost is two thread hand-offs per round, so while bytes keep moving the pool
//! thread also does the socket's non-blocking reads and writes between steps (as the mio loop
//! does) and hands the connection back only when the socket would block, the session is idle,
//! or after a bounded number of steps: a bulk transfer crosses threads a few hundred times per
//! GiB.
//!
//! # Back-pressure
//! The exchange reads only while [`Session::wants_input`](proto::Session::wants_input) holds
//! and fewer than [`INBOX_CAP`] bytes are buffered; the step gathers at most [`OUTBOX_CAP`]
//! bytes of output before the socket must take some. A slow disk therefore stops the socket
//! reads (the receive window fills), and a slow peer stops the file reads (the send buffer
//! fills). A quiet connection holds no I/O buffer: it waits for readability before it takes
//! room to read into, asks the session with an empty slice whether it has output before it
//! takes room to write from, and gives both back at its next deadline once they drain (a
//! silent connection costs `ferry-smol serve` about 8 KiB).
//!
//! # Cancellation
//! Dropping a connection's future (a client call, or [`Server::run`]) closes its socket at once
//! and finishes its agent on the blocking pool: files being received stay as hidden partial
//! files (with their resume state when the size is known), and nothing is ever published under
//! its final name except by the disk layer's atomic rename after the whole-file hash matched.
//!
//! # The binary's entry points
//! [`ServeOptions`], [`serve`], [`connect`], [`run_client`] and [`daytime_serve`] are what
//! `ferry_cli::adapter_main!` needs: blocking functions that run the async implementation on
//! `smol` (`smol::block_on`; connection tasks on a `smol::Executor` run by two threads).
//!
//! # MSRV
//! Rust 1.88.

mod client;
mod conn;
mod entry;
mod error;
mod server;
mod udp;

pub use client::Client;
pub use conn::{INBOX_CAP, OUTBOX_CAP};
pub use entry::{daytime_serve, run_client, run_server, serve};
pub use error::Error;
pub use server::{ServeOptions, Server, ShutdownHandle};
pub use udp::{run_udp_client, serve_udp, serve_udp_async};

pub use ferry_app::agent::{FileReport, Job, Observer, Report};
pub use ferry_app::host::connect;
pub use ferry_disk::{FsStore, Store};
pub use proto::{Config, ListEntry, Psk};
