//! A lossy UDP relay between one client and a server on 127.0.0.1, for tests: datagrams are
//! dropped, duplicated, held back behind the next one (reordered) or get one bit flipped, by a
//! seeded pattern (the same seed, the same decisions), and the client's datagrams can be held
//! to a byte rate.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What happens to datagrams, in per-mille of those passing in each direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub drop: u32,
    pub dup: u32,
    pub reorder: u32,
    pub flip: u32,
    /// Bytes per second of client datagrams forwarded (0: no limit).
    pub rate: u64,
    pub seed: u64,
}

/// Counts of what the relay did (both directions).
#[derive(Debug, Default)]
pub struct Counts {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub flipped: AtomicU64,
}

pub struct Relay {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Relay {
    /// Relay datagrams between the first client that sends to [`Relay::addr`] and `server`.
    pub fn start(server: SocketAddr, faults: Faults) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(server).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        let up = {
            let (stop, counts, client) = (stop.clone(), counts.clone(), client.clone());
            thread::spawn(move || {
                let mut faulty = Faulty::new(faults, faults.seed, counts);
                let mut pace = Pace::new(faults.rate);
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        faulty.flush(|d| {
                            let _ = back.send(d);
                        });
                        continue;
                    };
                    client.lock().unwrap().get_or_insert(from);
                    pace.wait(n);
                    faulty.pass(&buf[..n], |d| {
                        let _ = back.send(d);
                    });
                }
            })
        };
        let down = {
            let (stop, counts) = (stop.clone(), counts.clone());
            thread::spawn(move || {
                let mut faulty = Faulty::new(faults, faults.seed ^ 0x5eed, counts);
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Some(to) = *client.lock().unwrap() else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let Ok(n) = back2.recv(&mut buf) else {
                        // A timeout, or ICMP from a server that is not there (yet).
                        faulty.flush(|d| {
                            let _ = front2.send_to(d, to);
                        });
                        continue;
                    };
                    faulty.pass(&buf[..n], |d| {
                        let _ = front2.send_to(d, to);
                    });
                }
            })
        };
        Relay {
            addr,
            counts,
            stop,
            threads: vec![up, down],
        }
    }

    pub fn to(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Keeps forwarded bytes to a rate by sleeping.
struct Pace {
    rate: u64,
    next: Instant,
}

impl Pace {
    fn new(rate: u64) -> Pace {
        Pace {
            rate,
            next: Instant::now(),
        }
    }

    fn wait(&mut self, bytes: usize) {
        if self.rate == 0 {
            return;
        }
        let now = Instant::now();
        if self.next > now {
            thread::sleep(self.next - now);
        } else {
            self.next = now;
        }
        self.next += Duration::from_secs_f64(bytes as f64 / self.rate as f64);
    }
}

/// One direction's faults.
struct Faulty {
    faults: Faults,
    rng: u64,
    held: Option<Vec<u8>>,
    counts: Arc<Counts>,
}

impl Faulty {
    fn new(faults: Faults, seed: u64, counts: Arc<Counts>) -> Faulty {
        Faulty {
            faults,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            held: None,
            counts,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Does `per_mille` happen this time?
    fn chance(&mut self, per_mille: u32) -> bool {
        self.next() % 1000 < u64::from(per_mille)
    }

    /// Nothing arrived for a while: a datagram held back goes out now.
    fn flush(&mut self, mut send: impl FnMut(&[u8])) {
        if let Some(h) = self.held.take() {
            send(&h);
        }
    }

    /// Decide the fate of one datagram; `send` puts datagrams on the wire.
    fn pass(&mut self, d: &[u8], mut send: impl FnMut(&[u8])) {
        let f = self.faults;
        if self.chance(f.drop) {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut d = d.to_vec();
        if !d.is_empty() && self.chance(f.flip) {
            let bit = (self.next() % (d.len() as u64 * 8)) as usize;
            d[bit / 8] ^= 1 << (bit % 8);
            self.counts.flipped.fetch_add(1, Ordering::Relaxed);
        }
        if self.held.is_none() && self.chance(f.reorder) {
            // Goes out after the next datagram.
            self.counts.reordered.fetch_add(1, Ordering::Relaxed);
            self.held = Some(d);
            return;
        }
        send(&d);
        self.counts.forwarded.fetch_add(1, Ordering::Relaxed);
        if self.chance(f.dup) {
            send(&d);
            self.counts.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = self.held.take() {
            send(&h);
        }
    }
}
