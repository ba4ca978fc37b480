//! Resource limits of one JavaScript context (docs/spec.md section 5), and the parts
//! of their enforcement that live on a store: the memory cap, per-turn CPU
//! time, and the per-turn console budget.

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Linear memory of one context, by default.
pub const DEFAULT_MEMORY: usize = 64 << 20;
/// QuickJS stack of one context, by default.
pub const DEFAULT_STACK: usize = 512 << 10;
/// The largest QuickJS stack a context may have: it must stay below the
/// guest's 1 MiB shadow stack, and Wasmtime's stack is sized for it
/// (`miniworker_engine::MAX_WASM_STACK`, 16 times as much).
pub const MAX_STACK: usize = 896 << 10;
/// The smallest QuickJS stack: below it the preludes cannot run.
pub const MIN_STACK: usize = 64 << 10;

/// Table elements one context may have: far above what QuickJS needs (a few
/// thousand function pointers), low enough that a table cannot become a
/// memory bomb of its own.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The resource limits of each JavaScript context of a mini-program: its main
/// thread (`app.js`) and its worker. [`Limits::default`] gives docs/spec.md's
/// defaults; each setter changes one:
///
/// ```
/// use std::time::Duration;
/// let limits = miniworker::Limits::default()
///     .memory(256 << 20)
///     .cpu_time(Duration::from_secs(1));
/// assert_eq!(limits.memory_bytes(), 256 << 20);
/// assert_eq!(limits.queue_message_count(), 10_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    memory: usize,
    stack: usize,
    cpu_time: Duration,
    message: usize,
    queue_messages: usize,
    queue_bytes: usize,
    timers: usize,
    console: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: DEFAULT_MEMORY,
            stack: DEFAULT_STACK,
            // Real workers compute for many seconds in one message (docs/spec.md section 5); a
            // host that needs tighter bounds sets them.
            cpu_time: Duration::from_secs(60),
            message: miniworker_codec::DEFAULT_MAX_MESSAGE,
            queue_messages: 10_000,
            queue_bytes: 64 << 20,
            timers: 10_000,
            console: 1 << 20,
        }
    }
}

impl Limits {
    /// Linear memory of one context, in bytes (default 64 MiB). Asking for
    /// more kills the context with reason `"memory"`.
    pub fn memory(mut self, bytes: usize) -> Limits {
        self.memory = bytes;
        self
    }

    /// QuickJS stack, in bytes (default 512 KiB, kept within 64-896 KiB).
    /// Deeper recursion throws a catchable `RangeError`.
    pub fn stack(mut self, bytes: usize) -> Limits {
        self.stack = bytes.clamp(MIN_STACK, MAX_STACK);
        self
    }

    /// Thread CPU time one turn may use (default 60 s); past it the context
    /// is killed with reason `"cpu-time"`. Time spent waiting for a CPU does
    /// not count.
    pub fn cpu_time(mut self, limit: Duration) -> Limits {
        self.cpu_time = limit;
        self
    }

    /// The largest encoded message, in bytes (default 16 MiB); a bigger post
    /// throws `RangeError` at the sender.
    pub fn message_size(mut self, bytes: usize) -> Limits {
        self.message = bytes.min(u32::MAX as usize);
        self
    }

    /// Messages queued per direction (default 10,000); a post beyond it
    /// throws `Error` at the sender.
    pub fn queue_messages(mut self, count: usize) -> Limits {
        self.queue_messages = count;
        self
    }

    /// Encoded bytes queued per direction (default 64 MiB); a post beyond it
    /// throws `Error` at the sender.
    pub fn queue_bytes(mut self, bytes: usize) -> Limits {
        self.queue_bytes = bytes;
        self
    }

    /// Live timers (default 10,000); `setTimeout`/`setInterval` beyond it
    /// throw `RangeError`.
    pub fn timers(mut self, count: usize) -> Limits {
        self.timers = count.min(u32::MAX as usize);
        self
    }

    /// Console output per turn, in bytes (default 1 MiB); later lines of the
    /// turn are dropped and counted in one `(N console lines dropped)` line.
    pub fn console_per_turn(mut self, bytes: usize) -> Limits {
        self.console = bytes;
        self
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory
    }

