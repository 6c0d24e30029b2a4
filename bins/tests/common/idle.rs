//! Connections that hold a server's resources without doing anything, and the server's RSS.

use std::net::{SocketAddr, TcpStream};

use proto::{Config, Psk};

/// A field of `/proc/PID/status` in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A connection past the handshake that then says nothing: the client's preamble, message 1
/// and `Start`, written by hand; the returned socket and session keep it open.
pub fn authenticated_idle(addr: SocketAddr, psk: &Psk, i: u64) -> (TcpStream, proto::Session) {
    use std::io::{Read, Write};
    let clock = ferry_app::host::Clock::new();
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    let mut s = proto::Session::client(&Config::default(), psk, seed, clock.now());
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut out = vec![0u8; proto::MAX_RECORD];
    let flush = |s: &mut proto::Session, stream: &mut TcpStream, out: &mut [u8]| loop {
        let n = s.poll_transmit(clock.now(), out).unwrap();
        if n == 0 {
            break;
        }
        stream.write_all(&out[..n]).unwrap();
    };
    flush(&mut s, &mut stream, &mut out);
    let mut msg2 = [0u8; 2 + 91];
    stream.read_exact(&mut msg2).unwrap();
    assert_eq!(s.handle_input(clock.now(), &mut msg2).unwrap(), msg2.len());
    flush(&mut s, &mut stream, &mut out);
    (stream, s)
}
