//! The one Wasmtime configuration of miniworker.
//!
//! Code precompiled for an engine loads only into an engine with the same
//! settings, so the host and the build step that precompiles the guest
//! components (`miniworker-precompile`) both take their engine from here.

use wasmtime::{Config, Engine, Result};

/// Wasmtime's stack for guest code. QuickJS checks its own stack (at most
/// 896 KiB of the guest's shadow stack), but the native frames of the
/// interpreter under that recursion take 8-16 times as much (TOOLCHAIN.md):
/// this leaves room for the largest QuickJS stack, so deep recursion meets
/// QuickJS's catchable `RangeError` first.
pub const MAX_WASM_STACK: usize = 16 << 20;

/// The settings every miniworker engine uses.
pub fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Epoch interruption is how `terminate()` (and later the CPU-time limit)
    // stops a guest inside `while (true) {}`: the host bumps the epoch and the
    // store's deadline callback decides whether this store stops.
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Wasmtime refuses a `max_wasm_stack` above the async stack size, even
    // for a store that never runs async.
    config.async_stack_size(MAX_WASM_STACK + (1 << 20));
    config
}

/// A new engine with [`config`].
pub fn engine() -> Result<Engine> {
    Engine::new(&config())
}
