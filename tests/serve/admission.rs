//! Who gets a session: tokens (401 before the upgrade), the limits they
//! lower, per-tenant caps (1008), host capacity (1013) with readiness
//! hysteresis, and the drain after SIGTERM (1001, exit 0).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use super::{Client, Received, Server, hello};

const KEY: &str = "a test key of more than 16 bytes";

fn token(key: &str, claims: Value) -> String {
    super::token(key, &claims)
}

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600
}

/// The HTTP status of a refused upgrade.
fn status(result: Result<Client, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, got a session"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_the_upgrade_and_lower_the_limits() {
    let server = Server::start(&["--auth-key", KEY, "--max-memory", "48", "--cpu-time", "5"]);
    let expired = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        - 10;
    assert_eq!(status(Client::connect(&server.data, None).await), 401);
    let forged = token(
        "another key of more than 16 bytes",
        json!({ "sub": "t", "exp": in_an_hour() }),
    );
    assert_eq!(status(Client::connect(&server.data, Some(&forged)).await), 401);
    let old = token(KEY, json!({ "sub": "t", "exp": expired }));
    assert_eq!(status(Client::connect(&server.data, Some(&old)).await), 401);
    let no_tenant = token(KEY, json!({ "exp": in_an_hour() }));
    assert_eq!(status(Client::connect(&server.data, Some(&no_tenant)).await), 401);
    assert_eq!(
        server.metric("miniworker_opens_total{result=\"unauthorized\"}"),
        4.0
    );
    assert_eq!(server.metric("miniworker_sessions"), 0.0);

    // A good token in the header; its limits lower the server's, never raise them.
    let lowering = token(
        KEY,
        json!({ "sub": "t", "exp": in_an_hour(), "lim": { "memory": 16 << 20, "cpu_time": 100.0, "timers": 5 } }),
    );
    let mut client = Client::connect(&server.data, Some(&lowering))
        .await
        .expect("accepted");
    let opened = client.open_hello().await;
    assert_eq!(opened["limits"]["memory"], 16 << 20);
    assert_eq!(
        opened["limits"]["cpu_time"], 5.0,
        "a token cannot raise a ceiling"
    );
    assert_eq!(opened["limits"]["timers"], 5);
    client.round_trip("with a token").await;

    // Browsers: the token in the subprotocol list.
    let plain = token(KEY, json!({ "sub": "t", "exp": in_an_hour() }));
    let header = ("sec-websocket-protocol", format!("miniworker.v1, token.{plain}"));
    let mut browser = Client::connect_with(&server.data, Some(header))
        .await
        .expect("accepted");
    let opened = browser.open_hello().await;
    assert_eq!(opened["limits"]["memory"], 48 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_caps_gets_1008_and_others_do_not() {
    let server = Server::start(&["--auth-key", KEY, "--tenant-sessions", "2"]);
    let a = token(KEY, json!({ "sub": "a", "exp": in_an_hour() }));
    let b = token(KEY, json!({ "sub": "b", "exp": in_an_hour() }));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = Client::connect(&server.data, Some(&a)).await.expect("accepted");
        client.open_hello().await;
        held.push(client);
    }
    let mut third = Client::connect(&server.data, Some(&a)).await.expect("accepted");
    third
        .send(json!({ "type": "open", "project": hello().hash, "entry": "workers/request/index.js" }))
        .await;
    assert!(matches!(third.next().await, Received::Closed(Some(1008))));
    let mut other = Client::connect(&server.data, Some(&b)).await.expect("accepted");
    other.open_hello().await;
    assert_eq!(server.metric("miniworker_tenant_sessions{tenant=\"a\"}"), 2.0);
    assert_eq!(server.metric("miniworker_opens_total{result=\"tenant\"}"), 1.0);
    // A place freed is a place again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric("miniworker_tenant_sessions{tenant=\"a\"}") > 1.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = Client::connect(&server.data, Some(&a)).await.expect("accepted");
    again.open_hello().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_per_second_and_memory_are_capped_per_tenant() {
    let server = Server::start(&["--tenant-opens-per-second", "3", "--tenant-memory", "100"]);
    // 64 MiB per session by default: the second one would pass 100 MiB.
    let mut first = Client::connect(&server.data, None).await.expect("accepted");
    first.open_hello().await;
    let mut second = Client::connect(&server.data, None).await.expect("accepted");
    second
        .send(json!({ "type": "open", "project": hello().hash, "entry": "workers/request/index.js" }))
        .await;
    assert!(matches!(second.next().await, Received::Closed(Some(1008))));
    drop(first);
    // Opens in one second past the third are refused whatever else holds.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&server.data, None).await.expect("accepted");
        c.send(json!({ "type": "open", "project": "sha256:".to_owned() + &"0".repeat(64), "entry": "w.js" }))
            .await;
        codes.push(match c.next().await {
            Received::Closed(code) => code,
            Received::Line(v) => Some(v["type"].as_str().map_or(0, |_| 1)),
        });
    }
    assert!(codes.contains(&Some(1008)), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_host_refuses_with_1013_and_readiness_has_hysteresis() {
    let server = Server::start(&["--capacity", "10"]);
    assert_eq!(server.admin_get("/readyz").0, 200);
    assert_eq!(server.admin_get("/healthz"), (200, "ok\n".into()));
    let mut held = Vec::new();
    for i in 0..10 {
        let mut client = Client::connect(&server.data, None).await.expect("accepted");
        client.open_hello().await;
        held.push(client);
        // Above 90 % (10 of 10) it is not ready; at 9 of 10 it still is.
        let expected = if i == 9 { 503 } else { 200 };
        assert_eq!(server.admin_get("/readyz").0, expected, "with {} sessions", i + 1);
    }
    assert_eq!(server.metric("miniworker_session_utilization"), 1.0);
    let mut refused = Client::connect(&server.data, None).await.expect("upgraded");
    refused
        .send(json!({ "type": "open", "project": hello().hash, "entry": "workers/request/index.js" }))
        .await;
    assert!(matches!(refused.next().await, Received::Closed(Some(1013))));
    assert_eq!(server.metric("miniworker_opens_total{result=\"capacity\"}"), 1.0);
    // 9 and 8 of 10: not below 80 %, still not ready; 7 of 10: ready.
    for (left, expected) in [(9, 503), (8, 503), (7, 200)] {
        let mut client = held.pop().expect("a session");
        client.send(json!({ "type": "terminate" })).await;
        let _ = client.rest().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.metric("miniworker_sessions") > f64::from(left) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.admin_get("/readyz").0, expected, "with {left} sessions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_ends_sessions_with_1001_and_exits_0() {
    let mut server = Server::start(&["--drain-timeout", "2"]);
    let mut client = Client::connect(&server.data, None).await.expect("accepted");
    client.open_hello().await;
    client.round_trip("before").await;
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.admin_get("/readyz").0 != 503 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        signalled.elapsed() < Duration::from_millis(500),
        "readyz turned late"
    );
    // New opens are refused; the open session still works.
    let mut late = Client::connect(&server.data, None).await.expect("upgraded");
    late.send(json!({ "type": "open", "project": hello().hash, "entry": "workers/request/index.js" }))
        .await;
    assert!(matches!(late.next().await, Received::Closed(Some(1013))));
    client.round_trip("while draining").await;
    let (lines, code) = client.rest().await;
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "draining" })),
        "{lines:?}"
    );
    assert_eq!(code, Some(1001));
    assert_eq!(server.wait(Duration::from_secs(5)), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_ends_as_soon_as_the_last_session_does() {
    let mut server = Server::start(&["--drain-timeout", "60"]);
    let mut client = Client::connect(&server.data, None).await.expect("accepted");
    client.open_hello().await;
    server.signal(libc::SIGTERM);
    client.send(json!({ "type": "terminate" })).await;
    let (lines, _) = client.rest().await;
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "terminated" }))
    );
    assert_eq!(server.wait(Duration::from_secs(10)), Some(0));
}
