//! Message bytes to a fresh JavaScript value, driving the codec crate's
//! `Tokens` (which checks the structure).

use std::ffi::c_void;
use std::ptr::null_mut;

use javy::quickjs::{self, Ctx, Exception, Object, TypedArray, Value, qjs};
use miniworker_codec::{DecodeError, Parts, Str, Token, Tokens, ViewBuffer};

use super::outside::Adopter;
use super::raw::{Raw, fast_array_count};
use super::shapes::{Node, Shapes, set_slot};
use super::{OwnedAtom, helper, with_state};

// ---- decoding ---------------------------------------------------------------------

/// An open container being filled.
enum Open {
    /// A plain object made at its end, when all its properties are known
    /// (`Scratch::props` from `start` on): with one allocation when its
    /// keys are a plain skeleton's (`shapes.rs`). Its place among the
    /// objects made (`nodes`, filled at its end), the key of the property
    /// being read, and its keys so far in the trie of shapes (`None`: not
    /// followed).
    Record {
        index: usize,
        start: usize,
        key: Option<OwnedAtom>,
        node: Option<Node>,
    },
    /// A record made before its end (a reference to it came first), as
    /// [`Open::Record`] otherwise.
    Object(Raw, Option<OwnedAtom>, Option<Node>),
    /// An array, the index of its next element, its length (set at its
    /// end: elements defined in order keep QuickJS's fast array), and the
    /// key of the non-index property being read, after the elements.
    Array(Raw, u32, u64, Option<OwnedAtom>),
    /// An Error and the key of its property being read (`errors`).
    Error(Raw, Option<OwnedAtom>),
    /// A Map and the key of the entry being read.
    Map(Raw, Option<Raw>),
    Set(Raw),
}

fn malformed(ctx: &Ctx<'_>, e: DecodeError) -> quickjs::Error {
    Exception::throw_message(ctx, &e.to_string())
}

/// A JavaScript string of exactly these code units.
fn js_string<'js>(ctx: &Ctx<'js>, helpers: &Object<'js>, s: Str<'_>) -> quickjs::Result<Raw> {
    match s {
        Str::Utf8(s) => {
            let raw = ctx.as_raw().as_ptr();
            // SAFETY: a new string of this context from valid UTF-8.
            Raw::take(raw, unsafe {
                qjs::JS_NewStringLen(raw, s.as_ptr().cast(), s.len() as qjs::size_t)
            })
        }
        Str::Utf16(_) => {
            let array = TypedArray::<u16>::new(ctx.clone(), s.units().collect::<Vec<u16>>())?;
            Ok(Raw::from_value(helper(helpers, "fromCodeUnits")?.call((array,))?))
        }
    }
}

/// A number as QuickJS keeps it: small integers as ints; -0 and fractions
/// as floats.
fn number(n: f64) -> qjs::JSValue {
    let int = n as i32;
    if miniworker_codec::is_int(n) && n == f64::from(int) {
        qjs::JS_MKVAL(qjs::JS_TAG_INT, int)
    } else {
        qjs::JS_NewFloat64(n)
    }
}

/// The decoder's stacks, kept empty between messages for their room
/// (allocations fewer per message).
#[derive(Default)]
pub(crate) struct Scratch {
    /// Every object made so far, for references to it (`undefined` for
    /// one not made yet).
    nodes: Vec<Raw>,
    open: Vec<Open>,
    /// The properties of the open records, in order.
    props: Vec<(OwnedAtom, Raw)>,
}

/// Stacks that grew past this many entries are not kept.
const SCRATCH_KEPT: usize = 1024;

