//! A message as JSON text, written straight from its bytes: what the host's
//! JSON outputs (`run --json`, the stdio protocol, the server) carry as a
//! message's `data`. It follows `JSON.stringify` and keeps key order; the
//! only tree it keeps is one offset per object-like value (to expand shared
//! references) and the stack of open containers.

use std::fmt::Write as _;

use crate::tokens::opens;
use crate::{DecodeError, Parts, Str, Token, Tokens, ViewBuffer, ViewKind};

/// JSON text longer than this is refused ([`JsonError::TooLarge`]): shared
/// references expand in JSON (`[a, a]` writes `a` twice), so a small message
/// can stand for a huge text; this bounds what the host builds for one line.
pub const MAX_JSON_BYTES: usize = 256 << 20;

/// Nesting deeper than this cannot become JSON (readers such as serde_json
/// stop far earlier).
const MAX_DEPTH: usize = 1000;

/// Why a message has no JSON form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// The bytes are not a valid message.
    Malformed(DecodeError),
    /// It contains a cycle (`JSON.stringify` throws too).
    Cycle,
    /// It is nested deeper than 1,000 levels.
    TooDeep,
    /// Its JSON text would be longer than the limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::Malformed(e) => e.fmt(f),
            JsonError::Cycle => f.write_str("a message with a cycle cannot become JSON"),
            JsonError::TooDeep => write!(f, "the message is nested deeper than {MAX_DEPTH} levels for JSON"),
            JsonError::TooLarge { limit } => {
                write!(f, "the message's JSON text is longer than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for JsonError {}

impl From<DecodeError> for JsonError {
    fn from(e: DecodeError) -> Self {
        JsonError::Malformed(e)
    }
}

/// An open container of the output.
enum Frame<'a> {
    /// An object: its reference index, whether a property was written, and
    /// the key waiting for its value.
    Object(u64, bool, Option<Str<'a>>),
    /// An array: its reference index and whether an element was written.
    Array(u64, bool),
    /// A Map, Set or Error with properties, written as `{}`: its contents
    /// are skipped.
    Skipped,
    /// The value of an array's non-index property, which `JSON.stringify`
    /// leaves out: it is skipped.
    SkipValue,
}

/// A message as JSON text of at most `limit` bytes, following
/// `JSON.stringify`: `undefined` properties left out, holes and `undefined`
/// elements as `null`, NaN and ±Infinity as `null`, a Date as its ISO
/// string, Maps, Sets, RegExps, ArrayBuffers, DataViews and Errors as `{}`,
/// typed arrays as objects with index keys; except that a BigInt becomes its
/// decimal string and a string with lone surrogates keeps them as `\u`
/// escapes. A cycle is an error.
pub fn write_json<'a>(message: impl Into<Parts<'a>>, limit: usize) -> Result<String, JsonError> {
    let message = message.into();
    // First pass: check the message, and note where each object-like value
    // starts and which are ArrayBuffers (a view may name one by reference).
    let mut offsets: Vec<u32> = Vec::new();
    let mut buffers: std::collections::HashMap<u64, &[u8]> = Default::default();
    let mut tokens = Tokens::new(message)?;
    loop {
        let at = tokens.offset() as u32;
        let index = tokens.next_index();
        let Some(token) = tokens.next()? else { break };
        if tokens.next_index() > index {
            offsets.push(at);
        }
        match token {
            Token::ArrayBuffer(b) => {
                buffers.insert(index, b);
            }
            Token::View {
                buffer: ViewBuffer::Inline(b),
                ..
            } => {
                offsets.push(at);
                buffers.insert(index + 1, b);
            }
            _ => {}
        }
    }

    // Measure, then write into a string of exactly that size: a text of
    // tens of megabytes is allocated once, never doubled while it grows.
    let len = emit(message, &buffers, &offsets, Out::measure(limit))?.len;
    Ok(emit(message, &buffers, &offsets, Out::write(len))?.text)
}

/// The JSON text of the message, into `out` (the second pass).
fn emit(
    message: Parts<'_>,
    buffers: &std::collections::HashMap<u64, &[u8]>,
    offsets: &[u32],
    mut out: Out,
) -> Result<Out, JsonError> {
    let mut readers = vec![Tokens::new(message)?];
    let mut stack: Vec<Frame<'_>> = Vec::new();
    while let Some(reader) = readers.last_mut() {
        let Some(token) = reader.next()? else {
            readers.pop();
            continue;
        };
        match stack.last_mut() {
            Some(Frame::Skipped) => {
                if opens(&token) {
                    stack.push(Frame::Skipped);
                } else if let Token::End = token {
                    stack.pop();
                }
                continue;
            }
            Some(top @ Frame::SkipValue) => {
                if opens(&token) {
                    *top = Frame::Skipped;
                } else {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        if let Token::End = token {
            match stack.pop() {
                Some(Frame::Object(..)) => out.push("}")?,
                Some(Frame::Array(..)) => out.push("]")?,
                _ => {}
            }
            continue;
        }
        if let Token::Key(key) = token {
            match stack.last_mut() {
                Some(Frame::Object(_, _, pending)) => *pending = Some(key),
                _ => stack.push(Frame::SkipValue),
            }
            continue;
        }
        if let Token::Ref(i) = token {
            if stack
                .iter()
                .any(|f| matches!(f, Frame::Object(n, ..) | Frame::Array(n, _) if *n == i))
            {
                return Err(JsonError::Cycle);
            }
            if buffers.contains_key(&i) {
                out.separator(&mut stack, false)?;
                out.push("{}")?;
                continue;
            }
            let at = offsets.get(i as usize).copied().unwrap_or(0) as usize;
            readers.push(Tokens::value_at(message, at, i)?);
            continue;
        }
        let index = readers.last().map_or(0, |r| r.next_index().saturating_sub(1));
        let omitted = matches!(token, Token::Undefined | Token::Hole);
        if out.separator(&mut stack, omitted)? {
            continue;
        }
        match token {
            Token::Undefined | Token::Hole | Token::Null => out.push("null")?,
            Token::Bool(b) => out.push(if b { "true" } else { "false" })?,
            Token::Number(n) => out.number(n)?,
            Token::BigInt { negative, magnitude } => {
                out.push("\"")?;
                out.push(&bigint_decimal(negative, magnitude))?;
                out.push("\"")?;
            }
            Token::String(s) => out.string(s)?,
            Token::Date(t) => match iso_date(t) {
                Some(iso) => out.string(Str::Utf8(&iso))?,
                None => out.push("null")?,
            },
            Token::View {
                kind,
                offset,
                length,
                buffer,
            } if kind != ViewKind::DataView => {
                let data = match buffer {
                    ViewBuffer::Inline(b) => b,
                    ViewBuffer::Ref(i) => buffers.get(&i).copied().unwrap_or(&[]),
                };
                out.view(kind, data, offset, length)?;
            }
            Token::Object | Token::Array(_) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                if matches!(token, Token::Object) {
                    out.push("{")?;
                    stack.push(Frame::Object(index, false, None));
                } else {
                    out.push("[")?;
                    stack.push(Frame::Array(index, false));
                }
            }
            Token::Map | Token::Set | Token::Error { props: true, .. } => {
                out.push("{}")?;
                stack.push(Frame::Skipped);
            }
            _ => out.push("{}")?,
        }
    }
    Ok(out)
}

/// The text being written (or only measured), within its limit.
struct Out {
    text: String,
    /// Bytes written (or measured) so far.
    len: usize,
    limit: usize,
    measuring: bool,
}

impl Out {
    fn measure(limit: usize) -> Out {
        Out {
            text: String::new(),
            len: 0,
            limit,
            measuring: true,
        }
    }

    fn write(len: usize) -> Out {
        Out {
            text: String::with_capacity(len),
            len: 0,
            limit: len,
            measuring: false,
        }
    }

    fn push(&mut self, s: &str) -> Result<(), JsonError> {
        if self.len + s.len() > self.limit {
            return Err(JsonError::TooLarge { limit: self.limit });
        }
        self.len += s.len();
        if !self.measuring {
            self.text.push_str(s);
        }
        Ok(())
    }

    /// Writes what comes before a value in its container (a comma, an
    /// object's key). Returns whether the value is to be left out (an
    /// `undefined` property).
    fn separator(&mut self, stack: &mut [Frame<'_>], omitted: bool) -> Result<bool, JsonError> {
        match stack.last_mut() {
            Some(Frame::Object(_, written, key)) => {
                let key = key.take();
                if omitted {
                    return Ok(true);
                }
                if std::mem::replace(written, true) {
                    self.push(",")?;
                }
                self.string(key.unwrap_or(Str::Utf8("")))?;
                self.push(":")?;
            }
            Some(Frame::Array(_, written)) => {
                if std::mem::replace(written, true) {
                    self.push(",")?;
                }
            }
            Some(Frame::Skipped | Frame::SkipValue) | None => {}
        }
        Ok(false)
    }

    fn number(&mut self, n: f64) -> Result<(), JsonError> {
        if !n.is_finite() {
            return self.push("null");
        }
        let mut s = String::new();
        if crate::is_int(n) && n.abs() < 9.0e15 {
            let _ = write!(s, "{}", n as i64);
        } else {
            let _ = write!(
                s,
                "{}",
                serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
            );
        }
        self.push(&s)
    }

    /// A JSON string; lone surrogates become `\u` escapes, as in `JSON.stringify`.
    fn string(&mut self, s: Str<'_>) -> Result<(), JsonError> {
        let mut buf = String::with_capacity(s.byte_len() + 2);
        buf.push('"');
        for c in char::decode_utf16(s.units()) {
            match c {
                Ok('"') => buf.push_str("\\\""),
                Ok('\\') => buf.push_str("\\\\"),
                Ok('\n') => buf.push_str("\\n"),
                Ok('\r') => buf.push_str("\\r"),
                Ok('\t') => buf.push_str("\\t"),
                Ok('\u{8}') => buf.push_str("\\b"),
                Ok('\u{c}') => buf.push_str("\\f"),
                Ok(c) if (c as u32) < 0x20 => {
                    let _ = write!(buf, "\\u{:04x}", c as u32);
                }
                Ok(c) => buf.push(c),
                Err(lone) => {
                    let _ = write!(buf, "\\u{:04x}", lone.unpaired_surrogate());
                }
            }
        }
        buf.push('"');
        self.push(&buf)
    }

    /// A typed array as `JSON.stringify` writes it: an object with index keys.
    fn view(&mut self, kind: ViewKind, bytes: &[u8], offset: u64, length: u64) -> Result<(), JsonError> {
        self.push("{")?;
        let size = kind.element_size() as usize;
        for i in 0..length as usize {
            let start = offset as usize + i * size;
            let Some(b) = bytes.get(start..start + size) else {
                break;
            };
            let mut a = [0u8; 8];
            a[..size].copy_from_slice(b);
            let text = match kind {
                ViewKind::Int8 => (b[0] as i8).to_string(),
                ViewKind::Uint8 | ViewKind::Uint8Clamped => b[0].to_string(),
                ViewKind::Int16 => i16::from_le_bytes([a[0], a[1]]).to_string(),
                ViewKind::Uint16 => u16::from_le_bytes([a[0], a[1]]).to_string(),
                ViewKind::Int32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]).to_string(),
                ViewKind::Uint32 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]).to_string(),
                ViewKind::Float32 | ViewKind::Float64 | ViewKind::Float16 | ViewKind::DataView => {
                    let n = match kind {
                        ViewKind::Float32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
                        ViewKind::Float64 => f64::from_le_bytes(a),
                        _ => f64::NAN,
                    };
                    let mut out = Out::write(0);
                    out.limit = usize::MAX;
                    out.number(n)?;
                    out.text
                }
                // JSON.stringify throws on BigInt; as for a BigInt value, a decimal string.
                ViewKind::BigInt64 => format!("\"{}\"", i64::from_le_bytes(a)),
                ViewKind::BigUint64 => format!("\"{}\"", u64::from_le_bytes(a)),
            };
            if i > 0 {
                self.push(",")?;
            }
            self.push(&format!("\"{i}\":{text}"))?;
        }
        self.push("}")
    }
}

