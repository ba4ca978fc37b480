//! Hard limits (docs/spec.md section 5): stack, CPU time, queues, timers, console,
//! kills, and a mini-program that breaks a limit among well-behaved ones.

use std::time::Duration;

use miniworker::{Error, Event, KillReason, Limits, MiniProgram, Project, QueueLimit, Toward, Worker};
use serde_json::json;

use crate::common::{PATIENCE, fixture, next_event, next_message, runtime};

fn limits_program(limits: Limits) -> MiniProgram {
    let project = Project::open(fixture("limits")).expect("the fixture is a valid project");
    MiniProgram::with_limits(runtime(), project, limits).expect("under the host caps")
}

/// The worker's next event is its kill, for `reason`; nothing follows it.
fn expect_kill(worker: &Worker, reason: KillReason) {
    match next_event(worker) {
        Event::Killed {
            reason: r, message, ..
        } => {
            assert_eq!(r, reason, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected a kill, got {other:?}"),
    }
    assert_eq!(worker.recv_timeout(Duration::from_millis(50)).unwrap(), None);
}

#[test]
fn deep_recursion_throws_range_error_in_each_form() {
    let program = limits_program(Limits::default());
    let worker = program.create_worker("workers/deep.js").unwrap();
    worker.post_json(&json!("go")).unwrap();
    let overflow = "RangeError: Maximum call stack size exceeded";
    assert_eq!(next_message(&worker), json!([overflow, overflow, overflow]));
    worker.post_json(&json!("after")).unwrap();
    assert_eq!(next_message(&worker), json!("answer after"));
}

#[test]
fn a_turn_over_its_cpu_time_is_killed_and_the_next_worker_starts() {
    let program = limits_program(Limits::default());
    let limits = Limits::default().cpu_time(Duration::from_millis(200));
    let worker = program
        .create_worker_with_limits("workers/spin.js", limits)
        .unwrap();
    assert_eq!(next_message(&worker), json!("ready"));
    worker.post_json(&json!("spin")).unwrap();
    expect_kill(&worker, KillReason::CpuTime);
    assert!(matches!(
        worker.post_json(&json!(1)),
        Err(Error::Killed(KillReason::CpuTime))
    ));
    let echo = program.create_worker("workers/echo.js").unwrap();
    echo.post_json(&json!("alive")).unwrap();
    assert_eq!(next_message(&echo), json!("alive"));
}

#[test]
fn a_memory_breach_kills_and_is_not_catchable() {
    let program = limits_program(Limits::default().memory(32 << 20));
    let worker = program.create_worker("workers/bomb.js").unwrap();
    assert_eq!(next_message(&worker), json!("ready"));
    worker.post_json(&json!("go")).unwrap();
    expect_kill(&worker, KillReason::Memory);
}

#[test]
fn the_queue_toward_a_worker_pushes_back_by_count_and_by_bytes() {
    let program = limits_program(Limits::default());
    let worker = program
        .create_worker_with_limits("workers/deaf.js", Limits::default().queue_messages(100))
        .unwrap();
    for i in 0..100 {
        worker.post_json(&json!(i)).unwrap();
    }
    match worker.post_json(&json!(100)) {
        Err(Error::QueueFull { toward, limit }) => {
            assert_eq!((toward, limit), (Toward::Worker, QueueLimit::Messages(100)))
        }
        other => panic!("expected back-pressure, got {other:?}"),
    }
    assert_eq!(
        worker.terminate(),
        100,
        "the queued messages are discarded and counted"
    );

    let worker = program
        .create_worker_with_limits("workers/deaf.js", Limits::default().queue_bytes(10_000))
        .unwrap();
    let text = json!("x".repeat(4_000));
    worker.post_json(&text).unwrap();
    worker.post_json(&text).unwrap();
    match worker.post_json(&text) {
        Err(Error::QueueFull { toward, limit }) => {
            assert_eq!((toward, limit), (Toward::Worker, QueueLimit::Bytes(10_000)))
        }
        other => panic!("expected back-pressure, got {other:?}"),
    }
}

#[test]
fn the_queue_toward_the_main_thread_pushes_back_by_bytes() {
    let program = limits_program(Limits::default());
    let worker = program
        .create_worker_with_limits("workers/big-posts.js", Limits::default().queue_bytes(10_000))
        .unwrap();
    worker.post_json(&json!("go")).unwrap();
    // The worker's posts beyond 10,000 queued bytes throw at once; nothing
    // is read until it has tried all three.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(next_message(&worker).as_str().map(str::len), Some(4000));
    assert_eq!(next_message(&worker).as_str().map(str::len), Some(4000));
    assert_eq!(
        next_message(&worker),
        json!([
            "sent",
            "sent",
            "the queue toward the main thread is full (10000 bytes)"
        ])
    );
}

#[test]
fn a_worker_flooding_a_slow_reader_loses_nothing() {
    let program = limits_program(Limits::default());
    let worker = program
        .create_worker_with_limits("workers/flood.js", Limits::default().queue_messages(50))
        .unwrap();
    let total = 3_000;
    worker.post_json(&json!(total)).unwrap();
    for expected in 0..total {
        if expected % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5)); // a slow reader
        }
        assert_eq!(next_message(&worker), json!(expected));
    }
    let report = next_message(&worker);
    assert_eq!(report["done"], json!(total));
    assert!(report["refusals"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["lastRefusal"],
        json!("the queue toward the main thread is full (50 messages)")
    );
}

