//! Identity files: a long-term X25519 key pair, the server's host key (`serve --identity`) or
//! a client's key (`keygen --identity`, client `--identity`).
//!
//! The file holds the 32-byte private key in the key file's text form (prefix, base64,
//! checksum), written atomically with mode 0600 and refused, like a key file, when other
//! users may read it ([`crate::keyfile`] does all of it). The key is wiped from memory when
//! the [`Identity`] is dropped. Its public key is shown two ways: the 64 hex digits an allow
//! list takes ([`public_line`]) and the short fingerprint people compare
//! ([`crate::fingerprint`] with [`Kind::Identity`]).

use std::path::Path;

use proto::Identity;
use zeroize::Zeroizing;

use crate::fingerprint::{Kind, fingerprint};
use crate::keyfile;

/// Load the identity at `path`.
///
/// # Errors
/// Missing, unreadable, corrupt, or readable by other users.
pub fn load(path: &Path) -> anyhow::Result<Identity> {
    let secret = Zeroizing::new(keyfile::load(path)?);
    Ok(Identity::from_secret_bytes(*secret))
}

/// Load the identity at `path`, creating it (0600, parents 0700) on first use; `created` is
/// called with the path when it was.
///
/// # Errors
/// As [`load`]; an existing but unusable file is an error, never replaced.
pub fn load_or_create(path: &Path, created: impl FnOnce(&Path)) -> anyhow::Result<Identity> {
    let secret = Zeroizing::new(keyfile::load_or_create(path, created)?);
    Ok(Identity::from_secret_bytes(*secret))
}

/// Write a new identity to `path` (refusing to replace one unless `force`).
///
/// # Errors
/// As [`keyfile::write_new`].
pub fn create(path: &Path, force: bool) -> anyhow::Result<Identity> {
    let secret = Zeroizing::new(keyfile::generate()?);
    keyfile::write_new(path, &secret, force)?;
    Ok(Identity::from_secret_bytes(*secret))
}

/// The public key in the form `serve --clients` lists: 64 hex digits.
pub fn public_line(id: &Identity) -> String {
    ferry_app::access::encode_key(&id.public_key())
}

/// The fingerprint of a public identity key.
pub fn fingerprint_of(public: &[u8; 32]) -> String {
    fingerprint(Kind::Identity, public)
}
