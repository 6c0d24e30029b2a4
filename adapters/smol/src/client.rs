//! The async client: every call runs on a connection and session of its own.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use ferry_app::agent::{Agent, FileReport, Job, LogObserver, Observer, Report};
use ferry_app::host::{Clock, fresh_seed};
use ferry_disk::{FsStore, Incoming, Outgoing, Source, Store};
use futures_lite::{AsyncRead, FutureExt};
use proto::{Config, FileMeta, ListEntry, Problem, Psk, Reason, Session};

use crate::Error;
use crate::conn::drive;
use ferry_app::driver::Conn;

/// How long one connection attempt to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A ferry client for async programs. Cheap to clone; calls may run concurrently.
///
/// Each call ([`send_file`](Client::send_file), [`send_reader`](Client::send_reader),
/// [`get`](Client::get), [`list`](Client::list), [`run`](Client::run)) opens its own TCP
/// connection and runs one session to the end (a handshake costs one X25519 exchange), so calls
/// are independent: one failing or being cancelled does not disturb another.
///
/// # Cancellation
/// Every call is cancellation-safe: dropping its future closes that call's connection. A file
/// is only ever published under its final name by an atomic rename after its whole-file hash
/// matched, so a dropped [`get`](Client::get) leaves at most a hidden partial file (kept for a
/// resume by the next call) and a dropped send leaves the server holding a partial file.
#[derive(Clone)]
pub struct Client {
    addrs: Vec<SocketAddr>,
    psk: Psk,
    config: Config,
    overwrite: bool,
}

impl Client {
    /// Resolve `addr` and check it: connect and run one handshake with `psk`, so an unreachable
    /// server or a wrong key fails here rather than at the first call. `config` applies to every
    /// later session (compression, timeouts, limits).
    ///
    /// # Errors
    /// [`Error::Io`] when the name does not resolve or no address accepts a connection;
    /// [`Error::Session`] when the handshake fails (another key:
    /// `SessionError::Handshake(HandshakeError::Refused)`).
    pub async fn connect<A>(addr: A, psk: &Psk, config: Config) -> Result<Client, Error>
    where
        A: ToSocketAddrs + Send + 'static,
    {
        // Name resolution may block (DNS): off the executor.
        let addrs: Vec<SocketAddr> =
            blocking::unblock(move || addr.to_socket_addrs().map(Iterator::collect)).await?;
        let mut client = Client {
            addrs,
            psk: psk.clone(),
            config,
            overwrite: false,
        };
        // Put the first address that answers in front: later calls try it first.
        let (stream, index) = client.dial().await?;
        client.addrs[..=index].rotate_right(1);
        // A session with nothing to do closes as soon as it is connected.
        client
            .run_on(stream, Job::Send(Vec::new()), Arc::new(NoStore), quiet())
            .await?;
        Ok(client)
    }

    /// Replace files that exist on the other side with different content (sends), instead of
    /// failing with `Reason::Exists`. Off by default.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// The address calls connect to first (the one that answered [`Client::connect`]).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Send the local file at `path`, to be stored as `name` (a relative path on the server),
    /// with its mode and modification time. An interrupted earlier send of the same file
    /// resumes where the server's partial file ends.
    ///
    /// # Errors
    /// [`Error::Failed`] when the server refuses or cannot store the file (`Exists` without
    /// [`overwrite`](Client::overwrite), `BadName`, `NoSpace`...); [`Error::Io`] when `path`
    /// cannot be read or the connection fails; [`Error::Session`] when the session fails.
    pub async fn send_file(&self, path: impl AsRef<Path>, name: &str) -> Result<FileReport, Error> {
        let (path, name_owned, overwrite) = (
            path.as_ref().to_path_buf(),
            name.to_string(),
            self.overwrite,
        );
        let file =
            blocking::unblock(move || Outgoing::from_file(path, &name_owned, overwrite)).await?;
        let reports = self
            .run(Job::Send(vec![file]), Arc::new(NoStore), quiet())
            .await?;
        one_file(reports, name)
    }

