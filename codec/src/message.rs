//! The host's decoded form of a message: an arena of nodes, so shared and
//! cyclic references need no pointers, and no operation recurses.

use crate::{
    DecodeError, JsonError, MAX_JSON_BYTES, Parts, Str, Token, Tokens, TooLarge, ViewBuffer, ViewKind,
    Writer, tag, write_json,
};

fn push(nodes: &mut Vec<Node>, node: Node) -> Item {
    nodes.push(node);
    Item::Ref(nodes.len() - 1)
}

/// A value inside a message: a primitive, or a reference to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `undefined`
    Undefined,
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (NaN, ±Infinity and -0 included).
    Number(f64),
    /// A BigInt: sign and little-endian magnitude bytes.
    BigInt {
        /// Whether it is below zero.
        negative: bool,
        /// The absolute value, little-endian bytes.
        magnitude: Vec<u8>,
    },
    /// A string (a lone surrogate decodes as U+FFFD).
    String(String),
    /// The node at this index of [`Message::nodes`].
    Ref(usize),
    /// An array slot with no element.
    Hole,
}

/// An object-like value of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A plain object: own enumerable string-keyed properties, in order.
    Object(Vec<(String, Item)>),
    /// An array: its elements (holes included), then its own enumerable
    /// non-index properties, in order (usually none).
    Array(Vec<Item>, Vec<(String, Item)>),
    /// A Date's time value.
    Date(f64),
    /// A RegExp.
    RegExp {
        /// Its source.
        source: String,
        /// Its flags.
        flags: String,
    },
    /// A Map's entries, in order.
    Map(Vec<(Item, Item)>),
    /// A Set's values, in order.
    Set(Vec<Item>),
    /// An ArrayBuffer's bytes.
    ArrayBuffer(Vec<u8>),
    /// A typed array or DataView over the ArrayBuffer node `buffer`.
    View {
        /// Which constructor.
        kind: ViewKind,
        /// The node index of its ArrayBuffer.
        buffer: usize,
        /// Offset in bytes.
        offset: u64,
        /// Length in elements (bytes for a DataView).
        length: u64,
    },
    /// An Error object.
    Error {
        /// `name`
        name: String,
        /// `message`
        message: String,
        /// `stack`, when it had one.
        stack: Option<String>,
        /// Own properties beyond these: an AggregateError's `errors`.
        props: Vec<(String, Item)>,
    },
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The message's value.
    pub root: Item,
    /// Every object-like value, in the order of first appearance.
    pub nodes: Vec<Node>,
}

impl Message {
    /// A message holding one primitive or node-free value.
    pub fn primitive(item: Item) -> Message {
        Message {
            root: item,
            nodes: Vec::new(),
        }
    }

