//! The one reader of the message structure: every decoder (the host's
//! validator, its decoded [`crate::Message`] tree, its JSON writer, and the
//! guest's QuickJS decoder) drives [`Tokens`], so the rules of the format
//! (which tags may appear where, holes only in arrays, references only to
//! earlier objects, a view's buffer and bounds, trailing bytes) live here
//! once. Nothing here recurses or allocates per value, except one small
//! frame per open container and one entry per ArrayBuffer.

use std::collections::HashMap;

use crate::{DecodeError, OUTSIDE_MIN, Parts, Reader, ViewKind, tag};

/// A string of a message, as it was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Str<'a> {
    /// A STRING: valid UTF-8.
    Utf8(&'a str),
    /// A STRING16: UTF-16LE code units (an even number of bytes), with at
    /// least one lone surrogate.
    Utf16(&'a [u8]),
}

impl<'a> Str<'a> {
    /// The string's UTF-16 code units.
    pub fn units(self) -> impl Iterator<Item = u16> + 'a {
        let (utf8, utf16) = match self {
            Str::Utf8(s) => (Some(s.encode_utf16()), None),
            Str::Utf16(b) => (
                None,
                Some(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]))),
            ),
        };
        utf8.into_iter().flatten().chain(utf16.into_iter().flatten())
    }

    /// The string, with each lone surrogate as U+FFFD.
    pub fn to_string_lossy(self) -> String {
        match self {
            Str::Utf8(s) => s.to_owned(),
            Str::Utf16(_) => char::decode_utf16(self.units())
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        }
    }

    /// Its length in encoded bytes.
    pub fn byte_len(self) -> usize {
        match self {
            Str::Utf8(s) => s.len(),
            Str::Utf16(b) => b.len(),
        }
    }
}

/// A view's buffer: written inline after the view, or an earlier ArrayBuffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewBuffer<'a> {
    /// A new ArrayBuffer with these bytes; it takes the index after the view's.
    Inline(&'a [u8]),
    /// The ArrayBuffer with this reference index.
    Ref(u64),
}

/// One step through a message, in pre-order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    /// `undefined`
    Undefined,
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A BigInt: sign and little-endian magnitude.
    BigInt {
        /// Below zero.
        negative: bool,
        /// The magnitude, little-endian.
        magnitude: &'a [u8],
    },
    /// A string value.
    String(Str<'a>),
    /// The object-like value with this reference index, seen earlier.
    Ref(u64),
    /// An array slot without an element (only inside an array).
    Hole,
    /// The key of the next property of the innermost object.
    Key(Str<'a>),
    /// Opens a plain object: `Key`, value pairs follow, then `End`.
    Object,
    /// Opens an array of this length: that many values or holes, then its
    /// own non-index properties as `Key`, value pairs (none for most
    /// arrays), then `End`.
    Array(u64),
    /// Opens a Map: key and value alternate, then `End`.
    Map,
    /// Opens a Set: values, then `End`.
    Set,
    /// Closes the innermost open container.
    End,
    /// A Date's time value.
    Date(f64),
    /// A RegExp.
    RegExp {
        /// Its source.
        source: Str<'a>,
        /// Its flags.
        flags: Str<'a>,
    },
    /// An ArrayBuffer.
    ArrayBuffer(&'a [u8]),
    /// A typed array or DataView; its bounds are checked.
    View {
        /// The constructor.
        kind: ViewKind,
        /// Byte offset into the buffer.
        offset: u64,
        /// Length in elements (bytes for a DataView).
        length: u64,
        /// Its buffer.
        buffer: ViewBuffer<'a>,
    },
    /// An Error object.
    Error {
        /// `name`
        name: Str<'a>,
        /// `message`
        message: Str<'a>,
        /// `stack`, when it had one.
        stack: Option<Str<'a>>,
        /// Own properties beyond these follow (an AggregateError's
        /// `errors`): then the error opens, and `Key`, value pairs follow,
        /// then `End`.
        props: bool,
    },
}

/// An open container.
#[derive(Clone, Copy, Debug)]
enum Frame {
    /// Elements still to read, and whether properties follow them.
    Array(u64, bool),
    /// Properties: whether the next item is a key, and whose they are.
    Props(bool, Owner),
    /// Whether the next value is an entry's key.
    Map(bool),
    Set,
}

/// What holds the properties being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Object,
    /// An array's, after its elements: no key is an index or `length`.
    Array,
    Error,
}

/// Reads a message token by token, checking everything on the way.
#[derive(Debug)]
pub struct Tokens<'a> {
    r: Reader<'a>,
    stack: Vec<Frame>,
    /// Reference indexes taken so far.
    nodes: u64,
    /// Reference indexes below this were checked by an earlier pass
    /// ([`Tokens::value_at`]); references to them are taken as they are.
    trusted_below: u64,
    /// The length of each ArrayBuffer, by reference index (a view's bounds).
    buffers: HashMap<u64, u64>,
    /// The message's outside payloads, and how many were read.
    outside: &'a [Vec<u8>],
    outside_taken: usize,
    /// The whole value was read.
    done: bool,
    /// Read one value only, without the version byte or the trailing check.
    one_value: bool,
}

