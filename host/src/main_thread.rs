//! The JavaScript main thread: `app.js` in a store of its own as a task of
//! the pool (`scheduler.rs`), its App hooks, and its turns (worker events,
//! timers) until the mini-program is quiescent or the run is stopped;
//! [`Running`], the handle of a run, and [`RunControl`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use wasmtime::Store;

use crate::api::RunReport;
use crate::bindings::TurnState;
use crate::bindings::main::Main as Guest;
use crate::bindings::main::exports::miniworker::sandbox::main_events::{AppHook, KillInfo, WorkerEvent};
use crate::capacity::ContextSlot;
use crate::error::Result;
use crate::event::{Event, Source};
use crate::host::{HostState, Role};
use crate::instance::{Instance, MainJob};
use crate::kill::classify;
use crate::runtime::RuntimeInner;
use crate::scheduler::{JOBS_PER_RUN, Ran, Task};
use crate::signal::relock;
use crate::worker::timer_due;

/// How a run of `app.js` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The mini-program became quiescent (worker errors and kills included).
    Normal,
    /// The main thread had an uncaught error or unhandled rejection.
    UncaughtError,
    /// The main thread itself was killed.
    Killed(crate::KillReason),
    /// [`crate::RunOptions::timeout`] was reached.
    TimedOut,
    /// [`RunControl::stop`] stopped it (a signal, say).
    Stopped,
}

/// Stops a run of `app.js` from another thread ([`crate::RunOptions::control`]).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct RunControl {
    inner: Arc<Control>,
}

#[derive(Default)]
struct Control {
    /// 0 running, 1 stopped, 2 timed out.
    cause: std::sync::atomic::AtomicU8,
    /// The run's instance and its main store's stop flag, once it started.
    target: std::sync::Mutex<Option<(Arc<Instance>, Arc<AtomicBool>)>>,
}

impl RunControl {
    /// Stops the run: the worker is terminated, the main thread's guest is
    /// interrupted even inside `while (true) {}`, every pending diagnostic
    /// is emitted, and the run returns [`ExitStatus::Stopped`].
    pub fn stop(&self) {
        self.stop_with(1);
    }

    fn stop_with(&self, cause: u8) {
        let _ = self
            .inner
            .cause
            .compare_exchange(0, cause, Ordering::SeqCst, Ordering::SeqCst);
        let target = self.inner.target.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((instance, stop)) = target.as_ref() {
            stop.store(true, Ordering::Release);
            instance.stop();
            instance.interrupt();
        }
    }

    /// Attaches the run; a stop that came before takes effect now.
    fn attach(&self, instance: &Arc<Instance>, stop: &Arc<AtomicBool>) {
        *self.inner.target.lock().unwrap_or_else(|p| p.into_inner()) = Some((instance.clone(), stop.clone()));
        let cause = self.inner.cause.load(Ordering::SeqCst);
        if cause != 0 {
            self.stop_with(cause);
        }
    }

    fn detach(&self) {
        self.inner.target.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn stopped_status(&self) -> ExitStatus {
        match self.inner.cause.load(Ordering::SeqCst) {
            2 => ExitStatus::TimedOut,
            _ => ExitStatus::Stopped,
        }
    }
}

/// Stops a run at its deadline (the timer thread holds it weakly: a run
/// that ended first drops it).
struct Deadline {
    control: RunControl,
}

impl Task for Deadline {
    fn run(self: Arc<Self>) {}

