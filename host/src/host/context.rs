//! `miniworker:sandbox/context`: console lines, uncaught errors, and module
//! files read through the project's capability.

use super::{HostState, Role};
use crate::bindings::worker::miniworker::sandbox::{context, types};
use crate::bindings::{LogLevel, WitJsError};
use crate::program::Event;
use miniworker_project::CodeRole;

impl types::Host for HostState {}

impl HostState {
    /// Ends a turn: says how many console lines its budget dropped.
    pub(crate) fn end_turn(&mut self) {
        let dropped = std::mem::take(&mut self.budget.console_dropped);
        if dropped > 0 {
            self.program.console(
                self.role,
                crate::program::ConsoleLevel::Warn,
                vec![format!("({dropped} console lines dropped)")],
            );
        }
    }

    fn code_role(&self) -> CodeRole {
        match self.role {
            Role::Main => CodeRole::Main,
            Role::Worker(_) => CodeRole::Worker,
        }
    }
}

impl context::Host for HostState {
    fn console(&mut self, level: LogLevel, args: Vec<String>) {
        let bytes = crate::program::line_len(&args);
        let budget = &mut self.budget;
        if budget.console_bytes + bytes > self.limits.console_bytes_per_turn() {
            budget.console_dropped += 1;
            return;
        }
        budget.console_bytes += bytes;
        self.program.console(self.role, level.into(), args);
    }

    fn uncaught_error(&mut self, error: WitJsError) {
        match self.role {
            Role::Main => self.program.main_uncaught_error(error.into()),
            Role::Worker(id) => {
                let _ = self.program.push_from_worker(id, Event::Error(error.into()));
            }
        }
    }

    fn begin_turn(&mut self) {
        self.end_turn();
        self.budget = crate::limits::TurnBudget::new();
    }

    fn resolve_module(&mut self, from: String, request: String) -> Result<String, String> {
        self.program
            .project
            .resolve_module(self.code_role(), &from, &request)
    }

    fn load_module(&mut self, filename: String) -> Result<String, String> {
        self.program.project.load_module(self.code_role(), &filename)
    }
}