    /// The QuickJS stack in bytes.
    pub fn stack_bytes(&self) -> usize {
        self.stack
    }

    /// The CPU time of one turn.
    pub fn cpu_time_per_turn(&self) -> Duration {
        self.cpu_time
    }

    /// The largest encoded message in bytes.
    pub fn message_bytes(&self) -> usize {
        self.message
    }

    /// Messages queued per direction.
    pub fn queue_message_count(&self) -> usize {
        self.queue_messages
    }

    /// Encoded bytes queued per direction.
    pub fn queue_byte_count(&self) -> usize {
        self.queue_bytes
    }

    /// Live timers.
    pub fn timer_count(&self) -> usize {
        self.timers
    }

    /// Console bytes per turn.
    pub fn console_bytes_per_turn(&self) -> usize {
        self.console
    }
}

/// Caps for a whole host: every instance of one [`crate::Runtime`].
///
/// ```
/// let caps = miniworker::HostCaps::default().instances(100).total_memory(2 << 30);
/// let runtime = miniworker::Runtime::with_caps(caps);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostCaps {
    instances: Option<usize>,
    total_memory: Option<usize>,
    threads: Option<usize>,
    contexts: Option<usize>,
    pool: Option<usize>,
}

/// Pool threads at most, unless [`HostCaps::threads`] says otherwise.
pub const DEFAULT_POOL_THREADS: usize = 256;

impl HostCaps {
    /// At most this many live mini-program instances; opening one more fails
    /// with [`crate::Error::HostLimit`].
    pub fn instances(mut self, count: usize) -> HostCaps {
        self.instances = Some(count);
        self
    }

    /// At most this much linear memory across every context of the host, in
    /// bytes; a context whose growth would pass it is killed with `"memory"`.
    pub fn total_memory(mut self, bytes: usize) -> HostCaps {
        self.total_memory = Some(bytes);
        self
    }

    /// At most this many threads run contexts' turns at once (default
    /// [`DEFAULT_POOL_THREADS`]). Idle contexts hold no thread; a turn
    /// holds one until it ends, so this many contexts in long turns at once
    /// (up to their CPU-time limit) make the others wait.
    pub fn threads(mut self, count: usize) -> HostCaps {
        self.threads = Some(count.max(1));
        self
    }

    /// At most this many live contexts (a run's main thread, each worker)
    /// instead of the capacity derived from the machine's limits (memory
    /// mappings, address space, memory; [`crate::HostStats`] reports it).
    /// Creating one more fails with [`crate::Error::HostLimit`].
    pub fn contexts(mut self, count: usize) -> HostCaps {
        self.contexts = Some(count);
        self
    }

    /// Reserves slots for this many live contexts when the runtime starts
    /// (Wasmtime's pooling allocator) instead of mapping each context's
    /// memory when it starts: a worker starts about twice as fast (no
    /// `mmap`, and a slot used before takes no page faults: up to 2 MiB of an
    /// ended context's memory stays resident in its slot, reset to the
    /// snapshot). The price is paid up front: 4 GiB of address space per
    /// slot, reserved (not memory). The pool is never larger than the
    /// capacity derived from the machine, and it is the runtime's capacity
    /// in contexts (or [`HostCaps::contexts`], if lower). `miniworker run`
    /// pools 8 contexts, `miniworker serve` two per session.
    pub fn pool(mut self, contexts: usize) -> HostCaps {
        self.pool = Some(contexts.max(1));
        self
    }

    pub(crate) fn context_cap(&self) -> Option<usize> {
        self.contexts
    }

    pub(crate) fn pool_slots(&self) -> Option<usize> {
        self.pool
    }

    pub(crate) fn thread_cap(&self) -> usize {
        self.threads.unwrap_or(DEFAULT_POOL_THREADS)
    }

    pub(crate) fn instance_cap(&self) -> Option<usize> {
        self.instances
    }

    pub(crate) fn memory_cap(&self) -> Option<usize> {
        self.total_memory
    }
}

/// The host-wide accounting behind [`HostCaps`].
#[derive(Default)]
pub(crate) struct HostUsage {
    pub(crate) instances: std::sync::atomic::AtomicUsize,
    pub(crate) memory: std::sync::atomic::AtomicUsize,
}

