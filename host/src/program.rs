//! Mini-program instances and the worker lifecycle.
//!
//! A [`Program`] is the state one mini-program's contexts share: the queue of
//! worker events toward the main thread, and the one worker slot with its
//! inbox. Each context runs on a thread of its own, one turn at a time; they
//! meet only under the program's lock, which is never held while a guest runs.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use wasmtime::Store;

use crate::bindings::{LogLevel, TurnState, WitJsError};
use crate::codec::Message;
use crate::error::{Error, JsError, KillReason, Result};
use crate::host::{HostState, Role, TestKill};
use crate::limits::{Limits, TurnBudget};
use crate::runtime::{Runtime, RuntimeInner};
use miniworker_project::Project;

/// Native stack of a thread that runs a guest: Wasmtime's guest stack plus
/// room for the host frames below it.
const GUEST_THREAD_STACK: usize = miniworker_engine::MAX_WASM_STACK + (4 << 20);

/// Messages delivered to a worker in one call, at most (each is a turn of
/// its own inside it).
const BATCH: usize = 64;

/// The level of a console line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsoleLevel {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

impl From<LogLevel> for ConsoleLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Log => ConsoleLevel::Log,
            LogLevel::Info => ConsoleLevel::Info,
            LogLevel::Warn => ConsoleLevel::Warn,
            LogLevel::Error => ConsoleLevel::Error,
            LogLevel::Debug => ConsoleLevel::Debug,
        }
    }
}

impl From<WitJsError> for JsError {
    fn from(e: WitJsError) -> Self {
        JsError {
            name: e.name,
            message: e.message,
            stack: e.stack,
            filename: e.filename,
            lineno: e.lineno,
        }
    }
}

impl From<JsError> for WitJsError {
    fn from(e: JsError) -> Self {
        WitJsError {
            name: e.name,
            message: e.message,
            stack: e.stack,
            filename: e.filename,
            lineno: e.lineno,
        }
    }
}

/// One event of a worker, in the order it happened in the worker.
#[derive(Debug)]
pub(crate) enum Event {
    /// An encoded message, and its decoded form for a Rust main thread
    /// (the host decodes every message from a guest once, to check it).
    Message(Vec<u8>, Option<Message>),
    /// A console call's arguments, each formatted.
    Console(ConsoleLevel, Vec<String>),
    Error(JsError),
    Killed(KillReason, String),
}

impl Event {
    /// What the event counts against the queue's byte limit.
    fn bytes(&self) -> usize {
        match self {
            Event::Message(data, _) => data.len(),
            Event::Console(_, args) => line_len(args),
            Event::Error(e) => e.message.len() + e.stack.len() + e.filename.len(),
            Event::Killed(_, message) => message.len(),
        }
    }
}

/// The length of a console line: its arguments joined by single spaces.
pub(crate) fn line_len(args: &[String]) -> usize {
    args.iter().map(String::len).sum::<usize>() + args.len().saturating_sub(1)
}

/// Where console lines and diagnostics go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// `miniworker run`: console lines on stdout with `[main] `/`[worker] `,
    /// diagnostics on stderr; or, with `json`, both as JSON lines on stdout.
    Print { json: bool },
    /// Library mode: worker console lines are events; nothing is printed.
    Events,
}

pub(crate) struct Program {
    pub(crate) runtime: Arc<RuntimeInner>,
    pub(crate) project: Project,
    output: Output,
    pub(crate) limits: Limits,
    state: Mutex<State>,
    /// Wakes the main thread: a worker event, a worker going idle, a timeout.
    main_cv: Signal,
    /// Wakes the worker: a message, a terminate.
    worker_cv: Signal,
    /// Uncaught main-thread errors so far.
    main_errors: AtomicU64,
    /// Tasks waiting (async) for a worker event; woken with `main_cv`.
    main_wakers: Mutex<Vec<Waker>>,
    /// Worker threads still running (a terminated one ends at its next
    /// interrupt check), with a condition variable for waiting on them.
    worker_threads: Mutex<usize>,
    worker_threads_cv: Condvar,
}

#[derive(Default)]
struct State {
    next_id: u32,
    worker: Option<Slot>,
    /// Worker events toward the main thread, with the worker id and arrival time.
    to_main: VecDeque<(u32, Instant, Event)>,
    /// Bytes of the events in `to_main`.
    to_main_bytes: usize,
    /// Console lines and errors of the live worker dropped because `to_main`
    /// was full; reported in one line once there is room.
    dropped_events: u64,
    /// The last worker that ended, and how (for `post_to_worker` after it).
    ended: Option<(u32, Error)>,
    /// Messages discarded so far (toward a terminated or killed worker, or
    /// left without a listener at exit).
    discarded: u64,
    timed_out: bool,
}

