//! The sandbox boundary: every import of each guest component is on a
//! written allowlist, and the worker cannot name the main thread's `wx` side.

use crate::common::runtime;
use miniworker::ALLOWED_WASI_IMPORTS;

const OURS_WORKER: &[&str] = &["types", "context", "worker-host"];
const OURS_MAIN: &[&str] = &["types", "context", "main-host"];

#[test]
fn guest_imports_are_on_the_allowlist() {
    let imports = runtime().guest_imports();
    assert_eq!(imports.len(), 2);
    for (role, names) in imports {
        let ours = if role == "worker" { OURS_WORKER } else { OURS_MAIN };
        assert!(!names.is_empty());
        for name in &names {
            let unversioned = name.split('@').next().unwrap();
            let allowed = match unversioned.strip_prefix("miniworker:sandbox/") {
                Some(iface) => ours.contains(&iface),
                None => ALLOWED_WASI_IMPORTS.contains(&unversioned),
            };
            assert!(
                allowed,
                "{role} component imports {name}, which is not on the allowlist"
            );
        }
        let has = |iface: &str| {
            names
                .iter()
                .any(|n| n.starts_with(&format!("miniworker:sandbox/{iface}@")))
        };
        assert!(has("context"), "{role}: {names:?}");
        if role == "worker" {
            assert!(!has("main-host"), "the worker can name wx: {names:?}");
            assert!(has("worker-host"));
        } else {
            assert!(has("main-host"));
        }
    }
}
