//! One QuickJS context and the turns that drive it.
//!
//! Raw FFI (`qjs::`), and why: the stack bounds and pending jobs are
//! `Runtime` methods in rquickjs, and javy keeps its `Runtime` private; the
//! rejection tracker has no rquickjs setter at all.

use std::time::Instant;

use javy::quickjs::context::EvalOptions;
use javy::quickjs::{self, Ctx, Exception, Function, Object, Persistent, TypedArray, Value, qjs};

use crate::modules::{self, Compiled};

/// The level of a `console` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

/// An exception no JavaScript code caught, described for the host.
#[derive(Clone, Debug, Default)]
pub struct JsError {
    /// `error.name`, empty for a thrown non-Error.
    pub name: String,
    /// `String(error.message)`, or `String(value)` for a thrown non-Error.
    pub message: String,
    /// The stack trace with project-relative paths.
    pub stack: String,
    /// The project-relative file of the innermost frame, or empty.
    pub filename: String,
    /// The 1-based line in `filename`, or 0.
    pub lineno: u32,
}

/// What the host needs after a turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct TurnState {
    /// Milliseconds until the earliest timer is due.
    pub next_timer_ms: Option<u64>,
    /// Whether incoming messages have a listener.
    pub listening: bool,
}

/// The host calls every context makes, as the component crate binds them.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Prints one console call, each argument already formatted.
    pub console: fn(Level, &[String]),
    /// Reports an uncaught exception.
    pub uncaught_error: fn(JsError),
    /// Resolves a module request in a file: the module's file, or the error
    /// message `require` throws.
    pub resolve_module: fn(&str, &str) -> Result<String, String>,
    /// Reads a module file that `resolve_module` gave.
    pub load_module: fn(&str) -> Result<String, String>,
    /// Sends the next outside payload of the message posted next.
    pub post_outside: fn(&[u8]),
}

/// The limits a context enforces itself (the host enforces the others).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// QuickJS stack in bytes.
    pub stack: usize,
    /// The largest encoded message `postMessage` sends.
    pub max_message: usize,
    /// Live timers.
    pub max_timers: u32,
}

/// The message size limit of the context `ctx` (set by `start`).
pub fn max_message(ctx: &Ctx<'_>) -> usize {
    crate::state::with(ctx, |shared| Ok(shared.max_message.get()))
        .unwrap_or(miniworker_codec::DEFAULT_MAX_MESSAGE)
}

/// One JavaScript context: a QuickJS runtime with the common and role preludes.
pub struct Context {
    // Field order matters: the persistent handles must go before the runtime.
    common: Persistent<Object<'static>>,
    role: Persistent<Object<'static>>,
    /// The prelude functions the turns call, resolved once at creation.
    prelude: Prelude,
    hooks: Hooks,
    /// `start` ran (it runs once).
    started: std::cell::Cell<bool>,
    runtime: javy::Runtime,
}

/// The functions of `js/common.js` that the turns call, and its turn
/// state, looked up once when the context is made: a prelude without one
/// fails then (at build time, for the snapshot), not in some later turn.
struct Prelude {
    configure: Persistent<Function<'static>>,
    run_common_js: Persistent<Function<'static>>,
    mark_module: Persistent<Function<'static>>,
    watch_entry: Persistent<Function<'static>>,
    run_timer: Persistent<Function<'static>>,
    report_error: Persistent<Function<'static>>,
    /// `turnState` of `js/common.js`, which the preludes keep up to date:
    /// read after every call without calling in.
    turn_state: TurnStateView,
}

/// The two numbers of the common prelude's `turnState` (a `Float64Array`
/// of its own, never handed to project code): when the earliest timer is
/// due (the clock of `performance.now()`, ms; negative with none), and 1
/// while the role listens for messages. Held with the array, so its
/// memory lives as long as the context; a snapshot restores the context's
/// memory as it was, so the address holds in every instance.
struct TurnStateView {
    _array: Persistent<Object<'static>>,
    values: *const f64,
}

