//! The miniworker message format, version 1 (`docs/codec.md`).
//!
//! A message is a version byte followed by one value. A value is a tag byte
//! and its payload; containers (objects, arrays, maps, sets) hold values in
//! pre-order and end with [`tag::END`] (arrays are length-prefixed instead).
//! Every object-like value takes the next *reference index* when its tag is
//! written, so [`tag::REF`] can name it again: shared and cyclic references
//! keep their identity within one message.
//!
//! This crate has the primitives both sides share ([`Writer`], [`Reader`]);
//! with the `message` feature, the host's decoded [`Message`] type too.
//! Nothing here recurses on the native stack.

#![deny(missing_docs)]

#[cfg(feature = "message")]
mod json;
#[cfg(feature = "message")]
mod message;
mod reader;
mod tokens;
#[cfg(feature = "message")]
pub use json::{JsonError, MAX_JSON_BYTES, write_json};
#[cfg(feature = "message")]
pub use message::{Item, Message, Node};
pub use reader::{DecodeError, Reader};
pub use tokens::{Str, Token, Tokens, ViewBuffer, validate};

/// The format version, the first byte of every message.
pub const VERSION: u8 = 1;

/// The default limit on an encoded message (docs/spec.md section 4): 16 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

/// The smallest ArrayBuffer payload that may travel outside a message's
/// bytes ([`tag::ARRAY_BUFFER_OUT`]): 64 KiB. Smaller ones are inline.
pub const OUTSIDE_MIN: usize = 64 << 10;

/// A message as it is held and read: its bytes and, in order, the payloads
/// of its outside ArrayBuffers ([`tag::ARRAY_BUFFER_OUT`]; none for most
/// messages). Its size is the bytes' length plus the payloads'.
#[derive(Clone, Copy, Debug)]
pub struct Parts<'a> {
    /// The version byte and the value.
    pub bytes: &'a [u8],
    /// The outside payloads, each used once, in order.
    pub outside: &'a [Vec<u8>],
}

