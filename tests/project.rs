//! Loading a project (docs/spec.md section 1): every `app.json` error, the workers
//! directory rules, all problems reported at once.

use std::fs;
use std::path::Path;

use miniworker::Project;

/// A scratch project with `app.json` holding `app_json` and the given files.
fn scratch(app_json: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("app.json"), app_json).unwrap();
    for (path, text) in files {
        let full = dir.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }
    dir
}

fn problems(path: &Path) -> Vec<String> {
    match Project::open(path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.problems,
    }
}

fn single_problem(app_json: &str, files: &[(&str, &str)]) -> String {
    let dir = scratch(app_json, files);
    let found = problems(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn valid_forms_of_the_workers_field_load() {
    for app_json in [
        r#"{"workers": "workers"}"#,
        r#"{"workers": "/workers"}"#,
        r#"{"workers": "./workers/"}"#,
        r#"{"workers": {"path": "workers", "isSubpackage": true}}"#,
        "\u{feff}{\"workers\": \"workers\", \"pages\": 7}",
    ] {
        let dir = scratch(app_json, &[("workers/a.js", "")]);
        let project = Project::open(dir.path()).unwrap_or_else(|e| panic!("{app_json}: {e}"));
        assert_eq!(project.workers_dir(), "workers");
    }
}

#[test]
fn missing_app_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(problems(dir.path()), ["app.json: missing"]);
}

#[test]
fn missing_project_directory_is_named() {
    let found = problems(Path::new("/nonexistent/miniworker/project"));
    assert!(
        found[0].contains("cannot open the project directory"),
        "{found:?}"
    );
}

#[test]
fn invalid_json_is_reported_with_line_and_column() {
    let p = single_problem(
        "{\n  \"workers\": \"workers\",\n  oops\n}",
        &[("workers/a.js", "")],
    );
    assert!(p.starts_with("app.json: invalid JSON at line 3, column 3"), "{p}");
}

#[test]
fn each_bad_workers_field_is_named() {
    for (app_json, expect) in [
        (r#"{"pages": []}"#, "app.json: no \"workers\" field"),
        (r#"[1]"#, "app.json: the top level must be an object"),
        (
            r#"{"workers": 3}"#,
            "app.json: \"workers\" must be a string or an object",
        ),
        (
            r#"{"workers": {"isSubpackage": true}}"#,
            "app.json: \"workers\" is an object without a string \"path\"",
        ),
        (
            r#"{"workers": ""}"#,
            "must name a directory strictly below the project root",
        ),
        (
            r#"{"workers": "/"}"#,
            "must name a directory strictly below the project root",
        ),
        (
            r#"{"workers": "."}"#,
            "must name a directory strictly below the project root",
        ),
        (
            r#"{"workers": "../elsewhere"}"#,
            "must name a directory strictly below the project root",
        ),
        (
            r#"{"workers": "nothere"}"#,
            "'nothere' is not a directory below the project root",
        ),
        (
            r#"{"workers": "app.js"}"#,
            "'app.js' is not a directory below the project root",
        ),
    ] {
        let p = single_problem(app_json, &[("workers/a.js", ""), ("app.js", "")]);
        assert!(p.contains(expect), "{app_json}: {p}");
    }
}

#[test]
fn workers_directory_reached_through_a_symlink_is_refused() {
    let dir = scratch(r#"{"workers": "link/workers"}"#, &[("real/workers/a.js", "")]);
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let found = problems(dir.path());
    assert!(found[0].contains("a symbolic link"), "{found:?}");
}

#[test]
fn only_regular_js_files_may_be_in_the_workers_directory() {
    let dir = scratch(
        r#"{"workers": "workers"}"#,
        &[
            ("workers/ok.js", ""),
            ("workers/readme.md", ""),
            ("workers/deep/er/img.png", ""),
            ("workers/deep/fine.js", ""),
        ],
    );
    let w = dir.path().join("workers");
    std::os::unix::fs::symlink(w.join("ok.js"), w.join("alias.js")).unwrap();
    std::os::unix::fs::symlink("/etc", w.join("etc")).unwrap();
    let fifo = w.join("pipe.js");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let big = fs::File::create(w.join("big.js")).unwrap();
    big.set_len((16 << 20) + 1).unwrap();
    let found = problems(dir.path());
    assert_eq!(
        found,
        [
            "workers/alias.js: a symbolic link (only regular .js files may be in the workers directory)",
            "workers/big.js: larger than 16 MiB (only regular .js files may be in the workers directory)",
            "workers/deep/er/img.png: only .js files may be in the workers directory",
            "workers/etc: only .js files may be in the workers directory",
            "workers/pipe.js: not a regular file (only regular .js files may be in the workers directory)",
            "workers/readme.md: only .js files may be in the workers directory",
        ]
    );
}

#[test]
fn a_file_with_more_than_one_hard_link_is_refused_at_check_time() {
    let dir = scratch(
        r#"{"workers": "workers"}"#,
        &[("workers/a.js", ""), ("outside.js", "secret")],
    );
    fs::hard_link(dir.path().join("outside.js"), dir.path().join("workers/leak.js")).unwrap();
    assert_eq!(
        problems(dir.path()),
        [
            "workers/leak.js: a file with more than one hard link (only regular .js files may be in the workers directory)"
        ]
    );
}

#[test]
fn a_file_named_with_bytes_that_are_not_utf8_is_named_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch(r#"{"workers": "workers"}"#, &[("workers/a.js", "")]);
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.js");
    fs::write(dir.path().join("workers").join(name), "").unwrap();
    assert_eq!(
        problems(dir.path()),
        ["workers/bad\\xff.js: a name that is not UTF-8"]
    );
}

#[test]
fn thousands_of_directories_are_scanned_within_a_small_descriptor_limit() {
    let dir = scratch(r#"{"workers": "workers"}"#, &[("workers/a.js", "")]);
    for i in 0..2000 {
        let sub = dir.path().join(format!("workers/d{i:04}"));
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("x.js"), "").unwrap();
    }
    // The scan runs in a child whose descriptor limit is far below 2,000.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec \"$0\" check {}",
            dir.path().display()
        ))
        .arg(env!("CARGO_BIN_EXE_miniworker"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_mini_game_has_game_json_and_app_json_wins_over_it() {
    // game.json alone: its workers field, and its errors named after it.
    let dir = scratch(r#"{"workers": "w"}"#, &[("w/a.js", "")]);
    fs::rename(dir.path().join("app.json"), dir.path().join("game.json")).unwrap();
    assert_eq!(Project::open(dir.path()).unwrap().main_script(), "game.js");
    fs::write(dir.path().join("game.json"), r#"{"workers": 3}"#).unwrap();
    assert_eq!(
        problems(dir.path()),
        [r#"game.json: "workers" must be a string or an object with a "path""#]
    );
    // Both: app.json wins (its workers field, app.js as the main thread).
    fs::write(dir.path().join("app.json"), r#"{"workers": "w"}"#).unwrap();
    assert_eq!(Project::open(dir.path()).unwrap().main_script(), "app.js");
}

/// The README and the docs point at nothing outside the repository: every
/// relative link resolves to a file of the repository, and no text names a
/// path beside it.
#[test]
fn the_docs_point_at_nothing_outside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().expect("the repository");
    let mut pages = vec![
        root.join("README.md"),
        root.join("CHANGELOG.md"),
        root.join("Makefile"),
    ];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    for page in pages {
        let text = std::fs::read_to_string(&page).expect("readable");
        assert!(!text.contains("../shared"), "{} names ../shared", page.display());
        for link in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if link.starts_with("http") || link.starts_with('#') || link.contains(' ') {
                continue;
            }
            let target = page
                .parent()
                .expect("a folder")
                .join(link.split('#').next().unwrap_or(link));
            let resolved = target
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: the link {link} leads nowhere", page.display()));
            assert!(
                resolved.starts_with(&root),
                "{}: {link} is outside the repository",
                page.display()
            );
        }
    }
}
