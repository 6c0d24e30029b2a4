//! The async API end to end on 127.0.0.1: a `Server` and `Client`s in this process, files in
//! temporary directories. Cancellation tests stop the server's disk layer at a gate, so a
//! transfer is provably in the middle when its future is dropped.

use std::future::Future;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use async_io::Timer;
use ferry_adapter_smol::{
    Client, Config, Error, FsStore, ListEntry, Psk, ServeOptions, Server, ShutdownHandle, Store,
};
use ferry_disk::{Incoming, Outgoing, Source};
use futures_lite::FutureExt;
use proto::{FileHasher, FileMeta, HandshakeError, Problem, Reason, SessionError};
use smol::Task;

/// Run a test body; a hang fails the test instead of blocking the suite.
fn run<F: Future<Output = ()>>(body: F) {
    smol::block_on(body.or(async {
        Timer::after(Duration::from_secs(300)).await;
        panic!("the test hung");
    }));
}

/// Wait (polling) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        Timer::after(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for {what}");
}

/// Deterministic pseudo-random bytes.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every regular file under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn psk() -> Psk {
    Psk::from_key_bytes(&[9; 32])
}

/// A server on 127.0.0.1 serving `store`, running on smol's executor.
struct Running {
    addr: std::net::SocketAddr,
    stop: ShutdownHandle,
    task: Task<io::Result<()>>,
}

fn start(store: Arc<dyn Store>) -> Running {
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        store,
        &psk(),
        ServeOptions::default(),
    )
    .unwrap();
    Running {
        addr: server.local_addr().unwrap(),
        stop: server.shutdown_handle(),
        task: smol::spawn(server.run()),
    }
}

impl Running {
    async fn client(&self) -> Client {
        Client::connect(self.addr, &psk(), Config::default())
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.stop.shutdown();
        self.task.await.unwrap();
    }
}

fn fs_store(root: &Path) -> Arc<dyn Store> {
    Arc::new(FsStore::new(root).unwrap())
}

fn failed_with(r: Result<impl std::fmt::Debug, Error>, reason: Reason) {
    match r {
        Err(Error::Failed { problem, .. }) if problem.reason == reason => {}
        other => panic!("expected a {reason:?} failure, got {other:?}"),
    }
}

#[test]
fn round_trip_send_list_get() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let server = start(fs_store(&root));
        let client = server.client().await;

        let a = dir.path().join("a.bin");
        std::fs::write(&a, data(1, 300_000)).unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        let sent = client.send_file(&a, "sub/a.bin").await.unwrap();
        assert_eq!(sent.name, "sub/a.bin");
        assert_eq!(sent.bytes, 300_000);
        assert_eq!(sent.resumed_from, 0);
        assert!(!sent.up_to_date);
        assert_eq!(sent.blake3, proto::hash(&data(1, 300_000)));
        assert_eq!(
            std::fs::read(root.join("sub/a.bin")).unwrap(),
            data(1, 300_000)
        );
        let mode = std::fs::metadata(root.join("sub/a.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "mode kept");

        let listed = client.list("").await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|e| (e.path.as_str(), e.size))
                .collect::<Vec<_>>(),
            [("sub/a.bin", 300_000)]
        );

        let back = dir.path().join("back");
        let got = client.get("sub/a.bin", &back).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].blake3, sent.blake3);
        assert_eq!(
            std::fs::read(back.join("sub/a.bin")).unwrap(),
            data(1, 300_000)
        );
        // Nothing but the files themselves on either side.
        assert_eq!(tree(&root), ["sub/a.bin"]);
        assert_eq!(tree(&back), ["sub/a.bin"]);

        // The same content again is up to date; other content needs `overwrite`.
        assert!(client.send_file(&a, "sub/a.bin").await.unwrap().up_to_date);
        let b = dir.path().join("b.bin");
        std::fs::write(&b, data(2, 1000)).unwrap();
        failed_with(client.send_file(&b, "sub/a.bin").await, Reason::Exists);
        let replaced = client
            .clone()
            .overwrite(true)
            .send_file(&b, "sub/a.bin")
            .await;
        assert_eq!(replaced.unwrap().bytes, 1000);
        assert_eq!(
            std::fs::read(root.join("sub/a.bin")).unwrap(),
            data(2, 1000)
        );
        server.stop().await;
    });
}