    /// Decodes a message, checking everything ([`crate::Tokens`]). Iterative.
    pub fn decode<'a>(message: impl Into<Parts<'a>>) -> Result<Message, DecodeError> {
        let message = message.into();
        let mut tokens = Tokens::new(message)?;
        let mut nodes: Vec<Node> = Vec::new();
        // Open containers: (node index, the parent object's key to restore
        // at its end, a Map's key waiting for its value).
        let mut open: Vec<(usize, Option<String>, Option<Item>)> = Vec::new();
        let mut pending_key: Option<String> = None;
        while let Some(token) = tokens.next()? {
            let item = match token {
                Token::Undefined => Item::Undefined,
                Token::Null => Item::Null,
                Token::Bool(b) => Item::Bool(b),
                Token::Number(n) => Item::Number(n),
                Token::BigInt { negative, magnitude } => Item::BigInt {
                    negative,
                    magnitude: magnitude.to_vec(),
                },
                Token::String(s) => Item::String(s.to_string_lossy()),
                Token::Ref(i) => Item::Ref(i as usize),
                Token::Hole => Item::Hole,
                Token::Key(k) => {
                    pending_key = Some(k.to_string_lossy());
                    continue;
                }
                Token::Object
                | Token::Array(_)
                | Token::Map
                | Token::Set
                | Token::Error { props: true, .. } => {
                    nodes.push(match token {
                        Token::Object => Node::Object(Vec::new()),
                        Token::Array(len) => {
                            Node::Array(Vec::with_capacity(len.min(1 << 16) as usize), Vec::new())
                        }
                        Token::Map => Node::Map(Vec::new()),
                        Token::Error {
                            name, message, stack, ..
                        } => error_node(name, message, stack),
                        _ => Node::Set(Vec::new()),
                    });
                    open.push((nodes.len() - 1, pending_key.take(), None));
                    continue;
                }
                Token::End => {
                    let Some((node, key, _)) = open.pop() else {
                        continue;
                    };
                    pending_key = key;
                    Item::Ref(node)
                }
                Token::Date(t) => push(&mut nodes, Node::Date(t)),
                Token::RegExp { source, flags } => push(
                    &mut nodes,
                    Node::RegExp {
                        source: source.to_string_lossy(),
                        flags: flags.to_string_lossy(),
                    },
                ),
                Token::ArrayBuffer(b) => push(&mut nodes, Node::ArrayBuffer(b.to_vec())),
                Token::View {
                    kind,
                    offset,
                    length,
                    buffer,
                } => {
                    let me = nodes.len();
                    let buffer = match buffer {
                        ViewBuffer::Inline(b) => {
                            nodes.push(Node::ArrayBuffer(Vec::new()));
                            nodes.push(Node::ArrayBuffer(b.to_vec()));
                            me + 1
                        }
                        ViewBuffer::Ref(i) => {
                            nodes.push(Node::ArrayBuffer(Vec::new()));
                            i as usize
                        }
                    };
                    nodes[me] = Node::View {
                        kind,
                        buffer,
                        offset,
                        length,
                    };
                    Item::Ref(me)
                }
                Token::Error {
                    name, message, stack, ..
                } => push(&mut nodes, error_node(name, message, stack)),
            };
            // Deliver `item` to its container, or it is the root.
            let Some((parent, _, map_key)) = open.last_mut() else {
                return Ok(Message { root: item, nodes });
            };
            match (nodes.get_mut(*parent), pending_key.take()) {
                (Some(Node::Object(v) | Node::Array(_, v) | Node::Error { props: v, .. }), Some(key)) => {
                    v.push((key, item))
                }
                (Some(Node::Array(v, _) | Node::Set(v)), None) => v.push(item),
                (Some(Node::Map(v)), _) => match map_key.take() {
                    None => *map_key = Some(item),
                    Some(k) => v.push((k, item)),
                },
                _ => {}
            }
        }
        Err(DecodeError {
            what: "unexpected end",
            at: message.bytes.len(),
        })
    }

    /// Encodes the message; fails past `limit` bytes. Iterative.
    pub fn encode(&self, limit: usize) -> Result<Vec<u8>, TooLarge> {
        let mut w = Writer::new(limit);
        // The index each node got in this encoding, once written.
        let mut index: Vec<Option<u64>> = vec![None; self.nodes.len()];
        let mut next_index = 0u64;
        let mut tasks = vec![Task::Item(&self.root)];
        while let Some(task) = tasks.pop() {
            let item = match task {
                Task::End => {
                    w.tag(tag::END)?;
                    continue;
                }
                Task::Key(k) => {
                    w.string(k)?;
                    continue;
                }
                Task::Item(item) => item,
            };
            let node = match item {
                Item::Undefined => {
                    w.tag(tag::UNDEFINED)?;
                    continue;
                }
                Item::Null => {
                    w.tag(tag::NULL)?;
                    continue;
                }
                Item::Bool(b) => {
                    w.tag(if *b { tag::TRUE } else { tag::FALSE })?;
                    continue;
                }
                Item::Number(n) => {
                    w.number(*n)?;
                    continue;
                }
                Item::BigInt { negative, magnitude } => {
                    w.tag(tag::BIGINT)?;
                    w.tag(u8::from(*negative))?;
                    w.varint(magnitude.len() as u64)?;
                    w.bytes(magnitude)?;
                    continue;
                }
                Item::String(s) => {
                    w.string(s)?;
                    continue;
                }
                Item::Hole => {
                    w.tag(tag::HOLE)?;
                    continue;
                }
                Item::Ref(node) => *node,
            };
            if let Some(Some(i)) = index.get(node) {
                w.tag(tag::REF)?;
                w.varint(*i)?;
                continue;
            }
            let Some(n) = self.nodes.get(node) else {
                // A dangling index cannot come from `decode`; write null.
                w.tag(tag::NULL)?;
                continue;
            };
            index[node] = Some(next_index);
            next_index += 1;
            match n {
                Node::Object(props) => {
                    w.tag(tag::OBJECT)?;
                    push_props(&mut tasks, props);
                }
                Node::Array(items, props) => {
                    w.tag(if props.is_empty() {
                        tag::ARRAY
                    } else {
                        tag::ARRAY_PROPS
                    })?;
                    w.varint(items.len() as u64)?;
                    if !props.is_empty() {
                        push_props(&mut tasks, props);
                    }
                    tasks.extend(items.iter().rev().map(Task::Item));
                }
                Node::Date(t) => {
                    w.tag(tag::DATE)?;
                    w.bytes(&t.to_le_bytes())?;
                }
                Node::RegExp { source, flags } => {
                    w.tag(tag::REGEXP)?;
                    w.string(source)?;
                    w.string(flags)?;
                }
                Node::Map(entries) => {
                    w.tag(tag::MAP)?;
                    tasks.push(Task::End);
                    for (k, v) in entries.iter().rev() {
                        tasks.push(Task::Item(v));
                        tasks.push(Task::Item(k));
                    }
                }
                Node::Set(items) => {
                    w.tag(tag::SET)?;
                    tasks.push(Task::End);
                    tasks.extend(items.iter().rev().map(Task::Item));
                }
                Node::ArrayBuffer(bytes) => write_buffer(&mut w, bytes)?,
                Node::View {
                    kind,
                    buffer,
                    offset,
                    length,
                } => {
                    w.tag(tag::VIEW)?;
                    w.tag(*kind as u8)?;
                    w.varint(*offset)?;
                    w.varint(*length)?;
                    match (index.get(*buffer), self.nodes.get(*buffer)) {
                        (Some(Some(i)), _) => {
                            w.tag(tag::REF)?;
                            w.varint(*i)?;
                        }
                        (Some(None), Some(Node::ArrayBuffer(bytes))) => {
                            index[*buffer] = Some(next_index);
                            next_index += 1;
                            write_buffer(&mut w, bytes)?;
                        }
                        _ => write_buffer(&mut w, &[])?,
                    }
                }
                Node::Error {
                    name,
                    message,
                    stack,
                    props,
                } => {
                    w.tag(if props.is_empty() {
                        tag::ERROR
                    } else {
                        tag::ERROR_PROPS
                    })?;
                    w.string(name)?;
                    w.string(message)?;
                    match stack {
                        Some(s) => w.string(s)?,
                        None => w.tag(tag::UNDEFINED)?,
                    }
                    if !props.is_empty() {
                        push_props(&mut tasks, props);
                    }
                }
            }
        }
        Ok(w.finish())
    }

    /// The message as a JSON value, following `JSON.stringify`, with object
    /// keys in order: [`crate::write_json`] parsed by serde_json.
    pub fn to_json(&self) -> Result<serde_json::Value, JsonError> {
        let bytes = self
            .encode(usize::MAX)
            .map_err(|_| JsonError::TooLarge { limit: usize::MAX })?;
        let text = write_json(&bytes, MAX_JSON_BYTES)?;
        // Nesting past serde_json's own limit reads as too deep.
        serde_json::from_str(&text).map_err(|_| JsonError::TooDeep)
    }

    /// A message of a JSON value (objects keep their key order as parsed).
    pub fn from_json(value: &serde_json::Value) -> Message {
        use serde_json::Value;
        let mut nodes: Vec<Node> = Vec::new();
        // (node index, the JSON container) still to fill.
        let mut work: Vec<(usize, &Value)> = Vec::new();
        fn item_of<'v>(v: &'v Value, nodes: &mut Vec<Node>, work: &mut Vec<(usize, &'v Value)>) -> Item {
            match v {
                Value::Null => Item::Null,
                Value::Bool(b) => Item::Bool(*b),
                Value::Number(n) => Item::Number(n.as_f64().unwrap_or(f64::NAN)),
                Value::String(s) => Item::String(s.clone()),
                Value::Array(_) => {
                    nodes.push(Node::Array(Vec::new(), Vec::new()));
                    work.push((nodes.len() - 1, v));
                    Item::Ref(nodes.len() - 1)
                }
                Value::Object(_) => {
                    nodes.push(Node::Object(Vec::new()));
                    work.push((nodes.len() - 1, v));
                    Item::Ref(nodes.len() - 1)
                }
            }
        }
        let root = item_of(value, &mut nodes, &mut work);
        // Children get node indexes after their parent but before later
        // siblings' children: encode() renumbers in its own pre-order anyway.
        let mut i = 0;
        while i < work.len() {
            let (node, v) = work[i];
            i += 1;
            let filled = match v {
                Value::Array(items) => Node::Array(
                    items.iter().map(|x| item_of(x, &mut nodes, &mut work)).collect(),
                    Vec::new(),
                ),
                Value::Object(map) => Node::Object(
                    map.iter()
                        .map(|(k, x)| (k.clone(), item_of(x, &mut nodes, &mut work)))
                        .collect(),
                ),
                _ => continue,
            };
            nodes[node] = filled;
        }
        Message { root, nodes }
    }
}