impl<'a> Tokens<'a> {
    /// A reader of the whole message (checks the version byte, and at the
    /// end that every outside payload was used).
    pub fn new(message: impl Into<Parts<'a>>) -> Result<Tokens<'a>, DecodeError> {
        let Parts { bytes, outside } = message.into();
        Ok(Tokens {
            r: Reader::new(bytes)?,
            stack: Vec::new(),
            nodes: 0,
            trusted_below: 0,
            buffers: HashMap::new(),
            outside,
            outside_taken: 0,
            done: false,
            one_value: false,
        })
    }

    /// A reader of the one value at byte `offset` of a message that was
    /// read whole before (so its references to earlier objects are valid),
    /// whose first object-like value has reference index `first_index`.
    pub fn value_at(message: Parts<'a>, offset: usize, first_index: u64) -> Result<Tokens<'a>, DecodeError> {
        Ok(Tokens {
            r: Reader::at(message.bytes, offset)?,
            stack: Vec::new(),
            nodes: first_index,
            trusted_below: first_index,
            buffers: HashMap::new(),
            outside: message.outside,
            outside_taken: 0,
            done: false,
            one_value: true,
        })
    }

    /// The byte offset of the next token.
    pub fn offset(&self) -> usize {
        self.r.position()
    }

    /// The reference index the next object-like value will take.
    pub fn next_index(&self) -> u64 {
        self.nodes
    }

    /// Open containers.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Outside payloads read so far: an ArrayBuffer's token (or a view's
    /// inline buffer) that makes it grow is the message's outside payload
    /// `outside_taken() - 1`.
    pub fn outside_taken(&self) -> usize {
        self.outside_taken
    }

    /// The next token, or `None` once the message's value was read whole
    /// (then the bytes were checked to end there).
    #[allow(clippy::should_implement_trait)] // fallible: not an Iterator
    #[inline]
    pub fn next(&mut self) -> Result<Option<Token<'a>>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        let token = self.step()?;
        if self.stack.is_empty() && !matches!(token, Token::Key(_)) && !opens(&token) {
            self.done = true;
            if !self.one_value {
                self.finish()?;
            }
        }
        Ok(Some(token))
    }

    /// The checks at the end of a whole message: no trailing bytes, every
    /// outside payload used.
    #[cold]
    fn finish(&self) -> Result<(), DecodeError> {
        self.r.finish()?;
        if self.outside_taken != self.outside.len() {
            return Err(self.r.error("an outside payload the message does not use"));
        }
        Ok(())
    }

    #[inline]
    fn step(&mut self) -> Result<Token<'a>, DecodeError> {
        match self.stack.last_mut() {
            Some(Frame::Array(0, false)) => {
                self.stack.pop();
                self.delivered();
                return Ok(Token::End);
            }
            Some(top @ Frame::Array(0, true)) => *top = Frame::Props(true, Owner::Array),
            _ => {}
        }
        match self.stack.last_mut() {
            Some(Frame::Props(want_key @ true, owner)) => {
                if self.r.peek()? == tag::END {
                    self.r.byte()?;
                    self.stack.pop();
                    self.delivered();
                    return Ok(Token::End);
                }
                *want_key = false;
                let is_array = *owner == Owner::Array;
                let key = self.r.any_string()?;
                if is_array && is_array_own_key(key) {
                    return Err(self.r.error("an array property named by an index or length"));
                }
                return Ok(Token::Key(key));
            }
            Some(Frame::Map(want_key)) if self.r.peek()? == tag::END => {
                if !*want_key {
                    return Err(self.r.error("a Map key without a value"));
                }
                self.r.byte()?;
                self.stack.pop();
                self.delivered();
                return Ok(Token::End);
            }
            Some(Frame::Set) if self.r.peek()? == tag::END => {
                self.r.byte()?;
                self.stack.pop();
                self.delivered();
                return Ok(Token::End);
            }
            _ => {}
        }
        let in_array = matches!(self.stack.last(), Some(Frame::Array(..)));
        let token = self.value(in_array)?;
        if !opens(&token) {
            self.delivered();
        }
        Ok(token)
    }

