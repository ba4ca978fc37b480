//! miniworker runs mini-program *Worker* JavaScript inside a WebAssembly
//! sandbox.
//!
//! # Overview
//!
//! A mini-program project names a workers directory in `app.json`; its main
//! thread calls `wx.createWorker('workers/request/index.js')` and talks with
//! the worker through `postMessage` / `onMessage`. miniworker runs each
//! JavaScript context (the worker, and optionally `app.js` as the main thread)
//! in QuickJS compiled to a WebAssembly component, one [Wasmtime] store per
//! context on a thread of its own, and routes messages between them.
//!
//! - [`Runtime`]: the engine and the compiled guest components, shared by
//!   every mini-program in the process.
//! - [`Project`]: a checked project on disk (`app.json`, the workers directory).
//! - [`MiniProgram`]: one instance; [`MiniProgram::run`] runs its `app.js`,
//!   [`MiniProgram::create_worker`] makes the calling Rust code its main thread.
//!
//! ```
//! use std::time::Duration;
//! use miniworker::{Event, MiniProgram, Project, Runtime};
//!
//! let runtime = Runtime::new()?;
//! // The repository's examples/hello (doctests run in host/).
//! let program = MiniProgram::new(&runtime, Project::open("../examples/hello")?)?;
//! let worker = program.create_worker("workers/request/index.js")?;
//! worker.post_json(&serde_json::json!({ "msg": "hello worker" }))?;
//! let reply = loop {
//!     match worker.recv_timeout(Duration::from_secs(10))? {
//!         Some(Event::Message(reply)) => break reply.to_json()?,
//!         Some(_) => continue, // console lines, errors
//!         None => panic!("no reply"),
//!     }
//! };
//! assert_eq!(reply, serde_json::json!({ "msg": "hello main", "echo": "hello worker" }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The library never prints: what an instance has to say is an [`Event`]
//! (a message, a console line, an uncaught error, a kill, a dropped count),
//! received from the [`Worker`] by a Rust main thread, or handed to the
//! [`EventSink`] of [`MiniProgram::run`]. The `miniworker` command line
//! renders them.
//!
//! # Security model
//!
//! - **Files**: the project root is opened once, as a capability
//!   ([`Project::open`] is the only use of ambient authority). Worker code
//!   reads nothing itself: the host reads entry files and every required or
//!   imported module through the root's `cap_std::fs::Dir`, refusing symlinks at every path step, anything but
//!   regular `.js` files of at most 16 MiB, and paths that normalise outside
//!   the workers directory.
//! - **Imports**: the worker component imports only the package's own
//!   `context` and `worker-host` interfaces (it cannot name `wx`), plus the
//!   WASI interfaces its toolchain links in; the host links every one of those
//!   to a context that grants nothing (no preopened directory, empty
//!   environment and arguments, closed stdin, discarded stdout/stderr).
//! - **Isolation**: each context has its own store and linear memory; a trap
//!   ends only that context's store. `terminate()` interrupts a guest even in
//!   an endless loop (epoch interruption).
//!
//! [Wasmtime]: https://wasmtime.dev

#![deny(missing_docs)]

mod api;
mod bindings;
mod capacity;
mod conversions;
mod epoch;
mod error;
mod event;
mod host;
mod instance;
mod kill;
mod limits;
mod main_thread;
mod message;
mod runtime;
mod scheduler;
mod signal;
mod wasi;
mod worker;

pub use api::{MiniProgram, NextEvent, Quiescent, RunOptions, RunReport, Worker};
pub use capacity::MAPPINGS_PER_CONTEXT;
pub use error::{Error, HostResource, JsError, KillReason, MessageError, QueueLimit, Result, Toward};
pub use event::{ConsoleLevel, Dropped, Event, EventSink, Source};
pub use instance::Stats;
pub use limits::{DEFAULT_MEMORY, DEFAULT_POOL_THREADS, HostCaps, Limits};
pub use main_thread::{ExitStatus, Finished, RunControl, Running};
pub use message::Encoded;
pub use miniworker_codec::{DEFAULT_MAX_MESSAGE, Item, JsonError, Message, Node, ViewKind};
pub use miniworker_project::{CodeRole, Project, ProjectError};
pub use runtime::{HostStats, Runtime};
pub use wasi::ALLOWED_WASI_IMPORTS;
