//! What an instance has to say to its embedder. The library never prints:
//! console lines, uncaught errors, kills and dropped counts are [`Event`]s,
//! handed to the Rust main thread ([`crate::Worker::recv_timeout`]) or to the
//! [`EventSink`] of a run of `app.js` ([`crate::MiniProgram::run`]).

use crate::error::{JsError, KillReason};
use crate::message::Encoded;

/// Which context an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The JavaScript main thread (`app.js`).
    Main,
    /// The worker.
    Worker,
}

impl Source {
    /// `main` or `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Main => "main",
            Source::Worker => "worker",
        }
    }
}

/// The level of a console line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// What was dropped or discarded (docs/spec.md section 5: nothing is lost silently).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dropped {
    /// Console lines past a turn's console budget.
    ConsoleLines,
    /// Worker console lines and errors the full queue toward the main
    /// thread refused.
    WorkerEvents,
    /// Messages queued toward a worker that was terminated or killed.
    MessagesToWorker,
    /// Messages left waiting for an `onMessage` listener when the
    /// mini-program ended.
    MessagesWithoutListener,
}

impl Dropped {
    /// The name the JSON outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::ConsoleLines => "console-lines",
            Dropped::WorkerEvents => "worker-events",
            Dropped::MessagesToWorker => "messages-to-worker",
            Dropped::MessagesWithoutListener => "messages-without-listener",
        }
    }
}

/// One thing an instance has to say, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A context is up and its entry file starts running: the first event
    /// of a worker for a Rust main thread, and of a run (`app.js`).
    Ready {
        /// Which context.
        source: Source,
    },
    /// `worker.postMessage(value)`, for a Rust main thread.
    Message(Encoded),
    /// A console call.
    Console {
        /// Who called it.
        source: Source,
        /// The console method.
        level: ConsoleLevel,
        /// Each argument, formatted (strings as they are, other values in a
        /// readable JSON-like form).
        args: Vec<String>,
    },
    /// An uncaught exception or unhandled rejection that no JavaScript
    /// listener took (for a Rust main thread: every worker error).
    Error {
        /// Where it was thrown.
        source: Source,
        /// The error.
        error: JsError,
    },
    /// A context was killed; no event of it follows.
    Killed {
        /// Which context.
        source: Source,
        /// Why.
        reason: KillReason,
        /// A human-readable explanation.
        message: String,
    },
    /// Things were dropped or discarded, `count` of them.
    Dropped {
        /// What.
        what: Dropped,
        /// How many.
        count: u64,
    },
}

impl Event {
    /// The bytes the host keeps for it while it is queued (docs/spec.md section 5).
    pub(crate) fn byte_len(&self) -> usize {
        match self {
            Event::Message(m) => m.len(),
            Event::Console { args, .. } => line_len(args),
            Event::Error { error, .. } => error.byte_len(),
            Event::Killed { message, .. } => message.len(),
            Event::Dropped { .. } | Event::Ready { .. } => 16,
        }
    }
}

/// The length of a console line: its arguments joined by single spaces.
pub(crate) fn line_len(args: &[String]) -> usize {
    args.iter().map(String::len).sum::<usize>() + args.len().saturating_sub(1)
}

/// Where the events of a run of `app.js` go ([`crate::MiniProgram::run`]).
/// Called from the threads that run the contexts, in the order things
/// happened (a worker's console line before the main thread's reaction to
/// the worker's next message); it should not block for long.
pub trait EventSink: Send + Sync {
    /// Takes one event.
    fn event(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> EventSink for F {
    fn event(&self, event: Event) {
        self(event)
    }
}
