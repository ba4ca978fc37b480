//! The message codec: the one place where a JavaScript value becomes the bytes
//! that cross the host, and back.
//!
//! For now a message is the UTF-8 JSON text of the value (`undefined` and other
//! values JSON cannot express travel as `null`). The structured-clone format of
//! `docs/codec.md` replaces this module without changing its signature.

use javy::quickjs::{Ctx, Result, Value};

/// Encodes `value` for `postMessage`.
pub fn encode<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<Vec<u8>> {
    Ok(match ctx.json_stringify(value)? {
        Some(text) => text.to_string()?.into_bytes(),
        None => b"null".to_vec(),
    })
}

/// Decodes a message made by [`encode`] (or by the host) into a fresh value.
pub fn decode<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> Result<Value<'js>> {
    ctx.json_parse(bytes.to_vec())
}