/// The trap a context ends with when it asks for more memory than its cap:
/// a kill with reason `"memory"`, never a catchable exception.
#[derive(Debug)]
pub(crate) struct MemoryLimit {
    pub(crate) limit: usize,
    pub(crate) desired: usize,
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit of {} MiB exceeded (asked for {} MiB)",
            self.limit >> 20,
            self.desired.div_ceil(1 << 20)
        )
    }
}

/// The trap of a context whose growth would pass the host-wide memory cap.
#[derive(Debug)]
pub(crate) struct HostMemoryLimit {
    pub(crate) cap: usize,
}

impl std::fmt::Display for HostMemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the host's total memory cap of {} MiB is reached",
            self.cap >> 20
        )
    }
}

impl std::error::Error for HostMemoryLimit {}

impl std::error::Error for MemoryLimit {}

/// The trap a context ends with when one turn uses more CPU time than its limit.
#[derive(Debug)]
pub(crate) struct CpuTimeLimit {
    pub(crate) limit: Duration,
}

impl std::fmt::Display for CpuTimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "one turn used more than {:?} of CPU time", self.limit)
    }
}

impl std::error::Error for CpuTimeLimit {}

/// What one context uses, readable from other threads ([`crate::Stats`]).
#[derive(Default)]
pub(crate) struct Usage {
    /// Its linear memory, in bytes.
    pub(crate) memory: std::sync::atomic::AtomicUsize,
    /// The CPU time of all its turns so far, in nanoseconds.
    pub(crate) cpu_nanos: std::sync::atomic::AtomicU64,
}

/// The limiter of one store.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) usage: std::sync::Arc<Usage>,
    /// The host-wide accounting, and its cap.
    pub(crate) host: std::sync::Arc<HostUsage>,
    pub(crate) host_cap: Option<usize>,
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        let mine = self.usage.memory.load(std::sync::atomic::Ordering::Relaxed);
        self.host
            .memory
            .fetch_sub(mine, std::sync::atomic::Ordering::Relaxed);
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            // An error, not `Ok(false)`: QuickJS would turn a failed grow into
            // a catchable "out of memory" exception.
            return Err(MemoryLimit {
                limit: self.limit,
                desired,
            }
            .into());
        }
        use std::sync::atomic::Ordering::Relaxed;
        let grow = desired.saturating_sub(self.usage.memory.load(Relaxed));
        let total = self.host.memory.fetch_add(grow, Relaxed) + grow;
        if let Some(cap) = self.host_cap.filter(|cap| total > *cap) {
            self.host.memory.fetch_sub(grow, Relaxed);
            return Err(HostMemoryLimit { cap }.into());
        }
        self.usage.memory.store(desired, Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The CPU time the calling thread has used.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; the clock always exists on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one turn of a store has used so far.
pub(crate) struct TurnBudget {
    /// Thread CPU time and wall-clock time at the turn's first epoch tick
    /// (every 10 ms while a guest runs): a turn shorter than a tick costs
    /// no reading of the thread's CPU clock (a system call, about 0.4 us on
    /// a VM, 6 % of a round trip on one CPU), and a longer one is measured
    /// to within a tick. (A turn runs on one pool thread from start to end.)
    pub(crate) cpu_start: Option<(Duration, Instant)>,
    /// Console bytes written in this turn.
    pub(crate) console_bytes: usize,
    /// Console lines dropped in this turn.
    pub(crate) console_dropped: u64,
}

impl TurnBudget {
    pub(crate) fn new() -> TurnBudget {
        TurnBudget {
            cpu_start: None,
            console_bytes: 0,
            console_dropped: 0,
        }
    }

    /// The CPU time a turn that began at `started` has used, as the
    /// context's total counts it: the thread's CPU time since the turn's
    /// first tick plus the wall-clock time before it; a turn that ended
    /// before any tick, by its wall-clock duration (which counts any time
    /// the thread waited for a CPU meanwhile: at most a tick). The CPU-time
    /// limit counts the thread's CPU time only.
    pub(crate) fn cpu_used(&self, started: Instant) -> Duration {
        match self.cpu_start {
            Some((cpu, at)) => at.saturating_duration_since(started) + thread_cpu_time().saturating_sub(cpu),
            None => started.elapsed(),
        }
    }
}
