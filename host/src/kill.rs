//! The one place that says how a context ended: guest failures mapped to a
//! [`KillReason`], by type, never by message text.

use crate::error::KillReason;
use crate::limits::{CpuTimeLimit, HostMemoryLimit, MemoryLimit};
use crate::message::ProtocolViolation;

/// The trap `worker.testOnProcessKilled()` ends a worker with.
#[derive(Debug)]
pub(crate) struct TestKill;

impl std::fmt::Display for TestKill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("worker.testOnProcessKilled() was called")
    }
}

impl std::error::Error for TestKill {}

/// Maps a guest failure to a kill reason and a human-readable message.
pub(crate) fn classify(e: &wasmtime::Error) -> (KillReason, String) {
    if e.downcast_ref::<TestKill>().is_some() {
        return (KillReason::Test, TestKill.to_string());
    }
    if let Some(breach) = e.downcast_ref::<MemoryLimit>() {
        return (KillReason::Memory, breach.to_string());
    }
    if let Some(breach) = e.downcast_ref::<HostMemoryLimit>() {
        return (KillReason::Memory, breach.to_string());
    }
    if let Some(breach) = e.downcast_ref::<CpuTimeLimit>() {
        return (KillReason::CpuTime, breach.to_string());
    }
    if let Some(violation) = e.downcast_ref::<ProtocolViolation>() {
        return (KillReason::Crash, violation.to_string());
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => (KillReason::Stack, "the WebAssembly stack overflowed".into()),
        Some(trap) => (KillReason::Crash, format!("the guest trapped: {trap}")),
        None => (KillReason::Crash, format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn kills_are_classified_by_type() {
        let cases: [(wasmtime::Error, KillReason); 6] = [
            (wasmtime::Error::new(TestKill), KillReason::Test),
            (
                MemoryLimit {
                    limit: 1 << 20,
                    desired: 2 << 20,
                }
                .into(),
                KillReason::Memory,
            ),
            (
                CpuTimeLimit {
                    limit: Duration::from_secs(1),
                }
                .into(),
                KillReason::CpuTime,
            ),
            (wasmtime::Trap::StackOverflow.into(), KillReason::Stack),
            (wasmtime::Trap::UnreachableCodeReached.into(), KillReason::Crash),
            (ProtocolViolation("bad".into()).into(), KillReason::Crash),
        ];
        for (error, reason) in cases {
            assert_eq!(classify(&error).0, reason, "{error:#}");
        }
    }
}
