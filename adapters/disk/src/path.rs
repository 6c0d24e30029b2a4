//! Validation of peer paths: a name a peer sends becomes a [`RelPath`] that cannot leave the
//! store root, or a [`Reason::BadName`] problem whose detail says why.
//!
//! Names are relative, `/`-separated, UTF-8. Empty and `.` components are dropped
//! (`a//./b` is `a/b`); everything below is refused rather than repaired:
//!
//! - an empty name, or one with nothing left after dropping `.` and empty components;
//! - an absolute name (`/x`, a Windows drive such as `C:x`);
//! - a `..` component, anywhere;
//! - a backslash (a separator on Windows, a plain character on Unix: ambiguous);
//! - NUL or any other control character;
//! - a bidirectional control, a zero-width character or a line/paragraph separator (see
//!   [`is_deceptive`]): they make a name display as another one (`evil\u{202e}txt.sh`);
//! - a component starting with `.ferry-` (any letter case): the store's own partial, sidecar
//!   and temporary files use that prefix (see [`is_reserved`]);
//! - a component longer than [`MAX_COMPONENT_LEN`] bytes, or a whole name longer than
//!   [`MAX_PATH_LEN`] bytes.

use std::fmt;
use std::path::{Path, PathBuf};

use proto::MAX_PATH_LEN;
use proto::{Problem, Reason};

/// Longest component (file or directory name) accepted, in bytes (`NAME_MAX` on Linux, macOS
/// and the BSDs).
pub const MAX_COMPONENT_LEN: usize = 255;

/// The prefix of every name the store creates for itself (partial files, their sidecars and
/// temporary files). Peers may not use it; listings never show it.
pub const RESERVED_PREFIX: &str = ".ferry-";

/// A validated, normalised relative path: non-empty components joined by `/`, none of them
/// `.`, `..` or reserved. Only [`sanitize`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// The path as `a/b/c`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, first to last (never empty).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path below `root`, one component at a time (never a `/`-joined string handed to the
    /// OS as is).
    pub fn to_path(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        p.extend(self.components());
        p
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `component` is a name the store keeps for itself (starts with [`RESERVED_PREFIX`],
/// compared without regard to ASCII case so that case-insensitive filesystems cannot be used to
/// reach a partial file).
pub fn is_reserved(component: &str) -> bool {
    component
        .as_bytes()
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes()))
}

/// Whether `c` is a character that changes how the text around it is displayed without
/// showing itself: the bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069), the zero-width characters (U+200B–U+200D, U+2060, U+FEFF) and the line and
/// paragraph separators (U+2028, U+2029). [`sanitize`] refuses them in names; printing code
/// escapes them like control characters.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Turn a peer's path into a safe relative path.
///
/// # Errors
/// [`Reason::BadName`], with a short reason the other side can print ("climbs out of the
/// root", "contains a control character", ...). The detail never repeats the name itself, so
/// a hostile name cannot put escape sequences on the peer's terminal.
pub fn sanitize(peer: &str) -> Result<RelPath, Problem> {
    match normalize(peer)? {
        Some(p) => Ok(p),
        None => Err(bad("names no file (only '.' or empty components)")),
    }
}

/// Like [`sanitize`], but a name with nothing left after normalising (`""`, `"."`, `"./"`)
/// means the root itself (`None`). For GET and LIST, where the root is a fine answer.
///
/// # Errors
/// As [`sanitize`], except for the empty name.
pub(crate) fn sanitize_or_root(peer: &str) -> Result<Option<RelPath>, Problem> {
    normalize(peer)
}

fn normalize(peer: &str) -> Result<Option<RelPath>, Problem> {
    if peer.len() > MAX_PATH_LEN {
        return Err(bad(&format!("name longer than {MAX_PATH_LEN} bytes")));
    }
    if peer.chars().any(char::is_control) {
        return Err(bad("contains a control character"));
    }
    if peer.chars().any(is_deceptive) {
        return Err(bad(
            "contains a bidirectional control or an invisible (zero-width) character",
        ));
    }
    if peer.contains('\\') {
        return Err(bad("contains a backslash"));
    }
    if peer.starts_with('/') {
        return Err(bad("absolute path"));
    }
    if let [drive, b':', ..] = peer.as_bytes()
        && drive.is_ascii_alphabetic()
    {
        return Err(bad("absolute path (drive letter)"));
    }
    let mut out = String::with_capacity(peer.len());
    for c in peer.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(bad("climbs out of the root ('..')")),
            _ if c.len() > MAX_COMPONENT_LEN => {
                return Err(bad(&format!(
                    "a component is longer than {MAX_COMPONENT_LEN} bytes"
                )));
            }
            _ if is_reserved(c) => {
                return Err(bad(&format!(
                    "names a temporary file ('{RESERVED_PREFIX}' is reserved)"
                )));
            }
            _ => {}
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(c);
    }
    Ok((!out.is_empty()).then_some(RelPath(out)))
}

