//! Runs the guest-side codec harness (`guest/core/examples/codec_timing.rs`, a
//! WASI command component) under the production engine configuration and
//! passes its JSON lines through. Usage: `guest_codec COMPONENT.wasm`; the
//! harness reads `PING_RUNS` and `BIG_RUNS` from the environment.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Result, Store, bail};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn main() -> Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        bail!("usage: guest_codec COMPONENT.wasm");
    };
    let engine = miniworker_engine::engine()?;
    let component = Component::from_file(&engine, &path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdout().inherit_stderr();
    for name in ["PING_RUNS", "BIG_RUNS"] {
        if let Ok(v) = std::env::var(name) {
            wasi.env(name, v);
        }
    }
    let mut store = Store::new(
        &engine,
        State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
        },
    );
    // Epoch interruption stays on, as in production; no epoch ever ends.
    store.set_epoch_deadline(u64::MAX);
    let command = Command::instantiate(&mut store, &component, &linker)?;
    if command.wasi_cli_run().call_run(&mut store)?.is_err() {
        bail!("the harness failed");
    }
    Ok(())
}
