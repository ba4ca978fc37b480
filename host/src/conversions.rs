//! Every conversion between the types `bindgen!` generates (`bindings.rs`)
//! and the library's own, in one place: a datum crosses the WIT boundary in
//! one representation and is turned into the public one here.

use crate::bindings::main::exports::miniworker::sandbox::main_events;
use crate::bindings::{LogLevel, WitJsError, WitMessage};
use crate::error::{JsError, KillReason};
use crate::event::ConsoleLevel;
use crate::message::Encoded;

impl From<Encoded> for WitMessage {
    fn from(message: Encoded) -> Self {
        let (bytes, outside) = message.into_parts();
        WitMessage {
            bytes,
            outside: (!outside.is_empty()).then_some(outside),
        }
    }
}

impl From<LogLevel> for ConsoleLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Log => ConsoleLevel::Log,
            LogLevel::Info => ConsoleLevel::Info,
            LogLevel::Warn => ConsoleLevel::Warn,
            LogLevel::Error => ConsoleLevel::Error,
            LogLevel::Debug => ConsoleLevel::Debug,
        }
    }
}

impl From<WitJsError> for JsError {
    fn from(e: WitJsError) -> Self {
        JsError {
            name: e.name,
            message: e.message,
            stack: e.stack,
            filename: e.filename,
            lineno: e.lineno,
        }
    }
}

impl From<JsError> for WitJsError {
    fn from(e: JsError) -> Self {
        WitJsError {
            name: e.name,
            message: e.message,
            stack: e.stack,
            filename: e.filename,
            lineno: e.lineno,
        }
    }
}

impl From<KillReason> for main_events::KillReason {
    fn from(reason: KillReason) -> Self {
        match reason {
            KillReason::Memory => main_events::KillReason::Memory,
            KillReason::CpuTime => main_events::KillReason::CpuTime,
            KillReason::Stack => main_events::KillReason::Stack,
            KillReason::Test => main_events::KillReason::Test,
            KillReason::Crash => main_events::KillReason::Crash,
        }
    }
}
