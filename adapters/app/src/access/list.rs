//! The allow list's text form and the rights.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// What a client may do, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights(u8);

impl Rights {
    /// Send files (`send`).
    pub const PUT: Rights = Rights(1);
    /// Fetch files (`get`).
    pub const GET: Rights = Rights(2);
    /// List files (`ls`).
    pub const LIST: Rights = Rights(4);
    /// Replace a file that exists with different content (`send --overwrite`).
    pub const OVERWRITE: Rights = Rights(8);
    /// Store records (`record`).
    pub const RECORD: Rights = Rights(16);
    /// Every right.
    pub const ALL: Rights = Rights(31);

    /// Whether every right of `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Parse `put,get,...` or `all`.
    ///
    /// # Errors
    /// The unknown right.
    pub fn parse(s: &str) -> Result<Rights, String> {
        let mut r = 0;
        for word in s.split(',') {
            r |= match word.trim() {
                "put" => Self::PUT.0,
                "get" => Self::GET.0,
                "list" => Self::LIST.0,
                "overwrite" => Self::OVERWRITE.0,
                "record" => Self::RECORD.0,
                "all" => Self::ALL.0,
                other => {
                    return Err(format!(
                        "unknown right {other:?} (use put, get, list, overwrite, record or all)"
                    ));
                }
            };
        }
        Ok(Rights(r))
    }
}

/// One listed client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its name (for logs and refusals).
    pub name: String,
    /// What it may do.
    pub rights: Rights,
    /// Its folder, relative to the server's root (empty for the root itself).
    pub dir: PathBuf,
}

/// The parsed allow list, by client key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    clients: BTreeMap<[u8; 32], Client>,
}

/// A line of the allow list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A public key in the allow-list form: 64 lowercase hex digits.
pub fn encode_key(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse the allow-list form of a public key (any case).
///
/// # Errors
/// Not 64 hex digits.
pub fn decode_key(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{s:?} is not a public key (64 hex digits, as keygen --identity prints)"
        ));
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

/// A folder relative to the root: plain names only (`.` for the root).
fn parse_dir(s: &str) -> Result<PathBuf, String> {
    let mut dir = PathBuf::new();
    for c in Path::new(s).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => dir.push(n),
            _ => {
                return Err(format!(
                    "folder {s:?} must be relative to the root, without .."
                ));
            }
        }
    }
    Ok(dir)
}

impl AllowList {
    /// Parse the allow list's text.
    ///
    /// # Errors
    /// The first bad line: wrong field count, bad key, unknown right, a folder climbing out
    /// of the root, a key listed twice.
    pub fn parse(text: &str) -> Result<AllowList, ParseError> {
        let mut clients = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |message: String| ParseError {
                line: i + 1,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, key, rights, dir] = fields[..] else {
                return Err(err(format!(
                    "expected NAME PUBLIC-KEY RIGHTS DIR, got {} fields",
                    fields.len()
                )));
            };
            let key = decode_key(key).map_err(err)?;
            let client = Client {
                name: name.to_string(),
                rights: Rights::parse(rights).map_err(err)?,
                dir: parse_dir(dir).map_err(err)?,
            };
            if clients.insert(key, client).is_some() {
                return Err(err(format!("the key of {name} is listed twice")));
            }
        }
        Ok(AllowList { clients })
    }

    /// The client with this key.
    pub fn get(&self, key: &[u8; 32]) -> Option<&Client> {
        self.clients.get(key)
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// No client at all.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}