impl State {
    /// How the worker `id` ended: killed, or (also when unknown) terminated.
    fn ended_error(&self, id: u32) -> Error {
        match &self.ended {
            Some((ended, Error::Killed(reason))) if *ended == id => Error::Killed(*reason),
            _ => Error::Terminated,
        }
    }

    /// Takes the event at `index` of `to_main`.
    fn take_to_main(&mut self, index: usize) -> Option<(u32, Instant, Event)> {
        let taken = self.to_main.remove(index)?;
        self.to_main_bytes = self.to_main_bytes.saturating_sub(taken.2.bytes());
        Some(taken)
    }

    /// Takes the oldest event of worker `id` from `to_main`.
    fn take_event_of(&mut self, id: u32) -> Option<Event> {
        let i = self.to_main.iter().position(|(from, _, _)| *from == id)?;
        self.take_to_main(i).map(|(_, _, e)| e)
    }

    /// Drops every event of worker `id` from `to_main`.
    fn forget_worker_events(&mut self, id: u32) {
        self.to_main.retain(|(from, _, _)| *from != id);
        self.to_main_bytes = self.to_main.iter().map(|(_, _, e)| e.bytes()).sum();
    }
}

/// The one live worker.
struct Slot {
    id: u32,
    /// Its limits; the queue limits hold in both directions.
    limits: Limits,
    inbox: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes of the messages in `inbox`.
    inbox_bytes: usize,
    listening: bool,
    /// Running a turn (or not started yet).
    busy: bool,
    timer_due: Option<Instant>,
    stop: Arc<AtomicBool>,
    /// What its store uses (set once the store exists).
    usage: Option<Arc<crate::limits::Usage>>,
}

impl Slot {
    fn idle(&self) -> bool {
        !self.busy && self.timer_due.is_none() && (self.inbox.is_empty() || !self.listening)
    }
}

enum WorkerJob {
    /// Messages that are ready, in order (a batch, each its own turn).
    Messages(Vec<Vec<u8>>),
    Timer,
    Stop,
}

fn due_after(ms: Option<u64>) -> Option<Instant> {
    ms.map(|ms| Instant::now() + Duration::from_millis(ms))
}

