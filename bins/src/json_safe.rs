//! JSON output that shows bidirectional controls and zero-width characters as `\uXXXX`
//! escapes (the same strings to any JSON parser, but never raw on a terminal). serde_json
//! already escapes control characters.

use std::io::{self, Write};

use serde::Serialize;

/// Write `value` as JSON to `out` with [`ferry_disk::path::is_deceptive`] characters escaped.
///
/// # Errors
/// Writing failed.
pub(crate) fn to_writer(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, Escaping);
    value.serialize(&mut ser).map_err(io::Error::other)
}

struct Escaping;

impl serde_json::ser::Formatter for Escaping {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if ferry_disk::path::is_deceptive(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the Basic Multilingual Plane: one `\u` escape.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_only_deceptive_characters() {
        let value = serde_json::json!({"name": "a\u{202e}b\u{200b}é\n日", "k\u{feff}": 1});
        let mut buf = Vec::new();
        super::to_writer(&mut buf, &value).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "{\"name\":\"a\\u202eb\\u200bé\\n日\",\"k\\ufeff\":1}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
