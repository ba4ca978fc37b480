//! JavaScript values to message bytes: iterative, refusing what cannot be
//! cloned (`DataCloneError`) and stopping at the size limit (`RangeError`).

use std::cell::RefCell;
use std::rc::Rc;

use javy::quickjs::object::Filter;
use javy::quickjs::{self, Array, Ctx, Object, Type, TypedArray, Value, qjs};
use miniworker_codec::{ViewKind, Writer, tag};
use rustc_hash::FxHashMap;

use super::keys::{array_props, own_keys};
use super::outside::{Pending, goes_outside, read_may_run_js};
use super::raw::{Primitive, Raw, get, is_skipped, length, primitive};
use super::shapes::{Shapes, Skeleton, shape_of, slot};
use super::strings::StringCache;
use super::{Classes, KeyCache, OwnedAtom, class_of, data_clone_error, fits, helper, too_large, with_state};

// ---- encoding ---------------------------------------------------------------------

enum Frame<'js> {
    /// Own enumerable string-keyed properties (an object's, an array's
    /// non-index ones after its elements, an AggregateError's `errors`);
    /// END after them.
    Props(Object<'js>, Vec<OwnedAtom>, usize),
    /// A plain object of a skeleton's shape: the skeleton's keys, each
    /// value read by slot while the object keeps that shape; END after them.
    Slots(Object<'js>, Rc<Skeleton>, usize),
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
    Prop(qjs::JSAtom, Raw),
}

struct Encoder<'a, 'js> {
    ctx: &'a Ctx<'js>,
    helpers: Object<'js>,
    classes: &'a Classes,
    /// The context's encoded keys (`super::KeyCache`).
    keys: &'a RefCell<KeyCache>,
    /// The context's trie of shapes (`super::shapes`).
    shapes: &'a RefCell<Shapes>,
    /// The context's short strings (`super::strings`).
    strings: &'a RefCell<StringCache>,
    w: Writer,
    /// Object identity (QuickJS pointer) to reference index.
    seen: FxHashMap<usize, u64>,
    /// Keeps every seen object alive, so no address is reused mid-encoding.
    keep: Vec<Object<'js>>,
    /// The bytes each ArrayBuffer (by identity) was written with: a view
    /// read later (a getter may have resized or detached the buffer since)
    /// must fit what was written.
    buffer_lens: FxHashMap<usize, u64>,
    /// The payloads of ArrayBuffers that travel outside the bytes.
    outside: Pending<'js>,
    stack: Vec<Frame<'js>>,
}

/// The encoder's buffer and tables, kept empty between messages for their
/// room (allocations fewer per message); larger ones are not kept.
#[derive(Default)]
pub(crate) struct Scratch {
    buf: Vec<u8>,
    seen: FxHashMap<usize, u64>,
    buffer_lens: FxHashMap<usize, u64>,
}

const SCRATCH_BYTES_KEPT: usize = 64 << 10;
const SCRATCH_ENTRIES_KEPT: usize = 1024;

/// Encodes `value` for `postMessage`, at most `limit` bytes, hands its
/// outside payloads to the host (`context.post-outside`), then the bytes to
/// `then`. Throws `DataCloneError` for what cannot be cloned and
/// `RangeError` past the limit.
pub fn encode<'js, R>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    limit: usize,
    then: impl FnOnce(&[u8]) -> quickjs::Result<R>,
) -> quickjs::Result<R> {
    encode_with(ctx, value, limit, |bytes, outside| {
        if !outside.is_empty() {
            let post = crate::state::with(ctx, |shared| Ok(shared.hooks.post_outside))?;
            outside.each(ctx, post)?;
        }
        then(bytes)
    })
}