impl TurnStateView {
    fn new<'js>(ctx: &Ctx<'js>, common: &Object<'js>) -> quickjs::Result<TurnStateView> {
        let array: TypedArray<f64> = common
            .get("turnState")
            .map_err(|_| Exception::throw_internal(ctx, "the prelude has no turnState"))?;
        let values: &[f64] = array.as_ref();
        if values.len() != 2 {
            return Err(Exception::throw_internal(
                ctx,
                "the prelude's turnState is not two numbers",
            ));
        }
        let values = values.as_ptr();
        Ok(TurnStateView {
            _array: Persistent::save(ctx, array.as_object().clone()),
            values,
        })
    }

    /// What the host needs after a call, as the preludes left it.
    fn read(&self, ctx: &Ctx<'_>) -> TurnState {
        // SAFETY: two f64 of a live, never detached ArrayBuffer that this
        // view keeps alive; QuickJS writes them only while JavaScript runs,
        // which it does not during this read.
        let (due, listening) = unsafe { (self.values.read(), self.values.add(1).read()) };
        TurnState {
            next_timer_ms: (due >= 0.0).then(|| (due - now_ms(ctx)).ceil().max(0.0) as u64),
            listening: listening != 0.0,
        }
    }
}

impl Prelude {
    fn resolve<'js>(ctx: &Ctx<'js>, common: &Object<'js>) -> quickjs::Result<Prelude> {
        let get = |from: &Object<'js>, name: &str| -> quickjs::Result<Persistent<Function<'static>>> {
            let f: Function = from.get(name).map_err(|_| {
                Exception::throw_internal(ctx, &format!("the prelude has no function {name}"))
            })?;
            Ok(Persistent::save(ctx, f))
        };
        Ok(Prelude {
            configure: get(common, "configure")?,
            run_common_js: get(common, "runCommonJs")?,
            mark_module: get(common, "markModule")?,
            watch_entry: get(common, "watchEntry")?,
            run_timer: get(common, "runTimer")?,
            report_error: get(common, "reportError")?,
            turn_state: TurnStateView::new(ctx, common)?,
        })
    }
}

/// Restores a resolved prelude function in `ctx`.
fn f<'js>(ctx: &Ctx<'js>, function: &Persistent<Function<'static>>) -> quickjs::Result<Function<'js>> {
    function.clone().restore(ctx)
}

/// The garbage collector runs after this many bytes of new allocations
/// (javy's default never runs it, so cyclic garbage would pile up to the cap).
const GC_THRESHOLD: usize = 4 << 20;

/// `performance.now()`: milliseconds since the context's clock origin.
fn now_ms(ctx: &Ctx<'_>) -> f64 {
    let origin = crate::state::with(ctx, |shared| {
        Ok(shared.clock_origin.get().unwrap_or_else(|| {
            let now = Instant::now();
            shared.clock_origin.set(Some(now));
            now
        }))
    });
    origin.map_or(0.0, |o| o.elapsed().as_secs_f64() * 1000.0)
}

/// Throws a JavaScript `Error` with `message` (for natives that refuse).
pub fn throw_error(ctx: &Ctx<'_>, message: &str) -> quickjs::Error {
    Exception::throw_message(ctx, message)
}

