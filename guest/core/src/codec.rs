//! The message codec inside the guest: JavaScript values to the format of
//! `docs/codec.md` (crate `miniworker-codec`) and back.
//!
//! Both directions are iterative (an explicit stack, never native recursion),
//! so no message, however deep, overflows the stack. Classes are told apart by
//! QuickJS class id, which JavaScript cannot fake; the helpers in
//! `js/codec.js` use built-ins saved before any project code ran.

use std::cell::OnceCell;
use std::collections::HashMap;

use javy::quickjs::object::{Filter, Property};
use javy::quickjs::{
    self, Array, ArrayBuffer, Atom, Ctx, Exception, Function, Object, Persistent, Type, TypedArray, Value,
    qjs,
};
use miniworker_codec::{DecodeError, Str, Token, Tokens, TooLarge, ViewBuffer, ViewKind, Writer, tag};

/// The class ids the encoder tells apart, read once from exemplar objects.
struct Classes {
    array: u32,
    map: u32,
    set: u32,
    date: u32,
    regexp: u32,
    array_buffer: u32,
    error: u32,
    /// Classes that cannot be cloned, with how the error names them.
    refused: Vec<(u32, &'static str)>,
    views: Vec<(u32, ViewKind)>,
}

struct State {
    helpers: Persistent<Object<'static>>,
    classes: Classes,
}

thread_local! {
    static STATE: OnceCell<State> = const { OnceCell::new() };
}

fn class_of(v: &Value<'_>) -> u32 {
    // SAFETY: reads the class id of a live value.
    unsafe { qjs::JS_GetClassID(v.as_raw()) }
}

/// Sets the codec up in this context; call before any project code runs.
pub fn install(ctx: &Ctx<'_>) -> quickjs::Result<()> {
    let mut options = quickjs::context::EvalOptions::default();
    options.filename = Some("<miniworker:codec>".into());
    let helpers: Object = ctx.eval_with_options(include_str!("../js/codec.js"), options)?;
    let ex: Object = helpers.get("exemplars")?;
    let id = |name: &str| -> quickjs::Result<u32> { Ok(class_of(&ex.get::<_, Value>(name)?)) };
    let mut refused = Vec::new();
    for (name, label) in [
        ("proxy", "a Proxy"),
        ("promise", "a Promise"),
        ("weakMap", "a WeakMap"),
        ("weakSet", "a WeakSet"),
        ("weakRef", "a WeakRef"),
        ("finalizationRegistry", "a FinalizationRegistry"),
        ("sharedArrayBuffer", "a SharedArrayBuffer"),
    ] {
        let v: Value = ex.get(name)?;
        if v.is_object() {
            refused.push((class_of(&v), label));
        }
    }
    let names: Vec<String> = helpers.get("viewNames")?;
    let view_exemplars: Array = helpers.get("viewExemplars")?;
    let mut views = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(kind) = ViewKind::ALL.iter().find(|k| k.name() == name) {
            views.push((class_of(&view_exemplars.get::<Value>(i)?), *kind));
        }
    }
    let classes = Classes {
        array: id("array")?,
        map: id("map")?,
        set: id("set")?,
        date: id("date")?,
        regexp: id("regexp")?,
        array_buffer: id("arrayBuffer")?,
        error: id("error")?,
        refused,
        views,
    };
    let state = State {
        helpers: Persistent::save(ctx, helpers),
        classes,
    };
    STATE.with(|cell| {
        // A second context in one instance never happens; keep the first.
        let _ = cell.set(state);
    });
    Ok(())
}

fn with_state<R>(ctx: &Ctx<'_>, f: impl FnOnce(&State) -> quickjs::Result<R>) -> quickjs::Result<R> {
    STATE.with(|cell| match cell.get() {
        Some(state) => f(state),
        None => Err(Exception::throw_internal(ctx, "the message codec is not set up")),
    })
}

fn helper<'js>(helpers: &Object<'js>, name: &str) -> quickjs::Result<Function<'js>> {
    helpers.get(name)
}

