//! The mio datagram server on 127.0.0.1: files in and out, and garbage that changes nothing.

use std::net::UdpSocket;
use std::sync::Arc;

use ferry_adapter_mio::{ServeOptions, serve_udp};
use ferry_app::agent::{Agent, Job, LogObserver};
use ferry_app::udp::run_client_blocking;
use ferry_disk::{FsStore, Outgoing};
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

#[test]
fn files_in_and_out_with_garbage_around() {
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let psk = Psk::from_key_bytes(&[4; 32]);
    let store = Arc::new(FsStore::new(root.path()).unwrap());
    let server_psk = psk.clone();
    std::thread::spawn(move || serve_udp(sock, server_psk, store, ServeOptions::default()));

    // Garbage first: short, long, ferry-looking headers.
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
    run_client_blocking(addr, &Config::default(), &t, &psk, &mut agent).unwrap();
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
    run_client_blocking(addr, &Config::default(), &t, &psk, &mut agent).unwrap();
    assert_eq!(std::fs::read(back.path().join("d/f3")).unwrap(), files[3].1);
}
