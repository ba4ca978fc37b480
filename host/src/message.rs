//! A message as it crosses the host: the checked bytes of the format of
//! `docs/codec.md` (crate `miniworker-codec`) and its outside payloads.
//! Queues hold these; a decoded form is made only where a host program
//! reads the message.

use miniworker_codec::{MAX_JSON_BYTES, Message, OUTSIDE_MIN, Parts};

use crate::error::MessageError;

/// A guest broke the host protocol (a malformed or oversized message): it
/// is killed with reason `crash`.
#[derive(Debug)]
pub(crate) struct ProtocolViolation(pub(crate) String);

impl std::fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the guest broke the host protocol: {}", self.0)
    }
}

impl std::error::Error for ProtocolViolation {}

/// One message, encoded and checked. Cheap to move; reading it
/// ([`Encoded::to_json`], [`Encoded::decode`]) builds what the reader asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    bytes: Vec<u8>,
    /// The payloads of its outside ArrayBuffers, in order (a guest's
    /// ArrayBuffers of 64 KiB and more; empty for most messages).
    outside: Vec<Vec<u8>>,
}

/// The outside payloads a guest sends before its next message
/// (`context.post-outside`), checked as they arrive: each at least
/// [`OUTSIDE_MIN`], all of them within the message limit.
#[derive(Debug, Default)]
pub(crate) struct Outside {
    payloads: Vec<Vec<u8>>,
    bytes: usize,
}

impl Outside {
    /// Takes the next payload.
    pub(crate) fn push(&mut self, payload: Vec<u8>, limit: usize) -> wasmtime::Result<()> {
        if payload.len() < OUTSIDE_MIN {
            return Err(wasmtime::Error::new(ProtocolViolation(format!(
                "an outside payload of {} bytes, under {OUTSIDE_MIN}",
                payload.len()
            ))));
        }
        self.bytes = self.bytes.saturating_add(payload.len());
        if self.bytes > limit {
            return Err(too_large(self.bytes, limit));
        }
        self.payloads.push(payload);
        Ok(())
    }
}

fn too_large(bytes: usize, limit: usize) -> wasmtime::Error {
    wasmtime::Error::new(ProtocolViolation(format!(
        "a message of {bytes} bytes, over the limit of {limit}"
    )))
}

impl Encoded {
    /// Checks what a guest sent (its bytes, and the outside payloads it
    /// sent before them), without building a decoded copy
    /// ([`miniworker_codec::validate`]): a malformed or oversized message
    /// is a trap of the sender, so no receiver ever sees it.
    pub(crate) fn from_guest(
        bytes: Vec<u8>,
        outside: &mut Outside,
        limit: usize,
    ) -> wasmtime::Result<Encoded> {
        let message = Encoded {
            bytes,
            outside: std::mem::take(outside).payloads,
        };
        let len = message.len();
        if len > limit {
            return Err(too_large(len, limit));
        }
        miniworker_codec::validate(message.parts())
            .map_err(|e| wasmtime::Error::new(ProtocolViolation(e.to_string())))?;
        Ok(message)
    }

    /// Checks `bytes` as a message of at most `limit` bytes.
    pub fn from_bytes(bytes: Vec<u8>, limit: usize) -> Result<Encoded, MessageError> {
        if bytes.len() > limit {
            return Err(MessageError::TooLarge { limit });
        }
        miniworker_codec::validate(&bytes)?;
        Ok(Encoded {
            bytes,
            outside: Vec::new(),
        })
    }

    /// Encodes `message` in at most `limit` bytes.
    pub fn from_message(message: &Message, limit: usize) -> Result<Encoded, MessageError> {
        let bytes = message
            .encode(limit)
            .map_err(|e| MessageError::TooLarge { limit: e.limit })?;
        Ok(Encoded {
            bytes,
            outside: Vec::new(),
        })
    }

    /// Encodes a JSON value in at most `limit` bytes.
    pub fn from_json(value: &serde_json::Value, limit: usize) -> Result<Encoded, MessageError> {
        Encoded::from_message(&Message::from_json(value), limit)
    }

    /// The encoded bytes and the outside payloads.
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            bytes: &self.bytes,
            outside: &self.outside,
        }
    }

    /// Its size in bytes, outside payloads included (what the limits count).
    pub fn len(&self) -> usize {
        self.parts().len()
    }

    /// Never true: a message has at least its version byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes and the outside payloads, moved out (a message handed to a guest).
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<Vec<u8>>) {
        (self.bytes, self.outside)
    }

    /// The decoded tree.
    pub fn decode(&self) -> Result<Message, MessageError> {
        Ok(Message::decode(self.parts())?)
    }

    /// The message as JSON text, as `JSON.stringify` writes it (keys in
    /// order; a BigInt as a decimal string; a cycle is an error), written
    /// straight from the bytes.
    pub fn json_text(&self) -> Result<String, MessageError> {
        Ok(miniworker_codec::write_json(self.parts(), MAX_JSON_BYTES)?)
    }

    /// The message as a JSON value (keys in order).
    pub fn to_json(&self) -> Result<serde_json::Value, MessageError> {
        let text = self.json_text()?;
        serde_json::from_str(&text).map_err(|_| MessageError::NotJson(miniworker_codec::JsonError::TooDeep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniworker_codec::{Writer, tag};

    /// A message of one outside ArrayBuffer.
    fn one_outside() -> Vec<u8> {
        let mut w = Writer::new(usize::MAX);
        w.array_buffer_outside(OUTSIDE_MIN).unwrap();
        w.finish()
    }

    fn violation(e: wasmtime::Error) -> String {
        e.downcast::<ProtocolViolation>().expect("a protocol violation").0
    }

    #[test]
    fn outside_payloads_go_with_the_next_message_only() {
        let mut outside = Outside::default();
        outside.push(vec![7; OUTSIDE_MIN], 1 << 20).unwrap();
        let m = Encoded::from_guest(one_outside(), &mut outside, 1 << 20).unwrap();
        assert_eq!(m.len(), OUTSIDE_MIN + 3);
        assert_eq!(m.parts().outside, [vec![7; OUTSIDE_MIN]]);
        assert!(outside.payloads.is_empty() && outside.bytes == 0);
        // None left for the next one, which names one.
        let e = Encoded::from_guest(one_outside(), &mut outside, 1 << 20).unwrap_err();
        assert!(violation(e).contains("does not have"));
    }

    #[test]
    fn a_guest_breaking_the_outside_rules_is_a_protocol_violation() {
        let mut outside = Outside::default();
        let e = outside.push(vec![0; OUTSIDE_MIN - 1], 1 << 20).unwrap_err();
        assert!(violation(e).contains("under 65536"));
        let e = outside.push(vec![0; OUTSIDE_MIN + 1], OUTSIDE_MIN).unwrap_err();
        assert!(violation(e).contains("over the limit of 65536"));
        // A payload the message does not name.
        let mut outside = Outside::default();
        outside.push(vec![0; OUTSIDE_MIN], 1 << 20).unwrap();
        let e = Encoded::from_guest(vec![1, tag::NULL], &mut outside, 1 << 20).unwrap_err();
        assert!(violation(e).contains("does not use"));
        // Bytes and payloads together over the limit.
        outside.push(vec![0; OUTSIDE_MIN], OUTSIDE_MIN + 2).unwrap();
        let e = Encoded::from_guest(one_outside(), &mut outside, OUTSIDE_MIN + 2).unwrap_err();
        assert!(violation(e).contains("over the limit"));
    }
}