impl Context {
    /// Creates the runtime, runs the common prelude and then `role_prelude`.
    /// `install` adds the role's natives to the object the role prelude gets;
    /// `role_functions` are the role prelude's functions the component
    /// calls, checked here so that a missing one fails at creation.
    pub fn new(
        hooks: Hooks,
        role_prelude: &str,
        role_functions: &[&str],
        install: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> quickjs::Result<()>,
    ) -> Result<Self, String> {
        let mut config = javy::Config::default();
        // `performance` is ours (js/common.js), on the context's own clock.
        config
            .text_encoding(true)
            .weak_ref(true)
            .performance(false)
            .gc_threshold(GC_THRESHOLD);
        let runtime = javy::Runtime::new(config).map_err(|e| e.to_string())?;
        let (common, role, prelude) = runtime
            .context()
            .with(|ctx| -> quickjs::Result<_> {
                crate::state::install(&ctx, hooks)?;
                install_rejection_tracker(&ctx);
                remove_globals(&ctx)?;
                crate::codec::install(&ctx)?;
                let natives = common_natives(&ctx, hooks)?;
                crate::modules::install(&ctx, &natives)?;
                let common: Object =
                    eval_prelude(&ctx, "common", include_str!("../js/common.js"))?.call((natives,))?;
                crate::modules::set_import_file(&ctx, common.get("importFile")?)?;
                let role_natives = Object::new(ctx.clone())?;
                install(&ctx, &role_natives)?;
                let role: Object =
                    eval_prelude(&ctx, "role", role_prelude)?.call((role_natives, common.clone()))?;
                let prelude = Prelude::resolve(&ctx, &common)?;
                for name in role_functions {
                    role.get::<_, Function>(*name).map_err(|_| {
                        Exception::throw_internal(&ctx, &format!("the role prelude has no function {name}"))
                    })?;
                }
                Ok((
                    Persistent::save(&ctx, common),
                    Persistent::save(&ctx, role),
                    prelude,
                ))
            })
            .map_err(|e| format!("setting up the JavaScript context failed: {e}"))?;
        Ok(Context {
            common,
            role,
            prelude,
            hooks,
            started: std::cell::Cell::new(false),
            runtime,
        })
    }

    /// Applies `limits` and starts the context's clock: what `start` does
    /// before the entry file runs, since everything before it may come from
    /// a build-time snapshot.
    pub fn configure(&self, limits: Limits) -> Result<(), String> {
        if self.started.replace(true) {
            return Err("the context was already started".into());
        }
        self.runtime
            .context()
            .with(|ctx| -> quickjs::Result<()> {
                crate::state::with(&ctx, |shared| {
                    shared.max_message.set(limits.max_message);
                    shared.clock_origin.set(Some(Instant::now()));
                    Ok(())
                })?;
                // SAFETY: the runtime is locked by `with`; these only set
                // the runtime's stack bounds from the current stack pointer.
                unsafe {
                    let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
                    qjs::JS_UpdateStackTop(rt);
                    qjs::JS_SetMaxStackSize(rt, limits.stack as _);
                }
                f(&ctx, &self.prelude.configure)?.call::<_, ()>((limits.max_timers,))
            })
            .map_err(|e| format!("configuring the JavaScript context failed: {e}"))
    }

