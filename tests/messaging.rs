//! Workers driven from Rust: messages, order, the one-worker rule, kills.

use serde_json::json;

use crate::common::{next_event, next_message, program};
use miniworker::{Error, Event, KillReason};

#[test]
fn messages_round_trip_through_a_worker() {
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&worker), json!({ "kind": "ready" }));
    worker
        .post_json(&json!({ "msg": "hello worker", "n": [1, 2.5, null] }))
        .unwrap();
    assert_eq!(
        next_message(&worker),
        json!({ "msg": "hello worker", "n": [1, 2.5, null], "echo": true, "count": 1 })
    );
}

#[test]
fn delivery_does_not_depend_on_what_project_code_replaced() {
    // The worker replaces Function.prototype.call and .apply first.
    let program = program("basic");
    let worker = program.create_worker("workers/replaced-call.js").unwrap();
    assert_eq!(next_message(&worker), json!("ready"));
    worker.post_json(&json!(7)).unwrap();
    assert_eq!(
        next_message(&worker),
        json!({ "got": 7, "timer": 3, "cloned": true })
    );
}

#[test]
fn thousands_of_messages_arrive_in_order_both_ways() {
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&worker), json!({ "kind": "ready" }));
    const N: u64 = 5000;
    for seq in 0..N {
        worker.post_json(&json!({ "seq": seq })).unwrap();
    }
    for seq in 0..N {
        let reply = next_message(&worker);
        assert_eq!(reply["seq"], json!(seq));
        assert_eq!(reply["count"], json!(seq + 1));
    }
}

#[test]
fn a_message_posted_before_on_message_waits_for_the_listener() {
    let program = program("basic");
    let worker = program.create_worker("workers/late.js").unwrap();
    worker.post_json(&json!("early")).unwrap();
    assert_eq!(next_message(&worker), json!({ "got": "early" }));
}

#[test]
fn second_create_worker_fails_until_terminate() {
    let program = program("basic");
    let first = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&first), json!({ "kind": "ready" }));
    assert!(matches!(
        program.create_worker("workers/echo.js"),
        Err(Error::WorkerLimit)
    ));
    // The first worker is untouched.
    first.post_json(&json!({ "still": "there" })).unwrap();
    assert_eq!(next_message(&first)["still"], json!("there"));
    first.terminate();
    assert!(matches!(first.post_json(&json!(1)), Err(Error::Terminated)));
    let second = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&second), json!({ "kind": "ready" }));
}

#[test]
fn terminate_stops_a_spinning_worker_and_frees_the_slot() {
    let program = program("basic");
    let spinner = program.create_worker("workers/spin.js").unwrap();
    assert_eq!(next_message(&spinner), json!("spinning"));
    spinner.terminate();
    let next = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&next), json!({ "kind": "ready" }));
}

#[test]
fn create_worker_refuses_bad_paths() {
    let program = program("basic");
    for (path, why) in [
        ("app.js", "is not inside the workers directory"),
        ("workers/missing.js", "does not exist"),
        ("workers/echo", "is not a .js file"),
        ("workers/lib", "is not a .js file"),
        ("workers/../app.js", "is not inside the workers directory"),
        ("workers/../../outside.js", "leads outside the project"),
        ("workers/echo.js\0.js", "leads outside the project"),
    ] {
        match program.create_worker(path) {
            Err(Error::BadScript(msg)) => assert!(msg.contains(why), "{path}: {msg}"),
            Err(e) => panic!("{path}: unexpected error {e}"),
            Ok(_) => panic!("{path}: accepted"),
        }
    }
    // A leading slash is tolerated.
    let worker = program.create_worker("/workers/nested/deep.js").unwrap();
    assert_eq!(
        next_message(&worker),
        json!({ "file": "/workers/nested/deep.js" })
    );
}

#[test]
fn worker_sees_only_its_own_globals() {
    let program = program("basic");
    let worker = program.create_worker("workers/globals.js").unwrap();
    let seen = next_message(&worker);
    for absent in [
        "wx",
        "App",
        "getApp",
        "Page",
        "Component",
        "process",
        "fetch",
        "XMLHttpRequest",
        "std",
        "os",
        "Deno",
        "Javy",
    ] {
        assert_eq!(
            seen[absent],
            json!("undefined"),
            "{absent} leaked into the worker: {seen}"
        );
    }
    for present in [
        "worker",
        "console",
        "setTimeout",
        "clearTimeout",
        "setInterval",
        "clearInterval",
        "queueMicrotask",
        "require",
    ] {
        assert_eq!(
            seen[present],
            json!(if present == "worker" || present == "console" {
                "object"
            } else {
                "function"
            }),
            "{present}"
        );
    }
    // The whole global set: the ECMAScript built-ins of QuickJS-ng, the
    // WHATWG extras the docs list (TextEncoder, TextDecoder, performance),
    // and the worker's own names.
    let builtins = "AggregateError Array ArrayBuffer AsyncDisposableStack BigInt BigInt64Array BigUint64Array \
        Boolean DataView Date DisposableStack Error EvalError FinalizationRegistry Float16Array Float32Array \
        Float64Array Function Infinity Int16Array Int32Array Int8Array InternalError Iterator JSON Map Math NaN \
        Number Object Promise Proxy RangeError ReferenceError Reflect RegExp Set SharedArrayBuffer String \
        SuppressedError Symbol SyntaxError TypeError URIError Uint16Array Uint32Array Uint8Array \
        Uint8ClampedArray WeakMap WeakRef WeakSet decodeURI decodeURIComponent encodeURI encodeURIComponent \
        escape eval globalThis isFinite isNaN parseFloat parseInt undefined unescape";
    let extras = "TextDecoder TextEncoder performance";
    let own = "worker require console setTimeout clearTimeout setInterval clearInterval queueMicrotask \
        structuredClone";
    let mut expected: Vec<&str> = [builtins, extras, own]
        .iter()
        .flat_map(|s| s.split_whitespace())
        .collect();
    expected.sort_unstable();
    assert_eq!(seen["all"], json!(expected));
    assert_eq!(seen["typeofWx"], json!("undefined"));
    assert_eq!(seen["cloned"], json!(true), "structuredClone in a worker");
    assert_eq!(seen["__filename"], json!("/workers/globals.js"));
    assert_eq!(seen["__dirname"], json!("/workers"));
    assert_eq!(
        seen["cameraFrame"],
        json!("worker.getCameraFrameData is not supported by this host")
    );
}

