//! A message as it crosses the host: the checked bytes of the format of
//! `docs/codec.md` (crate `miniworker-codec`). Queues hold these bytes; a
//! decoded form is made only where a host program reads the message.

use miniworker_codec::{MAX_JSON_BYTES, Message};

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
}

impl Encoded {
    /// Checks what a guest sent, without building a decoded copy
    /// ([`miniworker_codec::validate`]): a malformed or oversized message
    /// is a trap of the sender, so no receiver ever sees it.
    pub(crate) fn from_guest(bytes: Vec<u8>, limit: usize) -> wasmtime::Result<Encoded> {
        if bytes.len() > limit {
            return Err(wasmtime::Error::new(ProtocolViolation(format!(
                "a message of {} bytes, over the limit of {limit}",
                bytes.len()
            ))));
        }
        miniworker_codec::validate(&bytes)
            .map_err(|e| wasmtime::Error::new(ProtocolViolation(e.to_string())))?;
        Ok(Encoded { bytes })
    }

    /// Checks `bytes` as a message of at most `limit` bytes.
    pub fn from_bytes(bytes: Vec<u8>, limit: usize) -> Result<Encoded, MessageError> {
        if bytes.len() > limit {
            return Err(MessageError::TooLarge { limit });
        }
        miniworker_codec::validate(&bytes)?;
        Ok(Encoded { bytes })
    }

    /// Encodes `message` in at most `limit` bytes.
    pub fn from_message(message: &Message, limit: usize) -> Result<Encoded, MessageError> {
        let bytes = message
            .encode(limit)
            .map_err(|e| MessageError::TooLarge { limit: e.limit })?;
        Ok(Encoded { bytes })
    }

    /// Encodes a JSON value in at most `limit` bytes.
    pub fn from_json(value: &serde_json::Value, limit: usize) -> Result<Encoded, MessageError> {
        Encoded::from_message(&Message::from_json(value), limit)
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded bytes, moved out (a message handed to a guest).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The decoded tree.
    pub fn decode(&self) -> Result<Message, MessageError> {
        Ok(Message::decode(&self.bytes)?)
    }

    /// The message as JSON text, as `JSON.stringify` writes it (keys in
    /// order; a BigInt as a decimal string; a cycle is an error), written
    /// straight from the bytes.
    pub fn json_text(&self) -> Result<String, MessageError> {
        Ok(miniworker_codec::write_json(&self.bytes, MAX_JSON_BYTES)?)
    }

    /// The message as a JSON value (keys in order).
    pub fn to_json(&self) -> Result<serde_json::Value, MessageError> {
        let text = self.json_text()?;
        serde_json::from_str(&text).map_err(|_| MessageError::NotJson(miniworker_codec::JsonError::TooDeep))
    }
}
