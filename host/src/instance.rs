//! The public face of a mini-program instance: run its `app.js`, or be its
//! main thread from Rust.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Message;
use crate::error::{Error, JsError, KillReason, Result};
use crate::limits::Limits;
use crate::program::{ConsoleLevel, Event, ExitStatus, Output, Program};
use crate::runtime::Runtime;
use miniworker_project::{Project, ProjectError};

/// What a mini-program instance uses ([`MiniProgram::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Linear memory of the live worker, in bytes (0 without one).
    pub worker_memory_bytes: usize,
    /// CPU time of the live worker's thread, as of the end of its last turn.
    pub worker_cpu_time: Duration,
    /// Messages queued toward the worker.
    pub queued_to_worker: usize,
    /// Their encoded bytes.
    pub queued_to_worker_bytes: usize,
    /// Events queued toward the main thread (messages, console lines, errors).
    pub queued_to_main: usize,
    /// Their bytes.
    pub queued_to_main_bytes: usize,
    /// Messages discarded so far.
    pub discarded_messages: u64,
}

/// Options of [`MiniProgram::run`].
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop the run after this long (exit code 124).
    pub timeout: Option<Duration>,
    /// The limits of the main thread and of each worker.
    pub limits: Limits,
    /// Console lines and diagnostics as JSON lines on stdout (`run --json`)
    /// instead of `[main] ` lines and stderr.
    pub json: bool,
}

/// What a [`MiniProgram::run`] came to.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// How it ended.
    pub status: ExitStatus,
    /// Messages discarded: queued toward a worker that ended, or left
    /// without a listener at exit.
    pub discarded_messages: u64,
}

/// One mini-program instance: a main thread and at most one worker. Dropping
/// it terminates its worker.
pub struct MiniProgram {
    program: Arc<Program>,
}

impl MiniProgram {
    /// An instance of `project` whose main thread is the calling Rust code:
    /// worker console lines arrive as [`WorkerEvent::Console`], nothing is
    /// printed. Fails only with [`Error::HostLimit`] (see [`crate::HostCaps`]).
    pub fn new(runtime: &Runtime, project: Project) -> Result<MiniProgram> {
        MiniProgram::with_limits(runtime, project, Limits::default())
    }

    /// [`MiniProgram::new`] with `limits` for each of its workers.
    pub fn with_limits(runtime: &Runtime, project: Project, limits: Limits) -> Result<MiniProgram> {
        Ok(MiniProgram {
            program: Program::new(runtime, project, Output::Events, limits)?,
        })
    }

    /// Runs the project's `app.js` as the JavaScript main thread until the
    /// mini-program is quiescent (SPEC section 7), printing console lines on
    /// stdout and diagnostics on stderr, as `miniworker run` does.
    pub fn run(runtime: &Runtime, project: Project, options: &RunOptions) -> Result<RunReport> {
        let source = project
            .app_js()
            .map_err(|p| Error::Project(ProjectError { problems: vec![p] }))?;
        let program = Program::new(
            runtime,
            project,
            Output::Print { json: options.json },
            options.limits.clone(),
        )?;
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let status = program.run_main(&source, deadline);
        Ok(RunReport {
            status,
            discarded_messages: program.discarded(),
        })
    }

    /// `wx.createWorker(script_path)`: starts a worker, or fails when the path
    /// is refused or a worker is already running.
    pub fn create_worker(&self, script_path: &str) -> Result<Worker> {
        self.create_worker_with_limits(script_path, self.program.limits.clone())
    }

    /// [`MiniProgram::create_worker`] with limits of its own for this worker
    /// (the queue limits hold in both directions of its channel).
    pub fn create_worker_with_limits(&self, script_path: &str, limits: Limits) -> Result<Worker> {
        let message_limit = limits.message_bytes();
        let id = self.program.create_worker(script_path, limits)?;
        Ok(Worker {
            program: self.program.clone(),
            id,
            message_limit,
        })
    }

    /// Messages discarded so far.
    pub fn discarded_messages(&self) -> u64 {
        self.program.discarded()
    }

    /// What the instance uses now: its worker's memory and CPU time, and
    /// what is queued in each direction.
    pub fn stats(&self) -> Stats {
        self.program.stats()
    }

    /// Ends the instance: terminates its worker and waits at most
    /// `deadline` for the worker's thread to be gone (whether it is).
    /// Dropping an instance terminates the worker without waiting.
    pub fn shutdown(self, deadline: Duration) -> bool {
        self.program.shut_down();
        self.program.wait_worker_threads(deadline)
    }

