//! The command line: `run` output, console format and order, exit codes.

use crate::common::{fixture, miniworker, run_fixture, run_fixture_with, stderr, stdout};

#[test]
fn hello_example_prints_worker_and_main_lines() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
    let out = miniworker(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[worker] {\"msg\":\"hello worker\"}\n\
         [main] worker says: {\"msg\":\"hello main\",\"echo\":\"hello worker\"}\n"
    );
}

#[test]
fn console_lines_are_prefixed_and_formatted() {
    let out = run_fixture("console-format");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[main] plain string 42 -0 true null undefined\n\
         [main] {\"a\":1,\"b\":\"two\",\"c\":[1,2,{\"d\":null}]}\n\
         [main] line one\n\
         [main] line two\n\
         [main] Map(1) {\"k\" => 1} Set(2) {1,2} 10n\n\
         [main] [Function: named] Symbol(s)\n\
         [main] {\"name\":\"loop\",\"self\":[Circular]}\n"
    );
}

#[test]
fn console_lines_appear_in_causal_order() {
    let out = run_fixture("causal-order");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    // The worker runs concurrently: only what causality orders is asserted.
    let created = lines
        .iter()
        .position(|l| *l == "[main] main created the worker")
        .unwrap();
    let first_got = lines
        .iter()
        .position(|l| l.starts_with("[main] main got"))
        .unwrap();
    assert!(created < first_got, "{text}");
    // Each worker line comes before the main line reacting to its message.
    for i in 1..=3 {
        let sent = lines
            .iter()
            .position(|l| *l == format!("[worker] worker sends {i}"))
            .unwrap();
        let got = lines
            .iter()
            .position(|l| *l == format!("[main] main got {i}"))
            .unwrap();
        assert!(sent < got, "{text}");
    }
    let got: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("[main] main got"))
        .collect();
    assert_eq!(
        got,
        ["[main] main got 1", "[main] main got 2", "[main] main got 3"]
    );
}

#[test]
fn uncaught_main_error_exits_1_after_running_on() {
    let out = run_fixture("uncaught");
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "[main] App.onError saw: TypeError: cannot read property 'boom' of null\n[main] timers still run\n"
    );
    let err = stderr(&out);
    assert!(
        err.contains("Uncaught TypeError: cannot read property 'boom' of null"),
        "{err}"
    );
    assert!(
        err.contains("/app.js:9"),
        "the stack names the project file: {err}"
    );
}

