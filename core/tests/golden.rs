//! A golden handshake transcript from fixed seeds: the exact bytes of the preamble, Noise
//! message 1 and message 2 (with their hello payloads), and the first client record. Any change
//! to the wire format, the labels or the key schedule changes these bytes; an independent
//! implementation can check itself against them (see docs/PROTOCOL.md, "Test vectors").

use ferry_core::{Config, Instant, MAX_RECORD, Psk, Session};

const CLIENT_FIRST: &str = include_str!("golden/client_first.hex");
const SERVER_FIRST: &str = include_str!("golden/server_first.hex");
const CLIENT_START: &str = include_str!("golden/client_start.hex");

fn transcript() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let psk = Psk::from_key_bytes(&[0x07; 32]);
    let now = Instant::ZERO;
    let mut server_cfg = Config::default();
    server_cfg.server_id = [0x5e; 16];
    let mut client = Session::client(&Config::default(), &psk, [0x01; 32], now);
    let mut server = Session::server(&server_cfg, &psk, [0x02; 32], now);
    let mut out = vec![0u8; MAX_RECORD];
    let n = client.poll_transmit(now, &mut out).unwrap();
    let mut c1 = out[..n].to_vec();
    let hello = c1.clone();
    assert_eq!(server.handle_input(now, &mut c1).unwrap(), n);
    let n = server.poll_transmit(now, &mut out).unwrap();
    let mut s1 = out[..n].to_vec();
    let reply = s1.clone();
    assert_eq!(client.handle_input(now, &mut s1).unwrap(), n);
    let n = client.poll_transmit(now, &mut out).unwrap();
    let start = out[..n].to_vec();
    let mut s = start.clone();
    assert_eq!(server.handle_input(now, &mut s).unwrap(), n);
    assert!(server.is_connected() && client.is_connected());
    (hello, reply, start)
}

#[test]
fn handshake_transcript_is_stable() {
    let (hello, reply, start) = transcript();
    if std::env::var_os("FERRY_BLESS").is_some() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
        std::fs::write(format!("{dir}/client_first.hex"), hex::encode(&hello)).unwrap();
        std::fs::write(format!("{dir}/server_first.hex"), hex::encode(&reply)).unwrap();
        std::fs::write(format!("{dir}/client_start.hex"), hex::encode(&start)).unwrap();
        return;
    }
    assert_eq!(hex::encode(&hello), CLIENT_FIRST.trim());
    assert_eq!(hex::encode(&reply), SERVER_FIRST.trim());
    assert_eq!(hex::encode(&start), CLIENT_START.trim());
    // Shapes: preamble(8) + len(2) + e(32) + hello(27) + tag(16); len(2) + e(32) + hello(43) + tag(16);
    // one record: header(4) + Start frame(4) + tag(16).
    assert_eq!(&hello[..8], b"FRY\x01\x01\x01\x00\x00");
    assert_eq!((hello.len(), reply.len(), start.len()), (85, 93, 24));
}
