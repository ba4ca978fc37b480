//! The one Wasmtime configuration of miniworker.
//!
//! Code precompiled for an engine loads only into an engine with the same
//! settings, so the host and the build step that precompiles the guest
//! components (`miniworker-precompile`) both take their engine from here.

use wasmtime::{Config, Engine, Result};

/// Wasmtime's stack for guest code. QuickJS checks its own stack (at most
/// 896 KiB of the guest's shadow stack), but the native frames of the
/// interpreter under that recursion take 8-16 times as much (docs/building.md):
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
    // Profiling: `perf` names the guests' functions from /tmp/perf-PID.map
    // (docs/BENCHMARKS.md). The machine code is the same.
    if std::env::var_os("MINIWORKER_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// The settings of the build step that precompiles the guest components:
/// [`config`], compiling for a baseline CPU of this architecture (no
/// feature beyond it), so the embedded machine code runs on any machine of
/// it. `MINIWORKER_NATIVE=1` compiles for the build machine's CPU instead
/// (faster code, for a binary that runs where it was built). Wasmtime
/// accepts code compiled without a feature on a host that has it, never
/// the other way round.
pub fn precompile_config() -> Result<Config> {
    let mut config = config();
    if std::env::var_os("MINIWORKER_NATIVE").is_none_or(|v| v != "1") {
        // Naming the target turns off the detection of the build machine's
        // CPU features.
        config.target(&format!(
            "{}-unknown-{}-gnu",
            std::env::consts::ARCH,
            std::env::consts::OS
        ))?;
    }
    Ok(config)
}

/// A new engine with [`config`].
pub fn engine() -> Result<Engine> {
    Engine::new(&config())
}