impl Program {
    pub(crate) fn new(
        runtime: &Runtime,
        project: Project,
        output: Output,
        limits: Limits,
    ) -> Result<Arc<Program>> {
        let inner = &runtime.inner;
        let live = inner.usage.instances.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(cap) = inner.caps.instance_cap().filter(|cap| live > *cap) {
            inner.usage.instances.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::HostLimit(format!(
                "at most {cap} live mini-program instances"
            )));
        }
        Ok(Arc::new(Program {
            runtime: runtime.inner.clone(),
            project,
            output,
            limits,
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            main_cv: Signal::default(),
            worker_cv: Signal::default(),
            main_errors: AtomicU64::new(0),
            main_wakers: Mutex::new(Vec::new()),
            worker_threads: Mutex::new(0),
            worker_threads_cv: Condvar::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        relock(&self.state)
    }

    /// Wakes the main thread, blocked or async; called with the state lock
    /// held, like every notification.
    fn notify_main(&self, locked: &MutexGuard<'_, State>) {
        self.main_cv.notify(locked);
        let wakers = std::mem::take(&mut *self.main_wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }

    /// Polls for worker `id`'s next event: `Ready(None)` once the worker
    /// ended and all its events were taken.
    pub(crate) fn poll_from_worker(&self, id: u32, cx: &mut std::task::Context<'_>) -> Poll<Option<Event>> {
        let mut st = self.lock();
        if let Some(event) = st.take_event_of(id) {
            return Poll::Ready(Some(event));
        }
        if st.worker.as_ref().is_none_or(|s| s.id != id) {
            return Poll::Ready(None);
        }
        // Registered under the state lock: the next notification wakes it.
        self.main_wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(cx.waker().clone());
        Poll::Pending
    }

    /// How the worker `id` ended, once it did.
    pub(crate) fn ended_error(&self, id: u32) -> Error {
        self.lock().ended_error(id)
    }

    // ---- diagnostics and console ----------------------------------------------

    /// One of the host's own diagnostics: stderr in `run` (a JSON line on
    /// stdout with `--json`), a tracing event in library mode.
    pub(crate) fn report(&self, report: Report<'_>) {
        match self.output {
            Output::Print { json: true } => print_json(&report.to_json()),
            Output::Print { json: false } => eprintln!("{report}"),
            Output::Events => tracing::info!("{report}"),
        }
    }

    /// Whether the main thread is Rust code, which takes messages decoded.
    pub(crate) fn wants_decoded(&self) -> bool {
        self.output == Output::Events
    }

    pub(crate) fn console(&self, role: Role, level: ConsoleLevel, args: Vec<String>) {
        match (self.output, role) {
            (Output::Print { json: true }, _) => print_json(&serde_json::json!({
                "type": "console", "source": role.source(), "level": level.as_str(), "args": args,
            })),
            (Output::Print { json: false }, Role::Main) => print_console("[main] ", &args.join(" ")),
            (Output::Print { json: false }, Role::Worker(_)) => print_console("[worker] ", &args.join(" ")),
            (Output::Events, Role::Worker(id)) => {
                // A terminated worker's last lines have nobody to go to.
                let _ = self.push_from_worker(id, Event::Console(level, args));
            }
            (Output::Events, Role::Main) => tracing::info!("[main] {}", args.join(" ")),
        }
    }

    pub(crate) fn main_uncaught_error(&self, error: JsError) {
        self.main_errors.fetch_add(1, Ordering::Relaxed);
        self.report(Report::Uncaught {
            source: "main",
            error: &error,
        });
    }

    // ---- the worker slot ---------------------------------------------------------

    /// `createWorker`: checks the path and the one-worker rule, then starts
    /// the worker on a thread of its own.
    pub(crate) fn create_worker(self: &Arc<Self>, script: &str, limits: Limits) -> Result<u32> {
        let (path, source) = self.project.worker_script(script).map_err(Error::BadScript)?;
        let stop = Arc::new(AtomicBool::new(false));
        let id = {
            let mut st = self.lock();
            if st.worker.is_some() {
                return Err(Error::WorkerLimit);
            }
            let id = st.next_id;
            st.next_id += 1;
            st.worker = Some(Slot {
                id,
                limits: limits.clone(),
                inbox: VecDeque::new(),
                inbox_bytes: 0,
                listening: false,
                busy: true,
                timer_due: None,
                stop: stop.clone(),
                usage: None,
            });
            id
        };
        let program = self.clone();
        *self.threads() += 1;
        let spawned = std::thread::Builder::new()
            .name(format!("miniworker-worker-{id}"))
            .stack_size(GUEST_THREAD_STACK)
            .spawn(move || {
                program.clone().worker_thread(id, path, source, stop, limits);
                *program.threads() -= 1;
                program.worker_threads_cv.notify_all();
            });
        if let Err(e) = spawned {
            *self.threads() -= 1;
            self.lock().worker = None;
            return Err(Error::Engine(format!("cannot start the worker thread: {e}")));
        }
        Ok(id)
    }

    fn threads(&self) -> MutexGuard<'_, usize> {
        self.worker_threads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no worker thread of this program runs, at most `timeout`;
    /// whether none does.
    pub(crate) fn wait_worker_threads(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut threads = self.threads();
        while *threads > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            threads = match self.worker_threads_cv.wait_timeout(threads, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Queues a message toward worker `id`.
    pub(crate) fn post_to_worker(&self, id: u32, data: Vec<u8>) -> Result<()> {
        let mut st = self.lock();
        match st.worker.as_mut() {
            Some(slot) if slot.id == id => {
                let why = queue_full(&slot.limits, slot.inbox.len(), slot.inbox_bytes, data.len());
                if let Some(why) = why {
                    return Err(Error::QueueFull(format!(
                        "the queue toward the worker is full ({why})"
                    )));
                }
                slot.inbox_bytes += data.len();
                slot.inbox.push_back((Instant::now(), data));
                self.worker_cv.notify(&st);
                Ok(())
            }
            _ => Err(st.ended_error(id)),
        }
    }

    /// `terminate()`: frees the slot at once and stops the worker's guest,
    /// even inside `while (true) {}`. Returns how many messages toward it
    /// were discarded. Idempotent.
    pub(crate) fn terminate_worker(&self, id: u32) -> usize {
        let discarded = {
            let mut st = self.lock();
            let Some(slot) = st.worker.take_if(|s| s.id == id) else {
                return 0;
            };
            slot.stop.store(true, Ordering::Release);
            st.forget_worker_events(id);
            st.ended = Some((id, Error::Terminated));
            st.discarded += slot.inbox.len() as u64;
            self.worker_cv.notify(&st);
            self.notify_main(&st);
            slot.inbox.len()
        };
        self.runtime.interrupt();
        if discarded > 0 {
            self.report(Report::Discarded {
                count: discarded as u64,
                why: "queued toward the terminated worker",
            });
        }
        discarded
    }

    /// Queues an event of worker `id` toward the main thread. A message that
    /// does not fit the queue is refused (back-pressure for the sender); a
    /// console line or error that does not fit is dropped and counted. Fails
    /// when that worker is no longer the live one.
    pub(crate) fn push_from_worker(&self, id: u32, event: Event) -> std::result::Result<(), String> {
        let mut st = self.lock();
        let Some(limits) = st
            .worker
            .as_ref()
            .filter(|s| s.id == id)
            .map(|s| s.limits.clone())
        else {
            return Err("worker was terminated".into());
        };
        let bytes = event.bytes();
        if let Some(why) = queue_full(&limits, st.to_main.len(), st.to_main_bytes, bytes) {
            if matches!(event, Event::Message(..)) {
                return Err(format!("the queue toward the main thread is full ({why})"));
            }
            st.dropped_events += 1;
            return Ok(());
        }
        let now = Instant::now();
        if st.dropped_events > 0 {
            let notice = format!(
                "({} worker console lines or errors dropped: the queue toward the main thread was full)",
                st.dropped_events
            );
            st.dropped_events = 0;
            st.to_main_bytes += notice.len();
            st.to_main
                .push_back((id, now, Event::Console(ConsoleLevel::Warn, vec![notice])));
        }
        st.to_main_bytes += bytes;
        st.to_main.push_back((id, now, event));
        self.notify_main(&st);
        Ok(())
    }

    fn worker_killed(&self, id: u32, reason: KillReason, message: String) {
        let mut st = self.lock();
        let Some(slot) = st.worker.take_if(|s| s.id == id) else {
            return;
        };
        st.discarded += slot.inbox.len() as u64;
        st.ended = Some((id, Error::Killed(reason)));
        // The kill is always queued, past the limits: it is the last event.
        let event = Event::Killed(reason, message.clone());
        st.to_main_bytes += event.bytes();
        st.to_main.push_back((id, Instant::now(), event));
        self.notify_main(&st);
        drop(st);
        self.report(Report::Killed {
            source: "worker",
            reason,
            message: &message,
        });
    }

    /// Records the state a worker turn ended with; the worker is idle until
    /// its next job.
    fn worker_turn_done(&self, id: u32, state: TurnState) {
        let mut st = self.lock();
        if let Some(slot) = st.worker.as_mut().filter(|s| s.id == id) {
            slot.busy = false;
            slot.listening = state.listening;
            slot.timer_due = due_after(state.next_timer_ms);
            self.notify_main(&st);
        }
    }

    /// Waits for worker `id`'s next job: its due timer, or the messages that
    /// became ready before it (when it has a listener), at most [`BATCH`].
    fn next_worker_job(&self, id: u32) -> WorkerJob {
        let mut st = self.lock();
        loop {
            let Some(slot) = st.worker.as_mut().filter(|s| s.id == id) else {
                return WorkerJob::Stop;
            };
            let now = Instant::now();
            let timer_ready = slot.timer_due.filter(|due| *due <= now);
            let message_first = slot
                .inbox
                .front()
                .filter(|_| slot.listening)
                .is_some_and(|(at, _)| timer_ready.is_none_or(|due| *at < due));
            if message_first {
                slot.busy = true;
                let mut batch = Vec::new();
                while let Some((at, _)) = slot.inbox.front() {
                    if batch.len() == BATCH || timer_ready.is_some_and(|due| *at >= due) {
                        break;
                    }
                    let Some((_, data)) = slot.inbox.pop_front() else {
                        break;
                    };
                    slot.inbox_bytes = slot.inbox_bytes.saturating_sub(data.len());
                    batch.push(data);
                }
                return WorkerJob::Messages(batch);
            }
            if timer_ready.is_some() {
                slot.busy = true;
                slot.timer_due = None;
                return WorkerJob::Timer;
            }
            let timeout = slot.timer_due.map(|due| due - now);
            st = self.worker_cv.wait(&self.state, st, timeout);
        }
    }

    fn worker_thread(
        self: Arc<Self>,
        id: u32,
        path: String,
        source: String,
        stop: Arc<AtomicBool>,
        limits: Limits,
    ) {
        if let Err(e) = self.run_worker(id, &path, &source, stop.clone(), limits) {
            if stop.load(Ordering::Acquire) {
                return; // terminated: nothing more to say
            }
            let (reason, message) = classify(&e);
            self.worker_killed(id, reason, message);
        }
    }

    fn run_worker(
        self: &Arc<Self>,
        id: u32,
        path: &str,
        source: &str,
        stop: Arc<AtomicBool>,
        limits: Limits,
    ) -> wasmtime::Result<()> {
        let runtime = self.runtime.clone();
        let mut store = runtime.new_store(HostState::new(self.clone(), Role::Worker(id), stop, limits));
        if let Some(slot) = self.lock().worker.as_mut().filter(|s| s.id == id) {
            slot.usage = Some(store.data().memory.usage.clone());
        }
        let guest = runtime.worker_pre.instantiate(&mut store)?;
        let turns = guest.miniworker_sandbox_turns();
        let events = guest.miniworker_sandbox_worker_events();
        let limits = store.data().guest_limits();
        let filename = format!("/{path}");
        let state = self
            .turn(&mut store, |s| turns.call_start(s, &filename, source, limits))?
            .map_err(wasmtime::Error::msg)?;
        self.worker_turn_done(id, state);
        loop {
            let state = match self.next_worker_job(id) {
                WorkerJob::Messages(batch) => {
                    self.turn(&mut store, |s| events.call_deliver_messages(s, &batch))?
                }
                WorkerJob::Timer => self.turn(&mut store, |s| turns.call_run_timer(s))?,
                WorkerJob::Stop => return Ok(()),
            };
            self.worker_turn_done(id, state);
        }
    }

    /// Runs one call into a guest as a turn: a fresh CPU-time and console
    /// budget, the epoch ticking meanwhile, and a notice of the console
    /// lines the turn's budget dropped.
    fn turn<R>(
        &self,
        store: &mut Store<HostState>,
        call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        store.data_mut().budget = TurnBudget::new();
        let result = {
            let _running = self.runtime.guest_running();
            call(store)
        };
        store.data_mut().end_turn();
        let cpu = crate::limits::thread_cpu_time().as_nanos() as u64;
        store.data().memory.usage.cpu_nanos.store(cpu, Ordering::Relaxed);
        result
    }

    // ---- the main thread -------------------------------------------------------

    /// Waits for the main thread's next job: a deliverable worker event or a
    /// due timer, in the order they became ready; or quiescence, or timeout.
    fn next_main_job(&self, main: &MainState) -> MainJob {
        let mut st = self.lock();
        loop {
            if st.timed_out {
                return MainJob::TimedOut;
            }
            let now = Instant::now();
            // A message waits for a listener; the events behind it wait too.
            let head_at = st
                .to_main
                .front()
                .filter(|(_, _, ev)| main.listening || !matches!(ev, Event::Message(..)))
                .map(|(_, at, _)| *at);
            let timer_ready = main.timer_due.filter(|due| *due <= now);
            match (head_at, timer_ready) {
                (Some(at), Some(due)) if due <= at => return MainJob::Timer,
                (Some(_), _) => {
                    if let Some((id, _, event)) = st.take_to_main(0) {
                        return MainJob::Event(id, event);
                    }
                }
                (None, Some(_)) => return MainJob::Timer,
                (None, None) => {}
            }
            let quiescent = main.timer_due.is_none() && st.worker.as_ref().is_none_or(Slot::idle);
            if quiescent {
                return MainJob::Quiescent;
            }
            let timeout = main.timer_due.map(|due| due.saturating_duration_since(now));
            st = self.main_cv.wait(&self.state, st, timeout);
        }
    }

    fn set_timed_out(&self) {
        let mut st = self.lock();
        st.timed_out = true;
        self.notify_main(&st);
    }

    /// Ends the program: terminates the worker and discards what is left.
    pub(crate) fn shut_down(&self) -> u64 {
        let id = self.lock().worker.as_ref().map(|s| s.id);
        if let Some(id) = id {
            self.terminate_worker(id);
        }
        let mut st = self.lock();
        let left = st
            .to_main
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::Message(..)))
            .count() as u64;
        st.to_main.clear();
        st.to_main_bytes = 0;
        st.discarded += left;
        if left > 0 {
            drop(st);
            self.report(Report::Discarded {
                count: left,
                why: "without a listener at exit",
            });
            st = self.lock();
        }
        st.discarded
    }
}

/// Why a queue holding `count` messages of `bytes` bytes cannot take one of
/// `adding` bytes under `limits`, if it cannot.
fn queue_full(limits: &Limits, count: usize, bytes: usize, adding: usize) -> Option<String> {
    if count >= limits.queue_message_count() {
        Some(format!("{} messages", limits.queue_message_count()))
    } else if bytes.saturating_add(adding) > limits.queue_byte_count() {
        Some(format!("{} bytes", limits.queue_byte_count()))
    } else {
        None
    }
}

/// How long a waiting thread spins (yielding its CPU) before it sleeps: a
/// wake-up within it costs no futex sleep and wake, which on a shared
/// machine takes tens of microseconds. A wait that ends in sleep costs at
/// most this much CPU.
const SPIN: Duration = Duration::from_micros(50);

/// A condition variable over the program's state that a waiter first spins
/// on. Every notification is made with the state's lock held (the guard is
/// the proof), which is what lets a sleeping waiter never miss one and a
/// notification with no sleeper skip the system call.
#[derive(Default)]
struct Signal {
    cv: Condvar,
    /// Bumped by every notification.
    seq: AtomicU64,
    /// Waiters asleep on `cv` (or about to be).
    sleepers: AtomicUsize,
}

impl Signal {
    fn notify(&self, _locked: &MutexGuard<'_, State>) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.cv.notify_all();
        }
    }

    /// Waits for a notification, at most `timeout`; the caller re-checks
    /// the state either way.
    fn wait<'a>(
        &self,
        mutex: &'a Mutex<State>,
        guard: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        let seen = self.seq.load(Ordering::SeqCst);
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        drop(guard);
        let spin_until = start + timeout.map_or(SPIN, |t| t.min(SPIN));
        while Instant::now() < spin_until {
            if self.seq.load(Ordering::SeqCst) != seen {
                return relock(mutex);
            }
            std::thread::yield_now();
        }
        let guard = relock(mutex);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let guard = if self.seq.load(Ordering::SeqCst) != seen {
            guard
        } else {
            match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(t) => match self.cv.wait_timeout(guard, t) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                },
                None => self.cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        guard
    }
}

/// Locks the program's state. A panic elsewhere while holding the lock is a
/// host bug; the state stays usable.
fn relock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

struct MainState {
    timer_due: Option<Instant>,
    listening: bool,
}

impl MainState {
    fn update(&mut self, state: TurnState) {
        self.timer_due = due_after(state.next_timer_ms);
        self.listening = state.listening;
    }
}

enum MainJob {
    Event(u32, Event),
    Timer,
    Quiescent,
    TimedOut,
}

/// Maps a guest failure to a kill reason. Traps are classified by type,
/// never by message text.
pub(crate) fn classify(e: &wasmtime::Error) -> (KillReason, String) {
    if e.downcast_ref::<TestKill>().is_some() {
        return (KillReason::Test, TestKill.to_string());
    }
    if let Some(breach) = e.downcast_ref::<crate::limits::MemoryLimit>() {
        return (KillReason::Memory, breach.to_string());
    }
    if let Some(breach) = e.downcast_ref::<crate::limits::HostMemoryLimit>() {
        return (KillReason::Memory, breach.to_string());
    }
    if let Some(breach) = e.downcast_ref::<crate::limits::CpuTimeLimit>() {
        return (KillReason::CpuTime, breach.to_string());
    }
    if let Some(violation) = e.downcast_ref::<crate::codec::ProtocolViolation>() {
        return (KillReason::Crash, violation.to_string());
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => (KillReason::Stack, "the WebAssembly stack overflowed".into()),
        Some(trap) => (KillReason::Crash, format!("the guest trapped: {trap}")),
        None => (KillReason::Crash, format!("{e:#}")),
    }
}

/// A diagnostic of the host, for [`Program::report`].
pub(crate) enum Report<'a> {
    /// An uncaught error nobody else reported (`source`: `main` or `worker`).
    Uncaught {
        source: &'static str,
        error: &'a JsError,
    },
    /// A context was killed.
    Killed {
        source: &'static str,
        reason: KillReason,
        message: &'a str,
    },
    /// Messages were discarded, and why.
    Discarded { count: u64, why: &'static str },
}

impl Report<'_> {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Report::Uncaught { source, error } => json!({
                "type": "error", "source": source, "name": error.name, "message": error.message,
                "stack": error.stack, "filename": error.filename, "lineno": error.lineno,
            }),
            Report::Killed {
                source,
                reason,
                message,
            } => {
                json!({ "type": "killed", "source": source, "reason": reason.as_str(), "message": message })
            }
            Report::Discarded { count, why } => json!({ "type": "discarded", "count": count, "why": why }),
        }
    }
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Uncaught {
                source: "main",
                error,
            } => write!(f, "Uncaught {error}"),
            Report::Uncaught { source, error } => write!(f, "Uncaught (in {source}) {error}"),
            Report::Killed {
                source,
                reason,
                message,
            } => {
                let who = if *source == "main" {
                    "main thread"
                } else {
                    "worker"
                };
                write!(f, "miniworker: {who} killed ({reason}): {message}")
            }
            Report::Discarded { count, why } => {
                write!(f, "miniworker: {count} message(s) {why} were discarded")
            }
        }
    }
}

