//! The host side of each WIT interface, one file per interface, all on the
//! data of one store ([`HostState`]).

mod context;
mod main_host;
mod worker_host;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::limits::{Limits, MemoryCap, TurnBudget};
use crate::program::Program;

pub(crate) use worker_host::TestKill;

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
    pub(crate) program: Arc<Program>,
    pub(crate) role: Role,
    /// Set, then the engine epoch bumped, to stop this store's guest.
    pub(crate) stop: Arc<AtomicBool>,
    /// This context's limits.
    pub(crate) limits: Limits,
    pub(crate) memory: MemoryCap,
    /// What the current turn has used.
    pub(crate) budget: TurnBudget,
}

impl HostState {
    pub(crate) fn new(program: Arc<Program>, role: Role, stop: Arc<AtomicBool>, limits: Limits) -> HostState {
        let (host_usage, host_cap) = (program.runtime.usage.clone(), program.runtime.caps.memory_cap());
        HostState {
            wasi: crate::wasi::deny_all(),
            table: ResourceTable::new(),
            program,
            role,
            stop,
            memory: MemoryCap {
                limit: limits.memory_bytes(),
                usage: Arc::default(),
                host: host_usage,
                host_cap,
            },
            limits,
            budget: TurnBudget::new(),
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
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
