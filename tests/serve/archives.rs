//! Uploaded projects: only regular files and directories under relative
//! names are unpacked; links, devices, absolute names, `..`, too many
//! entries, too many bytes and a wrong hash are refused, and nothing of a
//! refused archive stays in the cache.

use tar::{EntryType, Header};

use super::{Archive, Client, Received, Server};

const APP_JSON: &[u8] = br#"{ "pages": ["pages/index/index"], "workers": "workers" }"#;
const WORKER: &[u8] = b"worker.onMessage((m) => worker.postMessage(m))\n";

/// A valid project, then whatever `extra` appends.
fn project_with(extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Archive {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("app.json", APP_JSON), ("workers/echo.js", WORKER)] {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("appended");
    }
    extra(&mut b);
    Archive::of_bytes(b.into_inner().expect("finished"))
}

/// An entry of `kind` named `name` (written raw: the tar crate itself
/// refuses to write absolute names and `..`).
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, link: Option<&str>, data: &[u8]) {
    let mut h = Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    if let Some(link) = link {
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).expect("appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_devices_absolute_names_and_dotdot_are_refused() {
    let cache = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(&[
        "--cache-dir",
        cache.path().to_str().expect("utf-8"),
        "--max-project-files",
        "50",
        "--max-project-bytes",
        "65536",
    ]);
    let cases: Vec<(Archive, &str)> = vec![
        (
            project_with(|b| {
                raw_entry(
                    b,
                    "workers/link.js",
                    EntryType::Symlink,
                    Some("/etc/hostname"),
                    b"",
                )
            }),
            "only regular files and directories",
        ),
        (
            project_with(|b| {
                raw_entry(
                    b,
                    "workers/hard.js",
                    EntryType::Link,
                    Some("workers/echo.js"),
                    b"",
                )
            }),
            "only regular files and directories",
        ),
        (
            project_with(|b| raw_entry(b, "workers/tty", EntryType::Char, None, b"")),
            "only regular files and directories",
        ),
        (
            project_with(|b| raw_entry(b, "workers/fifo", EntryType::Fifo, None, b"")),
            "only regular files and directories",
        ),
        (
            project_with(|b| raw_entry(b, "/tmp/miniworker-escape.js", EntryType::Regular, None, b"1")),
            "an absolute name",
        ),
        (
            project_with(|b| raw_entry(b, "workers/../../escape.js", EntryType::Regular, None, b"1")),
            "a name with ..",
        ),
        (
            // A bomb of many small files.
            project_with(|b| {
                for i in 0..60 {
                    raw_entry(b, &format!("workers/f{i}.js"), EntryType::Regular, None, b"1");
                }
            }),
            "more than 50 entries",
        ),
        (
            project_with(|b| raw_entry(b, "workers/big.js", EntryType::Regular, None, &vec![b' '; 70_000])),
            "over 65536 bytes",
        ),
    ];
    for (archive, why) in &cases {
        super::expect_bad_project(&server.data, archive, "workers/echo.js", why).await;
    }
    // A wrong hash: the bytes of one project under the name of another.
    let good = project_with(|_| {});
    let liar = Archive {
        bytes: good.bytes.clone(),
        hash: Archive::of_bytes(b"another project".to_vec()).hash,
    };
    super::expect_bad_project(&server.data, &liar, "workers/echo.js", "SHA-256").await;
    assert!(!std::path::Path::new("/tmp/miniworker-escape.js").exists());
    let left: Vec<_> = std::fs::read_dir(cache.path()).expect("the cache").collect();
    assert!(left.is_empty(), "a refused archive left {left:?}");
    // The good one unpacks and works.
    let mut client = Client::connect(&server.data, None).await.expect("connected");
    let answer = client.open(&good, Some("workers/echo.js")).await;
    assert!(
        matches!(&answer, Received::Line(v) if v["type"] == "opened"),
        "{answer:?}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).expect("the cache").count(), 1);
}
