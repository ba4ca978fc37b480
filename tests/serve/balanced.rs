//! Two servers behind a real load balancer (Debian's HAProxy: least
//! connections, health checks on `/readyz`): sessions spread, a host killed
//! mid-run takes only its own sessions, a drained host leaves the rotation
//! and ends its sessions with 1001, and capacity holds across both. Where
//! HAProxy cannot be installed, each test says it was skipped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::tungstenite;

use super::{Client, Received, Server};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// HAProxy in front of `servers`, checking each one's `/readyz` every `check`.
struct Balancer {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// `None` (and a loud message) where HAProxy is not installed.
    fn start(test: &str, servers: &[&Server], check: Duration) -> Option<Balancer> {
        if !Path::new(HAPROXY).exists() {
            eprintln!("SKIPPED {test}: {HAPROXY} is missing (make test-tools installs Debian's haproxy)");
            return None;
        }
        let addr = free_addr();
        let mut config = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  timeout tunnel 60s\n\
             frontend sessions\n  bind {addr}\n  default_backend servers\n\
             backend servers\n  balance leastconn\n  option httpchk GET /readyz\n  \
             default-server inter {}ms fall 1 rise 1\n",
            check.as_millis()
        );
        for (i, server) in servers.iter().enumerate() {
            let admin_port = server.admin.rsplit(':').next().expect("a port");
            config.push_str(&format!(
                "  server h{i} {} check port {admin_port}\n",
                server.data
            ));
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("the config is written");
        let child = Command::new(HAPROXY)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        let balancer = Balancer {
            child,
            addr,
            _dir: dir,
        };
        // Ready once it accepts connections and sees the servers up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&balancer.addr).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(check * 2 + Duration::from_millis(50));
        Some(balancer)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on now.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").to_string()
}

/// The host part of a session id: the server's process id, in hex.
fn host_of(opened: &serde_json::Value) -> String {
    let session = opened["session"].as_str().expect("a session id");
    session.split('-').next().expect("a host part").to_owned()
}

fn hex_pid(server: &Server) -> String {
    format!("{:x}", server.pid())
}

/// Opens a hello worker session through the balancer: the client and the
/// host it landed on, or how it was refused (close code, or HTTP status).
async fn open(addr: &str) -> Result<(Client, String), u16> {
    let mut client = match Client::connect(addr, None).await {
        Ok(client) => client,
        Err(tungstenite::Error::Http(response)) => return Err(response.status().as_u16()),
        Err(e) => panic!("connecting through the balancer: {e}"),
    };
    match client
        .open(&super::hello(), Some("workers/request/index.js"))
        .await
    {
        Received::Line(v) if v["type"] == "opened" => {
            let host = host_of(&v);
            Ok((client, host))
        }
        Received::Closed(Some(code)) => Err(code),
        other => panic!("expected opened or a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_two_hosts_and_each_keeps_its_order() {
    let (a, b) = (Server::start(&[]), Server::start(&[]));
    let Some(lb) = Balancer::start("spread", &[&a, &b], Duration::from_millis(200)) else {
        return;
    };
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(open(&lb.addr).await.expect("a session").0);
    }
    let (on_a, on_b) = (a.metric("miniworker_sessions"), b.metric("miniworker_sessions"));
    assert_eq!(on_a + on_b, 40.0);
    assert!(
        (16.0..=24.0).contains(&on_a),
        "{on_a} on one host, {on_b} on the other"
    );
    let mut tasks = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..50 {
                client.round_trip(&format!("{i}:{n}")).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("every round trip in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_run_takes_only_its_own_sessions() {
    let a = Server::start(&[]);
    let mut b = Server::start(&[]);
    let Some(lb) = Balancer::start("failover", &[&a, &b], Duration::from_millis(100)) else {
        return;
    };
    let (b_data, b_admin) = (b.data.clone(), b.admin.clone());
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for _ in 0..10 {
        let (client, host) = open(&lb.addr).await.expect("a session");
        if host == hex_pid(&a) {
            on_a.push(client)
        } else {
            on_b.push(client)
        }
    }
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "{} and {}",
        on_a.len(),
        on_b.len()
    );
    for client in on_a.iter_mut().chain(on_b.iter_mut()) {
        client.round_trip("before").await;
    }
    let killed = Instant::now();
    b.signal(libc::SIGKILL);
    assert!(
        b.wait(Duration::from_secs(5)).is_none(),
        "killed, so no exit code"
    );
    for client in &mut on_b {
        let (_, code) = client.rest().await;
        assert_ne!(code, Some(1000), "a killed host sends nothing");
    }
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "the clients saw the close late"
    );
    for client in &mut on_a {
        for n in 0..20 {
            client.round_trip(&format!("after {n}")).await;
        }
    }
    // New sessions go to the survivor within a second.
    tokio::time::sleep(Duration::from_millis(1000).saturating_sub(killed.elapsed())).await;
    for _ in 0..6 {
        let (_, host) = open(&lb.addr).await.expect("a session on the survivor");
        assert_eq!(host, hex_pid(&a));
    }
    // Restarted on its addresses, it takes sessions again.
    let restarted = Server::start_on(&b_data, &b_admin, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut hosts = std::collections::HashSet::new();
    let mut held = Vec::new();
    while hosts.len() < 2 && Instant::now() < deadline {
        let (client, host) = open(&lb.addr).await.expect("a session");
        hosts.insert(host);
        held.push(client);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        hosts.contains(&hex_pid(&restarted)),
        "the restarted host took no session: {hosts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_host_leaves_the_rotation_and_ends_its_sessions_with_1001() {
    let a = Server::start(&[]);
    let mut b = Server::start(&["--drain-timeout", "3"]);
    let Some(lb) = Balancer::start("drain", &[&a, &b], Duration::from_millis(100)) else {
        return;
    };
    let mut on_b = Vec::new();
    while on_b.len() < 3 {
        let (client, host) = open(&lb.addr).await.expect("a session");
        if host == hex_pid(&b) {
            on_b.push(client);
        }
    }
    let signalled = Instant::now();
    b.signal(libc::SIGTERM);
    while b.admin_get("/readyz").0 != 503 {
        assert!(
            signalled.elapsed() < Duration::from_millis(100),
            "readyz still 200"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Once the balancer's next check ran, new sessions land on the other host.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let (_, host) = open(&lb.addr).await.expect("a session");
        assert_eq!(host, hex_pid(&a));
    }
    for client in &mut on_b {
        client.round_trip("still served").await;
    }
    for client in &mut on_b {
        let (lines, code) = client.rest().await;
        assert_eq!(
            lines.last(),
            Some(&json!({ "type": "exit", "code": 0, "reason": "draining" }))
        );
        assert_eq!(code, Some(1001));
    }
    assert_eq!(b.wait(Duration::from_secs(5)), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "exited after {:?}",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_opens_against_two_hosts_of_16_refuse_exactly_8() {
    let (a, b) = (
        Server::start(&["--capacity", "16"]),
        Server::start(&["--capacity", "16"]),
    );
    // Checks slower than the burst: the rotation does not change during it.
    let Some(lb) = Balancer::start("capacity", &[&a, &b], Duration::from_secs(3)) else {
        return;
    };
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..40 {
        match open(&lb.addr).await {
            Ok((client, _)) => held.push(client),
            Err(code) => refused.push(code),
        }
    }
    assert_eq!(held.len(), 32);
    assert_eq!(refused.len(), 8);
    assert!(refused.iter().all(|c| *c == 1013 || *c == 503), "{refused:?}");
    assert_eq!(
        a.metric("miniworker_sessions") + b.metric("miniworker_sessions"),
        32.0
    );
}
