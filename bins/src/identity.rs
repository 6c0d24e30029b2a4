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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_and_loose_permissions_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("id");
        let id = create(&path, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap().public_key(), id.public_key());
        assert!(create(&path, false).is_err(), "replaced without --force");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", load(&path).err().unwrap());
        assert!(err.contains("0644") || err.contains("permissions"), "{err}");
        // load_or_create never replaces an unusable file either.
        assert!(load_or_create(&path, |_| panic!("recreated")).is_err());
    }

    #[test]
    fn public_line_is_what_the_allow_list_parses() {
        let id = Identity::from_secret_bytes([3; 32]);
        let line = public_line(&id);
        assert_eq!(line.len(), 64);
        assert_eq!(
            ferry_app::access::decode_key(&line).unwrap(),
            id.public_key()
        );
        assert_eq!(fingerprint_of(&id.public_key()).len(), 29);
    }
}
