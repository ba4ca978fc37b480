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
pub mod native;
mod state;

pub use context::{Context, Hooks, JsError, Level, Limits, TurnState, max_message, throw_error};
pub use javy::quickjs;
pub use miniworker_codec::DEFAULT_MAX_MESSAGE;

/// Writes one byte at the far end of the stack, in the first page of linear
/// memory, when a build step snapshots the component (`initialize`).
///
/// Why: the snapshot's memory image starts at its first non-zero page. The
/// stack sits below the data (`--stack-first`) and only its top few pages
/// are ever written, so without this byte the image starts near 1 MiB and
/// each context's memory is three mappings (zero pages, image, reservation).
/// With it the image starts at page 0 and a context takes two, one mapping
/// fewer per context against the host's `vm.max_map_count` (docs/BENCHMARKS.md).
/// The stack never reaches this byte: getting there is a stack overflow,
/// which QuickJS's stack check turns into a `RangeError` long before.
pub fn anchor_image() {
    #[cfg(target_arch = "wasm32")]
    {
        unsafe extern "C" {
            /// The lowest address of the stack (wasm-ld).
            static mut __stack_low: u8;
        }
        // SAFETY: `__stack_low` is the stack's far end in linear memory; the
        // byte written is inside the stack region and in its first page.
        unsafe {
            let low = &raw mut __stack_low;
            let last_of_page = 4095 - (low as usize % 4096);
            low.wrapping_add(last_of_page).write_volatile(1);
        }
    }
}

/// The JavaScript of the worker role.
pub const WORKER_PRELUDE: &str = include_str!("../js/worker.js");
/// The JavaScript of the main-thread role.
pub const MAIN_PRELUDE: &str = include_str!("../js/main.js");
