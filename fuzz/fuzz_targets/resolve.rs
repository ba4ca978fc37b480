//! Any `require` request from any file resolves to a normalised `.js` file
//! that the requesting code may read (inside the workers directory for a
//! worker), and that `load_module` then reads; or it fails with the
//! not-defined message. Never a panic, never a file outside, never a symlink.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use miniworker_project::resolve::{is_inside, normalize};
use miniworker_project::{CodeRole, Project};

fn project() -> &'static (tempfile::TempDir, Project) {
    static PROJECT: OnceLock<(tempfile::TempDir, Project)> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let p = dir.path();
        for d in ["workers/lib/deep", "utils"] {
            std::fs::create_dir_all(p.join(d)).expect("mkdir");
        }
        for f in ["app.js", "utils/u.js", "workers/a.js", "workers/lib/index.js", "workers/lib/deep/x.js"] {
            std::fs::write(p.join(f), "1").expect("write");
        }
        std::fs::write(p.join("app.json"), r#"{"workers": "workers"}"#).expect("write");
        let project = Project::open(p).expect("a valid project");
        // Planted after the check, as an attacker with write access would.
        std::os::unix::fs::symlink("../app.js", p.join("workers/link.js")).expect("symlink");
        std::os::unix::fs::symlink("../utils", p.join("workers/ldir")).expect("symlink");
        (dir, project)
    })
}

fuzz_target!(|bytes: &[u8]| {
    let (_, project) = project();
    let text = String::from_utf8_lossy(bytes);
    let (from, request) = text.split_once('\n').unwrap_or(("/workers/a.js", &text));
    for role in [CodeRole::Worker, CodeRole::Main] {
        match project.resolve_module(role, from, request) {
            Ok(file) => {
                let path = file.strip_prefix('/').expect("a leading /");
                assert_eq!(normalize("", path).as_deref(), Some(path), "{file}");
                assert!(path.ends_with(".js"), "{file}");
                assert!(!path.contains("link") && !path.contains("ldir"), "a symlink: {file}");
                if role == CodeRole::Worker {
                    assert!(is_inside("workers", path), "{file}");
                }
                project.load_module(role, &file).expect("a resolved module loads");
            }
            Err(message) => assert!(message.starts_with("module '"), "{message}"),
        }
    }
});