#[test]
fn test_on_process_killed_kills_with_reason_test() {
    let program = program("basic");
    let worker = program.create_worker("workers/kill.js").unwrap();
    worker.post_json(&json!("go")).unwrap();
    assert_eq!(next_message(&worker), json!("before"));
    match next_event(&worker) {
        Event::Killed { reason, .. } => assert_eq!(reason, KillReason::Test),
        other => panic!("expected a kill, got {other:?}"),
    }
    assert!(matches!(
        worker.post_json(&json!(1)),
        Err(Error::Killed(KillReason::Test))
    ));
    // The slot is free again.
    let next = program.create_worker("workers/echo.js").unwrap();
    assert_eq!(next_message(&next), json!({ "kind": "ready" }));
}

#[test]
fn uncaught_worker_errors_are_events_and_the_worker_goes_on() {
    let program = program("basic");
    let worker = program.create_worker("workers/throws.js").unwrap();
    worker.post_json(&json!("throw")).unwrap();
    match next_event(&worker) {
        Event::Error { error: e, .. } => {
            assert_eq!(e.name, "TypeError");
            assert_eq!(e.message, "bad input");
            assert_eq!(e.filename, "/workers/throws.js");
            assert_eq!(e.lineno, 4);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    worker.post_json(&json!("reject")).unwrap();
    match next_event(&worker) {
        Event::Error { error: e, .. } => assert_eq!(
            (e.name.as_str(), e.message.as_str()),
            ("RangeError", "nobody catches this")
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    worker.post_json(&json!("ping")).unwrap();
    assert_eq!(next_message(&worker), json!("still here: ping"));
}

#[test]
fn worker_console_lines_are_events_in_library_mode() {
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    worker.post_json(&json!("x")).unwrap();
    let _ = next_message(&worker);
    drop(worker);
    let program2 = crate::common::program("causal-order");
    let chatty = program2.create_worker("workers/chatty.js").unwrap();
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(chatty.recv_timeout(crate::common::PATIENCE).unwrap().unwrap());
    }
    // `Ready`, then everything the entry file did.
    let mut expect = vec![Event::Ready {
        source: miniworker::Source::Worker,
    }];
    expect.extend((1..=3).flat_map(|i| {
        [
            Event::Console {
                source: miniworker::Source::Worker,
                level: miniworker::ConsoleLevel::Log,
                args: vec![format!("worker sends {i}")],
            },
            Event::Message(miniworker::Encoded::from_json(&json!(i), 16).unwrap()),
        ]
    }));
    assert_eq!(seen, expect);
}

#[test]
fn every_error_source_reaches_on_error_and_the_worker_answers() {
    let program = program("turns");
    let worker = program.create_worker("workers/errors.js").unwrap();
    let mut seen = Vec::new();
    let mut expect_error = |worker: &miniworker::Worker| match next_event(worker) {
        Event::Error { error: e, .. } => seen.push((e.name, e.message, e.filename, e.lineno)),
        other => panic!("expected an error, got {other:?}"),
    };
    expect_error(&worker);
    for (request, answer) in [("async", "a"), ("timer", "b"), ("value", "c")] {
        worker.post_json(&json!(request)).unwrap();
        expect_error(&worker);
        worker.post_json(&json!(answer)).unwrap();
        assert_eq!(next_message(&worker), json!(format!("answer {answer}")));
    }
    let file = "/workers/errors.js".to_string();
    assert_eq!(
        seen,
        [
            ("URIError".into(), "from the entry file".into(), file.clone(), 16),
            (
                "SyntaxError".into(),
                "from an async handler".into(),
                file.clone(),
                5
            ),
            ("EvalError".into(), "from a timer".into(), file.clone(), 8),
            // A thrown non-Error: String(value), no name, no place.
            (String::new(), "42".into(), String::new(), 0),
        ]
    );
}

#[test]
fn each_worker_starts_with_its_own_randomness_and_clock() {
    let program = program("basic");
    let mut randoms = Vec::new();
    for _ in 0..3 {
        let worker = program.create_worker("workers/fresh.js").unwrap();
        let seen = next_message(&worker);
        worker.terminate();
        let now = seen["now"].as_f64().unwrap();
        assert!(
            (0.0..5_000.0).contains(&now),
            "performance.now() starts with the worker: {seen}"
        );
        let lag = seen["originLag"].as_f64().unwrap();
        assert!(
            (0.0..5_000.0).contains(&lag),
            "timeOrigin is the worker's start: {seen}"
        );
        randoms.push(seen["random"].as_f64().unwrap());
    }
    randoms.sort_by(f64::total_cmp);
    randoms.dedup();
    assert_eq!(
        randoms.len(),
        3,
        "Math.random() differs between workers: {randoms:?}"
    );
}

#[test]
fn no_prelude_function_is_reachable_through_stack_frames() {
    let program = program("basic");
    let worker = program.create_worker("workers/callsite.js").unwrap();
    assert_eq!(
        next_message(&worker),
        json!({ "called": false, "seen": 0, "stackType": "string", "hooked": false, "thrown": "string" })
    );
}