impl Role {
    /// `main` or `worker`, as JSON output names the source.
    fn source(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Worker(_) => "worker",
        }
    }
}

impl ConsoleLevel {
    /// `log`, `info`, `warn`, `error` or `debug`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleLevel::Log => "log",
            ConsoleLevel::Info => "info",
            ConsoleLevel::Warn => "warn",
            ConsoleLevel::Error => "error",
            ConsoleLevel::Debug => "debug",
        }
    }
}

/// One JSON line on stdout (`run --json`).
pub(crate) fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not bring the host down.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn print_console(prefix: &str, text: &str) {
    let mut out = std::io::stdout().lock();
    for line in text.split('\n') {
        // A closed stdout must not bring the host down.
        let _ = writeln!(out, "{prefix}{line}");
    }
    let _ = out.flush();
}

/// How a `run` of a JavaScript main thread ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The mini-program became quiescent (worker errors and kills included).
    Normal,
    /// The main thread had an uncaught error or unhandled rejection.
    UncaughtError,
    /// The main thread itself was killed.
    Killed(KillReason),
    /// The timeout was reached.
    TimedOut,
}

impl ExitStatus {
    /// The process exit code of `miniworker run` (SPEC section 7).
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Normal => 0,
            ExitStatus::UncaughtError => 1,
            ExitStatus::Killed(_) => 3,
            ExitStatus::TimedOut => 124,
        }
    }
}