impl Parts<'_> {
    /// Bytes in all: the message's own and its outside payloads'.
    pub fn len(&self) -> usize {
        self.outside.iter().map(Vec::len).sum::<usize>() + self.bytes.len()
    }

    /// Never true: a message has at least its version byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<'a> From<&'a [u8]> for Parts<'a> {
    fn from(bytes: &'a [u8]) -> Parts<'a> {
        Parts { bytes, outside: &[] }
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Parts<'a> {
    fn from(bytes: &'a [u8; N]) -> Parts<'a> {
        Parts { bytes, outside: &[] }
    }
}

impl<'a> From<&'a Vec<u8>> for Parts<'a> {
    fn from(bytes: &'a Vec<u8>) -> Parts<'a> {
        Parts { bytes, outside: &[] }
    }
}

/// Tag bytes.
pub mod tag {
    /// `undefined`.
    pub const UNDEFINED: u8 = 0x00;
    /// `null`.
    pub const NULL: u8 = 0x01;
    /// `false`.
    pub const FALSE: u8 = 0x02;
    /// `true`.
    pub const TRUE: u8 = 0x03;
    /// An integral number in ±2^53 other than -0: zigzag varint.
    pub const INT: u8 = 0x04;
    /// Any other number: 8 bytes, IEEE 754 little-endian.
    pub const FLOAT: u8 = 0x05;
    /// A BigInt: sign byte (0 or 1), varint n, n magnitude bytes little-endian.
    pub const BIGINT: u8 = 0x06;
    /// A string: varint n, n bytes of UTF-8.
    pub const STRING: u8 = 0x07;
    /// A string with lone surrogates: varint n, n UTF-16LE code units.
    pub const STRING16: u8 = 0x08;
    /// An object-like value encoded earlier in this message: varint index.
    pub const REF: u8 = 0x09;
    /// Ends an object, map or set.
    pub const END: u8 = 0x0E;
    /// An array slot with no element.
    pub const HOLE: u8 = 0x0F;
    /// A plain object: (string key, value) pairs, then END.
    pub const OBJECT: u8 = 0x10;
    /// An array: varint length, then that many values or HOLEs.
    pub const ARRAY: u8 = 0x11;
    /// A Date: its time value as 8 bytes IEEE 754 little-endian.
    pub const DATE: u8 = 0x12;
    /// A RegExp: source string, flags string.
    pub const REGEXP: u8 = 0x13;
    /// A Map: (key, value) pairs, then END.
    pub const MAP: u8 = 0x14;
    /// A Set: values, then END.
    pub const SET: u8 = 0x15;
    /// An ArrayBuffer: varint n, n bytes.
    pub const ARRAY_BUFFER: u8 = 0x16;
    /// An ArrayBuffer whose payload travels outside the message's bytes
    /// ([`crate::Parts`]): varint k, the index of its outside payload, which
    /// is the message's k-th ARRAY_BUFFER_OUT (each payload used once, in
    /// order) and at least [`crate::OUTSIDE_MIN`] bytes long.
    pub const ARRAY_BUFFER_OUT: u8 = 0x1B;
    /// A typed array or DataView: kind byte, varint byte offset, varint
    /// length (elements; bytes for a DataView), then its buffer
    /// (ARRAY_BUFFER, ARRAY_BUFFER_OUT or REF).
    pub const VIEW: u8 = 0x17;
    /// An Error: name string, message string, stack string or UNDEFINED.
    pub const ERROR: u8 = 0x18;
    /// An array with own non-index properties: as ARRAY, then (string key,
    /// value) pairs, then END. No key is an array index or `length`.
    pub const ARRAY_PROPS: u8 = 0x19;
    /// An Error with own properties beyond name, message and stack (an
    /// AggregateError's `errors`): as ERROR, then (string key, value) pairs,
    /// then END.
    pub const ERROR_PROPS: u8 = 0x1A;
}

/// The kinds of [`tag::VIEW`], with their element sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ViewKind {
    /// `Int8Array`
    Int8 = 0,
    /// `Uint8Array`
    Uint8 = 1,
    /// `Uint8ClampedArray`
    Uint8Clamped = 2,
    /// `Int16Array`
    Int16 = 3,
    /// `Uint16Array`
    Uint16 = 4,
    /// `Int32Array`
    Int32 = 5,
    /// `Uint32Array`
    Uint32 = 6,
    /// `Float32Array`
    Float32 = 7,
    /// `Float64Array`
    Float64 = 8,
    /// `BigInt64Array`
    BigInt64 = 9,
    /// `BigUint64Array`
    BigUint64 = 10,
    /// `DataView`
    DataView = 11,
    /// `Float16Array`
    Float16 = 12,
}

impl ViewKind {
    /// Every kind, indexed by its byte.
    pub const ALL: [ViewKind; 13] = [
        ViewKind::Int8,
        ViewKind::Uint8,
        ViewKind::Uint8Clamped,
        ViewKind::Int16,
        ViewKind::Uint16,
        ViewKind::Int32,
        ViewKind::Uint32,
        ViewKind::Float32,
        ViewKind::Float64,
        ViewKind::BigInt64,
        ViewKind::BigUint64,
        ViewKind::DataView,
        ViewKind::Float16,
    ];

    /// The kind with byte `b`.
    pub fn from_byte(b: u8) -> Option<ViewKind> {
        ViewKind::ALL.get(b as usize).copied()
    }

    /// Bytes per element (1 for a DataView, whose length counts bytes).
    pub fn element_size(self) -> u64 {
        match self {
            ViewKind::Int8 | ViewKind::Uint8 | ViewKind::Uint8Clamped | ViewKind::DataView => 1,
            ViewKind::Int16 | ViewKind::Uint16 | ViewKind::Float16 => 2,
            ViewKind::Int32 | ViewKind::Uint32 | ViewKind::Float32 => 4,
            ViewKind::Float64 | ViewKind::BigInt64 | ViewKind::BigUint64 => 8,
        }
    }

    /// The JavaScript constructor's name.
    pub fn name(self) -> &'static str {
        match self {
            ViewKind::Int8 => "Int8Array",
            ViewKind::Uint8 => "Uint8Array",
            ViewKind::Uint8Clamped => "Uint8ClampedArray",
            ViewKind::Int16 => "Int16Array",
            ViewKind::Uint16 => "Uint16Array",
            ViewKind::Int32 => "Int32Array",
            ViewKind::Uint32 => "Uint32Array",
            ViewKind::Float32 => "Float32Array",
            ViewKind::Float64 => "Float64Array",
            ViewKind::BigInt64 => "BigInt64Array",
            ViewKind::BigUint64 => "BigUint64Array",
            ViewKind::DataView => "DataView",
            ViewKind::Float16 => "Float16Array",
        }
    }

    /// Checks a view's offset and length against its buffer's length.
    pub fn fits(self, offset: u64, length: u64, buffer_len: u64) -> bool {
        let size = self.element_size();
        offset.is_multiple_of(size)
            && length
                .checked_mul(size)
                .and_then(|bytes| bytes.checked_add(offset))
                .is_some_and(|end| end <= buffer_len)
    }
}

