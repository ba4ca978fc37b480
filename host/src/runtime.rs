//! The shared [`Runtime`]: the engine, the two compiled guest components
//! with their linkers, the epoch ticker, and the making of stores and turns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::bindings::{main::MainPre, worker::WorkerPre};
use crate::capacity::Capacity;
use crate::epoch::Ticker;
use crate::error::{Error, Result};
use crate::host::{HostState, Role};
use crate::instance::{HostShared, Instance, Outlet};
use crate::limits::{CpuTimeLimit, HostCaps, Limits, TurnBudget, thread_cpu_time};
use crate::scheduler::Scheduler;
use miniworker_project::Project;

// The guest components, embedded by build.rs: the plain component and the
// machine code precompiled for this build's engine (empty when not made).
const WORKER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_worker.wasm"));
const WORKER_CWASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_worker.cwasm"));
const MAIN_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_main.wasm"));
const MAIN_CWASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/miniworker_main.cwasm"));

/// Native stack of a pool thread, where guests run: Wasmtime's guest stack
/// plus room for the host frames below it.
const GUEST_THREAD_STACK: usize = miniworker_engine::MAX_WASM_STACK + (4 << 20);

/// What a host holds ([`Runtime::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostStats {
    /// Live mini-program instances.
    pub instances: usize,
    /// [`HostCaps::instances`], if set.
    pub instance_cap: Option<usize>,
    /// Live contexts: runs' main threads and workers.
    pub contexts: usize,
    /// The most contexts this host takes: [`HostCaps::contexts`] or the
    /// slots of [`HostCaps::pool`], or what the machine's limits allow
    /// (memory mappings, address space, memory), known when the runtime
    /// starts. Past it, creation fails with
    /// [`crate::Error::HostLimit`].
    pub context_capacity: usize,
    /// Which limit sets `context_capacity`: `"vm.max_map_count"`,
    /// `"address space"`, `"memory"`, `"HostCaps::contexts"` or
    /// `"HostCaps::pool"`.
    pub capacity_bound_by: &'static str,
    /// Pool threads now ([`Runtime::threads`]).
    pub threads: usize,
}

/// The engine and the compiled guest components, shared by every mini-program
/// of a host. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    /// The engine, the pool, the capacity and the host-wide accounting:
    /// what every instance shares with the runtime.
    host: HostShared,
    caps: HostCaps,
    ticker: Arc<Ticker>,
    pub(crate) worker_pre: WorkerPre<HostState>,
    pub(crate) main_pre: MainPre<HostState>,
    worker: Component,
    main: Component,
    precompiled: bool,
}

/// Loads the precompiled component when it fits this engine and CPU, else
/// compiles the plain one; says which.
fn load(engine: &Engine, precompiled: &[u8], plain: &[u8]) -> Result<(Component, bool)> {
    if !precompiled.is_empty() {
        // SAFETY: `precompiled` was written by `Engine::precompile_component`
        // of this same build (build.rs embeds what `make precompile` wrote
        // with `miniworker_engine::config()`); Wasmtime still checks its
        // version and settings against this engine and refuses a mismatch.
        match unsafe { Component::deserialize(engine, precompiled) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => tracing::warn!(
                "precompiled component unusable on this machine, compiling it at start-up: {e:#}"
            ),
        }
    }
    Component::new(engine, plain)
        .map(|c| (c, false))
        .map_err(Error::Engine)
}

impl Runtime {
    /// Creates the engine and loads both guest components.
    pub fn new() -> Result<Runtime> {
        Runtime::with_caps(HostCaps::default())
    }

