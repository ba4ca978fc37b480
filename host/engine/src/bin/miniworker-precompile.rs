//! Build step: compiles each guest component given on the command line to
//! machine code for this machine, next to it as `NAME.cwasm`, with the host's
//! exact engine settings. The host embeds both and uses the `.cwasm` when it
//! fits the CPU it runs on.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let engine = match miniworker_engine::engine() {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("miniworker-precompile: cannot create the engine: {e}");
            return ExitCode::FAILURE;
        }
    };
    for input in std::env::args_os().skip(1).map(PathBuf::from) {
        let output = input.with_extension("cwasm");
        let result = std::fs::read(&input)
            .map_err(wasmtime::Error::from)
            .and_then(|wasm| engine.precompile_component(&wasm))
            .and_then(|code| std::fs::write(&output, code).map_err(wasmtime::Error::from));
        if let Err(e) = result {
            eprintln!("miniworker-precompile: {}: {e:#}", input.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
