//! The worker component is a plain WebAssembly component: jco transpiles
//! it to JavaScript and Node.js runs a worker under a small host written
//! against the WIT imports (tests/jco), exchanging messages in the codec
//! format.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

#[test]
fn the_worker_component_runs_under_jco_in_node() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let npm = root.join("target/npm");
    let jco = npm.join("node_modules/.bin/jco");
    if !jco.is_file() || Command::new("node").arg("--version").output().is_err() {
        eprintln!("skipped: jco or node is not installed (make test installs jco with npm)");
        return;
    }
    // Inside target/npm, so that Node finds jco's WASI shim in node_modules.
    let dir = npm.join("jco");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["host.mjs", "run.mjs", "package.json"] {
        std::fs::copy(root.join("tests/jco").join(file), dir.join(file)).unwrap();
    }
    let transpiled = Command::new(&jco)
        .arg("transpile")
        .arg(root.join("target/guest/miniworker_worker.wasm"))
        .args([
            "--name",
            "worker",
            "--map",
            "miniworker:sandbox/*=../host.mjs#*",
            "-o",
        ])
        .arg(dir.join("out"))
        .output()
        .expect("jco runs");
    assert!(
        transpiled.status.success(),
        "{}",
        String::from_utf8_lossy(&transpiled.stderr)
    );
    let out = Command::new("node")
        .arg(dir.join("run.mjs"))
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        result,
        json!({
            "listening": [true, true],
            "console": [
                "module './nope' is not defined, require args is './nope'",
                "worker got hello",
                "worker got wörld",
            ],
            "messages": ["got hello", "got wörld"],
            "errors": [],
        })
    );
}
