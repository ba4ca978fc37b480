//! Build step, for each guest component `NAME.wasm` given on the command line:
//!
//! 1. runs its `initialize` export (which creates the JavaScript context:
//!    QuickJS and the preludes) and snapshots the result with wasmtime-wizer
//!    into `NAME.init.wasm`, a component that starts with the context ready;
//! 2. compiles that snapshot to machine code with the host's engine
//!    settings, for a baseline CPU of this architecture (for the build
//!    machine's own CPU with `MINIWORKER_NATIVE=1`), as `NAME.cwasm`.
//!
//! The host embeds both and uses the `.cwasm` when it fits the CPU it runs on.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::ExitCode;
use std::task::{Context, Poll, Waker};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Instance, Lift, Linker, ResourceTable, WasmList};
use wasmtime::{Engine, Result, Store, format_err};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The export the snapshot is taken after.
const INIT_FUNC: &str = "initialize";

fn main() -> ExitCode {
    let engine = match miniworker_engine::precompile_config().and_then(|c| Engine::new(&c)) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("miniworker-precompile: cannot create the engine: {e}");
            return ExitCode::FAILURE;
        }
    };
    for input in std::env::args_os().skip(1).map(PathBuf::from) {
        if let Err(e) = build(&engine, &input) {
            eprintln!("miniworker-precompile: {}: {e:#}", input.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn build(engine: &Engine, input: &Path) -> Result<()> {
    let wasm = std::fs::read(input)?;
    let snapshot = snapshot(engine, &wasm)?;
    std::fs::write(input.with_extension("init.wasm"), &snapshot)?;
    let code = engine.precompile_component(&snapshot)?;
    std::fs::write(input.with_extension("cwasm"), code)?;
    Ok(())
}

/// What the initialisation runs with: WASI as the host gives it (nothing but
/// clocks and random), every other import a trap.
struct InitState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for InitState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn snapshot(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>> {
    let mut wizer = Wizer::new();
    // The host's bindings expect the export; a started context ignores it.
    wizer.init_func(INIT_FUNC).keep_init_func(true);
    let (cx, instrumented) = wizer.instrument_component(wasm)?;
    let component = Component::new(engine, &instrumented)?;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    trap_host_imports(engine, &component, &mut linker)?;
    let mut store = Store::new(
        engine,
        InitState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_epoch_deadline(u64::MAX);
    let instance = linker.instantiate(&mut store, &component)?;
    let init = instance.get_typed_func::<(), ()>(&mut store, INIT_FUNC)?;
    init.call(&mut store, ())?;
    block_on(wizer.snapshot_component(&cx, &mut Snapshotting { store, instance }))
}

/// Defines every function of the package's own interfaces as a trap: the
/// initialisation must not call the host.
fn trap_host_imports(engine: &Engine, component: &Component, linker: &mut Linker<InitState>) -> Result<()> {
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("miniworker:") {
            continue;
        }
        let mut scope = linker.instance(name)?;
        for (func, item) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                let what = format!("{name}#{func}");
                scope.func_new(func, move |_, _, _, _| {
                    Err(format_err!("the initialisation called the host: {what}"))
                })?;
            }
        }
    }
    Ok(())
}

/// Wizer's view of the initialised instance: it reads memories and globals
/// through the accessor functions its instrumentation exported.
struct Snapshotting {
    store: Store<InitState>,
    instance: Instance,
}

impl Snapshotting {
    fn call<R: Lift + 'static, T>(
        &mut self,
        instance: &str,
        func: &str,
        with: impl FnOnce(&Store<InitState>, R) -> T,
    ) -> T {
        let result = (|| -> Result<T> {
            let (_, scope) = self
                .instance
                .get_export(&mut self.store, None, instance)
                .ok_or_else(|| format_err!("no export {instance}"))?;
            let (_, index) = self
                .instance
                .get_export(&mut self.store, Some(&scope), func)
                .ok_or_else(|| format_err!("no export {instance}#{func}"))?;
            let f = self.instance.get_typed_func::<(), (R,)>(&mut self.store, index)?;
            let (value,) = f.call(&mut self.store, ())?;
            Ok(with(&self.store, value))
        })();
        // The trait has no error path; the accessors are wizer's own exports.
        result.unwrap_or_else(|e| panic!("reading the snapshot through {instance}#{func}: {e:#}"))
    }
}

impl ComponentInstanceState for Snapshotting {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(store))
        })
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, v| v)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, v| v)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, v: f32| v.to_bits())
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, v: f64| v.to_bits())
    }
}

/// Runs a future that never waits (every step above is synchronous).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
