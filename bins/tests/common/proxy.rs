//! A TCP proxy between a client and a server for tests: rate-limits the client's bytes, can cut
//! every connection at once (a link that goes down) or freeze them (a host that vanishes: no
//! byte and no FIN any more, the sockets stay open until the proxy is dropped).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const RUNNING: u8 = 0;
const FROZEN: u8 = 1;
const CUT: u8 = 2;
const STOPPED: u8 = 3;

/// Bytes the proxy moves per step; it sleeps between steps to keep to its rate.
const STEP: usize = 4096;

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Forward connections to `upstream`, the client's bytes at most `rate` bytes per second.
    pub fn start(upstream: SocketAddr, rate: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(AtomicU8::new(RUNNING));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let pause = Duration::from_secs_f64(STEP as f64 / rate as f64);
        let (st, cs) = (state.clone(), conns.clone());
        thread::spawn(move || {
            while st.load(Ordering::SeqCst) != STOPPED {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        for s in [&client, &server] {
                            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                            cs.lock().unwrap().push(s.try_clone().unwrap());
                        }
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let (st1, st2) = (st.clone(), st.clone());
                        thread::spawn(move || pump(client, server, Some(pause), &st1));
                        thread::spawn(move || pump(s2, c2, None, &st2));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        Proxy { addr, state, conns }
    }

    pub fn to(&self) -> String {
        self.addr.to_string()
    }

    /// Stop forwarding without closing anything (no FIN reaches either side).
    pub fn freeze(&self) {
        self.state.store(FROZEN, Ordering::SeqCst);
    }

    /// Close every connection now, dropping what was not forwarded yet.
    pub fn cut(&self) {
        self.state.store(CUT, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.store(STOPPED, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Move bytes from `from` to `to` (at most [`STEP`] per `pause`) until either side ends, the
/// proxy is cut or stopped; while frozen, move nothing and keep both open.
fn pump(mut from: TcpStream, mut to: TcpStream, pause: Option<Duration>, state: &AtomicU8) {
    let mut buf = [0u8; STEP];
    loop {
        match state.load(Ordering::SeqCst) {
            RUNNING => {}
            FROZEN => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            _ => return,
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        // Frozen (or cut) while reading: these bytes never arrive.
        if state.load(Ordering::SeqCst) != RUNNING || to.write_all(&buf[..n]).is_err() {
            continue;
        }
        if let Some(p) = pause {
            thread::sleep(p);
        }
    }
    // One side ended: end the other (while running; a frozen link says nothing).
    if state.load(Ordering::SeqCst) == RUNNING {
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    }
}
