//! The host's decoded form of a message: an arena of nodes, so shared and
//! cyclic references need no pointers, and no operation recurses.

use crate::{DecodeError, Reader, TooLarge, ViewKind, Writer, tag};

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
    /// An array.
    Array(Vec<Item>),
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

enum Open {
    Object(usize, Option<String>),
    Array(usize, u64),
    Map(usize, Option<Item>),
    Set(usize),
}

/// Nesting deeper than this cannot become JSON (serde_json's own reader stops at 128).
const MAX_JSON_DEPTH: usize = 1000;

impl Message {
    /// A message holding one primitive or node-free value.
    pub fn primitive(item: Item) -> Message {
        Message {
            root: item,
            nodes: Vec::new(),
        }
    }

    /// Decodes `bytes`, checking everything: tags, lengths, UTF-8, reference
    /// indexes, view bounds, trailing bytes. Iterative.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(bytes)?;
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // Close finished containers, and read object keys.
            let item = loop {
                match stack.last_mut() {
                    Some(Open::Array(node, 0)) => {
                        let node = *node;
                        stack.pop();
                        break Some(Item::Ref(node));
                    }
                    Some(Open::Object(node, key @ None)) => {
                        if r.peek()? == tag::END {
                            r.byte()?;
                            let node = *node;
                            stack.pop();
                            break Some(Item::Ref(node));
                        }
                        *key = Some(r.string()?);
                    }
                    Some(Open::Map(node, _) | Open::Set(node)) if r.peek()? == tag::END => {
                        r.byte()?;
                        let node = *node;
                        stack.pop();
                        break Some(Item::Ref(node));
                    }
                    _ => break None,
                }
            };
            let item = match item {
                Some(item) => item,
                None => {
                    let in_array = matches!(stack.last(), Some(Open::Array(..)));
                    match read_item(&mut r, &mut nodes, in_array)? {
                        Step::Item(item) => item,
                        Step::Open(open) => {
                            stack.push(open);
                            continue;
                        }
                    }
                }
            };
            // Deliver `item` to its container, or finish.
            match stack.last_mut() {
                None => {
                    r.finish()?;
                    return Ok(Message { root: item, nodes });
                }
                Some(Open::Array(node, remaining)) => {
                    *remaining -= 1;
                    if let Some(Node::Array(v)) = nodes.get_mut(*node) {
                        v.push(item);
                    }
                }
                Some(Open::Object(node, key)) => {
                    if let (Some(Node::Object(v)), Some(k)) = (nodes.get_mut(*node), key.take()) {
                        v.push((k, item));
                    }
                }
                Some(Open::Map(node, key)) => match key.take() {
                    None => *key = Some(item),
                    Some(k) => {
                        if let Some(Node::Map(v)) = nodes.get_mut(*node) {
                            v.push((k, item));
                        }
                    }
                },
                Some(Open::Set(node)) => {
                    if let Some(Node::Set(v)) = nodes.get_mut(*node) {
                        v.push(item);
                    }
                }
            }
        }
    }

    /// Encodes the message; fails past `limit` bytes. Iterative.
    pub fn encode(&self, limit: usize) -> Result<Vec<u8>, TooLarge> {
        let mut w = Writer::new(limit);
        // The index each node got in this encoding, once written.
        let mut index: Vec<Option<u64>> = vec![None; self.nodes.len()];
        let mut next_index = 0u64;
        enum Task<'a> {
            Item(&'a Item),
            Key(&'a str),
            End,
        }
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
                    tasks.push(Task::End);
                    for (k, v) in props.iter().rev() {
                        tasks.push(Task::Item(v));
                        tasks.push(Task::Key(k));
                    }
                }
                Node::Array(items) => {
                    w.tag(tag::ARRAY)?;
                    w.varint(items.len() as u64)?;
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
                Node::Error { name, message, stack } => {
                    w.tag(tag::ERROR)?;
                    w.string(name)?;
                    w.string(message)?;
                    match stack {
                        Some(s) => w.string(s)?,
                        None => w.tag(tag::UNDEFINED)?,
                    }
                }
            }
        }
        Ok(w.finish())
    }

    /// The message as a JSON value, following `JSON.stringify`: `undefined`,
    /// functions' places and holes as JSON does, NaN and ±Infinity as null,
    /// a Date as its ISO string, a BigInt as a decimal string, Maps, Sets,
    /// RegExps, ArrayBuffers, DataViews and Errors as `{}`, typed arrays as
    /// objects with index keys. A cycle, or nesting deeper than 1,000, is an error.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        let mut stack: Vec<JsonFrame<'_>> = Vec::new();
        let mut on_path = vec![false; self.nodes.len()];
        let mut pending: Option<&Item> = Some(&self.root);
        loop {
            // Turn the pending item into a value (None: skipped), or open a frame.
            if let Some(item) = pending.take() {
                let produced = match self.json_leaf(item)? {
                    Leaf::Value(v) => Some(v),
                    Leaf::Skip => None,
                    Leaf::Open(node) => {
                        if on_path[node] {
                            return Err("a message with a cycle cannot become JSON".into());
                        }
                        if stack.len() >= MAX_JSON_DEPTH {
                            return Err("the message is nested too deeply for JSON".into());
                        }
                        on_path[node] = true;
                        stack.push(match self.nodes.get(node) {
                            Some(Node::Object(props)) => {
                                JsonFrame::Object(node, props.iter(), Default::default(), None)
                            }
                            Some(Node::Array(items)) => JsonFrame::Array(node, items.iter(), Vec::new()),
                            _ => return Err("inconsistent message".into()),
                        });
                        continue;
                    }
                };
                if let Some(done) = deliver(&mut stack, produced) {
                    return Ok(done);
                }
            }
            // Advance the innermost frame, or close it.
            match stack.last_mut() {
                None => return Ok(serde_json::Value::Null),
                Some(JsonFrame::Object(_, iter, _, key)) => {
                    if let Some((k, v)) = iter.next() {
                        *key = Some(k.as_str());
                        pending = Some(v);
                        continue;
                    }
                }
                Some(JsonFrame::Array(_, iter, _)) => {
                    if let Some(v) = iter.next() {
                        pending = Some(v);
                        continue;
                    }
                }
            }
            let (node, value) = match stack.pop() {
                Some(JsonFrame::Object(node, _, map, _)) => (node, serde_json::Value::Object(map)),
                Some(JsonFrame::Array(node, _, vec)) => (node, serde_json::Value::Array(vec)),
                None => return Ok(serde_json::Value::Null),
            };
            on_path[node] = false;
            if let Some(done) = deliver(&mut stack, Some(value)) {
                return Ok(done);
            }
        }
    }

    fn json_leaf(&self, item: &Item) -> Result<Leaf, String> {
        use serde_json::Value;
        Ok(match item {
            Item::Undefined | Item::Hole => Leaf::Skip,
            Item::Null => Leaf::Value(Value::Null),
            Item::Bool(b) => Leaf::Value(Value::Bool(*b)),
            Item::Number(n) => Leaf::Value(json_number(*n)),
            Item::BigInt { negative, magnitude } => {
                Leaf::Value(Value::String(bigint_decimal(*negative, magnitude)))
            }
            Item::String(s) => Leaf::Value(Value::String(s.clone())),
            Item::Ref(node) => match self.nodes.get(*node) {
                Some(Node::Object(_) | Node::Array(_)) => Leaf::Open(*node),
                Some(Node::Date(t)) => Leaf::Value(iso_date(*t).map(Value::String).unwrap_or(Value::Null)),
                Some(Node::View {
                    kind,
                    buffer,
                    offset,
                    length,
                }) if *kind != ViewKind::DataView => {
                    Leaf::Value(self.view_json(*kind, *buffer, *offset, *length))
                }
                Some(_) => Leaf::Value(Value::Object(serde_json::Map::new())),
                None => return Err("a reference to no node".into()),
            },
        })
    }

    fn view_json(&self, kind: ViewKind, buffer: usize, offset: u64, length: u64) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let Some(Node::ArrayBuffer(bytes)) = self.nodes.get(buffer) else {
            return serde_json::Value::Object(map);
        };
        let size = kind.element_size() as usize;
        for i in 0..length as usize {
            let start = offset as usize + i * size;
            let Some(b) = bytes.get(start..start + size) else {
                break;
            };
            let v = match kind {
                ViewKind::Int8 => serde_json::Value::from(b[0] as i8),
                ViewKind::Uint8 | ViewKind::Uint8Clamped => serde_json::Value::from(b[0]),
                ViewKind::Int16 => serde_json::Value::from(i16::from_le_bytes([b[0], b[1]])),
                ViewKind::Uint16 => serde_json::Value::from(u16::from_le_bytes([b[0], b[1]])),
                ViewKind::Int32 => serde_json::Value::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ViewKind::Uint32 => serde_json::Value::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ViewKind::Float32 => json_number(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
                ViewKind::Float64 => json_number(f64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ])),
                // JSON.stringify throws on BigInt; as for a BigInt item, a decimal string.
                ViewKind::BigInt64 => serde_json::Value::String(
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]).to_string(),
                ),
                ViewKind::BigUint64 => serde_json::Value::String(
                    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]).to_string(),
                ),
                ViewKind::Float16 | ViewKind::DataView => serde_json::Value::Null,
            };
            map.insert(i.to_string(), v);
        }
        serde_json::Value::Object(map)
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
                    nodes.push(Node::Array(Vec::new()));
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
                Value::Array(items) => {
                    Node::Array(items.iter().map(|x| item_of(x, &mut nodes, &mut work)).collect())
                }
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

