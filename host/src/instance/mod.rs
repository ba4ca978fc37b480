//! One mini-program instance's shared state and what its contexts do with
//! it: the worker slot, the queues both ways, waking the main thread (a
//! parked `app.js` context, `tasks.rs`, or a Rust main thread), and
//! handing events to the embedder. It
//! runs no guest itself: the worker lifecycle (`worker.rs`) and the
//! JavaScript main thread (`main_thread.rs`) drive stores and call in here;
//! the lock is never held while a guest runs.

mod queues;
mod receiver;
mod tasks;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use miniworker_project::Project;
use wasmtime::Engine;

pub(crate) use queues::MainJob;
pub use queues::Stats;
use queues::{Ended, Slot, State, queue_full};

use crate::bindings::WitMessage;
use crate::capacity::{Capacity, ContextSlot};
use crate::error::{Error, HostResource, JsError, KillReason, Result, Toward};
use crate::event::{Dropped, Event, EventSink, Source};
use crate::limits::{HostUsage, Limits, Usage};
use crate::message::Encoded;
use crate::scheduler::Scheduler;
use crate::signal::{Signal, relock};

/// Where an instance's events go.
pub(crate) enum Outlet {
    /// A run of `app.js`: everything to the embedder's sink.
    Sink(Arc<dyn EventSink>),
    /// A Rust main thread: worker events queue for [`crate::Worker`]'s
    /// receiving methods.
    Receiver,
}

/// What a new worker's thread needs to start it.
pub(crate) struct WorkerStart {
    pub(crate) id: u32,
    /// Its entry file, project-relative without a leading `/`.
    pub(crate) path: String,
    pub(crate) source: String,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) limits: Limits,
    /// Its share of the host's capacity, held while its store lives.
    pub(crate) slot: ContextSlot,
}

/// The next job of a worker's context.
pub(crate) enum WorkerJob {
    /// Messages that are ready, in order (a batch, each its own turn).
    Messages(Vec<WitMessage>),
    Timer,
    /// Nothing now: the context is parked until something makes it ready.
    Parked,
    Stop,
}

/// Messages delivered to a worker in one call, at most (each is a turn of
/// its own inside it).
const BATCH: usize = 64;

/// What every instance shares with its runtime.
#[derive(Clone)]
pub(crate) struct HostShared {
    /// To interrupt a guest: bumping the epoch makes each store check its
    /// `stop` flag.
    pub(crate) engine: Engine,
    /// Runs the contexts' turns (a run's main thread and the worker).
    pub(crate) scheduler: Scheduler,
    /// The host's capacity in contexts.
    pub(crate) capacity: Arc<Capacity>,
    pub(crate) usage: Arc<HostUsage>,
    pub(crate) instance_cap: Option<usize>,
}

pub(crate) struct Instance {
    pub(crate) project: Project,
    /// This instance's number in the process, for the log.
    pub(crate) id: u64,
    /// The limits of the main thread, and the default of each worker.
    pub(crate) limits: Limits,
    host: HostShared,
    outlet: Outlet,
    state: Mutex<State>,
    /// Wakes a Rust main thread: a worker event, a worker going idle.
    main_cv: Signal,
    /// Tasks waiting (async) for a worker event; woken with `main_cv`.
    main_wakers: Mutex<Vec<Waker>>,
    /// Uncaught main-thread errors so far.
    main_errors: AtomicU64,
    /// Worker contexts not yet ended (their stores not yet dropped), with a
    /// condition variable to wait on.
    live_workers: Mutex<usize>,
    live_workers_cv: Condvar,
}

