//! The short, typeable fingerprint of a key: what two people compare (read aloud, or paste)
//! to know they hold the same key file, or that a client pinned the right server identity.
//!
//! Form: 25 lowercase base32 characters (RFC 4648 alphabet, 125 bits) in five groups of five,
//! e.g. `k3x7q-mb2ra-tz4wn-p5c6d-e2fgh`. The bits are the first bytes of
//! `BLAKE3::derive_key(context, key)`, with a context per kind of key, so a key file and an
//! identity with the same bytes never share a fingerprint, and a fingerprint reveals nothing
//! of a secret key. [`parse`] accepts any case, with or without the dashes.

use data_encoding::BASE32_NOPAD;

/// What kind of key a fingerprint is of (its derivation context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A pre-shared key file (`--key`): the secret 32 bytes.
    KeyFile,
    /// A static X25519 public key (a server or client identity).
    Identity,
}

impl Kind {
    fn context(self) -> &'static str {
        match self {
            Self::KeyFile => "ferry v1 2026-12 key file fingerprint",
            Self::Identity => "ferry v1 2026-12 identity fingerprint",
        }
    }
}

/// Characters in a fingerprint, without the dashes.
pub const CHARS: usize = 25;
/// Characters per dash-separated group.
const GROUP: usize = 5;

/// The fingerprint of `key` as a [`Kind`].
#[must_use]
pub fn fingerprint(kind: Kind, key: &[u8]) -> String {
    let digest = blake3::derive_key(kind.context(), key);
    // 16 bytes encode to 26 base32 characters; the first 25 carry 125 bits.
    let encoded = BASE32_NOPAD.encode(&digest[..16]).to_ascii_lowercase();
    let chars = &encoded.as_bytes()[..CHARS];
    let groups: Vec<&str> = chars
        .chunks(GROUP)
        .map(|g| std::str::from_utf8(g).expect("base32 is ASCII"))
        .collect();
    groups.join("-")
}

/// Normalise a fingerprint typed by a person: lowercase, dashes and spaces dropped.
///
/// # Errors
/// A message naming what is wrong: a character outside the base32 alphabet, or the wrong length.
pub fn parse(s: &str) -> Result<String, String> {
    let chars: String = s
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if let Some(bad) = chars.chars().find(|c| !matches!(c, 'a'..='z' | '2'..='7')) {
        return Err(format!(
            "invalid fingerprint `{s}`: `{bad}` is not a fingerprint character (a-z, 2-7)"
        ));
    }
    if chars.len() != CHARS {
        return Err(format!(
            "invalid fingerprint `{s}`: {} characters, expected {CHARS} (five groups of five)",
            chars.len()
        ));
    }
    let groups: Vec<&str> = (0..CHARS / GROUP)
        .map(|i| &chars[i * GROUP..(i + 1) * GROUP])
        .collect();
    Ok(groups.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_is_five_groups_of_five() {
        let fp = fingerprint(Kind::KeyFile, &[7; 32]);
        assert_eq!(fp.len(), CHARS + 4);
        assert!(fp.split('-').all(|g| g.len() == GROUP), "{fp}");
        assert_eq!(parse(&fp).unwrap(), fp);
        assert_eq!(parse(&fp.to_uppercase().replace('-', " ")).unwrap(), fp);
    }

    #[test]
    fn kinds_and_keys_differ() {
        let a = fingerprint(Kind::KeyFile, &[7; 32]);
        assert_ne!(a, fingerprint(Kind::Identity, &[7; 32]));
        assert_ne!(a, fingerprint(Kind::KeyFile, &[8; 32]));
        assert_eq!(a, fingerprint(Kind::KeyFile, &[7; 32]));
    }

    #[test]
    fn known_value() {
        // Pinned so the form never changes by accident (both ends of a comparison must agree).
        let fp = fingerprint(Kind::KeyFile, &[0; 32]);
        let digest = blake3::derive_key("ferry v1 2026-12 key file fingerprint", &[0; 32]);
        let want = BASE32_NOPAD.encode(&digest[..16]).to_ascii_lowercase();
        assert_eq!(fp.replace('-', ""), want[..CHARS]);
    }

    #[test]
    fn parse_refuses_wrong_input() {
        assert!(parse("abcde-fghij").unwrap_err().contains("expected 25"));
        assert!(
            parse("abcde-fghij-klmno-pqrst-uvwx1")
                .unwrap_err()
                .contains("`1`")
        );
    }
}
