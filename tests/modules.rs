//! Modules (docs/spec.md section 3): CommonJS require, ES modules and their interplay,
//! require in app.js, and the capability boundary around the workers directory.

use std::path::Path;

use miniworker::{Event, MiniProgram, Project};
use serde_json::json;

use crate::common::{fixture, next_event, next_message, program, run_fixture, runtime, stderr, stdout};

fn not_defined(id: &str, request: &str) -> String {
    format!("module '{id}' is not defined, require args is '{request}'")
}

#[test]
fn commonjs_require_follows_each_rule() {
    let program = program("modules");
    let worker = program.create_worker("workers/main.js").unwrap();
    let r = next_message(&worker);
    assert_eq!(r["a"], json!(["a", "/workers/lib/a.js", "/workers/lib", true]));
    assert_eq!(
        r["sameModule"],
        json!(true),
        "one module object for every spelling"
    );
    assert_eq!(r["runsOnce"], json!(1));
    assert_eq!(r["index"], json!("index"), "a directory means its index.js");
    assert_eq!(r["dirIndex"], json!("dir index"));
    assert_eq!(
        r["cycle"],
        json!(["a-early", null]),
        "a cycle sees partial exports"
    );
    assert_eq!(r["filename"], json!("/workers/main.js"));
    assert_eq!(r["dirname"], json!("/workers"));
    assert_eq!(
        r["missing"],
        json!(format!(
            "Error: {}",
            not_defined("workers/lib/nope.js", "./lib/nope")
        ))
    );
    // A module that throws is not cached: it runs again on the next require.
    assert_eq!(
        r["fails"],
        json!(["Error: fails on load", "Error: fails on load", 2])
    );
    assert_eq!(r["esm"], json!(["default", "fromCjs", "twice"]));
    assert_eq!(r["esmDefault"], json!("hello"));
    // The CommonJS file imported by an ES module and required here ran once.
    assert_eq!(r["counter"], json!([1, 1]));
    assert_eq!(
        r["tla"],
        json!("Error: '/workers/esm/tla.js' uses top-level await: it can be imported, not required")
    );
    assert_eq!(
        r["nonString"],
        json!(format!("Error: {}", not_defined("42.js", "42")))
    );
}

#[test]
fn an_es_module_entry_imports_both_kinds() {
    let program = program("modules");
    let worker = program.create_worker("workers/esm/entry.js").unwrap();
    worker.post_json(&json!("go")).unwrap();
    assert_eq!(
        next_message(&worker),
        json!({
            "hello": "hello",
            "twice": 42,
            "fromCjs": ["index", "index", "f", 1],
            "lib": "a",
            "count": 1,
            "sameNamespace": true,
            "moduleScope": ["undefined", "undefined", "undefined", "undefined"],
        })
    );
}

#[test]
fn es_module_entry_errors_reach_on_error_with_file_and_line() {
    let program = program("modules");
    let worker = program.create_worker("workers/esm/broken.js").unwrap();
    let Event::Error { error: e, .. } = next_event(&worker) else {
        panic!("expected an error event")
    };
    assert_eq!(
        (e.name.as_str(), e.message.as_str(), e.filename.as_str(), e.lineno),
        (
            "RangeError",
            "thrown by an ES entry module",
            "/workers/esm/broken.js",
            4
        )
    );
    worker.terminate();
    let worker = program.create_worker("workers/esm/missing-import.js").unwrap();
    let Event::Error { error: e, .. } = next_event(&worker) else {
        panic!("expected an error event")
    };
    assert_eq!(
        e.message,
        not_defined("workers/esm/not-there.js", "./not-there.js")
    );
    assert_eq!(e.filename, "/workers/esm/missing-import.js");
}

#[test]
fn app_js_requires_from_the_project_root() {
    let out = run_fixture("modules");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        [
            "[main] util from /utils/u.js",
            "[main] true",
            "[main] a",
            &format!("[main] {}", not_defined("../outside.js", "../outside.js")),
            &format!("[main] {}", not_defined("missing.js", "./missing")),
            &format!("[main] {}", not_defined("/utils/u.js", "/utils/u.js")),
            &format!("[main] {}", not_defined("app.json.js", "app.json")),
            "",
        ]
        .join("\n")
    );
}

/// Copies fixture `name` into a scratch directory.
fn scratch_copy(name: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixture(name), dir.path());
    dir
}

#[test]
fn require_cannot_leave_the_workers_directory() {
    let dir = scratch_copy("modules");
    let project = Project::open(dir.path()).unwrap();
    // Planted after the project was checked: each is refused when required.
    let workers = dir.path().join("workers");
    std::os::unix::fs::symlink("../app.js", workers.join("link.js")).unwrap();
    std::os::unix::fs::symlink("../utils", workers.join("linkdir")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", workers.join("abs.js")).unwrap();
    std::os::unix::fs::symlink("lib", workers.join("lib2")).unwrap();
    std::fs::create_dir(workers.join("dir.js")).unwrap();
    let fifo = std::ffi::CString::new(workers.join("fifo.js").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let big = std::fs::File::create(workers.join("big.js")).unwrap();
    big.set_len(17 << 20).unwrap();
    // A hard link to a file outside the workers directory (to /etc it would
    // cross devices here; the attack is the same).
    std::fs::hard_link(dir.path().join("app.js"), workers.join("hard.js")).unwrap();

    let program = MiniProgram::new(runtime(), project).unwrap();
    for planted in [
        "workers/fifo.js",
        "workers/big.js",
        "workers/link.js",
        "workers/dir.js",
        "workers/hard.js",
    ] {
        match program.create_worker(planted) {
            Err(miniworker::Error::BadScript(why)) => assert!(why.contains(planted), "{why}"),
            other => panic!("createWorker('{planted}') gave {:?}", other.map(|_| ())),
        }
    }
    let worker = program.create_worker("workers/escape.js").unwrap();
    let got = next_message(&worker);
    let expected = [
        ("app.js", "../app.js"),
        ("../etc/passwd.js", "../../etc/passwd"),
        ("/etc/passwd.js", "/etc/passwd"),
        ("/workers/lib/a.js", "/workers/lib/a.js"),
        ("app.js", "app.js"),
        ("utils/u.js", "utils/u.js"),
        ("app.js", "workers/../app.js"),
        ("app.js", "./lib/../../app.js"),
        ("a\0b.js", "a\0b"),
        ("..\\app.js", "..\\app.js"),
        ("workers/link.js", "./link.js"),
        ("workers/linkdir/u.js", "./linkdir/u.js"),
        ("workers/abs.js", "./abs.js"),
        ("workers/dir.js", "./dir.js"),
        ("workers/fifo.js", "./fifo.js"),
        ("", ""),
        ("workers/lib2/a.js", "./lib2/a.js"),
        ("utils/u.js", "../utils/u"),
        ("workers.js", "workers"),
        ("../app.js", "./deep/../../../app.js"),
        ("workers/big.js", "./big.js"),
        ("workers/hard.js", "./hard.js"),
    ];
    let expected: Vec<String> = expected.iter().map(|(id, r)| not_defined(id, r)).collect();
    assert_eq!(got, json!(expected));
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

#[test]
fn a_commonjs_export_name_with_nul_is_not_cut_short_for_es_importers() {
    let program = program("modules");
    let worker = program.create_worker("workers/nul-esm.js").unwrap();
    assert_eq!(
        next_message(&worker),
        json!({ "names": ["default", "ok"], "viaDefault": 1 })
    );
}