/// Decodes a message (its bytes and its outside payloads, which its
/// ArrayBuffers take over) into a fresh value. Iterative; the structure is
/// read by the codec crate's [`Tokens`], which checks it.
pub fn decode<'js>(ctx: &Ctx<'js>, bytes: &[u8], mut outside: Vec<Vec<u8>>) -> quickjs::Result<Value<'js>> {
    with_state(ctx, |state| {
        let mut scratch = state.decoding.take();
        let mut adopter = Adopter::new(&mut outside);
        let message = Parts {
            bytes,
            outside: &outside,
        };
        let decoded = decode_with(ctx, state, message, &mut adopter, &mut scratch);
        adopter.release(outside);
        if scratch.nodes.capacity() <= SCRATCH_KEPT
            && scratch.open.capacity() <= SCRATCH_KEPT
            && scratch.props.capacity() <= SCRATCH_KEPT
        {
            scratch.nodes.clear();
            scratch.open.clear();
            scratch.props.clear();
            state.decoding.replace(scratch);
        }
        decoded
    })
}

fn decode_with<'js>(
    ctx: &Ctx<'js>,
    state: &super::State,
    message: Parts<'_>,
    adopter: &mut Adopter,
    Scratch { nodes, open, props }: &mut Scratch,
) -> quickjs::Result<Value<'js>> {
    let helpers = state.helpers.clone().restore(ctx)?;
    let m = |e: DecodeError| malformed(ctx, e);
    let mut tokens = Tokens::new(message).map_err(m)?;
    let raw = ctx.as_raw().as_ptr();
    state.shapes.borrow_mut().make_room(raw);
    // An ArrayBuffer's bytes: the next outside payload, taken over, when
    // reading its token took one; else a copy.
    let mut new_buffer = |tokens: &Tokens<'_>, b: &[u8]| {
        if tokens.outside_taken() > adopter.adopted() {
            adopter.adopt_next(ctx)
        } else {
            array_buffer(raw, b)
        }
    };
    let undefined = || Raw::plain(raw, qjs::JS_UNDEFINED);
    while let Some(token) = tokens.next().map_err(m)? {
        // `None`: an array hole.
        let item: Option<Raw> = match token {
            Token::Undefined => Some(undefined()),
            Token::Null => Some(Raw::plain(raw, qjs::JS_NULL)),
            Token::Bool(b) => Some(Raw::plain(raw, qjs::JS_MKVAL(qjs::JS_TAG_BOOL, i32::from(b)))),
            Token::Number(n) => Some(Raw::plain(raw, number(n))),
            Token::BigInt { negative, magnitude } => {
                let hex: String = magnitude.iter().rev().map(|b| format!("{b:02x}")).collect();
                let v: Value = helper(&helpers, "makeBigInt")?.call((negative, hex))?;
                Some(Raw::from_value(v))
            }
            // Short strings repeat from message to message: the context's cache.
            Token::String(Str::Utf8(text)) => {
                let cached = state.strings.borrow().value(raw, text);
                Some(match cached {
                    // A new reference, held by the new `Raw`.
                    Some(v) => Raw { ctx: raw, v },
                    None => {
                        let v = js_string(ctx, &helpers, Str::Utf8(text))?;
                        state.strings.borrow_mut().insert_value(raw, text, v.v);
                        v
                    }
                })
            }
            Token::String(s) => Some(js_string(ctx, &helpers, s)?),
            Token::Ref(i) => {
                let i = i as usize;
                if nodes.get(i).is_some_and(Raw::is_undefined) {
                    make_now(raw, i, open, nodes, props)?;
                }
                Some(
                    nodes
                        .get(i)
                        .filter(|v| !v.is_undefined())
                        .cloned()
                        .ok_or_else(|| Exception::throw_message(ctx, "malformed message: a reference"))?,
                )
            }
            Token::Hole => None,
            Token::Key(key) => {
                let atom = match key {
                    // Records of one shape repeat their keys: the context's cache.
                    Str::Utf8(k) => state.keys.borrow_mut().atom(raw, k)?,
                    Str::Utf16(_) => {
                        let name = js_string(ctx, &helpers, key)?;
                        // SAFETY: the atom of a live string: a new reference.
                        let atom = unsafe { qjs::JS_ValueToAtom(raw, name.v) };
                        if atom == qjs::JS_ATOM_NULL {
                            return Err(quickjs::Error::Exception);
                        }
                        // SAFETY: takes over that reference.
                        unsafe { OwnedAtom::take(raw, atom) }
                    }
                };
                match open.last_mut() {
                    Some(Open::Object(_, slot, node) | Open::Record { key: slot, node, .. }) => {
                        // Before the property is defined, so that its shape exists.
                        if let Some(n) = *node {
                            *node = state.shapes.borrow_mut().step(raw, n, atom.raw())?;
                        }
                        *slot = Some(atom);
                    }
                    Some(Open::Array(.., slot) | Open::Error(_, slot)) => *slot = Some(atom),
                    _ => {}
                }
                continue;
            }
            Token::Object => {
                open.push(Open::Record {
                    index: nodes.len(),
                    start: props.len(),
                    key: None,
                    node: Some(Node::EMPTY),
                });
                nodes.push(undefined());
                continue;
            }
            Token::Array(len) => {
                // SAFETY: a new array of this context.
                let arr = Raw::take(raw, unsafe { qjs::JS_NewArray(raw) })?;
                nodes.push(arr.clone());
                open.push(Open::Array(arr, 0, len, None));
                continue;
            }
            Token::Map | Token::Set => {
                let is_map = matches!(token, Token::Map);
                let obj: Value = helper(&helpers, if is_map { "makeMap" } else { "makeSet" })?.call(())?;
                let obj = Raw::from_value(obj);
                nodes.push(obj.clone());
                open.push(if is_map {
                    Open::Map(obj, None)
                } else {
                    Open::Set(obj)
                });
                continue;
            }
            Token::End => match open.pop() {
                Some(Open::Array(arr, _, len, _)) => {
                    // Elements defined up to the last index made the length
                    // already; holes at the end (or a slow array) did not.
                    if u64::from(fast_array_count(arr.v)) != len {
                        arr.value(ctx)
                            .into_object()
                            .ok_or_else(|| Exception::throw_internal(ctx, "an array"))?
                            .set("length", len as f64)?;
                    }
                    Some(arr)
                }
                Some(Open::Record {
                    index, start, node, ..
                }) => {
                    let obj = record(raw, &state.shapes, node, props.drain(start..))?;
                    nodes[index] = obj.clone();
                    Some(obj)
                }
                Some(Open::Object(o, ..) | Open::Map(o, _) | Open::Set(o) | Open::Error(o, _)) => Some(o),
                None => None,
            },
            Token::Date(time) => {
                // SAFETY: a new Date of this context.
                let v = Raw::take(raw, unsafe { qjs::JS_NewDate(raw, time) })?;
                nodes.push(v.clone());
                Some(v)
            }
            Token::RegExp { source, flags } => {
                let source = js_string(ctx, &helpers, source)?.into_value(ctx);
                let flags = js_string(ctx, &helpers, flags)?.into_value(ctx);
                let v: Value = helper(&helpers, "makeRegExp")?.call((source, flags))?;
                let v = Raw::from_value(v);
                nodes.push(v.clone());
                Some(v)
            }
            Token::ArrayBuffer(b) => {
                let v = new_buffer(&tokens, b)?;
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
                        let v = new_buffer(&tokens, b)?;
                        nodes.push(v.clone());
                        v
                    }
                    ViewBuffer::Ref(i) => nodes.get(i as usize).cloned().unwrap_or_else(undefined),
                };
                let v: Value = helper(&helpers, "makeView")?.call((
                    kind.name(),
                    buffer.into_value(ctx),
                    offset as f64,
                    length as f64,
                ))?;
                let v = Raw::from_value(v);
                nodes[me] = v.clone();
                Some(v)
            }
            Token::Error {
                name,
                message,
                stack,
                props,
            } => {
                let name = js_string(ctx, &helpers, name)?.into_value(ctx);
                let message = js_string(ctx, &helpers, message)?.into_value(ctx);
                let stack = match stack {
                    Some(s) => Some(js_string(ctx, &helpers, s)?.into_value(ctx)),
                    None => None,
                };
                let v: Value = helper(&helpers, "makeError")?.call((name, message, stack))?;
                if !v.is_object() {
                    return Err(Exception::throw_internal(ctx, "makeError"));
                }
                let v = Raw::from_value(v);
                nodes.push(v.clone());
                if props {
                    open.push(Open::Error(v, None));
                    continue;
                }
                Some(v)
            }
        };
        match open.last_mut() {
            None => {
                return item
                    .map(|v| v.into_value(ctx))
                    .ok_or_else(|| Exception::throw_message(ctx, "malformed message: a hole"));
            }
            Some(Open::Array(arr, _, _, key @ Some(_))) => {
                if let (Some(k), Some(v)) = (key.take(), item) {
                    define(arr, Key::Atom(&k), v, DATA)?;
                }
            }
            Some(Open::Array(arr, i, _, None)) => {
                if let Some(v) = item {
                    define(arr, Key::Index(*i), v, DATA)?;
                }
                *i = i.wrapping_add(1);
            }
            Some(Open::Error(obj, key)) => {
                // As the constructor makes them: not enumerable.
                if let (Some(k), Some(v)) = (key.take(), item) {
                    define(
                        obj,
                        Key::Atom(&k),
                        v,
                        qjs::JS_PROP_WRITABLE | qjs::JS_PROP_CONFIGURABLE,
                    )?;
                }
            }
            Some(Open::Record { key, .. }) => {
                if let (Some(k), Some(v)) = (key.take(), item) {
                    props.push((k, v));
                }
            }
            Some(Open::Object(obj, key, _)) => {
                if let (Some(k), Some(v)) = (key.take(), item) {
                    define(obj, Key::Atom(&k), v, DATA)?;
                }
            }
            Some(Open::Map(map, key)) => {
                let v = item.unwrap_or_else(undefined);
                match key.take() {
                    None => *key = Some(v),
                    Some(k) => helper(&helpers, "mapSet")?.call::<_, ()>((
                        map.value(ctx),
                        k.into_value(ctx),
                        v.into_value(ctx),
                    ))?,
                }
            }
            Some(Open::Set(set)) => {
                let v = item.unwrap_or_else(undefined);
                helper(&helpers, "setAdd")?.call::<_, ()>((set.value(ctx), v.into_value(ctx)))?;
            }
        }
    }
    Err(Exception::throw_message(ctx, "malformed message: unexpected end"))
}

