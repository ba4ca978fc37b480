//! The playground (`--playground`) in a real browser: headless Chromium
//! (Debian's package) driven by playwright-core loads the page, runs
//! examples/hello's app.js, then opens a worker session, posts a message and
//! terminates, with the token in the subprotocol list; the test reads the
//! log from the DOM.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::Server;

const KEY: &str = "the playground's key, 16+ bytes";

#[test]
fn the_playground_runs_hello_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = root.join("target/npm/node_modules");
    if !Path::new("/usr/bin/chromium").exists() || !modules.join("playwright-core").exists() {
        eprintln!(
            "SKIPPED playground: needs /usr/bin/chromium (make test-tools) and playwright-core under target/npm (make typescript)"
        );
        return;
    }
    let server = Server::start(&["--playground", "--auth-key", KEY]);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let token = super::token(KEY, &json!({ "sub": "browser", "exp": exp }));
    let out = Command::new("node")
        .env("NODE_PATH", &modules)
        .arg(root.join("tests/serve/playground.js"))
        .arg(format!("http://{}/", server.data))
        .arg(&token)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log: Vec<String> = serde_json::from_slice(&out.stdout).expect("the page's log");
    // Lines the server sent are JSON of the event stream.
    let lines: Vec<Value> = log
        .iter()
        .filter(|l| l.starts_with("{\"type\":"))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let types: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    // The run: open, need-project (first time), opened, ready, two console lines, exit.
    assert_eq!(
        types[..7],
        [
            "open",
            "need-project",
            "opened",
            "ready",
            "console",
            "console",
            "exit"
        ],
        "{log:?}"
    );
    assert_eq!(
        lines[6],
        json!({ "type": "exit", "code": 0, "reason": "quiescent" })
    );
    // The worker session: the project is cached now (no need-project).
    assert_eq!(types[7..9], ["open", "opened"], "{log:?}");
    assert!(lines.contains(
        &json!({ "type": "message", "data": { "msg": "hello main", "echo": "from the browser" } })
    ));
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "terminated" })),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("(closed: 1000")), "{log:?}");
    assert_eq!(server.metric("miniworker_project_unpacks_total"), 1.0);
}
