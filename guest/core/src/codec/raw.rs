//! Owned QuickJS values without a context reference, for the codec (see
//! [`Raw`]), and what the encoder reads through them: a property
//! ([`get`]), a primitive from its tag ([`primitive`]), whether a value
//! is a function or a symbol ([`is_skipped`]), a string's or an array's
//! length ([`length`]) and how many elements an array holds in its fast
//! part ([`fast_array_count`]).

use javy::quickjs::{self, Ctx, Object, Value, qjs};

// The QuickJS patch's function (guest/patches/, quickjs.c "outside buffers").
unsafe extern "C" {
    fn JS_FastArrayCount(obj: qjs::JSValue) -> u32;
}

/// The `length` of a string or an array (a string's in UTF-16 code units;
/// an array's a data property: no JavaScript runs), read by atom.
pub(crate) fn length(ctx: &Ctx<'_>, v: &Value<'_>) -> quickjs::Result<u64> {
    let mut len: i64 = 0;
    // SAFETY: reads the length of a live value of this context.
    if unsafe { qjs::JS_GetLength(ctx.as_raw().as_ptr(), v.as_raw(), &mut len) } < 0 {
        return Err(quickjs::Error::Exception);
    }
    Ok(len.max(0) as u64)
}

/// How many elements `v` holds in its fast part (0 for anything but an
/// array with one): reading an index below it runs no JavaScript, and an
/// array whose count is its length has every element.
pub(crate) fn fast_array_count(v: qjs::JSValue) -> u32 {
    // SAFETY: reads the class and fast-array count of a live value.
    unsafe { JS_FastArrayCount(v) }
}

/// An owned reference to a value of the context being encoded or decoded.
/// An rquickjs `Value` also holds a reference to its context, taken and
/// given back (`JS_DupContext`, `JS_FreeContext`) for every value made: 4 %
/// of the main thread's time in a throughput profile. The codec's values
/// live inside one call on one context, so they go without.
pub(crate) struct Raw {
    pub(crate) ctx: *mut qjs::JSContext,
    pub(crate) v: qjs::JSValue,
}

impl Raw {
    /// Takes over a value just returned by QuickJS (its exception marker
    /// is the error QuickJS has made pending).
    pub(crate) fn take(ctx: *mut qjs::JSContext, v: qjs::JSValue) -> quickjs::Result<Raw> {
        // SAFETY: reads the tag of a value.
        if unsafe { qjs::JS_IsException(v) } {
            return Err(quickjs::Error::Exception);
        }
        Ok(Raw { ctx, v })
    }

    /// A value that holds no reference (undefined, null, a boolean, a number).
    pub(crate) fn plain(ctx: *mut qjs::JSContext, v: qjs::JSValue) -> Raw {
        Raw { ctx, v }
    }

    pub(crate) fn from_value(v: Value<'_>) -> Raw {
        let ctx = v.ctx().as_raw().as_ptr();
        // SAFETY: a new reference to a live value; `v` gives back its own.
        Raw {
            ctx,
            v: unsafe { qjs::JS_DupValue(ctx, v.as_raw()) },
        }
    }

    /// The value as rquickjs's, for a helper call.
    pub(crate) fn value<'js>(&self, ctx: &Ctx<'js>) -> Value<'js> {
        // SAFETY: a new reference to a live value of this context.
        unsafe { Value::from_raw(ctx.clone(), qjs::JS_DupValue(self.ctx, self.v)) }
    }

    pub(crate) fn into_value<'js>(self, ctx: &Ctx<'js>) -> Value<'js> {
        // SAFETY: this reference moves into the new `Value`.
        unsafe { Value::from_raw(ctx.clone(), self.into_raw()) }
    }

    /// Gives up this reference to the caller.
    pub(crate) fn into_raw(self) -> qjs::JSValue {
        let v = self.v;
        std::mem::forget(self);
        v
    }

    pub(crate) fn is_undefined(&self) -> bool {
        // SAFETY: reads the tag of a live value.
        unsafe { qjs::JS_IsUndefined(self.v) }
    }
}

impl Clone for Raw {
    fn clone(&self) -> Raw {
        // SAFETY: a new reference to a live value.
        Raw {
            ctx: self.ctx,
            v: unsafe { qjs::JS_DupValue(self.ctx, self.v) },
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: this value holds one reference, given back once here.
        unsafe { qjs::JS_FreeValue(self.ctx, self.v) }
    }
}

/// `obj[key]` (getters run).
pub(crate) fn get(ctx: &Ctx<'_>, obj: &Object<'_>, key: qjs::JSAtom) -> quickjs::Result<Raw> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: reads a property of a live object by a live atom; the result
    // is a new owned value (or the exception marker).
    Raw::take(raw, unsafe { qjs::JS_GetProperty(raw, obj.as_raw(), key) })
}

/// A value written without a JavaScript value made of it.
pub(crate) enum Primitive {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
}

/// The primitive `v` is, read from its tag (an uninitialized binding is
/// `undefined`).
pub(crate) fn primitive(v: qjs::JSValue) -> Option<Primitive> {
    // SAFETY: reads the tag and payload of a live value.
    unsafe {
        match qjs::JS_VALUE_GET_NORM_TAG(v) {
            qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_UNINITIALIZED => Some(Primitive::Undefined),
            qjs::JS_TAG_NULL => Some(Primitive::Null),
            qjs::JS_TAG_BOOL => Some(Primitive::Bool(qjs::JS_VALUE_GET_BOOL(v))),
            qjs::JS_TAG_INT => Some(Primitive::Number(f64::from(qjs::JS_VALUE_GET_INT(v)))),
            qjs::JS_TAG_FLOAT64 => Some(Primitive::Number(qjs::JS_VALUE_GET_FLOAT64(v))),
            _ => None,
        }
    }
}

/// Functions and symbols: left out as properties, refused elsewhere. By
/// the value's tag (`Value::type_of` asks QuickJS several questions of
/// every object).
pub(crate) fn is_skipped(v: &Value<'_>) -> bool {
    // SAFETY: reads the tag of a live value, and asks QuickJS whether a
    // live object is callable.
    unsafe {
        match qjs::JS_VALUE_GET_NORM_TAG(v.as_raw()) {
            qjs::JS_TAG_SYMBOL => true,
            qjs::JS_TAG_OBJECT => qjs::JS_IsFunction(v.ctx().as_raw().as_ptr(), v.as_raw()),
            _ => false,
        }
    }
}
