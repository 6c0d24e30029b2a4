//! SPAKE2 over a short code (mode CODE, security.md §5.3), on RustCrypto's `spake2` crate
//! (`no_std` + `alloc`; the scalar comes from the caller's RNG, which the handshake seeds from
//! the session seed, so no OS randomness is involved).
//!
//! The client is side A, the server side B; `idA = "ferry/v1 client"`,
//! `idB = "ferry/v1 server " || nameplate`. The 32-byte SPAKE2 key `K` is never used directly:
//!
//! ```text
//! transcript = SHA-256(spake_A || spake_B)
//! psk        = HKDF-SHA256(salt = transcript, ikm = K, info = "ferry/v1 pake psk", 32)
//! ```
//!
//! `psk` becomes the PSK of the ordinary `NNpsk0` handshake and `transcript` is appended to its
//! prologue, so a wrong code (or a changed SPAKE2 message) fails the first Noise message's tag.
//! SPAKE2 itself has no key confirmation: that is Noise message 1.

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use super::kdf;

/// Length of a SPAKE2 message on the wire: the side byte (`'A'` or `'B'`), then the
/// compressed Edwards point.
pub(crate) const MSG_LEN: usize = 33;
/// SPAKE2 identity of the client (side A).
const ID_A: &[u8] = b"ferry/v1 client";
/// SPAKE2 identity of the server (side B), followed by the code's nameplate.
const ID_B_PREFIX: &[u8] = b"ferry/v1 server ";
/// HKDF info for the PSK.
const PSK_INFO: &[u8] = b"ferry/v1 pake psk";

/// The peer's SPAKE2 message is malformed (wrong length, wrong side, not a point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PakeError;

/// What both sides derive from a finished exchange.
pub(crate) struct PakeOutput {
    /// The Noise PSK.
    pub(crate) psk: Zeroizing<[u8; 32]>,
    /// SHA-256 of both SPAKE2 messages, A's first; bound into the Noise prologue.
    pub(crate) transcript: [u8; 32],
}

/// One side of a SPAKE2 exchange in progress.
pub(crate) struct Pake {
    state: Spake2<Ed25519Group>,
    msg: [u8; MSG_LEN],
    client: bool,
}

impl Pake {
    /// Start as the client (side A) or the server (side B), drawing the secret scalar from
    /// `rng`.
    pub(crate) fn start(
        client: bool,
        nameplate: &[u8],
        password: &[u8],
        rng: impl CryptoRng,
    ) -> Self {
        let mut id_b = alloc::vec::Vec::with_capacity(ID_B_PREFIX.len() + nameplate.len());
        id_b.extend_from_slice(ID_B_PREFIX);
        id_b.extend_from_slice(nameplate);
        let pw = Password::new(password);
        let (a, b) = (Identity::new(ID_A), Identity::new(&id_b));
        let (state, out) = if client {
            Spake2::<Ed25519Group>::start_a_with_rng(&pw, &a, &b, rng)
        } else {
            Spake2::<Ed25519Group>::start_b_with_rng(&pw, &a, &b, rng)
        };
        let mut msg = [0u8; MSG_LEN];
        msg.copy_from_slice(&out);
        Pake { state, msg, client }
    }

    /// Our SPAKE2 message.
    pub(crate) fn message(&self) -> &[u8; MSG_LEN] {
        &self.msg
    }

    /// Finish with the peer's message: the PSK and the transcript hash.
    pub(crate) fn finish(self, peer: &[u8]) -> Result<PakeOutput, PakeError> {
        let key = Zeroizing::new(self.state.finish(peer).map_err(|_| PakeError)?);
        let (a, b) = if self.client {
            (&self.msg[..], peer)
        } else {
            (peer, &self.msg[..])
        };
        let mut h = Sha256::new();
        h.update(a);
        h.update(b);
        let transcript: [u8; 32] = h.finalize().into();
        let mut psk = Zeroizing::new([0u8; 32]);
        kdf::extract_expand(&transcript, &key[..], &[PSK_INFO], &mut psk[..]);
        Ok(PakeOutput { psk, transcript })
    }
}

#[cfg(test)]
mod tests {
    use core::convert::Infallible;

    use rand_chacha::ChaCha20Rng;
    use rand_core::{SeedableRng, TryCryptoRng, TryRng};

    use super::*;

    fn h(s: &str) -> alloc::vec::Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// An "RNG" that hands out fixed bytes (then zeros): `spake2` draws its scalar as 64 bytes
    /// reduced mod ℓ, so a scalar's 32 little-endian bytes followed by zeros reproduce it.
    struct Fixed(alloc::vec::Vec<u8>);
    impl TryRng for Fixed {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            let mut b = [0; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            let mut b = [0; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            for b in dst {
                *b = if self.0.is_empty() {
                    0
                } else {
                    self.0.remove(0)
                };
            }
            Ok(())
        }
    }
    impl TryCryptoRng for Fixed {}

