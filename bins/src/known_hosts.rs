//! Pinned server identities: `$HOME/.config/ferry/known_hosts`, one `HOST:PORT FINGERPRINT`
//! a line (`#` starts a comment), as ssh's known_hosts. The first contact with a server in a
//! pinned mode records its fingerprint and says so; a later different key is refused
//! (exit 1) with both fingerprints and how to update the entry; `--fingerprint FP` pins
//! explicitly, with no trust on first use.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::fingerprint;
use crate::identity::fingerprint_of;

/// `$HOME/.config/ferry/known_hosts`.
///
/// # Errors
/// No home directory.
pub fn path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::home_dir)
        .context("no home directory for known_hosts (set HOME)")?;
    Ok(home.join(".config/ferry/known_hosts"))
}

/// The fingerprint pinned for `host` (`HOST:PORT`) in the file's text, with its line number.
pub fn lookup(text: &str, host: &str) -> Option<(usize, String)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let line = line.split('#').next()?.trim();
        let mut f = line.split_whitespace();
        (f.next()? == host)
            .then(|| f.next().and_then(|fp| fingerprint::parse(fp).ok()))
            .flatten()
            .map(|fp| (i + 1, fp))
    })
}

/// What a client checks a server's identity against.
#[derive(Debug, Clone)]
pub struct Pin {
    /// `HOST:PORT` as the user typed it.
    pub host: String,
    /// `--fingerprint`, normalised.
    pub explicit: Option<String>,
}

impl Pin {
    /// Whether the client should start in a pinned mode: `--fingerprint` given, or the host
    /// pinned already.
    pub fn known(&self) -> bool {
        self.explicit.is_some()
            || path()
                .ok()
                .and_then(|p| fs::read_to_string(p).ok())
                .is_some_and(|t| lookup(&t, &self.host).is_some())
    }

    /// Check the server's key `peer` (`None`: the PSK mode, nothing to pin). Returns a notice
    /// to show when the key was pinned now.
    ///
    /// # Errors
    /// The message for the user: a changed key, a fingerprint mismatch, a PSK-only server
    /// when a fingerprint was given, or known_hosts not writable.
    pub fn check(&self, peer: Option<[u8; 32]>) -> Result<Option<String>, String> {
        let Some(peer) = peer else {
            return match &self.explicit {
                Some(_) => Err(format!(
                    "{} has no identity (mode PSK): --fingerprint cannot be checked",
                    self.host
                )),
                None => Ok(None),
            };
        };
        let got = fingerprint_of(&peer);
        let file = path().map_err(|e| e.to_string())?;
        let text = fs::read_to_string(&file).unwrap_or_default();
        let pinned = lookup(&text, &self.host);
        if let Some(want) = &self.explicit {
            if *want != got {
                return Err(format!(
                    "server identity mismatch for {}: --fingerprint {} was given, the server \
                     presented {}",
                    self.host, want, got
                ));
            }
            if pinned.as_ref().is_some_and(|(_, fp)| *fp == got) {
                return Ok(None);
            }
            let text = without(&text, &self.host);
            write(&file, &text, &self.host, &got)?;
            return Ok(Some(format!(
                "pinned {} to identity {got} in {}",
                self.host,
                file.display()
            )));
        }
        match pinned {
            Some((_, fp)) if fp == got => Ok(None),
            Some((line, fp)) => Err(format!(
                "WARNING: the identity of {host} changed: known_hosts pins {old}, the server \
                 presented {got}. Someone may be impersonating the server, or its identity was \
                 replaced. If you trust the new one, delete line {line} of {path} (or run with \
                 --fingerprint {got}).",
                host = self.host,
                old = fp,
                path = file.display()
            )),
            None => {
                write(&file, &text, &self.host, &got)?;
                Ok(Some(format!(
                    "first contact with {}: pinned its identity {got} in {} (trust on first use)",
                    self.host,
                    file.display()
                )))
            }
        }
    }
}

/// The text without the entry of `host`.
fn without(text: &str, host: &str) -> String {
    text.lines()
        .filter(|l| l.split_whitespace().next() != Some(host))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Write `text` plus the entry `host fp`, atomically (temporary file, rename).
fn write(file: &std::path::Path, text: &str, host: &str, fp: &str) -> Result<(), String> {
    let go = || -> std::io::Result<()> {
        let dir = file.parent().unwrap_or_else(|| std::path::Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        if !text.is_empty() && !text.ends_with('\n') {
            tmp.write_all(b"\n")?;
        }
        writeln!(tmp, "{host} {fp}")?;
        tmp.as_file().sync_all()?;
        tmp.persist(file).map_err(|e| e.error)?;
        Ok(())
    };
    go().map_err(|e| format!("cannot write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_host_and_skips_comments() {
        let text = "# pins\nexample:6868 aaaaa-bbbbb-ccccc-ddddd-eeeee\nother:1 x\n";
        assert_eq!(
            lookup(text, "example:6868"),
            Some((2, "aaaaa-bbbbb-ccccc-ddddd-eeeee".into()))
        );
        assert_eq!(lookup(text, "example:1"), None);
        assert_eq!(without(text, "example:6868").lines().count(), 2);
    }
}