fn write_buffer(w: &mut Writer, bytes: &[u8]) -> Result<(), TooLarge> {
    w.tag(tag::ARRAY_BUFFER)?;
    w.varint(bytes.len() as u64)?;
    w.bytes(bytes)
}

enum Leaf {
    Value(serde_json::Value),
    /// An object or array node: a frame of its own.
    Open(usize),
    /// `undefined` or a hole: a property left out, an array slot `null`.
    Skip,
}

enum JsonFrame<'a> {
    Object(
        usize,
        std::slice::Iter<'a, (String, Item)>,
        serde_json::Map<String, serde_json::Value>,
        Option<&'a str>,
    ),
    Array(usize, std::slice::Iter<'a, Item>, Vec<serde_json::Value>),
}

/// Hands a finished value (None: skipped) to the innermost frame; returns it
/// when there is no frame left.
fn deliver(stack: &mut [JsonFrame<'_>], value: Option<serde_json::Value>) -> Option<serde_json::Value> {
    match stack.last_mut() {
        None => Some(value.unwrap_or(serde_json::Value::Null)),
        Some(JsonFrame::Object(_, _, map, key)) => {
            if let (Some(k), Some(v)) = (key.take(), value) {
                map.insert(k.to_string(), v);
            }
            None
        }
        Some(JsonFrame::Array(_, _, vec)) => {
            vec.push(value.unwrap_or(serde_json::Value::Null));
            None
        }
    }
}

enum Step {
    Item(Item),
    Open(Open),
}

/// Reads one value that is not a container's end.
fn read_item(r: &mut Reader<'_>, nodes: &mut Vec<Node>, in_array: bool) -> Result<Step, DecodeError> {
    let t = r.byte()?;
    let item = match t {
        tag::UNDEFINED => Item::Undefined,
        tag::NULL => Item::Null,
        tag::FALSE => Item::Bool(false),
        tag::TRUE => Item::Bool(true),
        tag::INT => Item::Number(r.int()?),
        tag::FLOAT => Item::Number(r.f64()?),
        tag::BIGINT => {
            let (negative, magnitude) = r.bigint_payload()?;
            Item::BigInt {
                negative,
                magnitude: magnitude.to_vec(),
            }
        }
        tag::STRING => Item::String(r.str_payload()?.to_owned()),
        tag::STRING16 => Item::String(String::from_utf16_lossy(&r.str16_payload()?)),
        tag::REF => {
            let i = r.varint()?;
            if i >= nodes.len() as u64 {
                return Err(r.error("reference to an object not seen yet"));
            }
            Item::Ref(i as usize)
        }
        tag::HOLE if in_array => Item::Hole,
        tag::OBJECT => {
            nodes.push(Node::Object(Vec::new()));
            return Ok(Step::Open(Open::Object(nodes.len() - 1, None)));
        }
        tag::ARRAY => {
            let len = r.length(1)?;
            nodes.push(Node::Array(Vec::with_capacity(len.min(1 << 16) as usize)));
            return Ok(Step::Open(Open::Array(nodes.len() - 1, len)));
        }
        tag::MAP => {
            nodes.push(Node::Map(Vec::new()));
            return Ok(Step::Open(Open::Map(nodes.len() - 1, None)));
        }
        tag::SET => {
            nodes.push(Node::Set(Vec::new()));
            return Ok(Step::Open(Open::Set(nodes.len() - 1)));
        }
        tag::DATE => {
            let t = r.f64()?;
            nodes.push(Node::Date(t));
            Item::Ref(nodes.len() - 1)
        }
        tag::REGEXP => {
            let source = r.string()?;
            let flags = r.string()?;
            nodes.push(Node::RegExp { source, flags });
            Item::Ref(nodes.len() - 1)
        }
        tag::ARRAY_BUFFER => {
            let n = r.length(1)?;
            nodes.push(Node::ArrayBuffer(r.bytes(n)?.to_vec()));
            Item::Ref(nodes.len() - 1)
        }
        tag::VIEW => {
            let kind = ViewKind::from_byte(r.byte()?).ok_or_else(|| r.error("unknown view kind"))?;
            let offset = r.varint()?;
            let length = r.varint()?;
            let me = nodes.len();
            // A placeholder keeps the view's index ahead of its buffer's.
            nodes.push(Node::ArrayBuffer(Vec::new()));
            let buffer = match r.byte()? {
                tag::ARRAY_BUFFER => {
                    let n = r.length(1)?;
                    nodes.push(Node::ArrayBuffer(r.bytes(n)?.to_vec()));
                    nodes.len() - 1
                }
                tag::REF => {
                    let i = r.varint()?;
                    match nodes.get(i as usize) {
                        Some(Node::ArrayBuffer(_)) if (i as usize) != me => i as usize,
                        _ => return Err(r.error("a view's buffer must be an ArrayBuffer")),
                    }
                }
                _ => return Err(r.error("a view's buffer must be an ArrayBuffer")),
            };
            let buffer_len = match nodes.get(buffer) {
                Some(Node::ArrayBuffer(b)) => b.len() as u64,
                _ => 0,
            };
            if !kind.fits(offset, length, buffer_len) {
                return Err(r.error("a view out of its buffer's bounds"));
            }
            nodes[me] = Node::View {
                kind,
                buffer,
                offset,
                length,
            };
            Item::Ref(me)
        }
        tag::ERROR => {
            let name = r.string()?;
            let message = r.string()?;
            let stack = if r.peek()? == tag::UNDEFINED {
                r.byte()?;
                None
            } else {
                Some(r.string()?)
            };
            nodes.push(Node::Error { name, message, stack });
            Item::Ref(nodes.len() - 1)
        }
        _ => return Err(r.error("unknown tag")),
    };
    Ok(Step::Item(item))
}

fn json_number(n: f64) -> serde_json::Value {
    if !n.is_finite() {
        serde_json::Value::Null
    } else if crate::is_int(n) && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// The decimal digits of a BigInt.
fn bigint_decimal(negative: bool, magnitude: &[u8]) -> String {
    // Base 10^9 limbs, least significant first; repeated multiply-add by 256.
    let mut limbs: Vec<u32> = vec![0];
    for &byte in magnitude.iter().rev() {
        let mut carry = byte as u64;
        for limb in limbs.iter_mut() {
            let v = (*limb as u64) * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    let mut s = String::new();
    let is_zero = limbs.iter().all(|l| *l == 0);
    if negative && !is_zero {
        s.push('-');
    }
    let mut iter = limbs.iter().rev();
    if let Some(first) = iter.next() {
        s.push_str(&first.to_string());
    }
    for limb in iter {
        s.push_str(&format!("{limb:09}"));
    }
    s
}

/// `Date.prototype.toISOString`, or None for an invalid date.
fn iso_date(t: f64) -> Option<String> {
    if !t.is_finite() || t.abs() > 8.64e15 {
        return None;
    }
    let ms = t as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+07}")
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z"
    ))
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
    fn cycles_decode_but_do_not_become_json() {
        // [ <self> ]
        let bytes = [crate::VERSION, tag::ARRAY, 1, tag::REF, 0];
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.nodes, [Node::Array(vec![Item::Ref(0)])]);
        assert!(m.to_json().unwrap_err().contains("cycle"));
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
        assert!(m.to_json().unwrap_err().contains("too deeply"));
    }

    #[test]
    fn dates_and_bigints_become_json_like_stringify() {
        assert_eq!(iso_date(0.0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(1_700_000_000_123.0).unwrap(), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso_date(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(bigint_decimal(false, &[]), "0");
        assert_eq!(
            bigint_decimal(true, &[0x00, 0x00, 0x00, 0x00, 0x01]),
            "-4294967296"
        );
        assert_eq!(
            bigint_decimal(false, &u64::MAX.to_le_bytes()),
            u64::MAX.to_string()
        );
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
