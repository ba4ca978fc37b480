//! Message bytes to a fresh JavaScript value, driving the codec crate's
//! `Tokens` (which checks the structure).

use std::ffi::c_void;
use std::ptr::null_mut;

use javy::quickjs::{self, Array, Ctx, Exception, Object, TypedArray, Value, qjs};
use miniworker_codec::{DecodeError, Str, Token, Tokens, ViewBuffer};

use super::shapes::Node;
use super::{OwnedAtom, helper, with_state};

// ---- decoding ---------------------------------------------------------------------

/// An open container being filled.
enum Open<'js> {
    /// An object, the key of the property being read, and its keys so far
    /// in the trie of shapes (`None`: not followed).
    Object(Object<'js>, Option<OwnedAtom>, Option<Node>),
    /// An array, the index of its next element, its length (set at its
    /// end: elements defined in order keep QuickJS's fast array), and the
    /// key of the non-index property being read, after the elements.
    Array(Object<'js>, u32, u64, Option<OwnedAtom>),
    /// An Error and the key of its property being read (`errors`).
    Error(Object<'js>, Option<OwnedAtom>),
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
        let raw = ctx.as_raw().as_ptr();
        state.shapes.borrow_mut().make_room(raw);
        let mut nodes: Vec<Value<'js>> = Vec::new();
        let mut open: Vec<Open<'js>> = Vec::new();
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
                        // Records of one shape repeat their keys: the context's cache.
                        Str::Utf8(k) => state.keys.borrow_mut().atom(raw, k)?,
                        Str::Utf16(_) => {
                            let name = js_string(ctx, &helpers, key)?;
                            // SAFETY: the atom of a live string: a new reference.
                            let atom = unsafe { qjs::JS_ValueToAtom(raw, name.as_raw()) };
                            if atom == qjs::JS_ATOM_NULL {
                                return Err(quickjs::Error::Exception);
                            }
                            // SAFETY: takes over that reference.
                            unsafe { OwnedAtom::take(raw, atom) }
                        }
                    };
                    match open.last_mut() {
                        Some(Open::Object(_, slot, node)) => {
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
                    let obj = Object::new(ctx.clone())?;
                    nodes.push(obj.clone().into_value());
                    open.push(Open::Object(obj, None, Some(Node::EMPTY)));
                    continue;
                }
                Token::Array(len) => {
                    let arr = Array::new(ctx.clone())?.into_object();
                    nodes.push(arr.clone().into_value());
                    open.push(Open::Array(arr, 0, len, None));
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
                    Some(Open::Array(arr, _, len, _)) => {
                        arr.set("length", len as f64)?;
                        Some(arr.into_value())
                    }
                    Some(Open::Object(o, ..) | Open::Map(o, _) | Open::Set(o) | Open::Error(o, _)) => {
                        Some(o.into_value())
                    }
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
                    let v = array_buffer(ctx, b)?;
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
                            let v = array_buffer(ctx, b)?;
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
                Token::Error {
                    name,
                    message,
                    stack,
                    props,
                } => {
                    let name = js_string(ctx, &helpers, name)?;
                    let message = js_string(ctx, &helpers, message)?;
                    let stack = stack.map(|s| js_string(ctx, &helpers, s)).transpose()?;
                    let v: Value = helper(&helpers, "makeError")?.call((name, message, stack))?;
                    nodes.push(v.clone());
                    if props {
                        let obj = v
                            .into_object()
                            .ok_or_else(|| Exception::throw_internal(ctx, "makeError"))?;
                        open.push(Open::Error(obj, None));
                        continue;
                    }
                    Some(v)
                }
            };
            match open.last_mut() {
                None => {
                    return item.ok_or_else(|| Exception::throw_message(ctx, "malformed message: a hole"));
                }
                Some(Open::Array(arr, _, _, key @ Some(_))) => {
                    if let (Some(k), Some(v)) = (key.take(), item) {
                        define(ctx, arr, Key::Atom(&k), &v, DATA)?;
                    }
                }
                Some(Open::Array(arr, i, _, None)) => {
                    if let Some(v) = item {
                        define(ctx, arr, Key::Index(*i), &v, DATA)?;
                    }
                    *i = i.wrapping_add(1);
                }
                Some(Open::Error(obj, key)) => {
                    // As the constructor makes them: not enumerable.
                    if let (Some(k), Some(v)) = (key.take(), item) {
                        define(
                            ctx,
                            obj,
                            Key::Atom(&k),
                            &v,
                            qjs::JS_PROP_WRITABLE | qjs::JS_PROP_CONFIGURABLE,
                        )?;
                    }
                }
                Some(Open::Object(obj, key, _)) => {
                    if let (Some(k), Some(v)) = (key.take(), item) {
                        define(ctx, obj, Key::Atom(&k), &v, DATA)?;
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

/// A new ArrayBuffer holding a copy of `bytes`. QuickJS's own copy
/// (`JS_NewArrayBufferCopy`) zeroes its allocation before copying into it,
/// a second pass over every byte; this allocates with QuickJS's allocator
/// (so its memory accounting sees the bytes) and copies once.
fn array_buffer<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> quickjs::Result<Value<'js>> {
    unsafe extern "C" fn free(rt: *mut qjs::JSRuntime, _opaque: *mut c_void, ptr: *mut c_void) {
        // SAFETY: `ptr` came from js_malloc of a context of this runtime.
        unsafe { qjs::js_free_rt(rt, ptr) }
    }
    let raw = ctx.as_raw().as_ptr();
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
    // SAFETY: JS_NewArrayBuffer returned a new owned value of this context.
    Ok(unsafe { Value::from_raw(ctx.clone(), v) })
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
fn define<'js>(
    ctx: &Ctx<'js>,
    obj: &Object<'js>,
    key: Key<'_>,
    v: &Value<'js>,
    flags: u32,
) -> quickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    let flags = (flags | qjs::JS_PROP_THROW) as std::ffi::c_int;
    // SAFETY: defines a property of a live object; QuickJS takes the new
    // reference to `v` made here, whatever the outcome.
    let r = unsafe {
        let v = qjs::JS_DupValue(raw, v.as_raw());
        match key {
            Key::Atom(atom) => qjs::JS_DefinePropertyValue(raw, obj.as_raw(), atom.raw(), v, flags),
            Key::Index(i) => qjs::JS_DefinePropertyValueUint32(raw, obj.as_raw(), i, v, flags),
        }
    };
    if r < 0 {
        Err(quickjs::Error::Exception)
    } else {
        Ok(())
    }
}
