//! The message path's crossings between Rust and JavaScript, without
//! rquickjs's wrappers: the natives that send (`postMessage`), called by
//! QuickJS directly, and the call that delivers each message
//! ([`call_with`]).
//!
//! Both run once per message. rquickjs's `Function::new` wraps a Rust
//! closure in a class object whose call goes through its own dispatch (a
//! vtable, an argument list, a context handle per argument and the
//! closure's parameter conversions), and its `Function::call` builds an
//! argument list the same way: about 4 % and 2-3 % of the main thread's
//! time in a throughput profile (docs/BENCHMARKS.md). A component crate
//! writes such a native with [`native_fn!`](crate::native_fn) (a C
//! function, [`CFunction`], whose body runs inside [`call`]) and makes it
//! a JavaScript function with [`function`] (QuickJS's `JS_NewCFunction2`);
//! every other native and call keeps rquickjs's.

use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

use javy::quickjs::{self, Ctx, Exception, Function, Value, qjs};

/// A native's C entry point, as QuickJS calls it.
pub type CFunction = unsafe extern "C" fn(
    ctx: *mut qjs::JSContext,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue;

/// The JavaScript function `name` that calls `entry` (declared with
/// `length` parameters: QuickJS passes at least that many arguments,
/// `undefined` for those left out).
pub fn function<'js>(
    ctx: &Ctx<'js>,
    name: &CStr,
    length: u8,
    entry: CFunction,
) -> quickjs::Result<Function<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: makes a new function object of this live context; the name is
    // copied into an atom.
    let v = unsafe {
        qjs::JS_NewCFunction2(
            raw,
            Some(entry),
            name.as_ptr(),
            c_int::from(length),
            qjs::JSCFunctionEnum_JS_CFUNC_generic,
            0,
        )
    };
    // SAFETY: takes over the value just returned.
    let v = unsafe { Value::from_raw(ctx.clone(), v) };
    if v.is_exception() {
        return Err(quickjs::Error::Exception);
    }
    v.into_function()
        .ok_or_else(|| Exception::throw_internal(ctx, "a native function"))
}

/// A native's arguments, borrowed from QuickJS for the call.
pub struct Args<'a, 'js> {
    ctx: &'a Ctx<'js>,
    argv: &'a [qjs::JSValue],
}

impl<'js> Args<'_, 'js> {
    /// Argument `i` (`undefined` past the end).
    pub fn value(&self, i: usize) -> Value<'js> {
        match self.argv.get(i) {
            // SAFETY: a new reference to a live argument of this context.
            Some(&v) => unsafe {
                Value::from_raw(self.ctx.clone(), qjs::JS_DupValue(self.ctx.as_raw().as_ptr(), v))
            },
            None => Value::new_undefined(self.ctx.clone()),
        }
    }

    /// Argument `i` converted as `ToInt32` would, then read as unsigned
    /// (the preludes pass the numbers the host gave them).
    pub fn u32(&self, i: usize) -> quickjs::Result<u32> {
        let v = self.argv.get(i).copied().unwrap_or(qjs::JS_UNDEFINED);
        let mut out = 0i32;
        // SAFETY: converts a live value of this context; an exception stays
        // pending on failure.
        if unsafe { qjs::JS_ToInt32(self.ctx.as_raw().as_ptr(), &mut out, v) } < 0 {
            return Err(quickjs::Error::Exception);
        }
        Ok(out as u32)
    }
}

/// The body of a [`CFunction`]: runs `body` with the call's context and
/// arguments, and returns `undefined` to JavaScript, or throws: an error
/// already pending in the context as it is, any other as a `TypeError`
/// with its message (as rquickjs's wrapper does).
///
/// # Safety
/// `ctx`, `argc` and `argv` are those QuickJS passed to the C function
/// calling this, unchanged.
pub unsafe fn call(
    ctx: *mut qjs::JSContext,
    argc: c_int,
    argv: *mut qjs::JSValue,
    body: impl for<'a, 'js> FnOnce(&'a Ctx<'js>, Args<'a, 'js>) -> quickjs::Result<()>,
) -> qjs::JSValue {
    let Some(raw) = NonNull::new(ctx) else {
        return qjs::JS_EXCEPTION;
    };
    // SAFETY: QuickJS is calling this native on `ctx`, so its runtime is
    // held by this thread for the call.
    let ctx = unsafe { Ctx::from_raw(raw) };
    let argv: &[qjs::JSValue] = match usize::try_from(argc) {
        // SAFETY: QuickJS passes `argc` live arguments at `argv`.
        Ok(n) if n > 0 && !argv.is_null() => unsafe { std::slice::from_raw_parts(argv, n) },
        _ => &[],
    };
    match body(&ctx, Args { ctx: &ctx, argv }) {
        Ok(()) => qjs::JS_UNDEFINED,
        Err(quickjs::Error::Exception) => qjs::JS_EXCEPTION,
        Err(e) => {
            let _ = Exception::throw_type(&ctx, &e.to_string());
            qjs::JS_EXCEPTION
        }
    }
}

/// Calls `f` with `args` (`this` undefined) through QuickJS directly, for
/// the delivery of each message: rquickjs's `Function::call` builds an
/// argument list with a context handle per argument and converts the
/// result. `args` are borrowed for the call (see [`number`] and
/// `Value::as_raw`).
pub fn call_with<'js>(ctx: &Ctx<'js>, f: &Function<'js>, args: &[qjs::JSValue]) -> quickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    let argc =
        c_int::try_from(args.len()).map_err(|_| Exception::throw_internal(ctx, "too many arguments"))?;
    // SAFETY: calls a live function of this context with live arguments
    // that QuickJS only borrows (it does not write through `argv`); the
    // result is owned.
    let r = unsafe { qjs::JS_Call(raw, f.as_raw(), qjs::JS_UNDEFINED, argc, args.as_ptr().cast_mut()) };
    // SAFETY: reads the tag of the value just returned, then gives it back.
    unsafe {
        if qjs::JS_IsException(r) {
            return Err(quickjs::Error::Exception);
        }
        qjs::JS_FreeValue(raw, r);
    }
    Ok(())
}

/// A number as a JavaScript value that holds no reference (an int when it
/// fits, as rquickjs converts a `u32`).
pub fn number(n: u32) -> qjs::JSValue {
    match i32::try_from(n) {
        Ok(i) => qjs::JS_MKVAL(qjs::JS_TAG_INT, i),
        Err(_) => qjs::JS_NewFloat64(f64::from(n)),
    }
}

/// Declares a [`CFunction`] named `$name` whose body gets the call's
/// context and [`Args`] as `$ctx` and `$args` and returns
/// `quickjs::Result<()>` (see [`call`]).
#[macro_export]
macro_rules! native_fn {
    ($(#[$doc:meta])* fn $name:ident($ctx:ident, $args:ident) $body:block) => {
        $(#[$doc])*
        unsafe extern "C" fn $name(
            ctx: *mut $crate::quickjs::qjs::JSContext,
            _this: $crate::quickjs::qjs::JSValue,
            argc: ::std::ffi::c_int,
            argv: *mut $crate::quickjs::qjs::JSValue,
        ) -> $crate::quickjs::qjs::JSValue {
            // SAFETY: QuickJS's own arguments, passed on unchanged.
            unsafe { $crate::native::call(ctx, argc, argv, |$ctx, $args| $body) }
        }
    };
}
