//! The deny-all WASI the guest toolchain needs linked.
//!
//! Rust's std and QuickJS's wasi-libc make every component import WASI
//! interfaces (streams, environment, exit, filesystem, clocks, random). The
//! host links all of them, but to a context that grants nothing: no preopened
//! directories (so the filesystem interfaces reach no file), empty
//! environment and arguments, a closed stdin, stdout and stderr discarded
//! (console output travels through our own `context.console` import), and no
//! network. Clocks and random numbers are real: they reach nothing.

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// A WASI context that grants no capability.
pub fn deny_all() -> WasiCtx {
    WasiCtxBuilder::new().build()
}

/// The WASI interfaces a guest component may import (without versions); a
/// test fails on any other import (docs/spec.md section 3).
pub const ALLOWED_WASI_IMPORTS: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure-seed",
];
