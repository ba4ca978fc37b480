//! The example clients' WebSocket sessions (examples/clients): the same
//! message API as their stdio workers, against a real server with tokens
//! (the Python client sends it as a header, the Node.js one in the
//! subprotocol list, as browsers must).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::Server;

const KEY: &str = "the clients' key, over 16 bytes";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn token() -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let key = jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()).expect("an HMAC key");
    jsonwebtoken::encode(
        &Default::default(),
        &json!({ "sub": "clients", "exp": exp }),
        &key,
    )
    .expect("a token")
}

/// Runs a client against `server`: its JSON lines.
fn run(command: &mut Command, server: &Server) -> Vec<Value> {
    let out = command
        .arg(
            root()
                .join("examples/clients")
                .join(if command.get_program() == "node" {
                    "miniworker_client.js"
                } else {
                    "miniworker_client.py"
                }),
        )
        .args(["--server", &format!("ws://{}", server.data), "--token", &token()])
        .arg(crate::common::fixture("stdio"))
        .arg("workers/main.js")
        .output()
        .expect("the client runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect()
}

fn check(lines: &[Value]) {
    assert_eq!(lines[0], json!({ "first": "ready" }));
    assert_eq!(lines[1], json!({ "reply": { "got": { "n": 1 } } }));
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "terminated" }))
    );
}

#[test]
fn the_python_client_opens_a_session_with_a_token_header() {
    let python = root().join("target/venv/bin/python");
    let has_websockets = Command::new(&python)
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_websockets {
        eprintln!("SKIPPED Python WebSocket client: target/venv has no websockets (make test-tools)");
        return;
    }
    let server = Server::start(&["--auth-key", KEY]);
    check(&run(&mut Command::new(python), &server));
    assert_eq!(server.metric("miniworker_opens_total{result=\"opened\"}"), 1.0);
}

#[test]
fn the_node_client_opens_a_session_with_a_token_subprotocol() {
    let modules = root().join("target/npm/node_modules");
    if Command::new("node").arg("--version").output().is_err() || !modules.join("ws").exists() {
        eprintln!(
            "SKIPPED Node.js WebSocket client: needs node and target/npm/node_modules/ws (make typescript)"
        );
        return;
    }
    let server = Server::start(&["--auth-key", KEY]);
    check(&run(Command::new("node").env("NODE_PATH", modules), &server));
    assert_eq!(server.metric("miniworker_opens_total{result=\"opened\"}"), 1.0);
}
