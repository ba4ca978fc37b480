//! Embeds the guest components into the host: the snapshot `make precompile`
//! made of each (`NAME.init.wasm`, else the plain `NAME.wasm` of `make
//! guest`) and the machine code compiled from it (`NAME.cwasm`), from
//! `target/guest/` of the repository or from `MINIWORKER_GUEST_DIR` (a
//! release's `components/`). Missing components are a build error that says
//! where to get them.

use std::path::PathBuf;

const COMPONENTS: [&str; 2] = ["miniworker_worker", "miniworker_main"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = std::env::var_os("MINIWORKER_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/guest"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=MINIWORKER_GUEST_DIR");
    for name in COMPONENTS {
        let plain = dir.join(format!("{name}.wasm"));
        let snapshot = dir.join(format!("{name}.init.wasm"));
        let cwasm = dir.join(format!("{name}.cwasm"));
        for path in [&plain, &snapshot, &cwasm] {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        // A snapshot older than its component is stale (the guest was
        // rebuilt without `make precompile`): use the plain component.
        let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = modified(&snapshot).is_some_and(|s| modified(&plain).is_none_or(|p| s >= p));
        let wasm = if fresh { snapshot } else { plain };
        if !wasm.is_file() {
            // Not a panic: cargo shows this as the build's error.
            println!(
                "cargo::error=the guest component {} is missing. The library embeds the two \
                 guest components (QuickJS compiled to WebAssembly). In a clone of the \
                 miniworker repository, build them with `make guest` (`make build` snapshots \
                 and precompiles them too, for a fast start). Elsewhere, set \
                 MINIWORKER_GUEST_DIR to a directory holding miniworker_worker.wasm and \
                 miniworker_main.wasm, such as the `components` directory of a release \
                 archive (make dist).",
                wasm.display()
            );
            return;
        }
        std::fs::copy(&wasm, out.join(format!("{name}.wasm"))).expect("copy the guest component");
        if cwasm.is_file() && fresh {
            std::fs::copy(&cwasm, out.join(format!("{name}.cwasm"))).expect("copy the precompiled component");
        } else {
            println!(
                "cargo:warning={} is missing: the host will compile the guest at start-up (run `make precompile`)",
                cwasm.display()
            );
            std::fs::write(out.join(format!("{name}.cwasm")), b"").expect("write an empty placeholder");
        }
    }
}
