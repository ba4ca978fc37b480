//! The one public error type of the library.

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

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The project on disk is unusable; every problem is listed.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// `createWorker` refused the script path.
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
    /// The queue toward the receiver is at its limit (messages or bytes):
    /// back-pressure, nothing was queued. Try again once the receiver reads.
    #[error("postMessage: {0}")]
    QueueFull(String),
    /// A host-wide cap ([`crate::HostCaps`]) refused a new instance.
    #[error("host limit: {0}")]
    HostLimit(String),
    /// A message could not be encoded or decoded.
    #[error("bad message: {0}")]
    Message(String),
    /// The WebAssembly engine failed (a bug or a broken build, never guest input).
    #[error("engine: {0}")]
    Engine(String),
    /// Reading the project failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
