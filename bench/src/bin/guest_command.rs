//! Runs a guest-side harness built as a WASI command component
//! (`guest/core/examples/`: `codec_timing`, `run_script`) under the
//! production engine configuration, or with epoch interruption off
//! (`--no-epochs`, to measure what the epoch checks cost). Its stdin, stdout
//! and stderr are ours; `PING_RUNS` and `BIG_RUNS` pass through.
//!
//! Usage: `guest_command [--no-epochs] COMPONENT.wasm`

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let epochs = !args.iter().any(|a| a == "--no-epochs");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        bail!("usage: guest_command [--no-epochs] COMPONENT.wasm");
    };
    let mut config = miniworker_engine::config();
    config.epoch_interruption(epochs);
    let engine = wasmtime::Engine::new(&config)?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdin().inherit_stdout().inherit_stderr();
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
    if epochs {
        // As in production, but no epoch ever ends.
        store.set_epoch_deadline(u64::MAX);
    }
    let command = Command::instantiate(&mut store, &component, &linker)?;
    if command.wasi_cli_run().call_run(&mut store)?.is_err() {
        bail!("the harness failed");
    }
    Ok(())
}