    /// Send everything `reader` yields, to be stored as `name`. The size is unknown up front,
    /// so there is no resume: an interrupted send starts over.
    ///
    /// The agent reads `reader` on the `blocking` thread pool (with
    /// [`futures_lite::io::BlockOn`]), so any executor-independent reader works (pipes,
    /// sockets and files from `async-io`, `blocking::Unblock`, in-memory cursors); a reader
    /// that needs a particular runtime's context to make progress does not.
    ///
    /// # Errors
    /// As [`send_file`](Client::send_file); a read error of `reader` is [`Error::Failed`].
    pub async fn send_reader<R>(&self, name: &str, reader: R) -> Result<FileReport, Error>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let mut meta = FileMeta::new(name, None);
        meta.overwrite = self.overwrite;
        let file = Outgoing {
            meta,
            source: Source::Reader(Box::new(futures_lite::io::BlockOn::new(reader))),
        };
        let reports = self
            .run(Job::Send(vec![file]), Arc::new(NoStore), quiet())
            .await?;
        one_file(reports, name)
    }

    /// Fetch `name` (a file, or every file under a directory) into `dest_dir` (created if
    /// missing), keeping the server's relative paths. Each file appears under its final name
    /// only once it is complete, verified and durable.
    ///
    /// # Errors
    /// [`Error::Failed`] for the first file that failed (`NotFound` for an unknown name; files
    /// before it may have arrived); [`Error::Io`] when `dest_dir` cannot be used or the
    /// connection fails; [`Error::Session`] when the session fails.
    pub async fn get(
        &self,
        name: &str,
        dest_dir: impl AsRef<Path>,
    ) -> Result<Vec<FileReport>, Error> {
        let dir = dest_dir.as_ref().to_path_buf();
        let store = blocking::unblock(move || FsStore::new(dir)).await?;
        let job = Job::Get {
            names: vec![name.to_string()],
            overwrite: false,
        };
        let reports = self.run(job, Arc::new(store), quiet()).await?;
        let mut files = Vec::new();
        for r in reports {
            match r {
                Report::Received(f) => files.push(f),
                Report::Failed { name, problem } => return Err(Error::Failed { name, problem }),
                _ => {}
            }
        }
        Ok(files)
    }

    /// The server's published files under `prefix` (a directory or a name prefix; `""` for
    /// all), sorted by path.
    ///
    /// # Errors
    /// [`Error::Failed`] when the server refuses the prefix (`BadName`); [`Error::Io`] or
    /// [`Error::Session`] when the connection or session fails.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Error> {
        let job = Job::List(prefix.to_string());
        let reports = self.run(job, Arc::new(NoStore), quiet()).await?;
        let mut entries = Vec::new();
        for r in reports {
            match r {
                Report::Entry(e) => entries.push(e),
                Report::Failed { name, problem } => return Err(Error::Failed { name, problem }),
                _ => {}
            }
        }
        Ok(entries)
    }

    /// Send one record — any value that serializes to a JSON object — and wait until the server
    /// stored it (a line of its `records.jsonl`).
    ///
    /// # Errors
    /// [`Error::Record`] when the value cannot be a record (nothing is sent); [`Error::Failed`]
    /// when the server refuses it; [`Error::Io`] or [`Error::Session`] when the connection or
    /// session fails.
    pub async fn send_record<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        format: proto::RecordFormat,
    ) -> Result<(), Error> {
        let body = ferry_app::records::encode_serialize(value, format, proto::MAX_RECORD_BODY)
            .map_err(Error::Record)?;
        let reports = self
            .run(Job::Record(format, body), Arc::new(NoStore), quiet())
            .await?;
        for r in reports {
            match r {
                Report::RecordStored => return Ok(()),
                Report::Failed { name, problem } => return Err(Error::Failed { name, problem }),
                _ => {}
            }
        }
        Err(Error::Failed {
            name: String::from("record"),
            problem: Problem::new(Reason::Other, "the server did not answer"),
        })
    }

    /// Run any [`Job`] (several files to send, several names to get...) on one session, with
    /// received files going to `store` and progress going to `observer`. Returns every report
    /// in order, failed files included: only a failed connection or session is an error.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Session`] when the connection or session fails (the observer
    /// has seen the files that finished before).
    pub async fn run(
        &self,
        job: Job,
        store: Arc<dyn Store>,
        observer: Box<dyn Observer>,
    ) -> Result<Vec<Report>, Error> {
        let (stream, _) = self.dial().await?;
        self.run_on(stream, job, store, observer).await
    }

    async fn run_on(
        &self,
        stream: Async<TcpStream>,
        job: Job,
        store: Arc<dyn Store>,
        observer: Box<dyn Observer>,
    ) -> Result<Vec<Report>, Error> {
        let clock = Clock::new();
        let session = Session::client(&self.config, &self.psk, fresh_seed()?, clock.now());
        let agent = Agent::client(store, observer, job);
        let (agent, result) = drive(
            stream,
            Box::new(Conn::new(session, agent, clock)),
            None,
            None,
        )
        .await;
        result?;
        Ok(agent.reports().to_vec())
    }

    /// Connect to the first address that accepts; returns the stream and the address's index.
    async fn dial(&self) -> io::Result<(Async<TcpStream>, usize)> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        for (i, addr) in self.addrs.iter().enumerate() {
            let timeout = async {
                Timer::after(CONNECT_TIMEOUT).await;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr}: connection timed out"),
                ))
            };
            match Async::<TcpStream>::connect(*addr).or(timeout).await {
                Ok(stream) => {
                    ferry_app::host::keepalive(stream.get_ref());
                    return Ok((stream, i));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Reports go to `tracing` only.
fn quiet() -> Box<dyn Observer> {
    Box::new(LogObserver)
}

/// The one file a send was about: its report, or why it failed.
fn one_file(reports: Vec<Report>, name: &str) -> Result<FileReport, Error> {
    for r in reports {
        match r {
            Report::Sent(f) | Report::Received(f) => return Ok(f),
            Report::Failed { name, problem } => return Err(Error::Failed { name, problem }),
            _ => {}
        }
    }
    Err(Error::Failed {
        name: name.to_string(),
        problem: Problem::new(Reason::Other, "the session ended without a report"),
    })
}

/// An offer for a local file: size, mode and modification time from its metadata.
/// The store of a client that expects no files (send, list): a server offering one anyway is
/// refused, and nothing is served.
pub(crate) struct NoStore;

impl Store for NoStore {
    fn receive(&self, _meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        Err(Problem::new(Reason::Denied, "this side accepts no files"))
    }

    fn lookup(&self, _path: &str) -> Result<Vec<Outgoing>, Problem> {
        Err(Problem::new(
            Reason::Unsupported,
            "this side serves no files",
        ))
    }

    fn list(&self, _prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        Err(Problem::new(
            Reason::Unsupported,
            "this side serves no files",
        ))
    }
}
