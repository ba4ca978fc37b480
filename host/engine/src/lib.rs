//! The one Wasmtime configuration of miniworker.
//!
//! Code precompiled for an engine loads only into an engine with the same
//! settings, so the host and the build step that precompiles the guest
//! components (`miniworker-precompile`) both take their engine from here.

use wasmtime::{Config, Engine, Result};

/// Wasmtime's stack for guest code. QuickJS recursion inside wasm uses it.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// The settings every miniworker engine uses.
pub fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Epoch interruption is how `terminate()` (and later the CPU-time limit)
    // stops a guest inside `while (true) {}`: the host bumps the epoch and the
    // store's deadline callback decides whether this store stops.
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    config
}

/// A new engine with [`config`].
pub fn engine() -> Result<Engine> {
    Engine::new(&config())
}
