//! The one Wasmtime configuration of miniworker.
//!
//! Code precompiled for an engine loads only into an engine with the same
//! settings, so the host and the build step that precompiles the guest
//! components (`miniworker-precompile`) both take their engine from here.

use wasmtime::{Config, Result};

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

/// Memory of an ended context's linear memory kept resident in its slot
/// (its written pages zeroed or copied back from the snapshot, instead of
/// dropped with `madvise`), so the next context in the slot takes no page
/// faults for it. An idle context's memory is about 1.4 MiB
/// (docs/BENCHMARKS.md); at least that much must be kept.
/// `miniworker-bench --section start`, two runs each: 0.107 ms with 4 MiB
/// kept, 0.108 ms with 2 MiB, 0.227 ms with 1 MiB (the same as with none,
/// and as the on-demand allocator). A slot's resident memory stays at most
/// this, whatever its last context grew to. Where Linux has the
/// `PAGEMAP_SCAN` ioctl (6.7 and later) only the pages the context wrote are
/// reset; otherwise all of the kept memory is copied or zeroed.
pub const KEEP_RESIDENT: usize = 2 << 20;

/// Memory of an ended context's tables kept resident in their slots, as
/// [`KEEP_RESIDENT`] is for its memory. The guests' function tables hold
/// about 760 entries (6 KiB), so a context's tables are kept whole.
pub const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Core instances (the guest module and Wasmtime's adapter shims) a
/// context's component instance may hold, for the pool's sizing.
pub const CORE_INSTANCES_PER_CONTEXT: u32 = 8;

/// [`config`] with Wasmtime's pooling allocator sized for `contexts` live
/// contexts: every slot (memory, tables, instances) is reserved when the
/// engine is made, 4 GiB of address space per context for its memory. A
/// context then starts without a `mmap` and, in a slot used before, without
/// page faults ([`KEEP_RESIDENT`], [`TABLE_KEEP_RESIDENT`]); an ended
/// context's slot is reset page by page, only where it was written
/// (`PAGEMAP_SCAN`, where the kernel has it). Resetting every kept byte
/// instead was a quarter of the CPU time of `app.js` starting workers one
/// after another (`perf`, 2026-12-03). The machine code is the same as
/// [`config`]'s, so precompiled components load into either.
pub fn pooled_config(contexts: u32) -> Config {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    let cores = contexts.saturating_mul(CORE_INSTANCES_PER_CONTEXT);
    pool.total_component_instances(contexts)
        .total_memories(contexts)
        .total_core_instances(cores)
        .total_tables(cores)
        // No async stacks: stores run synchronously.
        .total_stacks(0)
        .max_core_instances_per_component(CORE_INSTANCES_PER_CONTEXT)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .table_keep_resident(TABLE_KEEP_RESIDENT);
    let mut config = config();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
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
