//! The shared guest library of miniworker: everything the worker and the main
//! thread components have in common.
//!
//! A component crate (`guest/worker`, `guest/main`) owns the WIT bindings of
//! its world and hands this library plain function pointers for the host
//! calls every context needs ([`Hooks`]); this library never names a WIT
//! interface, so one role's imports cannot leak into the other's component.
//!
//! A context is one QuickJS runtime with the ECMAScript built-ins, the common
//! prelude (`js/common.js`: console, timers, `queueMicrotask`) and a role
//! prelude (`js/worker.js` or `js/main.js`). The host drives it in *turns*:
//! one macrotask, then a microtask checkpoint ([`Context::turn`]).

pub mod codec;
mod context;
mod glue;
mod modules;
mod state;

pub use context::{Context, Hooks, JsError, Level, Limits, TurnState, max_message, throw_error};
pub use javy::quickjs;
pub use miniworker_codec::DEFAULT_MAX_MESSAGE;

/// The JavaScript of the worker role.
pub const WORKER_PRELUDE: &str = include_str!("../js/worker.js");
/// The JavaScript of the main-thread role.
pub const MAIN_PRELUDE: &str = include_str!("../js/main.js");
