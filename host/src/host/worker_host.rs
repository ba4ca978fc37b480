//! `miniworker:sandbox/worker-host`: what a worker asks of its host.

use super::{HostState, Role};
use crate::bindings::worker::miniworker::sandbox::worker_host;
use crate::program::Event;

/// The trap `worker.testOnProcessKilled()` ends a worker with.
#[derive(Debug)]
pub(crate) struct TestKill;

impl std::fmt::Display for TestKill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("worker.testOnProcessKilled() was called")
    }
}

impl std::error::Error for TestKill {}

impl worker_host::Host for HostState {
    fn post_message(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let decoded = crate::codec::check_from_guest(&data, self.limits.message_bytes())?;
        let Role::Worker(id) = self.role else {
            return Ok(Err("not a worker".into()));
        };
        let decoded = self.program.wants_decoded().then_some(decoded);
        Ok(self.program.push_from_worker(id, Event::Message(data, decoded)))
    }

    fn test_kill(&mut self) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(TestKill))
    }
}
