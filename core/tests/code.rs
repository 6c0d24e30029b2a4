//! Mode CODE end to end in memory: SPAKE2 over the code, then the NNpsk0 handshake with its
//! result. A right code transfers; a wrong code, a tampered SPAKE2 message or a code against a
//! key fails on both sides, and the server tells the client the code is burned.

use ferry_core::testing::{LinkConfig, MemApp, Pair, START, test_psk};
use ferry_core::{Code, Config, Event, HandshakeError, Psk, Session, SessionError};

const CODE: &str = "7-acid-acorn-acre-aged";

fn code(s: &str) -> Psk {
    Code::parse(s).unwrap().psk()
}

/// Run the handshake of a client and a server by hand, `tamper` seeing every client flight.
/// Returns both sessions' first errors.
fn handshake(
    client_psk: &Psk,
    server_psk: &Psk,
    mut tamper: impl FnMut(usize, &mut Vec<u8>),
) -> (Option<SessionError>, Option<SessionError>, Vec<Vec<u8>>) {
    let cfg = Config::default();
    let mut c = Session::client(&cfg, client_psk, [1; 32], START);
    let mut s = Session::server(&cfg, server_psk, [2; 32], START);
    let (mut ce, mut se) = (None, None);
    let mut flights = Vec::new();
    let mut buf = vec![0u8; 1 << 17];
    for round in 0..4 {
        let mut wire = Vec::new();
        loop {
            let n = c.poll_transmit(START, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            wire.extend_from_slice(&buf[..n]);
        }
        tamper(round, &mut wire);
        flights.push(wire.clone());
        if !wire.is_empty() && se.is_none() {
            se = s.handle_input(START, &mut wire).err();
        }
        let mut back = Vec::new();
        loop {
            let n = s.poll_transmit(START, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        if !back.is_empty() && ce.is_none() {
            ce = c.handle_input(START, &mut back).err();
        }
    }
    (ce, se, flights)
}

#[test]
fn the_right_code_connects_and_the_words_never_travel() {
    let (ce, se, flights) = handshake(&code(CODE), &code("7 ACID acorn-acre aged"), |_, _| {});
    assert_eq!((ce, se), (None, None));
    // Flight 1: the preamble in mode CODE (0x02), then the 33-byte SPAKE2 message 'A'.
    let f1 = &flights[0];
    assert_eq!(&f1[..8], b"FRY\x01\x02\x01\x00\x00");
    assert_eq!(&f1[8..10], &[0, 33]);
    assert_eq!(f1[10], b'A');
    assert_eq!(f1.len(), 8 + 2 + 33);
    let all: Vec<u8> = flights.concat();
    for word in ["acid", "acorn", "acre", "aged"] {
        assert!(!all.windows(word.len()).any(|w| w == word.as_bytes()));
    }
}

#[test]
fn a_wrong_code_fails_on_both_sides_as_a_burned_code() {
    let (ce, se, _) = handshake(&code(CODE), &code("7-acid-acorn-acre-ajar"), |_, _| {});
    let burned = Some(SessionError::Handshake(HandshakeError::WrongCode));
    assert_eq!(se, burned, "the server notices at message 1");
    assert_eq!(ce, burned, "and tells the client");
    assert!(
        SessionError::Handshake(HandshakeError::WrongCode)
            .to_string()
            .contains(
                "wrong code, or someone tried to guess it: the code is now burned; start again"
            )
    );
}

#[test]
fn another_nameplate_is_a_wrong_code() {
    let (ce, se, _) = handshake(&code(CODE), &code("8-acid-acorn-acre-aged"), |_, _| {});
    let burned = Some(SessionError::Handshake(HandshakeError::WrongCode));
    assert_eq!((ce, se), (burned, burned));
}

#[test]
fn a_changed_spake2_message_is_caught() {
    // Flip one bit of spake_A on the way: either not a point (refused at once) or a different
    // point, which gives different keys and so a burned code. Never a connection.
    for bit in [0usize, 7, 100, 200, 255] {
        let (ce, se, _) = handshake(&code(CODE), &code(CODE), |round, wire| {
            if round == 0 {
                wire[11 + bit / 8] ^= 1 << (bit % 8);
            }
        });
        assert!(se.is_some(), "bit {bit}: the server must fail");
        let burned = Some(SessionError::Handshake(HandshakeError::WrongCode));
        if se == burned {
            assert_eq!(ce, burned, "bit {bit}");
        }
    }
}

#[test]
fn a_code_never_completes_against_a_key_file() {
    let (_, se, _) = handshake(&code(CODE), &test_psk(), |_, _| {});
    assert_eq!(se, Some(HandshakeError::UnsupportedMode(2).into()));
    let (_, se, _) = handshake(&test_psk(), &code(CODE), |_, _| {});
    assert_eq!(se, Some(HandshakeError::UnsupportedMode(1).into()));
}

#[test]
fn files_move_in_code_mode() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let mut app = MemApp::new().with_file("a.bin", data.clone());
    app.to_send.push_back("a.bin".into());
    app.close_when_done = true;
    for seed in 0..4 {
        let link = LinkConfig {
            max_segment: 1 + seed as usize * 7,
            ..LinkConfig::default()
        };
        let cfg = Config::default();
        let mut pair = Pair::with_psks(
            &cfg,
            &cfg,
            &code(CODE),
            &code(CODE),
            app.clone_store(),
            MemApp::new(),
            link,
            seed,
        );
        assert!(pair.drive(), "seed {seed}");
        assert_eq!(pair.server.app.files.get("a.bin"), Some(&data));
        assert!(
            pair.client
                .app
                .log
                .contains(&Event::Closed { result: Ok(()) })
        );
    }
}
