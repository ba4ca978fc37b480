//! Project files as modules (docs/spec.md section 3): CommonJS `require` and ES
//! modules over one registry, resolved and read by the host.
//!
//! A file is compiled as the body of a CommonJS wrapper function first; only
//! when that is a `SyntaxError` is it compiled as an ES module (QuickJS's own
//! module detection is wrong both ways). The registry of files already run
//! lives in `js/common.js` (`modules`); QuickJS keeps its own list of ES
//! modules by the same names, so a file both imported and required runs once.
//! An ES module importing a CommonJS file gets a stand-in module whose
//! default export is `module.exports` and whose named exports are its
//! properties: the file runs inside the module loader, since QuickJS needs
//! the names at link time.
//!
//! Raw FFI (`qjs::`) here, and why: the loader hooks, compiling a module
//! without running it, evaluating one, reading a promise's state and a
//! module's namespace, and C modules (the stand-ins) are all behind
//! rquickjs's `loader` feature, which javy 8 builds rquickjs without.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr::{NonNull, null_mut};

use javy::quickjs::context::EvalOptions;
use javy::quickjs::{self, Ctx, Function, Object, Persistent, Value, qjs};

/// What a project file compiled to.
pub enum Compiled<'js> {
    /// The CommonJS wrapper `(exports, require, module, __filename, __dirname)`.
    CommonJs(Function<'js>),
    /// An ES module, compiled (its imports resolved and loaded), not yet run.
    Module(*mut qjs::JSModuleDef),
}

/// Sets the module loader of `ctx`'s runtime and adds the module natives to
/// `natives` (`resolveModule`, `loadModule`, `esmNamespace`, `callerFile`).
pub fn install<'js>(ctx: &Ctx<'js>, natives: &Object<'js>) -> quickjs::Result<()> {
    // Raw FFI: rquickjs's own loader needs its `loader` feature, which javy
    // builds without, and cannot make the CommonJS stand-in modules.
    // SAFETY: the callbacks only use the context QuickJS hands them.
    unsafe {
        let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        qjs::JS_SetModuleLoaderFunc(rt, Some(normalize), Some(load), null_mut());
    }
    natives.set(
        "resolveModule",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, from: String, request: String| {
            resolve(&ctx, &from, &request)
        })?,
    )?;
    natives.set(
        "loadModule",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, filename: String| -> quickjs::Result<Value<'js>> {
                let source = host_load(&ctx, &filename)?;
                Ok(match compile(&ctx, &filename, &source)? {
                    Compiled::CommonJs(f) => f.into_value(),
                    Compiled::Module(_) => Value::new_null(ctx),
                })
            },
        )?,
    )?;
    natives.set(
        "esmNamespace",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, filename: String| {
            namespace(&ctx, &filename)
        })?,
    )?;
    natives.set(
        "callerFile",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| -> quickjs::Result<String> {
            // Level 0 is the JavaScript `require` calling this; 1 is its caller.
            match ctx.script_or_module_name(1) {
                Some(atom) => atom.to_string(),
                None => Ok(String::new()),
            }
        })?,
    )?;
    Ok(())
}

/// Gives the loader `common.importFile`, once the common prelude has run.
pub fn set_import_file<'js>(ctx: &Ctx<'js>, import_file: Function<'js>) -> quickjs::Result<()> {
    let saved = Persistent::save(ctx, import_file);
    crate::state::with(ctx, |shared| {
        let _ = shared.import_file.set(saved);
        Ok(())
    })
}

/// Resolves `request` in the file `from` through the host, remembering the answer.
fn resolve(ctx: &Ctx<'_>, from: &str, request: &str) -> quickjs::Result<String> {
    let dir = from.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
    let key = (dir, request.to_owned());
    crate::state::with(ctx, |shared| {
        if let Some(file) = shared.resolved.borrow().get(&key) {
            return Ok(file.clone());
        }
        let file = (shared.hooks.resolve_module)(from, request).map_err(|e| crate::throw_error(ctx, &e))?;
        shared.resolved.borrow_mut().insert(key, file.clone());
        Ok(file)
    })
}

fn host_load(ctx: &Ctx<'_>, filename: &str) -> quickjs::Result<String> {
    crate::state::with(ctx, |shared| {
        (shared.hooks.load_module)(filename).map_err(|e| crate::throw_error(ctx, &e))
    })
}

