//! The Rust library beyond the basics: the async API from tokio, statistics,
//! shutdown with a deadline.

use std::time::Duration;

use miniworker::{Error, Event};
use serde_json::json;

use crate::common::{next_message, program};

#[test]
fn workers_can_be_driven_from_tokio() {
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread().build().unwrap();
    tokio.block_on(async {
        let started = worker.next_event().await.unwrap();
        assert!(matches!(started, Event::Ready { .. }), "{started:?}");
        // The entry file posts "ready".
        let ready = worker.next_event().await.unwrap();
        assert!(matches!(ready, Event::Message(_)), "{ready:?}");
        worker.post_json(&json!({ "n": 1 })).unwrap();
        let Event::Message(reply) = worker.next_event().await.unwrap() else {
            panic!("expected the echo")
        };
        assert_eq!(reply.to_json().unwrap()["echo"], json!(true));
        worker.terminate();
        assert!(matches!(worker.next_event().await, Err(Error::Terminated)));
    });
    let killed = program.create_worker("workers/kill.js").unwrap();
    killed.post_json(&json!("go")).unwrap();
    tokio.block_on(async {
        loop {
            match killed.next_event().await {
                Ok(Event::Killed { .. }) => break,
                Ok(_) => continue,
                Err(e) => panic!("the kill event comes first: {e}"),
            }
        }
        assert!(matches!(killed.next_event().await, Err(Error::Killed(_))));
    });
}

#[test]
fn statistics_show_memory_cpu_and_queues() {
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    next_message(&worker);
    worker.post_json(&json!("x")).unwrap();
    next_message(&worker);
    let stats = program.stats();
    assert!(stats.worker_memory_bytes > 1 << 20, "{stats:?}");
    assert!(stats.worker_cpu_time > Duration::ZERO, "{stats:?}");
    assert_eq!(
        (stats.queued_to_worker, stats.queued_to_main),
        (0, 0),
        "{stats:?}"
    );
    worker.terminate();
    let deaf = program.create_worker("workers/late.js").unwrap();
    for _ in 0..3 {
        deaf.post_json(&json!("abc")).unwrap();
    }
    let stats = program.stats();
    assert_eq!(stats.queued_to_worker, 3, "{stats:?}");
    assert!(stats.queued_to_worker_bytes >= 3 * 4, "{stats:?}");
}

#[test]
fn shutdown_waits_for_a_spinning_worker() {
    let program = program("basic");
    let worker = program.create_worker("workers/spin.js").unwrap();
    next_message(&worker);
    assert!(program.shutdown(Duration::from_secs(5)));
}

#[test]
fn host_caps_bound_live_instances_and_total_memory() {
    use miniworker::{HostCaps, KillReason, MiniProgram, Project, Runtime};
    let open = |runtime: &Runtime| {
        MiniProgram::new(runtime, Project::open(crate::common::fixture("limits")).unwrap())
    };
    let runtime = Runtime::with_caps(HostCaps::default().instances(2)).unwrap();
    let first = open(&runtime).unwrap();
    let second = open(&runtime).unwrap();
    assert!(matches!(
        open(&runtime),
        Err(Error::HostLimit {
            what: miniworker::HostResource::Instances,
            cap: 2
        })
    ));
    drop(first);
    let third = open(&runtime).unwrap();
    drop((second, third));

    // Every context's memory counts against the host's total: a bomb meets
    // the host cap (40 MiB) before its own (64 MiB), and the memory of a
    // dropped worker is counted back.
    let runtime = Runtime::with_caps(HostCaps::default().total_memory(40 << 20)).unwrap();
    let program = open(&runtime).unwrap();
    for _ in 0..2 {
        let bomb = program.create_worker("workers/bomb.js").unwrap();
        assert_eq!(next_message(&bomb), json!("ready"));
        bomb.post_json(&json!("go")).unwrap();
        match crate::common::next_event(&bomb) {
            Event::Killed { reason, message, .. } => {
                assert_eq!(reason, KillReason::Memory);
                assert!(message.contains("host's total memory cap"), "{message}");
            }
            other => panic!("expected a kill, got {other:?}"),
        }
        program.wait_workers_ended(Duration::from_secs(5));
    }
}

#[test]
fn the_embedded_machine_code_is_what_runs() {
    // make precompile compiles both components for a baseline CPU of this
    // architecture (MINIWORKER_NATIVE=1: for the build machine's), and this
    // machine loads them instead of compiling at start-up.
    assert!(
        crate::common::runtime().precompiled(),
        "the embedded precompiled components did not load (see the warning in the log)"
    );
}