/// The decimal digits of a BigInt.
pub(crate) fn bigint_decimal(negative: bool, magnitude: &[u8]) -> String {
    // Base 10^9 limbs, least significant first; repeated multiply-add by 256.
    let mut limbs: Vec<u32> = vec![0];
    for &byte in magnitude.iter().rev() {
        let mut carry = byte as u64;
        for limb in limbs.iter_mut() {
            let v = (*limb as u64) * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    let mut s = String::new();
    let is_zero = limbs.iter().all(|l| *l == 0);
    if negative && !is_zero {
        s.push('-');
    }
    let mut iter = limbs.iter().rev();
    if let Some(first) = iter.next() {
        s.push_str(&first.to_string());
    }
    for limb in iter {
        let _ = write!(s, "{limb:09}");
    }
    s
}

/// `Date.prototype.toISOString`, or None for an invalid date.
pub(crate) fn iso_date(t: f64) -> Option<String> {
    if !t.is_finite() || t.abs() > 8.64e15 {
        return None;
    }
    let ms = t as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+07}")
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Writer, tag};

    fn json(build: impl FnOnce(&mut Writer)) -> Result<String, JsonError> {
        let mut w = Writer::new(usize::MAX);
        build(&mut w);
        write_json(&w.finish(), MAX_JSON_BYTES)
    }

    #[test]
    fn array_properties_are_left_out_and_errors_with_properties_are_empty() {
        // {a: [1, x: {deep: [2]}, y: ref a], e: AggregateError{errors: [3]}, after: 4}
        let text = json(|w| {
            w.tag(tag::OBJECT).unwrap();
            w.string("a").unwrap();
            w.tag(tag::ARRAY_PROPS).unwrap();
            w.varint(1).unwrap();
            w.number(1.0).unwrap();
            w.string("x").unwrap();
            w.tag(tag::OBJECT).unwrap();
            w.string("deep").unwrap();
            w.tag(tag::ARRAY).unwrap();
            w.varint(1).unwrap();
            w.number(2.0).unwrap();
            w.tag(tag::END).unwrap();
            w.string("y").unwrap();
            w.tag(tag::REF).unwrap();
            w.varint(1).unwrap();
            w.tag(tag::END).unwrap();
            w.string("e").unwrap();
            w.tag(tag::ERROR_PROPS).unwrap();
            w.string("AggregateError").unwrap();
            w.string("m").unwrap();
            w.tag(tag::UNDEFINED).unwrap();
            w.string("errors").unwrap();
            w.tag(tag::ARRAY).unwrap();
            w.varint(1).unwrap();
            w.number(3.0).unwrap();
            w.tag(tag::END).unwrap();
            w.string("after").unwrap();
            w.number(4.0).unwrap();
            w.tag(tag::END).unwrap();
        });
        assert_eq!(text.unwrap(), r#"{"a":[1],"e":{},"after":4}"#);
    }

    #[test]
    fn keys_keep_their_order_and_undefined_is_left_out() {
        let text = json(|w| {
            w.tag(tag::OBJECT).unwrap();
            for (k, v) in [("z", 1.0), ("a", 2.0)] {
                w.string(k).unwrap();
                w.number(v).unwrap();
            }
            w.string("u").unwrap();
            w.tag(tag::UNDEFINED).unwrap();
            w.string("h").unwrap();
            w.tag(tag::ARRAY).unwrap();
            w.varint(3).unwrap();
            w.tag(tag::HOLE).unwrap();
            w.tag(tag::UNDEFINED).unwrap();
            w.number(-0.5).unwrap();
            w.tag(tag::END).unwrap();
        });
        assert_eq!(text.unwrap(), r#"{"z":1,"a":2,"h":[null,null,-0.5]}"#);
    }

    #[test]
    fn shared_references_expand_and_cycles_fail() {
        // [{x: 1}, ref 1]
        let shared = json(|w| {
            w.tag(tag::ARRAY).unwrap();
            w.varint(2).unwrap();
            w.tag(tag::OBJECT).unwrap();
            w.string("x").unwrap();
            w.number(1.0).unwrap();
            w.tag(tag::END).unwrap();
            w.tag(tag::REF).unwrap();
            w.varint(1).unwrap();
        });
        assert_eq!(shared.unwrap(), r#"[{"x":1},{"x":1}]"#);
        let cycle = json(|w| {
            w.tag(tag::OBJECT).unwrap();
            w.string("self").unwrap();
            w.tag(tag::REF).unwrap();
            w.varint(0).unwrap();
            w.tag(tag::END).unwrap();
        });
        assert_eq!(cycle, Err(JsonError::Cycle));
    }

    #[test]
    fn lone_surrogates_are_escaped_not_replaced() {
        let text = json(|w| {
            w.tag(tag::OBJECT).unwrap();
            w.string16(&[0xDC00]).unwrap();
            w.string16(&[0x61, 0xD800]).unwrap();
            w.tag(tag::END).unwrap();
        });
        assert_eq!(text.unwrap(), r#"{"\udc00":"a\ud800"}"#);
    }

    #[test]
    fn the_text_is_bounded() {
        let mut w = Writer::new(usize::MAX);
        w.tag(tag::ARRAY).unwrap();
        w.varint(1000).unwrap();
        for _ in 0..1000 {
            w.tag(tag::HOLE).unwrap();
        }
        assert_eq!(
            write_json(&w.finish(), 100),
            Err(JsonError::TooLarge { limit: 100 })
        );
    }

    #[test]
    fn dates_and_bigints_become_json_like_stringify() {
        assert_eq!(iso_date(0.0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(1_700_000_000_123.0).unwrap(), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso_date(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(bigint_decimal(false, &[]), "0");
        assert_eq!(
            bigint_decimal(true, &[0x00, 0x00, 0x00, 0x00, 0x01]),
            "-4294967296"
        );
        assert_eq!(
            bigint_decimal(false, &u64::MAX.to_le_bytes()),
            u64::MAX.to_string()
        );
    }
}
