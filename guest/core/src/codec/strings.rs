//! Short string values seen before in this context, for both directions of
//! the codec: messages repeat their short strings (`type: 'result'`,
//! `kind: 'tick'`) message after message, as records repeat their keys.
//!
//! The decoder gives a short string it has made before the same QuickJS
//! string again (strings are immutable, so sharing one is invisible to
//! JavaScript) instead of allocating and converting a new one; the encoder
//! finds the encoded bytes of a string it has seen (by the string's
//! identity) instead of converting it to UTF-8 and checking it. Each cached
//! string holds a reference, so its identity cannot name another string
//! while it is here. A string is cached the second time it is met (a table
//! of the hashes of strings met once lately), so the many distinct strings
//! of a large message cost no cache entries.

use javy::quickjs::qjs;
use rustc_hash::FxHashMap;

/// Strings cached per context and direction at most (then that side starts
/// again), and the longest cached, in bytes of UTF-8.
const STRINGS_CACHED: usize = 512;
const STRING_BYTES_CACHED: usize = 32;

#[derive(Default)]
pub(crate) struct StringCache {
    /// Strings met once lately, per direction (`Admission`): a string is
    /// cached the second time it is met, so the distinct strings of a large
    /// message do not churn the cache.
    admit_encoded: Admission,
    admit_values: Admission,
    /// The encoder's side: a string's encoded bytes, by its address (the
    /// string, with a reference held, beside them).
    encoded: FxHashMap<usize, (qjs::JSValue, Box<[u8]>)>,
    /// The decoder's side: a string value, by its UTF-8 text.
    values: FxHashMap<Box<[u8]>, qjs::JSValue>,
}

/// A direct-mapped table of the hashes of strings met once lately: 1 KiB
/// per direction and context (a host holds thousands of contexts).
struct Admission([u32; ADMISSION_SLOTS]);

const ADMISSION_SLOTS: usize = 256;

impl Default for Admission {
    fn default() -> Self {
        Admission([0; ADMISSION_SLOTS])
    }
}

impl Admission {
    /// Whether the string of hash `h` ([`hash`]) was met before
    /// (remembered if not): its slot from the hash's top bits, its tag
    /// from the bits below.
    fn second_time(&mut self, h: u64) -> bool {
        let slot = &mut self.0[(h >> 56) as usize % ADMISSION_SLOTS];
        let tag = (h >> 16) as u32;
        if *slot == tag {
            return true;
        }
        *slot = tag;
        false
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(bytes)
}

/// A string value's address, its identity while it lives.
fn address(v: qjs::JSValue) -> usize {
    // SAFETY: reads the pointer of a string value.
    unsafe { qjs::JS_VALUE_GET_PTR(v) as usize }
}

impl StringCache {
    /// The encoded bytes of the string `v`, when it was encoded before.
    pub(crate) fn encoded(&self, v: qjs::JSValue) -> Option<&[u8]> {
        self.encoded.get(&address(v)).map(|(_, b)| &b[..])
    }

    /// Caches `encoded` as the bytes of the string `v` (short ones only).
    pub(crate) fn insert_encoded(&mut self, ctx: *mut qjs::JSContext, v: qjs::JSValue, encoded: &[u8]) {
        if encoded.len() > STRING_BYTES_CACHED + 2
            || !self.admit_encoded.second_time(hash(&address(v).to_le_bytes()))
        {
            return;
        }
        if self.encoded.len() >= STRINGS_CACHED {
            give_back(ctx, self.encoded.drain().map(|(_, (v, _))| v));
        }
        // SAFETY: the cache takes its own reference to a live string.
        let v = unsafe { qjs::JS_DupValue(ctx, v) };
        self.encoded.insert(address(v), (v, encoded.into()));
    }

    /// A new reference to the string of `text`, when it was made before.
    pub(crate) fn value(&self, ctx: *mut qjs::JSContext, text: &str) -> Option<qjs::JSValue> {
        let v = *self.values.get(text.as_bytes())?;
        // SAFETY: a new reference to a string the cache keeps alive.
        Some(unsafe { qjs::JS_DupValue(ctx, v) })
    }

    /// Caches the string `v` made from `text` (short ones only).
    pub(crate) fn insert_value(&mut self, ctx: *mut qjs::JSContext, text: &str, v: qjs::JSValue) {
        if text.len() > STRING_BYTES_CACHED || !self.admit_values.second_time(hash(text.as_bytes())) {
            return;
        }
        if self.values.len() >= STRINGS_CACHED {
            give_back(ctx, self.values.drain().map(|(_, v)| v));
        }
        // SAFETY: the cache takes its own reference to a live string.
        self.values
            .insert(text.as_bytes().into(), unsafe { qjs::JS_DupValue(ctx, v) });
    }
}

/// Gives back one reference to each of `values`.
fn give_back(ctx: *mut qjs::JSContext, values: impl Iterator<Item = qjs::JSValue>) {
    for v in values {
        // SAFETY: the cache held one reference to each, given back once.
        unsafe { qjs::JS_FreeValue(ctx, v) };
    }
}
