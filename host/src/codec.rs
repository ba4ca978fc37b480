//! The host's side of the message codec: the one place where a message's
//! bytes become a Rust value and back.
//!
//! For now a message is the UTF-8 JSON text of the value, as the guest's
//! `codec` module writes it; the structured-clone format of `docs/codec.md`
//! replaces both sides together.

use crate::error::{Error, Result};

/// Decodes a guest message into a JSON value.
pub fn decode(bytes: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Message(e.to_string()))
}

/// Encodes a JSON value as a guest message.
pub fn encode(value: &serde_json::Value) -> Vec<u8> {
    // Writing a `Value` into a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec())
}
