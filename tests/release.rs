//! The release archive (`make dist`, deploy/dist.sh): it unpacks into any
//! folder, its checksum holds, and its binary runs the shipped example with
//! nothing else on PATH and no environment.

use std::path::Path;
use std::process::Command;

#[test]
fn the_release_archive_runs_hello_from_anywhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tempfile::tempdir().expect("a temporary directory");
    let made = Command::new(root.join("deploy/dist.sh"))
        .arg(env!("CARGO_BIN_EXE_miniworker"))
        .arg(root.join("target/guest"))
        .arg(out.path())
        .output()
        .expect("dist.sh runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let archive = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let name = Path::new(&archive)
        .file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        name,
        format!("miniworker-{version}-{}-linux.tar.gz", std::env::consts::ARCH)
    );
    let checked = Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(out.path())
        .output()
        .expect("sha256sum runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    let unpacked = tempfile::tempdir().expect("a temporary directory");
    let untar = Command::new("tar")
        .args(["-xzf", &archive, "-C"])
        .arg(unpacked.path())
        .status()
        .expect("tar runs");
    assert!(untar.success());
    let top = unpacked.path().join(name.trim_end_matches(".tar.gz"));
    for file in [
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "docs/spec.md",
        "components/miniworker_worker.wasm",
    ] {
        assert!(top.join(file).is_file(), "{file} is missing from the archive");
    }
    let run = Command::new(top.join("bin/miniworker"))
        .args(["run", "examples/hello"])
        .current_dir(&top)
        .env_clear()
        .env("PATH", "")
        .output()
        .expect("the shipped binary runs");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "[worker] {\"msg\":\"hello worker\"}\n[main] worker says: {\"msg\":\"hello main\",\"echo\":\"hello worker\"}\n"
    );
    // The precompiled code is in the binary: no warning about compiling.
    assert!(
        String::from_utf8_lossy(&run.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