/// One step of [`Message::encode`].
enum Task<'a> {
    Item(&'a Item),
    Key(&'a str),
    End,
}

/// Schedules `props` (key, value pairs), then END.
fn push_props<'a>(tasks: &mut Vec<Task<'a>>, props: &'a [(String, Item)]) {
    tasks.push(Task::End);
    for (k, v) in props.iter().rev() {
        tasks.push(Task::Item(v));
        tasks.push(Task::Key(k));
    }
}

fn error_node(name: Str<'_>, message: Str<'_>, stack: Option<Str<'_>>) -> Node {
    Node::Error {
        name: name.to_string_lossy(),
        message: message.to_string_lossy(),
        stack: stack.map(Str::to_string_lossy),
        props: Vec::new(),
    }
}

fn write_buffer(w: &mut Writer, bytes: &[u8]) -> Result<(), TooLarge> {
    w.tag(tag::ARRAY_BUFFER)?;
    w.varint(bytes.len() as u64)?;
    w.bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let v = json!({ "a": [1, 2.5, "x", null, true, { "b": [] }], "": "empty key" });
        let m = Message::from_json(&v);
        let bytes = m.encode(usize::MAX).unwrap();
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back.to_json().unwrap(), v);
    }

    #[test]
    fn array_and_error_properties_round_trip() {
        // [1, <hole>, tag: 'x', self: <the array>] and an AggregateError
        // whose errors hold the array.
        let m = Message {
            root: Item::Ref(0),
            nodes: vec![
                Node::Error {
                    name: "AggregateError".into(),
                    message: "two failed".into(),
                    stack: None,
                    props: vec![("errors".into(), Item::Ref(1))],
                },
                Node::Array(
                    vec![Item::Number(1.0), Item::Hole],
                    vec![
                        ("tag".into(), Item::String("x".into())),
                        ("self".into(), Item::Ref(1)),
                    ],
                ),
            ],
        };
        let bytes = m.encode(usize::MAX).unwrap();
        assert_eq!(bytes[1], tag::ERROR_PROPS);
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        assert_eq!(m.to_json().unwrap(), serde_json::json!({}));
    }

    #[test]
    fn cycles_decode_but_do_not_become_json() {
        // [ <self> ]
        let bytes = [crate::VERSION, tag::ARRAY, 1, tag::REF, 0];
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.nodes, [Node::Array(vec![Item::Ref(0)], Vec::new())]);
        assert_eq!(m.to_json(), Err(JsonError::Cycle));
        assert_eq!(m.encode(usize::MAX).unwrap(), bytes);
    }

    #[test]
    fn a_million_deep_array_decodes_without_recursion() {
        let depth = 1_000_000;
        let mut bytes = vec![crate::VERSION];
        for _ in 0..depth {
            bytes.extend([tag::ARRAY, 1]);
        }
        bytes.push(tag::NULL);
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.nodes.len(), depth);
        assert_eq!(m.encode(usize::MAX).unwrap(), bytes);
        assert_eq!(m.to_json(), Err(JsonError::TooDeep));
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bytes in [
            &[][..],
            &[9][..],
            &[crate::VERSION][..],
            &[crate::VERSION, tag::REF, 0][..],
            &[crate::VERSION, tag::HOLE][..],
            &[crate::VERSION, tag::NULL, tag::NULL][..],
            &[crate::VERSION, tag::OBJECT, tag::NULL][..],
            &[crate::VERSION, tag::STRING, 2, 0xff, 0xfe][..],
            &[
                crate::VERSION,
                tag::VIEW,
                5,
                0,
                2,
                tag::ARRAY_BUFFER,
                4,
                0,
                0,
                0,
                0,
            ][..],
            &[crate::VERSION, tag::VIEW, 0, 0, 0, tag::REF, 0][..],
            &[crate::VERSION, tag::ARRAY, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        ] {
            assert!(Message::decode(bytes).is_err(), "{bytes:?}");
        }
    }
}
