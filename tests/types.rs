//! types/miniworker.d.ts: a typed example project (types/example) must
//! type-check, and what the types refuse (`@ts-expect-error` lines) must be
//! refused.

use std::path::Path;
use std::process::Command;

#[test]
fn the_typescript_declarations_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tsc = root.join("target/npm/node_modules/.bin/tsc");
    if !tsc.is_file() {
        eprintln!("skipped: TypeScript is not installed (make test installs it with npm)");
        return;
    }
    let out = Command::new(&tsc)
        .arg("-p")
        .arg(root.join("types/example/tsconfig.json"))
        .output()
        .expect("tsc runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
