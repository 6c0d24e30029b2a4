//! Short codes for mode CODE: `<nameplate>-<word>-<word>-...` (security.md §5.3).
//!
//! The nameplate is a decimal number that only routes (a relay pairs the two sides by it) and
//! is bound into SPAKE2 as part of the server's identity; the words are the password. Codes are
//! compared after normalisation: ASCII case is ignored, and spaces may stand for dashes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::Psk;

/// Longest code accepted (a typed code is far shorter).
pub const MAX_CODE_LEN: usize = 256;

/// A code that cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeError {
    /// Not `<number>-<word>[-<word>...]` with a number of at most 9 digits and words of ASCII
    /// letters.
    Malformed,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a ferry code: expected a number and words, like 7-acid-acorn-acre-aged")
    }
}

impl core::error::Error for CodeError {}

/// A parsed, normalised code.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    nameplate: u32,
    words: Vec<String>,
}

impl Code {
    /// Parse `code` (case-insensitive; dashes or spaces between the parts).
    ///
    /// # Errors
    /// [`CodeError::Malformed`].
    pub fn parse(code: &str) -> Result<Code, CodeError> {
        if code.len() > MAX_CODE_LEN {
            return Err(CodeError::Malformed);
        }
        let mut parts = code
            .trim()
            .split(|c: char| c == '-' || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty());
        let number = parts.next().ok_or(CodeError::Malformed)?;
        if number.is_empty() || number.len() > 9 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::Malformed);
        }
        let nameplate = number.parse().map_err(|_| CodeError::Malformed)?;
        let words: Vec<String> = parts.map(|w| w.to_ascii_lowercase()).collect();
        if words.is_empty()
            || words
                .iter()
                .any(|w| !w.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(CodeError::Malformed);
        }
        Ok(Code { nameplate, words })
    }

    /// A code from its parts (a generator picks them).
    ///
    /// # Errors
    /// [`CodeError::Malformed`] when a word is empty or not ASCII letters, or there is none.
    pub fn new(nameplate: u32, words: &[&str]) -> Result<Code, CodeError> {
        let mut s = alloc::format!("{nameplate}");
        for w in words {
            s.push('-');
            s.push_str(w);
        }
        Code::parse(&s)
    }

    /// The routing number.
    pub fn nameplate(&self) -> u32 {
        self.nameplate
    }

    /// The PSK of this code: the handshake runs SPAKE2 over the words first.
    pub fn psk(&self) -> Psk {
        let nameplate = alloc::format!("{}", self.nameplate);
        let password = self.words.join("-");
        Psk::with_code(nameplate.as_bytes(), password.as_bytes())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nameplate)?;
        for w in &self.words {
            write!(f, "-{w}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The words are the secret.
        write!(f, "Code({}-..)", self.nameplate)
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn codes_parse_and_normalise() {
        let c = Code::parse(" 7-Tulip-orbit  velvet-acid ").unwrap();
        assert_eq!(c.nameplate(), 7);
        assert_eq!(alloc::format!("{c}"), "7-tulip-orbit-velvet-acid");
        assert_eq!(Code::parse("007-tulip").unwrap().to_string(), "7-tulip");
        assert_eq!(alloc::format!("{c:?}"), "Code(7-..)");
        for bad in [
            "",
            "7",
            "tulip-orbit",
            "1234567890-a",
            "7-tu1ip",
            "7-tulip-é",
        ] {
            assert_eq!(Code::parse(bad), Err(CodeError::Malformed), "{bad:?}");
        }
        assert!(Code::parse(&"7-a".repeat(200)).is_err());
    }
}
