//! The state one JavaScript context shares between its natives and
//! QuickJS's C callbacks (module loader, rejection tracker): one value kept
//! in the runtime's userdata (rquickjs `Ctx::store_userdata`), so every
//! piece of it lives and dies with its context, and a callback that only
//! gets a raw `JSContext` finds it from there. A component instance holds
//! one context, so the last context installed is remembered beside it
//! ([`LAST`]): finding its state is a comparison, not rquickjs's lookup by
//! type (a hash of the type id, several times per message).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::ptr::null_mut;
use std::time::Instant;

use javy::quickjs::{self, Ctx, Function, JsLifetime, Persistent, qjs};

use crate::context::Hooks;

pub(crate) struct Shared {
    /// The host calls of this component's world.
    pub(crate) hooks: Hooks,
    /// The largest encoded message `postMessage` sends (set by `start`).
    pub(crate) max_message: Cell<usize>,
    /// The origin of `performance.now()`, set when the context starts: a
    /// snapshot taken at build time must not carry the build machine's clock.
    pub(crate) clock_origin: Cell<Option<Instant>>,
    /// Promises rejected with no handler during this checkpoint, with their
    /// reasons, each holding a reference; a later handler removes its entry.
    pub(crate) unhandled: RefCell<Vec<(qjs::JSValue, qjs::JSValue)>>,
    /// The codec's helpers and class ids.
    pub(crate) codec: OnceCell<crate::codec::State>,
    /// Module resolutions made so far: (requesting directory, request) to file.
    pub(crate) resolved: RefCell<HashMap<(String, String), String>>,
    /// Every ES module compiled so far, by file (QuickJS owns them).
    pub(crate) es_modules: RefCell<HashMap<String, usize>>,
    /// `importFile` of `js/common.js`, for the module loader.
    pub(crate) import_file: OnceCell<Persistent<Function<'static>>>,
}

// SAFETY: `Shared` holds no value tied to a `'js` lifetime (persistent
// handles are `'static`), so it is the same type for every lifetime.
unsafe impl<'js> JsLifetime<'js> for Shared {
    type Changed<'to> = Shared;
}

/// Gives `ctx` its state; called once, before any prelude runs.
pub(crate) fn install(ctx: &Ctx<'_>, hooks: Hooks) -> quickjs::Result<()> {
    let shared = Shared {
        hooks,
        max_message: Cell::new(miniworker_codec::DEFAULT_MAX_MESSAGE),
        clock_origin: Cell::new(None),
        unhandled: RefCell::new(Vec::new()),
        codec: OnceCell::new(),
        resolved: RefCell::new(HashMap::new()),
        es_modules: RefCell::new(HashMap::new()),
        import_file: OnceCell::new(),
    };
    ctx.store_userdata(shared)
        .map_err(|_| quickjs::Exception::throw_internal(ctx, "the context's state is in use"))?;
    if let Some(stored) = ctx.userdata::<Shared>() {
        // The userdata is boxed and never removed: its address holds while
        // the context lives.
        LAST.set((ctx.as_raw().as_ptr(), &*stored as *const Shared));
    }
    Ok(())
}

thread_local! {
    /// The context installed last and its state.
    static LAST: Cell<(*mut qjs::JSContext, *const Shared)> = const { Cell::new((null_mut(), std::ptr::null())) };
}

/// Runs `f` on `ctx`'s state; an internal error before [`install`].
pub(crate) fn with<R>(ctx: &Ctx<'_>, f: impl FnOnce(&Shared) -> quickjs::Result<R>) -> quickjs::Result<R> {
    let (last_ctx, last) = LAST.get();
    if last_ctx == ctx.as_raw().as_ptr() && !last.is_null() {
        // SAFETY: the state of this live context: every context of the
        // guest is made by `Context::new`, which installs its state, so an
        // address that comes back for a new context comes back through
        // `install` first.
        return f(unsafe { &*last });
    }
    match ctx.userdata::<Shared>() {
        Some(shared) => f(&shared),
        None => Err(quickjs::Exception::throw_internal(
            ctx,
            "the context's state is missing",
        )),
    }
}