fn data_clone_error<'js>(ctx: &Ctx<'js>, helpers: &Object<'js>, message: &str) -> quickjs::Error {
    match helper(helpers, "dataCloneError").and_then(|f| f.call::<_, Value>((message,))) {
        Ok(e) => ctx.throw(e),
        Err(e) => e,
    }
}

fn too_large(ctx: &Ctx<'_>, e: TooLarge) -> quickjs::Error {
    Exception::throw_range(ctx, &format!("postMessage: {e}"))
}

fn fits(ctx: &Ctx<'_>, r: Result<(), TooLarge>) -> quickjs::Result<()> {
    r.map_err(|e| too_large(ctx, e))
}

// ---- encoding ---------------------------------------------------------------------

enum Frame<'js> {
    /// An object's own enumerable string-keyed properties; END after them.
    Props(Object<'js>, Vec<Atom<'js>>, usize),
    /// An array's elements (length-prefixed, no END).
    Elems(Object<'js>, u32, u32),
    /// A sparse array's elements from index `.4` on: its own indexes in
    /// order (`.2`, next at `.3`), holes between them written in runs.
    Sparse(Object<'js>, u32, Vec<u32>, usize, u32),
    /// A Map's flattened entries or a Set's values; END after them.
    List(Array<'js>, usize, usize),
}

/// What the innermost frame yields next.
enum Next<'js> {
    Done,
    /// This many holes in a row.
    Holes(u32),
    End,
    Value(Value<'js>),
    Hole,
    Prop(Atom<'js>, Value<'js>),
}

struct Encoder<'a, 'js> {
    ctx: &'a Ctx<'js>,
    helpers: Object<'js>,
    classes: &'a Classes,
    w: Writer,
    /// Object identity (QuickJS pointer) to reference index.
    seen: HashMap<usize, u64>,
    /// Keeps every seen object alive, so no address is reused mid-encoding.
    keep: Vec<Object<'js>>,
    /// Each distinct object key, encoded once (records of one shape repeat them).
    key_bytes: HashMap<Atom<'js>, Vec<u8>>,
    stack: Vec<Frame<'js>>,
}

/// Encodes `value` for `postMessage`, at most `limit` bytes. Throws
/// `DataCloneError` for what cannot be cloned and `RangeError` past the limit.
pub fn encode<'js>(ctx: &Ctx<'js>, value: Value<'js>, limit: usize) -> quickjs::Result<Vec<u8>> {
    with_state(ctx, |state| {
        let mut enc = Encoder {
            ctx,
            helpers: state.helpers.clone().restore(ctx)?,
            classes: &state.classes,
            w: Writer::new(limit),
            seen: HashMap::new(),
            keep: Vec::new(),
            key_bytes: HashMap::new(),
            stack: Vec::new(),
        };
        if is_skipped(&value) {
            return Err(enc.refuse(&value));
        }
        enc.value(value)?;
        loop {
            let next = match enc.stack.last_mut() {
                None => break,
                Some(Frame::Props(obj, keys, i)) => match keys.get(*i) {
                    None => Next::End,
                    Some(key) => {
                        *i += 1;
                        let key = key.clone();
                        Next::Prop(key.clone(), obj.get(key)?)
                    }
                },
                Some(Frame::Elems(obj, len, i)) => {
                    if *i == *len {
                        Next::Done
                    } else {
                        let idx = *i;
                        *i += 1;
                        let v: Value = obj.get(idx)?;
                        if v.is_undefined() && !obj.contains_key(idx)? {
                            // A hole with many elements left: read the array's
                            // own indexes once instead of probing each slot.
                            if *len - *i >= SPARSE_RUN {
                                let (obj, len, from) = (obj.clone(), *len, *i);
                                let mut indexes: Vec<u32> = obj
                                    .own_keys::<String>(Filter::new().string())
                                    .filter_map(|k| k.ok()?.parse().ok())
                                    .filter(|n| *n >= from && *n < len)
                                    .collect();
                                indexes.sort_unstable();
                                if let Some(top) = enc.stack.last_mut() {
                                    *top = Frame::Sparse(obj, len, indexes, 0, from);
                                }
                            }
                            Next::Hole
                        } else if is_skipped(&v) {
                            Next::Hole
                        } else {
                            Next::Value(v)
                        }
                    }
                }
                Some(Frame::Sparse(obj, len, indexes, k, i)) => {
                    let next = indexes.get(*k).copied().unwrap_or(*len);
                    if *i == *len {
                        Next::Done
                    } else if next > *i {
                        let run = next - *i;
                        *i = next;
                        Next::Holes(run)
                    } else {
                        *k += 1;
                        *i += 1;
                        let v: Value = obj.get(next)?;
                        if is_skipped(&v) {
                            Next::Hole
                        } else {
                            Next::Value(v)
                        }
                    }
                }
                Some(Frame::List(items, len, i)) => {
                    if *i == *len {
                        Next::End
                    } else {
                        *i += 1;
                        Next::Value(items.get(*i - 1)?)
                    }
                }
            };
            match next {
                Next::Done => {
                    enc.stack.pop();
                }
                Next::End => {
                    enc.stack.pop();
                    enc.w.tag(tag::END).map_err(|e| too_large(ctx, e))?;
                }
                Next::Hole => enc.w.tag(tag::HOLE).map_err(|e| too_large(ctx, e))?,
                Next::Holes(n) => {
                    const HOLES: [u8; 4096] = [tag::HOLE; 4096];
                    fits(ctx, enc.w.room_for(n as u64))?;
                    let mut left = n as usize;
                    while left > 0 {
                        let chunk = left.min(HOLES.len());
                        fits(ctx, enc.w.bytes(&HOLES[..chunk]))?;
                        left -= chunk;
                    }
                }
                Next::Prop(key, v) => {
                    // Function- and symbol-valued properties are left out (SPEC section 4).
                    if !is_skipped(&v) {
                        enc.key(key)?;
                        enc.value(v)?;
                    }
                }
                Next::Value(v) => {
                    if is_skipped(&v) {
                        return Err(enc.refuse(&v));
                    }
                    enc.value(v)?;
                }
            }
        }
        Ok(enc.w.finish())
    })
}

/// Elements left after a hole past which an array is read as sparse.
const SPARSE_RUN: u32 = 1024;

/// Functions and symbols: left out as properties, refused elsewhere.
fn is_skipped(v: &Value<'_>) -> bool {
    matches!(v.type_of(), Type::Function | Type::Constructor | Type::Symbol)
}

impl<'js> Encoder<'_, 'js> {
    fn refuse(&self, v: &Value<'js>) -> quickjs::Error {
        let what = if v.type_of() == Type::Symbol {
            "a Symbol"
        } else {
            "a function"
        };
        data_clone_error(self.ctx, &self.helpers, &format!("{what} could not be cloned"))
    }

    /// Writes a primitive, or an object's tag (pushing a frame for its contents).
    fn value(&mut self, v: Value<'js>) -> quickjs::Result<()> {
        let r = match v.type_of() {
            Type::Uninitialized | Type::Undefined => self.w.tag(tag::UNDEFINED),
            Type::Null => self.w.tag(tag::NULL),
            Type::Bool => self.w.tag(if v.as_bool() == Some(true) {
                tag::TRUE
            } else {
                tag::FALSE
            }),
            Type::Int => self.w.number(v.as_int().unwrap_or(0) as f64),
            Type::Float => self.w.number(v.as_float().unwrap_or(f64::NAN)),
            Type::String => return self.js_string(v),
            Type::BigInt => return self.bigint(v),
            _ => match v.into_object() {
                Some(obj) => return self.object(obj),
                None => self.w.tag(tag::UNDEFINED),
            },
        };
        fits(self.ctx, r)
    }

    fn key(&mut self, key: Atom<'js>) -> quickjs::Result<()> {
        // A few objects are quicker without the cache.
        if self.seen.len() < 8 {
            return self.js_string(key.to_value()?);
        }
        if let Some(bytes) = self.key_bytes.get(&key) {
            return fits(self.ctx, self.w.bytes(bytes));
        }
        let start = self.w.len();
        self.js_string(key.to_value()?)?;
        let encoded = self.w.written_since(start).to_vec();
        self.key_bytes.insert(key, encoded);
        Ok(())
    }

    fn js_string(&mut self, v: Value<'js>) -> quickjs::Result<()> {
        let raw_ctx = self.ctx.as_raw().as_ptr();
        // Refuse an oversized string before copying it: its UTF-8 form is at
        // least as long as its length in UTF-16 code units.
        let mut units: i64 = 0;
        // SAFETY: `v` is a live string of this context.
        if unsafe { qjs::JS_GetLength(raw_ctx, v.as_raw(), &mut units) } < 0 {
            return Err(quickjs::Error::Exception);
        }
        fits(self.ctx, self.w.room_for(units.max(0) as u64))?;
        let mut len: qjs::size_t = 0;
        // SAFETY: converts a live string; the buffer is freed below, once.
        let ptr = unsafe { qjs::JS_ToCStringLen2(raw_ctx, &mut len, v.as_raw(), false) };
        if ptr.is_null() {
            return Err(quickjs::Error::Exception);
        }
        // SAFETY: QuickJS returned `len` readable bytes at `ptr`.
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
        let r = std::str::from_utf8(bytes).map(|s| self.w.string(s));
        // SAFETY: `ptr` came from JS_ToCStringLen2 of this context.
        unsafe { qjs::JS_FreeCString(raw_ctx, ptr) };
        match r {
            Ok(written) => fits(self.ctx, written),
            // Lone surrogates: send the UTF-16 code units as they are.
            Err(_) => {
                let array: TypedArray<u16> = helper(&self.helpers, "codeUnits")?.call((v,))?;
                let units: &[u16] = array.as_ref();
                let units = units.to_vec();
                fits(self.ctx, self.w.string16(&units))
            }
        }
    }

    fn bigint(&mut self, v: Value<'js>) -> quickjs::Result<()> {
        let parts: Array = helper(&self.helpers, "bigintParts")?.call((v,))?;
        let (negative, hex): (bool, String) = (parts.get(0)?, parts.get(1)?);
        let hex = if hex.len() % 2 == 1 {
            format!("0{hex}")
        } else {
            hex
        };
        let mut magnitude: Vec<u8> = Vec::with_capacity(hex.len() / 2);
        for i in (0..hex.len()).step_by(2).rev() {
            magnitude.push(u8::from_str_radix(hex.get(i..i + 2).unwrap_or("0"), 16).unwrap_or(0));
        }
        while magnitude.last() == Some(&0) {
            magnitude.pop();
        }
        let r = self
            .w
            .tag(tag::BIGINT)
            .and_then(|_| self.w.tag(u8::from(negative)))
            .and_then(|_| self.w.varint(magnitude.len() as u64))
            .and_then(|_| self.w.bytes(&magnitude));
        fits(self.ctx, r)
    }

    fn object(&mut self, obj: Object<'js>) -> quickjs::Result<()> {
        // SAFETY: reads the object pointer of a live value, only as an identity key.
        let key = unsafe { qjs::JS_VALUE_GET_PTR(obj.as_raw()) } as usize;
        if let Some(index) = self.seen.get(&key) {
            let r = self.w.tag(tag::REF).and_then(|_| self.w.varint(*index));
            return fits(self.ctx, r);
        }
        let class = class_of(&obj);
        if let Some((_, what)) = self.classes.refused.iter().find(|(id, _)| *id == class) {
            return Err(data_clone_error(
                self.ctx,
                &self.helpers,
                &format!("{what} could not be cloned"),
            ));
        }
        let index = self.seen.len() as u64;
        self.seen.insert(key, index);
        self.keep.push(obj.clone());
        let c = self.classes;
        if class == c.array {
            let len: u32 = obj.get("length")?;
            // Every slot takes at least a byte.
            fits(self.ctx, self.w.room_for(len as u64))?;
            let r = self.w.tag(tag::ARRAY).and_then(|_| self.w.varint(len as u64));
            fits(self.ctx, r)?;
            self.stack.push(Frame::Elems(obj, len, 0));
        } else if class == c.map || class == c.set {
            let (t, name) = if class == c.map {
                (tag::MAP, "mapEntries")
            } else {
                (tag::SET, "setValues")
            };
            let items: Array = helper(&self.helpers, name)?.call((obj,))?;
            fits(self.ctx, self.w.tag(t))?;
            let len = items.len();
            self.stack.push(Frame::List(items, len, 0));
        } else if class == c.date {
            let t: f64 = helper(&self.helpers, "dateValue")?.call((obj,))?;
            let r = self.w.tag(tag::DATE).and_then(|_| self.w.bytes(&t.to_le_bytes()));
            fits(self.ctx, r)?;
        } else if class == c.regexp {
            let parts: Array = helper(&self.helpers, "regexpParts")?.call((obj,))?;
            let (source, flags): (Value, Value) = (parts.get(0)?, parts.get(1)?);
            fits(self.ctx, self.w.tag(tag::REGEXP))?;
            self.js_string(source)?;
            self.js_string(flags)?;
        } else if class == c.array_buffer {
            self.array_buffer(&obj)?;
        } else if let Some((_, kind)) = self.classes.views.iter().find(|(id, _)| *id == class) {
            let kind = *kind;
            let parts: Array = helper(&self.helpers, "viewParts")?.call((obj, kind == ViewKind::DataView))?;
            let (buffer, offset, length): (Object, f64, f64) = (parts.get(0)?, parts.get(1)?, parts.get(2)?);
            let r = self
                .w
                .tag(tag::VIEW)
                .and_then(|_| self.w.tag(kind as u8))
                .and_then(|_| self.w.varint(offset as u64))
                .and_then(|_| self.w.varint(length as u64));
            fits(self.ctx, r)?;
            // The buffer: written here, or a reference to where it was.
            self.object(buffer)?;
        } else if class == c.error {
            let parts: Array = helper(&self.helpers, "errorParts")?.call((obj,))?;
            let (name, message, stack): (Value, Value, Value) = (parts.get(0)?, parts.get(1)?, parts.get(2)?);
            fits(self.ctx, self.w.tag(tag::ERROR))?;
            self.js_string(name)?;
            self.js_string(message)?;
            if stack.is_string() {
                self.js_string(stack)?;
            } else {
                fits(self.ctx, self.w.tag(tag::UNDEFINED))?;
            }
        } else {
            // Plain objects, class instances and anything else: own enumerable
            // string-keyed properties (getters are read; symbol keys skipped).
            let keys = obj.keys::<Atom>().collect::<quickjs::Result<Vec<_>>>()?;
            fits(self.ctx, self.w.tag(tag::OBJECT))?;
            self.stack.push(Frame::Props(obj, keys, 0));
        }
        Ok(())
    }

    fn array_buffer(&mut self, obj: &Object<'js>) -> quickjs::Result<()> {
        let mut size: qjs::size_t = 0;
        // SAFETY: `obj` is a live ArrayBuffer (checked by class id); a detached
        // one gives a null pointer, read as empty.
        let ptr = unsafe { qjs::JS_GetArrayBuffer(self.ctx.as_raw().as_ptr(), &mut size, obj.as_raw()) };
        let bytes: &[u8] = if ptr.is_null() {
            &[]
        } else {
            // SAFETY: QuickJS reports `size` bytes at `ptr`, alive while `obj` is.
            unsafe { std::slice::from_raw_parts(ptr, size as usize) }
        };
        fits(self.ctx, self.w.room_for(bytes.len() as u64))?;
        let r = self
            .w
            .tag(tag::ARRAY_BUFFER)
            .and_then(|_| self.w.varint(bytes.len() as u64))
            .and_then(|_| self.w.bytes(bytes));
        fits(self.ctx, r)
    }
}