#[test]
fn live_timers_are_capped() {
    let program = limits_program(Limits::default());
    let worker = program
        .create_worker_with_limits("workers/timers.js", Limits::default().timers(500))
        .unwrap();
    assert_eq!(
        next_message(&worker),
        json!({ "count": 500, "error": "RangeError: too many timers: the limit is 500 live timers" })
    );
}

#[test]
fn console_output_per_turn_is_capped_and_counted() {
    let program = limits_program(Limits::default());
    let worker = program
        .create_worker_with_limits("workers/chatty.js", Limits::default().console_per_turn(10_000))
        .unwrap();
    let mut lines = Vec::new();
    let mut dropped = Vec::new();
    while lines.last().is_none_or(|l: &String| l != "next turn") {
        match worker.recv_timeout(PATIENCE).unwrap() {
            Some(Event::Console { args, .. }) => lines.push(args.join(" ")),
            Some(Event::Dropped { what, count }) => dropped.push((what, count, lines.len())),
            Some(Event::Ready { .. }) => {}
            other => panic!("expected a console line, got {other:?}"),
        }
    }
    assert_eq!(lines.len(), 11, "{:?}", &lines[10..]);
    assert!(lines[..10].iter().all(|l| l.len() == 1000));
    // One notice, at the end of the turn that dropped them.
    assert_eq!(dropped, [(miniworker::Dropped::ConsoleLines, 90, 10)]);
}

/// Fifty mini-programs in one host: one spins, one allocates without bound,
/// one floods; the other 47 finish with every message, none killed.
#[test]
fn one_host_runs_fifty_programs_and_the_bad_ones_harm_no_other() {
    let tight = Limits::default()
        .cpu_time(Duration::from_millis(300))
        .memory(32 << 20)
        .queue_messages(20);
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let tight = tight.clone();
            std::thread::spawn(move || {
                let program = limits_program(tight);
                match i {
                    0 => {
                        let w = program.create_worker("workers/spin.js").unwrap();
                        assert_eq!(next_message(&w), json!("ready"));
                        w.post_json(&json!("spin")).unwrap();
                        expect_kill(&w, KillReason::CpuTime);
                    }
                    1 => {
                        let w = program.create_worker("workers/bomb.js").unwrap();
                        assert_eq!(next_message(&w), json!("ready"));
                        w.post_json(&json!("go")).unwrap();
                        expect_kill(&w, KillReason::Memory);
                    }
                    2 => {
                        // Floods, and nobody reads: back-pressure holds it at 20.
                        let w = program.create_worker("workers/flood.js").unwrap();
                        w.post_json(&json!(1_000_000)).unwrap();
                        std::thread::sleep(Duration::from_millis(300));
                        w.terminate();
                    }
                    _ => {
                        let w = program.create_worker("workers/echo.js").unwrap();
                        for n in 0..200 {
                            w.post_json(&json!({ "program": i, "n": n })).unwrap();
                            assert_eq!(next_message(&w), json!({ "program": i, "n": n }));
                        }
                    }
                }
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        t.join().unwrap_or_else(|_| panic!("program {i} failed"));
    }
}

/// The suite's one slow test (about 8 s of CPU in one turn, so it runs
/// alongside the others, never after them): a compute-heavy worker, as real
/// mini-programs have, finishes under the default limits (60 s of CPU per
/// turn, docs/spec.md section 5).
#[test]
fn slow_a_compute_heavy_turn_finishes_under_the_default_limits() {
    let path = fixture("compute");
    let out = crate::common::miniworker(&["run", "--timeout", "300", path.to_str().expect("utf-8 path")]);
    let text = crate::common::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        crate::common::stderr(&out)
    );
    assert_eq!(text, "[main] queens(12) = 14200, 14200, 14200, 14200\n");
}
