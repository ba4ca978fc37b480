//! The host side of the WIT package (`wit/`): the only `bindgen!` calls.

/// The `worker` world: what a worker component imports and exports.
pub mod worker {
    wasmtime::component::bindgen!({
        world: "worker",
        path: "../wit",
        imports: {
            // An outside payload under 64 KiB or over the message limit
            // kills its sender (reason `crash`).
            "miniworker:sandbox/context.post-outside": trappable,
            // `testOnProcessKilled` ends the worker with a trap of our own type.
            "miniworker:sandbox/worker-host.test-kill": trappable,
            // A malformed message kills its sender (reason `crash`).
            "miniworker:sandbox/worker-host.post-message": trappable,
        },
    });
}

/// The `main` world: the JavaScript main thread (`app.js`).
pub mod main {
    wasmtime::component::bindgen!({
        world: "main",
        path: "../wit",
        imports: {
            // A malformed message kills its sender (reason `crash`).
            "miniworker:sandbox/main-host.post-to-worker": trappable,
        },
        with: {
            // Shared with the worker world, so one host impl serves both.
            "miniworker:sandbox/types": super::worker::miniworker::sandbox::types,
            "miniworker:sandbox/context": super::worker::miniworker::sandbox::context,
        },
    });
}

pub use worker::miniworker::sandbox::types::{
    ContextLimits, JsError as WitJsError, LogLevel, Message as WitMessage, TurnState,
};