    /// Waits, at most `timeout`, until no worker thread of this instance is
    /// running: `terminate()` frees the slot at once, and the terminated
    /// worker's thread ends at its guest's next interrupt check. Returns
    /// whether they are all gone.
    pub fn wait_worker_threads(&self, timeout: Duration) -> bool {
        self.program.wait_worker_threads(timeout)
    }
}

impl Drop for MiniProgram {
    fn drop(&mut self) {
        self.program.shut_down();
    }
}

/// An event of a worker, in the order it happened in the worker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// `worker.postMessage(value)`: the decoded copy ([`Message::to_json`] for JSON).
    Message(Message),
    /// A console call of the worker.
    Console {
        /// The console method.
        level: ConsoleLevel,
        /// The whole line: the arguments joined by spaces, as `run` prints it.
        text: String,
        /// Each argument, formatted (strings as they are, other values in a
        /// readable JSON-like form).
        args: Vec<String>,
    },
    /// An uncaught exception or unhandled rejection in the worker.
    Error(JsError),
    /// The worker was killed; no event follows.
    Killed {
        /// Why.
        reason: KillReason,
        /// A human-readable explanation.
        message: String,
    },
}

impl WorkerEvent {
    fn from_event(event: Event) -> Result<WorkerEvent> {
        Ok(match event {
            Event::Message(_, Some(message)) => WorkerEvent::Message(message),
            Event::Message(data, None) => {
                WorkerEvent::Message(Message::decode(&data).map_err(|e| Error::Message(e.to_string()))?)
            }
            Event::Console(level, args) => WorkerEvent::Console {
                level,
                text: args.join(" "),
                args,
            },
            Event::Error(e) => WorkerEvent::Error(e),
            Event::Killed(reason, message) => WorkerEvent::Killed { reason, message },
        })
    }
}

/// The future of [`Worker::next_event`].
pub struct NextEvent<'a> {
    worker: &'a Worker,
}

impl std::future::Future for NextEvent<'_> {
    type Output = Result<WorkerEvent>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Worker { program, id, .. } = self.worker;
        program.poll_from_worker(*id, cx).map(|event| match event {
            Some(event) => WorkerEvent::from_event(event),
            None => Err(program.ended_error(*id)),
        })
    }
}

/// A handle on a running worker, for a Rust main thread.
pub struct Worker {
    program: Arc<Program>,
    id: u32,
    /// The worker's own message-size limit (its limits may differ from the instance's).
    message_limit: usize,
}

impl Worker {
    /// `postMessage(message)`: queues a copy for the worker's `onMessage`
    /// listeners. Fails with [`Error::Message`] past the message size limit
    /// and with [`Error::QueueFull`] while the worker's queue is full.
    pub fn post_message(&self, message: &Message) -> Result<()> {
        let data = message
            .encode(self.message_limit)
            .map_err(|e| Error::Message(e.to_string()))?;
        self.program.post_to_worker(self.id, data)
    }

    /// `postMessage` of a JSON value.
    pub fn post_json(&self, value: &serde_json::Value) -> Result<()> {
        self.post_message(&Message::from_json(value))
    }

    /// The worker's next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<WorkerEvent>> {
        self.program
            .recv_from_worker(self.id, timeout)
            .map(WorkerEvent::from_event)
            .transpose()
    }

    /// The worker's next event, for async code (any executor, tokio
    /// included): fails with [`Error::Terminated`] or [`Error::Killed`] once
    /// the worker ended and all its events were received.
    ///
    /// ```no_run
    /// # async fn example(worker: &miniworker::Worker) -> miniworker::Result<()> {
    /// while let Ok(event) = worker.next_event().await {
    ///     println!("{event:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_event(&self) -> NextEvent<'_> {
        NextEvent { worker: self }
    }

    /// Whether the worker is quiescent (SPEC section 7): neither running nor
    /// holding a pending timer, no message queued toward it that it could
    /// take, and none of its events waiting to be received. A worker that
    /// ended is quiescent.
    pub fn is_quiescent(&self) -> bool {
        self.program.worker_quiescent(self.id)
    }

    /// `terminate()`: stops the worker and frees the slot at once. Returns
    /// how many messages toward it were discarded. Idempotent.
    pub fn terminate(&self) -> usize {
        self.program.terminate_worker(self.id)
    }
}