/// Compiles a project file: as a CommonJS body, or else as an ES module.
pub fn compile<'js>(ctx: &Ctx<'js>, filename: &str, source: &str) -> quickjs::Result<Compiled<'js>> {
    let as_commonjs = match compile_commonjs(ctx, filename, source) {
        Ok(f) => return Ok(Compiled::CommonJs(f)),
        Err(e) if e.is_exception() => ctx.catch(),
        Err(e) => return Err(e),
    };
    if !is_syntax_error(&as_commonjs) {
        return Err(ctx.throw(as_commonjs));
    }
    match compile_module(ctx, filename, source) {
        Ok(m) => Ok(Compiled::Module(m)),
        Err(e) if e.is_exception() => {
            let as_module = ctx.catch();
            // Both failed. A module's failure that is no syntax error (a
            // missing import) is the module's; otherwise the parse that got
            // further is the one that read the file in the right mode.
            let module_first = !is_syntax_error(&as_module) || line_of(&as_module) > line_of(&as_commonjs);
            Err(ctx.throw(if module_first { as_module } else { as_commonjs }))
        }
        Err(e) => Err(e),
    }
}

/// Compiles a project file as the body of a CommonJS wrapper function. The
/// wrapper's head shares the file's first line, so line numbers stay true.
fn compile_commonjs<'js>(ctx: &Ctx<'js>, filename: &str, source: &str) -> quickjs::Result<Function<'js>> {
    let wrapped = format!("(function (exports, require, module, __filename, __dirname) {{{source}\n}})");
    let mut options = EvalOptions::default();
    options.strict = false;
    options.filename = Some(filename.to_owned());
    ctx.eval_with_options(wrapped, options)
}

fn compile_module(ctx: &Ctx<'_>, filename: &str, source: &str) -> quickjs::Result<*mut qjs::JSModuleDef> {
    let raw = ctx.as_raw().as_ptr();
    let (Ok(name), Ok(text)) = (CString::new(filename), CString::new(source)) else {
        return Err(crate::throw_error(
            ctx,
            "a module's name or text holds a NUL byte",
        ));
    };
    let flags = (qjs::JS_EVAL_TYPE_MODULE | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as c_int;
    // SAFETY: `text` is NUL-terminated as JS_Eval requires; the compiled
    // module stays in the context's module list, which owns it once the
    // value returned here is freed (as quickjs-libc's own loader does).
    unsafe {
        let value = qjs::JS_Eval(raw, text.as_ptr(), source.len() as _, name.as_ptr(), flags);
        if qjs::JS_IsException(value) {
            return Err(quickjs::Error::Exception);
        }
        let m = qjs::JS_VALUE_GET_PTR(value) as *mut qjs::JSModuleDef;
        qjs::JS_FreeValue(raw, value);
        crate::state::with(ctx, |shared| {
            shared
                .es_modules
                .borrow_mut()
                .insert(filename.to_owned(), m as usize);
            Ok(m)
        })
    }
}

fn is_syntax_error(v: &Value<'_>) -> bool {
    v.as_object()
        .and_then(|o| o.get::<_, String>("name").ok())
        .is_some_and(|n| n == "SyntaxError")
}

/// The line of a SyntaxError: its innermost stack frame's (`at FILE:LINE:COL`).
fn line_of(v: &Value<'_>) -> u32 {
    let stack: String = v
        .as_object()
        .and_then(|o| o.get("stack").ok())
        .unwrap_or_default();
    stack
        .lines()
        .find_map(|frame| {
            let frame = frame.trim().strip_prefix("at ")?.trim_end_matches(')');
            let mut parts = frame.rsplitn(3, ':');
            let (_col, line) = (parts.next()?, parts.next()?);
            line.parse().ok()
        })
        .unwrap_or(0)
}

/// Links and runs the ES module `m` (a no-op when it already ran); the
/// promise of its evaluation.
pub fn evaluate<'js>(ctx: &Ctx<'js>, m: *mut qjs::JSModuleDef) -> quickjs::Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `m` is a module of this context (it stays in the context's
    // module list); JS_EvalFunction consumes the reference duplicated here.
    unsafe {
        let value = qjs::JS_DupValue(raw, qjs::JS_MKPTR(qjs::JS_TAG_MODULE, m.cast()));
        let promise = qjs::JS_EvalFunction(raw, value);
        if qjs::JS_IsException(promise) {
            return Err(quickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), promise))
    }
}

