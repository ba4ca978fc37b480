//! The JavaScript main thread: `app.js` in a store of its own, its App
//! hooks, and its loop of turns (worker events, timers) until the
//! mini-program is quiescent or the run is stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::Store;

use crate::bindings::TurnState;
use crate::bindings::main::exports::miniworker::sandbox::main_events::{AppHook, KillInfo, WorkerEvent};
use crate::event::{Event, Source};
use crate::host::{HostState, Role};
use crate::instance::{Instance, MainJob};
use crate::kill::classify;
use crate::runtime::{GUEST_THREAD_STACK, RuntimeInner};
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

/// Stops a run at its deadline. Dropping it before cancels it.
struct Watchdog {
    cancel: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Watchdog {
    fn start(control: RunControl, deadline: Instant) -> std::io::Result<Watchdog> {
        let cancel = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let theirs = cancel.clone();
        std::thread::Builder::new()
            .name("miniworker-deadline".into())
            .spawn(move || {
                let (lock, cv) = &*theirs;
                let mut cancelled = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*cancelled {
                    let now = Instant::now();
                    if now >= deadline {
                        control.stop_with(2);
                        return;
                    }
                    cancelled = match cv.wait_timeout(cancelled, deadline - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
            })?;
        Ok(Watchdog { cancel })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.cancel;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

/// Runs `app.js` (`source`) as the main thread until the mini-program is
/// quiescent or the run is stopped, on a thread of its own (with a stack
/// sized for Wasmtime's guest stack; the caller's may be smaller).
pub(crate) fn run(
    runtime: &Arc<RuntimeInner>,
    instance: &Arc<Instance>,
    source: &str,
    control: &RunControl,
    deadline: Option<Instant>,
) -> ExitStatus {
    let stop = Arc::new(AtomicBool::new(false));
    control.attach(instance, &stop);
    let watchdog = deadline.and_then(|d| Watchdog::start(control.clone(), d).ok());
    let (rt, inst, source, thread_stop) =
        (runtime.clone(), instance.clone(), source.to_owned(), stop.clone());
    let result = std::thread::Builder::new()
        .name("miniworker-main".into())
        .stack_size(GUEST_THREAD_STACK)
        .spawn(move || turns(&rt, &inst, &source, thread_stop))
        .map_err(|e| wasmtime::Error::msg(format!("cannot start the main thread: {e}")))
        .and_then(|thread| {
            thread
                .join()
                .unwrap_or_else(|_| Err(wasmtime::Error::msg("the main thread panicked")))
        });
    drop(watchdog);
    control.detach();
    let status = match result {
        Ok(()) | Err(_) if instance.stopped() || stop.load(Ordering::Acquire) => control.stopped_status(),
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
    tracing::debug!(instance = instance.id, ?status, "run ended");
    status
}

/// The main thread's view of its own context after each turn.
struct MainState {
    timer_due: Option<Instant>,
    listening: bool,
}

fn turns(
    runtime: &Arc<RuntimeInner>,
    instance: &Arc<Instance>,
    source: &str,
    stop: Arc<AtomicBool>,
) -> wasmtime::Result<()> {
    let limits = instance.limits.clone();
    let mut store = runtime.new_store(instance.clone(), Role::Main, stop, limits);
    let guest = runtime.main_pre.instantiate(&mut store)?;
    let entry = guest.miniworker_sandbox_turns();
    let events = guest.miniworker_sandbox_main_events();
    let limits = store.data().guest_limits();
    let mut main = MainState {
        timer_due: None,
        listening: false,
    };
    // `/app.js`, or `/game.js` for a mini-game.
    let main_file = format!("/{}", instance.project.main_script());
    instance.emit(Event::Ready { source: Source::Main });
    let state = turn(runtime, &mut store, |s| {
        entry.call_start(s, &main_file, source, limits)
    })?
    .map_err(wasmtime::Error::msg)?;
    main.update(&state);
    for hook in [AppHook::OnLaunch, AppHook::OnShow] {
        main.update(&turn(runtime, &mut store, |s| {
            events.call_call_app_hook(s, hook)
        })?);
    }
    loop {
        let state = match instance.next_main_job(main.listening, main.timer_due) {
            MainJob::Event(id, event) => {
                let event = match event {
                    Event::Message(message) => WorkerEvent::Message(message.bytes().to_vec()),
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
                turn(runtime, &mut store, |s| {
                    events.call_deliver_worker_event(s, id, &event)
                })?
            }
            MainJob::Timer => turn(runtime, &mut store, |s| entry.call_run_timer(s))?,
            MainJob::Quiescent | MainJob::Stopped => return Ok(()),
        };
        main.update(&state);
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
                format!("the worker's thread did not start: {e}"),
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
