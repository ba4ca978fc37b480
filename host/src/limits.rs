//! Resource limits of one JavaScript context (SPEC section 5).

use wasmtime::ResourceLimiter;

/// Linear memory of one context, by default (SPEC section 5).
pub const DEFAULT_MEMORY: usize = 64 << 20;

/// The resource limits of each JavaScript context of a mini-program: its main
/// thread (`app.js`) and its worker. Start from [`Limits::default`] (the
/// SPEC's defaults) and change what you need:
///
/// ```
/// let limits = miniworker::Limits::default().memory(256 << 20);
/// assert_eq!(limits.memory_bytes(), 256 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    memory: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: DEFAULT_MEMORY,
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

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory
    }
}

/// Table elements one context may have: far above what QuickJS needs (a few
/// thousand function pointers), low enough that a table cannot become a
/// memory bomb of its own.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

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

impl std::error::Error for MemoryLimit {}

/// The limiter of one store.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
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
