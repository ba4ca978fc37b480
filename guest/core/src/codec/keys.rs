//! Property keys as QuickJS atoms, for both directions of the codec: an
//! owned reference to an atom ([`OwnedAtom`]), an object's keys listed as
//! atoms ([`own_keys`], an array's non-index ones [`array_props`]) and the
//! per-context cache of keys seen before ([`KeyCache`]).

use javy::quickjs::{self, Ctx, Object, Value, qjs};
use rustc_hash::FxHashMap;

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

/// An object's own enumerable string-keyed properties in QuickJS's order
/// (`JS_GetOwnPropertyNames`: the engine's atoms, no strings made), those
/// `keep` accepts.
pub(crate) fn own_keys(
    ctx: &Ctx<'_>,
    obj: &Object<'_>,
    mut keep: impl FnMut(qjs::JSAtom) -> bool,
) -> quickjs::Result<Vec<OwnedAtom>> {
    let raw_ctx = ctx.as_raw().as_ptr();
    let mut tab: *mut qjs::JSPropertyEnum = std::ptr::null_mut();
    let mut len: u32 = 0;
    let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as std::ffi::c_int;
    // SAFETY: lists the own keys of a live object; on success `tab` holds
    // `len` entries, each owning a reference to its atom.
    if unsafe { qjs::JS_GetOwnPropertyNames(raw_ctx, &mut tab, &mut len, obj.as_raw(), flags) } < 0 {
        return Err(quickjs::Error::Exception);
    }
    let mut keys = Vec::with_capacity(len as usize);
    if !tab.is_null() {
        // SAFETY: QuickJS returned `len` initialised entries at `tab`.
        let entries = unsafe { std::slice::from_raw_parts(tab, len as usize) };
        for entry in entries {
            // SAFETY: takes over the entry's reference (given back when
            // dropped, at once if `keep` refuses it).
            let key = unsafe { OwnedAtom::take(raw_ctx, entry.atom) };
            if keep(entry.atom) {
                keys.push(key);
            }
        }
        // SAFETY: every entry's reference moved to `keys` or was given
        // back: only the table itself is left to free.
        unsafe { qjs::js_free(raw_ctx, tab.cast()) };
    }
    Ok(keys)
}

/// An array's own enumerable string-keyed properties that are not
/// indexes (usually none). An array of the plain array shape (`plain`,
/// `shapes::plain_array_shape`) has none and is not listed; any other is
/// listed without making a key of every index: QuickJS lists indexes as
/// tagged-integer atoms, which are skipped.
pub(crate) fn array_props(ctx: &Ctx<'_>, obj: &Object<'_>, plain: usize) -> quickjs::Result<Vec<OwnedAtom>> {
    if super::shapes::shape_of(obj.as_raw()) == plain {
        return Ok(Vec::new());
    }
    // QuickJS's tag bit of an atom that is an integer index (quickjs.c).
    const ATOM_TAG_INT: u32 = 1 << 31;
    let raw_ctx = ctx.as_raw().as_ptr();
    own_keys(ctx, obj, |atom| {
        if atom & ATOM_TAG_INT != 0 {
            return false;
        }
        // SAFETY: makes a new owned string value of a live atom.
        let key = unsafe { Value::from_raw(ctx.clone(), qjs::JS_AtomToValue(raw_ctx, atom)) };
        // An index past the tagged range (not reachable under the
        // message limit, checked all the same) is an element too.
        !key.as_string().and_then(|k| k.to_string().ok()).is_some_and(|k| {
            k.parse::<u32>()
                .is_ok_and(|i| i != u32::MAX && i.to_string() == k)
        })
    })
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
