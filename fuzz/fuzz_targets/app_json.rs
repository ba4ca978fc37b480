//! Any `app.json` gives a project or a list of problems, never a panic; a
//! project it gives has a workers directory strictly below the root.
#![no_main]

use std::sync::OnceLock;

use cap_std::fs::Dir;
use libfuzzer_sys::fuzz_target;
use miniworker_project::Project;

/// A project root with a few directories an app.json may name.
fn root() -> &'static tempfile::TempDir {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a scratch directory");
        for d in ["workers", "workers/sub", "other", "w s"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(dir.path().join("workers/a.js"), "1").expect("write");
        std::os::unix::fs::symlink("workers", dir.path().join("link")).expect("symlink");
        dir
    })
}

fuzz_target!(|bytes: &[u8]| {
    let root = root();
    std::fs::write(root.path().join("app.json"), bytes).expect("write app.json");
    let dir = Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).expect("open the root");
    match Project::from_dir(dir) {
        Ok(project) => {
            let workers = project.workers_dir();
            assert!(!workers.is_empty() && !workers.starts_with('/'), "{workers:?}");
            assert!(workers.split('/').all(|p| !p.is_empty() && p != "." && p != ".."), "{workers:?}");
            assert!(!workers.starts_with("link"), "reached through a symlink: {workers:?}");
        }
        Err(e) => assert!(!e.problems.is_empty()),
    }
});
