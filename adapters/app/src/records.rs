//! Structured records: one JSON object, carried in a RECORD request as JSON text or postcard,
//! and stored by the server as one line of `records.jsonl`.
//!
//! postcard is not self-describing, so a JSON value cannot go through it directly; the
//! postcard form is a flat sequence of [`Token`]s (no recursion, so a hostile record cannot
//! exhaust the stack while decoding), rebuilt into a value with an explicit stack and a depth
//! limit. Numbers keep their exact JSON text in both forms, so large integers and decimals
//! round-trip digit for digit.

use std::fmt;

use proto::{MAX_RECORD_BODY, RecordFormat};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

/// Deepest nesting a record may have.
pub const MAX_DEPTH: usize = 64;

/// Why a record cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The value is not a JSON object.
    NotAnObject,
    /// Invalid JSON (or invalid postcard), with a reason.
    Invalid(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Encoded larger than the limit (the protocol's [`MAX_RECORD_BODY`] or a lower one).
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NotAnObject => f.write_str("a record must be a JSON object"),
            RecordError::Invalid(why) => write!(f, "invalid record: {why}"),
            RecordError::TooDeep => write!(f, "record nested deeper than {MAX_DEPTH} levels"),
            RecordError::TooLarge { size, limit } => {
                write!(
                    f,
                    "record is {size} bytes encoded, more than the {limit}-byte limit"
                )
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// One step of a flattened JSON value (the postcard form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Token {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as its exact JSON text.
    Number(String),
    /// A string.
    String(String),
    /// An array of the next `n` values.
    Array(u32),
    /// An object of the next `n` key/value pairs (each a `Key` then a value).
    Object(u32),
    /// An object key.
    Key(String),
}

/// A token sequence that never pre-allocates more than it could hold from the bytes present.
struct Tokens(Vec<Token>);

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tokens;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of record tokens")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tokens, A::Error> {
                // Every token takes at least one byte, and a body is at most MAX_RECORD_BODY.
                let hint = seq.size_hint().unwrap_or(0).min(MAX_RECORD_BODY);
                let mut v = Vec::with_capacity(hint);
                while let Some(t) = seq.next_element()? {
                    v.push(t);
                }
                Ok(Tokens(v))
            }
        }
        d.deserialize_seq(V)
    }
}

fn flatten(v: &Value, out: &mut Vec<Token>) {
    match v {
        Value::Null => out.push(Token::Null),
        Value::Bool(b) => out.push(Token::Bool(*b)),
        Value::Number(n) => out.push(Token::Number(n.to_string())),
        Value::String(s) => out.push(Token::String(s.clone())),
        Value::Array(a) => {
            out.push(Token::Array(a.len() as u32));
            for x in a {
                flatten(x, out);
            }
        }
        Value::Object(m) => {
            out.push(Token::Object(m.len() as u32));
            for (k, x) in m {
                out.push(Token::Key(k.clone()));
                flatten(x, out);
            }
        }
    }
}

