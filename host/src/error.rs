//! The one public error type of the library, with payloads a caller can act
//! on (no caller needs to read an error's text).

use std::fmt;

use miniworker_project::ProjectError;

/// Why a worker (or a JavaScript main thread) was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KillReason {
    /// It used more memory than its limit.
    Memory,
    /// One turn used more CPU time than its limit.
    CpuTime,
    /// It overflowed the WebAssembly stack despite QuickJS's own check.
    Stack,
    /// It called `worker.testOnProcessKilled()`.
    Test,
    /// Any other trap, or a guest breaking the host protocol.
    Crash,
}

impl KillReason {
    /// The reason as JavaScript sees it: `"memory"`, `"cpu-time"`, `"stack"`, `"test"`, `"crash"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KillReason::Memory => "memory",
            KillReason::CpuTime => "cpu-time",
            KillReason::Stack => "stack",
            KillReason::Test => "test",
            KillReason::Crash => "crash",
        }
    }
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exception that no JavaScript code caught.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsError {
    /// `error.name` (`TypeError`), empty for a thrown non-Error.
    pub name: String,
    /// `String(error.message)`, or `String(value)` for a thrown non-Error.
    pub message: String,
    /// The stack trace, with project-relative paths.
    pub stack: String,
    /// The project-relative file (`/workers/a.js`), or empty when unknown.
    pub filename: String,
    /// The 1-based line in `filename`, or 0 when unknown.
    pub lineno: u32,
}

impl JsError {
    /// The bytes the host keeps for it: every string counts (docs/spec.md section 5).
    pub(crate) fn byte_len(&self) -> usize {
        self.name.len() + self.message.len() + self.stack.len() + self.filename.len() + 4
    }
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.name, self.message)?;
        }
        let stack = self.stack.trim_end();
        if !stack.is_empty() {
            write!(f, "\n{stack}")?;
        }
        Ok(())
    }
}

/// Which way a queue runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Toward {
    /// From the main thread to the worker.
    Worker,
    /// From the worker to the main thread.
    Main,
}

impl fmt::Display for Toward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Toward::Worker => "the worker",
            Toward::Main => "the main thread",
        })
    }
}

/// Which queue limit was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueLimit {
    /// This many messages are queued.
    Messages(usize),
    /// This many bytes are queued.
    Bytes(usize),
}

impl fmt::Display for QueueLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueLimit::Messages(n) => write!(f, "{n} messages"),
            QueueLimit::Bytes(n) => write!(f, "{n} bytes"),
        }
    }
}

/// Why a message could not be made or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Its encoding is larger than the message size limit.
    #[error("the message is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a valid message.
    #[error(transparent)]
    Malformed(#[from] miniworker_codec::DecodeError),
    /// The message has no JSON form (a cycle, too deep, too long a text).
    #[error(transparent)]
    NotJson(#[from] miniworker_codec::JsonError),
}

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The project on disk is unusable; every problem is listed.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// `createWorker` refused the script path (the reason, as JavaScript sees it).
    #[error("createWorker: {0}")]
    BadScript(String),
    /// A worker is already running: at most one per mini-program.
    #[error("createWorker: only one worker may run at a time; call terminate() on it first")]
    WorkerLimit,
    /// The worker was terminated.
    #[error("worker was terminated")]
    Terminated,
    /// The worker was killed.
    #[error("worker was killed: {0}")]
    Killed(KillReason),
    /// The queue toward the receiver is at its limit: back-pressure, nothing
    /// was queued. Try again once the receiver reads.
    #[error("the queue toward {toward} is full ({limit})")]
    QueueFull {
        /// Which queue.
        toward: Toward,
        /// The limit it is at.
        limit: QueueLimit,
    },
    /// A host-wide cap ([`crate::HostCaps`]) or the host's capacity
    /// ([`crate::HostStats::context_capacity`]) refused a new instance or
    /// context, at once.
    #[error("host limit: at most {cap} live {what}")]
    HostLimit {
        /// What ran out.
        what: HostResource,
        /// The cap it is at.
        cap: usize,
    },
    /// A message could not be encoded or decoded.
    #[error("bad message: {0}")]
    Message(#[from] MessageError),
    /// The WebAssembly engine failed (a bug or a broken build, never guest input).
    #[error("engine: {0:#}")]
    Engine(#[source] wasmtime::Error),
    /// Starting a thread failed, or reading the project failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a [`Error::HostLimit`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostResource {
    /// Live mini-program instances ([`crate::HostCaps::instances`]).
    Instances,
    /// Live contexts: a run's main thread, each worker
    /// ([`crate::HostCaps::contexts`], or the machine's capacity).
    Contexts,
}

impl std::fmt::Display for HostResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostResource::Instances => "mini-program instances",
            HostResource::Contexts => "contexts (the host's capacity)",
        })
    }
}
