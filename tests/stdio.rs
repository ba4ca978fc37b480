//! The stdio protocol (docs/spec.md section 8): `miniworker worker PROJECT ENTRY`,
//! (the client packages of clients/ have their own tests, run by make test).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{event_lines, fixture};

/// Runs `miniworker worker` on the stdio fixture with `input` on stdin;
/// the exit status and the output lines.
fn worker_with(flags: &[&str], input: &str) -> (Option<i32>, Vec<Value>) {
    let project = fixture("stdio");
    let mut child = Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .arg("worker")
        .args(flags)
        .arg(&project)
        .arg("workers/main.js")
        .args(["--timeout", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("it ends");
    (out.status.code(), event_lines(&out.stdout))
}

fn messages(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "message")
        .map(|l| l["data"].clone())
        .collect()
}

#[test]
fn messages_flow_both_ways_and_the_exit_line_comes_last() {
    let (code, lines) = worker_with(&[], "{\"type\":\"message\",\"data\":{\"x\":[1,2]}}\n");
    assert_eq!(code, Some(0));
    assert_eq!(lines.first(), Some(&json!({ "type": "ready", "protocol": 1 })));
    assert_eq!(
        lines[1],
        json!({ "type": "console", "source": "worker", "level": "log", "args": ["hi", "{\"a\":1}"] })
    );
    assert_eq!(
        messages(&lines),
        [json!("ready"), json!({ "got": { "x": [1, 2] } })]
    );
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "end-of-input" }))
    );
}

#[test]
fn bad_lines_get_protocol_errors_and_the_stream_goes_on() {
    let input = "not json\n{\"type\":\"bogus\"}\n{\"type\":\"message\"}\n{\"no\":\"type\"}\n\
                 {\"type\":\"message\",\"data\":\"x\".repeat}\n{\"type\":\"message\",\"data\":\"ok\"}\n";
    let (code, lines) = worker_with(&[], input);
    assert_eq!(code, Some(0));
    let errors: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "protocol-error")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 5, "{lines:?}");
    assert!(errors[0].starts_with("not JSON"), "{errors:?}");
    assert_eq!(errors[1], "unknown type 'bogus'");
    assert_eq!(errors[2], "a message without data");
    assert_eq!(errors[3], "a line without a type");
    assert_eq!(messages(&lines), [json!("ready"), json!({ "got": "ok" })]);
}

#[test]
fn a_line_over_the_message_limit_is_refused_whole() {
    let long = format!("{{\"type\":\"message\",\"data\":\"{}\"}}\n", "x".repeat(500));
    let input = format!("{long}{{\"type\":\"message\",\"data\":\"small\"}}\n");
    let (_, lines) = worker_with(&["--max-message", "200"], &input);
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "protocol-error"
                && l["message"] == "a line longer than the limit of 200 bytes"),
        "{lines:?}"
    );
    assert_eq!(messages(&lines), [json!("ready"), json!({ "got": "small" })]);
}

#[test]
fn end_of_input_drains_pending_work() {
    let (_, lines) = worker_with(&[], "{\"type\":\"message\",\"data\":\"later\"}\n");
    assert_eq!(messages(&lines), [json!("ready"), json!("later done")]);
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "end-of-input" }))
    );
}

#[test]
fn terminate_and_kills_end_the_stream() {
    let (code, lines) = worker_with(
        &[],
        "{\"type\":\"terminate\"}\n{\"type\":\"message\",\"data\":\"never\"}\n",
    );
    assert_eq!(code, Some(0));
    assert!(!messages(&lines).contains(&json!({ "got": "never" })));
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "terminated" }))
    );

    let (code, lines) = worker_with(&[], "{\"type\":\"message\",\"data\":\"die\"}\n");
    assert_eq!(code, Some(0));
    let n = lines.len();
    assert_eq!(lines[n - 2]["type"], "killed", "{lines:?}");
    assert_eq!(lines[n - 2]["reason"], "test");
    assert_eq!(
        lines[n - 1],
        json!({ "type": "exit", "code": 0, "reason": "killed" })
    );
}

#[test]
fn bigint_becomes_a_string_and_a_cycle_an_error_line() {
    let (_, lines) = worker_with(
        &[],
        "{\"type\":\"message\",\"data\":\"bigint\"}\n{\"type\":\"message\",\"data\":\"cycle\"}\n",
    );
    assert_eq!(
        messages(&lines),
        [json!("ready"), json!({ "big": "100000000000000000000" })]
    );
    let error = lines
        .iter()
        .find(|l| l["type"] == "error")
        .expect("an error line");
    assert!(error["message"].as_str().unwrap().contains("cycl"), "{error}");
}

#[test]
fn a_bad_project_or_entry_exits_2_with_an_exit_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .args(["worker", "/nonexistent/project", "workers/main.js"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"type\":\"exit\",\"code\":2,\"reason\":\"bad-project\"}\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .arg("worker")
        .arg(fixture("stdio"))
        .arg("workers/missing.js")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_line_that_is_not_utf8_is_a_protocol_error_and_the_stream_goes_on() {
    let input = b"{\"type\":\"message\",\"data\":\"\xff\xfe\"}\n{\"type\":\"message\",\"data\":{\"x\":1}}\n";
    let project = fixture("stdio");
    let mut child = Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .arg("worker")
        .arg(&project)
        .arg("workers/main.js")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = event_lines(&out.stdout);
    let errors: Vec<&Value> = lines.iter().filter(|l| l["type"] == "protocol-error").collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("UTF-8"),
        "{lines:?}"
    );
    assert!(
        messages(&lines).contains(&json!({ "got": { "x": 1 } })),
        "{lines:?}"
    );
}