/// Encodes `value` as [`encode`] does, and hands the bytes and the outside
/// payloads to `then`.
pub(crate) fn encode_with<'js, R>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    limit: usize,
    then: impl FnOnce(&[u8], &Pending<'js>) -> quickjs::Result<R>,
) -> quickjs::Result<R> {
    with_state(ctx, |state| {
        let Scratch {
            buf,
            seen,
            buffer_lens,
        } = state.encoding.take();
        let mut enc = Encoder {
            ctx,
            helpers: state.helpers.clone().restore(ctx)?,
            classes: &state.classes,
            keys: &state.keys,
            shapes: &state.shapes,
            strings: &state.strings,
            w: Writer::reuse(buf, limit),
            seen,
            keep: Vec::new(),
            buffer_lens,
            outside: Pending::default(),
            stack: Vec::new(),
        };
        let written = enc.run(value);
        let Encoder {
            w,
            mut seen,
            mut buffer_lens,
            outside,
            ..
        } = enc;
        let buf = w.finish();
        let result = written.and_then(|()| then(&buf, &outside));
        if buf.capacity() <= SCRATCH_BYTES_KEPT
            && seen.capacity() <= SCRATCH_ENTRIES_KEPT
            && buffer_lens.capacity() <= SCRATCH_ENTRIES_KEPT
        {
            seen.clear();
            buffer_lens.clear();
            state.encoding.replace(Scratch {
                buf,
                seen,
                buffer_lens,
            });
        }
        result
    })
}

/// An object's identity while the encoder keeps it alive.
fn identity(obj: &Object<'_>) -> usize {
    // SAFETY: reads the pointer of a live object value.
    unsafe { qjs::JS_VALUE_GET_PTR(obj.as_raw()) as usize }
}

/// Elements left after a hole past which an array is read as sparse.
const SPARSE_RUN: u32 = 1024;

