//! `miniworker:sandbox/worker-host`: what a worker asks of its host.

use super::{HostState, Role};
use crate::bindings::worker::miniworker::sandbox::worker_host;
use crate::event::Event;
use crate::kill::TestKill;
use crate::message::Encoded;

impl worker_host::Host for HostState {
    fn post_message(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let message = Encoded::from_guest(data, &mut self.outside, self.limits.message_bytes())?;
        let Role::Worker(id) = self.role else {
            return Ok(Err("not a worker".into()));
        };
        Ok(self
            .instance
            .push_from_worker(id, Event::Message(message))
            .map_err(|e| e.to_string()))
    }

    fn test_kill(&mut self) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(TestKill))
    }
}