    /// Runs one turn: `macrotask`, then a microtask checkpoint. Exceptions that
    /// escape either are reported; the state for the host comes back.
    pub fn turn<F>(&self, macrotask: F) -> TurnState
    where
        F: for<'js> FnOnce(&Ctx<'js>, &Object<'js>, &Object<'js>) -> quickjs::Result<()>,
    {
        self.with_preludes(|ctx, common, role| {
            if let Err(e) = macrotask(ctx, common, role) {
                self.report(ctx, e);
            }
            self.checkpoint(ctx);
        })
    }

    /// Runs one turn per item, in order: `macrotask` on it with the role's
    /// function `method` (looked up once), then a microtask checkpoint, with
    /// `between` called before each turn but the first. The state for the
    /// host is read once, after the last.
    pub fn turns<T, F>(&self, items: Vec<T>, between: impl Fn(), method: &str, mut macrotask: F) -> TurnState
    where
        F: for<'js> FnMut(&Ctx<'js>, &Function<'js>, T) -> quickjs::Result<()>,
    {
        self.with_preludes(|ctx, _, role| {
            let function: Option<Function> = role.get(method).ok();
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    between();
                }
                let done = match &function {
                    Some(function) => macrotask(ctx, function, item),
                    None => Err(quickjs::Exception::throw_internal(
                        ctx,
                        &format!("the prelude has no function {method}"),
                    )),
                };
                if let Err(e) = done {
                    self.report(ctx, e);
                }
                self.checkpoint(ctx);
            }
        })
    }

    /// Runs `body` with the preludes' objects (common, role), then reads the
    /// state for the host.
    fn with_preludes(&self, body: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>, &Object<'js>)) -> TurnState {
        self.runtime.context().with(|ctx| {
            let (common, role) = match (self.common.clone().restore(&ctx), self.role.clone().restore(&ctx)) {
                (Ok(c), Ok(r)) => (c, r),
                _ => {
                    (self.hooks.uncaught_error)(JsError {
                        message: "the context's preludes are gone".into(),
                        ..JsError::default()
                    });
                    return TurnState::default();
                }
            };
            body(&ctx, &common, &role);
            self.prelude.turn_state.read(&ctx)
        })
    }

    /// Runs the entry file as the first turn: a CommonJS module, or an ES
    /// module whose failure (a rejection) is reported like any other.
    pub fn start(&self, filename: &str, source: &str) -> TurnState {
        let prelude = &self.prelude;
        self.turn(|ctx, _, _| {
            let run = || match modules::compile(ctx, filename, source)? {
                Compiled::CommonJs(body) => f(ctx, &prelude.run_common_js)?
                    .call::<_, Value>((body, filename))
                    .map(drop),
                Compiled::Module(m) => {
                    f(ctx, &prelude.mark_module)?.call::<_, ()>((filename,))?;
                    let promise = modules::evaluate(ctx, m)?;
                    f(ctx, &prelude.watch_entry)?.call::<_, ()>((promise,))
                }
            };
            run().map_err(|e| {
                if !e.is_exception() {
                    return e;
                }
                // Import and link errors carry no stack frame: they are the
                // entry file's, as far as onError can tell.
                let error = ctx.catch();
                if let Some(obj) = error.as_object()
                    && !obj.contains_key("fileName").unwrap_or(true)
                {
                    let _ = obj.set("fileName", filename);
                }
                ctx.throw(error)
            })
        })
    }

    /// Runs the earliest due timer, if any, as a turn.
    pub fn run_timer(&self) -> TurnState {
        self.turn(|ctx, _, _| f(ctx, &self.prelude.run_timer)?.call(()))
    }

    /// Runs every pending job; each job's escaping exception is reported, and
    /// then every promise that is still rejected with no handler.
    fn checkpoint(&self, ctx: &Ctx<'_>) {
        loop {
            // SAFETY: the context is locked by `with`, which this runs inside;
            // QuickJS runs the job on this runtime's only context.
            let ran = unsafe {
                let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
                let mut job_ctx = std::ptr::null_mut();
                qjs::JS_ExecutePendingJob(rt, &mut job_ctx)
            };
            match ran {
                0 => {
                    let rejected = take_unhandled_rejections(ctx);
                    if rejected.is_empty() {
                        break;
                    }
                    for reason in rejected {
                        self.report_value(ctx, reason);
                    }
                }
                r if r < 0 => {
                    let value = ctx.catch();
                    self.report_value(ctx, value);
                }
                _ => {}
            }
        }
    }

    fn report<'js>(&self, ctx: &Ctx<'js>, error: quickjs::Error) {
        if error.is_exception() {
            let value = ctx.catch();
            self.report_value(ctx, value);
        } else {
            (self.hooks.uncaught_error)(JsError {
                name: "InternalError".into(),
                message: error.to_string(),
                ..JsError::default()
            });
        }
    }

    fn report_value<'js>(&self, ctx: &Ctx<'js>, value: Value<'js>) {
        let reported = f(ctx, &self.prelude.report_error).and_then(|f| f.call::<_, ()>((value,)));
        if let Err(e) = reported {
            let detail = if e.is_exception() {
                format!("{:?}", ctx.catch())
            } else {
                e.to_string()
            };
            (self.hooks.uncaught_error)(JsError {
                name: "InternalError".into(),
                message: format!("reporting an uncaught error failed: {detail}"),
                ..JsError::default()
            });
        }
    }
}

fn eval_prelude<'js>(ctx: &Ctx<'js>, name: &str, source: &str) -> quickjs::Result<Function<'js>> {
    let mut options = EvalOptions::default();
    options.filename = Some(format!("<miniworker:{name}>"));
    ctx.eval_with_options(source, options)
}

/// Globals javy adds that no mini-program context has.
fn remove_globals(ctx: &Ctx<'_>) -> quickjs::Result<()> {
    let globals = ctx.globals();
    for name in ["Javy", "console"] {
        globals.remove(name)?;
    }
    Ok(())
}