#[test]
fn send_reader_of_unknown_size() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let server = start(fs_store(&root));
        let client = server.client().await;
        // Several chunks, from a blocking reader handed out as an async one in small pieces.
        let payload = data(3, (1 << 20) + 7);
        let reader = blocking::Unblock::with_capacity(1000, io::Cursor::new(payload.clone()));
        let r = client.send_reader("piped.bin", reader).await.unwrap();
        assert_eq!(r.bytes, payload.len() as u64);
        assert_eq!(r.blake3, proto::hash(&payload));
        assert_eq!(std::fs::read(root.join("piped.bin")).unwrap(), payload);
        // An empty stream is an empty file.
        let empty = futures_lite::io::Cursor::new(Vec::new());
        assert_eq!(client.send_reader("empty", empty).await.unwrap().bytes, 0);
        assert_eq!(std::fs::read(root.join("empty")).unwrap(), b"");
        // A failing reader fails that file, not the client.
        let broken = blocking::Unblock::new(Broken);
        let e = client.send_reader("broken", broken).await;
        failed_with(e, Reason::Io);
        assert!(!root.join("broken").exists());
        assert_eq!(tree(&root), ["empty", "piped.bin"]);
        server.stop().await;
    });
}

struct Broken;

impl Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("the source broke"))
    }
}

#[test]
fn list_and_get_by_prefix() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let server = start(fs_store(&root));
        let client = server.client().await;
        for (i, name) in ["photos/a.jpg", "photos/2024/b.jpg", "notes.txt"]
            .iter()
            .enumerate()
        {
            let f = dir.path().join(format!("f{i}"));
            std::fs::write(&f, data(i as u64, 10_000 * (i + 1))).unwrap();
            client.send_file(&f, name).await.unwrap();
        }
        let names = |l: Vec<ListEntry>| l.into_iter().map(|e| e.path).collect::<Vec<_>>();
        assert_eq!(
            names(client.list("").await.unwrap()),
            ["notes.txt", "photos/2024/b.jpg", "photos/a.jpg"]
        );
        assert_eq!(
            names(client.list("photos").await.unwrap()),
            ["photos/2024/b.jpg", "photos/a.jpg"]
        );
        assert!(client.list("nothing-here").await.unwrap().is_empty());
        failed_with(client.list("../up").await, Reason::BadName);

        let back = dir.path().join("back");
        let got = client.get("photos", &back).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(tree(&back), ["photos/2024/b.jpg", "photos/a.jpg"]);
        assert_eq!(
            std::fs::read(back.join("photos/a.jpg")).unwrap(),
            data(0, 10_000)
        );
        failed_with(client.get("missing", &back).await, Reason::NotFound);
        server.stop().await;
    });
}

#[test]
fn calls_run_concurrently() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let server = start(fs_store(&root));
        let client = server.client().await;
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, data(5, 2 << 20)).unwrap();
        std::fs::write(&b, data(6, 3 << 20)).unwrap();
        let (ra, rb) =
            futures_lite::future::zip(client.send_file(&a, "a"), client.send_file(&b, "b")).await;
        assert_eq!(ra.unwrap().bytes, 2 << 20);
        assert_eq!(rb.unwrap().bytes, 3 << 20);
        assert_eq!(std::fs::read(root.join("b")).unwrap(), data(6, 3 << 20));
        server.stop().await;
    });
}

#[test]
fn wrong_key_fails_at_connect() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let server = start(fs_store(&dir.path().join("root")));
        let other = Psk::from_key_bytes(&[1; 32]);
        match Client::connect(server.addr, &other, Config::default()).await {
            Err(Error::Session(SessionError::Handshake(HandshakeError::Refused))) => {}
            Err(e) => panic!("expected a refused handshake, got {e}"),
            Ok(_) => panic!("connected with another key"),
        }
        // Nothing listens on a port of a dropped listener.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            Client::connect(closed, &psk(), Config::default()).await,
            Err(Error::Io(_))
        ));
        // The server still serves the right key.
        assert!(server.client().await.list("").await.unwrap().is_empty());
        server.stop().await;
    });
}

/// No runtime at all: a server and a client polled by `futures_lite::future::block_on` on this
/// one thread (the server runs its connections inside its own future).
#[test]
fn runs_on_any_executor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        fs_store(&root),
        &psk(),
        ServeOptions::default(),
    )
    .unwrap();
    let (addr, stop) = (server.local_addr().unwrap(), server.shutdown_handle());
    let f = dir.path().join("f");
    std::fs::write(&f, data(4, 200_000)).unwrap();
    let client = async {
        let client = Client::connect(addr, &psk(), Config::default())
            .await
            .unwrap();
        let sent = client.send_file(&f, "f").await.unwrap();
        let listed = client.list("").await.unwrap();
        stop.shutdown();
        (sent, listed)
    };
    let (served, (sent, listed)) =
        futures_lite::future::block_on(futures_lite::future::zip(server.run(), client));
    served.unwrap();
    assert_eq!(sent.blake3, proto::hash(&data(4, 200_000)));
    assert_eq!(listed.len(), 1);
    assert_eq!(std::fs::read(root.join("f")).unwrap(), data(4, 200_000));
}