    /// [`Runtime::new`] with host-wide caps on every instance it runs.
    pub fn with_caps(caps: HostCaps) -> Result<Runtime> {
        // A pool never reserves more than the machine holds.
        let pool = caps.pool_slots().map(|p| p.min(crate::capacity::derived().0));
        let config = match pool {
            Some(slots) => miniworker_engine::pooled_config(u32::try_from(slots).unwrap_or(u32::MAX)),
            None => miniworker_engine::config(),
        };
        let engine = wasmtime::Engine::new(&config).map_err(Error::Engine)?;
        let (worker, worker_precompiled) = load(&engine, WORKER_CWASM, WORKER_WASM)?;
        let (main, main_precompiled) = load(&engine, MAIN_CWASM, MAIN_WASM)?;

        let mut worker_linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut worker_linker).map_err(Error::Engine)?;
        crate::bindings::worker::Worker::add_to_linker::<_, HasSelf<_>>(&mut worker_linker, |s| s)
            .map_err(Error::Engine)?;
        let mut main_linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut main_linker).map_err(Error::Engine)?;
        crate::bindings::main::Main::add_to_linker::<_, HasSelf<_>>(&mut main_linker, |s| s)
            .map_err(Error::Engine)?;

        let worker_pre = WorkerPre::new(worker_linker.instantiate_pre(&worker).map_err(Error::Engine)?)
            .map_err(Error::Engine)?;
        let main_pre = MainPre::new(main_linker.instantiate_pre(&main).map_err(Error::Engine)?)
            .map_err(Error::Engine)?;
        let scheduler = Scheduler::start(GUEST_THREAD_STACK, caps.thread_cap()).map_err(Error::Io)?;
        let ticker = Ticker::start(&engine, scheduler.clone())?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                host: HostShared {
                    engine,
                    scheduler,
                    capacity: Arc::new(Capacity::new(caps.context_cap(), pool)),
                    usage: Arc::default(),
                    instance_cap: caps.instance_cap(),
                },
                caps,
                ticker,
                worker_pre,
                main_pre,
                worker,
                main,
                precompiled: worker_precompiled && main_precompiled,
            }),
        })
    }

    /// Whether both guest components run the machine code embedded at
    /// build time. `false` means they were compiled when this runtime was
    /// made (no `make precompile`, or code this CPU cannot run; a warning
    /// says which): everything works, each start just costs more.
    pub fn precompiled(&self) -> bool {
        self.inner.precompiled
    }

    /// Threads running contexts' turns now (the pool; see
    /// [`HostCaps::threads`]). Idle contexts hold none, and a pool thread
    /// idle for 5 s ends.
    pub fn threads(&self) -> usize {
        self.inner.host.scheduler.threads()
    }

    /// What the whole host holds now, against its capacity.
    pub fn stats(&self) -> HostStats {
        let host = &self.inner.host;
        HostStats {
            instances: host.usage.instances.load(Ordering::SeqCst),
            instance_cap: host.instance_cap,
            contexts: host.capacity.live(),
            context_capacity: host.capacity.contexts(),
            capacity_bound_by: host.capacity.bound_by(),
            threads: host.scheduler.threads(),
        }
    }

    /// The interfaces each guest component imports, as `(role, names)` with
    /// role `worker` or `main`: what the sandbox boundary has to answer for.
    pub fn guest_imports(&self) -> Vec<(&'static str, Vec<String>)> {
        let engine = &self.inner.host.engine;
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
    /// A new instance of `project` on this runtime.
    pub(crate) fn instance(&self, project: Project, limits: Limits, outlet: Outlet) -> Result<Arc<Instance>> {
        Instance::new(self.host.clone(), project, limits, outlet)
    }

    /// A store for one context of `instance`. Its epoch deadline callback,
    /// run at every epoch tick while the guest runs, stops the guest once
    /// its `stop` flag is set, and kills it once the current turn has used
    /// more thread CPU time than its limit.
    pub(crate) fn new_store(
        &self,
        instance: Arc<Instance>,
        role: Role,
        stop: Arc<std::sync::atomic::AtomicBool>,
        limits: Limits,
    ) -> Store<HostState> {
        let host = (self.host.usage.clone(), self.caps.memory_cap());
        let mut store = Store::new(
            &self.host.engine,
            HostState::new(instance, role, stop, limits, host),
        );
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            let state = cx.data_mut();
            if state.stop.load(Ordering::Acquire) {
                return Err(Trap::Interrupt.into());
            }
            let limit = state.limits.cpu_time_per_turn();
            let now = thread_cpu_time();
            let (start, _) = *state.budget.cpu_start.get_or_insert((now, Instant::now()));
            if now.saturating_sub(start) > limit {
                return Err(CpuTimeLimit { limit }.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store
    }

    /// Runs one call into a guest as a turn: a fresh CPU-time and console
    /// budget, the epoch ticking meanwhile, the CPU time it took added to
    /// its context's, and a notice of the console lines the turn's budget
    /// dropped.
    pub(crate) fn turn<R>(
        &self,
        store: &mut Store<HostState>,
        call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let started = Instant::now();
        store.data_mut().budget = TurnBudget::new();
        let result = {
            let _running = self.ticker.enter();
            call(store)
        };
        store.data_mut().end_turn();
        let cpu = store.data().budget.cpu_used(started).as_nanos() as u64;
        store
            .data()
            .memory
            .usage
            .cpu_nanos
            .fetch_add(cpu, Ordering::Relaxed);
        result
    }

    /// The pool and timer thread that run every context.
    pub(crate) fn scheduler(&self) -> &Scheduler {
        &self.host.scheduler
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker.shut_down();
        self.host.scheduler.shut_down();
    }
}