    fn timer_fired(self: Arc<Self>) {
        self.control.stop_with(2);
    }
}

/// A run of `app.js` under way ([`crate::MiniProgram::start`]): wait for
/// its report, blocking or as a future. Dropping it does not stop the run
/// (its [`RunControl`] does).
pub struct Running {
    done: Arc<Done>,
}

/// Where a run leaves its report.
#[derive(Default)]
struct Done {
    report: Mutex<Option<RunReport>>,
    cv: Condvar,
    wakers: Mutex<Vec<Waker>>,
}

impl Running {
    /// Waits for the run to end.
    pub fn wait(&self) -> RunReport {
        let mut report = relock(&self.done.report);
        loop {
            if let Some(report) = report.as_ref() {
                return report.clone();
            }
            report = self.done.cv.wait(report).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The report, if the run has ended.
    pub fn report(&self) -> Option<RunReport> {
        relock(&self.done.report).clone()
    }

    /// A future of the report.
    pub fn finished(&self) -> Finished<'_> {
        Finished { running: self }
    }
}

/// The future of [`Running::finished`].
pub struct Finished<'a> {
    running: &'a Running,
}

impl Future for Finished<'_> {
    type Output = RunReport;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<RunReport> {
        let done = &self.running.done;
        let report = relock(&done.report);
        match report.as_ref() {
            Some(report) => Poll::Ready(report.clone()),
            None => {
                // Registered under the report's lock: the end wakes it.
                relock(&done.wakers).push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Done {
    fn finish(&self, report: RunReport) {
        *relock(&self.report) = Some(report);
        self.cv.notify_all();
        for waker in std::mem::take(&mut *relock(&self.wakers)) {
            waker.wake();
        }
    }
}

/// Starts `app.js` (`source`) as the main thread of `instance`; it runs
/// until the mini-program is quiescent or the run is stopped.
pub(crate) fn start(
    runtime: &Arc<RuntimeInner>,
    instance: &Arc<Instance>,
    source: String,
    control: &RunControl,
    deadline: Option<Instant>,
) -> Result<Running> {
    let slot = instance.take_context()?;
    let stop = Arc::new(AtomicBool::new(false));
    control.attach(instance, &stop);
    let deadline = deadline.map(|due| {
        let task = Arc::new(Deadline {
            control: control.clone(),
        });
        let weak: std::sync::Weak<dyn Task> = Arc::downgrade(&task) as _;
        runtime.scheduler().wake_at(due, weak);
        task
    });
    let done = Arc::new(Done::default());
    let task = Arc::new(MainTask {
        runtime: runtime.clone(),
        instance: instance.clone(),
        stop,
        control: control.clone(),
        done: done.clone(),
        _deadline: deadline,
        slot: Mutex::new(Some(slot)),
        context: Mutex::new(Context::Starting(source)),
    });
    if let Err(e) = instance.schedule(task) {
        control.detach();
        instance.shut_down();
        return Err(e);
    }
    Ok(Running { done })
}

/// A run's main-thread context.
struct MainTask {
    runtime: Arc<RuntimeInner>,
    instance: Arc<Instance>,
    /// The store's stop flag.
    stop: Arc<AtomicBool>,
    control: RunControl,
    done: Arc<Done>,
    _deadline: Option<Arc<Deadline>>,
    /// Its share of the host's capacity, given back before the report.
    slot: Mutex<Option<ContextSlot>>,
    context: Mutex<Context>,
}

enum Context {
    Starting(String),
    Running {
        store: Store<HostState>,
        guest: Guest,
        main: MainState,
    },
    Ended,
}

/// The main thread's view of its own context after each turn.
struct MainState {
    timer_due: Option<Instant>,
    listening: bool,
}

impl Task for MainTask {
    fn run(self: Arc<Self>) {
        let mut context = relock(&self.context);
        let ran = self.jobs(&mut context);
        match ran {
            Ok(Ran::Parked) => {}
            Ok(Ran::Yielded) => {
                drop(context);
                let instance = self.instance.clone();
                if let Err(e) = instance.schedule(self.clone()) {
                    *relock(&self.context) = Context::Ended;
                    self.end(Err(wasmtime::Error::msg(format!("no thread can run it: {e}"))));
                }
            }
            Ok(Ran::Done) => {
                *context = Context::Ended;
                drop(context);
                self.end(Ok(()));
            }
            Err(e) => {
                *context = Context::Ended;
                drop(context);
                self.end(Err(e));
            }
        }
    }

    fn timer_fired(self: Arc<Self>) {
        self.instance.main_timer_fired();
    }
}

impl MainTask {
    /// Runs the main thread's ready jobs (the first time, its start).
    fn jobs(self: &Arc<Self>, context: &mut Context) -> wasmtime::Result<Ran> {
        let (runtime, instance) = (&self.runtime, &self.instance);
        if let Context::Starting(_) = context {
            let Context::Starting(source) = std::mem::replace(context, Context::Ended) else {
                unreachable!("checked above");
            };
            *context = self.start(&source)?;
        }
        let Context::Running { store, guest, main } = context else {
            return Ok(Ran::Done);
        };
        let me: Arc<dyn Task> = self.clone();
        let mut jobs = 0;
        while jobs < JOBS_PER_RUN {
            let Some(job) = instance.next_main_job(main.listening, main.timer_due, &me) else {
                return Ok(Ran::Parked);
            };
            let state = match job {
                MainJob::Event(id, event) => {
                    let event = match event {
                        Event::Error { error, .. } => WorkerEvent::Error(error.into()),
                        Event::Killed { reason, message, .. } => WorkerEvent::Killed(KillInfo {
                            reason: reason.into(),
                            message,
                        }),
                        // Console lines and notices go to the sink at once in a run.
                        other => {
                            instance.emit(other);
                            continue;
                        }
                    };
                    turn(runtime, store, |s| {
                        guest
                            .miniworker_sandbox_main_events()
                            .call_deliver_worker_event(s, id, &event)
                    })?
                }
                MainJob::Messages(id, batch) => turn(runtime, store, |s| {
                    guest
                        .miniworker_sandbox_main_events()
                        .call_deliver_worker_messages(s, id, &batch)
                })?,
                MainJob::Timer => turn(runtime, store, |s| {
                    guest.miniworker_sandbox_turns().call_run_timer(s)
                })?,
                MainJob::Quiescent | MainJob::Stopped => return Ok(Ran::Done),
            };
            main.update(&state);
            jobs += 1;
        }
        Ok(Ran::Yielded)
    }

    /// Makes the store, runs `app.js` and the launch hooks.
    fn start(&self, source: &str) -> wasmtime::Result<Context> {
        let (runtime, instance) = (&self.runtime, &self.instance);
        let limits = instance.limits.clone();
        let mut store = runtime.new_store(instance.clone(), Role::Main, self.stop.clone(), limits);
        let guest = runtime.main_pre.instantiate(&mut store)?;
        let limits = store.data().guest_limits();
        let mut main = MainState {
            timer_due: None,
            listening: false,
        };
        // `/app.js`, or `/game.js` for a mini-game.
        let main_file = format!("/{}", instance.project.main_script());
        instance.emit(Event::Ready { source: Source::Main });
        let state = turn(runtime, &mut store, |s| {
            guest
                .miniworker_sandbox_turns()
                .call_start(s, &main_file, source, limits)
        })?
        .map_err(wasmtime::Error::msg)?;
        main.update(&state);
        for hook in [AppHook::OnLaunch, AppHook::OnShow] {
            main.update(&turn(runtime, &mut store, |s| {
                guest.miniworker_sandbox_main_events().call_call_app_hook(s, hook)
            })?);
        }
        Ok(Context::Running { store, guest, main })
    }

    /// The run ended (its store is gone): its status, the instance shut
    /// down, the report for whoever waits.
    fn end(&self, result: wasmtime::Result<()>) {
        let (instance, control) = (&self.instance, &self.control);
        control.detach();
        let status = match result {
            Ok(()) | Err(_) if instance.stopped() || self.stop.load(Ordering::Acquire) => {
                control.stopped_status()
            }
            Ok(()) if instance.main_errors() > 0 => ExitStatus::UncaughtError,
            Ok(()) => ExitStatus::Normal,
            Err(e) => {
                let (reason, message) = classify(&e);
                instance.emit(Event::Killed {
                    source: Source::Main,
                    reason,
                    message,
                });
                ExitStatus::Killed(reason)
            }
        };
        instance.shut_down();
        relock(&self.slot).take();
        tracing::debug!(instance = instance.id, ?status, "run ended");
        self.done.finish(RunReport {
            status,
            discarded_messages: instance.discarded(),
        });
    }
}

/// One turn of the main thread; workers `createWorker` reserved during it
/// start once it ended.
fn turn<R>(
    runtime: &Arc<RuntimeInner>,
    store: &mut Store<HostState>,
    call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let result = runtime.turn(store, call);
    let instance = store.data().instance.clone();
    for start in std::mem::take(&mut store.data_mut().starting) {
        let id = start.id;
        if let Err(e) = crate::worker::spawn(runtime.clone(), instance.clone(), start) {
            instance.worker_killed(
                id,
                crate::KillReason::Crash,
                format!("the worker's context did not start: {e}"),
            );
        }
    }
    result
}

impl MainState {
    fn update(&mut self, state: &TurnState) {
        self.timer_due = timer_due(state);
        self.listening = state.listening;
    }
}
