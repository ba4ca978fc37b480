//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use miniworker::{Event, MiniProgram, Project, Runtime, Worker};

/// One runtime for the whole test binary: the compiled components are shared,
/// as in a real host.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("the runtime starts"))
}

/// The path of fixture project `name`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A library-mode instance of fixture `name`.
pub fn program(name: &str) -> MiniProgram {
    let project = Project::open(fixture(name)).expect("the fixture is a valid project");
    MiniProgram::new(runtime(), project).expect("under the host caps")
}

/// How long a test waits for one event before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The worker's next message, skipping console lines; panics on anything else.
pub fn next_message(worker: &Worker) -> serde_json::Value {
    loop {
        match worker.recv_timeout(PATIENCE).expect("a decodable event") {
            Some(Event::Message(m)) => return m.to_json().expect("a JSON-able message"),
            Some(Event::Console { .. } | Event::Ready { .. }) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The worker's next event that is not a console line or `Ready`.
pub fn next_event(worker: &Worker) -> Event {
    loop {
        match worker.recv_timeout(PATIENCE).expect("a decodable event") {
            Some(Event::Console { .. } | Event::Ready { .. }) => continue,
            Some(event) => return event,
            None => panic!("no event within {PATIENCE:?}"),
        }
    }
}

/// Runs the `miniworker` binary with `args`.
pub fn miniworker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs `miniworker run` on fixture `name` (with a safety timeout).
pub fn run_fixture(name: &str) -> Output {
    run_fixture_with(name, &[])
}

/// The stdout of `output` as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The stderr of `output` as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `miniworker run` on fixture `name` with extra flags.
pub fn run_fixture_with(name: &str, flags: &[&str]) -> Output {
    let path = fixture(name);
    let mut args = vec!["run", "--timeout", "30"];
    args.extend_from_slice(flags);
    args.push(path.to_str().expect("utf-8 path"));
    miniworker(&args)
}

/// The JSON Schema of the event stream, as committed in the docs.
fn event_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.schema.json");
        let text = std::fs::read_to_string(&path).expect("docs/events.schema.json");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    })
}

/// The lines of an event stream (`run --json`, `worker`): each one JSON,
/// valid against `docs/events.schema.json`, with `type` as its first key;
/// the last one `exit`.
pub fn event_lines(output: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<serde_json::Value> = text.lines().map(event_line).collect();
    assert_eq!(
        lines.last().and_then(|l| l["type"].as_str()),
        Some("exit"),
        "the stream ends with exit: {text}"
    );
    lines
}

/// One line of an event stream: JSON, valid against
/// `docs/events.schema.json`, with `type` as its first key.
pub fn event_line(l: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
    if let Err(e) = event_schema().validate(&value) {
        panic!("a line outside the schema: {l}: {e}");
    }
    assert!(l.starts_with("{\"type\":"), "type is not the first key: {l}");
    value
}
