//! One test body every adapter's UDP entry points run (included with `#[path]` by
//! `adapters/{std,mio,smol}/tests/udp.rs`; not a test target of its own): a server on
//! 127.0.0.1 that first hears garbage, then files in, then the same files back out.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use ferry_app::agent::{Agent, Job, LogObserver};
use ferry_app::host::RunError;
use ferry_disk::{FsStore, Outgoing, Store};
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

/// An adapter's `serve_udp`, run on a thread of its own until the test ends.
pub(crate) type Serve = fn(UdpSocket, Psk, Arc<dyn Store>);
/// An adapter's `run_udp_client`.
pub(crate) type Client =
    fn(SocketAddr, &Config, &TransportConfig, &Psk, &mut Agent) -> Result<(), RunError>;

/// Garbage (short, long, ferry-looking headers) changes nothing; five 200 KB files go in
/// under `d/`, byte-identical, and come back out with `get d`.
pub(crate) fn files_in_and_out_with_garbage_around(serve: Serve, client: Client) {
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let psk = Psk::from_key_bytes(&[4; 32]);
    let store: Arc<dyn Store> = Arc::new(FsStore::new(root.path()).unwrap());
    let server_psk = psk.clone();
    std::thread::spawn(move || serve(sock, server_psk, store));

    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, len) in [1usize, 13, 40, 1200, 1452].into_iter().enumerate() {
        let mut d = vec![i as u8; len];
        d[0] = [0x40, 0xC0, 0x00, 0xC0, 0x40][i];
        junk.send_to(&d, addr).unwrap();
    }

    let t = TransportConfig::default();
    let mut files = Vec::new();
    for i in 0..5u8 {
        let data: Vec<u8> = (0..200_000u32).map(|j| (j as u8) ^ i).collect();
        let p = src.path().join(format!("f{i}"));
        std::fs::write(&p, &data).unwrap();
        files.push((p, data));
    }
    let out = Arc::new(FsStore::new(src.path()).unwrap());
    let offers = files
        .iter()
        .enumerate()
        .map(|(i, (p, _))| Outgoing::from_file(p.clone(), &format!("d/f{i}"), false).unwrap())
        .collect();
    let mut agent = Agent::client(out, Box::new(LogObserver), Job::Send(offers));
    client(addr, &Config::default(), &t, &psk, &mut agent).unwrap();
    assert_eq!(agent.failures(), 0);
    for (i, (_, data)) in files.iter().enumerate() {
        assert_eq!(
            &std::fs::read(root.path().join(format!("d/f{i}"))).unwrap(),
            data
        );
    }
    let back = tempfile::tempdir().unwrap();
    let job = Job::Get {
        names: vec!["d".into()],
        overwrite: false,
    };
    let store = Arc::new(FsStore::new(back.path()).unwrap());
    let mut agent = Agent::client(store, Box::new(LogObserver), job);
    client(addr, &Config::default(), &t, &psk, &mut agent).unwrap();
    assert_eq!(agent.failures(), 0);
    for (i, (_, data)) in files.iter().enumerate() {
        assert_eq!(
            &std::fs::read(back.path().join(format!("d/f{i}"))).unwrap(),
            data
        );
    }
}