/// Dropping a `send_file` future mid-transfer: the server publishes nothing, keeps the partial,
/// and the next send resumes from it.
#[test]
fn dropped_send_publishes_nothing_and_resumes() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let gate = Gate::new(256 << 10);
        let server = start(Arc::new(GatedStore::new(&root, gate.clone())));
        let client = server.client().await;
        let big = dir.path().join("big.bin");
        std::fs::write(&big, data(7, 8 << 20)).unwrap();

        // The server's disk layer stops after 256 KiB: the send cannot finish, and is dropped.
        let cancelled = async {
            gate.reached().await;
            Err(Error::Io(io::Error::other("dropped by the test")))
        };
        let outcome = client.send_file(&big, "big.bin").or(cancelled).await;
        assert!(
            matches!(&outcome, Err(Error::Io(e)) if e.to_string() == "dropped by the test"),
            "{outcome:?}"
        );
        gate.open();
        assert_eq!(
            gate.ended().await,
            "suspend",
            "the partial is kept for a resume"
        );
        assert!(
            !root.join("big.bin").exists(),
            "a partial file was published"
        );
        assert!(root.join(".ferry-part.big.bin").exists());
        assert!(root.join(".ferry-info.big.bin").exists());

        let r = client.send_file(&big, "big.bin").await.unwrap();
        assert!(
            r.resumed_from >= 256 << 10,
            "resumed from {}",
            r.resumed_from
        );
        assert_eq!(r.blake3, proto::hash(&data(7, 8 << 20)));
        assert_eq!(
            std::fs::read(root.join("big.bin")).unwrap(),
            data(7, 8 << 20)
        );
        assert_eq!(tree(&root), ["big.bin"]);
        server.stop().await;
    });
}

/// Dropping a `get` future mid-transfer: nothing appears under the final name locally, the
/// partial is kept, and the next `get` completes.
#[test]
fn dropped_get_publishes_nothing() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("big.bin"), data(8, 8 << 20)).unwrap();
        // The server's reader stops after 3 MiB (what it read before in the same pump never
        // leaves: the gate holds the thread that would send it); drop the get once some of the
        // file is on disk here (a file this large is written in 1 MiB pieces by its writer
        // thread, so the first piece appears at 1 MiB).
        let gate = Gate::new(3 << 20);
        let server = start(Arc::new(GatedStore::new(&root, gate.clone())));
        let client = server.client().await;
        let dest = dir.path().join("dest");
        let partial = dest.join(".ferry-part.big.bin");

        let cancelled = async {
            until("a partial file with data", || {
                std::fs::metadata(&partial).is_ok_and(|m| m.len() >= 1 << 20)
            })
            .await;
            Err(Error::Io(io::Error::other("dropped by the test")))
        };
        let outcome = client.get("big.bin", &dest).or(cancelled).await;
        assert!(
            matches!(&outcome, Err(Error::Io(e)) if e.to_string() == "dropped by the test"),
            "{outcome:?}"
        );
        // The dropped call's agent keeps the partial (with its resume state) off the executor.
        until("the partial's resume state", || {
            dest.join(".ferry-info.big.bin").exists()
        })
        .await;
        assert!(
            !dest.join("big.bin").exists(),
            "a partial file was published"
        );

        gate.open();
        // The dropped call's agent may still hold its claim on the destination for a moment
        // (refused as busy); a new call goes through once it let go or went idle.
        let mut attempts = 0;
        let got = loop {
            match client.get("big.bin", &dest).await {
                Err(Error::Failed { problem, .. })
                    if problem.reason == Reason::Busy && attempts < 200 =>
                {
                    attempts += 1;
                    Timer::after(Duration::from_millis(50)).await;
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(got[0].blake3, proto::hash(&data(8, 8 << 20)));
        assert_eq!(
            std::fs::read(dest.join("big.bin")).unwrap(),
            data(8, 8 << 20)
        );
        assert_eq!(tree(&dest), ["big.bin"]);
        server.stop().await;
    });
}

/// A shutdown closes a session in the middle of a file: the client gets an error, the server's
/// `run` completes, the partial is kept and nothing is published.
#[test]
fn shutdown_closes_sessions_and_returns() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let gate = Gate::new(256 << 10);
        let server = start(Arc::new(GatedStore::new(&root, gate.clone())));
        let client = server.client().await;
        let big = dir.path().join("big.bin");
        std::fs::write(&big, data(9, 8 << 20)).unwrap();
        let send = smol::spawn(async move { client.send_file(&big, "big.bin").await });
        gate.reached().await;
        server.stop.shutdown();
        gate.open();
        // The session itself closed cleanly: the file in flight failed as cancelled.
        failed_with(send.await, Reason::Cancelled);
        server.task.await.unwrap();
        assert_eq!(gate.ended().await, "suspend");
        assert!(
            !root.join("big.bin").exists(),
            "a partial file was published"
        );
        // The listener is gone with the server.
        assert!(std::net::TcpStream::connect(server.addr).is_err());
    });
}