    /// The python-spake2 vector (the implementation magic-wormhole uses), as reproduced by the
    /// `spake2` crate's own `test_asymmetric`: fixed scalars for A and B, password "password",
    /// identities "idA" / "idB". Checks that the SPAKE2 we link is wire-compatible with it.
    #[test]
    fn python_spake2_vector() {
        let pw = Password::new(b"password");
        let (ida, idb) = (Identity::new(b"idA"), Identity::new(b"idB"));
        let xa = Fixed(h(
            "25184061a70b1142f1a9f043a52cf7033dc308b5a0a32e42b003ecd59c2ac605",
        ));
        let xb = Fixed(h(
            "9fb5e845084e0cbe27ac8b4d3af139b33f3f8a047d4234e2d45d33c5cd367b0f",
        ));
        let (sa, ma) = Spake2::<Ed25519Group>::start_a_with_rng(&pw, &ida, &idb, xa);
        let (sb, mb) = Spake2::<Ed25519Group>::start_b_with_rng(&pw, &ida, &idb, xb);
        assert_eq!(
            ma,
            h("416fc960df73c9cf8ed7198b0c9534e2e96a5984bfc5edc023fd24dacf371f2af9")
        );
        assert_eq!(
            mb,
            h("42354e97b88406922b1df4bea1d7870f17aed3dba7c720b313edae315b00959309")
        );
        let key = h("712295de7219c675ddd31942184aa26e0a957cf216bc230d165b215047b520c1");
        assert_eq!(sa.finish(&mb).unwrap(), key);
        assert_eq!(sb.finish(&ma).unwrap(), key);
    }

    fn pair(client_pw: &[u8], server_pw: &[u8]) -> (PakeOutput, PakeOutput) {
        let a = Pake::start(true, b"7", client_pw, ChaCha20Rng::from_seed([1; 32]));
        let b = Pake::start(false, b"7", server_pw, ChaCha20Rng::from_seed([2; 32]));
        let (ma, mb) = (*a.message(), *b.message());
        (a.finish(&mb).unwrap(), b.finish(&ma).unwrap())
    }

    /// ferry's own known answer: fixed seeds, nameplate "7", password "tulip-orbit-velvet-acid".
    /// Pins the identities, the transcript order and the PSK derivation.
    #[test]
    fn ferry_code_vector() {
        let a = Pake::start(
            true,
            b"7",
            b"tulip-orbit-velvet-acid",
            ChaCha20Rng::from_seed([1; 32]),
        );
        let b = Pake::start(
            false,
            b"7",
            b"tulip-orbit-velvet-acid",
            ChaCha20Rng::from_seed([2; 32]),
        );
        assert_eq!(a.message()[0], b'A');
        assert_eq!(b.message()[0], b'B');
        let (ma, mb) = (*a.message(), *b.message());
        let (oa, ob) = (a.finish(&mb).unwrap(), b.finish(&ma).unwrap());
        assert_eq!(*oa.psk, *ob.psk);
        assert_eq!(oa.transcript, ob.transcript);
        let t: [u8; 32] = Sha256::digest([&ma[..], &mb[..]].concat()).into();
        assert_eq!(oa.transcript, t);
        assert_eq!(hex::encode(ma), KAT_A);
        assert_eq!(hex::encode(mb), KAT_B);
        assert_eq!(hex::encode(*oa.psk), KAT_PSK);
    }
    const KAT_A: &str = "41bea598d07c3ad46aa42da45edd485f59e8d480cdd281d76c59db7aae7c6f4fbd";
    const KAT_B: &str = "422dc1c0b5d4b478d700c0593f88b77c9d847c4b667464a7d2d76b7f7e7f333818";
    const KAT_PSK: &str = "f1e517473513005e13b724334d8287f4d440231bed965d75ab0cf840b13e91eb";

    #[test]
    fn a_wrong_code_gives_different_keys() {
        let (a, b) = pair(b"tulip-orbit-velvet-acid", b"tulip-orbit-velvet-acre");
        assert_ne!(*a.psk, *b.psk);
        let (a, b) = pair(b"same", b"same");
        assert_eq!(*a.psk, *b.psk);
    }

    #[test]
    fn the_nameplate_is_bound() {
        let a = Pake::start(true, b"7", b"pw", ChaCha20Rng::from_seed([1; 32]));
        let b = Pake::start(false, b"8", b"pw", ChaCha20Rng::from_seed([2; 32]));
        let (ma, mb) = (*a.message(), *b.message());
        assert_ne!(*a.finish(&mb).unwrap().psk, *b.finish(&ma).unwrap().psk);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let start = || Pake::start(true, b"7", b"pw", ChaCha20Rng::from_seed([1; 32]));
        let own = *start().message();
        // Our own message reflected (side 'A' to side A).
        assert!(start().finish(&own).is_err());
        assert!(start().finish(&own[..32]).is_err());
        let mut long = [0u8; MSG_LEN + 1];
        long[0] = b'B';
        assert!(start().finish(&long).is_err());
    }
}