impl Program {
    /// Runs `app.js` as the main thread until the mini-program is quiescent
    /// or `deadline` passes.
    pub(crate) fn run_main(self: &Arc<Self>, source: &str, deadline: Option<Instant>) -> ExitStatus {
        let stop = Arc::new(AtomicBool::new(false));
        let watchdog = deadline.map(|deadline| Watchdog::start(self.clone(), stop.clone(), deadline));
        // The main context gets a thread of its own, with a stack sized for
        // Wasmtime's guest stack (the caller's may be smaller).
        let (program, source, thread_stop) = (self.clone(), source.to_owned(), stop.clone());
        let result = std::thread::Builder::new()
            .name("miniworker-main".into())
            .stack_size(GUEST_THREAD_STACK)
            .spawn(move || program.main_loop(&source, thread_stop))
            .map_err(|e| wasmtime::Error::msg(format!("cannot start the main thread: {e}")))
            .and_then(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err(wasmtime::Error::msg("the main thread panicked")))
            });
        drop(watchdog);
        let status = match result {
            Ok(()) if self.lock().timed_out => ExitStatus::TimedOut,
            Ok(()) if self.main_errors.load(Ordering::Relaxed) > 0 => ExitStatus::UncaughtError,
            Ok(()) => ExitStatus::Normal,
            Err(_) if stop.load(Ordering::Acquire) => ExitStatus::TimedOut,
            Err(e) => {
                let (reason, message) = classify(&e);
                self.report(Report::Killed {
                    source: "main",
                    reason,
                    message: &message,
                });
                ExitStatus::Killed(reason)
            }
        };
        self.shut_down();
        status
    }

    fn main_loop(self: &Arc<Self>, source: &str, stop: Arc<AtomicBool>) -> wasmtime::Result<()> {
        let runtime = self.runtime.clone();
        let mut store = runtime.new_store(HostState::new(
            self.clone(),
            Role::Main,
            stop,
            self.limits.clone(),
        ));
        let guest = runtime.main_pre.instantiate(&mut store)?;
        let turns = guest.miniworker_sandbox_turns();
        let events = guest.miniworker_sandbox_main_events();
        let limits = store.data().guest_limits();
        let mut main = MainState {
            timer_due: None,
            listening: false,
        };
        main.update(
            self.turn(&mut store, |s| turns.call_start(s, "/app.js", source, limits))?
                .map_err(wasmtime::Error::msg)?,
        );
        main.update(self.turn(&mut store, |s| events.call_launch(s))?);
        loop {
            let state = match self.next_main_job(&main) {
                MainJob::Event(id, event) => {
                    use crate::bindings::main::exports::miniworker::sandbox::main_events::{
                        KillInfo, WorkerEvent,
                    };
                    let event = match event {
                        Event::Message(data, _) => WorkerEvent::Message(data),
                        Event::Error(e) => WorkerEvent::Error(e.into()),
                        Event::Killed(reason, message) => WorkerEvent::Killed(KillInfo {
                            reason: reason.as_str().to_string(),
                            message,
                        }),
                        // Printed by the worker's thread in this mode; never queued.
                        Event::Console(..) => continue,
                    };
                    self.turn(&mut store, |s| events.call_deliver_worker_event(s, id, &event))?
                }
                MainJob::Timer => self.turn(&mut store, |s| turns.call_run_timer(s))?,
                MainJob::Quiescent | MainJob::TimedOut => return Ok(()),
            };
            main.update(state);
        }
    }

    /// The next event of worker `id` for a host-program main thread, waiting
    /// at most `timeout`.
    pub(crate) fn recv_from_worker(&self, id: u32, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(event) = st.take_event_of(id) {
                return Some(event);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self.main_cv.wait(&self.state, st, Some(deadline - now));
        }
    }

    /// See [`crate::MiniProgram::stats`].
    pub(crate) fn stats(&self) -> crate::Stats {
        let st = self.lock();
        let slot = st.worker.as_ref();
        let usage = slot.and_then(|s| s.usage.as_ref());
        crate::Stats {
            worker_memory_bytes: usage.map_or(0, |u| u.memory.load(Ordering::Relaxed)),
            worker_cpu_time: Duration::from_nanos(usage.map_or(0, |u| u.cpu_nanos.load(Ordering::Relaxed))),
            queued_to_worker: slot.map_or(0, |s| s.inbox.len()),
            queued_to_worker_bytes: slot.map_or(0, |s| s.inbox_bytes),
            queued_to_main: st.to_main.len(),
            queued_to_main_bytes: st.to_main_bytes,
            discarded_messages: st.discarded,
        }
    }

    /// See [`crate::Worker::is_quiescent`].
    pub(crate) fn worker_quiescent(&self, id: u32) -> bool {
        let st = self.lock();
        st.worker.as_ref().filter(|s| s.id == id).is_none_or(Slot::idle)
            && !st.to_main.iter().any(|(from, _, _)| *from == id)
    }

    /// Messages discarded so far.
    pub(crate) fn discarded(&self) -> u64 {
        self.lock().discarded
    }
}