    /// A value (or container) was completed: its container moves on.
    #[inline]
    fn delivered(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Array(remaining, _)) => *remaining -= 1,
            Some(Frame::Props(want_key, _)) => *want_key = true,
            Some(Frame::Map(want_key)) => *want_key = !*want_key,
            Some(Frame::Set) | None => {}
        }
    }

    #[inline]
    fn take_index(&mut self) -> u64 {
        let index = self.nodes;
        self.nodes += 1;
        index
    }

    #[inline]
    fn value(&mut self, in_array: bool) -> Result<Token<'a>, DecodeError> {
        let r = &mut self.r;
        let t = r.byte()?;
        Ok(match t {
            tag::UNDEFINED => Token::Undefined,
            tag::NULL => Token::Null,
            tag::FALSE => Token::Bool(false),
            tag::TRUE => Token::Bool(true),
            tag::INT => Token::Number(r.int()?),
            tag::FLOAT => Token::Number(r.f64()?),
            tag::BIGINT => {
                let (negative, magnitude) = r.bigint_payload()?;
                Token::BigInt { negative, magnitude }
            }
            tag::STRING => Token::String(Str::Utf8(r.str_payload()?)),
            tag::STRING16 => Token::String(Str::Utf16(r.str16_bytes()?)),
            tag::REF => {
                let i = r.varint()?;
                if i >= self.nodes {
                    return Err(r.error("reference to an object not seen yet"));
                }
                Token::Ref(i)
            }
            tag::HOLE if in_array => Token::Hole,
            tag::OBJECT => {
                self.take_index();
                self.stack.push(Frame::Props(true, Owner::Object));
                Token::Object
            }
            tag::ARRAY | tag::ARRAY_PROPS => {
                let len = r.length(1)?;
                self.take_index();
                self.stack.push(Frame::Array(len, t == tag::ARRAY_PROPS));
                Token::Array(len)
            }
            tag::MAP => {
                self.take_index();
                self.stack.push(Frame::Map(true));
                Token::Map
            }
            tag::SET => {
                self.take_index();
                self.stack.push(Frame::Set);
                Token::Set
            }
            tag::DATE => {
                let time = r.f64()?;
                self.take_index();
                Token::Date(time)
            }
            tag::REGEXP => {
                let source = r.any_string()?;
                let flags = r.any_string()?;
                self.take_index();
                Token::RegExp { source, flags }
            }
            tag::ARRAY_BUFFER | tag::ARRAY_BUFFER_OUT => Token::ArrayBuffer(self.array_buffer(t)?),
            tag::VIEW => self.view()?,
            tag::ERROR | tag::ERROR_PROPS => {
                let name = r.any_string()?;
                let message = r.any_string()?;
                let stack = if r.peek()? == tag::UNDEFINED {
                    r.byte()?;
                    None
                } else {
                    Some(r.any_string()?)
                };
                self.take_index();
                let props = t == tag::ERROR_PROPS;
                if props {
                    self.stack.push(Frame::Props(true, Owner::Error));
                }
                Token::Error {
                    name,
                    message,
                    stack,
                    props,
                }
            }
            _ => return Err(r.error("unknown tag")),
        })
    }

    /// An ArrayBuffer's bytes, its tag `t` read (ARRAY_BUFFER: inline;
    /// ARRAY_BUFFER_OUT: an outside payload): it takes the next reference
    /// index, and its length is noted for the views that name it.
    fn array_buffer(&mut self, t: u8) -> Result<&'a [u8], DecodeError> {
        let bytes = if t == tag::ARRAY_BUFFER {
            let n = self.r.length(1)?;
            self.r.bytes(n)?
        } else {
            self.outside_payload()?
        };
        let index = self.take_index();
        self.buffers.insert(index, bytes.len() as u64);
        Ok(bytes)
    }

    /// The payload an ARRAY_BUFFER_OUT names (its tag read): the next
    /// outside payload in a whole message; any of them in a value read
    /// again ([`Tokens::value_at`]).
    fn outside_payload(&mut self) -> Result<&'a [u8], DecodeError> {
        let k = self.r.varint()?;
        if !self.one_value && k != self.outside_taken as u64 {
            return Err(self.r.error("outside payloads out of order"));
        }
        let payload = usize::try_from(k)
            .ok()
            .and_then(|k| self.outside.get(k))
            .ok_or_else(|| self.r.error("an outside payload the message does not have"))?;
        if payload.len() < OUTSIDE_MIN {
            return Err(self.r.error("an outside payload under 64 KiB"));
        }
        self.outside_taken += 1;
        Ok(payload)
    }

    #[inline]
    fn view(&mut self) -> Result<Token<'a>, DecodeError> {
        let kind = ViewKind::from_byte(self.r.byte()?).ok_or_else(|| self.r.error("unknown view kind"))?;
        let offset = self.r.varint()?;
        let length = self.r.varint()?;
        let me = self.take_index();
        let not_a_buffer = "a view's buffer must be an ArrayBuffer";
        let (buffer, buffer_len) = match self.r.byte()? {
            t @ (tag::ARRAY_BUFFER | tag::ARRAY_BUFFER_OUT) => {
                let bytes = self.array_buffer(t)?;
                (ViewBuffer::Inline(bytes), Some(bytes.len() as u64))
            }
            tag::REF => {
                let i = self.r.varint()?;
                if i == me || i >= self.nodes {
                    return Err(self.r.error(not_a_buffer));
                }
                match self.buffers.get(&i) {
                    Some(n) => (ViewBuffer::Ref(i), Some(*n)),
                    // Checked when the whole message was read.
                    None if i < self.trusted_below => (ViewBuffer::Ref(i), None),
                    None => return Err(self.r.error(not_a_buffer)),
                }
            }
            _ => return Err(self.r.error(not_a_buffer)),
        };
        if let Some(n) = buffer_len
            && !kind.fits(offset, length, n)
        {
            return Err(self.r.error("a view out of its buffer's bounds"));
        }
        Ok(Token::View {
            kind,
            offset,
            length,
            buffer,
        })
    }
}

/// Whether `token` opens a container (its `End` completes it).
#[inline]
pub(crate) fn opens(token: &Token<'_>) -> bool {
    matches!(
        token,
        Token::Object | Token::Array(_) | Token::Map | Token::Set | Token::Error { props: true, .. }
    )
}

/// Whether `key` names an array's element or its `length`: such a key is
/// not one of the properties that follow an array's elements.
fn is_array_own_key(key: Str<'_>) -> bool {
    let Str::Utf8(k) = key else {
        return false;
    };
    k == "length"
        || (k
            .parse::<u32>()
            .is_ok_and(|i| i != u32::MAX && i.to_string() == k))
}

/// Checks a whole message without building anything: the host's check of
/// every message a guest sends. Returns the number of object-like values.
pub fn validate<'a>(message: impl Into<Parts<'a>>) -> Result<u64, DecodeError> {
    validate_parts(message.into())
}

fn validate_parts(message: Parts<'_>) -> Result<u64, DecodeError> {
    let mut tokens = Tokens::new(message)?;
    while tokens.next()?.is_some() {}
    Ok(tokens.next_index())
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
