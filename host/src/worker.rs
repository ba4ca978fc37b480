//! The worker lifecycle: a worker's context as a task of the pool
//! (`scheduler.rs`), its store, and its turns (the entry file, message
//! batches, timers) until it is stopped, terminated or killed. Between
//! jobs the context parks in its slot and holds no thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Store;

use crate::bindings::TurnState;
use crate::bindings::worker::Worker as Guest;
use crate::capacity::ContextSlot;
use crate::error::Result;
use crate::host::{HostState, Role};
use crate::instance::{Instance, WorkerJob, WorkerStart};
use crate::kill::classify;
use crate::runtime::RuntimeInner;
use crate::scheduler::{JOBS_PER_RUN, Ran, Task};
use crate::signal::relock;

/// When the earliest timer of a turn's end state is due.
pub(crate) fn timer_due(state: &TurnState) -> Option<Instant> {
    state
        .next_timer_ms
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)))
}

/// Starts the context of the worker `start` reserved: its first run makes
/// the store and runs the entry file.
pub(crate) fn spawn(runtime: Arc<RuntimeInner>, instance: Arc<Instance>, start: WorkerStart) -> Result<()> {
    let id = start.id;
    tracing::debug!(instance = instance.id, worker = id, entry = %start.path, "worker created");
    let task = Arc::new(WorkerTask {
        runtime,
        instance: instance.clone(),
        id,
        stop: start.stop.clone(),
        context: Mutex::new(Context::Starting(start)),
    });
    instance
        .schedule(task)
        .inspect_err(|_| instance.worker_ended(id, false))
}

/// One worker's context.
struct WorkerTask {
    runtime: Arc<RuntimeInner>,
    instance: Arc<Instance>,
    id: u32,
    stop: Arc<AtomicBool>,
    context: Mutex<Context>,
}

enum Context {
    Starting(WorkerStart),
    Running {
        store: Store<HostState>,
        guest: Guest,
        _slot: ContextSlot,
    },
    Ended,
}

impl Task for WorkerTask {
    fn run(self: Arc<Self>) {
        let mut context = relock(&self.context);
        let ran = self.jobs(&mut context);
        match &ran {
            Ok(Ran::Parked) => {}
            Ok(Ran::Yielded) => {
                drop(context);
                if let Err(e) = self.instance.schedule(self.clone()) {
                    *relock(&self.context) = Context::Ended;
                    let message = format!("no thread can run it: {e}");
                    self.instance
                        .worker_killed(self.id, crate::KillReason::Crash, message);
                    self.instance.worker_ended(self.id, true);
                }
            }
            Ok(Ran::Done) | Err(_) => {
                // The store goes first: once the instance hears the context
                // ended, its memory is free.
                *context = Context::Ended;
                drop(context);
                if let Err(e) = ran
                    && !self.stop.load(Ordering::Acquire)
                {
                    let (reason, message) = classify(&e);
                    self.instance.worker_killed(self.id, reason, message);
                }
                self.instance.worker_ended(self.id, true);
            }
        }
    }

    fn timer_fired(self: Arc<Self>) {
        self.instance.worker_timer_fired(self.id);
    }
}

impl WorkerTask {
    /// Runs the worker's ready jobs (the first time, its start).
    fn jobs(self: &Arc<Self>, context: &mut Context) -> wasmtime::Result<Ran> {
        let (runtime, instance, id) = (&self.runtime, &self.instance, self.id);
        if self.stop.load(Ordering::Acquire) {
            return Ok(Ran::Done); // terminated, perhaps before it started
        }
        if let Context::Starting(_) = context {
            let Context::Starting(start) = std::mem::replace(context, Context::Ended) else {
                unreachable!("checked above");
            };
            let (store, guest, state, _slot) = self.start(start)?;
            *context = Context::Running { store, guest, _slot };
            instance.worker_turn_done(id, timer_due(&state), state.listening);
        }
        let Context::Running { store, guest, .. } = context else {
            return Ok(Ran::Done);
        };
        let me: Arc<dyn Task> = self.clone();
        for _ in 0..JOBS_PER_RUN {
            let state = match instance.next_worker_job(id, &me) {
                WorkerJob::Messages(batch) => runtime.turn(store, |s| {
                    guest
                        .miniworker_sandbox_worker_events()
                        .call_deliver_messages(s, &batch)
                })?,
                WorkerJob::Timer => {
                    runtime.turn(store, |s| guest.miniworker_sandbox_turns().call_run_timer(s))?
                }
                WorkerJob::Parked => return Ok(Ran::Parked),
                WorkerJob::Stop => return Ok(Ran::Done),
            };
            instance.worker_turn_done(id, timer_due(&state), state.listening);
        }
        Ok(Ran::Yielded)
    }

    /// Makes the store and runs the entry file.
    fn start(
        &self,
        start: WorkerStart,
    ) -> wasmtime::Result<(Store<HostState>, Guest, TurnState, ContextSlot)> {
        let WorkerStart {
            id,
            path,
            source,
            stop,
            limits,
            slot,
        } = start;
        let (runtime, instance) = (&self.runtime, &self.instance);
        let mut store = runtime.new_store(instance.clone(), Role::Worker(id), stop, limits);
        instance.set_worker_usage(id, store.data().memory.usage.clone());
        let guest = runtime.worker_pre.instantiate(&mut store)?;
        let limits = store.data().guest_limits();
        let filename = format!("/{path}");
        instance.worker_started(id);
        let state = runtime
            .turn(&mut store, |s| {
                guest
                    .miniworker_sandbox_turns()
                    .call_start(s, &filename, &source, limits)
            })?
            .map_err(wasmtime::Error::msg)?;
        Ok((store, guest, state, slot))
    }
}
