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
//! `JS_ToCStringLen2`), an ArrayBuffer's bytes in place (`JS_GetArrayBuffer`),
//! a Date from a time value (`JS_NewDate`), an object's identity
//! (`JS_VALUE_GET_PTR`) and an array's non-index keys
//! (`JS_GetOwnPropertyNames`, skipping index atoms unread): each has no
//! rquickjs equivalent that avoids a JavaScript call or a copy per value.

mod decode;
mod encode;

pub use decode::decode;
pub use encode::encode;

use std::cell::RefCell;

use javy::quickjs::{self, Array, Ctx, Exception, Function, Object, Persistent, Value, qjs};
use miniworker_codec::{TooLarge, ViewKind};
use rustc_hash::FxHashMap;

/// The class ids the encoder tells apart, read once from exemplar objects.
pub(crate) struct Classes {
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

/// The codec's part of a context's state (`crate::state`).
pub(crate) struct State {
    helpers: Persistent<Object<'static>>,
    classes: Classes,
    keys: RefCell<KeyCache>,
}

/// One reference to a QuickJS atom, given back when dropped.
pub(crate) struct OwnedAtom {
    ctx: *mut qjs::JSContext,
    atom: qjs::JSAtom,
}

impl OwnedAtom {
    /// Takes over a reference the caller holds to `atom`.
    ///
    /// # Safety
    /// `atom` is a live atom of `ctx`'s runtime with a reference that the
    /// caller gives to the new value; `ctx` outlives it.
    pub(crate) unsafe fn take(ctx: *mut qjs::JSContext, atom: qjs::JSAtom) -> OwnedAtom {
        OwnedAtom { ctx, atom }
    }

    pub(crate) fn raw(&self) -> qjs::JSAtom {
        self.atom
    }
}

impl Drop for OwnedAtom {
    fn drop(&mut self) {
        // SAFETY: this value holds one reference, given back once here.
        unsafe { qjs::JS_FreeAtom(self.ctx, self.atom) };
    }
}

/// Property keys encoded or decoded before in this context: records of one
/// shape repeat their keys message after message, and a cached key costs a
/// lookup instead of a string made from the atom and converted to UTF-8
/// (encoding), or an atom looked up from its text (decoding). Each cached
/// atom holds a reference, so its number cannot name another key while it
/// is here.
#[derive(Default)]
pub(crate) struct KeyCache {
    /// The encoder's side: a key's encoded bytes, by atom.
    encoded: FxHashMap<qjs::JSAtom, Box<[u8]>>,
    /// The decoder's side: a key's atom, by its UTF-8 text.
    atoms: FxHashMap<Box<[u8]>, qjs::JSAtom>,
}

/// Keys cached per context and direction at most (then that side starts
/// again), and the longest key cached, in bytes.
const KEYS_CACHED: usize = 4096;
const KEY_BYTES_CACHED: usize = 64;

impl KeyCache {
    pub(crate) fn encoded(&self, atom: qjs::JSAtom) -> Option<&[u8]> {
        self.encoded.get(&atom).map(|b| &b[..])
    }

    /// Caches `encoded` as the bytes of `atom` (short keys only).
    pub(crate) fn insert_encoded(&mut self, ctx: *mut qjs::JSContext, atom: qjs::JSAtom, encoded: &[u8]) {
        if encoded.len() > KEY_BYTES_CACHED {
            return;
        }
        if self.encoded.len() >= KEYS_CACHED {
            give_back(ctx, self.encoded.drain().map(|(atom, _)| atom));
        }
        // SAFETY: the cache takes its own reference to a live atom.
        let atom = unsafe { qjs::JS_DupAtom(ctx, atom) };
        self.encoded.insert(atom, encoded.into());
    }

    /// The atom of the key `text`, a new reference (cached, or made and
    /// cached when short).
    pub(crate) fn atom(&mut self, ctx: *mut qjs::JSContext, text: &str) -> quickjs::Result<OwnedAtom> {
        if let Some(&atom) = self.atoms.get(text.as_bytes()) {
            // SAFETY: a new reference to an atom the cache keeps alive.
            return Ok(unsafe { OwnedAtom::take(ctx, qjs::JS_DupAtom(ctx, atom)) });
        }
        // SAFETY: makes (or finds) the atom of `text`; a new reference.
        let atom = unsafe { qjs::JS_NewAtomLen(ctx, text.as_ptr().cast(), text.len() as qjs::size_t) };
        if atom == qjs::JS_ATOM_NULL {
            return Err(quickjs::Error::Exception);
        }
        if text.len() <= KEY_BYTES_CACHED {
            if self.atoms.len() >= KEYS_CACHED {
                give_back(ctx, self.atoms.drain().map(|(_, atom)| atom));
            }
            // SAFETY: the cache takes its own reference to a live atom.
            self.atoms
                .insert(text.as_bytes().into(), unsafe { qjs::JS_DupAtom(ctx, atom) });
        }
        // SAFETY: hands the reference JS_NewAtomLen returned to the caller.
        Ok(unsafe { OwnedAtom::take(ctx, atom) })
    }
}

/// Gives back one reference to each of `atoms`.
fn give_back(ctx: *mut qjs::JSContext, atoms: impl Iterator<Item = qjs::JSAtom>) {
    for atom in atoms {
        // SAFETY: the cache held one reference to each, given back once.
        unsafe { qjs::JS_FreeAtom(ctx, atom) };
    }
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
        helpers: Persistent::save(ctx, helpers.clone()),
        classes,
        keys: RefCell::default(),
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
