//! The input side of the event stream (docs/spec.md sections 8 and 9): the one
//! parser of what a client sends, a stdin line or a WebSocket text frame.

use serde::Deserialize;
use serde_json::Value;

/// One input, parsed.
#[derive(Debug)]
pub enum Input {
    /// `{"type":"message","data":V}`.
    Message(Value),
    /// `{"type":"terminate"}`.
    Terminate,
    /// `{"type":"open",...}` (the server's first frame).
    Open(Open),
    /// An empty line: nothing to do.
    Blank,
}

/// The server's `open`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open {
    /// `sha256:` and the lowercase hex SHA-256 of the project's tar archive.
    pub project: String,
    /// A worker session: the client is the main thread of this entry file.
    #[serde(default)]
    pub entry: Option<String>,
    /// A run session: `app.js` runs, as `run --json`.
    #[serde(default)]
    pub run: bool,
}

/// Parses one input; `Err` is the `protocol-error` message.
pub fn parse(bytes: &[u8]) -> Result<Input, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Input::Blank);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not valid UTF-8: {e}"))?;
    let mut value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("type").and_then(Value::as_str) {
        Some("message") => match value.get_mut("data") {
            Some(data) => Ok(Input::Message(data.take())),
            None => Err("a message without data".into()),
        },
        Some("terminate") => Ok(Input::Terminate),
        Some("open") => {
            if let Some(object) = value.as_object_mut() {
                object.shift_remove("type");
            }
            serde_json::from_value(value)
                .map(Input::Open)
                .map_err(|e| format!("a bad open: {e}"))
        }
        Some(other) => Err(format!("unknown type '{other}'")),
        None => Err("a line without a type".into()),
    }
}
