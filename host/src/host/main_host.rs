//! `miniworker:sandbox/main-host`: the `wx` side of a JavaScript main thread.

use super::HostState;
use crate::bindings::WitJsError;
use crate::bindings::main::miniworker::sandbox::main_host;
use crate::error::Error;
use crate::event::{Event, Source};
use crate::message::Encoded;

impl main_host::Host for HostState {
    fn create_worker(&mut self, script_path: String) -> Result<u32, String> {
        let limits = self.instance.limits.clone();
        match self.instance.reserve_worker(&script_path, limits) {
            Ok(start) => {
                let id = start.id;
                self.starting.push(start);
                Ok(id)
            }
            Err(Error::BadScript(why)) => Err(why),
            Err(Error::WorkerLimit) => {
                Err("only one worker may run at a time; call terminate() on it first".to_string())
            }
            Err(other) => Err(other.to_string()),
        }
    }

    fn post_to_worker(&mut self, id: u32, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let message = Encoded::from_guest(data, &mut self.outside, self.limits.message_bytes())?;
        Ok(self
            .instance
            .post_to_worker(id, message)
            .map_err(|e| e.to_string()))
    }

    fn terminate_worker(&mut self, id: u32) {
        self.instance.terminate_worker(id);
        // Created and terminated in the same turn: its context never starts.
        if let Some(i) = self.starting.iter().position(|s| s.id == id) {
            self.starting.remove(i);
            self.instance.worker_ended(id, false);
        }
    }

    fn unhandled_worker_error(&mut self, _id: u32, error: WitJsError) {
        self.instance.emit(Event::Error {
            source: Source::Worker,
            error: error.into(),
        });
    }
}