/// A record of these properties: made of a plain skeleton when they are
/// its keys in order, else defined one by one.
fn record(
    raw: *mut qjs::JSContext,
    shapes: &std::cell::RefCell<Shapes>,
    node: Option<Node>,
    props: impl ExactSizeIterator<Item = (OwnedAtom, Raw)>,
) -> quickjs::Result<Raw> {
    let skeleton = node.and_then(|n| shapes.borrow().plain(n));
    if let Some(skeleton) = skeleton.filter(|s| s.keys().len() == props.len()) {
        let obj = skeleton.make(raw)?;
        for (i, ((key, v), &expected)) in props.zip(skeleton.keys()).enumerate() {
            if key.raw() == expected {
                set_slot(&obj, i as u32, v)?;
            } else {
                // Not reached: the trie's node is these keys.
                define(&obj, Key::Atom(&key), v, DATA)?;
            }
        }
        return Ok(obj);
    }
    // SAFETY: a new object of this context.
    let obj = Raw::take(raw, unsafe { qjs::JS_NewObject(raw) })?;
    for (key, v) in props {
        define(&obj, Key::Atom(&key), v, DATA)?;
    }
    Ok(obj)
}

/// Makes the open record at `nodes[index]` now (a reference to it came
/// before its end), with the records opened inside it: each becomes an
/// [`Open::Object`] with the properties read so far. Nothing is made when
/// `index` is no open record (the reference is malformed).
fn make_now(
    raw: *mut qjs::JSContext,
    index: usize,
    open: &mut [Open],
    nodes: &mut [Raw],
    props: &mut Vec<(OwnedAtom, Raw)>,
) -> quickjs::Result<()> {
    let Some(from) = open
        .iter()
        .position(|o| matches!(o, Open::Record { index: i, .. } if *i == index))
    else {
        return Ok(());
    };
    // Innermost first: each takes the properties after its start.
    for o in open[from..].iter_mut().rev() {
        if let Open::Record {
            index,
            start,
            key,
            node,
        } = o
        {
            // SAFETY: a new object of this context.
            let obj = Raw::take(raw, unsafe { qjs::JS_NewObject(raw) })?;
            for (k, v) in props.drain(*start..) {
                define(&obj, Key::Atom(&k), v, DATA)?;
            }
            nodes[*index] = obj.clone();
            *o = Open::Object(obj, key.take(), *node);
        }
    }
    Ok(())
}

