//! Sessions: the protocol from `open` to `exit`, worker and run sessions,
//! the project cache, protocol errors, idle clients.

use serde_json::json;

use super::{Client, Received, Server, hello};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_session_opens_talks_and_ends_with_exit_and_1000() {
    let server = Server::start(&["--max-memory", "32"]);
    let mut client = Client::connect(&server.data, None)
        .await
        .expect("no token needed");
    client
        .send(json!({ "type": "open", "project": hello().hash, "entry": "workers/request/index.js" }))
        .await;
    let need = client.line().await;
    assert_eq!(need["type"], "need-project");
    assert_eq!(need["max_bytes"], 16 << 20);
    client.send_binary(hello().bytes).await;
    let opened = client.line().await;
    assert_eq!(opened["type"], "opened", "{opened}");
    assert_eq!(
        opened["limits"]["memory"],
        32 << 20,
        "the server's ceiling: {opened}"
    );
    assert!(opened["session"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(client.line().await, json!({ "type": "ready", "protocol": 1 }));
    for i in 0..5 {
        client.round_trip(&format!("m{i}")).await;
    }
    client.send(json!({ "type": "terminate" })).await;
    let (lines, code) = client.rest().await;
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "terminated" }))
    );
    assert_eq!(code, Some(1000));
    assert_eq!(
        server.metric("miniworker_messages_total{direction=\"to-worker\"}"),
        5.0
    );
    assert_eq!(
        server.metric("miniworker_messages_total{direction=\"from-worker\"}"),
        5.0
    );
    assert_eq!(
        server.metric("miniworker_session_ends_total{reason=\"terminated\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_session_streams_app_js_like_run_json() {
    let server = Server::start(&[]);
    let mut client = Client::connect(&server.data, None).await.expect("connected");
    let opened = client.open(&hello(), None).await;
    assert!(
        matches!(&opened, Received::Line(v) if v["type"] == "opened"),
        "{opened:?}"
    );
    let (lines, code) = client.rest().await;
    let types: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(types, ["ready", "console", "console", "exit"], "{lines:?}");
    assert_eq!(
        lines[2]["args"],
        json!([
            "worker says:",
            "{\"msg\":\"hello main\",\"echo\":\"hello worker\"}"
        ])
    );
    assert_eq!(
        lines[3],
        json!({ "type": "exit", "code": 0, "reason": "quiescent" })
    );
    assert_eq!(code, Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_archive_opened_by_100_sessions_is_unpacked_once() {
    let server = Server::start(&["--capacity", "128"]);
    let archive = hello();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (data, archive) = (server.data.clone(), archive.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&data, None).await.expect("connected");
            let opened = client.open(&archive, Some("workers/request/index.js")).await;
            assert!(
                matches!(&opened, Received::Line(v) if v["type"] == "opened"),
                "{opened:?}"
            );
            client.round_trip(&format!("s{i}")).await;
            client
        }));
    }
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.expect("the session worked"));
    }
    assert_eq!(server.metric("miniworker_sessions"), 100.0);
    assert_eq!(server.metric("miniworker_project_unpacks_total"), 1.0);
    assert_eq!(server.metric("miniworker_opens_total{result=\"opened\"}"), 100.0);
    // A later session finds it in the cache: no need-project.
    let mut late = Client::connect(&server.data, None).await.expect("connected");
    late.send(json!({ "type": "open", "project": archive.hash, "entry": "workers/request/index.js" }))
        .await;
    assert_eq!(late.line().await["type"], "opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_first_frame_is_a_protocol_error_and_1002() {
    let server = Server::start(&[]);
    for (frame, why) in [
        (
            json!({ "type": "message", "data": 1 }),
            "the first frame must be an open line",
        ),
        (
            json!({ "type": "open", "project": "md5:00", "entry": "w.js" }),
            "sha256:",
        ),
        (
            json!({ "type": "open", "project": hello().hash, "entry": "w.js", "run": true }),
            "either entry or run",
        ),
        (
            json!({ "type": "open", "project": hello().hash, "extra": 1 }),
            "a bad open",
        ),
    ] {
        let mut client = Client::connect(&server.data, None).await.expect("connected");
        client.send(frame).await;
        let line = client.line().await;
        assert_eq!(line["type"], "protocol-error");
        assert!(
            line["message"].as_str().is_some_and(|m| m.contains(why)),
            "{line}"
        );
        assert!(matches!(client.next().await, Received::Closed(Some(1002))));
    }
    assert_eq!(server.metric("miniworker_sessions"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_entry_file_is_bad_project_with_exit_2() {
    let server = Server::start(&[]);
    super::expect_bad_project(&server.data, &hello(), "workers/missing.js", "missing.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_no_ping_is_ended_as_idle() {
    let server = Server::start(&["--ping-interval", "0.2"]);
    let mut client = Client::connect(&server.data, None).await.expect("connected");
    client.open_hello().await;
    // Not reading means not answering pings (tungstenite answers as it reads).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (lines, code) = client.rest().await;
    assert_eq!(
        lines.last(),
        Some(&json!({ "type": "exit", "code": 0, "reason": "idle" })),
        "{lines:?} {code:?}"
    );
    assert_eq!(code, Some(1000));
    assert_eq!(
        server.metric("miniworker_session_ends_total{reason=\"idle\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_client_stays_past_many_ping_intervals() {
    // Pings every 250 ms; reading for round trips answers them, with 20 ms
    // pauses between (far below the two silent intervals that end a session,
    // even on a loaded machine), over more than ten intervals in all.
    let server = Server::start(&["--ping-interval", "250ms"]);
    let mut client = Client::connect(&server.data, None).await.expect("connected");
    client.open_hello().await;
    let started = std::time::Instant::now();
    let mut i = 0;
    while started.elapsed() < std::time::Duration::from_millis(2600) {
        client.round_trip(&format!("r{i}")).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        i += 1;
    }
    assert_eq!(server.metric("miniworker_sessions"), 1.0);
}

/// The server's resident memory, in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a live process");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_makes_its_worker_post_throw_and_costs_bounded_memory() {
    let server = Server::start(&["--max-queue-bytes", "8388608", "--ping-interval", "60"]);
    let flood = super::Archive::of_dir(&crate::common::fixture("flood"));
    let mut slow = Client::connect(&server.data, None).await.expect("connected");
    let opened = slow.open(&flood, Some("workers/flood.js")).await;
    assert!(
        matches!(&opened, Received::Line(v) if v["type"] == "opened"),
        "{opened:?}"
    );
    let mut other = Client::connect(&server.data, None).await.expect("connected");
    other.open_hello().await;
    let baseline = rss(server.pid());
    slow.send(json!({ "type": "message", "data": { "start": true, "ms": 3000 } }))
        .await;
    // The slow client reads nothing for 3 s; the other session carries on.
    let started = std::time::Instant::now();
    let mut peak = baseline;
    let mut trips = 0;
    while started.elapsed() < std::time::Duration::from_millis(3000) {
        other.round_trip(&format!("t{trips}")).await;
        trips += 1;
        peak = peak.max(rss(server.pid()));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(trips >= 20, "the other session made only {trips} round trips");
    slow.send(json!({ "type": "message", "data": { "report": true } }))
        .await;
    let report = loop {
        let line = slow.line().await;
        if line["type"] == "message" && line["data"]["report"] == true {
            break line["data"].clone();
        }
    };
    assert!(report["refused"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(report["sent"].as_u64().is_some_and(|n| n > 100), "{report}");
    assert!(
        peak < baseline + (64 << 20),
        "RSS rose from {} MiB to {} MiB",
        baseline >> 20,
        peak >> 20
    );
}