// ---- decoding ---------------------------------------------------------------------

/// An open container being filled.
enum Open<'js> {
    /// An object and the key of the property being read.
    Object(Object<'js>, Option<Atom<'js>>),
    /// An array, the index of its next element, and its length (set at
    /// its end: elements defined in order keep QuickJS's fast array).
    Array(Object<'js>, u32, u64),
    /// A Map and the key of the entry being read.
    Map(Object<'js>, Option<Value<'js>>),
    Set(Object<'js>),
}

fn malformed(ctx: &Ctx<'_>, e: DecodeError) -> quickjs::Error {
    Exception::throw_message(ctx, &e.to_string())
}

/// A JavaScript string of exactly these code units.
fn js_string<'js>(ctx: &Ctx<'js>, helpers: &Object<'js>, s: Str<'_>) -> quickjs::Result<Value<'js>> {
    match s {
        Str::Utf8(s) => Ok(quickjs::String::from_str(ctx.clone(), s)?.into_value()),
        Str::Utf16(_) => {
            let array = TypedArray::<u16>::new(ctx.clone(), s.units().collect::<Vec<u16>>())?;
            helper(helpers, "fromCodeUnits")?.call((array,))
        }
    }
}

/// Decodes a message into a fresh value. Iterative; the structure is read
/// by the codec crate's [`Tokens`], which checks it.
pub fn decode<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> quickjs::Result<Value<'js>> {
    with_state(ctx, |state| {
        let helpers = state.helpers.clone().restore(ctx)?;
        let m = |e: DecodeError| malformed(ctx, e);
        let mut tokens = Tokens::new(bytes).map_err(m)?;
        let mut nodes: Vec<Value<'js>> = Vec::new();
        let mut open: Vec<Open<'js>> = Vec::new();
        // Object keys repeat (records of one shape): each becomes an atom once.
        let mut keys: HashMap<&[u8], Atom<'js>> = HashMap::new();
        let cache_keys = bytes.len() >= 512;
        let undefined = || Value::new_undefined(ctx.clone());
        while let Some(token) = tokens.next().map_err(m)? {
            // `None`: an array hole.
            let item: Option<Value<'js>> = match token {
                Token::Undefined => Some(undefined()),
                Token::Null => Some(Value::new_null(ctx.clone())),
                Token::Bool(b) => Some(Value::new_bool(ctx.clone(), b)),
                // -0 and fractions stay floats; QuickJS keeps small integers as ints.
                Token::Number(n) if miniworker_codec::is_int(n) => Some(Value::new_number(ctx.clone(), n)),
                Token::Number(n) => Some(Value::new_float(ctx.clone(), n)),
                Token::BigInt { negative, magnitude } => {
                    let hex: String = magnitude.iter().rev().map(|b| format!("{b:02x}")).collect();
                    Some(helper(&helpers, "makeBigInt")?.call((negative, hex))?)
                }
                Token::String(s) => Some(js_string(ctx, &helpers, s)?),
                Token::Ref(i) => Some(
                    nodes
                        .get(i as usize)
                        .filter(|v| !v.is_undefined())
                        .cloned()
                        .ok_or_else(|| Exception::throw_message(ctx, "malformed message: a reference"))?,
                ),
                Token::Hole => None,
                Token::Key(key) => {
                    let atom = match key {
                        Str::Utf8(k) if cache_keys => match keys.get(k.as_bytes()) {
                            Some(atom) => atom.clone(),
                            None => {
                                let atom = Atom::from_str(ctx.clone(), k)?;
                                keys.insert(k.as_bytes(), atom.clone());
                                atom
                            }
                        },
                        Str::Utf8(k) => Atom::from_str(ctx.clone(), k)?,
                        Str::Utf16(_) => Atom::from_value(ctx.clone(), &js_string(ctx, &helpers, key)?)?,
                    };
                    if let Some(Open::Object(_, slot)) = open.last_mut() {
                        *slot = Some(atom);
                    }
                    continue;
                }
                Token::Object => {
                    let obj = Object::new(ctx.clone())?;
                    nodes.push(obj.clone().into_value());
                    open.push(Open::Object(obj, None));
                    continue;
                }
                Token::Array(len) => {
                    let arr = Array::new(ctx.clone())?.into_object();
                    nodes.push(arr.clone().into_value());
                    open.push(Open::Array(arr, 0, len));
                    continue;
                }
                Token::Map | Token::Set => {
                    let is_map = matches!(token, Token::Map);
                    let obj: Object =
                        helper(&helpers, if is_map { "makeMap" } else { "makeSet" })?.call(())?;
                    nodes.push(obj.clone().into_value());
                    open.push(if is_map {
                        Open::Map(obj, None)
                    } else {
                        Open::Set(obj)
                    });
                    continue;
                }
                Token::End => match open.pop() {
                    Some(Open::Array(arr, _, len)) => {
                        arr.set("length", len as f64)?;
                        Some(arr.into_value())
                    }
                    Some(Open::Object(o, _) | Open::Map(o, _) | Open::Set(o)) => Some(o.into_value()),
                    None => None,
                },
                Token::Date(time) => {
                    // SAFETY: JS_NewDate returns a new owned value of this context.
                    let v =
                        unsafe { Value::from_raw(ctx.clone(), qjs::JS_NewDate(ctx.as_raw().as_ptr(), time)) };
                    nodes.push(v.clone());
                    Some(v)
                }
                Token::RegExp { source, flags } => {
                    let source = js_string(ctx, &helpers, source)?;
                    let flags = js_string(ctx, &helpers, flags)?;
                    let v: Value = helper(&helpers, "makeRegExp")?.call((source, flags))?;
                    nodes.push(v.clone());
                    Some(v)
                }
                Token::ArrayBuffer(b) => {
                    let v = ArrayBuffer::new_copy(ctx.clone(), b)?.into_value();
                    nodes.push(v.clone());
                    Some(v)
                }
                Token::View {
                    kind,
                    offset,
                    length,
                    buffer,
                } => {
                    let me = nodes.len();
                    nodes.push(undefined());
                    let buffer = match buffer {
                        ViewBuffer::Inline(b) => {
                            let v = ArrayBuffer::new_copy(ctx.clone(), b)?.into_value();
                            nodes.push(v.clone());
                            v
                        }
                        ViewBuffer::Ref(i) => nodes.get(i as usize).cloned().unwrap_or_else(undefined),
                    };
                    let v: Value = helper(&helpers, "makeView")?.call((
                        kind.name(),
                        buffer,
                        offset as f64,
                        length as f64,
                    ))?;
                    nodes[me] = v.clone();
                    Some(v)
                }
                Token::Error { name, message, stack } => {
                    let name = js_string(ctx, &helpers, name)?;
                    let message = js_string(ctx, &helpers, message)?;
                    let stack = stack.map(|s| js_string(ctx, &helpers, s)).transpose()?;
                    let v: Value = helper(&helpers, "makeError")?.call((name, message, stack))?;
                    nodes.push(v.clone());
                    Some(v)
                }
            };
            match open.last_mut() {
                None => {
                    return item.ok_or_else(|| Exception::throw_message(ctx, "malformed message: a hole"));
                }
                Some(Open::Array(arr, i, _)) => {
                    if let Some(v) = item {
                        arr.prop(*i, data_property(v))?;
                    }
                    *i = i.wrapping_add(1);
                }
                Some(Open::Object(obj, key)) => {
                    if let (Some(k), Some(v)) = (key.take(), item) {
                        obj.prop(k, data_property(v))?;
                    }
                }
                Some(Open::Map(map, key)) => {
                    let v = item.unwrap_or_else(undefined);
                    match key.take() {
                        None => *key = Some(v),
                        Some(k) => helper(&helpers, "mapSet")?.call::<_, ()>((map.clone(), k, v))?,
                    }
                }
                Some(Open::Set(set)) => {
                    let v = item.unwrap_or_else(undefined);
                    helper(&helpers, "setAdd")?.call::<_, ()>((set.clone(), v))?;
                }
            }
        }
        Err(Exception::throw_message(ctx, "malformed message: unexpected end"))
    })
}

fn data_property(v: Value<'_>) -> Property<Value<'_>> {
    Property::from(v).writable().enumerable().configurable()
}
