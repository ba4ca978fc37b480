//! The shared [`Runtime`]: the engine and the two compiled guest components.

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::bindings::{main::MainPre, worker::WorkerPre};
use crate::error::{Error, Result};
use crate::host::HostState;

// The guest components, embedded by build.rs: the plain component and the
// machine code precompiled for this build's engine (empty when not made).
const WORKER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_worker.wasm"));
const WORKER_CWASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_worker.cwasm"));
const MAIN_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_main.wasm"));
const MAIN_CWASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_main.cwasm"));

/// The engine and the compiled guest components, shared by every mini-program
/// of a host. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) worker_pre: WorkerPre<HostState>,
    pub(crate) main_pre: MainPre<HostState>,
    worker: Component,
    main: Component,
}

fn engine_error(e: wasmtime::Error) -> Error {
    Error::Engine(format!("{e:#}"))
}

/// Loads the precompiled component when it fits this engine and CPU, else
/// compiles the plain one.
fn load(engine: &Engine, precompiled: &[u8], plain: &[u8]) -> Result<Component> {
    if !precompiled.is_empty() {
        // SAFETY: `precompiled` was written by `Engine::precompile_component`
        // of this same build (build.rs embeds what `make precompile` wrote
        // with `miniworker_engine::config()`); Wasmtime still checks its
        // version and settings against this engine and refuses a mismatch.
        match unsafe { Component::deserialize(engine, precompiled) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::debug!("precompiled component unusable here, compiling: {e:#}"),
        }
    }
    Component::new(engine, plain).map_err(engine_error)
}

impl Runtime {
    /// Creates the engine and loads both guest components.
    pub fn new() -> Result<Runtime> {
        let engine = miniworker_engine::engine().map_err(engine_error)?;
        let worker = load(&engine, WORKER_CWASM, WORKER_WASM)?;
        let main = load(&engine, MAIN_CWASM, MAIN_WASM)?;

        let mut worker_linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut worker_linker).map_err(engine_error)?;
        crate::bindings::worker::Worker::add_to_linker::<_, HasSelf<_>>(&mut worker_linker, |s| s)
            .map_err(engine_error)?;
        let mut main_linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut main_linker).map_err(engine_error)?;
        crate::bindings::main::Main::add_to_linker::<_, HasSelf<_>>(&mut main_linker, |s| s)
            .map_err(engine_error)?;

        let worker_pre = WorkerPre::new(worker_linker.instantiate_pre(&worker).map_err(engine_error)?)
            .map_err(engine_error)?;
        let main_pre =
            MainPre::new(main_linker.instantiate_pre(&main).map_err(engine_error)?).map_err(engine_error)?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                worker_pre,
                main_pre,
                worker,
                main,
            }),
        })
    }

    /// The interfaces each guest component imports, as `(role, names)` with
    /// role `worker` or `main`: what the sandbox boundary has to answer for.
    pub fn guest_imports(&self) -> Vec<(&'static str, Vec<String>)> {
        let engine = &self.inner.engine;
        [("worker", &self.inner.worker), ("main", &self.inner.main)]
            .into_iter()
            .map(|(role, component)| {
                let names = component
                    .component_type()
                    .imports(engine)
                    .map(|(name, _)| name.to_string())
                    .collect();
                (role, names)
            })
            .collect()
    }
}

impl RuntimeInner {
    /// A store for one context. Its epoch deadline callback stops the guest
    /// once `state.stop` is set and the engine epoch is bumped.
    pub(crate) fn new_store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|cx| {
            if cx.data().stop.load(std::sync::atomic::Ordering::Acquire) {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    /// Makes every store whose `stop` flag is set stop at its next check.
    pub(crate) fn interrupt(&self) {
        self.engine.increment_epoch();
    }
}
