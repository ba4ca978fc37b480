//! The public face of a mini-program instance: run its `app.js`, or be its
//! main thread from Rust.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::{Event, EventSink};
use crate::instance::{Instance, Outlet, Stats};
use crate::limits::Limits;
use crate::main_thread::{ExitStatus, RunControl, Running};
use crate::message::Encoded;
use crate::runtime::{Runtime, RuntimeInner};
use miniworker_codec::Message;
use miniworker_project::{Project, ProjectError};

/// Options of [`MiniProgram::run`].
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Stop the run after this long ([`ExitStatus::TimedOut`]).
    pub timeout: Option<Duration>,
    /// The limits of the main thread and of each worker.
    pub limits: Limits,
    /// Stops the run from another thread (a signal handler, say).
    pub control: RunControl,
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
    runtime: Arc<RuntimeInner>,
    instance: Arc<Instance>,
}

impl MiniProgram {
    /// An instance of `project` whose main thread is the calling Rust code:
    /// the worker's events arrive through [`Worker::recv_timeout`] and
    /// [`Worker::next_event`]. Fails only with [`Error::HostLimit`] (see
    /// [`crate::HostCaps`]).
    pub fn new(runtime: &Runtime, project: Project) -> Result<MiniProgram> {
        MiniProgram::with_limits(runtime, project, Limits::default())
    }

    /// [`MiniProgram::new`] with `limits` for each of its workers.
    pub fn with_limits(runtime: &Runtime, project: Project, limits: Limits) -> Result<MiniProgram> {
        Ok(MiniProgram {
            instance: runtime.inner.instance(project, limits, Outlet::Receiver)?,
            runtime: runtime.inner.clone(),
        })
    }

    /// Runs the project's `app.js` as the JavaScript main thread until the
    /// mini-program is quiescent (docs/spec.md section 7). Everything the run has
    /// to say (console lines of both contexts, uncaught errors, kills,
    /// dropped counts) goes to `sink`, in order; nothing is printed.
    pub fn run(
        runtime: &Runtime,
        project: Project,
        options: &RunOptions,
        sink: Arc<dyn EventSink>,
    ) -> Result<RunReport> {
        Ok(MiniProgram::start(runtime, project, options, sink)?.wait())
    }

    /// [`MiniProgram::run`] without waiting: the run goes on in the
    /// runtime's pool (no thread of its own while it waits) and the
    /// returned [`Running`] gives its report, blocking or as a future.
    pub fn start(
        runtime: &Runtime,
        project: Project,
        options: &RunOptions,
        sink: Arc<dyn EventSink>,
    ) -> Result<Running> {
        let source = project
            .app_js()
            .map_err(|p| Error::Project(ProjectError { problems: vec![p] }))?;
        let instance = runtime
            .inner
            .instance(project, options.limits.clone(), Outlet::Sink(sink))?;
        let deadline = options.timeout.and_then(|t| Instant::now().checked_add(t));
        crate::main_thread::start(&runtime.inner, &instance, source, &options.control, deadline)
    }

    /// `wx.createWorker(script_path)`: starts a worker, or fails when the path
    /// is refused or a worker is already running.
    pub fn create_worker(&self, script_path: &str) -> Result<Worker> {
        self.create_worker_with_limits(script_path, self.instance.limits.clone())
    }

    /// [`MiniProgram::create_worker`] with limits of its own for this worker
    /// (the queue limits hold in both directions of its channel).
    pub fn create_worker_with_limits(&self, script_path: &str, limits: Limits) -> Result<Worker> {
        let message_limit = limits.message_bytes();
        let start = self.instance.reserve_worker(script_path, limits)?;
        let id = start.id;
        crate::worker::spawn(self.runtime.clone(), self.instance.clone(), start)?;
        Ok(Worker {
            instance: self.instance.clone(),
            id,
            message_limit,
        })
    }

    /// Messages discarded so far.
    pub fn discarded_messages(&self) -> u64 {
        self.instance.discarded()
    }

    /// What the instance uses now: its worker's memory and CPU time, and
    /// what is queued in each direction.
    pub fn stats(&self) -> Stats {
        self.instance.stats()
    }

    /// Ends the instance: terminates its worker and waits at most
    /// `deadline` for the worker's context to be gone (whether it is).
    /// Dropping an instance terminates the worker without waiting.
    pub fn shutdown(self, deadline: Duration) -> bool {
        self.instance.shut_down();
        self.instance.wait_workers_ended(deadline)
    }

    /// Waits, at most `timeout`, until no worker context of this instance
    /// lives: `terminate()` frees the slot at once, and the terminated
    /// worker's context ends (its store and memory dropped) at its guest's
    /// next interrupt check. Returns whether they are all gone.
    pub fn wait_workers_ended(&self, timeout: Duration) -> bool {
        self.instance.wait_workers_ended(timeout)
    }
}

impl Drop for MiniProgram {
    fn drop(&mut self) {
        self.instance.shut_down();
    }
}

/// The future of [`Worker::next_event`].
pub struct NextEvent<'a> {
    worker: &'a Worker,
}

impl std::future::Future for NextEvent<'_> {
    type Output = Result<Event>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.worker.instance.poll_event(self.worker.id, cx)
    }
}

/// The future of [`Worker::quiescent`].
pub struct Quiescent<'a> {
    worker: &'a Worker,
}

impl std::future::Future for Quiescent<'_> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.worker.instance.poll_quiescent(self.worker.id, cx)
    }
}

/// A handle on a running worker, for a Rust main thread.
pub struct Worker {
    instance: Arc<Instance>,
    id: u32,
    /// The worker's own message-size limit (its limits may differ from the instance's).
    message_limit: usize,
}

impl Worker {
    /// `postMessage(message)`: queues a copy for the worker's `onMessage`
    /// listeners. Fails with [`Error::Message`] past the message size limit
    /// and with [`Error::QueueFull`] while the worker's queue is full.
    pub fn post_message(&self, message: &Message) -> Result<()> {
        self.post_encoded(Encoded::from_message(message, self.message_limit)?)
    }

    /// `postMessage` of a message already encoded (checked against this
    /// worker's message size limit).
    pub fn post_encoded(&self, message: Encoded) -> Result<()> {
        if message.len() > self.message_limit {
            return Err(crate::error::MessageError::TooLarge {
                limit: self.message_limit,
            }
            .into());
        }
        self.instance.post_to_worker(self.id, message)
    }

    /// `postMessage` of a JSON value.
    pub fn post_json(&self, value: &serde_json::Value) -> Result<()> {
        self.post_encoded(Encoded::from_json(value, self.message_limit)?)
    }

    /// The worker's next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Event>> {
        Ok(self.instance.recv(self.id, Instant::now().checked_add(timeout)))
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

    /// Resolves once the worker is quiescent ([`Worker::is_quiescent`]),
    /// for async code.
    pub fn quiescent(&self) -> Quiescent<'_> {
        Quiescent { worker: self }
    }

    /// Whether the worker is quiescent (docs/spec.md section 7): neither running nor
    /// holding a pending timer, no message queued toward it that it could
    /// take, and none of its events waiting to be received. A worker that
    /// ended is quiescent.
    pub fn is_quiescent(&self) -> bool {
        self.instance.worker_quiescent(self.id)
    }

    /// `terminate()`: stops the worker and frees the slot at once. Returns
    /// how many messages toward it were discarded. Idempotent.
    pub fn terminate(&self) -> usize {
        self.instance.terminate_worker(self.id)
    }
}
