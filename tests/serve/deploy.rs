//! What Kubernetes runs: the manifests of `deploy/k8s/` pass
//! `kubernetes-validate` (strict) and hold together (the ServiceMonitor
//! finds the admin Service, the grace period outlasts the drain, no
//! egress), and the image `deploy/Containerfile` makes serves a session
//! from its own files. Tools missing from the machine (`make test-tools`
//! installs them) make a test say it was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{Client, Server};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv `make test-tools` makes, with kubernetes-validate and PyYAML.
fn venv_bin(name: &str) -> Option<PathBuf> {
    let path = root().join("target/venv/bin").join(name);
    path.exists().then_some(path)
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/k8s"))
        .expect("deploy/k8s")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_kubernetes_manifests_pass_the_validator_and_a_broken_one_does_not() {
    let Some(validate) = venv_bin("kubernetes-validate") else {
        eprintln!("SKIPPED kubernetes manifests: target/venv has no kubernetes-validate (make test-tools)");
        return;
    };
    let out = Command::new(&validate)
        .arg("--strict")
        .args(manifests())
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for kind in [
        "configmap/miniworker",
        "deployment/miniworker",
        "horizontalpodautoscaler/miniworker",
        "networkpolicy/miniworker",
        "poddisruptionbudget/miniworker",
        "service/miniworker ",
        "service/miniworker-admin",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{kind} not validated: {text}"
        );
    }
    // The validator can fail: an unknown field and a wrong type.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broken = dir.path().join("broken.yaml");
    let deployment = std::fs::read_to_string(root().join("deploy/k8s/deployment.yaml")).expect("read");
    std::fs::write(
        &broken,
        deployment.replace("replicas: 2", "replicas: two\n  replica: 2"),
    )
    .expect("write");
    let out = Command::new(&validate)
        .arg("--strict")
        .arg(&broken)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "a broken manifest passed");
}

/// Every document of the manifests, as JSON.
fn documents() -> Vec<Value> {
    let python = venv_bin("python").expect("the venv");
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]))",
        ])
        .args(manifests())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn the_manifests_hold_together() {
    if venv_bin("python").is_none() {
        eprintln!("SKIPPED manifest checks: target/venv is missing (make test-tools)");
        return;
    }
    let docs = documents();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    let deployment = find("Deployment", "miniworker");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    // The grace period outlasts preStop plus the drain timeout.
    let config = find("ConfigMap", "miniworker");
    let toml = config["data"]["serve.toml"].as_str().expect("serve.toml");
    let drain: f64 = toml
        .lines()
        .find_map(|l| l.strip_prefix("drain-timeout = "))
        .and_then(|v| v.parse().ok())
        .expect("drain-timeout in the config");
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_f64()
        .expect("preStop");
    let grace = pod["terminationGracePeriodSeconds"].as_f64().expect("grace");
    assert!(grace > pre_stop + drain, "grace {grace} <= {pre_stop} + {drain}");
    // The config is one the server takes.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("serve.toml");
    std::fs::write(
        &path,
        toml.replace(
            "/var/cache/miniworker",
            dir.path().join("cache").to_str().expect("utf-8"),
        ),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_miniworker"))
        .args(["serve", "--config", path.to_str().expect("utf-8"), "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // No session affinity; the ServiceMonitor finds the admin Service's port.
    assert_eq!(find("Service", "miniworker")["spec"]["sessionAffinity"], "None");
    let admin = find("Service", "miniworker-admin");
    let monitor = find("ServiceMonitor", "miniworker");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("labels")
    {
        assert_eq!(
            &admin["metadata"]["labels"][k], v,
            "the ServiceMonitor does not select the admin Service"
        );
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        admin["spec"]["ports"][0]["name"]
    );
    // No egress at all; the HPA scales on the server's utilization metric.
    let policy = find("NetworkPolicy", "miniworker");
    assert!(
        policy["spec"]["policyTypes"]
            .as_array()
            .expect("types")
            .contains(&"Egress".into())
    );
    assert_eq!(policy["spec"]["egress"], serde_json::json!([]));
    let hpa = find("HorizontalPodAutoscaler", "miniworker");
    assert_eq!(
        hpa["spec"]["metrics"][0]["pods"]["metric"]["name"],
        "miniworker_session_utilization"
    );
    assert_eq!(hpa["spec"]["metrics"][1]["resource"]["name"], "cpu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_serves_a_session_from_its_own_files() {
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    if !root_user || Command::new("podman").arg("--version").output().is_err() {
        eprintln!("SKIPPED image: needs podman (make test-tools) and root for chroot");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rootfs = dir.path().join("rootfs");
    let status = Command::new(root().join("deploy/image/rootfs.sh"))
        .arg(env!("CARGO_BIN_EXE_miniworker"))
        .arg(&rootfs)
        .status()
        .expect("rootfs.sh runs");
    assert!(status.success());
    std::fs::copy(
        root().join("deploy/Containerfile"),
        dir.path().join("Containerfile"),
    )
    .expect("copied");
    let tag = format!("localhost/miniworker:test-{}", std::process::id());
    let built = Command::new("podman")
        .args(["build", "-q", "-t", &tag, "-f"])
        .arg(dir.path().join("Containerfile"))
        .arg(dir.path())
        .output()
        .expect("podman runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let image = Image(tag.clone());
    let mount = Command::new("podman")
        .args(["image", "mount", &tag])
        .output()
        .expect("podman runs");
    assert!(
        mount.status.success(),
        "{}",
        String::from_utf8_lossy(&mount.stderr)
    );
    let merged = String::from_utf8_lossy(&mount.stdout).trim().to_owned();
    // The image holds nothing but the server and what it links.
    let mut files = Vec::new();
    collect(Path::new(&merged), Path::new(&merged), &mut files);
    files.sort();
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("etc/") || f.starts_with("lib") || f == "usr/local/bin/miniworker"),
        "{files:?}"
    );
    // `podman run` is refused by this sandbox's rlimits: run it by chroot,
    // as the image's unprivileged user, on its read-only root with a tmpfs
    // on /tmp (Kubernetes' emptyDir), in a mount namespace of its own. Each
    // step execs the next, so the server keeps the process id.
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs -o mode=1777 tmpfs \"$0/tmp\" && exec chroot --userspec=65532:65532 \"$0\" \
         /usr/local/bin/miniworker serve --listen 127.0.0.1:0 --admin 127.0.0.1:0",
        &merged,
    ]);
    let server = Server::spawn(command);
    let mut client = Client::connect(&server.data, None).await.expect("connected");
    client.open_hello().await;
    client.round_trip("from the image").await;
    drop(server);
    drop(image);
}

/// A built image, unmounted and removed when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["image", "unmount", &self.0])
            .output();
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

/// The regular files under `dir`, relative to `base`.
fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            collect(base, &path, out);
        } else {
            out.push(
                path.strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}