/// Rebuild a value from tokens with an explicit stack (no recursion) and a depth limit.
fn rebuild(tokens: Vec<Token>) -> Result<Value, RecordError> {
    enum Frame {
        Array(Vec<Value>, u32),
        Object(Map<String, Value>, u32, Option<String>),
    }
    let bad = |why: &str| RecordError::Invalid(why.to_string());
    let mut stack: Vec<Frame> = Vec::new();
    let mut done: Option<Value> = None;
    let mut it = tokens.into_iter();
    loop {
        // Close every container that is complete.
        loop {
            let complete = match stack.last() {
                Some(Frame::Array(items, n)) => items.len() == *n as usize,
                Some(Frame::Object(map, n, None)) => map.len() == *n as usize,
                _ => false,
            };
            if !complete {
                break;
            }
            let value = match stack.pop() {
                Some(Frame::Array(items, _)) => Value::Array(items),
                Some(Frame::Object(map, _, _)) => Value::Object(map),
                None => break,
            };
            match stack.last_mut() {
                Some(Frame::Array(items, _)) => items.push(value),
                Some(Frame::Object(map, _, key)) => {
                    let k = key.take().ok_or_else(|| bad("value without a key"))?;
                    map.insert(k, value);
                }
                None => done = Some(value),
            }
        }
        if done.is_some() {
            if it.next().is_some() {
                return Err(bad("tokens after the end of the record"));
            }
            return done.ok_or_else(|| bad("empty"));
        }
        let Some(t) = it.next() else {
            return Err(bad("record ends early"));
        };
        // An object expects a key before each value.
        if let Some(Frame::Object(_, _, key @ None)) = stack.last_mut() {
            match t {
                Token::Key(k) => {
                    *key = Some(k);
                    continue;
                }
                _ => return Err(bad("object value without a key")),
            }
        }
        let leaf = match t {
            Token::Null => Some(Value::Null),
            Token::Bool(b) => Some(Value::Bool(b)),
            Token::Number(text) => {
                let n: Number = serde_json::from_str(&text).map_err(|_| bad("bad number"))?;
                Some(Value::Number(n))
            }
            Token::String(s) => Some(Value::String(s)),
            Token::Key(_) => return Err(bad("key outside an object")),
            Token::Array(n) | Token::Object(n) if n as usize > MAX_RECORD_BODY => {
                return Err(bad("container larger than a record can be"));
            }
            Token::Array(n) => {
                stack.push(Frame::Array(Vec::new(), n));
                None
            }
            Token::Object(n) => {
                stack.push(Frame::Object(Map::new(), n, None));
                None
            }
        };
        if stack.len() > MAX_DEPTH {
            return Err(RecordError::TooDeep);
        }
        if let Some(value) = leaf {
            match stack.last_mut() {
                Some(Frame::Array(items, _)) => items.push(value),
                Some(Frame::Object(map, _, key)) => {
                    let k = key.take().ok_or_else(|| bad("value without a key"))?;
                    map.insert(k, value);
                }
                None => done = Some(value),
            }
        }
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Encode a JSON object in `format`, refusing it if it exceeds `limit` bytes (at most
/// [`MAX_RECORD_BODY`]).
///
/// # Errors
/// Not an object, too deep, or too large.
pub fn encode(value: &Value, format: RecordFormat, limit: usize) -> Result<Vec<u8>, RecordError> {
    if !value.is_object() {
        return Err(RecordError::NotAnObject);
    }
    if depth(value) > MAX_DEPTH {
        return Err(RecordError::TooDeep);
    }
    let body = match format {
        RecordFormat::Json => {
            serde_json::to_vec(value).map_err(|e| RecordError::Invalid(e.to_string()))?
        }
        _ => {
            let mut tokens = Vec::new();
            flatten(value, &mut tokens);
            postcard::to_allocvec(&tokens).map_err(|e| RecordError::Invalid(e.to_string()))?
        }
    };
    let limit = limit.min(MAX_RECORD_BODY);
    if body.len() > limit {
        return Err(RecordError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    Ok(body)
}

/// Encode any serializable value (it must serialize to a JSON object).
///
/// # Errors
/// As [`encode`], or when the value does not serialize.
pub fn encode_serialize<T: Serialize + ?Sized>(
    value: &T,
    format: RecordFormat,
    limit: usize,
) -> Result<Vec<u8>, RecordError> {
    let v = serde_json::to_value(value).map_err(|e| RecordError::Invalid(e.to_string()))?;
    encode(&v, format, limit)
}

/// Decode a record body received in `format` into the JSON object it carries.
///
/// # Errors
/// Invalid encoding, not an object, or too deep.
pub fn decode(body: &[u8], format: RecordFormat) -> Result<Value, RecordError> {
    let value = match format {
        RecordFormat::Json => {
            serde_json::from_slice(body).map_err(|e| RecordError::Invalid(e.to_string()))?
        }
        _ => {
            let Tokens(tokens) =
                postcard::from_bytes(body).map_err(|e| RecordError::Invalid(e.to_string()))?;
            rebuild(tokens)?
        }
    };
    if depth(&value) > MAX_DEPTH {
        return Err(RecordError::TooDeep);
    }
    if !value.is_object() {
        return Err(RecordError::NotAnObject);
    }
    Ok(value)
}

/// Parse command-line `key=value` (a string) and `key:=json` (any JSON value) pairs into an
/// object.
///
/// # Errors
/// A pair without `=`, an empty key, or invalid JSON after `:=`.
pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Value, RecordError> {
    let mut map = Map::new();
    for p in pairs {
        let p = p.as_ref();
        let (key, value) = if let Some((k, v)) = p.split_once(":=") {
            let v: Value =
                serde_json::from_str(v).map_err(|e| RecordError::Invalid(format!("{k}: {e}")))?;
            (k, v)
        } else if let Some((k, v)) = p.split_once('=') {
            (k, Value::String(v.to_string()))
        } else {
            return Err(RecordError::Invalid(format!(
                "{p:?} is not key=value or key:=json"
            )));
        };
        if key.is_empty() {
            return Err(RecordError::Invalid(format!("{p:?} has an empty key")));
        }
        map.insert(key.to_string(), value);
    }
    Ok(Value::Object(map))
}

/// Why sending a record through an adapter's `send_record` failed.
#[derive(Debug)]
pub enum SendRecordError {
    /// The value cannot be a record (nothing was sent).
    Encode(RecordError),
    /// The connection or session failed.
    Run(crate::error::RunError),
    /// The peer refused or could not store it.
    Refused(proto::Problem),
}

impl fmt::Display for SendRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendRecordError::Encode(e) => e.fmt(f),
            SendRecordError::Run(e) => e.fmt(f),
            SendRecordError::Refused(p) => write!(f, "the server did not store the record: {p}"),
        }
    }
}

impl std::error::Error for SendRecordError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::from_str(
            r#"{"name":"ferry ⛴","nested":{"a":[1,-2,3.25,1e300,null,true,false,[],{}],"s":"q\"uote\n"},
                "big":123456789012345678901234567890,"small":-0.000000000000000000001,"k":{}}"#,
        )
        .unwrap()
    }

    #[test]
    fn round_trip_in_both_formats_exactly() {
        let v = sample();
        for f in [RecordFormat::Json, RecordFormat::Postcard] {
            let body = encode(&v, f, MAX_RECORD_BODY).unwrap();
            let back = decode(&body, f).unwrap();
            assert_eq!(back, v, "{f:?}");
            // Numbers keep their digits.
            assert_eq!(back["big"].to_string(), "123456789012345678901234567890");
        }
    }

    #[test]
    fn bad_input_is_refused_before_sending() {
        for f in [RecordFormat::Json, RecordFormat::Postcard] {
            assert_eq!(
                encode(&Value::from(5), f, 100),
                Err(RecordError::NotAnObject)
            );
            let big = serde_json::json!({"x": "a".repeat(200)});
            assert!(matches!(
                encode(&big, f, 100),
                Err(RecordError::TooLarge { .. })
            ));
            let mut deep = Value::Null;
            for _ in 0..(MAX_DEPTH + 2) {
                deep = serde_json::json!({ "d": deep });
            }
            assert_eq!(encode(&deep, f, MAX_RECORD_BODY), Err(RecordError::TooDeep));
        }
    }

    #[test]
    fn hostile_postcard_is_a_typed_error() {
        // Deep nesting straight on the wire (no recursion while decoding).
        let mut tokens = vec![Token::Object(1), Token::Key("a".into())];
        tokens.extend(std::iter::repeat_n(Token::Array(1), 5000));
        let body = postcard::to_allocvec(&tokens).unwrap();
        assert_eq!(
            decode(&body, RecordFormat::Postcard),
            Err(RecordError::TooDeep)
        );
        // Truncated, trailing, key outside an object, claimed huge container, not an object.
        let ok = encode(&sample(), RecordFormat::Postcard, MAX_RECORD_BODY).unwrap();
        for cut in 0..ok.len() {
            assert!(
                decode(&ok[..cut], RecordFormat::Postcard).is_err(),
                "cut {cut}"
            );
        }
        for t in [
            vec![Token::Object(0), Token::Null],
            vec![Token::Key("k".into())],
            vec![Token::Object(u32::MAX)],
            vec![Token::Array(0)],
            vec![Token::Object(1), Token::Null],
            vec![
                Token::Object(1),
                Token::Key("n".into()),
                Token::Number("1x".into()),
            ],
        ] {
            let body = postcard::to_allocvec(&t).unwrap();
            assert!(decode(&body, RecordFormat::Postcard).is_err(), "{t:?}");
        }
        // A claimed length far beyond the bytes present does not allocate it.
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f], RecordFormat::Postcard).is_err());
        assert!(decode(b"[1,2]", RecordFormat::Json).is_err());
        assert!(decode(b"{\"a\":", RecordFormat::Json).is_err());
    }

    #[test]
    fn pairs() {
        let v = from_pairs(&[
            "name=ferry",
            "n:=5",
            "ok:=true",
            "tags:=[\"a\",\"b\"]",
            "eq=a=b",
        ])
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "ferry", "n": 5, "ok": true, "tags": ["a", "b"], "eq": "a=b"})
        );
        assert!(from_pairs(&["novalue"]).is_err());
        assert!(from_pairs(&["=x"]).is_err());
        assert!(from_pairs(&["n:={"]).is_err());
    }

    #[test]
    fn serialize_any_struct() {
        #[derive(Serialize)]
        struct Reading {
            sensor: &'static str,
            value: f64,
        }
        let body = encode_serialize(
            &Reading {
                sensor: "t1",
                value: 21.5,
            },
            RecordFormat::Postcard,
            1000,
        )
        .unwrap();
        assert_eq!(
            decode(&body, RecordFormat::Postcard).unwrap(),
            serde_json::json!({"sensor": "t1", "value": 21.5})
        );
        assert_eq!(
            encode_serialize(&[1, 2], RecordFormat::Json, 1000),
            Err(RecordError::NotAnObject)
        );
    }
}