// ---- a store whose disk layer stops at a gate --------------------------------------------

/// Blocks the server's file writes and reads after `after` bytes until opened, and reports
/// how each incoming file ended.
#[derive(Clone)]
struct Gate {
    after: u64,
    open: Arc<(Mutex<bool>, Condvar)>,
    reached: async_channel::Sender<()>,
    reached_rx: async_channel::Receiver<()>,
    ended: async_channel::Sender<&'static str>,
    ended_rx: async_channel::Receiver<&'static str>,
}

impl Gate {
    fn new(after: u64) -> Gate {
        let (reached, reached_rx) = async_channel::unbounded();
        let (ended, ended_rx) = async_channel::unbounded();
        Gate {
            after,
            open: Arc::new((Mutex::new(false), Condvar::new())),
            reached,
            reached_rx,
            ended,
            ended_rx,
        }
    }

    /// Called by the disk layer (on a blocking-pool thread) once `pos` bytes went through.
    fn pass(&self, pos: u64) {
        if pos < self.after {
            return;
        }
        let (lock, cv) = &*self.open;
        let mut open = lock.lock().unwrap();
        if !*open {
            let _ = self.reached.try_send(());
        }
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        let (lock, cv) = &*self.open;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }

    async fn reached(&self) {
        self.reached_rx.recv().await.unwrap();
    }

    /// How the next incoming file ended: "commit", "suspend" or "discard".
    async fn ended(&self) -> &'static str {
        self.ended_rx.recv().await.unwrap()
    }
}

struct GatedStore {
    inner: FsStore,
    gate: Gate,
}

impl GatedStore {
    fn new(root: &Path, gate: Gate) -> Self {
        GatedStore {
            inner: FsStore::new(root).unwrap(),
            gate,
        }
    }
}

impl Store for GatedStore {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        Ok(Box::new(GatedIncoming {
            inner: self.inner.receive(meta)?,
            gate: self.gate.clone(),
        }))
    }

    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem> {
        let files = self.inner.lookup(path)?;
        Ok(files
            .into_iter()
            .map(|f| {
                let Source::Served { path, .. } = &f.source else {
                    return f;
                };
                let reader = GatedReader {
                    file: std::fs::File::open(path).unwrap(),
                    pos: 0,
                    gate: self.gate.clone(),
                };
                Outgoing {
                    meta: f.meta,
                    source: Source::Reader(Box::new(reader)),
                }
            })
            .collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        self.inner.list(prefix)
    }
}

struct GatedIncoming {
    inner: Box<dyn Incoming>,
    gate: Gate,
}

impl Incoming for GatedIncoming {
    fn prefix(&self) -> FileHasher {
        self.inner.prefix()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.gate.pass(offset);
        self.inner.write_at(offset, data)
    }

    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem> {
        let r = self.inner.commit(size);
        let _ = self.gate.ended.try_send("commit");
        r
    }

    fn suspend(self: Box<Self>) {
        self.inner.suspend();
        let _ = self.gate.ended.try_send("suspend");
    }

    fn discard(self: Box<Self>) {
        self.inner.discard();
        let _ = self.gate.ended.try_send("discard");
    }
}

struct GatedReader {
    file: std::fs::File,
    pos: u64,
    gate: Gate,
}

impl Read for GatedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.gate.pass(self.pos);
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[test]
fn send_record_of_any_serializable_value() {
    #[derive(serde::Serialize)]
    struct Reading<'a> {
        sensor: &'a str,
        celsius: f64,
        ok: bool,
    }
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("root")).unwrap();
        let log = store.records_path();
        let server = start(Arc::new(store));
        let client = server.client().await;
        let r = Reading {
            sensor: "t2",
            celsius: -3.5,
            ok: true,
        };
        for f in [proto::RecordFormat::Postcard, proto::RecordFormat::Json] {
            client.send_record(&r, f).await.unwrap();
        }
        // Not an object: refused before anything is sent.
        let err = client
            .send_record(&"just a string", proto::RecordFormat::Json)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Record(_)), "{err}");
        let text = std::fs::read_to_string(&log).unwrap();
        let want = r#"{"sensor":"t2","celsius":-3.5,"ok":true}"#;
        assert_eq!(text, format!("{want}\n{want}\n"));
        server.stop().await;
    });
}
