//! `miniworker:sandbox/main-host`: the `wx` side of a JavaScript main thread.

use super::HostState;
use crate::bindings::WitJsError;
use crate::bindings::main::miniworker::sandbox::main_host;
use crate::error::Error;

impl main_host::Host for HostState {
    fn create_worker(&mut self, script_path: String) -> Result<u32, String> {
        let limits = self.program.limits.clone();
        self.program
            .create_worker(&script_path, limits)
            .map_err(|e| match e {
                Error::BadScript(why) => why,
                Error::WorkerLimit => {
                    "only one worker may run at a time; call terminate() on it first".to_string()
                }
                other => other.to_string(),
            })
    }

    fn post_to_worker(&mut self, id: u32, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        crate::codec::check_from_guest(&data, self.limits.message_bytes())?;
        Ok(self.program.post_to_worker(id, data).map_err(|e| e.to_string()))
    }

    fn terminate_worker(&mut self, id: u32) {
        self.program.terminate_worker(id);
    }

    fn unhandled_worker_error(&mut self, _id: u32, error: WitJsError) {
        self.program.report(crate::program::Report::Uncaught {
            source: "worker",
            error: &error.into(),
        });
    }
}