/// The ES module compiled from `filename`, if one was.
fn es_module(ctx: &Ctx<'_>, filename: &str) -> quickjs::Result<Option<usize>> {
    crate::state::with(ctx, |shared| {
        Ok(shared.es_modules.borrow().get(filename).copied())
    })
}

/// `require()` of an ES module: runs it if needed and gives its namespace, synchronously.
fn namespace<'js>(ctx: &Ctx<'js>, filename: &str) -> quickjs::Result<Value<'js>> {
    let Some(m) = es_module(ctx, filename)? else {
        return Err(crate::throw_error(
            ctx,
            &format!("'{filename}' is not an ES module"),
        ));
    };
    let m = m as *mut qjs::JSModuleDef;
    let promise = evaluate(ctx, m)?;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `promise` is a live value of this context.
    let state = unsafe { qjs::JS_PromiseState(raw, promise.as_raw()) };
    match state {
        qjs::JSPromiseStateEnum_JS_PROMISE_REJECTED => {
            // SAFETY: as above; the result is a new reference.
            let reason =
                unsafe { Value::from_raw(ctx.clone(), qjs::JS_PromiseResult(raw, promise.as_raw())) };
            // The exception goes to require's caller: the promise is handled.
            if let Some(p) = promise.as_object() {
                let then: Function = p.get("then")?;
                let ignore = Function::new(ctx.clone(), || ())?;
                then.call::<_, Value>((
                    quickjs::function::This(p.clone()),
                    Value::new_undefined(ctx.clone()),
                    ignore,
                ))?;
            }
            Err(ctx.throw(reason))
        }
        qjs::JSPromiseStateEnum_JS_PROMISE_PENDING => Err(crate::throw_error(
            ctx,
            &format!("'{filename}' uses top-level await: it can be imported, not required"),
        )),
        // SAFETY: `m` is a module of this context.
        _ => unsafe {
            let ns = qjs::JS_GetModuleNamespace(raw, m);
            if qjs::JS_IsException(ns) {
                return Err(quickjs::Error::Exception);
            }
            Ok(Value::from_raw(ctx.clone(), ns))
        },
    }
}

// ---- QuickJS's module loader hooks ------------------------------------------------

/// Copies `text` into memory QuickJS frees with `js_free`.
unsafe fn js_strdup(raw: *mut qjs::JSContext, text: &str) -> *mut c_char {
    // SAFETY: js_malloc gives `len + 1` writable bytes or null.
    unsafe {
        let out = qjs::js_malloc(raw, (text.len() + 1) as _) as *mut u8;
        if !out.is_null() {
            std::ptr::copy_nonoverlapping(text.as_ptr(), out, text.len());
            *out.add(text.len()) = 0;
        }
        out as *mut c_char
    }
}

/// Runs `f` with a `Ctx` for the raw context of a callback.
unsafe fn with_ctx<R>(raw: *mut qjs::JSContext, f: impl for<'js> FnOnce(&Ctx<'js>) -> R) -> Option<R> {
    let raw = NonNull::new(raw)?;
    // SAFETY: QuickJS calls the hooks with the runtime locked, from inside
    // the `with` of the turn that runs the importing code.
    let ctx = unsafe { Ctx::from_raw(raw) };
    Some(f(&ctx))
}

unsafe extern "C" fn normalize(
    raw: *mut qjs::JSContext,
    base: *const c_char,
    name: *const c_char,
    _opaque: *mut c_void,
) -> *mut c_char {
    // SAFETY: QuickJS passes NUL-terminated strings and a live context.
    unsafe {
        let base = CStr::from_ptr(base).to_string_lossy();
        let name = CStr::from_ptr(name).to_string_lossy();
        with_ctx(raw, |ctx| match resolve(ctx, &base, &name) {
            Ok(file) => js_strdup(raw, &file),
            // The exception is pending; QuickJS throws it from the import.
            Err(_) => null_mut(),
        })
        .unwrap_or(null_mut())
    }
}

unsafe extern "C" fn load(
    raw: *mut qjs::JSContext,
    name: *const c_char,
    _opaque: *mut c_void,
) -> *mut qjs::JSModuleDef {
    // SAFETY: as in `normalize`.
    unsafe {
        let filename = CStr::from_ptr(name).to_string_lossy().into_owned();
        with_ctx(raw, |ctx| load_in(ctx, &filename).unwrap_or(null_mut())).unwrap_or(null_mut())
    }
}