/// Whether `n` travels as [`tag::INT`].
pub fn is_int(n: f64) -> bool {
    const MAX_SAFE: f64 = 9_007_199_254_740_992.0; // 2^53
    n.fract() == 0.0 && n.abs() <= MAX_SAFE && !(n == 0.0 && n.is_sign_negative())
}

/// The encoded message would exceed its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// The limit in bytes.
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the message is larger than the limit of {} bytes", self.limit)
    }
}

impl std::error::Error for TooLarge {}

/// Writes a message, refusing to grow past its limit.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    limit: usize,
    /// Outside payloads written so far ([`Writer::array_buffer_outside`]),
    /// and their bytes, which count toward the limit.
    outside: u64,
    outside_bytes: u64,
}

impl Writer {
    /// A writer for one message of at most `limit` bytes; writes the version.
    pub fn new(limit: usize) -> Writer {
        let mut buf = Vec::with_capacity(64);
        buf.push(VERSION);
        Writer {
            buf,
            limit,
            outside: 0,
            outside_bytes: 0,
        }
    }

    /// [`Writer::new`] writing into `buf` (emptied first), so that a caller
    /// encoding message after message can keep one buffer.
    pub fn reuse(mut buf: Vec<u8>, limit: usize) -> Writer {
        buf.clear();
        buf.push(VERSION);
        Writer {
            buf,
            limit,
            outside: 0,
            outside_bytes: 0,
        }
    }

