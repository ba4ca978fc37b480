//! The worker lifecycle: a worker's thread, its store, and its loop of
//! turns (the entry file, message batches, timers) until it is stopped,
//! terminated or killed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::bindings::TurnState;
use crate::error::{Error, Result};
use crate::host::Role;
use crate::instance::{Instance, WorkerJob, WorkerStart};
use crate::kill::classify;
use crate::runtime::{GUEST_THREAD_STACK, RuntimeInner};

/// When the earliest timer of a turn's end state is due.
pub(crate) fn timer_due(state: &TurnState) -> Option<Instant> {
    state
        .next_timer_ms
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)))
}

/// Starts the thread of the worker `start` reserved.
pub(crate) fn spawn(runtime: Arc<RuntimeInner>, instance: Arc<Instance>, start: WorkerStart) -> Result<()> {
    let id = start.id;
    tracing::debug!(instance = instance.id, worker = id, entry = %start.path, "worker created");
    let theirs = instance.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("miniworker-worker-{id}"))
        .stack_size(GUEST_THREAD_STACK)
        .spawn(move || {
            run(&runtime, &theirs, start);
            theirs.worker_thread_ended(id, true);
        });
    if let Err(e) = spawned {
        instance.worker_thread_ended(id, false);
        return Err(Error::Io(e));
    }
    Ok(())
}

/// Runs the worker until it ends; a kill is reported, a stop is not.
fn run(runtime: &RuntimeInner, instance: &Arc<Instance>, start: WorkerStart) {
    let stop = start.stop.clone();
    let id = start.id;
    if let Err(e) = turns(runtime, instance, start) {
        if stop.load(Ordering::Acquire) {
            return; // terminated: nothing more to say
        }
        let (reason, message) = classify(&e);
        instance.worker_killed(id, reason, message);
    }
}

fn turns(runtime: &RuntimeInner, instance: &Arc<Instance>, start: WorkerStart) -> wasmtime::Result<()> {
    let WorkerStart {
        id,
        path,
        source,
        stop,
        limits,
    } = start;
    let mut store = runtime.new_store(instance.clone(), Role::Worker(id), stop, limits);
    instance.set_worker_usage(id, store.data().memory.usage.clone());
    let guest = runtime.worker_pre.instantiate(&mut store)?;
    let entry = guest.miniworker_sandbox_turns();
    let events = guest.miniworker_sandbox_worker_events();
    let limits = store.data().guest_limits();
    let filename = format!("/{path}");
    instance.worker_started(id);
    let state = runtime
        .turn(&mut store, |s| entry.call_start(s, &filename, &source, limits))?
        .map_err(wasmtime::Error::msg)?;
    instance.worker_turn_done(id, timer_due(&state), state.listening);
    loop {
        let state = match instance.next_worker_job(id) {
            WorkerJob::Messages(batch) => {
                runtime.turn(&mut store, |s| events.call_deliver_messages(s, &batch))?
            }
            WorkerJob::Timer => runtime.turn(&mut store, |s| entry.call_run_timer(s))?,
            WorkerJob::Stop => return Ok(()),
        };
        instance.worker_turn_done(id, timer_due(&state), state.listening);
    }
}