/// The module QuickJS asked for: the ES module itself, or a stand-in for a
/// CommonJS file (run here, once).
fn load_in(ctx: &Ctx<'_>, filename: &str) -> quickjs::Result<*mut qjs::JSModuleDef> {
    let import_file = crate::state::with(ctx, |shared| {
        shared
            .import_file
            .get()
            .cloned()
            .ok_or_else(|| crate::throw_error(ctx, "modules are not set up"))
    })?
    .restore(ctx)?;
    let record: Value = import_file.call((filename,))?;
    let Some(record) = record.into_object() else {
        // An ES module, compiled by `loadModule` just now.
        return es_module(ctx, filename)?
            .map(|m| m as *mut qjs::JSModuleDef)
            .ok_or_else(|| crate::throw_error(ctx, &format!("'{filename}' did not compile")));
    };
    let exports: Value = record.get("exports")?;
    stand_in(ctx, filename, exports)
}

/// A synthetic module for CommonJS `exports`: `default` is the exports value,
/// and each own enumerable string key of an exports object is a named export.
fn stand_in<'js>(
    ctx: &Ctx<'js>,
    filename: &str,
    exports: Value<'js>,
) -> quickjs::Result<*mut qjs::JSModuleDef> {
    let raw = ctx.as_raw().as_ptr();
    let mut names = vec![String::from("default")];
    if let Some(obj) = exports.as_object() {
        // Keys as JavaScript strings, read with their length: a key holding
        // NUL must not be cut short into another name. Such a key cannot be
        // a C module export at all; it stays reachable through `default`.
        for key in obj.keys::<quickjs::String>() {
            let key = key?.to_string()?;
            if key != "default" && !key.contains('\0') {
                names.push(key);
            }
        }
    }
    let name = CString::new(filename).map_err(|_| crate::throw_error(ctx, "a NUL byte in a module name"))?;
    // The names and the value travel to `init_stand_in` as the module's
    // private value: [exports, ...names].
    let private = quickjs::Array::new(ctx.clone())?;
    private.set(0, exports)?;
    for (i, n) in names.iter().enumerate().skip(1) {
        private.set(i, n.as_str())?;
    }
    // SAFETY: creates a module in this context and declares its exports;
    // the private value's reference moves into the module.
    unsafe {
        let m = qjs::JS_NewCModule(raw, name.as_ptr(), Some(init_stand_in));
        if m.is_null() {
            return Err(quickjs::Error::Exception);
        }
        for n in &names {
            let Ok(n) = CString::new(n.as_str()) else { continue };
            if qjs::JS_AddModuleExport(raw, m, n.as_ptr()) < 0 {
                return Err(quickjs::Error::Exception);
            }
        }
        if qjs::JS_SetModulePrivateValue(raw, m, qjs::JS_DupValue(raw, private.as_raw())) < 0 {
            return Err(quickjs::Error::Exception);
        }
        Ok(m)
    }
}

unsafe extern "C" fn init_stand_in(raw: *mut qjs::JSContext, m: *mut qjs::JSModuleDef) -> c_int {
    // SAFETY: QuickJS calls this once per stand-in with its context; every
    // value set as an export is a new reference the module takes.
    unsafe {
        with_ctx(raw, |ctx| -> quickjs::Result<()> {
            let private = Value::from_raw(ctx.clone(), qjs::JS_GetModulePrivateValue(raw, m));
            let private: quickjs::Array = private.get()?;
            let exports: Value = private.get(0)?;
            let set = |name: &str, v: Value<'_>| {
                if let Ok(name) = CString::new(name) {
                    qjs::JS_SetModuleExport(raw, m, name.as_ptr(), qjs::JS_DupValue(raw, v.as_raw()));
                }
            };
            set("default", exports.clone());
            for i in 1..private.len() {
                let key: String = private.get(i)?;
                let v: Value = match exports.as_object() {
                    Some(o) => o.get(key.as_str())?,
                    None => Value::new_undefined(ctx.clone()),
                };
                set(&key, v);
            }
            Ok(())
        })
        .map_or(-1, |r| if r.is_ok() { 0 } else { -1 })
    }
}
