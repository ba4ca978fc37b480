//! The shared [`Runtime`]: the engine and the two compiled guest components.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::bindings::{main::MainPre, worker::WorkerPre};
use crate::error::{Error, Result};
use crate::host::HostState;
use crate::limits::{CpuTimeLimit, HostCaps, HostUsage, thread_cpu_time};

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
    pub(crate) caps: HostCaps,
    pub(crate) usage: Arc<HostUsage>,
    ticker: Arc<Ticker>,
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
        Runtime::with_caps(HostCaps::default())
    }

    /// [`Runtime::new`] with host-wide caps on every instance it runs.
    pub fn with_caps(caps: HostCaps) -> Result<Runtime> {
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
        let ticker = Ticker::start(&engine)?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                caps,
                usage: Arc::default(),
                ticker,
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
    /// A store for one context. Its epoch deadline callback, run at every
    /// epoch tick while the guest runs, stops the guest once `state.stop` is
    /// set, and kills it once the current turn has used more thread CPU time
    /// than its limit.
    pub(crate) fn new_store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            let state = cx.data_mut();
            if state.stop.load(Ordering::Acquire) {
                return Err(Trap::Interrupt.into());
            }
            let limit = state.limits.cpu_time_per_turn();
            let now = thread_cpu_time();
            let start = *state.budget.cpu_start.get_or_insert(now);
            if now.saturating_sub(start) > limit {
                return Err(CpuTimeLimit { limit }.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store
    }

    /// Makes every store whose `stop` flag is set stop at its next check.
    pub(crate) fn interrupt(&self) {
        self.engine.increment_epoch();
    }

    /// Marks a guest call in progress until the guard drops: the epoch
    /// ticks (for the CPU-time check) only while some guest runs.
    pub(crate) fn guest_running(&self) -> RunningGuard<'_> {
        self.ticker.enter();
        RunningGuard(&self.ticker)
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker.shut_down();
    }
}

/// How often the epoch advances while a guest runs: the granularity of the
/// CPU-time check.
const TICK: Duration = Duration::from_millis(10);

/// How long the ticker keeps ticking after the last guest call ended before
/// it parks: calls in quick succession never have to wake it.
const GRACE: Duration = Duration::from_millis(50);

/// The thread that advances the engine's epoch every [`TICK`] while guest
/// calls run (and for [`GRACE`] after), and parks otherwise. Entering and
/// leaving a call are two atomic operations; only a call that finds the
/// ticker parked takes its lock to wake it.
struct Ticker {
    running: AtomicUsize,
    parked: AtomicBool,
    shut_down: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Ticker {
    fn start(engine: &Engine) -> Result<Arc<Ticker>> {
        let ticker = Arc::new(Ticker {
            running: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let (me, engine) = (ticker.clone(), engine.clone());
        std::thread::Builder::new()
            .name("miniworker-epoch".into())
            .spawn(move || me.run(&engine))
            .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(ticker)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, engine: &Engine) {
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.shut_down.load(Ordering::SeqCst) {
                return;
            }
            if self.running.load(Ordering::SeqCst) > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= GRACE {
                let guard = self.lock();
                self.parked.store(true, Ordering::SeqCst);
                // A call that began before `parked` was set is seen here; one
                // that begins after it takes the lock to notify.
                if self.running.load(Ordering::SeqCst) == 0 && !self.shut_down.load(Ordering::SeqCst) {
                    drop(self.wake.wait(guard).unwrap_or_else(|p| p.into_inner()));
                }
                self.parked.store(false, Ordering::SeqCst);
                idle_since = None;
                continue;
            }
            std::thread::sleep(TICK);
            engine.increment_epoch();
        }
    }

    fn enter(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            let _guard = self.lock();
            self.wake.notify_all();
        }
    }

    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn shut_down(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.wake.notify_all();
    }
}

/// See [`RuntimeInner::guest_running`].
pub(crate) struct RunningGuard<'a>(&'a Ticker);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}