/// A new ArrayBuffer holding a copy of `bytes`. QuickJS's own copy
/// (`JS_NewArrayBufferCopy`) zeroes its allocation before copying into it,
/// a second pass over every byte; this allocates with QuickJS's allocator
/// (so its memory accounting sees the bytes) and copies once.
fn array_buffer(raw: *mut qjs::JSContext, bytes: &[u8]) -> quickjs::Result<Raw> {
    unsafe extern "C" fn free(rt: *mut qjs::JSRuntime, _opaque: *mut c_void, ptr: *mut c_void) {
        // SAFETY: `ptr` came from js_malloc of a context of this runtime.
        unsafe { qjs::js_free_rt(rt, ptr) }
    }
    // SAFETY: allocates in this context's runtime; null (out of memory) has
    // thrown already.
    let data = unsafe { qjs::js_malloc(raw, bytes.len().max(1) as qjs::size_t) }.cast::<u8>();
    if data.is_null() {
        return Err(quickjs::Error::Exception);
    }
    // SAFETY: `data` has room for `bytes.len()` bytes and is a fresh allocation.
    unsafe { data.copy_from_nonoverlapping(bytes.as_ptr(), bytes.len()) };
    // SAFETY: hands `data` to the new ArrayBuffer, which frees it with `free`;
    // on failure QuickJS has not taken it, so it is freed here.
    let v = unsafe {
        qjs::JS_NewArrayBuffer(
            raw,
            data,
            bytes.len() as qjs::size_t,
            Some(free),
            null_mut(),
            false,
        )
    };
    // SAFETY: reads the tag of the value just returned.
    if unsafe { qjs::JS_IsException(v) } {
        // SAFETY: `data` was not taken.
        unsafe { qjs::js_free(raw, data.cast()) };
        return Err(quickjs::Error::Exception);
    }
    // JS_NewArrayBuffer returned a new owned value of this context.
    Ok(Raw { ctx: raw, v })
}

/// A data property as an object literal makes it.
const DATA: u32 = qjs::JS_PROP_C_W_E;

/// Where [`define`] puts a value.
enum Key<'a> {
    Atom(&'a OwnedAtom),
    Index(u32),
}

/// Defines `obj[key] = v` as an own property with `flags` (never a setter,
/// never the prototype for `__proto__`).
fn define(obj: &Raw, key: Key<'_>, v: Raw, flags: u32) -> quickjs::Result<()> {
    let flags = (flags | qjs::JS_PROP_THROW) as std::ffi::c_int;
    let (ctx, v) = (obj.ctx, v.into_raw());
    // SAFETY: defines a property of a live object; QuickJS takes the
    // reference to `v`, whatever the outcome.
    let r = unsafe {
        match key {
            Key::Atom(atom) => qjs::JS_DefinePropertyValue(ctx, obj.v, atom.raw(), v, flags),
            Key::Index(i) => qjs::JS_DefinePropertyValueUint32(ctx, obj.v, i, v, flags),
        }
    };
    if r < 0 {
        Err(quickjs::Error::Exception)
    } else {
        Ok(())
    }
}
