//! The handshake modes end to end over the in-memory pair: PINNED (Noise XX) and PINNED+PSK
//! (Noise XXpsk3) carry a transfer and expose each side's static key; a client asking for
//! another mode than the server's hears which one the server requires; XXpsk3 needs both
//! the identity and the key.

use ferry_core::testing::{LinkConfig, MemApp, Outcome, Pair, test_psk};
use ferry_core::{Config, HandshakeError, Identity, MODE_REFUSAL, Mode, Psk, SessionError};

fn cfg(mode: Mode, id: Option<u8>) -> Config {
    let mut c = Config::default();
    c.mode = mode;
    c.identity = id.map(|b| Identity::from_secret_bytes([b; 32]));
    c
}

fn sender() -> MemApp {
    let mut app = MemApp::new().with_file("f", vec![7; 100_000]);
    app.to_send.push_back("f".into());
    app.close_when_done = true;
    app
}

fn pair(client: &Config, server: &Config, client_psk: &Psk) -> Pair {
    Pair::with_psks(
        client,
        server,
        client_psk,
        &test_psk(),
        sender(),
        MemApp::new(),
        LinkConfig::default(),
        7,
    )
}

#[test]
fn pinned_modes_transfer_and_expose_static_keys() {
    for mode in [Mode::Pinned, Mode::PinnedPsk] {
        let mut p = pair(&cfg(mode, Some(1)), &cfg(mode, Some(2)), &test_psk());
        assert!(p.drive(), "{mode:?}: did not finish");
        assert_eq!(p.client.error, None, "{mode:?}");
        assert_eq!(p.server.error, None, "{mode:?}");
        assert_eq!(p.client.app.outcomes.get("f"), Some(&Outcome::Delivered));
        assert_eq!(p.server.app.files.get("f"), Some(&vec![7; 100_000]));
        let (c, s) = (
            Identity::from_secret_bytes([1; 32]),
            Identity::from_secret_bytes([2; 32]),
        );
        assert_eq!(p.client.session.peer_static(), Some(s.public_key()));
        assert_eq!(p.server.session.peer_static(), Some(c.public_key()));
    }
}

#[test]
fn psk_mode_has_no_static_key() {
    let mut p = pair(&cfg(Mode::Psk, None), &cfg(Mode::Psk, None), &test_psk());
    assert!(p.drive());
    assert_eq!(p.client.session.peer_static(), None);
    assert_eq!(p.server.session.peer_static(), None);
}

/// A client without an identity still completes XX with an anonymous key from its seed
/// (distinct per seed, so an allow list never matches it).
#[test]
fn anonymous_client_key_comes_from_the_seed() {
    let mut p = pair(
        &cfg(Mode::Pinned, None),
        &cfg(Mode::Pinned, Some(2)),
        &test_psk(),
    );
    assert!(p.drive());
    let key = p.server.session.peer_static().expect("a static key");
    assert_ne!(key, Identity::from_secret_bytes([2; 32]).public_key());
}

/// Every mismatch is refused with the server's mode, never left hanging: an old PSK client
/// against a pinned server, a pinned client against a PSK server, and the two pinned modes.
#[test]
fn mismatched_mode_is_refused_with_the_required_mode() {
    let cases = [
        (Mode::Psk, Mode::Pinned, 0x03),
        (Mode::Psk, Mode::PinnedPsk, 0x04),
        (Mode::Pinned, Mode::Psk, 0x01),
        (Mode::PinnedPsk, Mode::Pinned, 0x03),
    ];
    for (client, server, byte) in cases {
        let mut p = pair(&cfg(client, Some(1)), &cfg(server, Some(2)), &test_psk());
        p.drive_bounded(1000);
        assert_eq!(
            p.client.session.error(),
            Some(SessionError::Handshake(HandshakeError::ModeRequired(byte))),
            "{client:?} -> {server:?}"
        );
        let msg = p.client.session.error().unwrap().to_string();
        assert!(msg.contains("this server requires"), "{msg}");
        assert!(p.server.session.error().is_some());
    }
    assert_eq!(&MODE_REFUSAL, b"\0\0mode");
}

#[test]
fn pinned_psk_needs_the_key() {
    let wrong = Psk::from_key_bytes(&[9; 32]);
    let mut p = pair(
        &cfg(Mode::PinnedPsk, Some(1)),
        &cfg(Mode::PinnedPsk, Some(2)),
        &wrong,
    );
    p.drive_bounded(1000);
    assert_eq!(p.server.session.error(), Some(SessionError::Authentication));
    assert_eq!(p.server.session.peer_static(), None);
    assert!(p.server.app.files.is_empty());
}
