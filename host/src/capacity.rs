//! The host's real capacity in contexts (stores: a run's main thread, each
//! worker), known up front: derived from the machine's limits (memory
//! mappings, address space, memory) unless [`crate::HostCaps::contexts`]
//! sets it, and the count of live contexts against it. Past it, creating
//! an instance or a worker fails with [`crate::Error::HostLimit`] at once,
//! before anything runs out inside the engine.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, HostResource, Result};

/// Memory mappings one live context takes at most with Wasmtime's
/// on-demand allocator: its linear memory's copy-on-write image (from page 0,
/// `guest/core/src/lib.rs` `anchor_image`), the inaccessible rest of its
/// reservation with the guard, and, once its heap has grown past the image,
/// the accessible part past it. `miniworker-bench --section scale` measures
/// 2.002 per idle context (10,000 idle instances, `docs/BENCHMARKS.md`); the
/// capacity counts the third, so contexts that grow cannot pass the limit.
pub const MAPPINGS_PER_CONTEXT: usize = 3;

/// Address space one context reserves: Wasmtime's default linear-memory
/// reservation (4 GiB) and guard (32 MiB) on 64-bit hosts.
const ADDRESS_SPACE_PER_CONTEXT: u64 = (4 << 30) + (32 << 20);

/// Memory one idle context needs, rounded up from the measured 0.19 MiB of
/// PSS (0.42 MiB of RSS, which counts the shared snapshot image once per
/// context): its copied image pages, its heap, the host's side.
const MEMORY_PER_CONTEXT: u64 = 1 << 20;

/// Mappings kept for everything else of the process (libraries, threads,
/// the embedder's own).
const OTHER_MAPPINGS: usize = 4096;

/// The live contexts of a runtime against its capacity.
pub(crate) struct Capacity {
    contexts: usize,
    /// Which limit sets `contexts`, for [`crate::HostStats`].
    bound_by: &'static str,
    live: AtomicUsize,
}

impl Capacity {
    /// The lower of what the host set (`contexts`, a `pool` of slots);
    /// derived from the machine when it set neither.
    pub(crate) fn new(contexts: Option<usize>, pool: Option<usize>) -> Capacity {
        let (contexts, bound_by) = match (contexts, pool) {
            (Some(c), Some(p)) if p < c => (p, "HostCaps::pool"),
            (Some(c), _) => (c, "HostCaps::contexts"),
            (None, Some(p)) => (p, "HostCaps::pool"),
            (None, None) => derived(),
        };
        Capacity {
            contexts,
            bound_by,
            live: AtomicUsize::new(0),
        }
    }

    /// Takes a context of the capacity; it is given back when the returned
    /// guard drops.
    pub(crate) fn take(self: &std::sync::Arc<Self>) -> Result<ContextSlot> {
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        if live > self.contexts {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::HostLimit {
                what: HostResource::Contexts,
                cap: self.contexts,
            });
        }
        Ok(ContextSlot(self.clone()))
    }

    pub(crate) fn contexts(&self) -> usize {
        self.contexts
    }

    pub(crate) fn bound_by(&self) -> &'static str {
        self.bound_by
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// One context's share of the capacity, held as long as its store lives.
pub(crate) struct ContextSlot(std::sync::Arc<Capacity>);

impl Drop for ContextSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The machine's capacity in contexts: the smallest of what its mapping
/// count, address space and memory allow, and which it is.
pub(crate) fn derived() -> (usize, &'static str) {
    let maps = read_number("/proc/sys/vm/max_map_count").unwrap_or(65_530) as usize;
    let by_maps = maps.saturating_sub(OTHER_MAPPINGS) / MAPPINGS_PER_CONTEXT;
    let by_address_space = usable_address_space() / ADDRESS_SPACE_PER_CONTEXT;
    let by_memory = memory_limit() / MEMORY_PER_CONTEXT;
    [
        (by_maps, "vm.max_map_count"),
        (by_address_space as usize, "address space"),
        (by_memory as usize, "memory"),
    ]
    .into_iter()
    .min_by_key(|(n, _)| *n)
    .unwrap_or((by_maps, "vm.max_map_count"))
}

/// The user address space of a 64-bit process (47 bits) but 8 TiB kept for
/// the embedder and the rest of the process, or the process's
/// address-space limit if that is smaller.
fn usable_address_space() -> u64 {
    let mut limit = (1u64 << 47) - (8 << 40);
    let mut rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rlimit) } == 0 && rlimit.rlim_cur != libc::RLIM_INFINITY
    {
        limit = limit.min(rlimit.rlim_cur);
    }
    limit
}

/// The memory this process may use: the machine's, or its cgroup's limit
/// if that is smaller (a container's).
fn memory_limit() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(u64::MAX, |kib| kib.saturating_mul(1024));
    let cgroup = read_number("/sys/fs/cgroup/memory.max").unwrap_or(u64::MAX);
    machine.min(cgroup)
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
