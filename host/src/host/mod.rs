//! The host side of each WIT interface, one file per interface, all on the
//! data of one store ([`HostState`]): what a guest may ask of its instance.

mod context;
mod main_host;
mod worker_host;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::instance::{Instance, WorkerStart};
use crate::limits::{HostUsage, Limits, MemoryCap, TurnBudget};
use crate::message::Outside;

/// Which context a store runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The JavaScript main thread (`app.js`).
    Main,
    /// Worker number `id` of the mini-program.
    Worker(u32),
}

/// The data of one store: one JavaScript context of one mini-program.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) instance: Arc<Instance>,
    pub(crate) role: Role,
    /// Set, then the engine epoch bumped, to stop this store's guest.
    pub(crate) stop: Arc<AtomicBool>,
    /// This context's limits.
    pub(crate) limits: Limits,
    pub(crate) memory: MemoryCap,
    /// What the current turn has used.
    pub(crate) budget: TurnBudget,
    /// Workers `createWorker` reserved during this turn: their threads start
    /// when the turn ends (no event of a worker reaches the main thread
    /// before that anyway, docs/spec.md section 4).
    pub(crate) starting: Vec<WorkerStart>,
    /// Outside payloads sent for the message this context posts next.
    pub(crate) outside: Outside,
}

impl HostState {
    pub(crate) fn new(
        instance: Arc<Instance>,
        role: Role,
        stop: Arc<AtomicBool>,
        limits: Limits,
        host: (Arc<HostUsage>, Option<usize>),
    ) -> HostState {
        HostState {
            wasi: crate::wasi::deny_all(),
            table: ResourceTable::new(),
            instance,
            role,
            stop,
            memory: MemoryCap {
                limit: limits.memory_bytes(),
                usage: Arc::default(),
                host: host.0,
                host_cap: host.1,
            },
            limits,
            budget: TurnBudget::new(),
            starting: Vec::new(),
            outside: Outside::default(),
        }
    }

    /// The limits the guest enforces itself, as `start` passes them.
    pub(crate) fn guest_limits(&self) -> crate::bindings::ContextLimits {
        crate::bindings::ContextLimits {
            stack_bytes: self.limits.stack_bytes() as u32,
            max_message_bytes: self.limits.message_bytes() as u32,
            max_timers: self.limits.timer_count() as u32,
        }
    }

    /// Ends a turn: reports the console lines its budget dropped.
    pub(crate) fn end_turn(&mut self) {
        let dropped = std::mem::take(&mut self.budget.console_dropped);
        if dropped == 0 {
            return;
        }
        let event = crate::event::Event::Dropped {
            what: crate::event::Dropped::ConsoleLines,
            count: dropped,
        };
        match self.role {
            Role::Worker(id) => self.instance.worker_said(id, event),
            Role::Main => self.instance.emit(event),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
