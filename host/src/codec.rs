//! The host's side of the message codec (`docs/codec.md`, crate
//! `miniworker-codec`): checking what guests send, and converting for Rust.

pub use miniworker_codec::{DEFAULT_MAX_MESSAGE, Item, Message, Node, ViewKind};

/// A guest broke the host protocol (a malformed message): it is killed with
/// reason `crash`.
#[derive(Debug)]
pub(crate) struct ProtocolViolation(pub(crate) String);

impl std::fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the guest broke the host protocol: {}", self.0)
    }
}

impl std::error::Error for ProtocolViolation {}

/// Checks a message a guest sent before it is queued: a malformed one is a
/// trap of the sender, so no receiver ever sees it.
pub(crate) fn check_from_guest(data: &[u8], limit: usize) -> wasmtime::Result<Message> {
    if data.len() > limit {
        return Err(wasmtime::Error::new(ProtocolViolation(format!(
            "a message of {} bytes, over the limit",
            data.len()
        ))));
    }
    Message::decode(data).map_err(|e| wasmtime::Error::new(ProtocolViolation(e.to_string())))
}