fn common_natives<'js>(ctx: &Ctx<'js>, hooks: Hooks) -> quickjs::Result<Object<'js>> {
    let natives = Object::new(ctx.clone())?;
    natives.set(
        "console",
        Function::new(
            ctx.clone(),
            move |level: u32, args: Vec<String>| -> quickjs::Result<()> {
                let level = match level {
                    1 => Level::Info,
                    2 => Level::Warn,
                    3 => Level::Error,
                    4 => Level::Debug,
                    _ => Level::Log,
                };
                (hooks.console)(level, &args);
                Ok(())
            },
        )?,
    )?;
    natives.set(
        "uncaughtError",
        Function::new(ctx.clone(), move |d: Object<'js>| -> quickjs::Result<()> {
            (hooks.uncaught_error)(JsError {
                name: d.get("name")?,
                message: d.get("message")?,
                stack: d.get("stack")?,
                filename: d.get("filename")?,
                lineno: d.get::<_, f64>("lineno")? as u32,
            });
            Ok(())
        })?,
    )?;
    natives.set("now", Function::new(ctx.clone(), |ctx: Ctx<'js>| now_ms(&ctx))?)?;
    natives.set(
        "structuredClone",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, value: Value<'js>| -> quickjs::Result<Value<'js>> {
                crate::codec::structured_clone(&ctx, value, max_message(&ctx))
            },
        )?,
    )?;
    Ok(natives)
}

// ---- unhandled rejections ------------------------------------------------------

/// QuickJS's rejection tracker. Raw FFI: rquickjs has no safe way to set it
/// (its own tracker is a `Runtime` method, and javy keeps the `Runtime`).
fn install_rejection_tracker(ctx: &Ctx<'_>) {
    // SAFETY: the runtime outlives the tracker registration; the callback only
    // duplicates and frees values of that runtime.
    unsafe {
        let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        qjs::JS_SetHostPromiseRejectionTracker(rt, Some(track_rejection), std::ptr::null_mut());
    }
}

unsafe extern "C" fn track_rejection(
    raw: *mut qjs::JSContext,
    promise: qjs::JSValue,
    reason: qjs::JSValue,
    is_handled: bool,
    _opaque: *mut std::ffi::c_void,
) {
    let Some(nn) = std::ptr::NonNull::new(raw) else {
        return;
    };
    // SAFETY: QuickJS calls the tracker with the runtime locked, from inside
    // the `with` of the running turn; `ctx` lives only for this call.
    let ctx = unsafe { Ctx::from_raw(nn) };
    let _ = crate::state::with(&ctx, |shared| {
        let mut list = shared.unhandled.borrow_mut();
        // SAFETY: QuickJS passes live values of `raw`; each one kept is
        // duplicated here and freed exactly once, here or in
        // `take_unhandled_rejections`.
        unsafe {
            let key = qjs::JS_VALUE_GET_PTR(promise);
            if is_handled {
                if let Some(i) = list.iter().position(|(p, _)| qjs::JS_VALUE_GET_PTR(*p) == key) {
                    let (p, r) = list.remove(i);
                    qjs::JS_FreeValue(raw, p);
                    qjs::JS_FreeValue(raw, r);
                }
            } else {
                list.push((qjs::JS_DupValue(raw, promise), qjs::JS_DupValue(raw, reason)));
            }
        }
        Ok(())
    });
}

fn take_unhandled_rejections<'js>(ctx: &Ctx<'js>) -> Vec<Value<'js>> {
    let taken = crate::state::with(ctx, |shared| {
        Ok(std::mem::take(&mut *shared.unhandled.borrow_mut()))
    })
    .unwrap_or_default();
    taken
        .into_iter()
        .map(|(promise, reason)| {
            // SAFETY: both values were duplicated by the tracker; the reason's
            // reference moves into the `Value`, the promise's is freed.
            unsafe {
                qjs::JS_FreeValue(ctx.as_raw().as_ptr(), promise);
                Value::from_raw(ctx.clone(), reason)
            }
        })
        .collect()
}
