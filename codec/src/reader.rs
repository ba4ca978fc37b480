//! Reading a message's bytes: [`Reader`], every read bounds-checked, and
//! [`DecodeError`], what every reader reports. The structure on top of it
//! is [`crate::Tokens`].

use crate::{Str, VERSION, tag};

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong.
    pub what: &'static str,
    /// The byte offset where it was found.
    pub at: usize,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed message at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for DecodeError {}

/// Reads a message's bytes; every read is bounds-checked.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, after checking the version byte.
    pub fn new(buf: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        match buf.first() {
            Some(&VERSION) => Ok(Reader { buf, pos: 1 }),
            Some(_) => Err(DecodeError {
                what: "unknown format version",
                at: 0,
            }),
            None => Err(DecodeError {
                what: "empty message",
                at: 0,
            }),
        }
    }

    /// A reader of the value at byte `offset` of a message whose version
    /// byte was checked before.
    pub fn at(buf: &'a [u8], offset: usize) -> Result<Reader<'a>, DecodeError> {
        if offset == 0 || offset > buf.len() {
            return Err(DecodeError {
                what: "offset outside the message",
                at: offset,
            });
        }
        Ok(Reader { buf, pos: offset })
    }

    /// The offset of the next byte.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// An error at the current position.
    #[inline]
    pub fn error(&self, what: &'static str) -> DecodeError {
        DecodeError { what, at: self.pos }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }

    /// The next byte, without consuming it.
    #[inline]
    pub fn peek(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error("unexpected end"))
    }

    /// The next byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// The next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() as u64 {
            return Err(self.error("length past the end"));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = (b & 0x7f) as u64;
            if i == 9 && bits > 1 {
                return Err(self.error("varint overflows 64 bits"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    /// A length that must fit in what is left, at `min_bytes` per unit.
    #[inline]
    pub fn length(&mut self, min_bytes: u64) -> Result<u64, DecodeError> {
        let n = self.varint()?;
        if n.saturating_mul(min_bytes) > self.remaining() as u64 {
            return Err(self.error("length past the end"));
        }
        Ok(n)
    }

    /// The payload of an INT.
    #[inline]
    pub fn int(&mut self) -> Result<f64, DecodeError> {
        let z = self.varint()?;
        let i = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Ok(i as f64)
    }

    /// 8 bytes of IEEE 754 little-endian.
    #[inline]
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// The payload of a STRING (after its tag).
    #[inline]
    pub fn str_payload(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.length(1)?;
        let at = self.pos;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError {
            what: "invalid UTF-8",
            at,
        })
    }

    /// The payload of a STRING16 (after its tag): its UTF-16LE bytes.
    #[inline]
    pub fn str16_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.length(2)?;
        self.bytes(n * 2)
    }

    /// A whole string value (STRING or STRING16), exactly as encoded.
    #[inline]
    pub fn any_string(&mut self) -> Result<Str<'a>, DecodeError> {
        match self.byte()? {
            tag::STRING => Ok(Str::Utf8(self.str_payload()?)),
            tag::STRING16 => Ok(Str::Utf16(self.str16_bytes()?)),
            _ => Err(self.error("expected a string")),
        }
    }

    /// The payload of a BIGINT: (negative, magnitude little-endian).
    pub fn bigint_payload(&mut self) -> Result<(bool, &'a [u8]), DecodeError> {
        let negative = match self.byte()? {
            0 => false,
            1 => true,
            _ => return Err(self.error("bad BigInt sign")),
        };
        let n = self.length(1)?;
        Ok((negative, self.bytes(n)?))
    }
}