#[test]
fn timeout_exits_124() {
    let path = fixture("timeout");
    let out = miniworker(&["run", "--timeout", "0.3", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(124), "stderr: {}", stderr(&out));
}

#[test]
fn bad_project_exits_2_and_check_lists_every_problem() {
    let path = fixture("bad-mixed");
    let run = miniworker(&["run", path.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    let check = miniworker(&["check", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(2));
    let err = stderr(&check);
    assert!(err.contains("workers/notes.txt: only .js files"), "{err}");
    assert!(err.contains("workers/sub/data.json: only .js files"), "{err}");
    let good = miniworker(&["check", fixture("basic").to_str().unwrap()]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(miniworker(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(miniworker(&["run"]).status.code(), Some(2));
}

#[test]
fn wx_surface_and_create_worker_rules() {
    let out = run_fixture("wx-surface");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let expect = [
        "[main] getSystemInfoSync: TypeError: wx.getSystemInfoSync is not supported by this host",
        "[main] request: TypeError: wx.request is not supported by this host",
        "[main] in: false",
        "[main] createWorker in: true",
        "[main] canIUse createWorker: true",
        "[main] canIUse request: false",
        "[main] outside: Error: createWorker: 'app.js' is not inside the workers directory 'workers'",
        "[main] missing: Error: createWorker: 'workers/none.js' does not exist",
        "[main] not js: Error: createWorker: 'workers/a' is not a .js file",
        "[main] directory: Error: createWorker: 'workers/dir' is not a .js file",
        "[main] dotdot: Error: createWorker: 'workers/../app.js' is not inside the workers directory 'workers'",
        "[main] escape: Error: createWorker: '../../etc/passwd.js' leads outside the project",
        "[main] non-string: TypeError: createWorker: the script path must be a string",
        "[main] second: Error: createWorker: only one worker may run at a time; call terminate() on it first",
        "[main] after terminate: function",
        "[main] post after terminate: Error: worker was terminated",
        "[main] terminate twice: undefined",
        "[main] App twice: Error: App() may be called only once",
        "[main] preDownloadSubpackage preDownloadSubpackage:ok",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expect, "{text}");
}

#[test]
fn app_lifecycle_runs_in_order() {
    let out = run_fixture("lifecycle");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[main] app.js runs; getApp() before App: undefined\n\
         [main] app.js done\n\
         [main] microtask of the first turn\n\
         [main] onLaunch {\"path\":\"\",\"query\":{},\"scene\":1001,\"referrerInfo\":{}} this===getApp(): true\n\
         [main] onShow scene 1001 n=1\n"
    );
}

#[test]
fn a_pending_worker_timer_keeps_the_run_alive() {
    let out = run_fixture("worker-timer");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "[main] main got late hello\n");
}

#[test]
fn cleared_timers_do_not_keep_the_run_alive() {
    // The longest timer is a minute away: the run must end once it is
    // cleared, well inside the timeout (124 otherwise).
    let path = fixture("cleared-timers");
    let out = miniworker(&["run", "--timeout", "20", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "[main] tick\n[main] cleared\n");
}

#[test]
fn memory_cap_refuses_big_messages_and_kills_bombs() {
    let out = run_fixture("limits");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].starts_with("[main] refused RangeError ") && lines[0].contains("16777216 bytes"),
        "{text}"
    );
    assert_eq!(
        lines[1..],
        [
            "[main] echo small",
            "[main] bomb says ready",
            "[main] killed memory string",
            "[main] post after kill: worker was killed: memory",
            "[main] after kill still here",
        ][..],
        "{text}"
    );
    assert!(!text.contains("caught"), "{text}");
}

#[test]
fn a_main_thread_over_its_memory_cap_exits_3() {
    let out = run_fixture("main-memory");
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "[main] start\n");
    assert!(stderr(&out).contains("(memory)"), "{}", stderr(&out));
}

#[test]
fn a_main_thread_over_its_cpu_time_exits_3() {
    let out = run_fixture_with("main-spin", &["--cpu-time", "0.3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "[main] start\n");
    assert!(stderr(&out).contains("(cpu-time)"), "{}", stderr(&out));
}

#[test]
fn turns_run_in_the_same_order_in_both_contexts() {
    let out = run_fixture("turns");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let order = r#"["async-start","sync-end","micro1","micro2","async-resumed","t0-a","t0-b xy","t5","t5-micro","t5-micro2","t5-b","t10 clears t15","t20","iv1","iv2","iv3","crowd in order"]"#;
    assert_eq!(
        stdout(&out),
        format!("[main] {order}\n[main] worker: same order\n[main] listener this: plain\n")
    );
    let err = stderr(&out);
    assert!(err.contains("URIError: from the entry file"), "{err}");
    assert!(err.contains("/workers/errors.js:16"), "{err}");
}

/// `run --json` on fixture `name`: the exit code and the JSON lines.
fn run_json(name: &str, flags: &[&str]) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = run_fixture_with(name, &[&["--json"], flags].concat());
    (out.status.code(), crate::common::event_lines(&out.stdout))
}

#[test]
fn run_json_gives_events_as_json_lines_and_the_exit_code_last() {
    use serde_json::json;
    let (code, lines) = run_json("uncaught", &[]);
    assert_eq!(code, Some(1));
    assert_eq!(lines[0], json!({ "type": "ready", "protocol": 1 }));
    assert_eq!(
        lines[1],
        json!({ "type": "console", "source": "main", "level": "log",
                "args": ["App.onError saw: TypeError: cannot read property 'boom' of null"] })
    );
    assert_eq!(lines[2]["type"], "error");
    assert_eq!(
        (
            lines[2]["source"].as_str(),
            lines[2]["name"].as_str(),
            lines[2]["lineno"].as_u64()
        ),
        (Some("main"), Some("TypeError"), Some(9))
    );
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 1, "reason": "uncaught" }))
    );

    let (code, lines) = run_json("limits", &[]);
    assert_eq!(code, Some(0));
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "killed" && l["source"] == "worker" && l["reason"] == "memory"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "quiescent" }))
    );

    let (code, lines) = run_json("main-spin", &["--cpu-time", "0.3"]);
    assert_eq!(code, Some(3));
    assert_eq!(lines[lines.len() - 2]["source"], "main");
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 3, "reason": "killed" }))
    );

    let (code, lines) = run_json("bad-mixed", &[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        lines,
        [json!({ "type": "exit", "code": 2, "reason": "bad-project" })]
    );
}