impl Instance {
    /// A new instance, counted against the host's instance cap.
    pub(crate) fn new(
        host: HostShared,
        project: Project,
        limits: Limits,
        outlet: Outlet,
    ) -> Result<Arc<Instance>> {
        let live = host.usage.instances.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(cap) = host.instance_cap.filter(|cap| live > *cap) {
            host.usage.instances.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::HostLimit {
                what: HostResource::Instances,
                cap,
            });
        }
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let kind = match outlet {
            Outlet::Sink(_) => "run of app.js",
            Outlet::Receiver => "Rust main thread",
        };
        tracing::debug!(instance = id, kind, live, "instance started");
        Ok(Arc::new(Instance {
            project,
            id,
            limits,
            host,
            outlet,
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            main_cv: Signal::default(),
            main_wakers: Mutex::new(Vec::new()),
            main_errors: AtomicU64::new(0),
            live_workers: Mutex::new(0),
            live_workers_cv: Condvar::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        relock(&self.state)
    }

    /// Wakes the main thread: a parked `app.js` context, or a Rust main
    /// thread, blocked or async; called with the lock held, like every
    /// notification.
    fn notify_main(&self, st: &mut MutexGuard<'_, State>) {
        match self.outlet {
            Outlet::Sink(_) => self.unpark(&mut st.main_parked),
            Outlet::Receiver => {
                self.main_cv.notify(st);
                for waker in std::mem::take(&mut *relock(&self.main_wakers)) {
                    waker.wake();
                }
            }
        }
    }

    /// Makes every store whose `stop` flag is set stop at its next check.
    pub(crate) fn interrupt(&self) {
        self.host.engine.increment_epoch();
    }

    /// Hands `event` to the embedder: the sink of a run, or (a Rust main
    /// thread has no sink for the host's own diagnostics) the log.
    pub(crate) fn emit(&self, event: Event) {
        match &self.outlet {
            Outlet::Sink(sink) => sink.event(event),
            Outlet::Receiver => tracing::info!(?event, "miniworker event"),
        }
    }

    /// Reports the worker events a full queue refused, if any: queued for a
    /// Rust main thread, returned for the caller to emit (after unlocking)
    /// in a run.
    fn report_dropped(&self, st: &mut State, id: u32) -> Option<Event> {
        let count = std::mem::take(&mut st.dropped);
        let event = (count > 0).then_some(Event::Dropped {
            what: Dropped::WorkerEvents,
            count,
        })?;
        match self.outlet {
            Outlet::Receiver => {
                st.push_to_main(id, event);
                None
            }
            Outlet::Sink(_) => Some(event),
        }
    }

    /// Emits a [`Event::Dropped`] for each count that is not zero.
    fn emit_dropped(&self, counts: &[(Dropped, u64)]) {
        for &(what, count) in counts {
            if count > 0 {
                self.emit(Event::Dropped { what, count });
            }
        }
    }

    // ---- the worker slot ------------------------------------------------------

    /// `createWorker`: checks the path and the one-worker rule and takes the
    /// slot; the caller starts the worker's context.
    pub(crate) fn reserve_worker(&self, script: &str, limits: Limits) -> Result<WorkerStart> {
        let (path, source) = self.project.worker_script(script).map_err(Error::BadScript)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut st = self.lock();
        if st.worker.is_some() {
            return Err(Error::WorkerLimit);
        }
        let slot = self.host.capacity.take()?;
        let id = st.next_id;
        st.next_id += 1;
        st.worker = Some(Slot::new(id, limits.clone(), stop.clone()));
        *relock(&self.live_workers) += 1;
        Ok(WorkerStart {
            id,
            path,
            source,
            stop,
            limits,
            slot,
        })
    }

    /// Takes a context of the host's capacity (for a run's main thread).
    pub(crate) fn take_context(&self) -> Result<ContextSlot> {
        self.host.capacity.take()
    }

    /// A worker's context ended, its store dropped (or it never started).
    pub(crate) fn worker_ended(&self, id: u32, started: bool) {
        if !started {
            let mut st = self.lock();
            st.worker.take_if(|s| s.id == id);
            self.notify_main(&mut st);
        }
        *relock(&self.live_workers) -= 1;
        self.live_workers_cv.notify_all();
    }

    /// Records what worker `id`'s store uses ([`crate::Stats`]).
    pub(crate) fn set_worker_usage(&self, id: u32, usage: Arc<Usage>) {
        if let Some(slot) = self.lock().slot(id) {
            slot.usage = Some(usage);
        }
    }

    /// Waits until no worker context of this instance lives, at most
    /// `timeout`; whether none does.
    pub(crate) fn wait_workers_ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut live = relock(&self.live_workers);
        while *live > 0 {
            let left = match deadline {
                Some(d) if d <= Instant::now() => return false,
                Some(d) => d - Instant::now(),
                None => Duration::from_secs(3600),
            };
            live = match self.live_workers_cv.wait_timeout(live, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Queues a message toward worker `id`.
    pub(crate) fn post_to_worker(&self, id: u32, message: Encoded) -> Result<()> {
        let mut st = self.lock();
        st.post_to_worker(id, message)?;
        if let Some(slot) = st.slot(id).filter(|s| s.listening) {
            self.unpark(&mut slot.parked);
        }
        Ok(())
    }

    /// `terminate()`: frees the slot at once and stops the worker's guest,
    /// even inside `while (true) {}`. Returns how many messages toward it
    /// were discarded. Idempotent.
    pub(crate) fn terminate_worker(&self, id: u32) -> usize {
        let (discarded, dropped) = {
            let mut st = self.lock();
            let Some(mut slot) = st.worker.take_if(|s| s.id == id) else {
                return 0;
            };
            slot.stop.store(true, Ordering::Release);
            st.forget_worker_events(id);
            let dropped = std::mem::take(&mut st.dropped);
            st.ended = Some((id, Ended::Terminated));
            st.discarded += slot.inbox.len() as u64;
            // A parked context runs once more to find itself stopped and
            // drop its store; a running one stops at its next check.
            self.unpark(&mut slot.parked);
            self.notify_main(&mut st);
            (slot.inbox.len(), dropped)
        };
        tracing::debug!(instance = self.id, worker = id, discarded, "worker terminated");
        self.interrupt();
        self.emit_dropped(&[
            (Dropped::WorkerEvents, dropped),
            (Dropped::MessagesToWorker, discarded as u64),
        ]);
        discarded
    }

    /// Queues an event of worker `id` toward the main thread. A message
    /// that does not fit is refused (back-pressure for the sender); a
    /// console line or error that does not fit is dropped and counted.
    /// Fails when that worker is no longer the live one.
    pub(crate) fn push_from_worker(&self, id: u32, event: Event) -> Result<()> {
        let mut st = self.lock();
        let Some(limits) = st.slot(id).map(|s| s.limits.clone()) else {
            return Err(st.ended_error(id));
        };
        let bytes = event.byte_len();
        if let Some(limit) = queue_full(&limits, st.to_main.len(), st.to_main_bytes, bytes) {
            if matches!(event, Event::Message(_)) {
                st.refused_to_main += 1;
                return Err(Error::QueueFull {
                    toward: Toward::Main,
                    limit,
                });
            }
            st.dropped += 1;
            return Ok(());
        }
        let dropped = self.report_dropped(&mut st, id);
        st.push_to_main(id, event);
        self.notify_main(&mut st);
        drop(st);
        if let Some(event) = dropped {
            self.emit(event);
        }
        Ok(())
    }

    /// A console line (or dropped-lines notice) of worker `id`: emitted at
    /// once in a run (so it comes before anything the main thread does with
    /// the worker's next message), queued for a Rust main thread.
    pub(crate) fn worker_said(&self, id: u32, event: Event) {
        match self.outlet {
            Outlet::Receiver => {
                // A terminated worker's last lines have nobody to go to.
                let _ = self.push_from_worker(id, event);
            }
            Outlet::Sink(_) => {
                if self.lock().slot(id).is_some() {
                    self.emit(event);
                }
            }
        }
    }

    /// An uncaught error of the JavaScript main thread.
    pub(crate) fn main_uncaught(&self, error: JsError) {
        self.main_errors.fetch_add(1, Ordering::Relaxed);
        self.emit(Event::Error {
            source: Source::Main,
            error,
        });
    }

    /// Uncaught main-thread errors so far.
    pub(crate) fn main_errors(&self) -> u64 {
        self.main_errors.load(Ordering::Relaxed)
    }

    /// Worker `id` was killed: the notice first (so no exit can come before
    /// it), then the kill event, the last of the worker's, in its queue.
    pub(crate) fn worker_killed(&self, id: u32, reason: KillReason, message: String) {
        let dropped = {
            let mut st = self.lock();
            if st.slot(id).is_none() {
                return; // terminated meanwhile: nothing more to say
            }
            std::mem::take(&mut st.dropped)
        };
        self.emit_dropped(&[(Dropped::WorkerEvents, dropped)]);
        let notice = Event::Killed {
            source: Source::Worker,
            reason,
            message: message.clone(),
        };
        tracing::debug!(instance = self.id, worker = id, %reason, "worker killed");
        match self.outlet {
            Outlet::Sink(_) => self.emit(notice),
            Outlet::Receiver => {
                tracing::warn!(instance = self.id, worker = id, %reason, %message, "worker killed")
            }
        }
        let discarded = {
            let mut st = self.lock();
            let Some(slot) = st.worker.take_if(|s| s.id == id) else {
                return;
            };
            st.discarded += slot.inbox.len() as u64;
            st.ended = Some((id, Ended::Killed(reason)));
            st.push_to_main(
                id,
                Event::Killed {
                    source: Source::Worker,
                    reason,
                    message,
                },
            );
            self.notify_main(&mut st);
            slot.inbox.len() as u64
        };
        self.emit_dropped(&[(Dropped::MessagesToWorker, discarded)]);
    }

    /// Worker `id`'s context is up and its entry file starts: a Rust main
    /// thread gets [`Event::Ready`] first (past the queue limits: it is
    /// small and once).
    pub(crate) fn worker_started(&self, id: u32) {
        if let Outlet::Receiver = self.outlet {
            let mut st = self.lock();
            if st.slot(id).is_some() {
                st.push_to_main(
                    id,
                    Event::Ready {
                        source: Source::Worker,
                    },
                );
                self.notify_main(&mut st);
            }
        }
    }

    /// Records the state a worker turn ended with; the worker is idle until
    /// its next job.
    /// The worker events its turn had refused are reported now, at the
    /// latest (docs/spec.md section 5: nothing is lost silently).
    pub(crate) fn worker_turn_done(&self, id: u32, timer_due: Option<Instant>, listening: bool) {
        let mut st = self.lock();
        let Some(slot) = st.slot(id) else { return };
        slot.busy = false;
        slot.listening = listening;
        slot.timer_due = timer_due;
        let dropped = self.report_dropped(&mut st, id);
        self.notify_main(&mut st);
        drop(st);
        if let Some(event) = dropped {
            self.emit(event);
        }
    }

    // ---- the main thread's side ---------------------------------------------------

    /// Stops a run from outside (its deadline, a signal): the main thread
    /// sees it at its next wait.
    pub(crate) fn stop(&self) {
        let mut st = self.lock();
        st.stopped = true;
        self.notify_main(&mut st);
    }

    /// Whether the run was stopped from outside.
    pub(crate) fn stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Ends the instance: terminates the worker, discards and reports what
    /// is left. Returns the messages discarded in all.
    pub(crate) fn shut_down(&self) -> u64 {
        // Messages an idle worker without a listener never took: unheard,
        // not "queued toward a worker that ended" (docs/spec.md section 7).
        let (id, unheard) = {
            let mut st = self.lock();
            let unheard = match st.worker.as_mut() {
                Some(slot) if !slot.listening => {
                    slot.inbox_bytes = 0;
                    std::mem::take(&mut slot.inbox).len() as u64
                }
                _ => 0,
            };
            st.discarded += unheard;
            (st.worker.as_ref().map(|s| s.id), unheard)
        };
        if let Some(id) = id {
            self.terminate_worker(id);
        }
        let (left, dropped, discarded) = {
            let mut st = self.lock();
            let left = unheard
                + st.to_main
                    .iter()
                    .filter(|q| matches!(q.event, Event::Message(_)))
                    .count() as u64;
            st.to_main.clear();
            st.to_main_bytes = 0;
            st.discarded += left - unheard;
            (left, std::mem::take(&mut st.dropped), st.discarded)
        };
        self.emit_dropped(&[
            (Dropped::WorkerEvents, dropped),
            (Dropped::MessagesWithoutListener, left),
        ]);
        discarded
    }

    /// Messages discarded so far.
    pub(crate) fn discarded(&self) -> u64 {
        self.lock().discarded
    }

    /// See [`crate::MiniProgram::stats`].
    pub(crate) fn stats(&self) -> Stats {
        let st = self.lock();
        let slot = st.worker.as_ref();
        let usage = slot.and_then(|s| s.usage.as_ref());
        Stats {
            worker_memory_bytes: usage.map_or(0, |u| u.memory.load(Ordering::Relaxed)),
            worker_cpu_time: Duration::from_nanos(usage.map_or(0, |u| u.cpu_nanos.load(Ordering::Relaxed))),
            queued_to_worker: slot.map_or(0, |s| s.inbox.len()),
            queued_to_worker_bytes: slot.map_or(0, |s| s.inbox_bytes),
            queued_to_main: st.to_main.len(),
            queued_to_main_bytes: st.to_main_bytes,
            discarded_messages: st.discarded,
            refused_to_main: st.refused_to_main,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.host.usage.instances.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(instance = self.id, "instance ended");
    }
}
