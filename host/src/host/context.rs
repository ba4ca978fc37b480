//! `miniworker:sandbox/context`: console lines, uncaught errors, turns, and
//! module files read through the project's capability.

use super::{HostState, Role};
use crate::bindings::worker::miniworker::sandbox::{context, types};
use crate::bindings::{LogLevel, WitJsError};
use crate::event::{Event, Source, line_len};
use miniworker_project::CodeRole;

impl types::Host for HostState {}

impl HostState {
    fn code_role(&self) -> CodeRole {
        match self.role {
            Role::Main => CodeRole::Main,
            Role::Worker(_) => CodeRole::Worker,
        }
    }
}

impl context::Host for HostState {
    fn console(&mut self, level: LogLevel, args: Vec<String>) {
        let bytes = line_len(&args);
        let budget = &mut self.budget;
        if budget.console_bytes + bytes > self.limits.console_bytes_per_turn() {
            budget.console_dropped += 1;
            return;
        }
        budget.console_bytes += bytes;
        let (source, id) = match self.role {
            Role::Main => (Source::Main, None),
            Role::Worker(id) => (Source::Worker, Some(id)),
        };
        let event = Event::Console {
            source,
            level: level.into(),
            args,
        };
        match id {
            Some(id) => self.instance.worker_said(id, event),
            None => self.instance.emit(event),
        }
    }

    fn post_outside(&mut self, payload: Vec<u8>) -> wasmtime::Result<()> {
        self.outside.push(payload, self.limits.message_bytes())
    }

    fn uncaught_error(&mut self, error: WitJsError) {
        match self.role {
            Role::Main => self.instance.main_uncaught(error.into()),
            Role::Worker(id) => {
                let event = Event::Error {
                    source: Source::Worker,
                    error: error.into(),
                };
                // Refused only once the worker ended: nobody to tell.
                let _ = self.instance.push_from_worker(id, event);
            }
        }
    }

    fn begin_turn(&mut self) {
        self.end_turn();
        self.budget = crate::limits::TurnBudget::new();
    }

    fn resolve_module(&mut self, from: String, request: String) -> Result<String, String> {
        self.instance
            .project
            .resolve_module(self.code_role(), &from, &request)
    }

    fn load_module(&mut self, filename: String) -> Result<String, String> {
        self.instance.project.load_module(self.code_role(), &filename)
    }
}