#[test]
fn the_published_schema_is_the_one_generated_from_the_event_type() {
    let out = miniworker(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.schema.json");
    let committed = std::fs::read_to_string(path).unwrap();
    // Regenerate with: miniworker schema > docs/events.schema.json
    assert!(stdout(&out) == committed, "docs/events.schema.json is stale");
}

#[test]
fn a_usage_error_in_a_json_mode_still_ends_with_the_exit_line() {
    for args in [
        &["run", "--json", "--timeout", "1e300", "x"][..],
        &["run", "--json", "--cpu-time", "1.8e19", "x"][..],
        &["run", "--json", "--no-such-flag", "x"][..],
        &["worker", "x"][..],
    ] {
        let out = miniworker(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let lines = crate::common::event_lines(&out.stdout);
        assert_eq!(
            lines,
            [serde_json::json!({ "type": "exit", "code": 2, "reason": "bad-usage" })],
            "{args:?}"
        );
        assert!(!stderr(&out).is_empty());
    }
    // Out of range without --json: exit 2 with a message, never a panic.
    for flag in ["--timeout", "--cpu-time"] {
        for value in ["1e300", "1.8e19", "-1", "nan"] {
            let path = fixture("basic");
            let arg = format!("{flag}={value}");
            let out = miniworker(&["run", &arg, path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", stderr(&out));
            let name = flag.trim_start_matches("--");
            assert!(stderr(&out).contains(name), "{flag} {value}: {}", stderr(&out));
        }
    }
}

#[test]
fn each_app_hook_is_a_turn_with_its_own_budgets() {
    let out = run_fixture_with("app-hooks", &["--cpu-time", "2", "--max-console", "1000000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", stderr(&out));
    assert_eq!(lines[0].len(), "[main] ".len() + (900 << 10));
    assert!(lines[1].starts_with("[main] SSS"));
}

#[test]
fn lone_surrogates_cross_exactly_in_keys_values_errors_and_regexps() {
    let out = run_fixture("surrogates");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[main] keys dc00, dc01, d800, 76, 65, 72\n\
         [main] value 61 dfff 62\n\
         [main] error 4e dc00 / d800 20 6d 65 73 73 61 67 65\n\
         [main] regexp d801\n"
    );
}

#[test]
fn a_mini_game_runs_game_js_as_its_main_thread() {
    let out = run_fixture("game");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[main] running as /game.js\n[main] game.js got 3 steps from /workers/physics.js\n"
    );
}

#[test]
fn debug_logging_shows_each_instance_life_with_its_id() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .args(["run", "--timeout", "30"])
        .arg(fixture("../../examples/hello"))
        .env("RUST_LOG", "miniworker=debug")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let log = stderr(&out);
    let mut at = 0;
    for event in [
        "instance started",
        "worker created",
        "worker terminated",
        "run ended",
    ] {
        let line = log
            .lines()
            .skip(at)
            .position(|l| l.contains(event) && l.contains("instance=1"));
        let Some(found) = line else {
            panic!("no {event:?} with the instance's id, in order, in:\n{log}");
        };
        at += found + 1;
    }
}

#[test]
fn check_json_reports_every_problem_and_versions_name_the_protocol() {
    let out = miniworker(&["check", "--json", fixture("bad-mixed").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(2), "{report}");
    let out = miniworker(&["check", "--json", fixture("basic").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["ok"],
        true
    );
    let out = miniworker(&["--version"]);
    assert_eq!(
        stdout(&out),
        format!(
            "miniworker {} (event stream protocol 1)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn sizes_and_durations_take_units() {
    // 200ms of CPU per turn kills main-spin; 2MiB of memory is too little to start.
    let out = run_fixture_with("main-spin", &["--max-cpu-time", "200ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cpu-time"), "{}", stderr(&out));
    let out = run_fixture_with(
        "basic",
        &[
            "--max-memory",
            "1GiB",
            "--max-stack",
            "256KiB",
            "--max-message",
            "1MB",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_fixture_with("basic", &["--max-memory", "5GiB"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--max-memory takes 1MiB to 4095MiB, not 5GiB"),
        "{}",
        stderr(&out)
    );
}
