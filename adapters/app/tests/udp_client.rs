//! A datagram client whose handshake gets no answer ends with a recognisable error, within
//! its handshake timeout (silence) or about [`REFUSED_FOR`] (port unreachable), and its agent
//! is left unfinished so the caller may retry with it.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_app::agent::{Agent, Job, LogObserver};
use ferry_app::udp::socket::REFUSED_FOR;
use ferry_app::udp::{is_no_answer, run_client_blocking};
use ferry_disk::{Outgoing, Source, StdoutStore};
use proto::dgram::TransportConfig;
use proto::{Config, FileMeta, Psk};

fn agent() -> Agent {
    let file = Outgoing {
        meta: FileMeta::new("a.txt", Some(3)),
        source: Source::Reader(Box::new(&b"abc"[..])),
    };
    Agent::client(
        Arc::new(StdoutStore::new()),
        Box::new(LogObserver),
        Job::Send(vec![file]),
    )
}

fn config(timeout: Duration) -> Config {
    let mut c = Config::default();
    c.handshake_timeout = timeout;
    c
}

#[test]
fn silence_is_no_answer_within_the_handshake_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut agent = agent();
    let started = Instant::now();
    let timeout = Duration::from_millis(600);
    let r = run_client_blocking(
        silent.local_addr().unwrap(),
        &config(timeout),
        &TransportConfig::default(),
        &Psk::from_key_bytes(&[1; 32]),
        &mut agent,
    );
    let took = started.elapsed();
    let e = r.expect_err("nobody answered");
    assert_eq!(is_no_answer(&e), Some(false), "{e}");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        agent.failures(),
        0,
        "the agent was finished: nothing to retry with"
    );
    // The client did knock.
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(silent.recv(&mut [0u8; 2048]).is_ok());
}

#[test]
fn an_unreachable_port_is_a_refusal_soon() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut agent = agent();
    let started = Instant::now();
    let r = run_client_blocking(
        port,
        &config(Duration::from_secs(10)),
        &TransportConfig::default(),
        &Psk::from_key_bytes(&[1; 32]),
        &mut agent,
    );
    let took = started.elapsed();
    let e = r.expect_err("nothing listens there");
    assert_eq!(is_no_answer(&e), Some(true), "{e}");
    assert!(
        took >= REFUSED_FOR && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(agent.failures(), 0);
}