/// Ends a run at its deadline: stops the main thread's guest even inside
/// `while (true) {}`. Dropping it before the deadline cancels it.
struct Watchdog {
    cancel: Arc<(Mutex<bool>, Condvar)>,
}

impl Watchdog {
    fn start(program: Arc<Program>, stop: Arc<AtomicBool>, deadline: Instant) -> Watchdog {
        let cancel = Arc::new((Mutex::new(false), Condvar::new()));
        let theirs = cancel.clone();
        std::thread::spawn(move || {
            let (lock, cv) = &*theirs;
            let mut cancelled = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !*cancelled {
                let now = Instant::now();
                if now >= deadline {
                    stop.store(true, Ordering::Release);
                    program.set_timed_out();
                    program.runtime.interrupt();
                    return;
                }
                cancelled = match cv.wait_timeout(cancelled, deadline - now) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        });
        Watchdog { cancel }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.runtime.usage.instances.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.cancel;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_are_classified_by_type() {
        let cases: [(wasmtime::Error, KillReason); 6] = [
            (wasmtime::Error::new(TestKill), KillReason::Test),
            (
                crate::limits::MemoryLimit {
                    limit: 1 << 20,
                    desired: 2 << 20,
                }
                .into(),
                KillReason::Memory,
            ),
            (
                crate::limits::CpuTimeLimit {
                    limit: Duration::from_secs(1),
                }
                .into(),
                KillReason::CpuTime,
            ),
            (wasmtime::Trap::StackOverflow.into(), KillReason::Stack),
            (wasmtime::Trap::UnreachableCodeReached.into(), KillReason::Crash),
            (
                crate::codec::ProtocolViolation("bad".into()).into(),
                KillReason::Crash,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(classify(&error).0, reason, "{error:#}");
        }
    }
}