impl<'js> Encoder<'_, 'js> {
    /// Writes `value` and everything under it.
    fn run(&mut self, value: Value<'js>) -> quickjs::Result<()> {
        if is_skipped(&value) {
            return Err(self.refuse(&value));
        }
        self.shapes.borrow_mut().make_room(self.ctx.as_raw().as_ptr());
        self.value(value)?;
        loop {
            let next = match self.stack.last_mut() {
                None => break,
                Some(Frame::Props(obj, keys, i)) => match keys.get(*i) {
                    None => Next::End,
                    Some(key) => {
                        *i += 1;
                        self.outside.settle();
                        Next::Prop(key.raw(), get(self.ctx, obj, key.raw())?)
                    }
                },
                Some(Frame::Slots(obj, skeleton, i)) => match skeleton.keys().get(*i) {
                    None => Next::End,
                    Some(&key) => {
                        let at = *i as u32;
                        *i += 1;
                        // A getter run since (by a value before this one) may
                        // have changed the object: then by key.
                        let v = if shape_of(obj.as_raw()) == skeleton.shape() {
                            slot(self.ctx.as_raw().as_ptr(), obj.as_raw(), at)
                        } else {
                            self.outside.settle();
                            get(self.ctx, obj, key)?
                        };
                        Next::Prop(key, v)
                    }
                },
                Some(Frame::Elems(obj, len, i)) => {
                    if *i == *len {
                        Next::Done
                    } else {
                        let idx = *i;
                        *i += 1;
                        if self.outside.unsettled() && read_may_run_js(obj, idx) {
                            self.outside.settle();
                        }
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
                                if let Some(top) = self.stack.last_mut() {
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
                        self.outside.settle();
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
                    self.stack.pop();
                }
                Next::End => {
                    self.stack.pop();
                    self.w.tag(tag::END).map_err(|e| too_large(self.ctx, e))?;
                }
                Next::Hole => self.w.tag(tag::HOLE).map_err(|e| too_large(self.ctx, e))?,
                Next::Holes(n) => {
                    const HOLES: [u8; 4096] = [tag::HOLE; 4096];
                    fits(self.ctx, self.w.room_for(n as u64))?;
                    let mut left = n as usize;
                    while left > 0 {
                        let chunk = left.min(HOLES.len());
                        fits(self.ctx, self.w.bytes(&HOLES[..chunk]))?;
                        left -= chunk;
                    }
                }
                Next::Prop(key, v) => match primitive(v.v) {
                    // Most properties: written from the raw value.
                    Some(p) => {
                        self.key(key)?;
                        self.primitive(p)?;
                    }
                    None => {
                        let v = v.into_value(self.ctx);
                        // Function- and symbol-valued properties are left out (docs/spec.md section 4).
                        if !is_skipped(&v) {
                            self.key(key)?;
                            self.value(v)?;
                        }
                    }
                },
                Next::Value(v) => {
                    if is_skipped(&v) {
                        return Err(self.refuse(&v));
                    }
                    self.value(v)?;
                }
            }
        }
        Ok(())
    }

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
        if let Some(p) = primitive(v.as_raw()) {
            return self.primitive(p);
        }
        // By the value's tag, without `type_of`'s questions.
        // SAFETY: reads the tag of a live value.
        match unsafe { qjs::JS_VALUE_GET_NORM_TAG(v.as_raw()) } {
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => self.string_value(&v),
            qjs::JS_TAG_OBJECT => match v.into_object() {
                Some(obj) => self.object(obj),
                None => fits(self.ctx, self.w.tag(tag::UNDEFINED)),
            },
            _ if v.type_of() == Type::BigInt => self.bigint(v),
            _ => fits(self.ctx, self.w.tag(tag::UNDEFINED)),
        }
    }

    fn primitive(&mut self, p: Primitive) -> quickjs::Result<()> {
        let r = match p {
            Primitive::Undefined => self.w.tag(tag::UNDEFINED),
            Primitive::Null => self.w.tag(tag::NULL),
            Primitive::Bool(b) => self.w.tag(if b { tag::TRUE } else { tag::FALSE }),
            Primitive::Number(n) => self.w.number(n),
        };
        fits(self.ctx, r)
    }

    /// Writes a property key: from the context's cache when it was
    /// encoded before (records of one shape repeat their keys, message
    /// after message), else from its string, and cached.
    fn key(&mut self, key: qjs::JSAtom) -> quickjs::Result<()> {
        if let Some(bytes) = self.keys.borrow().encoded(key) {
            return fits(self.ctx, self.w.bytes(bytes));
        }
        let raw_ctx = self.ctx.as_raw().as_ptr();
        // SAFETY: makes a new owned string value of a live atom.
        let name = unsafe { Value::from_raw(self.ctx.clone(), qjs::JS_AtomToValue(raw_ctx, key)) };
        if name.is_exception() {
            return Err(quickjs::Error::Exception);
        }
        let start = self.w.len();
        self.js_string(&name)?;
        let encoded = self.w.written_since(start);
        self.keys.borrow_mut().insert_encoded(raw_ctx, key, encoded);
        Ok(())
    }

    /// Writes a string value: from the context's cache when this string
    /// was encoded before, else from its text, and cached.
    fn string_value(&mut self, v: &Value<'js>) -> quickjs::Result<()> {
        if let Some(bytes) = self.strings.borrow().encoded(v.as_raw()) {
            return fits(self.ctx, self.w.bytes(bytes));
        }
        let start = self.w.len();
        self.js_string(v)?;
        let encoded = self.w.written_since(start);
        let raw_ctx = self.ctx.as_raw().as_ptr();
        self.strings
            .borrow_mut()
            .insert_encoded(raw_ctx, v.as_raw(), encoded);
        Ok(())
    }

    fn js_string(&mut self, v: &Value<'js>) -> quickjs::Result<()> {
        let raw_ctx = self.ctx.as_raw().as_ptr();
        // Refuse an oversized string before copying it: its UTF-8 form is at
        // least as long as its length in UTF-16 code units.
        fits(self.ctx, self.w.room_for(length(self.ctx, v)?))?;
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
                let array: TypedArray<u16> = helper(&self.helpers, "codeUnits")?.call((v.clone(),))?;
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
        let key = identity(&obj);
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
            let len = u32::try_from(length(self.ctx, &obj)?).unwrap_or(u32::MAX);
            // Every slot takes at least a byte.
            fits(self.ctx, self.w.room_for(len as u64))?;
            let props = array_props(self.ctx, &obj, c.plain_array)?;
            let t = if props.is_empty() {
                tag::ARRAY
            } else {
                tag::ARRAY_PROPS
            };
            let r = self.w.tag(t).and_then(|_| self.w.varint(len as u64));
            fits(self.ctx, r)?;
            // Elements first, then the properties and END.
            if !props.is_empty() {
                self.stack.push(Frame::Props(obj.clone(), props, 0));
            }
            self.stack.push(Frame::Elems(obj, len, 0));
        } else if class == c.map || class == c.set {
            let (t, name) = if class == c.map {
                (tag::MAP, "mapEntries")
            } else {
                (tag::SET, "setValues")
            };
            // Runs project code if `push` was patched (js/codec.js).
            self.outside.settle();
            let items: Array = helper(&self.helpers, name)?.call((obj,))?;
            fits(self.ctx, self.w.tag(t))?;
            let len = items.len();
            self.stack.push(Frame::List(items, len, 0));
        } else if class == c.date {
            let t: f64 = helper(&self.helpers, "dateValue")?.call((obj,))?;
            let r = self.w.tag(tag::DATE).and_then(|_| self.w.bytes(&t.to_le_bytes()));
            fits(self.ctx, r)?;
        } else if class == c.regexp {
            // Reading its flags runs its own getters, if it has any.
            self.outside.settle();
            let parts: Array = helper(&self.helpers, "regexpParts")?.call((obj,))?;
            let (source, flags): (Value, Value) = (parts.get(0)?, parts.get(1)?);
            fits(self.ctx, self.w.tag(tag::REGEXP))?;
            self.js_string(&source)?;
            self.js_string(&flags)?;
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
            let buffer_key = identity(&buffer);
            self.object(buffer)?;
            let written = self.buffer_lens.get(&buffer_key).copied().unwrap_or(0);
            if !kind.fits(offset as u64, length as u64, written) {
                return Err(data_clone_error(
                    self.ctx,
                    &self.helpers,
                    "a view and its ArrayBuffer changed while the message was being cloned",
                ));
            }
        } else if class == c.error {
            // Its name, message and stack may be getters.
            self.outside.settle();
            let parts: Array = helper(&self.helpers, "errorParts")?.call((obj.clone(),))?;
            let (name, message, stack): (Value, Value, Value) = (parts.get(0)?, parts.get(1)?, parts.get(2)?);
            // An AggregateError's own `errors`: the one property beyond these.
            let has_errors: bool = parts.get(3)?;
            fits(
                self.ctx,
                self.w.tag(if has_errors { tag::ERROR_PROPS } else { tag::ERROR }),
            )?;
            self.js_string(&name)?;
            self.js_string(&message)?;
            if stack.is_string() {
                self.js_string(&stack)?;
            } else {
                fits(self.ctx, self.w.tag(tag::UNDEFINED))?;
            }
            if has_errors {
                let raw_ctx = self.ctx.as_raw().as_ptr();
                // SAFETY: makes (or finds) the atom of a constant name; its
                // one reference goes to the frame.
                let errors =
                    unsafe { OwnedAtom::take(raw_ctx, qjs::JS_NewAtom(raw_ctx, c"errors".as_ptr())) };
                self.stack.push(Frame::Props(obj, vec![errors], 0));
            }
        } else {
            // Plain objects, class instances and anything else: own enumerable
            // string-keyed properties (getters are read; symbol keys skipped).
            if class == c.object {
                let known = self.shapes.borrow().of_shape(shape_of(obj.as_raw()));
                if let Some(skeleton) = known {
                    fits(self.ctx, self.w.tag(tag::OBJECT))?;
                    self.stack.push(Frame::Slots(obj, skeleton, 0));
                    return Ok(());
                }
            }
            let keys = own_keys(self.ctx, &obj, |_| true)?;
            if class == c.object {
                // The shapes of the records this context sends stay alive
                // too: one built again for the next message, or a received
                // one given another key and sent back, finds them.
                let raw = self.ctx.as_raw().as_ptr();
                self.shapes
                    .borrow_mut()
                    .follow(raw, keys.iter().map(OwnedAtom::raw))?;
            }
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
        self.buffer_lens.insert(identity(obj), bytes.len() as u64);
        if goes_outside(bytes.len()) {
            fits(self.ctx, self.w.array_buffer_outside(bytes.len()).map(drop))?;
            self.outside.push(obj, bytes.as_ptr(), bytes.len());
            return Ok(());
        }
        fits(self.ctx, self.w.room_for(bytes.len() as u64))?;
        let r = self
            .w
            .tag(tag::ARRAY_BUFFER)
            .and_then(|_| self.w.varint(bytes.len() as u64))
            .and_then(|_| self.w.bytes(bytes));
        fits(self.ctx, r)
    }
}
