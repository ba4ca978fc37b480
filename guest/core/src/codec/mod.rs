//! The message codec inside the guest: JavaScript values to the format of
//! `docs/codec.md` (crate `miniworker-codec`) and back.
//!
//! Both directions are iterative (an explicit stack, never native recursion),
//! so no message, however deep, overflows the stack. Classes are told apart by
//! QuickJS class id, which JavaScript cannot fake; the helpers in
//! `js/codec.js` use built-ins saved before any project code ran.
//!
//! Raw FFI (`qjs::`), and why: class ids (`JS_GetClassID`: rquickjs has no
//! accessor, and class ids are what JavaScript cannot fake); a string's
//! UTF-16 length and its UTF-8 bytes without a copy (`JS_GetLength`,
//! `JS_ToCStringLen2`), an ArrayBuffer's bytes in place (`JS_GetArrayBuffer`)
//! and a new one copied once (`js_malloc`, `JS_NewArrayBuffer`), a Date from
//! a time value (`JS_NewDate`), an object's identity (`JS_VALUE_GET_PTR`);
//! and property keys as QuickJS's own atoms (`keys.rs`): listed with
//! `JS_GetOwnPropertyNames` (an array's index atoms skipped unread; an
//! array of the shape every plain array shares not listed at all), read
//! with `JS_GetProperty`, defined with `JS_DefinePropertyValue`, and cached
//! per context by atom; the decoder's values as plain owned references
//! (`raw.rs` `Raw`), without the reference to the context each rquickjs
//! value takes; and records of a known shape made and read by slot with
//! the functions our QuickJS patch adds (`shapes.rs`). Each has no
//! rquickjs equivalent that avoids a JavaScript call, a copy, a string, a
//! context reference or a property lookup per value.

mod decode;
mod encode;
mod keys;
mod outside;
mod raw;
mod shapes;
mod strings;

pub use decode::decode;
pub use encode::encode;

pub(crate) use keys::{KeyCache, OwnedAtom};

use std::cell::RefCell;

use javy::quickjs::{self, Array, Ctx, Exception, Function, Object, Persistent, Value, qjs};
use miniworker_codec::{TooLarge, ViewKind};

/// `structuredClone(value)`: encoded and decoded in this context, each
/// outside payload copied once.
pub fn structured_clone<'js>(ctx: &Ctx<'js>, value: Value<'js>, limit: usize) -> quickjs::Result<Value<'js>> {
    encode::encode_with(ctx, value, limit, |bytes, outside| {
        let mut copies = Vec::new();
        outside.each(ctx, |payload| copies.push(payload.to_vec()))?;
        decode(ctx, bytes, copies)
    })
}

/// The class ids the encoder tells apart, read once from exemplar objects.
pub(crate) struct Classes {
    /// A plain object's (`{}`, `new Object()`).
    object: u32,
    array: u32,
    /// The shape of an array with no property but its length
    /// ([`shapes::plain_array_shape`]).
    plain_array: usize,
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

/// The codec's part of a context's state (`crate::state`).
pub(crate) struct State {
    helpers: Persistent<Object<'static>>,
    classes: Classes,
    keys: RefCell<KeyCache>,
    /// Short string values encoded or decoded before (`strings.rs`).
    strings: RefCell<strings::StringCache>,
    /// The trie of key sequences and the skeletons that keep their shapes
    /// alive between messages (and make and read records by slot).
    shapes: RefCell<shapes::Shapes>,
    /// The decoder's stacks and the encoder's buffer and tables, empty
    /// between messages.
    decoding: RefCell<decode::Scratch>,
    encoding: RefCell<encode::Scratch>,
}

pub(crate) fn class_of(v: &Value<'_>) -> u32 {
    // SAFETY: reads the class id of a live value.
    unsafe { qjs::JS_GetClassID(v.as_raw()) }
}

/// Sets the codec up in this context; call before any project code runs.
pub fn install(ctx: &Ctx<'_>) -> quickjs::Result<()> {
    let mut options = quickjs::context::EvalOptions::default();
    options.filename = Some("<miniworker:codec>".into());
    let helpers: Object = ctx.eval_with_options(include_str!("../../js/codec.js"), options)?;
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
        object: class_of(&Object::new(ctx.clone())?.into_value()),
        array: id("array")?,
        plain_array: shapes::plain_array_shape(ctx)?,
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
        helpers: Persistent::save(ctx, helpers.clone()),
        classes,
        keys: RefCell::default(),
        strings: RefCell::default(),
        shapes: RefCell::default(),
        decoding: RefCell::default(),
        encoding: RefCell::default(),
    };
    for name in HELPERS {
        // A helper missing from js/codec.js fails here, when the context is
        // made (at build time, for the snapshot), not in some later message.
        helpers
            .get::<_, Function>(*name)
            .map_err(|_| Exception::throw_internal(ctx, &format!("js/codec.js has no function {name}")))?;
    }
    crate::state::with(ctx, |shared| {
        // One context per component instance: set once.
        let _ = shared.codec.set(state);
        Ok(())
    })
}

/// Every function of `js/codec.js` the codec calls.
const HELPERS: &[&str] = &[
    "dataCloneError",
    "codeUnits",
    "bigintParts",
    "mapEntries",
    "setValues",
    "dateValue",
    "regexpParts",
    "viewParts",
    "errorParts",
    "fromCodeUnits",
    "makeBigInt",
    "makeMap",
    "makeSet",
    "makeRegExp",
    "makeView",
    "makeError",
    "mapSet",
    "setAdd",
];

pub(crate) fn with_state<R>(
    ctx: &Ctx<'_>,
    f: impl FnOnce(&State) -> quickjs::Result<R>,
) -> quickjs::Result<R> {
    crate::state::with(ctx, |shared| match shared.codec.get() {
        Some(state) => f(state),
        None => Err(Exception::throw_internal(ctx, "the message codec is not set up")),
    })
}

pub(crate) fn helper<'js>(helpers: &Object<'js>, name: &str) -> quickjs::Result<Function<'js>> {
    helpers.get(name)
}

pub(crate) fn data_clone_error<'js>(ctx: &Ctx<'js>, helpers: &Object<'js>, message: &str) -> quickjs::Error {
    match helper(helpers, "dataCloneError").and_then(|f| f.call::<_, Value>((message,))) {
        Ok(e) => ctx.throw(e),
        Err(e) => e,
    }
}

pub(crate) fn too_large(ctx: &Ctx<'_>, e: TooLarge) -> quickjs::Error {
    Exception::throw_range(ctx, &format!("postMessage: {e}"))
}

pub(crate) fn fits(ctx: &Ctx<'_>, r: Result<(), TooLarge>) -> quickjs::Result<()> {
    r.map_err(|e| too_large(ctx, e))
}