fn bad(detail: &str) -> Problem {
    Problem::new(Reason::BadName, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        let long_component = "x".repeat(MAX_COMPONENT_LEN);
        let cases: &[(&str, &str)] = &[
            ("a", "a"),
            ("a/b/c.txt", "a/b/c.txt"),
            ("a//./b", "a/b"),
            ("./a", "a"),
            ("a/", "a"),
            ("a/./././b//", "a/b"),
            ("...", "..."),
            ("..a/b..", "..a/b.."),
            (".hidden", ".hidden"),
            (".ferry", ".ferry"),
            ("ferry-part", "ferry-part"),
            ("x.ferry-part", "x.ferry-part"),
            ("1:x", "1:x"),
            ("dir/C:x", "dir/C:x"),
            ("é/日本/🦀", "é/日本/🦀"),
            ("with space", "with space"),
            // Neighbours of the refused ranges are ordinary characters.
            ("a\u{200a}b", "a\u{200a}b"),
            ("a\u{202f}b", "a\u{202f}b"),
            ("a\u{2061}b", "a\u{2061}b"),
            ("a\u{206a}b", "a\u{206a}b"),
            ("a\u{fefe}b", "a\u{fefe}b"),
            ("\u{061b}", "\u{061b}"),
            (&long_component, &long_component),
        ];
        for (input, want) in cases {
            let got = sanitize(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
            assert_eq!(got.as_str(), *want, "{input:?}");
            assert_eq!(got.to_string(), *want, "{input:?}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        let long_component = format!("a/{}", "x".repeat(MAX_COMPONENT_LEN + 1));
        let long_path = "ab/".repeat(MAX_PATH_LEN / 3 + 1);
        let cases: &[(&str, &str)] = &[
            ("", "names no file"),
            (".", "names no file"),
            ("./", "names no file"),
            ("//", "absolute"),
            ("/etc/passwd", "absolute"),
            ("/", "absolute"),
            ("C:", "drive"),
            ("c:/x", "drive"),
            ("a:b", "drive"),
            ("C:\\x", "backslash"),
            ("\\\\server\\share", "backslash"),
            ("a\\b", "backslash"),
            ("..", "climbs out of the root"),
            ("../x", "climbs out of the root"),
            ("a/../b", "climbs out of the root"),
            ("a/..", "climbs out of the root"),
            ("a/b/../../..", "climbs out of the root"),
            ("a\0b", "control character"),
            ("a\nb", "control character"),
            ("\u{1b}[31m", "control character"),
            ("a\u{7f}", "control character"),
            ("a\u{85}", "control character"),
            ("evil\u{202e}txt.sh", "bidirectional"),
            ("a\u{202a}b", "bidirectional"),
            ("a\u{2066}b/c", "bidirectional"),
            ("d/a\u{2069}", "bidirectional"),
            ("\u{200e}a", "bidirectional"),
            ("a\u{200f}", "bidirectional"),
            ("a\u{061c}", "bidirectional"),
            ("a\u{200b}b", "zero-width"),
            ("a\u{200c}b", "zero-width"),
            ("a\u{200d}b", "zero-width"),
            ("a\u{2060}b", "zero-width"),
            ("\u{feff}a", "zero-width"),
            ("a\u{2028}b", "invisible"),
            ("a\u{2029}b", "invisible"),
            (".ferry-part.x", "reserved"),
            ("dir/.ferry-info.x", "reserved"),
            (".FERRY-tmp.x/y", "reserved"),
            (".ferry-", "reserved"),
            (&long_component, "longer than 255"),
            (&long_path, "longer than 4096"),
        ];
        for (input, want) in cases {
            let short: String = input.chars().take(40).collect();
            let p = match sanitize(input) {
                Ok(p) => panic!("{short:?} accepted as {p}"),
                Err(p) => p,
            };
            assert_eq!(p.reason, Reason::BadName, "{short:?}");
            assert!(
                p.detail.contains(want),
                "{short:?}: detail {:?} lacks {want:?}",
                p.detail
            );
        }
    }

    #[test]
    fn path_length_limit_is_inclusive() {
        let at_limit = "ab/".repeat(MAX_PATH_LEN / 3) + &"c".repeat(MAX_PATH_LEN % 3);
        assert_eq!(at_limit.len(), MAX_PATH_LEN);
        assert!(sanitize(&at_limit).is_ok());
        assert!(sanitize(&format!("{at_limit}d")).is_err());
    }

    #[test]
    fn detail_never_echoes_the_name() {
        for input in [
            "\u{1b}]0;pwned\u{7}",
            "../secret",
            "/secret",
            ".ferry-part.secret",
            "secret\u{202e}txt.sh",
        ] {
            let p = sanitize(input).expect_err(input);
            assert!(!p.detail.contains("secret") && !p.detail.contains("pwned"));
        }
    }

    #[test]
    fn root_is_allowed_only_where_asked() {
        for root in ["", ".", "./", ".//./"] {
            assert_eq!(sanitize_or_root(root), Ok(None), "{root:?}");
            assert!(sanitize(root).is_err(), "{root:?}");
        }
        assert_eq!(
            sanitize_or_root("./a/"),
            Ok(Some(RelPath(String::from("a"))))
        );
        assert!(sanitize_or_root("../a").is_err());
        assert!(sanitize_or_root("/").is_err());
    }

    #[test]
    fn reserved_names() {
        for (name, reserved) in [
            (".ferry-part.a", true),
            (".ferry-info.a", true),
            (".ferry-tmp.a", true),
            (".Ferry-x", true),
            (".ferry-", true),
            (".ferry", false),
            ("ferry-", false),
            ("a.ferry-part", false),
            ("", false),
            (".ferr", false),
            // Multi-byte text straddling the prefix length must not panic.
            (".ferr\u{e9}", false),
        ] {
            assert_eq!(is_reserved(name), reserved, "{name:?}");
        }
    }

    #[test]
    fn parts_and_paths() {
        let p = sanitize("a//b/./c.txt").unwrap();
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
        assert_eq!(p.file_name(), "c.txt");
        assert_eq!(
            p.to_path(Path::new("/srv/root")),
            PathBuf::from("/srv/root/a/b/c.txt")
        );
        assert_eq!(sanitize("x").unwrap().file_name(), "x");
    }
}