    /// The bytes written since position `start` (a [`Writer::len`] taken earlier).
    pub fn written_since(&self, start: usize) -> &[u8] {
        self.buf.get(start..).unwrap_or(&[])
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Never true: the version byte is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `n` more bytes fit under the limit (check before copying a big payload).
    pub fn room_for(&self, n: u64) -> Result<(), TooLarge> {
        if (self.buf.len() as u64)
            .saturating_add(self.outside_bytes)
            .saturating_add(n)
            > self.limit as u64
        {
            Err(TooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), TooLarge> {
        self.room_for(b.len() as u64)?;
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// Appends an ARRAY_BUFFER_OUT for a payload of `n` bytes (at least
    /// [`OUTSIDE_MIN`]) that the caller sends beside the message; `n`
    /// counts toward the limit. Returns its index among the outside payloads.
    pub fn array_buffer_outside(&mut self, n: usize) -> Result<u64, TooLarge> {
        debug_assert!(n >= OUTSIDE_MIN, "an outside payload under OUTSIDE_MIN");
        self.room_for(n as u64)?;
        let k = self.outside;
        self.tag(tag::ARRAY_BUFFER_OUT)?;
        self.varint(k)?;
        self.outside += 1;
        self.outside_bytes += n as u64;
        Ok(k)
    }

    /// Appends a tag byte.
    pub fn tag(&mut self, t: u8) -> Result<(), TooLarge> {
        self.bytes(&[t])
    }

    /// Appends an unsigned LEB128 varint.
    pub fn varint(&mut self, mut v: u64) -> Result<(), TooLarge> {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                tmp[n] = byte;
                n += 1;
                break;
            }
            tmp[n] = byte | 0x80;
            n += 1;
        }
        self.bytes(&tmp[..n])
    }

    /// Appends a number as INT or FLOAT.
    pub fn number(&mut self, n: f64) -> Result<(), TooLarge> {
        if is_int(n) {
            let i = n as i64;
            self.tag(tag::INT)?;
            self.varint(((i << 1) ^ (i >> 63)) as u64)
        } else {
            self.tag(tag::FLOAT)?;
            self.bytes(&n.to_le_bytes())
        }
    }

    /// Appends a UTF-8 string value.
    pub fn string(&mut self, s: &str) -> Result<(), TooLarge> {
        self.room_for(s.len() as u64)?;
        self.tag(tag::STRING)?;
        self.varint(s.len() as u64)?;
        self.bytes(s.as_bytes())
    }

    /// Appends a string of UTF-16 code units (for lone surrogates).
    pub fn string16(&mut self, units: &[u16]) -> Result<(), TooLarge> {
        self.room_for(units.len() as u64 * 2)?;
        self.tag(tag::STRING16)?;
        self.varint(units.len() as u64)?;
        for u in units {
            self.bytes(&u.to_le_bytes())?;
        }
        Ok(())
    }

    /// Appends a string: UTF-8 when `units` are valid UTF-16, else STRING16.
    pub fn string_utf16(&mut self, units: &[u16]) -> Result<(), TooLarge> {
        match String::from_utf16(units) {
            Ok(s) => self.string(&s),
            Err(_) => self.string16(units),
        }
    }

    /// The finished message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::new(usize::MAX);
            w.varint(v).unwrap();
            let bytes = w.finish();
            let mut r = Reader::new(&bytes).unwrap();
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn numbers_pick_int_or_float() {
        for n in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.5,
            f64::NAN,
            f64::INFINITY,
            9_007_199_254_740_993.0,
            -1e300,
        ] {
            let mut w = Writer::new(usize::MAX);
            w.number(n).unwrap();
            let bytes = w.finish();
            let mut r = Reader::new(&bytes).unwrap();
            let back = match r.byte().unwrap() {
                tag::INT => r.int().unwrap(),
                tag::FLOAT => r.f64().unwrap(),
                t => panic!("tag {t}"),
            };
            assert!(
                back.to_bits() == n.to_bits() || (back.is_nan() && n.is_nan()),
                "{n} -> {back}"
            );
        }
    }

    #[test]
    fn the_limit_refuses_before_copying() {
        let mut w = Writer::new(10);
        assert_eq!(w.string("0123456789abc"), Err(TooLarge { limit: 10 }));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_reused_buffer_starts_a_fresh_message_under_its_own_limit() {
        let mut first = Writer::new(usize::MAX);
        first.string("an earlier, longer message").unwrap();
        let mut w = Writer::reuse(first.finish(), 4);
        w.varint(300).unwrap();
        assert_eq!(w.finish(), [VERSION, 0xac, 0x02]);
        let mut w = Writer::reuse(Vec::new(), 4);
        assert_eq!(w.string("abcd"), Err(TooLarge { limit: 4 }));
    }

    #[test]
    fn overlong_lengths_are_errors_not_allocations() {
        let bytes = [VERSION, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let mut r = Reader::new(&bytes).unwrap();
        assert!(r.length(1).is_err());
    }
}
